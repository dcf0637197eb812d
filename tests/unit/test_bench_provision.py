"""``cso bench provision`` without root: arguments, the workload's deal, the client loop, the
figures and the client."""
from __future__ import annotations

import json
import math
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from cso.bench import provision as bp
from cso.bench.cli import benchmarks, main, parser
from cso.bench.common import Histogram, workload
from cso_base import http


# -- arguments ----------------------------------------------------------------------------

def test_provision_is_registered_with_its_options():
    assert "provision" in benchmarks()
    args = parser().parse_args(["provision"])
    assert (args.requests, args.concurrency, args.seed, args.rate, args.topo) == \
        (400, 16, 1, 100.0, "nsfnet")
    assert args.json is False and args.warmup == 10
    args = parser().parse_args(["provision", "--json", "--requests", "7", "--concurrency", "3",
                                "--seed", "9", "--rate", "0", "--warmup", "0"])
    assert (args.json, args.requests, args.concurrency, args.seed, args.rate, args.warmup) == \
        (True, 7, 3, 9, 0.0, 0)


@pytest.mark.parametrize("argv", [["--requests", "0"], ["--requests", "x"],
                                  ["--concurrency", "-1"], ["--warmup", "-1"],
                                  ["--seed", "one"], ["--rate", "fast"], ["--rate", "-1"],
                                  ["--rate", "nan"], ["--timeout", "0"], ["--nope"]])
def test_bad_arguments_exit_2(argv, capsys):
    assert main(["provision", *argv]) == 2
    assert "usage: cso bench" in capsys.readouterr().err


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the benchmark tries to start OVS, the SC or the emulation."""
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the benchmark started something")

    monkeypatch.setattr(bp.lab, "ensure_ovs", refuse)
    monkeypatch.setattr(bp.lab, "ScRun", refuse)
    monkeypatch.setattr(bp.lab, "NetRun", refuse)


def test_more_clients_than_pairs_is_refused_before_anything_starts(nothing_starts, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["provision", "--concurrency", "66"])
    assert exit_.value.code == 2
    assert "66 clients need at least 66 distinct pairs; the topology has 65" in \
        capsys.readouterr().err


def test_unknown_topology_is_refused(nothing_starts, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["provision", "--topo", "no-such-topology"])
    assert exit_.value.code == 2 and "no-such-topology" in capsys.readouterr().err


def test_without_root_it_says_so_and_starts_nothing(nothing_starts, monkeypatch, capsys):
    monkeypatch.setattr(bp.os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as exit_:
        main(["provision", "--json"])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert "needs root" in captured.err and captured.out == ""


# -- dealing the workload -----------------------------------------------------------------

def test_deal_gives_disjoint_shares_covering_every_pair():
    pairs, _ip = workload("nsfnet")
    shares = bp.deal(pairs, 16, random.Random(1))
    assert len(shares) == 16 and {len(share) for share in shares} == {4, 5}
    dealt = [pair for share in shares for pair in share]
    assert sorted(dealt) == sorted(pairs)
    assert shares == bp.deal(pairs, 16, random.Random(1))
    assert shares != bp.deal(pairs, 16, random.Random(2))
    with pytest.raises(ValueError):
        bp.deal(pairs[:3], 4, random.Random(1))


def test_quotas_split_evenly():
    assert bp.quotas(10, 4) == [3, 3, 2, 2]
    assert bp.quotas(3, 5) == [1, 1, 1, 0, 0]
    assert sum(bp.quotas(400, 16)) == 400


def test_poisson_schedules_are_one_process_dealt_in_turn():
    counts = bp.quotas(4000, 16)
    schedules = bp.poisson_schedules(100.0, counts, random.Random(3))
    assert [len(times) for times in schedules] == counts
    assert all(times == sorted(times) for times in schedules)
    merged = sorted(t for times in schedules for t in times)
    # Dealt in turn: the k-th arrival overall belongs to client k % 16.
    assert [schedules[k % 16][k // 16] for k in range(len(merged))] == merged
    assert 37 < merged[-1] < 43  # 4000 arrivals at 100/s: about 40 s
    with pytest.raises(ValueError):
        bp.poisson_schedules(10.0, [1, 3], random.Random(0))


# -- the client loop ----------------------------------------------------------------------

def answer(status: int, data: Any, seconds: float) -> http.Answer:
    """A timed JSON answer, as an `http.Connection` gives."""
    return http.Answer(status, {}, json.dumps(data).encode(), seconds)


class FakeClient:
    """Answers like the SC: 201 with an id, or a refusal for chosen destinations."""

    def __init__(self, refuse: dict[str, tuple[int, str, str]] | None = None,
                 keep: bool = False, seconds: float = 0.004):
        self.refuse, self.keep, self.seconds = refuse or {}, keep, seconds
        self.calls: list[tuple[str, str]] = []
        self.closed = False
        self.serial = 0

    def post_lightpath(self, src: str, dst: str, service_type: str) -> http.Answer:
        self.calls.append(("POST", f"{src}->{dst}"))
        assert service_type == "vod"
        if dst in self.refuse:
            status, code, reason = self.refuse[dst]
            return answer(status, {"error": code, "reason": reason}, self.seconds)
        self.serial += 1
        return answer(201, {"id": f"lp-{self.serial}"}, self.seconds)

    def delete_lightpath(self, lp_id: str) -> http.Answer:
        self.calls.append(("DELETE", lp_id))
        if self.keep:
            return http.Answer.unanswered("ConnectionResetError: gone", 0.001)
        return answer(200, {"id": lp_id, "state": "deleted"}, 0.002)

    def close(self) -> None:
        self.closed = True


IP = {"u0": "10.1.0.1", "u2": "10.1.2.1", "dc1": "10.2.1.1", "dc4": "10.2.4.1"}


def test_cycle_establishes_tears_down_and_counts_refusals_by_reason():
    client = FakeClient(refuse={"10.2.4.1": (409, "no-path", "no-wavelength")})
    tally = bp.cycle(client, [("u0", "dc1"), ("u2", "dc4")], 5, IP)
    assert tally.requests == 5 and len(tally.establish_s) == 3 == len(tally.teardown_s)
    assert tally.refused == {"409 no-path: no-wavelength": 2}
    assert client.calls[:3] == [("POST", "10.1.0.1->10.2.1.1"), ("DELETE", "lp-1"),
                                ("POST", "10.1.2.1->10.2.4.1")]


def test_cycle_counts_failed_teardowns():
    tally = bp.cycle(FakeClient(keep=True), [("u0", "dc1")], 2, IP)
    assert len(tally.establish_s) == 2 and tally.teardown_s == []
    assert tally.teardown_failed == {"no answer: ConnectionResetError: gone": 2}


def test_a_late_scheduled_request_counts_its_lateness():
    tally = bp.cycle(FakeClient(seconds=0.004), [("u0", "dc1")], 2, IP, schedule=[-1.0, 0.0])
    late, on_time = tally.establish_s
    assert late >= 1.004 and on_time < 0.5


def test_concurrently_merges_every_clients_tally():
    made: list[FakeClient] = []

    def make() -> FakeClient:
        made.append(FakeClient(refuse={"10.2.4.1": (503, "install-failed", "barrier-timeout")}))
        return made[-1]

    shares = [[("u0", "dc1")], [("u2", "dc4")], [("u2", "dc1")]]
    tally, wall = bp.concurrently(make, shares, [3, 2, 1], IP)
    assert tally.requests == 6 and len(tally.establish_s) == 4 and wall > 0
    assert tally.refused == {"503 install-failed: barrier-timeout": 2}
    assert all(client.closed for client in made) and len(made) == 3


def test_concurrently_reraises_a_client_failure():
    class Broken(FakeClient):
        def post_lightpath(self, src: str, dst: str, service_type: str) -> http.Answer:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        bp.concurrently(Broken, [[("u0", "dc1")]] * 2, [1, 1], IP)


# -- figures, targets and report ----------------------------------------------------------

def _meter(count: int) -> dict[str, Any]:
    histogram = Histogram(((0.005, float(count)), (0.02, float(count)),
                           (0.1, float(count)), (math.inf, float(count))),
                          float(count), 0.003 * count)
    return {"server": histogram.summary(bp.WITHIN_MS),
            "cpu_busy": {"sc": 0.5, "ovs": 0.2, "client": 0.1},
            "cpu_s": {"sc": 0.004 * count, "ovs": 0.0, "client": 0.0}}


def test_phase_figures_targets_and_report():
    fast = bp.Tally(establish_s=[0.003] * 99 + [0.05], teardown_s=[0.002] * 100, requests=101)
    fast.refused["409 no-path: no-wavelength"] += 1
    slow = bp.Tally(establish_s=[0.03] * 50, teardown_s=[0.02] * 49, requests=50)
    slow.teardown_failed["no answer: timeout"] += 1
    seq = bp.phase_figures(fast, 1.0, _meter(100), clients=1)
    conc = bp.phase_figures(slow, 1.0, _meter(50), clients=16)
    assert seq["established"] == 100 and seq["refused"] == 1 and seq["lightpaths_per_s"] == 100
    assert seq["client"]["median_ms"] == 3.0 and seq["client"]["p99_ms"] == 3.0
    assert seq["sc_cpu_ms_per_lightpath"] == 4.0 and seq["torn_down"] == 100
    assert bp.targets(seq, rate=False) == {"median_under_20ms": True, "p99_under_100ms": True}
    assert bp.targets(conc, rate=True) == {"median_under_20ms": False, "p99_under_100ms": True,
                                           "at_least_100_per_s": False}
    figures = {"topology": "nsfnet", "fibres": 21, "pairs": 65, "requests": 100, "seed": 1,
               "date": "2024-01-01T00:00:00+00:00", "sequential": seq, "concurrent": conc,
               "targets": {"sequential": bp.targets(seq, False),
                           "concurrent": bp.targets(conc, True)},
               "leftovers": {"lightpaths": 0, "wavelengths_in_use": 0, "flow_entries": 0},
               "log_dir": "/tmp/x"}
    json.dumps(figures)
    text = bp.report(figures)
    assert "sequential (1 client)" in text and "concurrent (16 clients)" in text
    assert "1 x 409 no-path: no-wavelength" in text and "1 x no answer: timeout" in text
    assert "median_under_20ms NOT met" in text and "paced" not in text
    assert "0 lightpaths, 0 wavelengths in use, 0 lightpath flow entries" in text


# -- the HTTP client against a local server ----------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SC's eventlet.wsgi

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers["Authorization"] != "Bearer demo-ac-token":
            self._answer(401, {"error": "unauthorized", "reason": "bad token"})
        elif body["dst"] == "10.2.4.1":
            self._answer(409, {"error": "no-path", "reason": "no-wavelength"})
        else:
            self.server.connections.add(self.client_address)  # type: ignore[attr-defined]
            self._answer(201, {"id": "lp-1", **body})

    def do_DELETE(self) -> None:  # noqa: N802
        self._answer(200, {"id": self.path.rsplit("/", 1)[-1], "state": "deleted"})

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def asi_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.connections = set()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_asi_client_keeps_its_connection_and_reports_refusals(asi_server):
    url = f"http://127.0.0.1:{asi_server.server_address[1]}"
    client = bp.asi_client(url)
    made = client.post_lightpath("10.1.0.1", "10.2.1.1", "vod")
    again = client.post_lightpath("10.1.2.1", "10.2.1.1", "vod")
    assert made.status == 201 == again.status and made.json["service_type"] == "vod"
    assert made.seconds > 0
    assert len(asi_server.connections) == 1  # one kept-alive connection for both
    refused = client.post_lightpath("10.1.0.1", "10.2.4.1", "vod")
    assert refused.status == 409 and refused.why() == "409 no-path: no-wavelength"
    gone = client.delete_lightpath("lp-1")
    assert gone.status == 200 and gone.json == {"id": "lp-1", "state": "deleted"}
    client.close()
    wrong = bp.asi_client(url, token="nope")
    assert wrong.post_lightpath("10.1.0.1", "10.2.1.1", "vod").why() == \
        "401 unauthorized: bad token"
    wrong.close()


def test_asi_client_without_a_server_answers_status_0():
    port = bp.lab.free_port()
    client = bp.asi_client(f"http://127.0.0.1:{port}", timeout=1.0)
    answer = client.post_lightpath("10.1.0.1", "10.2.1.1", "vod")
    assert answer.status == 0 and answer.why().startswith("no answer: ConnectionRefusedError")
