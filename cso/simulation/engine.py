"""Discrete-event simulation of the CSO strategies and of dynamic RWA (docs/results.md).

One implementation, two drivers: a simulated request goes through the very
code a live request does. The SSE strategy (`ac_app.sse`) chooses the
server over an `AppView` (`ac_app.resources`) and a `PceNetworkView` of an
in-process SA-PCE (`sc_app.pce` over `sc_app.ted`); the lightpath is then
reserved with `PCE.reserve` as the SC does for ``POST /asi/v1/lightpaths``.
Only time is simulated. `cso.simulation.stack` serves the same requests through the live
controllers' own objects in process (UA, procedure, DC agents, SA, flow installer) and gets
the same outcome for every request and the same metrics, much more slowly.

Traffic (one point = one traffic model, strategy, offered load and seed):

- Requests arrive as a Poisson process of rate ``load`` (Erlang; the mean
  holding time is 1) and hold their resources for an exponential time.
- ``cso``: a user at a uniformly random node asks for a server demand (cpu,
  memory, disk drawn uniformly from integer ranges). The strategy chooses the
  server; a server at the user's node needs no lightpath, any other one a
  lightpath from the user's node to the server's node, reserved with the PCE.
  A refusal by the strategy counts for its stratum; a PCE refusal at
  reservation is a network refusal (the server is given back, as the live AC
  rolls back).
- ``rwa``: a uniformly random pair of distinct nodes asks for a lightpath only.

Every request draws the same random numbers in the same order whatever
happens to it, so for one seed every strategy sees the same requests (common
random numbers: differences between strategies are measured with less noise).

Metrics over the requests after the warm-up (as defined in docs/results.md):

- ``network_blocking``: refused for lack of a path or wavelength ÷ requests;
- ``application_blocking``: refused because no server fits ÷ requests;
- ``global_blocking``: refused for either reason ÷ requests;
- ``load_balance_factor``: population standard deviation of A(s) over all DC
  servers, time-weighted from the first measured arrival to the last arrival;
- ``avg_hops``: mean hops of the lightpaths set up (local servers excluded);
  ``avg_hops_per_request`` counts those as 0 hops;
- ``mean_app_utilisation`` (time-weighted mean of A(s)) and ``link_occupancy``
  (time-weighted fraction of (link, wavelength) held), to read the operating point.

Several seeds give a mean and a 95% Student-t confidence interval per metric.
"""
from __future__ import annotations

import heapq
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from itertools import islice
from multiprocessing import get_context
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from ac_app import sse as strategies
from ac_app.resources import AppView, Demand
from cso.simulation.network import PceNetworkView
from ac_app.sse import NETWORK, Decision
from sc_app.pce import ORDERS, PCE, POLICIES, NoPath, Path
from sc_app.ted import TED
from topologies.loader import load as load_topology
from topologies.model import Topology

CSO = "cso"
RWA = "rwa"
TRAFFIC = (CSO, RWA)
#: The series name of plain RWA traffic (no strategy chooses anything).
RWA_SERIES = "RWA"
#: Metrics summarised per (series, load), in report order; the first four are the draft's.
METRICS = ("network_blocking", "global_blocking", "load_balance_factor", "avg_hops",
           "application_blocking", "avg_hops_per_request", "mean_app_utilisation",
           "link_occupancy")
MEAN_HOLDING = 1.0
#: One request: (arrival time, holding time, source node, destination node (rwa), demand).
Request = tuple[float, float, str, str, Demand]

# Two-sided 95% Student-t quantiles t(0.975, df) for df = 1..30.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, not {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964  # Cornish-Fisher expansion around the normal quantile: < 1e-3 off for df > 30
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def mean_ci(values: Iterable[Optional[float]]) -> dict[str, Any]:
    """Mean and half-width of the 95% t confidence interval of the values that are not None."""
    xs = [float(v) for v in values if v is not None and not math.isnan(v)]
    n = len(xs)
    if not n:
        return {"mean": None, "ci95": None, "n": 0}
    mean = sum(xs) / n
    if n == 1:
        return {"mean": mean, "ci95": None, "n": 1}
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    return {"mean": mean, "ci95": t975(n - 1) * sd / math.sqrt(n), "n": n}


@dataclass(frozen=True)
class Range:
    """A uniform distribution over the integers lo..hi (a constant when lo == hi)."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        if self.lo < 0 or self.hi < self.lo:
            raise ValueError(f"a range needs 0 <= lo <= hi, not {self.lo}-{self.hi}")

    @classmethod
    def parse(cls, text: str) -> "Range":
        """``"4"`` or ``"2-8"``."""
        lo, sep, hi = str(text).partition("-")
        try:
            return cls(int(lo), int(hi) if sep else int(lo))
        except ValueError:
            raise ValueError(f"expected N or LO-HI (integers), not {text!r}") from None

    def sample(self, rng: random.Random) -> int:
        """One draw (always consumes one random number, so request streams stay aligned)."""
        return self.lo + int(rng.random() * (self.hi - self.lo + 1))

    def __str__(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


@dataclass(frozen=True)
class Scenario:
    """Everything a simulation point shares with the others of its sweep but load and seed."""

    traffic: str = CSO
    topo: str = "nsfnet"
    wavelengths: Optional[int] = None      # None: the topology file's
    order: str = "hops"
    cpu: Range = Range(1, 4)
    memory: Range = Range(4, 16)
    disk: Range = Range(10, 50)
    server_cpu: Optional[int] = None       # None: the topology file's server capacities
    server_memory: Optional[float] = None
    server_disk: Optional[float] = None
    a: float = 0.5
    b: float = 0.5
    glb_k: int = 5
    requests: int = 10_000
    warmup: int = 1_000

    def __post_init__(self) -> None:
        if self.traffic not in TRAFFIC:
            raise ValueError(f"traffic must be one of {TRAFFIC}, not {self.traffic!r}")
        if self.order not in ORDERS:
            raise ValueError(f"path order must be one of {ORDERS}, not {self.order!r}")
        if self.requests < 1 or self.warmup < 0:
            raise ValueError("requests must be >= 1 and warmup >= 0")
        if self.wavelengths is not None and self.wavelengths < 1:
            raise ValueError(f"wavelengths must be >= 1, not {self.wavelengths}")


@dataclass(frozen=True)
class Series:
    """One line of a plot: a strategy (``RWA`` for rwa traffic) with its PCE's K and policy."""

    strategy: str
    k: int = 5
    policy: str = "first-fit"
    label: str = ""

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, not {self.policy!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, not {self.k}")
        if not self.label:
            object.__setattr__(self, "label", self.strategy)


@dataclass(frozen=True)
class Point:
    """One run: a scenario, a series, an offered load (Erlang) and a seed."""

    scenario: Scenario
    series: Series
    load: float
    seed: int


@lru_cache(maxsize=8)
def topology_for(topo: str, wavelengths: Optional[int], server_cpu: Optional[int],
                 server_memory: Optional[float], server_disk: Optional[float]) -> Topology:
    """The topology with the scenario's overrides of W and server capacities."""
    topology = load_topology(topo)
    links = topology.links
    if wavelengths is not None:
        links = tuple(replace(link, wavelengths=wavelengths) for link in links)
    nodes = topology.nodes
    if (server_cpu, server_memory, server_disk) != (None, None, None):
        nodes = {}
        for node_id, node in topology.nodes.items():
            if node.dc is not None:
                servers = tuple(replace(
                    server,
                    cpu=server.cpu if server_cpu is None else server_cpu,
                    memory_gb=server.memory_gb if server_memory is None else server_memory,
                    disk_gb=server.disk_gb if server_disk is None else server_disk)
                    for server in node.dc.servers)
                node = replace(node, dc=replace(node.dc, servers=servers))
            nodes[node_id] = node
    return replace(topology, links=links, nodes=nodes)


def scenario_topology(scenario: Scenario) -> Topology:
    """`topology_for` the scenario's fields."""
    return topology_for(scenario.topo, scenario.wavelengths, scenario.server_cpu,
                        scenario.server_memory, scenario.server_disk)


def make_strategy(name: str, scenario: Scenario, seed: int) -> strategies.Strategy:
    """The registered strategy ``name`` with the scenario's a, b, K (GLB) and a seeded RNG."""
    return strategies.build(name, rng=random.Random(f"{seed}:strategy"), a=scenario.a,
                            b=scenario.b, k=scenario.glb_k)


@dataclass
class Counters:
    """Raw counts and time integrals of one point after the warm-up."""

    requests: int = 0
    network_blocked: int = 0
    application_blocked: int = 0
    accepted: int = 0
    lightpaths: int = 0
    hops: int = 0
    measured_time: float = 0.0
    lbf_area: float = 0.0
    util_area: float = 0.0
    occupancy_area: float = 0.0
    wall_s: float = 0.0

    def metrics(self, servers: int, channels: int) -> dict[str, Optional[float]]:
        """The point's metrics (None where undefined: no servers, no lightpath)."""
        n = self.requests
        span = self.measured_time

        def per_request(count: int) -> Optional[float]:
            return count / n if n else None

        def per_time(area: float) -> Optional[float]:
            return area / span if span > 0 else None

        return {
            "network_blocking": per_request(self.network_blocked),
            "global_blocking": per_request(self.network_blocked + self.application_blocked),
            "load_balance_factor": per_time(self.lbf_area) if servers else None,
            "avg_hops": self.hops / self.lightpaths if self.lightpaths else None,
            "application_blocking": per_request(self.application_blocked),
            "avg_hops_per_request": self.hops / self.accepted if self.accepted else None,
            "mean_app_utilisation": per_time(self.util_area) if servers else None,
            "link_occupancy": (per_time(self.occupancy_area / channels)
                               if channels and span > 0 else None),
        }


class Simulator:
    """The state of one point: TED, SA-PCE, server pool, strategy, clock and departures."""

    def __init__(self, point: Point):
        sc, series = point.scenario, point.series
        self.point = point
        self.topology = scenario_topology(sc)
        self.ted = TED(self.topology)
        self.pce = PCE(self.ted, k=series.k, order=sc.order, policy=series.policy,
                       seed=point.seed)
        self.net = PceNetworkView(self.pce)
        self.app = AppView.from_topology(self.topology)
        self.strategy = (None if sc.traffic == RWA
                         else make_strategy(series.strategy, sc, point.seed))
        self.nodes = self.ted.node_ids
        self.a = sc.a
        self.position = {state.server: i for i, state in enumerate(self.app.servers)}
        self.util = self.app.utilisations(sc.a)
        self.sum_a = sum(self.util)
        self.sum_a2 = sum(u * u for u in self.util)
        self.held_channels = 0
        self.channels = sum(self.ted.wavelengths)
        self.now = 0.0
        self.departures: list[tuple[float, str, Optional[Path], Optional[str], Demand]] = []
        self.seq = 0
        self.owner = ""
        self.counters = Counters()
        self.measuring = False
        self._mark = 0.0

    # -- the SSE as the live AC calls it -------------------------------------------------------

    def decide(self, src: str, demand: Demand) -> Decision:
        """The strategy's choice on the simulator's views (the live AC's `Procedure` call)."""
        assert self.strategy is not None
        return self.strategy.choose(src, demand, self.app, self.net)

    # -- state changes -------------------------------------------------------------------------

    def _advance(self, t: float) -> None:
        """Integrate the time-weighted metrics up to ``t`` and move the clock there."""
        if self.measuring:
            dt = t - self._mark
            c = self.counters
            n = len(self.util)
            if n:
                mean = self.sum_a / n
                c.lbf_area += math.sqrt(max(0.0, self.sum_a2 / n - mean * mean)) * dt
                c.util_area += mean * dt
            c.occupancy_area += self.held_channels * dt
            c.measured_time += dt
            self._mark = t
        self.now = t

    def _server_changed(self, server_id: str, new_util: float) -> None:
        i = self.position[server_id]
        old = self.util[i]
        self.util[i] = new_util
        self.sum_a += new_util - old
        self.sum_a2 += new_util * new_util - old * old

    def _depart_until(self, t: float) -> None:
        heap = self.departures
        while heap and heap[0][0] <= t:
            when, owner, path, server_id, demand = heapq.heappop(heap)
            self._advance(when)
            if path is not None:
                self.pce.release(path, owner)
                self.held_channels -= path.hops
            if server_id is not None:
                state = self.app.release(server_id, demand)
                self._server_changed(server_id, state.app_utilisation(self.a))

    def _hold(self, until: float, path: Optional[Path], server_id: Optional[str],
              demand: Demand) -> None:
        # The owner string is unique and increasing: it also orders simultaneous departures.
        heapq.heappush(self.departures, (until, self.owner, path, server_id, demand))

    # -- one request ---------------------------------------------------------------------------

    def arrive(self, src: str, dst: Optional[str], demand: Demand, holding: float) -> str:
        """Serve one request at the current time; returns "ok", "network" or "application"."""
        owner = self.owner
        if self.strategy is None:                       # rwa: a lightpath only
            path = self.pce.reserve(src, dst, owner=owner) if dst is not None else None
            if not isinstance(path, Path):
                return NETWORK
            self._accepted(path, None, demand, holding)
            return "ok"
        decision = self.decide(src, demand)
        if not decision.ok:
            return decision.stratum
        server_id = decision.server.server
        path = None
        if decision.node != src:
            path = self.pce.reserve(src, decision.node, owner=owner)
            if isinstance(path, NoPath):
                return NETWORK
        state = self.app.allocate(server_id, demand)
        self._server_changed(server_id, state.app_utilisation(self.a))
        self._accepted(path, server_id, demand, holding)
        return "ok"

    def _accepted(self, path: Optional[Path], server_id: Optional[str], demand: Demand,
                  holding: float) -> None:
        c = self.counters
        if path is not None:
            self.held_channels += path.hops
            if self.measuring:
                c.lightpaths += 1
                c.hops += path.hops
        if self.measuring:
            c.accepted += 1
        self._hold(self.now + holding, path, server_id, demand)

    def run(self, trace: Optional[Iterable[Request]] = None) -> dict[str, Any]:
        """Simulate warm-up + requests arrivals; the point's metrics and run details.

        ``trace`` replaces the seed's Poisson stream (`iter_requests`) by given requests
        in time order (tests, replays); the first ``warmup`` of them are not measured.
        """
        sc, point = self.point.scenario, self.point
        if point.load <= 0:
            raise ValueError(f"offered load must be > 0 Erlang, not {point.load}")
        cso = sc.traffic == CSO
        c = self.counters
        start = time.perf_counter()
        total = sc.warmup + sc.requests
        if trace is None:
            trace = iter_requests(point.seed, sc, self.nodes, point.load)
        n = 0
        for n, (t, holding, src, dst, demand) in enumerate(islice(trace, total)):
            self._depart_until(t)
            self._advance(t)
            if n == sc.warmup:
                self.measuring, self._mark = True, t
            self.seq += 1
            self.owner = f"{self.seq:09d}"
            outcome = self.arrive(src, None if cso else dst, demand, holding)
            if self.measuring:
                c.requests += 1
                if outcome == NETWORK:
                    c.network_blocked += 1
                elif outcome != "ok":
                    c.application_blocked += 1
        c.wall_s = time.perf_counter() - start
        total = n + 1
        metrics = c.metrics(len(self.util) if cso else 0, self.channels)
        return {"series": point.series.label, "load": point.load, "seed": point.seed,
                "metrics": metrics, "requests": c.requests, "accepted": c.accepted,
                "network_blocked": c.network_blocked,
                "application_blocked": c.application_blocked,
                "wall_s": c.wall_s, "requests_per_s": total / c.wall_s if c.wall_s else None}


def run_point(point: Point) -> dict[str, Any]:
    """Simulate one point (picklable entry for worker processes)."""
    return Simulator(point).run()


def points(scenario: Scenario, series: Sequence[Series], loads: Sequence[float],
           seeds: Sequence[int]) -> list[Point]:
    """Every (series, load, seed), heaviest loads first (spreads long runs over the workers)."""
    return [Point(scenario, s, load, seed) for load in sorted(loads, reverse=True)
            for s in series for seed in seeds]


def execute(todo: Sequence[Point], jobs: int = 1,
            progress: Optional[Callable[[int, int, Point], None]] = None,
            run: Callable[[Point], dict[str, Any]] = run_point) -> list[dict[str, Any]]:
    """Run the points, on ``jobs`` processes when > 1; results in the order of ``todo``.

    ``run``: the driver of one point, this engine's by default (a module-level function,
    for the worker processes; `cso.simulation.stack.run_point` runs the live objects).
    """
    results: list[dict[str, Any]] = []
    if jobs <= 1 or len(todo) <= 1:
        for n, point in enumerate(todo, 1):
            results.append(run(point))
            if progress:
                progress(n, len(todo), point)
        return results
    with get_context("fork").Pool(min(jobs, len(todo))) as pool:
        for n, result in enumerate(pool.imap(run, todo), 1):
            results.append(result)
            if progress:
                progress(n, len(todo), todo[n - 1])
    return results


def summarise(series: Sequence[Series], loads: Sequence[float],
              results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (series, load): every metric's mean and 95% CI over the seeds, in input order."""
    by_key: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for result in results:
        by_key.setdefault((result["series"], result["load"]), []).append(result)
    rows = []
    for s in series:
        for load in loads:
            runs = by_key.get((s.label, load), [])
            row: dict[str, Any] = {"series": s.label, "strategy": s.strategy, "k": s.k,
                                   "policy": s.policy, "load": load, "seeds": len(runs)}
            for metric in METRICS:
                row[metric] = mean_ci(run["metrics"][metric] for run in runs)
            row["requests_per_s"] = mean_ci(run["requests_per_s"] for run in runs)["mean"]
            rows.append(row)
    return rows


def scenario_json(scenario: Scenario) -> dict[str, Any]:
    """The scenario's fields as JSON (the demand ranges as ``"LO-HI"``)."""
    params = asdict(scenario)
    for name in ("cpu", "memory", "disk"):
        params[name] = str(getattr(scenario, name))
    return params


def sweep(scenario: Scenario, series: Sequence[Series], loads: Sequence[float],
          seeds: Sequence[int], jobs: int = 1,
          progress: Optional[Callable[[int, int, Point], None]] = None,
          run: Callable[[Point], dict[str, Any]] = run_point) -> dict[str, Any]:
    """Run every point (with the driver ``run``, see `execute`) and summarise: the object
    ``cso sim --json`` prints."""
    start = time.perf_counter()
    results = execute(points(scenario, series, loads, seeds), jobs, progress, run)
    return {"parameters": {**scenario_json(scenario), "series": [asdict(s) for s in series],
                           "loads": list(loads), "seeds": list(seeds),
                           "mean_holding_time": MEAN_HOLDING},
            "metric_definitions": METRIC_NOTES,
            "results": summarise(series, loads, results),
            "wall_s": round(time.perf_counter() - start, 2)}


METRIC_NOTES = {
    "network_blocking": "refused for lack of a path/wavelength / requests after warm-up",
    "global_blocking": "refused for network or application reasons / requests after warm-up",
    "load_balance_factor": "population std of A(s)=a*mem+(1-a)*cpu over all DC servers, "
                           "time-weighted from the first measured arrival to the last arrival",
    "avg_hops": "mean hops of the lightpaths set up (a server at the user's node needs none)",
    "ci95": "half-width of the 95% Student-t confidence interval over the seeds",
}


def iter_requests(seed: int, scenario: Scenario, nodes: Sequence[str], load: float
                  ) -> Iterator[Request]:
    """The request stream of a seed: (arrival, holding, src, dst != src, demand) forever.

    Every request draws the same numbers in the same order, whatever the traffic model
    uses of them (cso ignores dst): for one seed every series sees the same requests.
    """
    rng = random.Random(f"{seed}:requests")
    t, n = 0.0, len(nodes)
    while True:
        t += rng.expovariate(load / MEAN_HOLDING)
        holding = rng.expovariate(1.0 / MEAN_HOLDING)
        i, j = int(rng.random() * n), int(rng.random() * (n - 1))
        demand = Demand(scenario.cpu.sample(rng), scenario.memory.sample(rng),
                        scenario.disk.sample(rng))
        yield t, holding, nodes[i], nodes[j + (j >= i)], demand
