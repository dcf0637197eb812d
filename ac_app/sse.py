"""SSE, the Server/VM Selection Engine of the CSO draft (§3.1, §5, §8): it chooses the server
that serves a user's request, or where a VM migrates to, from the ARAE's application view
and the SC's network view, by the strategy the AC is configured with (RB, AB, NB, GLB, ...).

`Sse` is the AC's engine: the configured strategy, built by name (`build`), which the
procedure (`ac_app.procedure`) and the migration (`ac_app.migration`) ask for each choice.
The strategies themselves are the plain objects below, registered by name (`STRATEGIES`,
`get`); ``cso sim`` calls them directly, thousands of times per second.

Every strategy is a plain object with one method,
``choose(src_node, demand, app, net) -> Choice | Refusal``: it reads an
`AppView` and asks a `NetworkView` (at most one ``evaluate`` call, reserving
nothing), and reserves nothing itself. The live AC (views from the ARAE and the
SC's ASI) and ``cso sim`` (views over its own pool and an in-process SA-PCE)
both drive this code, so for the same state they make the same choice.

- RB: a random server among those that fit (seeded `random.Random`).
- AB: the fitting server of least application utilisation A(s).
- NB: the fitting server reached from the source by the path of fewest hops.
- GLB: the K fitting servers of least A(s), then the one of least joint
  factor x = b·A/A_max + (1−b)·N/N_max, N(p) being Σ TE weight of its path.

RB and AB do not consult the network: the caller sets the path up afterwards
and may be blocked then. A server at the source node needs no lightpath; its
path is `LOCAL_PATH` (0 hops, N = 0) without asking the network. Ties always go
to the lower A(s) (where the strategy computes it), then to the `AppView` order
(node, DC, server id), so a choice depends only on the state and the seed.
See docs/strategies.md.
"""
from __future__ import annotations

import heapq
import inspect
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, ClassVar, Iterable, Mapping, Optional, Sequence, Union

from ac_app.resources import LOCAL_PATH, AppView, Demand, NetworkView, PathInfo, ServerState
from cso_base.wire import REASONS

APPLICATION = "application"
NETWORK = "network"
#: Reason of an application refusal: no server is up with room for the demand.
NO_SERVER_FITS = "no-server-fits"


@dataclass(frozen=True)
class Choice:
    """The server a strategy chose, its path when the network was consulted, and its scores."""

    server: ServerState
    path: Optional[PathInfo]
    details: Mapping[str, float] = field(default_factory=dict)
    ok: ClassVar[bool] = True

    @property
    def node(self) -> str:
        """The node of the chosen server's DC: the lightpath's destination."""
        return self.server.node


@dataclass(frozen=True)
class Refusal:
    """No choice: which stratum refused (`APPLICATION` or `NETWORK`), a reason code and text."""

    stratum: str
    reason: str
    detail: str = ""
    ok: ClassVar[bool] = False

    def __bool__(self) -> bool:
        return False


Decision = Union[Choice, Refusal]


class Strategy(ABC):
    """A named rule that picks a DC server (and judges its path) for one request."""

    name: ClassVar[str]

    @abstractmethod
    def choose(self, src_node: str, demand: Demand, app: AppView,
               net: NetworkView) -> Decision:
        """The server for a request from ``src_node`` needing ``demand``, or why none."""

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{self.name}({params})"


#: Strategy classes by name; `get` builds one.
STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make a strategy available by its ``name``."""
    STRATEGIES[cls.name] = cls
    return cls


def get(name: str, **params: Any) -> Strategy:
    """A strategy by name (case-insensitive) with its parameters; ValueError names the choices."""
    cls = STRATEGIES.get(name.upper())
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    known = list(inspect.signature(cls).parameters)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"{cls.name} takes no parameter(s) {unknown}; it takes {known}")
    return cls(**params)


def build(name: str, **offered: Any) -> Strategy:
    """The strategy ``name`` with those of the ``offered`` parameters it takes (others are
    ignored, e.g. GLB's ``b`` for AB); ValueError for an unknown name."""
    cls = STRATEGIES.get(name.upper())
    if cls is None:
        return get(name)  # raises the registry's ValueError naming the choices
    accepted = inspect.signature(cls).parameters
    return get(name, **{key: value for key, value in offered.items() if key in accepted})


class Sse:
    """The SSE of the CSO draft: the AC's configured strategy, making the procedure's choices."""

    def __init__(self, strategy: Strategy):
        self.strategy = strategy

    @classmethod
    def named(cls, name: str, **offered: Any) -> "Sse":
        """The SSE running the strategy ``name`` with those of ``offered`` it takes (`build`)."""
        return cls(build(name, **offered))

    @property
    def name(self) -> str:
        """The strategy's name, as requests record it."""
        return self.strategy.name

    def choose(self, src_node: str, demand: Demand, app: AppView,
               net: NetworkView) -> Decision:
        """The server for a request from ``src_node`` needing ``demand``, or why none."""
        return self.strategy.choose(src_node, demand, app, net)

    def __repr__(self) -> str:
        return f"Sse({self.strategy!r})"


# -- shared steps ---------------------------------------------------------------------------

def _fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], not {value!r}")
    return float(value)


def _no_server(demand: Demand, app: AppView) -> Refusal:
    up = sum(1 for state in app.servers if state.up)
    return Refusal(APPLICATION, NO_SERVER_FITS,
                   f"none of {len(app)} server(s), {up} up, has room for {demand.cpu} cpu,"
                   f" {demand.memory_gb} GB memory, {demand.disk_gb} GB disk")


def _paths(net: NetworkView, src: str, nodes: Iterable[str]) -> dict[str, PathInfo]:
    """The path to each distinct node: one evaluate call for the remote ones, none if all local."""
    distinct = list(dict.fromkeys(nodes))
    remote = [node for node in distinct if node != src]
    answers = net.evaluate(src, remote) if remote else {}
    return {node: LOCAL_PATH if node == src else answers[node] for node in distinct}


def _reason_rank(reason: Optional[str]) -> int:
    # The PCE lists its reasons in the order its checks run: a later one means the
    # request got further (it is what a relaxed request would hit next). Codes it
    # does not know (e.g. the ASI's endpoint errors) say the least.
    return REASONS.index(reason) if reason in REASONS else -1


def _network_refusal(src: str, tried: Sequence[tuple[str, PathInfo]]) -> Refusal:
    """Refusal naming the most informative reason among unreachable nodes (first one on ties)."""
    node, info = max(tried, key=lambda item: _reason_rank(item[1].reason))
    return Refusal(NETWORK, info.reason or "infeasible",
                   f"no feasible path from {src} to any of {len(tried)} candidate node(s);"
                   f" to {node}: {info.detail or info.reason}")


# -- the strategies of the CSO draft §8 -----------------------------------------------------

@register
class RandomBalancing(Strategy):
    """RB: a uniformly random server among those that fit the demand."""

    name = "RB"

    def __init__(self, rng: Union[random.Random, int] = 0):
        self.rng = rng if isinstance(rng, random.Random) else random.Random(rng)

    def choose(self, src_node: str, demand: Demand, app: AppView,
               net: NetworkView) -> Decision:
        """A random fitting server; the network is not consulted."""
        fitting = app.fitting(demand)
        if not fitting:
            return _no_server(demand, app)
        return Choice(fitting[self.rng.randrange(len(fitting))], None,
                      {"candidates": len(fitting)})


@register
class ApplicationBalancing(Strategy):
    """AB: the fitting server of least application utilisation A(s)."""

    name = "AB"

    def __init__(self, a: float = 0.5):
        self.a = _fraction("a", a)

    def choose(self, src_node: str, demand: Demand, app: AppView,
               net: NetworkView) -> Decision:
        """The fitting server of least A(s); the network is not consulted."""
        fitting = app.fitting(demand)
        if not fitting:
            return _no_server(demand, app)
        a = self.a
        # min() keeps the first of equals: the AppView order breaks ties.
        best = min(fitting, key=lambda state: state.app_utilisation(a))
        return Choice(best, None, {"A": best.app_utilisation(a)})


@register
class NetworkBalancing(Strategy):
    """NB: the fitting server whose node the source reaches with the fewest hops."""

    name = "NB"

    def __init__(self, a: float = 0.5):
        self.a = _fraction("a", a)

    def choose(self, src_node: str, demand: Demand, app: AppView,
               net: NetworkView) -> Decision:
        """Fewest hops among feasible paths to fitting servers; ties to lower A(s)."""
        fitting = app.fitting(demand)
        if not fitting:
            return _no_server(demand, app)
        paths = _paths(net, src_node, (state.node for state in fitting))
        feasible = [(state, paths[state.node]) for state in fitting
                    if paths[state.node].feasible]
        if not feasible:
            return _network_refusal(src_node, list(paths.items()))
        a = self.a
        best, path = min(feasible, key=lambda item: (item[1].hops, item[0].app_utilisation(a)))
        return Choice(best, path, {"hops": path.hops, "A": best.app_utilisation(a)})


@register
class GlobalLoadBalancing(Strategy):
    """GLB: the K fitting servers of least A(s), then the least joint factor x (CSO draft §8).

    x = b·A/A_max + (1−b)·N/N_max with N(p) = ``te_cost`` of the path (Σ of the
    SC's load-dependent TE weights; 0 at the source node). A_max is the largest
    A of the K candidates, N_max the largest N of those with a feasible path
    (N is undefined for the others); a maximum of 0 makes its term 0.
    """

    name = "GLB"

    def __init__(self, a: float = 0.5, b: float = 0.5, k: int = 5):
        self.a = _fraction("a", a)
        self.b = _fraction("b", b)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, not {k!r}")
        self.k = k

    def choose(self, src_node: str, demand: Demand, app: AppView,
               net: NetworkView) -> Decision:
        """Step 1 by A(s) alone, step 2 by x over one evaluation of the K candidates."""
        a, b = self.a, self.b
        scored = [(state.app_utilisation(a), state) for state in app.servers if state.fits(demand)]
        if not scored:
            return _no_server(demand, app)
        # nsmallest is documented equal to sorted(...)[:k]: stable, so ties keep AppView order.
        top = heapq.nsmallest(self.k, scored, key=itemgetter(0))
        paths = _paths(net, src_node, (state.node for _, state in top))
        feasible = [(util, state, paths[state.node]) for util, state in top
                    if paths[state.node].feasible]
        if not feasible:
            return _network_refusal(src_node, list(paths.items()))
        a_max = top[-1][0]
        n_max = max(path.te_cost for _, _, path in feasible)

        def joint(util: float, n: float) -> float:
            return ((b * util / a_max if a_max > 0 else 0.0)
                    + ((1.0 - b) * n / n_max if n_max > 0 else 0.0))

        # min() keeps the first of equals: ties go to lower A, then AppView order.
        x, util, state, path = min(((joint(util, path.te_cost), util, state, path)
                                    for util, state, path in feasible), key=itemgetter(0))
        return Choice(state, path, {"x": x, "A": util, "N": path.te_cost, "A_max": a_max,
                                    "N_max": n_max, "hops": path.hops,
                                    "candidates": len(top), "feasible": len(feasible)})


# -- beyond GLB -----------------------------------------------------------------------------
# Improved strategies (issue 6 item 5) go here, each a registered `Strategy`
# subclass reading the same two views, so that `cso sim` and the live AC can
# select it by name like the four above. `PathInfo.free_wavelengths` and the
# `ServerState` utilisations are there for rules that weigh the current
# scarcity of wavelengths against that of servers.


@register
class DistinctDcGlobalLoadBalancing(GlobalLoadBalancing):
    """GLB-D: GLB over the least-loaded fitting server of each DC, so the K candidates differ in DC.

    GLB's step 1 takes the K fitting servers of least A(s) wherever they are; identical
    (e.g. idle) servers tie in `AppView` order, so the K often share one or two DCs and
    step 2's network term has little to choose from. GLB-D first keeps, per DC, its fitting
    server of least A(s) (the first in `AppView` order on ties), then runs GLB's two steps
    unchanged over those: the K DCs whose best server is least loaded, then the least x.
    Within one DC the servers share the node, hence the path and N, so the kept one has the
    least x of them; dropping the others frees step 1's K places for other DCs. With K ≥
    the number of DCs, step 1 keeps every DC with room.
    """

    name = "GLB-D"

    def choose(self, src_node: str, demand: Demand, app: AppView,
               net: NetworkView) -> Decision:
        """GLB's choice among each DC's least-loaded fitting server (one evaluate call)."""
        a = self.a
        best: dict[str, tuple[float, ServerState]] = {}
        for state in app.fitting(demand):
            util = state.app_utilisation(a)
            # Strict <: on equal A the first server in AppView order stays.
            if state.dc not in best or util < best[state.dc][0]:
                best[state.dc] = (util, state)
        if not best:
            return _no_server(demand, app)
        return super().choose(src_node, demand, AppView(state for _, state in best.values()),
                              net)
