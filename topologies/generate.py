"""Synthetic topologies for benchmarks: seeded, connected, backbone-like (docs/topology-format.md).

Nodes are scattered uniformly over a continent-sized square. Fibres come from
each node's nearest neighbours, keeping only Gabriel edges (no third node in the
circle that has the edge as diameter) so that fibres do not cross, as in real
backbones. A degree-capped spanning tree makes the network (and each domain on
its own) connected; short Gabriel edges then lift every node to degree 2 and the
mean degree to that of real backbones (NSFNET: 3.0).
"""
from __future__ import annotations

import math
import random
from typing import Any, Iterable, Optional

from topologies.schema import MAX_WAVELENGTHS

SIDE_KM = 4000.0        # about the width of the contiguous United States
ROUTE_FACTOR = 1.25     # fibre follows roads and rights of way, not the straight line
NEIGHBOURS = 8          # candidate fibres per node
MIN_DEGREE = 2          # no spurs: every node can be reached by two disjoint fibres
MAX_DEGREE = 4
MEAN_DEGREE = 3.0
SERVERS_PER_DC = 4
SERVER = {"cpu": 16, "memory_gb": 64, "disk_gb": 1000}  # as in nsfnet.json
# Coordinates are also given as lat/lon: the square's corner sits at (_LAT0, _LON0) and
# east-west degrees are those of the square's middle latitude.
_LAT0, _LON0, _KM_PER_DEGREE = 25.0, -125.0, 111.2
_KM_PER_DEGREE_LON = _KM_PER_DEGREE * math.cos(math.radians(_LAT0 + SIDE_KM / 2 / _KM_PER_DEGREE))

Point = tuple[float, float]


def generate(nodes: int, seed: int, wavelengths: int = 40, capacity_gbps: float = 10,
             dc_fraction: float = 0.1, domains: int = 1) -> dict[str, Any]:
    """A JSON-able topology that `topologies.loader.from_dict` accepts."""
    _check_args(nodes, wavelengths, capacity_gbps, dc_fraction, domains)
    rng = random.Random(seed)
    points = [(rng.uniform(0, SIDE_KM), rng.uniform(0, SIDE_KM)) for _ in range(nodes)]
    # Domains are vertical strips of equal node count: carriers own contiguous regions.
    domain_of = [0] * nodes
    for rank, node in enumerate(sorted(range(nodes), key=lambda i: points[i])):
        domain_of[node] = rank * domains // nodes
    graph = _Graph(points)
    candidates = _gabriel(points, _nearest(points, min(NEIGHBOURS, nodes - 1)))
    for d in range(domains):
        graph.span(c for c in candidates if domain_of[c[1]] == domain_of[c[2]] == d)
        graph.join([i for i in range(nodes) if domain_of[i] == d])
    graph.span(candidates)
    graph.join(range(nodes))
    graph.lift(MIN_DEGREE, candidates)
    graph.add_shortest(candidates, int(MEAN_DEGREE * nodes / 2))
    dc_nodes = _pick_dcs(rng, domain_of, domains, dc_fraction)
    return {
        "name": f"synthetic-n{nodes}-s{seed}",
        "description": f"Synthetic topology: {nodes} nodes, seed {seed}, {domains} domain(s), "
                       f"by topologies.generate.",
        "defaults": {"wavelengths": wavelengths, "capacity_gbps": capacity_gbps},
        "nodes": [_node(i, points[i], _domain_name(domain_of[i]), i in dc_nodes)
                  for i in range(nodes)],
        "links": [{"a": str(a), "b": str(b), "length_km": graph.length_km(a, b)}
                  for a, b in sorted(graph.edges)],
    }


def _check_args(nodes: int, wavelengths: int, capacity_gbps: float, dc_fraction: float,
                domains: int) -> None:
    if nodes < 3:
        raise ValueError(f"nodes must be at least 3, got {nodes}")
    if not 1 <= wavelengths <= MAX_WAVELENGTHS:
        raise ValueError(f"wavelengths must be 1..{MAX_WAVELENGTHS}, got {wavelengths}")
    if not capacity_gbps > 0:
        raise ValueError(f"capacity_gbps must be positive, got {capacity_gbps}")
    if not 0 <= dc_fraction <= 1:
        raise ValueError(f"dc_fraction must be in 0..1, got {dc_fraction}")
    if not 1 <= domains <= nodes:
        raise ValueError(f"domains must be 1..{nodes}, got {domains}")


def _domain_name(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: spreadsheet-style column names."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _node(i: int, point: Point, domain: str, has_dc: bool) -> dict[str, Any]:
    x, y = point
    node: dict[str, Any] = {"id": str(i), "name": f"n{i}", "domain": domain,
                            "lat": round(_LAT0 + y / _KM_PER_DEGREE, 4),
                            "lon": round(_LON0 + x / _KM_PER_DEGREE_LON, 4)}
    if has_dc:
        node["dc"] = {"id": f"dc{i}", "servers": [{"id": f"dc{i}-s{s}", **SERVER}
                                                  for s in range(SERVERS_PER_DC)]}
    return node


def _pick_dcs(rng: random.Random, domain_of: list[int], domains: int,
              fraction: float) -> set[int]:
    """Some nodes with a DC, at least one per domain when there are any."""
    if fraction == 0:
        return set()
    count = max(domains, round(len(domain_of) * fraction))
    chosen = {rng.choice([i for i, d in enumerate(domain_of) if d == dom])
              for dom in range(domains)}
    rest = [i for i in range(len(domain_of)) if i not in chosen]
    chosen.update(rng.sample(rest, count - len(chosen)))
    return chosen


def _dist2(p: Point, q: Point) -> float:
    return (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2


def _nearest(points: list[Point], k: int) -> list[list[int]]:
    """The k nearest neighbours of every point, nearest first, using a uniform grid."""
    cell = SIDE_KM / max(1, math.ceil(math.sqrt(len(points) / 2)))
    grid: dict[tuple[int, int], list[int]] = {}
    for i, (x, y) in enumerate(points):
        grid.setdefault((int(x // cell), int(y // cell)), []).append(i)
    span = int(SIDE_KM // cell) + 1
    result = []
    for i, p in enumerate(points):
        cx, cy = int(p[0] // cell), int(p[1] // cell)
        found: list[tuple[float, int]] = []
        for ring in range(span + 1):
            for gx in range(cx - ring, cx + ring + 1):
                for gy in range(cy - ring, cy + ring + 1):
                    if max(abs(gx - cx), abs(gy - cy)) == ring:
                        found.extend((_dist2(p, points[j]), j) for j in grid.get((gx, gy), ())
                                     if j != i)
            # Points beyond this ring are at least ring*cell away: stop once k are closer.
            if len(found) >= k and sorted(found)[k - 1][0] <= (ring * cell) ** 2:
                break
        result.append([j for _, j in sorted(found)[:k]])
    return result


def _gabriel(points: list[Point], nearest: list[list[int]]) -> list[tuple[float, int, int]]:
    """Candidate fibres (squared length, a, b), shortest first, that pass the Gabriel test.

    A node inside the circle on (u, v) is nearer to u than v is, so when v is one of
    u's nearest neighbours the test only needs u's nearest neighbours.
    """
    edges = set()
    for u, near in enumerate(nearest):
        for v in near:
            d = _dist2(points[u], points[v])
            if all(_dist2(points[w], points[u]) + _dist2(points[w], points[v]) >= d
                   for w in near if w != v):
                edges.add((d, min(u, v), max(u, v)))
    return sorted(edges)


class _Graph:
    """Undirected fibres between points, with a union-find of the connected parts."""

    def __init__(self, points: list[Point]):
        self.points = points
        self.adj: list[set[int]] = [set() for _ in points]
        self.parent = list(range(len(points)))
        self.edges: list[tuple[int, int]] = []

    def root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def spare(self, i: int) -> bool:
        return len(self.adj[i]) < MAX_DEGREE

    def add(self, a: int, b: int) -> None:
        self.adj[a].add(b)
        self.adj[b].add(a)
        self.edges.append((min(a, b), max(a, b)))
        self.parent[self.root(a)] = self.root(b)

    def length_km(self, a: int, b: int) -> int:
        return max(1, round(math.sqrt(_dist2(self.points[a], self.points[b])) * ROUTE_FACTOR))

    def span(self, candidates: Iterable[tuple[float, int, int]]) -> None:
        """Kruskal over the candidates, shortest first, within the degree cap."""
        for _, a, b in candidates:
            if self.root(a) != self.root(b) and self.spare(a) and self.spare(b):
                self.add(a, b)

    def join(self, members: Iterable[int]) -> None:
        """Connect the parts of `members` left apart, each by its shortest possible fibre."""
        members = list(members)
        while True:
            parts: dict[int, list[int]] = {}
            for i in members:
                parts.setdefault(self.root(i), []).append(i)
            if len(parts) < 2:
                return
            # Every part is a tree, so it has nodes below the degree cap.
            small = min(parts.values(), key=lambda part: (len(part), part[0]))
            inside = self.root(small[0])
            others = [j for j in members if self.root(j) != inside and self.spare(j)]
            _, a, b = min((_dist2(self.points[i], self.points[j]), i, j)
                          for i in small if self.spare(i) for j in others)
            self.add(a, b)

    def lift(self, degree: int, candidates: list[tuple[float, int, int]]) -> None:
        """Give every node at least `degree` fibres, nearest partner first."""
        by_node: dict[int, list[int]] = {}
        for _, a, b in candidates:
            by_node.setdefault(a, []).append(b)
            by_node.setdefault(b, []).append(a)
        for i in range(len(self.points)):
            while len(self.adj[i]) < degree:
                partner = self._partner(i, by_node.get(i, []))
                if partner is None:
                    break
                self.add(i, partner)

    def _partner(self, i: int, preferred: list[int]) -> Optional[int]:
        ok = [j for j in preferred if j != i and j not in self.adj[i] and self.spare(j)]
        if not ok:   # rare: fall back to every node
            ok = [j for j in range(len(self.points))
                  if j != i and j not in self.adj[i] and self.spare(j)]
        return min(ok, key=lambda j: (_dist2(self.points[i], self.points[j]), j), default=None)

    def add_shortest(self, candidates: list[tuple[float, int, int]], target: int) -> None:
        """Add the shortest candidates within the degree cap until `target` fibres."""
        for _, a, b in candidates:
            if len(self.edges) >= target:
                return
            if b not in self.adj[a] and self.spare(a) and self.spare(b):
                self.add(a, b)
