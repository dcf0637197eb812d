"""SA-PCE: constrained lightpath computation with wavelength continuity.

How a request is answered:

1. The *admissible* routes are the simple paths over usable links that avoid
   the excluded nodes, links and SRLGs and the links whose per-wavelength
   capacity is below the requested bandwidth, and that visit every
   ``include_nodes`` node (searched among the first ``include_scan`` routes).
2. The first ``k`` admissible routes in the PCE's order are its candidates:
   ``hops`` or ``length`` (km), each ties broken by the tuple of node ids; or
   ``te``: the k routes of least base TE weight, tried in order of their
   current load-dependent TE cost (`sc_app.ted`), so the choice follows load.
   They are generated lazily (Yen) and cached per (src, dst, filters) until
   the TED's ``version`` changes; occupancy changes keep the cache.
3. Candidates are tried in order; the first whose hops, delay and jitter fit
   and that has a wavelength free on every link (continuity) wins, and the
   wavelength policy picks one of those: first-fit (lowest index),
   random-fit (seeded RNG) or most-used (the free one held on most links
   network-wide, ties to the lowest index).

When nothing fits, `NoPath.reason` names the constraint that removed the last
candidate, the filters being applied in this order: unknown-node, same-node,
disconnected (no route even over all usable links), excluded (the exclusions
cut src from dst), bandwidth-exceeded, include-unsatisfied, then per
candidate hops-exceeded, delay-exceeded, jitter-exceeded, no-wavelength. A
candidate fails at its first failing check, and the reason reported is the
latest check reached by any candidate (the one a relaxed request would hit
next). `disjoint_pair` adds no-disjoint-pair.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, fields
from itertools import islice
from typing import Any, ClassVar, Iterable, Iterator, NamedTuple, Optional, Sequence, Union

from cso_base.wire import (BANDWIDTH_EXCEEDED, DELAY_EXCEEDED, DISCONNECTED, EXCLUDED,
                           HOPS_EXCEEDED, INCLUDE_UNSATISFIED, JITTER_EXCEEDED, NO_DISJOINT_PAIR,
                           NO_PATH, NO_WAVELENGTH, SAME_NODE, UNKNOWN_NODE)
from sc_app import ksp
from sc_app.ted import TED, VLAN_BASE, TedError
from topologies.model import DELAY_MS_PER_KM

ORDERS = ("hops", "length", "te")
POLICIES = ("first-fit", "random-fit", "most-used")
DISJOINT_MODES = ("link", "srlg")

#: Per-candidate checks, in the order they are applied.
_STAGES = (HOPS_EXCEEDED, DELAY_EXCEEDED, JITTER_EXCEEDED, NO_WAVELENGTH)
#: Tolerance of delay/jitter comparisons (sums of floats).
_EPS = 1e-9
# Integer cost scales: metres for length, micro-units for TE weights.
_KM_SCALE = 1000
_TE_SCALE = 1_000_000


class ConstraintError(ValueError):
    """A constraint is malformed or names an unknown link, SRLG or excluded node."""


def _tuple_of_str(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part]
    try:
        return tuple(str(item) for item in value)
    except TypeError:
        raise ConstraintError(f"{name} must be a list of ids, not {value!r}") from None


def _number(name: str, value: Any, integer: bool = False) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
            integer and not isinstance(value, int)):
        kind = "a non-negative integer" if integer else "a non-negative number"
        raise ConstraintError(f"{name} must be {kind}, not {value!r}")
    return value


@dataclass(frozen=True)
class Constraints:
    """What a requested lightpath must satisfy (all optional)."""

    bandwidth_gbps: float = 0.0
    max_delay_ms: Optional[float] = None
    max_jitter_ms: Optional[float] = None
    max_hops: Optional[int] = None
    include_nodes: tuple[str, ...] = ()
    exclude_nodes: tuple[str, ...] = ()
    exclude_links: tuple[str, ...] = ()
    exclude_srlgs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "bandwidth_gbps", _number("bandwidth_gbps", self.bandwidth_gbps) or 0.0)
        _number("max_delay_ms", self.max_delay_ms)
        _number("max_jitter_ms", self.max_jitter_ms)
        _number("max_hops", self.max_hops, integer=True)
        for name in ("include_nodes", "exclude_nodes", "exclude_links", "exclude_srlgs"):
            set_(self, name, _tuple_of_str(name, getattr(self, name)))

    @classmethod
    def from_dict(cls, data: Optional[dict[str, Any]]) -> "Constraints":
        """Build from a JSON object (REST); unknown keys are rejected."""
        if not data:
            return NO_CONSTRAINTS
        if not isinstance(data, dict):
            raise ConstraintError(f"constraints must be an object, not {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConstraintError(f"unknown constraint(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The constraints that are set, as JSON."""
        result: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                result[f.name] = list(value) if isinstance(value, tuple) else value
        return result


NO_CONSTRAINTS = Constraints()


class Hop(NamedTuple):
    """One switch of a path: traffic enters on ``in_port`` and leaves on ``out_port``.

    The client side (ingress in_port, egress out_port) is None: it depends on
    the service's host, which the PCE does not know.
    """

    node: str
    in_port: Optional[int]
    out_port: Optional[int]


def _bits(mask: int) -> tuple[int, ...]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return tuple(out)


@dataclass(frozen=True)
class Path:
    """A computed lightpath: route, wavelength and metrics (``wavelength`` None: not chosen).

    ``free_mask`` (bit λ set: λ free on every link of the route) is taken when
    the answer was made: after the reservation for `PCE.reserve`, before for
    `PCE.compute`. ``te_cost`` is the sum of the links' load-dependent TE weights.
    """

    route: tuple[str, ...]
    links: tuple[str, ...]
    wavelength: Optional[int]
    hops: int
    length_km: float
    delay_ms: float
    jitter_ms: float
    te_cost: float
    free_mask: int
    hop_ports: tuple[Hop, ...]
    ok: ClassVar[bool] = True

    @property
    def src(self) -> str:
        """The ingress node."""
        return self.route[0]

    @property
    def dst(self) -> str:
        """The egress node."""
        return self.route[-1]

    @property
    def vlan(self) -> Optional[int]:
        """The VLAN VID that carries the wavelength in the emulated data plane."""
        return None if self.wavelength is None else VLAN_BASE + self.wavelength

    @property
    def free_wavelengths(self) -> tuple[int, ...]:
        """Wavelengths free on every link of the route when it was computed."""
        return _bits(self.free_mask)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the ``cso path --json`` contract in the README, plus details)."""
        return {"route": list(self.route), "links": list(self.links),
                "wavelength": self.wavelength, "vlan": self.vlan, "hops": self.hops,
                "length_km": self.length_km, "delay_ms": self.delay_ms,
                "jitter_ms": self.jitter_ms, "te_cost": self.te_cost,
                "free_wavelengths": list(self.free_wavelengths),
                "hop_ports": [hop._asdict() for hop in self.hop_ports]}


@dataclass(frozen=True)
class NoPath:
    """Why no path was found: ``reason`` is one of `REASONS`, ``detail`` says more."""

    reason: str
    detail: str = ""
    ok: ClassVar[bool] = False

    def __bool__(self) -> bool:
        return False

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"error": "no-path", "reason": ..., "detail": ...}``."""
        return {"error": NO_PATH, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class PathPair:
    """A working path and a disjoint protection path."""

    working: Path
    protection: Path
    mode: str
    ok: ClassVar[bool] = True

    def to_dict(self) -> dict[str, Any]:
        """The working path's JSON with the protection path under ``protection``."""
        return {**self.working.to_dict(), "disjoint": self.mode,
                "protection": self.protection.to_dict()}


@dataclass(frozen=True)
class Candidate:
    """One of the K candidates with its metrics and why it is infeasible (None: feasible)."""

    path: Path
    reason: Optional[str]

    @property
    def feasible(self) -> bool:
        """True when the candidate satisfies every constraint and has a free wavelength."""
        return self.reason is None


Result = Union[Path, NoPath]


class _Route:
    """A candidate route with the sums the checks need, built once per cache entry."""

    __slots__ = ("cost", "nodes", "links", "route", "link_ids", "hops", "length_km",
                 "delay_ms", "jitter_ms", "srlgs", "node_set", "hop_ports")


class _Candidates:
    """The routes of one (src, dst, filters) key, pulled lazily from a generator."""

    __slots__ = ("routes", "source")

    def __init__(self, source: Iterator[_Route]):
        self.routes: list[_Route] = []
        self.source: Optional[Iterator[_Route]] = source

    def get(self, i: int) -> Optional[_Route]:
        """The i-th route, generating it on first use; None when there are fewer."""
        routes = self.routes
        while len(routes) <= i and self.source is not None:
            route = next(self.source, None)
            if route is None:
                self.source = None
            else:
                routes.append(route)
        return routes[i] if i < len(routes) else None


class _Filters(NamedTuple):
    ex_nodes: frozenset[int]
    ex_links: frozenset[int]
    bw_links: frozenset[int]
    include: frozenset[int]


class _Judged(NamedTuple):
    """A valid request's K candidates, each with its verdict: (route, first failing check or
    None, free mask)."""

    s: int
    t: int
    filters: Optional[_Filters]
    verdicts: list[tuple[_Route, Optional[str], int]]


class PCE:
    """Path Computation Element of the Service Controller, over one TED."""

    def __init__(self, ted: TED, k: int = 5, order: str = "hops", policy: str = "first-fit",
                 seed: Optional[int] = 0, include_scan: int = 100, cache_size: int = 50_000):
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, not {policy!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, not {k!r}")
        self.ted = ted
        self.k = k
        self.order = order
        self.policy = policy
        self.include_scan = include_scan
        self.cache_size = cache_size
        self.rng = random.Random(seed)
        self._version = -1
        self._cache: dict[tuple, _Candidates] = {}
        self._adj: list[list[tuple[int, int]]] = []
        self._cost: list[int] = []
        self._capacity = [link.capacity_gbps for link in ted.links]
        self._min_capacity = min(self._capacity, default=0.0)

    # -- public API -------------------------------------------------------------------------

    def compute(self, src: str, dst: str, constraints: Optional[Constraints] = None) -> Result:
        """The best feasible path with its wavelength, without reserving it."""
        chosen = self._select(src, dst, constraints or NO_CONSTRAINTS)
        if isinstance(chosen, NoPath):
            return chosen
        route, mask = chosen
        return self._path(route, self._pick(mask), mask)

    def reserve(self, src: str, dst: str, constraints: Optional[Constraints] = None, *,
                owner: str) -> Result:
        """Compute and occupy a path for ``owner`` in one step (free_mask: after reserving)."""
        chosen = self._select(src, dst, constraints or NO_CONSTRAINTS)
        if isinstance(chosen, NoPath):
            return chosen
        route, mask = chosen
        wavelength = self._pick(mask)
        self.ted.occupy_indices(route.links, wavelength, owner)
        return self._path(route, wavelength, mask & ~(1 << wavelength))

    def release(self, path: Union[Path, PathPair], owner: str) -> None:
        """Free what `reserve` (or `reserve_pair`) took, restoring the previous occupancy."""
        if isinstance(path, PathPair):
            self.release(path.protection, owner)
            self.release(path.working, owner)
            return
        if path.wavelength is None:
            raise TedError("the path has no wavelength to release")
        self.ted.release(path.links, path.wavelength, owner)

    def restore(self, route: Sequence[str], wavelength: int, owner: str,
                links: Optional[Sequence[str]] = None) -> Path:
        """Re-occupy a known lightpath (reconciliation after a restart); raises TedError.

        ``links`` is needed only where parallel fibres make the route ambiguous.
        Unusable links are accepted: the lightpath exists whatever their state.
        """
        self._sync()
        ted = self.ted
        try:
            nodes = tuple(ted.node_index[node] for node in route)
        except KeyError as exc:
            raise TedError(f"unknown node {exc.args[0]!r} in route {list(route)}") from None
        if len(nodes) < 2:
            raise TedError(f"route {list(route)} has fewer than two nodes")
        if links is None:
            indices = []
            for a, b in zip(route, route[1:]):
                between = ted.graph.get_edge_data(a, b) or {}
                if len(between) != 1:
                    raise TedError(f"{len(between)} links join {a} and {b}: give the link ids")
                indices.append(next(iter(between.values()))["index"])
        else:
            indices = [ted.index(link_id) for link_id in links]
            if len(indices) != len(nodes) - 1 or any(
                    set(ted.ends[i]) != {u, v} for i, u, v in zip(indices, nodes, nodes[1:])):
                raise TedError(f"links {list(links)} do not follow route {list(route)}")
        if len(set(nodes)) != len(nodes):
            raise TedError(f"route {list(route)} visits a node twice")
        route_obj = self._make((sum(self._cost[i] for i in indices), nodes, tuple(indices)))
        ted.occupy_indices(route_obj.links, wavelength, owner)
        return self._path(route_obj, wavelength, self._mask(route_obj.links))

    def evaluate(self, src: str, dsts: Iterable[str],
                 constraints: Optional[Constraints] = None) -> dict[str, Result]:
        """For each destination, `compute`'s answer (no reservation): for GLB and ALTO."""
        return {dst: self.compute(src, dst, constraints) for dst in dsts}

    def candidates(self, src: str, dst: str,
                   constraints: Optional[Constraints] = None) -> Union[list[Candidate], NoPath]:
        """The K candidates in the order they are tried, each with metrics and free mask.

        No wavelength is chosen (``path.wavelength`` is None). A NoPath when there
        is no admissible route at all.
        """
        judged = self._judged(src, dst, constraints or NO_CONSTRAINTS)
        if isinstance(judged, NoPath):
            return judged
        return [Candidate(self._path(route, None, mask), reason)
                for route, reason, mask in judged.verdicts]

    def disjoint_pair(self, src: str, dst: str, constraints: Optional[Constraints] = None,
                      mode: str = "link") -> Union[PathPair, NoPath]:
        """Best pair of feasible link- (or SRLG-) disjoint paths, both with wavelengths.

        Options: pairs of feasible candidates among the K, plus Suurballe's pair
        of least total cost; the pair of least total cost wins (the cheaper path
        works, the other protects). Every constraint applies to both paths.
        """
        chosen = self._select_pair(src, dst, constraints or NO_CONSTRAINTS, mode)
        if isinstance(chosen, NoPath):
            return chosen
        (r1, m1), (r2, m2) = chosen
        return PathPair(self._path(r1, self._pick(m1), m1), self._path(r2, self._pick(m2), m2),
                        mode)

    def reserve_pair(self, src: str, dst: str, constraints: Optional[Constraints] = None,
                     mode: str = "link", *, owner: str) -> Union[PathPair, NoPath]:
        """`disjoint_pair` and occupy both paths for ``owner``, all or nothing."""
        chosen = self._select_pair(src, dst, constraints or NO_CONSTRAINTS, mode)
        if isinstance(chosen, NoPath):
            return chosen
        (r1, m1), (r2, m2) = chosen
        w1, w2 = self._pick(m1), self._pick(m2)
        self.ted.occupy_indices(r1.links, w1, owner)
        try:
            self.ted.occupy_indices(r2.links, w2, owner)
        except TedError:
            self.ted.release_indices(r1.links, w1, owner)
            raise
        return PathPair(self._path(r1, w1, m1 & ~(1 << w1)), self._path(r2, w2, m2 & ~(1 << w2)),
                        mode)

    def cache_info(self) -> dict[str, int]:
        """Size of the candidate cache and the TED version it was built for."""
        return {"entries": len(self._cache), "version": self._version,
                "routes": sum(len(e.routes) for e in self._cache.values())}

    # -- graph and cache --------------------------------------------------------------------

    def _sync(self) -> None:
        """Rebuild the graph and drop cached candidates when the TED's state changed."""
        ted = self.ted
        if ted.version == self._version:
            return
        adj: list[list[tuple[int, int]]] = [[] for _ in ted.node_ids]
        for i, (a, b) in enumerate(ted.ends):
            if ted.usable_index(i):
                adj[a].append((b, i))
                adj[b].append((a, i))
        for neighbours in adj:
            neighbours.sort()
        if self.order == "hops":
            cost = [1] * len(ted.links)
        elif self.order == "length":
            cost = [max(1, round(link.length_km * _KM_SCALE)) for link in ted.links]
        else:
            cost = [max(1, round(weight * _TE_SCALE)) for weight in ted.base_te]
        self._adj, self._cost = adj, cost
        self._cache.clear()
        self._version = ted.version

    def _request(self, src: str, dst: str, c: Constraints):
        """Validate a request -> (s, t, constraints, candidates, filters) or NoPath."""
        self._sync()
        index = self.ted.node_index
        s, t = index.get(src), index.get(dst)
        if s is None or t is None:
            return NoPath(UNKNOWN_NODE, f"unknown node {src if s is None else dst!r}")
        if s == t:
            return NoPath(SAME_NODE, f"source and destination are both {src!r}")
        if not (c.include_nodes or c.exclude_nodes or c.exclude_links or c.exclude_srlgs) and (
                c.bandwidth_gbps <= self._min_capacity):
            filters = None
            key: tuple = (s, t)
        else:
            unknown = [node for node in c.include_nodes if node not in index]
            if unknown:
                return NoPath(UNKNOWN_NODE, f"unknown node {unknown[0]!r} in include_nodes")
            filters = self._filters(c)
            if s in filters.ex_nodes or t in filters.ex_nodes:
                return self._why_none(s, t, filters)   # the search would start anyway
            key = (s, t) + filters
        entry = self._cache.get(key)
        if entry is None:
            if len(self._cache) >= self.cache_size:
                del self._cache[next(iter(self._cache))]  # FIFO eviction: cheap, good enough
            entry = self._cache[key] = _Candidates(self._generate(s, t, filters))
        return s, t, c, entry, filters

    def _filters(self, c: Constraints) -> _Filters:
        ted = self.ted
        ex_links: set[int] = set()
        for link_id in c.exclude_links:
            try:
                ex_links.add(ted.index(link_id))
            except TedError:
                raise ConstraintError(f"unknown link {link_id!r} in exclude_links") from None
        for group in c.exclude_srlgs:
            if group not in ted.srlg_links:
                raise ConstraintError(f"unknown SRLG {group!r} in exclude_srlgs")
            ex_links.update(ted.srlg_links[group])
        ex_nodes: set[int] = set()
        for node in c.exclude_nodes:
            if node not in ted.node_index:
                raise ConstraintError(f"unknown node {node!r} in exclude_nodes")
            ex_nodes.add(ted.node_index[node])
        bw_links = frozenset(i for i, capacity in enumerate(self._capacity)
                             if capacity < c.bandwidth_gbps)
        include = frozenset(ted.node_index[node] for node in c.include_nodes)
        return _Filters(frozenset(ex_nodes), frozenset(ex_links), bw_links, include)

    def _generate(self, s: int, t: int, filters: Optional[_Filters]) -> Iterator[_Route]:
        unit = self.order == "hops"
        if filters is None:
            return map(self._make, ksp.yen(self._adj, self._cost, s, t, unit=unit))
        raw = ksp.yen(self._adj, self._cost, s, t, filters.ex_nodes or None,
                      (filters.ex_links | filters.bw_links) or None, unit=unit)
        routes = map(self._make, raw)
        if not filters.include:
            return routes
        include = filters.include
        return (r for r in islice(routes, self.include_scan) if include <= r.node_set)

    def _make(self, raw: ksp.Route) -> _Route:
        ted = self.ted
        cost, nodes, links = raw
        route = _Route()
        route.cost, route.nodes, route.links = cost, nodes, links
        route.route = tuple(ted.node_ids[n] for n in nodes)
        route.link_ids = tuple(ted.link_ids[i] for i in links)
        route.hops = len(links)
        topo_links = [ted.links[i] for i in links]
        route.length_km = sum(link.length_km for link in topo_links)
        route.delay_ms = route.length_km * DELAY_MS_PER_KM
        route.jitter_ms = sum(link.jitter_ms for link in topo_links)
        route.srlgs = frozenset(group for link in topo_links for group in link.srlg)
        route.node_set = frozenset(nodes)
        node_ids = route.route
        hops = []
        for h, node in enumerate(node_ids):
            in_port = topo_links[h - 1].port(node) if h else None
            out_port = topo_links[h].port(node) if h < len(topo_links) else None
            hops.append(Hop(node, in_port, out_port))
        route.hop_ports = tuple(hops)
        return route

    # -- selection --------------------------------------------------------------------------

    def _tried(self, entry: _Candidates) -> list[_Route]:
        """All K candidates in the order they are tried (generates them all)."""
        routes = [r for r in (entry.get(i) for i in range(self.k)) if r is not None]
        if self.order == "te":
            position = {id(r): n for n, r in enumerate(routes)}
            routes.sort(key=lambda r: (self._te_cost(r), position[id(r)]))
        return routes

    def _mask(self, links: tuple[int, ...]) -> int:
        free = self.ted.free
        mask = -1
        for i in links:
            mask &= free[i]
        return mask

    def _verdict(self, route: _Route, c: Constraints) -> tuple[Optional[str], int]:
        """(first failing check or None, free mask) of one candidate."""
        mask = self._mask(route.links)
        if c.max_hops is not None and route.hops > c.max_hops:
            return HOPS_EXCEEDED, mask
        if c.max_delay_ms is not None and route.delay_ms > c.max_delay_ms + _EPS:
            return DELAY_EXCEEDED, mask
        if c.max_jitter_ms is not None and route.jitter_ms > c.max_jitter_ms + _EPS:
            return JITTER_EXCEEDED, mask
        return (None if mask else NO_WAVELENGTH), mask

    def _select(self, src: str, dst: str, c: Constraints):
        """(route, free mask) of the first feasible candidate, or NoPath."""
        request = self._request(src, dst, c)
        if isinstance(request, NoPath):
            return request
        s, t, c, entry, filters = request
        if self.order == "te":
            tried = self._tried(entry)
            get = (lambda n: tried[n] if n < len(tried) else None)
        else:
            # Lazy: the first feasible candidate stops the generation of the others.
            get = entry.get
        worst, example, n = -1, None, 0
        for n in range(self.k):
            route = get(n)
            if route is None:
                break
            reason, mask = self._verdict(route, c)
            if reason is None:
                return route, mask
            stage = _STAGES.index(reason)
            if stage > worst:
                worst, example = stage, route
        else:
            n = self.k
        if example is None:
            return self._why_none(s, t, filters)
        return NoPath(_STAGES[worst], f"{n} candidate(s) tried; the furthest one failed"
                      f" {_STAGES[worst]} (route {'-'.join(example.route)})")

    def _judged(self, src: str, dst: str, c: Constraints) -> Union[_Judged, NoPath]:
        """Every candidate with its verdict, or NoPath when the request is invalid or no
        admissible route exists."""
        request = self._request(src, dst, c)
        if isinstance(request, NoPath):
            return request
        s, t, c, entry, filters = request
        routes = self._tried(entry)
        if not routes:
            return self._why_none(s, t, filters)
        return _Judged(s, t, filters, [(route, *self._verdict(route, c)) for route in routes])

    def _why_none(self, s: int, t: int, filters: Optional[_Filters]) -> NoPath:
        """The reason when no admissible route exists at all."""
        adj = self._adj
        src, dst = self.ted.node_ids[s], self.ted.node_ids[t]
        if not ksp.reachable(adj, s, t):
            return NoPath(DISCONNECTED, f"no route from {src} to {dst} over usable links")
        assert filters is not None  # an unfiltered request with a route has candidates
        if not ksp.reachable(adj, s, t, filters.ex_nodes, filters.ex_links):
            return NoPath(EXCLUDED, f"the excluded nodes/links/SRLGs cut {src} from {dst}")
        if not ksp.reachable(adj, s, t, filters.ex_nodes, filters.ex_links | filters.bw_links):
            return NoPath(BANDWIDTH_EXCEEDED, "no route whose links all carry the bandwidth")
        return NoPath(INCLUDE_UNSATISFIED,
                      f"none of the first {self.include_scan} routes visits every included node")

    def _select_pair(self, src: str, dst: str, c: Constraints, mode: str):
        if mode not in DISJOINT_MODES:
            raise ValueError(f"mode must be one of {DISJOINT_MODES}, not {mode!r}")
        judged = self._judged(src, dst, c)
        if isinstance(judged, NoPath):
            return judged
        feasible, worst = [], -1
        for route, reason, mask in judged.verdicts:
            if reason is None:
                feasible.append((route, mask))
            else:
                worst = max(worst, _STAGES.index(reason))
        options = [(a, b) for n, a in enumerate(feasible) for b in feasible[n + 1:]
                   if self._disjoint(a[0], b[0], mode)]
        options.extend(self._suurballe(judged.s, judged.t, c, judged.filters, mode))
        if options:
            return min(options, key=lambda pair: (pair[0][0].cost + pair[1][0].cost,
                                                  pair[0][0].nodes, pair[0][0].links,
                                                  pair[1][0].nodes, pair[1][0].links))
        if not feasible:
            return NoPath(_STAGES[worst], f"{_STAGES[worst]} on every candidate")
        return NoPath(NO_DISJOINT_PAIR, f"no {mode}-disjoint pair of feasible paths")

    def _suurballe(self, s: int, t: int, c: Constraints, filters: Optional[_Filters],
                   mode: str) -> list:
        if filters is None:
            pair = ksp.disjoint_pair(self._adj, self._cost, s, t)
        else:
            pair = ksp.disjoint_pair(self._adj, self._cost, s, t, filters.ex_nodes or None,
                                     (filters.ex_links | filters.bw_links) or None)
        if pair is None:
            return []
        checked = []
        for raw in pair:
            route = self._make(raw)
            reason, mask = self._verdict(route, c)
            if reason is not None or (filters and not filters.include <= route.node_set):
                return []
            checked.append((route, mask))
        if not self._disjoint(checked[0][0], checked[1][0], mode):
            return []
        return [tuple(checked)]

    @staticmethod
    def _disjoint(a: _Route, b: _Route, mode: str) -> bool:
        if not set(a.links).isdisjoint(b.links):
            return False
        return mode == "link" or a.srlgs.isdisjoint(b.srlgs)

    def _te_cost(self, route: _Route) -> float:
        effective = self.ted.effective_te_index
        return sum(effective(i) for i in route.links)

    def _pick(self, mask: int) -> int:
        """The wavelength the policy chooses among the set bits of ``mask``."""
        if self.policy == "first-fit":
            return (mask & -mask).bit_length() - 1
        free = _bits(mask)
        if self.policy == "random-fit":
            return free[self.rng.randrange(len(free))]
        usage = self.ted.usage
        return max(free, key=lambda w: (usage[w], -w))

    def _path(self, route: _Route, wavelength: Optional[int], mask: int) -> Path:
        return Path(route.route, route.link_ids, wavelength, route.hops, route.length_km,
                    route.delay_ms, route.jitter_ms, self._te_cost(route), mask,
                    route.hop_ports)
