"""SSE strategies (RB, AB, NB, GLB, GLB-D) and their views, on crafted states and on NSFNET."""
import json
import random

import pytest

from ac_app.resources import (LOCAL_PATH, AppView, Demand, PathInfo, ServerState,
                              path_info_from_asi, path_infos_from_asi)
from ac_app.sse import (APPLICATION, NETWORK, NO_SERVER_FITS, STRATEGIES, Choice, Refusal, Sse,
                        build, get)
from cso.simulation.network import PceNetworkView
from sc_app.pce import PCE, Constraints
from sc_app.ted import TED
from topologies.loader import load

SMALL = Demand(1, 1, 1)


def server(sid, node, cpu_used=0, mem_used=0.0, cpu=10, mem=10.0, disk=100.0, disk_used=0.0,
           up=True, dc=None):
    """A server alone in DC ``dc<node>`` unless told otherwise."""
    return ServerState(sid, dc or f"dc{node}", node, cpu, cpu_used, mem, mem_used, disk,
                       disk_used, up)


def ok(hops, te_cost=None, free=8):
    return PathInfo(True, hops, float(hops if te_cost is None else te_cost), hops * 5.0, free)


def bad(reason, detail=""):
    return PathInfo(False, reason=reason, detail=detail)


class FakeNet:
    """A NetworkView with fixed answers that records every evaluate call."""

    def __init__(self, paths=None, default=None):
        self.paths = paths or {}
        self.default = default
        self.calls = []

    def evaluate(self, src, dsts):
        self.calls.append((src, list(dsts)))
        return {dst: self.paths.get(dst, self.default) or bad("disconnected") for dst in dsts}


class NoNet:
    """A NetworkView that must not be consulted."""

    def evaluate(self, src, dsts):
        raise AssertionError("the network was consulted")


# Source "0". s1: least loaded but far; s2: most loaded but near; s3: the balance.
def trio():
    app = AppView([server("s1", "1", cpu_used=1, mem_used=1),    # A = 0.1
                   server("s2", "2", cpu_used=3, mem_used=3),    # A = 0.3
                   server("s3", "3", cpu_used=2, mem_used=2)])   # A = 0.2
    net = FakeNet({"1": ok(4), "2": ok(1), "3": ok(2)})
    return app, net


def x(b, util, a_max, n, n_max):
    """The joint factor of GLB (docs/strategies.md), written out for the tests."""
    return b * util / a_max + (1 - b) * n / n_max


# -- GLB ------------------------------------------------------------------------------------

def test_glb_follows_the_formula_where_it_differs_from_ab_and_nb():
    app, net = trio()
    assert get("AB").choose("0", SMALL, app, NoNet()).server.server == "s1"
    assert get("NB").choose("0", SMALL, app, net).server.server == "s2"
    net.calls.clear()
    choice = get("GLB", k=3).choose("0", SMALL, app, net)
    by_hand = {"s1": x(0.5, 0.1, 0.3, 4, 4), "s2": x(0.5, 0.3, 0.3, 1, 4),
               "s3": x(0.5, 0.2, 0.3, 2, 4)}          # 0.667, 0.625, 0.583
    assert min(by_hand, key=by_hand.get) == "s3"
    assert isinstance(choice, Choice) and choice.ok
    assert (choice.server.server, choice.node, choice.path) == ("s3", "3", ok(2))
    assert choice.details["x"] == pytest.approx(by_hand["s3"])
    assert (choice.details["A_max"], choice.details["N_max"]) == (pytest.approx(0.3), 4.0)
    assert (choice.details["N"], choice.details["candidates"]) == (2.0, 3)
    assert net.calls == [("0", ["1", "3", "2"])]      # one call, the K nodes by A


def test_glb_b1_ignores_the_network_and_b0_the_application_beyond_step_1():
    app, net = trio()
    assert get("GLB", b=1, k=3).choose("0", SMALL, app, net).server.server == "s1"
    assert get("GLB", b=0, k=3).choose("0", SMALL, app, net).server.server == "s2"
    # With K=2, s2 (the nearest) is not a candidate: b=0 takes the nearer of s1 and s3.
    net.calls.clear()
    assert get("GLB", b=0, k=2).choose("0", SMALL, app, net).server.server == "s3"
    assert net.calls == [("0", ["1", "3"])]


def test_glb_a1_uses_memory_only_and_a0_cpu_only():
    app = AppView([server("busy-mem", "1", cpu_used=0, mem_used=8),
                   server("busy-cpu", "2", cpu_used=9, mem_used=1)])
    net = FakeNet({"1": ok(1), "2": ok(1)})
    assert get("GLB", a=1, b=1).choose("0", SMALL, app, net).server.server == "busy-cpu"
    assert get("GLB", a=0, b=1).choose("0", SMALL, app, net).server.server == "busy-mem"
    assert get("GLB", a=0.5, b=1).choose("0", SMALL, app, net).server.server == "busy-mem"
    assert get("AB", a=1).choose("0", SMALL, app, NoNet()).server.server == "busy-cpu"
    assert get("AB", a=0).choose("0", SMALL, app, NoNet()).server.server == "busy-mem"


def test_glb_with_k1_equals_ab_whenever_the_path_is_feasible():
    rng = random.Random(5)
    for _ in range(200):
        app = AppView(server(f"s{i}", str(rng.randrange(6)), cpu_used=rng.randrange(11),
                             mem_used=rng.randrange(11), dc=f"d{i}") for i in range(8))
        net = FakeNet({str(n): ok(rng.randrange(1, 5)) for n in range(6)})
        demand = Demand(rng.randrange(4), rng.randrange(4), 0)
        a = rng.choice((0.0, 0.3, 0.5, 1.0))
        ab = get("AB", a=a).choose("1", demand, app, NoNet())
        glb = get("GLB", a=a, k=1).choose("1", demand, app, net)
        assert type(ab) is type(glb)
        if ab.ok:
            assert glb.server == ab.server
        else:
            assert (glb.stratum, glb.reason) == (APPLICATION, NO_SERVER_FITS)


def test_glb_skips_infeasible_candidates_and_normalises_n_over_the_feasible():
    app, net = trio()
    net.paths["3"] = bad("no-wavelength")
    choice = get("GLB", k=3).choose("0", SMALL, app, net)
    # A_max stays over the K candidates (0.3), N_max over those with a path (4).
    assert x(0.5, 0.3, 0.3, 1, 4) < x(0.5, 0.1, 0.3, 4, 4)
    assert choice.server.server == "s2"
    assert choice.details["x"] == pytest.approx(x(0.5, 0.3, 0.3, 1, 4))
    assert choice.details["feasible"] == 2
    net.paths["1"] = ok(6)          # now s2 (N=1 of 6) beats s1 even more, and N_max follows
    assert get("GLB", k=3).choose("0", SMALL, app, net).details["N_max"] == 6.0


def test_glb_refuses_on_the_network_when_no_candidate_is_feasible():
    app, net = trio()
    net.paths = {"1": bad("disconnected"), "3": bad("no-wavelength", "all 40 taken")}
    refusal = get("GLB", k=2).choose("0", SMALL, app, net)
    assert isinstance(refusal, Refusal) and not refusal and not refusal.ok
    assert (refusal.stratum, refusal.reason) == (NETWORK, "no-wavelength")
    assert "all 40 taken" in refusal.detail and "2 candidate" in refusal.detail
    # Exactly GLB (docs/strategies.md): s2 has a path but is not among the K=2 candidates.
    assert net.paths.get("2") is None


def test_glb_server_at_the_source_needs_no_lightpath_and_costs_nothing():
    app = AppView([server("far", "1"), server("here", "0", cpu_used=2, mem_used=2)])
    net = FakeNet({"1": ok(3)})
    choice = get("GLB", b=0.5).choose("0", SMALL, app, net)
    # far: x = 0 + 0.5·3/3 = 0.5; here: x = 0.5·0.2/0.2 + 0 = 0.5: the tie goes to lower A.
    assert choice.server.server == "far"
    choice = get("GLB", b=0.4).choose("0", SMALL, app, net)
    assert (choice.server.server, choice.path, choice.details["N"]) == ("here", LOCAL_PATH, 0.0)
    assert net.calls == [("0", ["1"]), ("0", ["1"])]    # the source node is never asked
    net.calls.clear()
    get("GLB", k=1).choose("0", SMALL, AppView([server("here", "0")]), net)
    assert net.calls == []


def test_glb_zero_maxima_make_their_terms_zero():
    app = AppView([server("a", "1"), server("b", "2")])        # A = 0 everywhere
    choice = get("GLB").choose("0", SMALL, app, FakeNet({"1": ok(2), "2": ok(1)}))
    assert (choice.server.server, choice.details["x"]) == ("b", 0.5 * 1 / 2)
    local = AppView([server("a", "0"), server("b", "0")])       # N = 0 everywhere
    choice = get("GLB").choose("0", SMALL, local, NoNet())
    assert (choice.server.server, choice.details["x"]) == ("a", 0.0)


# -- ties, refusals -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["AB", "NB", "GLB"])
def test_ties_are_broken_by_node_dc_and_server_id_whatever_the_input_order(name):
    states = [server("z", "10"), server("b", "2", dc="dcB"), server("a", "2", dc="dcB"),
              server("c", "2", dc="dcA"), server("y", "3")]
    net = FakeNet(default=ok(2))
    picks = set()
    for seed in range(10):
        shuffled = states[:]
        random.Random(seed).shuffle(shuffled)
        picks.add(get(name).choose("0", SMALL, AppView(shuffled), net).server.server)
    assert picks == {"c"}       # node "2" < "3" < "10", then dcA < dcB


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_application_refusal_when_nothing_fits(name):
    app = AppView([server("full", "1", cpu_used=10), server("down", "2", up=False)])
    refusal = get(name).choose("0", Demand(1, 0, 0), app, NoNet())
    assert (refusal.stratum, refusal.reason) == (APPLICATION, NO_SERVER_FITS)
    assert "2 server(s), 1 up" in refusal.detail
    empty = get(name).choose("0", SMALL, AppView([]), NoNet())
    assert (empty.stratum, empty.reason) == (APPLICATION, NO_SERVER_FITS)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_down_and_full_servers_are_never_chosen(name):
    app = AppView([server("down", "1", up=False), server("full", "2", mem_used=9.5),
                   server("free", "3", cpu_used=5, mem_used=5)])
    net = FakeNet(default=ok(1))
    for _ in range(20):
        assert get(name).choose("0", Demand(1, 1, 0), app, net).server.server == "free"


# -- NB -------------------------------------------------------------------------------------

def test_nb_picks_min_hops_with_one_call_over_distinct_nodes():
    app = AppView([server("a", "1"), server("b", "1", dc="dc1"), server("c", "2"),
                   server("d", "3", mem_used=5), server("e", "4", mem_used=1)])
    net = FakeNet({"1": ok(3, te_cost=1), "2": bad("no-wavelength"), "3": ok(1, te_cost=9),
                   "4": ok(1, te_cost=9)})
    choice = get("NB").choose("0", SMALL, app, net)
    # Fewest hops (not least TE cost); of "d" and "e" at 1 hop, "e" has the lower A.
    assert (choice.server.server, choice.path.hops, choice.details["hops"]) == ("e", 1, 1)
    assert net.calls == [("0", ["1", "2", "3", "4"])]


def test_nb_prefers_a_server_at_the_source_node():
    app = AppView([server("near", "1"), server("here", "0", cpu_used=9)])
    choice = get("NB").choose("0", SMALL, app, FakeNet({"1": ok(1)}))
    assert (choice.server.server, choice.path) == ("here", LOCAL_PATH)


def test_nb_network_refusal_names_the_most_informative_reason():
    app = AppView([server("a", "1"), server("b", "2"), server("c", "3")])
    net = FakeNet({"1": bad("disconnected"), "2": bad("delay-exceeded", "too far"),
                   "3": bad("unknown-endpoint")})
    refusal = get("NB").choose("0", SMALL, app, net)
    assert (refusal.stratum, refusal.reason) == (NETWORK, "delay-exceeded")
    assert "to 2: too far" in refusal.detail and "3 candidate node(s)" in refusal.detail


# -- RB -------------------------------------------------------------------------------------

def test_rb_is_reproducible_for_a_seed_and_picks_only_fitting_servers():
    app = AppView([server(f"s{i}", str(i), cpu_used=(9 if i % 3 == 0 else 0)) for i in range(9)])
    demand = Demand(2, 0, 0)

    def run(rb):
        return [rb.choose("0", demand, app, NoNet()).server.server for _ in range(300)]

    first = run(get("RB", rng=7))
    assert first == run(get("RB", rng=random.Random(7)))
    assert first != run(get("RB", rng=8))
    assert set(first) == {f"s{i}" for i in range(9) if i % 3}


# -- registry -------------------------------------------------------------------------------

def test_registry_and_parameters():
    assert set(STRATEGIES) == {"RB", "AB", "NB", "GLB", "GLB-D"}
    glb = get("glb", a=0.2, b=0.7, k=3)
    assert (glb.name, glb.a, glb.b, glb.k) == ("GLB", 0.2, 0.7, 3)
    assert repr(glb) == "GLB(a=0.2, b=0.7, k=3)"
    with pytest.raises(ValueError, match="unknown strategy 'XB'; known: RB, AB, NB, GLB"):
        get("XB")
    with pytest.raises(ValueError, match=r"takes no parameter\(s\) \['b'\]"):
        get("AB", b=0.5)
    for bad_params in ({"a": 1.5}, {"b": -0.1}, {"k": 0}, {"k": 2.0}, {"a": True}):
        with pytest.raises(ValueError):
            get("GLB", **bad_params)


def test_build_keeps_the_parameters_a_strategy_takes_and_sse_runs_it():
    offered = {"a": 0.2, "b": 0.7, "k": 3, "rng": 5}
    assert repr(build("ab", **offered)) == "AB(a=0.2)"
    assert repr(build("GLB", **offered)) == "GLB(a=0.2, b=0.7, k=3)"
    with pytest.raises(ValueError, match="unknown strategy 'XB'"):
        build("XB", **offered)
    sse = Sse.named("glb", **offered)
    assert (sse.name, repr(sse)) == ("GLB", "Sse(GLB(a=0.2, b=0.7, k=3))")
    app, net = trio()
    assert sse.choose("0", SMALL, app, net) == build("GLB", **offered).choose("0", SMALL, *trio())


# -- resources ------------------------------------------------------------------------------

def test_server_state_utilisation_fit_allocate_release():
    state = server("s", "1", cpu=16, mem=64.0, disk=1000.0)
    assert state.app_utilisation() == 0.0
    demand = Demand(4, 48.0, 100.0)
    taken = state.allocate(demand)
    assert (taken.cpu_util, taken.memory_util, taken.disk_util) == (0.25, 0.75, 0.1)
    assert taken.app_utilisation(0.5) == 0.5 and taken.app_utilisation(1) == 0.75
    assert taken.app_utilisation(0.0) == 0.25 and state.cpu_used == 0    # frozen: unchanged
    assert not taken.fits(Demand(1, 16.5, 0)) and taken.fits(Demand(12, 16.0, 900.0))
    with pytest.raises(ValueError, match="does not fit"):
        taken.allocate(Demand(13, 0, 0))
    odd = Demand(0.1, 0.2, 0.3)
    back = taken.allocate(odd).release(odd).release(demand)
    assert (back.cpu_used, back.memory_used, back.disk_used) == (0, 0, 0)
    with pytest.raises(ValueError, match="does not hold"):
        state.release(SMALL)
    with pytest.raises(ValueError):
        Demand(-1, 0, 0)
    assert not server("d", "1", up=False).fits(Demand(0, 0, 0))
    assert server("z", "1", cpu=0).cpu_util == 1.0       # no cores: counts as full


def test_app_view_from_topology_and_as_a_pool():
    app = AppView.from_topology(load("nsfnet"))
    assert len(app) == 20 and "dc1-s0" in app
    assert [s.node for s in app.servers[::4]] == ["1", "4", "7", "9", "12"]
    assert all(s.up and s.app_utilisation() == 0 and s.cpu_total == 16 for s in app.servers)
    twin = app.copy()
    app.allocate("dc4-s1", Demand(8, 32, 0))
    assert app.get("dc4-s1").app_utilisation() == 0.5 and twin.get("dc4-s1").cpu_used == 0
    assert sorted(app.utilisations())[-1] == 0.5
    app.set_up("dc4-s1", False)
    assert app.get("dc4-s1") not in app.fitting(SMALL) and len(app.fitting(SMALL)) == 19
    app.release("dc4-s1", Demand(8, 32, 0))
    app.update(server("dc4-s1", "4", dc="dc4"))
    assert app.get("dc4-s1").up
    with pytest.raises(ValueError, match="duplicate server id 'x'"):
        AppView([server("x", "1"), server("x", "2")])


def test_path_info_from_asi():
    answer = {"results": [
        {"dst": "4", "node": "4", "feasible": True, "route": ["0", "1", "3", "4"], "hops": 3,
         "te_cost": 3.2, "delay_ms": 13.5, "free_wavelengths": 39},
        {"dst": "9", "node": "9", "feasible": False, "reason": "no-wavelength", "detail": "x"},
        {"dst": "10.9.9.9", "feasible": False, "reason": "unknown-endpoint"}]}
    assert path_infos_from_asi(answer) == {
        "4": PathInfo(True, 3, 3.2, 13.5, 39),
        "9": PathInfo(False, reason="no-wavelength", detail="x"),
        "10.9.9.9": PathInfo(False, reason="unknown-endpoint")}
    assert path_info_from_asi({"feasible": False}).reason == "infeasible"


# -- on NSFNET with the real SA-PCE ---------------------------------------------------------

@pytest.fixture
def nsfnet():
    topo = load("nsfnet")
    pce = PCE(TED(topo))
    return topo, pce, AppView.from_topology(topo), PceNetworkView(pce)


def test_asi_and_pce_give_the_same_path_info(nsfnet):
    """The live AC (ASI JSON) and the simulator (PCE) see the same PathInfo for one state."""
    from sc_app.sa import describe        # what the SC's ASI evaluate puts in each result
    topo, pce, _, net = nsfnet
    pce.ted.set_admin("5-13", False)
    for w in range(40):
        pce.ted.occupy(["0-1"], w, f"lp{w}")     # full: 0 -> 1 must detour
    nodes = list(topo.nodes)
    for src in nodes:
        answers = net.evaluate(src, nodes)
        for dst in nodes:
            wire = json.loads(json.dumps(describe(pce.compute(src, dst))))
            assert path_info_from_asi(wire) == answers[dst], (src, dst)
    assert net.evaluate("0", ["1"])["1"].hops == 2           # the detour around 0-1
    assert net.evaluate("1", ["1"])["1"].reason == "same-node"   # strategies never ask this


def test_strategies_on_nsfnet_with_the_real_pce(nsfnet):
    topo, pce, app, net = nsfnet
    demand = Demand(2, 8, 50)
    assert get("NB").choose("0", demand, app, net).node == "1"
    glb = get("GLB").choose("0", demand, app, net)
    # Idle: the K=5 candidates are dc1's four servers and dc4-s0; dc1 is one hop away.
    assert (glb.server.server, glb.details["N"], glb.details["N_max"]) == ("dc1-s0", 1.0, 3.0)
    # Load dc1 (A = 0.5): the candidates become dc4's servers and dc7-s0, one hop away.
    for sid in ("dc1-s0", "dc1-s1", "dc1-s2", "dc1-s3"):
        app.allocate(sid, Demand(8, 32, 0))
    glb = get("GLB").choose("0", demand, app, net)
    assert (glb.server.server, glb.path.te_cost, glb.details["A"]) == ("dc7-s0", 1.0, 0.0)
    # Half fill fibre 0-7: its TE weight, hence N, grows with its load.
    for w in range(20):
        pce.ted.occupy(["0-7"], w, f"lp{w}")
    glb = get("GLB").choose("0", demand, app, net)
    assert glb.path.te_cost == pce.ted.effective_te_weight("0-7") == 1.5
    assert (glb.node, glb.details["N_max"]) == ("7", 3.0)
    # Constraints apply to every evaluation: only dc1, loaded as it is, remains.
    near = PceNetworkView(pce, Constraints(max_hops=1, exclude_nodes=("7",)))
    assert get("NB").choose("0", demand, app, near).node == "1"
    assert get("GLB", k=20).choose("0", demand, app, near).node == "1"
    # Cut Seattle off: the strategies that consult the network refuse, the others choose.
    for link in ("0-1", "0-2", "0-7"):
        pce.ted.set_admin(link, False)
    for name in ("NB", "GLB"):
        refusal = get(name).choose("0", demand, app, net)
        assert (refusal.stratum, refusal.reason) == (NETWORK, "disconnected")
    assert get("AB").choose("0", demand, app, net).ok and get("RB").choose(
        "0", demand, app, net).ok


# -- GLB-D (beyond GLB) ---------------------------------------------------------------------

def dcs_three():
    """dc1 (far, node 1) holds the two least-loaded servers; dc3 (node 3) is nearer."""
    return AppView([server("a", "1", cpu_used=1, mem_used=1, dc="dc1"),     # A = 0.1
                    server("b", "1", cpu_used=1, mem_used=1, dc="dc1"),     # A = 0.1
                    server("c", "1", cpu_used=2, mem_used=2, dc="dc1"),     # A = 0.2
                    server("d", "2", cpu_used=3, mem_used=3, dc="dc2"),     # A = 0.3
                    server("e", "2", cpu_used=4, mem_used=4, dc="dc2"),     # A = 0.4
                    server("f", "3", cpu_used=2, mem_used=2, dc="dc3")])    # A = 0.2


def test_glb_d_follows_the_formula_over_one_server_per_dc():
    app = dcs_three()
    net = FakeNet({"1": ok(5), "2": ok(1), "3": ok(2)})
    # GLB with K=2 takes a and b, both in dc1: step 2 has no network choice to make.
    assert get("GLB", k=2).choose("0", SMALL, app, net).server.server == "a"
    net.calls.clear()
    choice = get("GLB-D", k=2).choose("0", SMALL, app, net)
    # Per DC: a (0.1), d (0.3), f (0.2); the K=2 least loaded are a and f.
    by_hand = {"a": x(0.5, 0.1, 0.2, 5, 5), "f": x(0.5, 0.2, 0.2, 2, 5)}     # 0.75, 0.70
    assert min(by_hand, key=by_hand.get) == "f"
    assert (choice.server.server, choice.path) == ("f", ok(2))
    assert choice.details["x"] == pytest.approx(by_hand["f"])
    assert (choice.details["A_max"], choice.details["N_max"]) == (0.2, 5.0)
    assert choice.details["candidates"] == 2
    assert net.calls == [("0", ["1", "3"])]            # one call, one node per DC
    # K=3: d joins; A_max 0.3 and the x of each candidate change accordingly.
    choice = get("GLB-D", k=3).choose("0", SMALL, app, net)
    by_hand = {"a": x(0.5, 0.1, 0.3, 5, 5), "d": x(0.5, 0.3, 0.3, 1, 5),
               "f": x(0.5, 0.2, 0.3, 2, 5)}           # 0.667, 0.600, 0.533
    assert min(by_hand, key=by_hand.get) == "f" == choice.server.server
    assert choice.details["x"] == pytest.approx(by_hand["f"])


def test_glb_d_keeps_the_least_loaded_fitting_server_of_each_dc():
    # dc1's least-loaded server does not fit the demand: its next one represents dc1.
    app = AppView([server("a", "1", cpu_used=1, mem_used=1, cpu=2, dc="dc1"),
                   server("b", "1", cpu_used=3, mem_used=3, dc="dc1"),
                   server("c", "2", cpu_used=6, mem_used=6, dc="dc2")])
    choice = get("GLB-D", b=1.0).choose("0", Demand(2, 1, 0), app, FakeNet(default=ok(1)))
    assert (choice.server.server, choice.details["candidates"]) == ("b", 2)


def test_glb_d_equals_glb_when_every_dc_has_one_server():
    rng = random.Random(3)
    for _ in range(200):
        app = AppView([server(f"s{i}", str(i % 4), cpu_used=rng.randrange(10),
                              mem_used=rng.randrange(10), dc=f"dc{i}") for i in range(6)])
        net = FakeNet({str(n): (ok(rng.randrange(1, 5), te_cost=rng.uniform(1, 8))
                                if rng.random() < 0.8 else bad("no-wavelength"))
                       for n in range(1, 4)})
        params = {"b": rng.choice([0.0, 0.3, 0.5, 1.0]), "k": rng.randrange(1, 7)}
        demand = Demand(rng.randrange(1, 4), 1, 0)
        glb = get("GLB", **params).choose("0", demand, app, net)
        glb_d = get("GLB-D", **params).choose("0", demand, app, net)
        assert glb == glb_d


def test_glb_d_is_deterministic_whatever_the_input_order():
    states = [server("z", "10"), server("b", "2", dc="dcB"), server("a", "2", dc="dcB"),
              server("c", "3", dc="dcC"), server("y", "4")]
    net = FakeNet({"2": ok(1), "3": ok(1), "4": ok(2), "10": ok(1)})
    picks = set()
    for seed in range(10):
        shuffled = states[:]
        random.Random(seed).shuffle(shuffled)
        picks.add(get("GLB-D").choose("0", SMALL, AppView(shuffled), net).server.server)
    assert picks == {"a"}       # dcB (node "2") before dcC (node "3"); in dcB, "a" before "b"


def test_glb_d_refusals_and_parameters():
    app = dcs_three()
    refusal = get("GLB-D").choose("0", SMALL, app, FakeNet({"3": bad("no-wavelength")}))
    assert (refusal.stratum, refusal.reason) == (NETWORK, "no-wavelength")
    assert "3 candidate node(s)" in refusal.detail
    refusal = get("GLB-D").choose("0", Demand(20, 0, 0), app, NoNet())
    assert (refusal.stratum, refusal.reason) == (APPLICATION, NO_SERVER_FITS)
    assert "6 server(s), 6 up" in refusal.detail
    glb_d = get("glb-d", a=0.2, b=0.7, k=3)
    assert repr(glb_d) == "GLB-D(a=0.2, b=0.7, k=3)"
    for bad_params in ({"a": 1.5}, {"b": -0.1}, {"k": 0}):
        with pytest.raises(ValueError):
            get("GLB-D", **bad_params)


def test_glb_d_on_nsfnet_sees_every_dc(nsfnet):
    topo, pce, app, net = nsfnet
    calls = []

    class Counting:
        def evaluate(self, src, dsts):
            calls.append(list(dsts))
            return net.evaluate(src, dsts)

    demand = Demand(2, 8, 50)
    for sid in ("dc1-s0", "dc1-s1", "dc1-s2", "dc1-s3", "dc4-s0"):
        app.allocate(sid, Demand(1, 4, 0))
    # GLB's five candidates are dc4's three idle servers and dc7's first two; GLB-D's are
    # one server in each of the five DCs, evaluated in one call.
    glb = get("GLB").choose("0", demand, app, net)
    assert glb.details["candidates"] == 5 and glb.node in {"4", "7"}
    choice = get("GLB-D").choose("0", demand, app, Counting())
    assert len(calls) == 1 and len(set(calls[0])) == 5
    assert choice.details["candidates"] == 5 and choice.ok
