"""``cso sim --live``: the simulator's request trace replayed against a running AC (issue 6 item 6).

For every load and seed, `cso.simulation.engine.iter_requests` gives exactly the requests
``cso sim`` simulates. A `Replayer` plays them in time order against the AC's UAI, one event at a
time, ``--time-scale`` real seconds per simulated time unit (the mean holding time): an arrival is
``POST /uai/v1/requests`` (type vm, from the user host of the request's node, the demand's
resources, a ``duration_s`` well beyond the holding so the AC's own expiry is only a
backstop), a departure of an accepted request is its ``DELETE``. Outcomes: 201 active =
accepted, 409 refused with stratum network or application = blocked, anything else (5xx,
timeouts, ...) = an error, counted and reported. Whatever is still held at the end is released.

The live run's metrics are the simulator's own (`Counters.metrics`): a `_Mirror` simulator
replays the *realised* timeline (when each call was made) applying the live AC's outcomes,
servers and hops instead of choosing, so the time-weighted load balance factor integrates the
live servers' A(s). A `TracedSimulator` (`cso.simulation.outcomes`) replays the same timeline
choosing itself, and each request's live choice (outcome, server) is compared with its choice:
the replay processes events in the trace's order, so a correct AC agrees on every request
however late the replayer runs. ``cso sim`` of the same scenario and seeds is reported next to
the live figures.

Before playing, the scenario is checked against the running system (strategy from
``GET /uai/v1/health``, every DC server's capacity and an idle AC from ``/uai/v1/dcs`` and
``/uai/v1/requests``; with ``--sc-url`` the wavelengths per fibre and an empty network from
the SC's ``/smi/v1/links``); a mismatch is a `LiveError`. The AC's GLB parameters (a, b, K)
and the SC's PCE settings (K, order, policy) are not visible over these interfaces: they are
assumed to be the scenario's (``etc/ac.conf`` and ``etc/sc.conf`` use the defaults); a
difference shows as disagreements. RB draws from the AC's own random generator, so only the
deterministic strategies (AB, NB, GLB, GLB-D) can agree request by request.
"""
from __future__ import annotations

import heapq
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence
from urllib.parse import quote

from ac_app.resources import Demand
from ac_app.sse import APPLICATION, NETWORK
from cso_base import http
from cso.simulation.engine import (CSO, Point, Request, Scenario, Series, Simulator, iter_requests,
                                   scenario_topology, summarise)
from cso.simulation.outcomes import TracedSimulator
from topologies.model import Topology

OK = "ok"
ERROR = "error"
#: Disagreements listed per run (the count is always complete).
SHOWN_DISAGREEMENTS = 5
#: Errors listed per run.
SHOWN_ERRORS = 5
Send = Callable[..., http.Answer]


class LiveError(Exception):
    """Why a live run cannot start: one line naming what is wrong (exit code 2)."""


class Uai:
    """A provider manager's calls to a running AC's UAI."""

    def __init__(self, url: str, token: str, timeout: float = 30.0, send: Send = http.request):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.send = send

    def call(self, method: str, path: str, body: Any = None) -> http.Answer:
        """One request; raises `http.Unreachable` when the AC does not answer."""
        return self.send(method, self.url + path, body, token=self.token, timeout=self.timeout)

    def get(self, path: str) -> Any:
        """GET a JSON document for a check; `LiveError` on anything but 200."""
        try:
            answer = self.call("GET", path)
        except http.Unreachable as exc:
            raise LiveError(f"the AC at {self.url} does not answer: {exc}") from None
        if answer.status == 401:
            raise LiveError(f"the AC at {self.url} refuses the token (401 unauthorized)")
        if answer.status == 403:
            raise LiveError(f"the token is not a provider manager's (403 on GET {path})")
        if answer.status != 200 or not isinstance(answer.json, dict):
            raise LiveError(f"GET {self.url}{path} answered {answer.status}, not a JSON 200")
        return answer.json


# -- does the scenario describe the running system? ------------------------------------------

def _servers_of(topology: Topology) -> dict[str, tuple[str, float, float, float]]:
    return {server.id: (node.id, float(server.cpu), float(server.memory_gb),
                        float(server.disk_gb))
            for node in topology.nodes.values() if node.dc is not None
            for server in node.dc.servers}


def check_dcs(dcs: Sequence[dict[str, Any]], topology: Topology) -> None:
    """The AC's DCs have the scenario's servers, every DC is available and nothing is used."""
    live: dict[str, tuple[str, float, float, float]] = {}
    for dc in dcs:
        if not dc.get("available"):
            raise LiveError(f"DC {dc.get('dc')} is not available at the AC ({dc.get('error')})")
        for s in dc.get("servers", []):
            live[s["server"]] = (str(dc["node"]), float(s["cpu_total"]),
                                 float(s["memory_total"]), float(s["disk_total"]))
            if s["cpu_used"] or s["memory_used"] or s["disk_used"]:
                raise LiveError(f"server {s['server']} is in use: the live run needs idle DCs")
    wanted = _servers_of(topology)
    for server in sorted(set(live) | set(wanted)):
        mine, theirs = wanted.get(server), live.get(server)
        if mine != theirs:
            raise LiveError(
                f"the scenario does not match the running AC: server {server} is "
                f"{_describe(mine)} in {topology.name} (--topo, --server-*) but "
                f"{_describe(theirs)} at the AC")


def _describe(server: Optional[tuple[str, float, float, float]]) -> str:
    if server is None:
        return "missing"
    node, cpu, memory, disk = server
    return f"at node {node} with {cpu:g} cpu, {memory:g} GB memory, {disk:g} GB disk"


def check_links(links: Sequence[dict[str, Any]], topology: Topology) -> None:
    """The SC's fibres have the scenario's wavelengths and hold none (SMI ``/smi/v1/links``)."""
    wanted = {link.id: link.wavelengths for link in topology.links}
    live = {link["id"]: link["wavelengths"] for link in links}
    for link_id in sorted(set(wanted) | set(live)):
        if wanted.get(link_id) != live.get(link_id):
            raise LiveError(f"the scenario does not match the running SC: fibre {link_id} has "
                            f"{wanted.get(link_id)} wavelengths in {topology.name} (--topo, "
                            f"--wavelengths) but {live.get(link_id)} at the SC")
    used = sum(len(link.get("used", ())) for link in links)
    if used:
        raise LiveError(f"the SC holds {used} wavelength(s): the live run needs an idle network")


def check_system(uai: Uai, scenario: Scenario, strategy: str,
                 sc_url: Optional[str] = None, send: Send = http.request) -> dict[str, Any]:
    """Check the running system against the scenario; what was checked, or `LiveError`."""
    if scenario.traffic != CSO:
        raise LiveError("--live replays cso traffic only (the AC serves users, not RWA pairs)")
    health = uai.get("/uai/v1/health")
    if str(health.get("strategy", "")).upper() != strategy.upper():
        raise LiveError(f"the AC runs strategy {health.get('strategy')}, the scenario asks "
                        f"for {strategy} (--strategies)")
    topology = scenario_topology(scenario)
    check_dcs(uai.get("/uai/v1/dcs")["dcs"], topology)
    for status in ("active", "pending"):
        busy = uai.get(f"/uai/v1/requests?status={status}")["requests"]
        if busy:
            raise LiveError(f"the AC has {len(busy)} {status} request(s): the live run needs "
                            f"an idle AC (first: {busy[0]['id']})")
    checked = ["strategy", "dc-servers", "idle-ac"]
    if sc_url:
        try:
            answer = send("GET", sc_url.rstrip("/") + "/smi/v1/links", timeout=uai.timeout)
        except http.Unreachable as exc:
            raise LiveError(f"the SC at {sc_url} does not answer: {exc}") from None
        if answer.status != 200 or not isinstance(answer.json, dict):
            raise LiveError(f"GET {sc_url}/smi/v1/links answered {answer.status}")
        check_links(answer.json["links"], topology)
        checked += ["wavelengths", "idle-network"]
    return {"strategy": health["strategy"], "checked": checked}


# -- the replay ------------------------------------------------------------------------------

@dataclass
class Outcome:
    """One request as the live AC served it; times in simulated units from the replay's start."""

    index: int
    src: str
    demand: Demand
    due: float                 # scheduled arrival
    holding: float             # scheduled holding time
    arrival: float = 0.0       # when the POST was sent
    outcome: str = ERROR       # OK, NETWORK, APPLICATION or ERROR
    server: Optional[str] = None
    hops: int = 0
    request_id: Optional[str] = None
    departure: Optional[float] = None  # when the DELETE was sent (None: never, or at the end)
    detail: str = ""


@dataclass
class Replay:
    """What one seed's replay did: every request's outcome, lags and call times, errors."""

    outcomes: list[Outcome]
    lags_s: list[float] = field(default_factory=list)
    calls_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def vm_request_body(host: str, demand: Demand,
                    duration_s: Optional[float] = None) -> dict[str, Any]:
    """The UAI body of a vm request from user host ``host`` (the AC's default duration when
    None)."""
    body: dict[str, Any] = {"type": "vm", "src": host, "cpu": demand.cpu,
                            "memory_gb": demand.memory_gb, "disk_gb": demand.disk_gb}
    if duration_s is not None:
        body["duration_s"] = duration_s
    return body


def classify(answer: http.Answer) -> tuple[str, Optional[str], int, Optional[str], str]:
    """A POST's answer -> (outcome, server, hops, request id, detail)."""
    body = answer.json if isinstance(answer.json, dict) else {}
    if answer.status == 201 and body.get("status") == "active":
        hops = int((body.get("lightpath") or {}).get("hops") or 0)
        return OK, body.get("server"), hops, body.get("id"), ""
    if (answer.status == 409 and body.get("error") == "refused"
            and body.get("stratum") in (NETWORK, APPLICATION)):
        return body["stratum"], None, 0, body.get("id"), str(body.get("reason", ""))
    text = answer.body[:200].decode("utf-8", "replace") if not body else (
        f"{body.get('error')}: {body.get('reason')} {body.get('detail') or ''}".strip())
    return ERROR, None, 0, body.get("id"), f"POST answered {answer.status} {text}"


class Replayer:
    """Plays one request trace against the AC in time order: arrivals POST, departures DELETE."""

    def __init__(self, uai: Uai, topology: Topology, scale: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if not scale > 0:
            raise LiveError(f"--time-scale must be > 0 seconds, not {scale}")
        self.uai = uai
        self.scale = scale
        self.clock = clock
        self.sleep = sleep
        plan = topology.addresses
        self.hosts = {node: plan.user_ip(node) for node in plan.indices}
        self._start = 0.0
        self._owner: Optional[str] = None

    def play(self, trace: Iterable[Request]) -> Replay:
        """Replay the requests (and the departures of those accepted); release all at the end."""
        replay = Replay([])
        held: list[tuple[float, int]] = []        # (scheduled departure, index)
        self._start = self.clock()
        try:
            for index, (t, holding, src, _dst, demand) in enumerate(trace):
                while held and held[0][0] <= t:
                    due, i = heapq.heappop(held)
                    self._wait(due, replay)
                    self._release(replay.outcomes[i], replay)
                self._wait(t, replay)
                outcome = self._arrive(Outcome(index, src, demand, t, holding), replay)
                replay.outcomes.append(outcome)
                if outcome.outcome == OK:
                    heapq.heappush(held, (t + holding, index))
        finally:
            for _, i in sorted(held):             # the end: not measured, not timed
                self._release(replay.outcomes[i], replay, at_end=True)
            self._release_strays(replay)
            replay.wall_s = self.clock() - self._start
        return replay

    def _now(self) -> float:
        return (self.clock() - self._start) / self.scale

    def _wait(self, due: float, replay: Replay) -> None:
        late = self.clock() - (self._start + due * self.scale)
        if late < 0:
            self.sleep(-late)
            late = max(0.0, self.clock() - (self._start + due * self.scale))
        replay.lags_s.append(late)

    def _timed(self, method: str, path: str, body: Any, replay: Replay) -> http.Answer:
        start = self.clock()
        try:
            return self.uai.call(method, path, body)
        finally:
            replay.calls_s.append(self.clock() - start)

    def _arrive(self, out: Outcome, replay: Replay) -> Outcome:
        body = vm_request_body(self.hosts[out.src], out.demand,
                               round(max(60.0, 3 * out.holding * self.scale + 60.0), 3))
        out.arrival = self._now()
        try:
            answer = self._timed("POST", "/uai/v1/requests", body, replay)
        except http.Unreachable as exc:
            out.detail = f"POST: {exc}"
        else:
            out.outcome, out.server, out.hops, out.request_id, out.detail = classify(answer)
            if out.outcome == OK and self._owner is None and isinstance(answer.json, dict):
                self._owner = answer.json.get("owner")
        if out.outcome == ERROR:
            replay.errors.append(f"request {out.index} ({out.src}): {out.detail}")
        return out

    def _release(self, out: Outcome, replay: Replay, at_end: bool = False) -> None:
        if not at_end:
            out.departure = self._now()
        path = f"/uai/v1/requests/{quote(str(out.request_id))}"
        try:
            answer = self._timed("DELETE", path, None, replay)
        except http.Unreachable as exc:
            replay.errors.append(f"request {out.index}: DELETE {out.request_id}: {exc}")
            return
        if answer.status != 200:
            replay.errors.append(f"request {out.index}: DELETE {out.request_id} answered "
                                 f"{answer.status} {answer.body[:200]!r}")

    def _release_strays(self, replay: Replay) -> None:
        """Release requests of ours the AC holds though we do not know them (lost answers)."""
        if self._owner is None:
            return
        try:
            answer = self.uai.call("GET", "/uai/v1/requests?status=active")
        except http.Unreachable as exc:
            replay.errors.append(f"the end: listing active requests: {exc}")
            return
        strays = [r for r in (answer.json or {}).get("requests", [])
                  if r.get("owner") == self._owner]
        for record in strays:
            replay.errors.append(f"the end: {record['id']} was active though not known "
                                 f"to the replay; released")
            try:
                self.uai.call("DELETE", f"/uai/v1/requests/{quote(record['id'])}")
            except http.Unreachable as exc:
                replay.errors.append(f"the end: DELETE {record['id']}: {exc}")


# -- the live run's metrics and the request-by-request check ---------------------------------

class Hops:
    """A lightpath set up outside the simulator, as its counters need it: its hop count."""

    __slots__ = ("hops",)

    def __init__(self, hops: int):
        self.hops = hops


class _NoReservations:
    """The mirror's PCE: the live SC reserved the lightpaths; nothing to give back here."""

    @staticmethod
    def release(path: Any, owner: str) -> None:
        """Nothing was reserved in the simulator."""


class _Mirror(Simulator):
    """The simulator's state and metrics, driven by the live AC's outcomes instead of choosing."""

    def __init__(self, point: Point, outcomes: Sequence[Outcome]):
        super().__init__(point)
        self.pce = _NoReservations()              # type: ignore[assignment]
        self._outcomes = iter(outcomes)

    def arrive(self, src: str, dst: Optional[str], demand: Demand, holding: float) -> str:
        """Apply the live outcome of the next request."""
        out = next(self._outcomes)
        if out.outcome != OK:
            return out.outcome
        if out.server not in self.app:
            raise LiveError(f"the AC placed request {out.index} on server {out.server}, "
                            f"which the scenario's topology does not have")
        state = self.app.allocate(out.server, demand)
        self._server_changed(out.server, state.app_utilisation(self.a))
        self._accepted(Hops(out.hops) if out.hops else None, out.server,  # type: ignore
                       demand, holding)
        return OK


def realised_trace(outcomes: Sequence[Outcome]) -> list[Request]:
    """The requests the AC answered (errors left out: the AC rolled them back), at the times
    the replay made its calls; a request released only at the end holds forever."""
    trace = []
    for out in outcomes:
        if out.outcome == ERROR:
            continue
        if out.outcome == OK:
            holding = math.inf if out.departure is None else out.departure - out.arrival
        else:
            holding = out.holding
        trace.append((out.arrival, holding, out.src, out.src, out.demand))
    return trace


def agreement(outcomes: Sequence[Outcome],
              choices: Sequence[tuple[str, Optional[str], int]]) -> dict[str, Any]:
    """Live against simulated choices, request by request (errors are not compared)."""
    answered = [out for out in outcomes if out.outcome != ERROR]
    agree = hops_agree = 0
    first: list[dict[str, Any]] = []
    for out, (outcome, server, hops) in zip(answered, choices):
        same = out.outcome == outcome and out.server == server
        agree += same
        hops_agree += same and out.hops == hops
        if not same and len(first) < SHOWN_DISAGREEMENTS:
            first.append({"request": out.index, "src": out.src, "live": [out.outcome, out.server],
                          "sim": [outcome, server], "detail": out.detail})
    return {"compared": len(answered), "agree": agree, "same_hops": hops_agree,
            "first_disagreements": first}


def lag_stats(values: Sequence[float]) -> dict[str, Optional[float]]:
    """Mean, median, 95th percentile and maximum (seconds) of lags or call times."""
    if not values:
        return {"mean_s": None, "p50_s": None, "p95_s": None, "max_s": None, "n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {"mean_s": statistics.fmean(ordered), "p50_s": statistics.median(ordered),
            "p95_s": p95, "max_s": ordered[-1], "n": len(ordered)}


# -- one point, and the whole run ------------------------------------------------------------

def run_point(point: Point, uai: Uai, scale: float,
              clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Replay one (load, seed); the live metrics, the simulation's, agreement, lag, errors."""
    scenario = point.scenario
    sim = Simulator(point)
    trace = list(_take(iter_requests(point.seed, scenario, sim.nodes, point.load),
                       scenario.warmup + scenario.requests))
    simulated = sim.run(iter(trace))
    replay = Replayer(uai, sim.topology, scale, clock, sleep).play(trace)
    timeline = realised_trace(replay.outcomes)
    live = _Mirror(point, [o for o in replay.outcomes if o.outcome != ERROR]).run(timeline)
    checker = TracedSimulator(point)
    checker.run(iter(timeline))
    choices = [(s.outcome, s.server, s.hops) for s in checker.served]
    return {"live": {**live, "errors": len(replay.errors), "replay_wall_s": replay.wall_s},
            "sim": simulated, "agreement": agreement(replay.outcomes, choices),
            "lags_s": replay.lags_s, "calls_s": replay.calls_s,
            "errors": replay.errors[:SHOWN_ERRORS], "error_count": len(replay.errors)}


def _take(iterator: Iterable[Request], n: int) -> Iterable[Request]:
    for i, item in enumerate(iterator):
        if i >= n:
            return
        yield item


def live_sweep(scenario: Scenario, series: Series, loads: Sequence[float],
               seeds: Sequence[int], uai: Uai, scale: float, sc_url: Optional[str] = None,
               progress: bool = False, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Check the system, replay every (load, seed) and summarise live next to simulated."""
    start = clock()
    system = check_system(uai, scenario, series.strategy, sc_url, uai.send)
    runs: list[dict[str, Any]] = []
    per_load: list[dict[str, Any]] = []
    for load in loads:
        lags: list[float] = []
        calls: list[float] = []
        for seed in seeds:
            if runs:                # what the previous replay left would show here
                check_system(uai, scenario, series.strategy, sc_url, uai.send)
            run = run_point(Point(scenario, series, load, seed), uai, scale, clock, sleep)
            run.update(load=load, seed=seed)
            runs.append(run)
            lags += run.pop("lags_s")
            calls += run.pop("calls_s")
            if progress:
                _report(run)
        mine = [r for r in runs if r["load"] == load]
        per_load.append({
            "load": load, "lag": lag_stats(lags), "call": lag_stats(calls),
            "errors": sum(r["error_count"] for r in mine),
            "compared": sum(r["agreement"]["compared"] for r in mine),
            "agree": sum(r["agreement"]["agree"] for r in mine),
            "same_hops": sum(r["agreement"]["same_hops"] for r in mine)})
    return {"parameters": {"live": {"ac_url": uai.url, "time_scale_s": scale, "sc_url": sc_url,
                                    **system}},
            "results": summarise([series], loads, [r["live"] for r in runs]),
            "simulation": summarise([series], loads, [r["sim"] for r in runs]),
            "per_load": per_load,
            "runs": [_run_json(r) for r in runs],
            "wall_s": round(clock() - start, 2)}


def _run_json(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("load", "seed", "agreement", "error_count", "errors")
    return {**{key: run[key] for key in keys}, "live_metrics": run["live"]["metrics"],
            "sim_metrics": run["sim"]["metrics"], "replay_wall_s": run["live"]["replay_wall_s"]}


def _report(run: dict[str, Any]) -> None:
    agree = run["agreement"]
    print(f"cso sim --live: load {run['load']:g}, seed {run['seed']}: "
          f"{agree['agree']}/{agree['compared']} choices as simulated, "
          f"{run['error_count']} error(s), {run['live']['replay_wall_s']:.0f} s",
          file=sys.stderr, flush=True)


def summary_text(summary: dict[str, Any], table: Callable[[dict[str, Any]], str]) -> str:
    """Human summary: live and simulated tables, agreement, lag and errors per load."""
    live = summary["parameters"]["live"]
    lines = [f"live: {live['ac_url']} ({live['strategy']}), {live['time_scale_s']:g} s per "
             f"time unit; checked: {', '.join(live['checked'])}",
             table({"results": summary["results"], "wall_s": summary["wall_s"]}),
             "simulation of the same scenario and seeds:",
             table({"results": summary["simulation"], "wall_s": 0.0}).rsplit("\n", 1)[0]]
    for row in summary["per_load"]:
        lag, call = row["lag"], row["call"]
        lines.append(
            f"load {row['load']:g}: {row['agree']}/{row['compared']} requests chose as "
            f"simulated ({row['same_hops']} with the same hops); {row['errors']} error(s); "
            f"lag mean {_ms(lag['mean_s'])}, p95 {_ms(lag['p95_s'])}, max {_ms(lag['max_s'])}; "
            f"UAI call p50 {_ms(call['p50_s'])}, p95 {_ms(call['p95_s'])}")
    for run in summary["runs"]:                     # the first of each kind per run
        where = f"load {run['load']:g} seed {run['seed']}"
        for item in run["agreement"]["first_disagreements"][:1]:
            lines.append(f"  first disagreement, {where}: request {item['request']} from "
                         f"node {item['src']}: live {item['live']}, simulated {item['sim']}")
        for error in run["errors"][:1]:
            lines.append(f"  first of {run['error_count']} error(s), {where}: {error}")
    return "\n".join(lines)


def _ms(seconds: Optional[float]) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"
