"""Path enumeration for the SA-PCE on integer graphs: Dijkstra, Yen's K shortest, Suurballe.

The PCE keeps its graph as plain lists because networkx's generic algorithms
are an order of magnitude too slow for per-request use: nodes are ints
``0..n-1``, ``adj[u]`` is the list of ``(v, link)`` pairs of usable links
sorted by ``(v, link)``, and ``cost[link]`` is a positive int (the PCE scales
km or TE weights to ints so that equal costs compare exactly).

A path is ``(cost, nodes, links)`` with ``nodes`` and ``links`` int tuples.
Ties between equal-cost paths are broken by the node tuple, then the link
tuple: with node ints numbered in natural id order this is the documented
"cost, then tuple of node ids" order and it makes every result reproducible.
"""
from __future__ import annotations

from heapq import heappop, heappush
from typing import AbstractSet, Iterator, Optional, Sequence

Adjacency = Sequence[Sequence[tuple[int, int]]]
Route = tuple[int, tuple[int, ...], tuple[int, ...]]

INF = float("inf")


def _distances(adj: Adjacency, cost: Sequence[int], s: int, t: Optional[int],
               banned_nodes: Optional[AbstractSet[int]],
               banned_links: Optional[AbstractSet[int]],
               to_t: Optional[Sequence] = None, unit: bool = False) -> list:
    """Dijkstra labels from ``s``: final for every node on a shortest s-t path (all if t is None).

    With ``to_t`` (distances to t on a supergraph: a consistent lower bound)
    this is A*, which explores little more than the shortest paths themselves;
    it keeps popping until every node on a shortest s-t path is final, which
    the lexicographic tie-break of `shortest` relies on. When every cost is 1
    (``unit``) and t is None, a breadth-first search does the same job cheaper.
    """
    if unit and to_t is None and t is None:
        return _breadth_first(adj, s, banned_nodes, banned_links)
    n = len(adj)
    dist: list = [INF] * n
    done = bytearray(n)
    if banned_nodes:
        # A banned node is simply never entered: marking it done skips it in the loop.
        for v in banned_nodes:
            done[v] = 1
        done[s] = 0
    dist[s] = 0
    pop, push = heappop, heappush
    if to_t is None:
        heap = [(0, s)]
        while heap:
            d, u = pop(heap)
            if done[u]:
                continue
            done[u] = 1
            if u == t:
                break
            for v, link in adj[u]:
                if done[v] or (banned_links and link in banned_links):
                    continue
                nd = d + cost[link]
                if nd < dist[v]:
                    dist[v] = nd
                    push(heap, (nd, v))
        return dist
    heap = [(to_t[s], s)]
    bound = INF
    while heap:
        f, u = pop(heap)
        if f > bound:
            break
        if done[u]:
            continue
        done[u] = 1
        if u == t:
            bound = f
            continue
        d = dist[u]
        for v, link in adj[u]:
            if done[v] or (banned_links and link in banned_links):
                continue
            nd = d + cost[link]
            if nd < dist[v]:
                estimate = to_t[v]
                if estimate != INF:
                    dist[v] = nd
                    push(heap, (nd + estimate, v))
    return dist


def _breadth_first(adj: Adjacency, s: int, banned_nodes: Optional[AbstractSet[int]],
                   banned_links: Optional[AbstractSet[int]]) -> list:
    """Hop counts from ``s`` to every node."""
    dist: list = [INF] * len(adj)
    for v in banned_nodes or ():
        dist[v] = -1
    dist[s] = 0
    frontier = [s]
    depth = 0
    while frontier:
        depth += 1
        layer = []
        for u in frontier:
            for v, link in adj[u]:
                if dist[v] == INF and not (banned_links and link in banned_links):
                    dist[v] = depth
                    layer.append(v)
        frontier = layer
    for v in banned_nodes or ():
        dist[v] = INF
    return dist


def _fewest_hops(adj: Adjacency, s: int, t: int, banned_nodes: Optional[AbstractSet[int]],
                 banned_links: Optional[AbstractSet[int]]) -> Optional[Route]:
    """`shortest` for unit costs: bidirectional breadth-first search, then the same tie-break.

    Whole layers are expanded, the smaller frontier first. When the two sides
    first touch after a forward depth ``a`` and a backward depth ``b``, the hop
    count is a + b and a shortest path crosses forward layer ``a`` at a node
    labelled by both sides; the nodes before it are found by walking back over
    tight edges, those after it by following backward labels down to t.
    """
    n = len(adj)
    fwd, bwd = [-1] * n, [-1] * n        # -1: not reached; -2: banned
    for v in banned_nodes or ():
        fwd[v] = bwd[v] = -2
    fwd[s], bwd[t] = 0, 0
    if s == t:
        return 0, (s,), ()
    ahead, behind = [s], [t]
    a = b = 0
    met = False
    while ahead and behind and not met:
        if len(ahead) <= len(behind):
            grow, mine, other, depth = ahead, fwd, bwd, a + 1
        else:
            grow, mine, other, depth = behind, bwd, fwd, b + 1
        layer = []
        for u in grow:
            for v, link in adj[u]:
                if mine[v] == -1 and not (banned_links and link in banned_links):
                    mine[v] = depth
                    layer.append(v)
                    if other[v] >= 0:
                        met = True
        if grow is ahead:
            ahead, a = layer, depth
        else:
            behind, b = layer, depth
    if not met:
        return None
    # Forward layer a: the crossing nodes. Walk back over tight edges to mark the rest.
    on = bytearray(n)
    layer = [v for v in ahead if bwd[v] == b]    # ahead is forward layer a
    for v in layer:
        on[v] = 1
    for depth in range(a - 1, -1, -1):
        previous = []
        for v in layer:
            for u, link in adj[v]:
                if fwd[u] == depth and not on[u] and not (banned_links and link in banned_links):
                    on[u] = 1
                    previous.append(u)
        layer = previous
    nodes, links, u = [s], [], s
    while u != t:
        # The first a steps go down forward labels, the rest down backward ones.
        if len(links) < a:
            want, labels = len(links) + 1, fwd
        else:
            want, labels = bwd[u] - 1, bwd
        for v, link in adj[u]:
            if labels[v] == want and (labels is bwd or on[v]) and not (
                    banned_links and link in banned_links):
                nodes.append(v)
                links.append(link)
                u = v
                break
    return a + b, tuple(nodes), tuple(links)


def shortest(adj: Adjacency, cost: Sequence[int], s: int, t: int,
             banned_nodes: Optional[AbstractSet[int]] = None,
             banned_links: Optional[AbstractSet[int]] = None,
             to_t: Optional[Sequence] = None, unit: bool = False) -> Optional[Route]:
    """Least-cost s-t path avoiding the banned nodes/links; equal costs -> smallest node tuple.

    ``to_t``: optional distances to t without the bans, to search with A*;
    ``unit``: every cost is 1 (hop count), to search breadth-first from both ends.
    """
    if unit and to_t is None:
        return _fewest_hops(adj, s, t, banned_nodes, banned_links)
    dist = _distances(adj, cost, s, t, banned_nodes, banned_links, to_t)
    total = dist[t]
    if total == INF:
        return None
    # Nodes that reach t over tight edges lie on some shortest path; a greedy walk
    # from s over them, smallest neighbour first, gives the lexicographically
    # smallest shortest path (cheaper than carrying route tuples in the heap).
    on = bytearray(len(adj))
    on[t] = 1
    stack = [t]
    while stack:
        v = stack.pop()
        dv = dist[v]
        for u, link in adj[v]:
            if not on[u] and dist[u] + cost[link] == dv and not (
                    banned_links and link in banned_links):
                on[u] = 1
                stack.append(u)
    nodes = [s]
    links = []
    u = s
    while u != t:
        du = dist[u]
        for v, link in adj[u]:
            if on[v] and du + cost[link] == dist[v] and not (
                    banned_links and link in banned_links):
                nodes.append(v)
                links.append(link)
                u = v
                break
    return total, tuple(nodes), tuple(links)


def yen(adj: Adjacency, cost: Sequence[int], s: int, t: int,
        banned_nodes: Optional[AbstractSet[int]] = None,
        banned_links: Optional[AbstractSet[int]] = None, unit: bool = False
        ) -> Iterator[Route]:
    """Simple s-t paths in (cost, node tuple, link tuple) order, generated lazily (Yen/Lawler).

    Each path costs one shortest-path search per spur node from its deviation
    point on (Lawler's refinement), done only when the next path is asked for.
    """
    first = shortest(adj, cost, s, t, banned_nodes, banned_links, unit=unit)
    if first is None:
        return
    yield first
    # Exact distances to t without the spur bans guide every spur search (A*).
    to_t = _distances(adj, cost, t, None, banned_nodes, banned_links, unit=unit)
    accepted = [first]
    seen = {first[2]}
    heap: list = []
    last, dev = first, 0
    base_nodes = set(banned_nodes or ())
    base_links = set(banned_links or ())
    while True:
        _, nodes, links = last
        prefix = [0]
        for link in links:
            prefix.append(prefix[-1] + cost[link])
        for i in range(dev, len(links)):
            root = nodes[:i + 1]
            ban_links = set(base_links)
            for _, other_nodes, other_links in accepted:
                if other_nodes[:i + 1] == root:
                    ban_links.add(other_links[i])
            ban_nodes = base_nodes.union(root[:-1])
            spur = shortest(adj, cost, nodes[i], t, ban_nodes, ban_links, to_t)
            if spur is None:
                continue
            spur_cost, spur_nodes, spur_links = spur
            full_links = links[:i] + spur_links
            if full_links in seen:
                continue
            seen.add(full_links)
            heappush(heap, (prefix[i] + spur_cost, root[:-1] + spur_nodes, full_links, i))
        if not heap:
            return
        total, nodes, links, dev = heappop(heap)
        last = (total, nodes, links)
        accepted.append(last)
        yield last


def reachable(adj: Adjacency, s: int, t: int,
              banned_nodes: Optional[AbstractSet[int]] = None,
              banned_links: Optional[AbstractSet[int]] = None) -> bool:
    """True when t can be reached from s without the banned nodes/links."""
    if banned_nodes and (s in banned_nodes or t in banned_nodes):
        return False
    seen = bytearray(len(adj))
    for v in banned_nodes or ():
        seen[v] = 1
    seen[s] = 1
    stack = [s]
    while stack:
        u = stack.pop()
        if u == t:
            return True
        for v, link in adj[u]:
            if not seen[v] and not (banned_links and link in banned_links):
                seen[v] = 1
                stack.append(v)
    return False


def disjoint_pair(adj: Adjacency, cost: Sequence[int], s: int, t: int,
                  banned_nodes: Optional[AbstractSet[int]] = None,
                  banned_links: Optional[AbstractSet[int]] = None
                  ) -> Optional[tuple[Route, Route]]:
    """The link-disjoint s-t pair of least total cost (Suurballe), cheaper path first; or None."""
    dist = _distances(adj, cost, s, None, banned_nodes, banned_links)
    first = shortest(adj, cost, s, t, banned_nodes, banned_links)
    if first is None:
        return None
    _, nodes1, links1 = first
    tail = {link: u for u, link in zip(nodes1, links1)}
    # Second search on the residual graph with reduced costs (all >= 0): the
    # first path's arcs are reversed with cost 0, every other arc costs
    # w + d(u) - d(v).
    n = len(adj)
    d2: list = [INF] * n
    prev: list = [None] * n
    done = bytearray(n)
    for v in banned_nodes or ():
        done[v] = 1
    d2[s] = 0
    heap = [(0, s)]
    while heap:
        d, u = heappop(heap)
        if done[u]:
            continue
        done[u] = 1
        if u == t:
            break
        for v, link in adj[u]:
            if done[v] or (banned_links and link in banned_links):
                continue
            head_tail = tail.get(link)
            if head_tail is None:
                nd = d + cost[link] + dist[u] - dist[v]
            elif head_tail == u:
                continue
            else:
                nd = d
            if nd < d2[v]:
                d2[v] = nd
                prev[v] = (u, link)
                heappush(heap, (nd, v))
    if d2[t] == INF:
        return None
    arcs2 = []
    v = t
    while v != s:
        u, link = prev[v]
        arcs2.append((u, v, link))
        v = u
    cancelled = {link for _, _, link in arcs2 if link in tail}
    succ: dict[int, list[tuple[int, int]]] = {}
    for u, v, link in list(zip(nodes1, nodes1[1:], links1)) + arcs2:
        if link not in cancelled:
            succ.setdefault(u, []).append((v, link))
    for options in succ.values():
        options.sort(reverse=True)
    pair = []
    for _ in range(2):
        nodes, links, u = [s], [], s
        while u != t:
            v, link = succ[u].pop()
            nodes.append(v)
            links.append(link)
            u = v
        pair.append((sum(cost[link] for link in links), tuple(nodes), tuple(links)))
    pair.sort()
    return pair[0], pair[1]
