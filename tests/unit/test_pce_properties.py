"""Property tests of the SA-PCE on random small networks and random request sequences.

The PCE's answer is checked against a brute-force oracle written from the
documented rules (all simple paths via networkx, sorted by cost then node ids),
and invariants are checked after every step: wavelength continuity, no double
booking, every constraint respected, release restores the exact state,
determinism.
"""
import networkx as nx
from hypothesis import HealthCheck, given, settings, strategies as st

from sc_app import ksp
from sc_app.pce import PCE, Constraints, NoPath, PathPair
from sc_app.ted import TED
from topologies.loader import from_dict

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
EPS = 1e-9


@st.composite
def networks(draw):
    """Topology dicts with 3-6 nodes (few enough simple paths for brute force)."""
    n = draw(st.integers(3, 6))
    ids = [str(i) for i in draw(st.lists(st.integers(0, 30), min_size=n, max_size=n,
                                         unique=True))]
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=len(pairs),
                           unique=True))
    links = []
    for a, b in chosen:
        link = {"a": a, "b": b, "length_km": draw(st.integers(1, 2000)),
                "wavelengths": draw(st.integers(1, 4)),
                "capacity_gbps": draw(st.sampled_from([10, 40])),
                "jitter_ms": draw(st.sampled_from([0, 0.5, 1.0, 2.0])),
                "srlg": draw(st.lists(st.sampled_from(["x", "y"]), unique=True, max_size=2))}
        weight = draw(st.sampled_from([None, 0.5, 1, 2, 3]))
        if weight is not None:
            link["te_weight"] = weight
        links.append(link)
    return {"name": "random", "nodes": [{"id": i} for i in ids], "links": links}


@st.composite
def constraint_sets(draw, data):
    nodes = [n["id"] for n in data["nodes"]]
    links = [f"{link['a']}-{link['b']}" for link in data["links"]]
    srlgs = sorted({g for link in data["links"] for g in link["srlg"]})

    def maybe(strategy):
        return draw(st.one_of(st.none(), strategy))
    return Constraints(
        bandwidth_gbps=draw(st.sampled_from([0, 10, 20, 40])),
        max_delay_ms=maybe(st.sampled_from([1.0, 5.0, 10.0, 20.0])),
        max_jitter_ms=maybe(st.sampled_from([0.0, 1.0, 2.5, 5.0])),
        max_hops=maybe(st.integers(0, 4)),
        include_nodes=tuple(draw(st.lists(st.sampled_from(nodes), max_size=1))),
        exclude_nodes=tuple(draw(st.lists(st.sampled_from(nodes), max_size=1))),
        exclude_links=tuple(draw(st.lists(st.sampled_from(links), max_size=1))),
        exclude_srlgs=tuple(draw(st.lists(st.sampled_from(srlgs), max_size=1)))
        if srlgs else ())


@st.composite
def scenarios(draw):
    """A network, PCE settings and a sequence of operations."""
    data = draw(networks())
    nodes = [n["id"] for n in data["nodes"]]
    links = [f"{link['a']}-{link['b']}" for link in data["links"]]
    ops = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["reserve", "reserve", "reserve", "release", "state"]))
        if kind == "reserve":
            constraints = draw(st.one_of(st.just(Constraints()), constraint_sets(data)))
            ops.append(("reserve", draw(st.sampled_from(nodes)), draw(st.sampled_from(nodes)),
                        constraints))
        elif kind == "release":
            ops.append(("release", draw(st.integers(0, 20))))
        else:
            ops.append(("state", draw(st.sampled_from(links)), draw(st.booleans())))
    settings_ = {"k": draw(st.integers(1, 4)),
                 "order": draw(st.sampled_from(["hops", "length", "te"])),
                 "policy": draw(st.sampled_from(["first-fit", "random-fit", "most-used"])),
                 "seed": draw(st.integers(0, 3))}
    return data, settings_, ops


# -- the oracle -------------------------------------------------------------------------------

STAGES = ("hops-exceeded", "delay-exceeded", "jitter-exceeded", "no-wavelength")


def link_cost(ted, order, i):
    if order == "hops":
        return 1
    if order == "length":
        return max(1, round(ted.links[i].length_km * 1000))
    return max(1, round(ted.base_te[i] * 1_000_000))


def oracle(ted, pce, src, dst, c):
    """(reason or None, route tuple, free mask) by brute force over all simple paths."""
    if src not in ted.node_index or dst not in ted.node_index or any(
            n not in ted.node_index for n in c.include_nodes):
        return "unknown-node", None, 0
    if src == dst:
        return "same-node", None, 0
    usable = nx.Graph()
    usable.add_nodes_from(ted.node_ids)
    for i, link in enumerate(ted.links):
        if ted.usable_index(i):
            usable.add_edge(link.a, link.b, index=i)
    if not nx.has_path(usable, src, dst):
        return "disconnected", None, 0
    excluded = usable.copy()
    excluded.remove_nodes_from(c.exclude_nodes)
    for a, b, attrs in list(excluded.edges(data=True)):
        link = ted.links[attrs["index"]]
        if {link.id} & {ted.link(x).id for x in c.exclude_links} or set(link.srlg) & set(
                c.exclude_srlgs):
            excluded.remove_edge(a, b)
    if src not in excluded or dst not in excluded or not nx.has_path(excluded, src, dst):
        return "excluded", None, 0
    for a, b, attrs in list(excluded.edges(data=True)):
        if ted.links[attrs["index"]].capacity_gbps < c.bandwidth_gbps:
            excluded.remove_edge(a, b)
    if not nx.has_path(excluded, src, dst):
        return "bandwidth-exceeded", None, 0
    routes = []
    for nodes in nx.all_simple_paths(excluded, src, dst):
        idx = tuple(excluded.edges[u, v]["index"] for u, v in zip(nodes, nodes[1:]))
        key = (sum(link_cost(ted, pce.order, i) for i in idx),
               tuple(ted.node_index[n] for n in nodes), idx)
        routes.append((key, tuple(nodes), idx))
    routes.sort()
    routes = routes[:pce.include_scan]
    routes = [r for r in routes if set(c.include_nodes) <= set(r[1])][:pce.k]
    if not routes:
        return "include-unsatisfied", None, 0
    if pce.order == "te":
        routes.sort(key=lambda r: sum(ted.effective_te_index(i) for i in r[2]))  # stable
    worst = -1
    for _, nodes, idx in routes:
        links = [ted.links[i] for i in idx]
        mask = -1
        for i in idx:
            mask &= ted.free[i]
        checks = [c.max_hops is not None and len(idx) > c.max_hops,
                  c.max_delay_ms is not None and sum(x.length_km for x in links) * 0.005
                  > c.max_delay_ms + EPS,
                  c.max_jitter_ms is not None and sum(x.jitter_ms for x in links)
                  > c.max_jitter_ms + EPS,
                  not mask]
        if not any(checks):
            return None, nodes, mask
        worst = max(worst, checks.index(True))
    return STAGES[worst], None, 0


def check_path_respects(ted, path, c):
    """Every constraint and the topology's structure, on one returned path."""
    assert len(set(path.route)) == len(path.route) == path.hops + 1
    assert path.hops >= 1
    for (u, v), link_id in zip(zip(path.route, path.route[1:]), path.links):
        link = ted.link(link_id)
        assert {link.a, link.b} == {u, v}
        assert ted.usable(link_id)
        assert link.capacity_gbps >= c.bandwidth_gbps
        assert link.id not in {ted.link(x).id for x in c.exclude_links}
        assert not set(link.srlg) & set(c.exclude_srlgs)
    assert not set(path.route) & set(c.exclude_nodes)
    assert set(c.include_nodes) <= set(path.route)
    links = [ted.link(x) for x in path.links]
    assert abs(path.length_km - sum(x.length_km for x in links)) < 1e-6
    if c.max_hops is not None:
        assert path.hops <= c.max_hops
    if c.max_delay_ms is not None:
        assert path.delay_ms <= c.max_delay_ms + EPS
    if c.max_jitter_ms is not None:
        assert path.jitter_ms <= c.max_jitter_ms + EPS


def check_ted_consistent(ted):
    """Owners and bitmaps agree, and usage counts match: nothing is double booked."""
    usage = [0] * len(ted.usage)
    for i in range(len(ted.links)):
        used = ted.full[i] & ~ted.free[i]
        assert ted.free[i] & ~ted.full[i] == 0
        owners = ted._owners[i]
        assert sorted(owners) == [w for w in range(ted.wavelengths[i]) if used >> w & 1]
        for w in owners:
            usage[w] += 1
    assert usage == ted.usage


def occupancy(ted):
    return [(link["id"], link["free"], link["owners"]) for link in ted.snapshot()["links"]]


def run(data, settings_, ops):
    """Play the operations; return a transcript of the answers (for determinism)."""
    ted = TED(from_dict(data))
    pce = PCE(ted, **settings_)
    initial = occupancy(ted)
    held = []
    transcript = []
    for n, op in enumerate(ops):
        if op[0] == "reserve":
            _, src, dst, c = op
            expected = oracle(ted, pce, src, dst, c)
            before = ted.snapshot()["links"]
            computed = pce.compute(src, dst, c)
            assert ted.snapshot()["links"] == before
            if expected[0] is None:
                assert computed.ok and computed.route == expected[1]
                assert computed.free_mask == expected[2]
                assert computed.wavelength in computed.free_wavelengths
                if settings_["policy"] == "first-fit":
                    assert computed.wavelength == min(computed.free_wavelengths)
            else:
                assert isinstance(computed, NoPath) and computed.reason == expected[0]
            result = pce.reserve(src, dst, c, owner=f"lp{n}")
            transcript.append(result.to_dict())
            if result.ok:
                assert result.route == computed.route
                check_path_respects(ted, result, c)
                for link in result.links:   # continuity: one λ, held on every link
                    assert ted.owner(link, result.wavelength) == f"lp{n}"
                # release restores the exact previous state; then take it again
                pce.release(result, f"lp{n}")
                assert ted.snapshot()["links"] == before
                ted.occupy(result.links, result.wavelength, f"lp{n}")
                held.append((result, f"lp{n}"))
        elif op[0] == "release" and held:
            path, owner = held.pop(op[1] % len(held))
            pce.release(path, owner)
        elif op[0] == "state":
            ted.set_admin(op[1], op[2])
        check_ted_consistent(ted)
    for path, owner in held:
        pce.release(path, owner)
    assert occupancy(ted) == initial
    return transcript


@SETTINGS
@given(scenarios())
def test_answers_match_the_oracle_and_invariants_hold(scenario):
    run(*scenario)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(scenarios())
def test_same_inputs_give_the_same_outputs(scenario):
    assert run(*scenario) == run(*scenario)


@SETTINGS
@given(networks(), st.sampled_from(["hops", "length", "te"]), st.data())
def test_disjoint_pairs_are_disjoint_and_optimal(data, order, draw):
    ted = TED(from_dict(data))
    pce = PCE(ted, order=order, k=3)
    nodes = [n["id"] for n in data["nodes"]]
    src, dst = draw.draw(st.sampled_from(nodes)), draw.draw(st.sampled_from(nodes))
    mode = draw.draw(st.sampled_from(["link", "srlg"]))
    pair = pce.disjoint_pair(src, dst, mode=mode)
    graph = nx.Graph()
    for i, link in enumerate(ted.links):
        graph.add_edge(link.a, link.b, index=i)
    best = None
    if src != dst and src in graph and dst in graph:
        routes = []
        for nodes_ in nx.all_simple_paths(graph, src, dst):
            idx = [graph.edges[u, v]["index"] for u, v in zip(nodes_, nodes_[1:])]
            routes.append((sum(link_cost(ted, order, i) for i in idx), set(idx),
                           {g for i in idx for g in ted.links[i].srlg}))
        for n, (c1, l1, g1) in enumerate(routes):
            for c2, l2, g2 in routes[n + 1:]:
                if not l1 & l2 and (mode == "link" or not g1 & g2):
                    best = min(best or c1 + c2, c1 + c2)
    if not isinstance(pair, PathPair):
        assert pair.reason in ("same-node", "disconnected", "no-disjoint-pair", "no-wavelength")
        if mode == "link" and pair.reason == "no-disjoint-pair":
            assert best is None
        return
    assert best is not None
    working, protection = pair.working, pair.protection
    assert not set(working.links) & set(protection.links)
    if mode == "srlg":
        groups = [{g for x in p.links for g in ted.link(x).srlg} for p in (working, protection)]
        assert not groups[0] & groups[1]
    for path in (working, protection):
        check_path_respects(ted, path, Constraints())
        assert path.wavelength in path.free_wavelengths
    total = sum(link_cost(ted, order, ted.index(x)) for x in working.links + protection.links)
    assert total >= best
    if mode == "link":
        assert total == best   # Suurballe's pair is optimal and, on an empty network, feasible


@SETTINGS
@given(networks(), st.sampled_from(["hops", "length", "te"]), st.data())
def test_yen_enumerates_every_simple_path_in_order(data, order, draw):
    ted = TED(from_dict(data))
    pce = PCE(ted, order=order)
    pce._sync()
    src, dst = draw.draw(st.permutations(ted.node_ids))[:2]
    s, t = ted.node_index[src], ted.node_index[dst]
    banned = draw.draw(st.sets(st.integers(0, len(ted.links) - 1), max_size=2))
    graph = nx.Graph()
    graph.add_nodes_from(ted.node_ids)
    for i, link in enumerate(ted.links):
        if i not in banned:
            graph.add_edge(link.a, link.b, index=i)
    expected = []
    for nodes in nx.all_simple_paths(graph, src, dst):
        idx = tuple(graph.edges[u, v]["index"] for u, v in zip(nodes, nodes[1:]))
        expected.append((sum(pce._cost[i] for i in idx),
                         tuple(ted.node_index[n] for n in nodes), idx))
    got = list(ksp.yen(pce._adj, pce._cost, s, t, None, banned or None,
                       unit=order == "hops"))
    assert got == sorted(expected)
