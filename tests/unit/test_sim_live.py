"""`cso sim --live` against an in-process AC (fake agents, the real SC core): replay, metrics,
request-by-request agreement with the simulator, clean-up, checks of the running system."""
import json
from dataclasses import replace

import pytest

from ac_harness import Lab, WsgiTransport
from cso.simulation import cli as sim
from cso_base import http
from cso.simulation.live import (ERROR, OK, LiveError, Outcome, Uai, agreement, check_system,
                                 classify, lag_stats, live_sweep, realised_trace)
from cso.simulation.engine import Scenario, Series
from sc_harness import state_dir  # noqa: F401 (fixture)

NOTHING = ({}, [], 0)
# The lab's SC runs NSFNET (40 wavelengths); its agents serve nsfnet-small's 4-core servers.
SCENARIO = Scenario(topo="nsfnet-small", wavelengths=40, requests=120, warmup=20)
GLB = Series("GLB")


class FakeTime:
    """A clock that sleeping advances: replays run at once, exactly on schedule."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def lab(state_dir):
    the_lab = Lab(state_dir, topology="nsfnet-small")
    yield the_lab
    the_lab.close()


def uai(lab, token="mgr-token"):
    return Uai("http://ac.test:8090", token, send=WsgiTransport(lab.service.app))


def sweep(lab, scenario=SCENARIO, series=GLB, loads=(22.0,), seeds=(1, 2), **kwargs):
    clock = FakeTime()
    return live_sweep(scenario, series, loads, seeds, uai(lab, **kwargs), 5.0, clock=clock,
                      sleep=clock.sleep)


def test_the_live_ac_chooses_as_the_simulator_and_gives_the_same_metrics(lab):
    out = sweep(lab)
    row = out["per_load"][0]
    assert row["errors"] == 0
    assert row["compared"] == 2 * 140 and row["agree"] == row["compared"] == row["same_hops"]
    live, simulated = out["results"][0], out["simulation"][0]
    assert simulated["global_blocking"]["mean"] > 0.03        # the servers do fill up
    # On a fake clock calls take no time: the realised timeline is the scheduled one.
    for metric in ("network_blocking", "global_blocking", "load_balance_factor", "avg_hops",
                   "application_blocking", "mean_app_utilisation", "link_occupancy"):
        assert live[metric]["mean"] == pytest.approx(simulated[metric]["mean"], abs=1e-9)
        assert live[metric]["n"] == 2
    assert row["lag"]["max_s"] == 0 and row["lag"]["n"] > 2 * 140
    assert lab.held() == NOTHING                               # everything given back
    assert not lab.user("mgr").get("/uai/v1/requests?status=active").json["requests"]


def test_a_different_ac_configuration_shows_as_disagreements(state_dir):
    lab = Lab(state_dir, topology="nsfnet-small", glb_b=0.0)  # the scenario says b = 0.5
    try:
        out = sweep(lab, seeds=(1,))
    finally:
        lab.close()
    run = out["runs"][0]["agreement"]
    assert run["agree"] < run["compared"] and run["first_disagreements"]
    first = run["first_disagreements"][0]
    assert first["live"][0] == OK and first["live"] != first["sim"]


def test_errors_are_counted_not_taken_for_blocking(lab):
    lab.transport.down = True                                 # the AC cannot reach the SC
    out = sweep(lab, seeds=(1,), scenario=replace(SCENARIO, requests=10, warmup=0),
                loads=(2.0,))
    run = out["runs"][0]
    assert run["error_count"] == out["per_load"][0]["errors"] > 0
    assert "503" in run["errors"][0]
    # A request at a node with a DC needs no SC: those are served; the others are errors.
    assert run["agreement"]["compared"] + run["error_count"] == 10
    lab.transport.down = False
    assert lab.held() == NOTHING


@pytest.mark.parametrize("change, message", [
    ({"topo": "nsfnet"}, "server dc1-s0 is at node 1 with 16 cpu"),
    ({"server_memory": 8.0}, "8 GB memory, 1000 GB disk in nsfnet-small"),
    ({"traffic": "rwa"}, "cso traffic only"),
])
def test_a_scenario_that_does_not_match_the_ac_is_refused(lab, change, message):
    with pytest.raises(LiveError, match=message):
        check_system(uai(lab), replace(SCENARIO, **change), "GLB")


def test_the_strategy_token_and_an_idle_ac_are_checked(lab):
    with pytest.raises(LiveError, match="the AC runs strategy GLB, the scenario asks for NB"):
        check_system(uai(lab), SCENARIO, "NB")
    with pytest.raises(LiveError, match="401"):
        check_system(uai(lab, token="nope"), SCENARIO, "GLB")
    with pytest.raises(LiveError, match="not a provider manager"):
        check_system(uai(lab, token="alice-token"), SCENARIO, "GLB")
    vm = {"type": "vm", "src": "10.1.0.1", "cpu": 1, "memory_gb": 1, "disk_gb": 1}
    assert lab.user("alice").post("/uai/v1/requests", vm).status == 201
    with pytest.raises(LiveError, match="in use"):
        check_system(uai(lab), SCENARIO, "GLB")


def test_the_sc_wavelengths_are_checked_when_its_url_is_given(lab):
    send = WsgiTransport(lab.sc.wsgi)
    check_system(uai(lab), SCENARIO, "GLB", "http://sc.test:8080", send)
    with pytest.raises(LiveError, match="fibre .* has 3 wavelengths in nsfnet-small"):
        check_system(uai(lab), replace(SCENARIO, wavelengths=None), "GLB",
                     "http://sc.test:8080", send)


def test_answers_are_classified():
    def answer(status, body):
        return http.Answer(status, {}, json.dumps(body).encode())

    ok = answer(201, {"status": "active", "server": "dc1-s0", "id": "req-1",
                      "lightpath": {"hops": 2}})
    assert classify(ok) == (OK, "dc1-s0", 2, "req-1", "")
    net = answer(409, {"error": "refused", "stratum": "network", "reason": "no-wavelength"})
    assert classify(net)[0] == "network"
    assert classify(answer(409, {"error": "refused", "stratum": "application",
                                 "reason": "no-server-fits"}))[0] == "application"
    assert classify(answer(503, {"error": "unavailable", "reason": "sc-unreachable"}))[0] == ERROR
    assert classify(http.Answer(500, {}, b"oops"))[3:] == (None, "POST answered 500 oops")


def test_the_realised_timeline_and_the_comparison():
    def out(i, outcome, server=None, departure=None):
        o = Outcome(i, "1", None, due=i, holding=5.0, arrival=i + 0.5, outcome=outcome,
                    server=server, departure=departure)
        return o

    outs = [out(0, OK, "dc1-s0", 2.0), out(1, "network"), out(2, ERROR), out(3, OK, "dc4-s1")]
    trace = realised_trace(outs)
    assert [(t, h) for t, h, *_ in trace] == [(0.5, 1.5), (1.5, 5.0), (3.5, float("inf"))]
    result = agreement(outs, [(OK, "dc1-s0", 0), ("network", None, 0), (OK, "dc4-s0", 0)])
    assert (result["compared"], result["agree"]) == (3, 2)
    assert result["first_disagreements"][0]["request"] == 3
    assert lag_stats([0.1, 0.3, 0.2])["max_s"] == 0.3 and lag_stats([])["n"] == 0


@pytest.mark.parametrize("argv, message", [
    (["--live", "http://127.0.0.1:9"], "--live needs --token"),
    (["--live", "http://127.0.0.1:9", "--token", "t"], "the AC at http://127.0.0.1:9 does "
                                                       "not answer"),
    (["--live", "http://127.0.0.1:9", "--token", "t", "--time-scale", "0"], "--time-scale"),
    (["--live", "http://127.0.0.1:9", "--token", "t", "--k", "1,5", "--strategies", "GLB"],
     "one --k"),
])
def test_the_command_line_says_what_is_wrong_in_one_line(capsys, argv, message):
    assert sim.main(argv + ["--timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
