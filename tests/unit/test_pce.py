"""SA-PCE: answers, every no-path reason, constraints, policies, orders, caching, reserve."""
import dataclasses
import json

import pytest

from sc_app.pce import (PCE, Candidate, ConstraintError, Constraints, NoPath, Path, PathPair)
from sc_app.ted import TED, TedError, WavelengthConflict
from topologies.loader import from_dict, load


def topo(links, wavelengths=4, nodes=None, **defaults):
    """A topology from (a, b, km[, extra]) tuples."""
    raw_links = []
    for link in links:
        a, b, km = link[:3]
        raw_links.append({"a": a, "b": b, "length_km": km, **(link[3] if len(link) > 3 else {})})
    ids = nodes or sorted({x for link in links for x in link[:2]}, key=int)
    return from_dict({"name": "t", "defaults": {"wavelengths": wavelengths, **defaults},
                      "nodes": [{"id": i} for i in ids], "links": raw_links})


def square(**extra):
    """0-1-3 (short, 2 hops) and 0-2-3 (long, 2 hops), plus the diagonal 0-3 (1 hop, longest)."""
    return TED(topo([("0", "1", 100), ("1", "3", 100), ("0", "2", 300), ("2", "3", 300),
                     ("0", "3", 1000)], **extra))


@pytest.fixture
def nsf():
    return PCE(TED(load("nsfnet")))


# -- answers ----------------------------------------------------------------------------------

def test_nsfnet_path_and_its_json(nsf):
    path = nsf.compute("0", "13")
    assert isinstance(path, Path) and path.ok
    assert path.route == ("0", "2", "5", "13") and path.links == ("0-2", "2-5", "5-13")
    assert (path.wavelength, path.vlan, path.hops) == (0, 1000, 3)
    assert path.length_km == 5600 and path.delay_ms == pytest.approx(28.0)
    assert path.te_cost == 3.0 and path.free_wavelengths == tuple(range(40))
    data = json.loads(json.dumps(path.to_dict()))
    assert data["route"] == ["0", "2", "5", "13"] and data["wavelength"] == 0
    assert {"hops", "length_km", "delay_ms"} <= set(data)


def test_hop_ports_follow_the_topology(nsf):
    path = nsf.compute("0", "13")
    topology = nsf.ted.topology
    assert path.hop_ports[0].in_port is None and path.hop_ports[-1].out_port is None
    for hop, link in zip(path.hop_ports, path.links):
        assert hop.out_port == topology.link(link).port(hop.node)
    for hop, link in zip(path.hop_ports[1:], path.links):
        assert hop.in_port == topology.link(link).port(hop.node)


def test_compute_reserves_nothing(nsf):
    before = nsf.ted.snapshot()
    nsf.compute("0", "13")
    assert nsf.ted.snapshot() == before


# -- reasons ----------------------------------------------------------------------------------

def test_unknown_and_same_node(nsf):
    assert nsf.compute("0", "99").reason == "unknown-node"
    assert nsf.compute("x", "1").reason == "unknown-node"
    assert nsf.compute("0", "1", Constraints(include_nodes=("77",))).reason == "unknown-node"
    assert nsf.compute("4", "4").reason == "same-node"


def test_disconnected_by_link_state():
    ted = square()
    pce = PCE(ted)
    for link in ("0-1", "0-2", "0-3"):
        ted.set_oper(link, False)
    result = pce.compute("0", "3")
    assert isinstance(result, NoPath) and not result and result.reason == "disconnected"
    assert result.to_dict()["error"] == "no-path"


def test_excluded_nodes_links_and_srlgs():
    ted = TED(topo([("0", "1", 100, {"srlg": ["d"]}), ("1", "3", 100), ("0", "2", 300),
                    ("2", "3", 300, {"srlg": ["d"]})]))
    pce = PCE(ted)
    assert pce.compute("0", "3", Constraints(exclude_srlgs=("d",))).reason == "excluded"
    assert pce.compute("0", "3", Constraints(exclude_nodes=("1", "2"))).reason == "excluded"
    assert pce.compute("0", "3", Constraints(exclude_nodes=("3",))).reason == "excluded"
    assert pce.compute("0", "3", Constraints(exclude_links=("1-0", "2-3"))).reason == "excluded"
    assert pce.compute("0", "3", Constraints(exclude_links=("0-1",))).route == ("0", "2", "3")
    assert pce.compute("0", "3", Constraints(exclude_nodes=("2",))).route == ("0", "1", "3")


def test_bandwidth_avoids_thin_links_or_fails():
    ted = TED(topo([("0", "1", 100, {"capacity_gbps": 10}), ("1", "3", 100),
                    ("0", "2", 300), ("2", "3", 300)], capacity_gbps=100))
    pce = PCE(ted)
    assert pce.compute("0", "3").route == ("0", "1", "3")
    assert pce.compute("0", "3", Constraints(bandwidth_gbps=40)).route == ("0", "2", "3")
    assert pce.compute("0", "3", Constraints(bandwidth_gbps=100)).route == ("0", "2", "3")
    assert pce.compute("0", "3", Constraints(bandwidth_gbps=101)).reason == "bandwidth-exceeded"
    # exclusions are checked before bandwidth: they are the ones that cut the graph here
    result = pce.compute("0", "3", Constraints(bandwidth_gbps=40, exclude_nodes=("2",)))
    assert result.reason == "bandwidth-exceeded"
    result = pce.compute("0", "3", Constraints(bandwidth_gbps=40,
                                               exclude_nodes=("1", "2")))
    assert result.reason == "excluded"


def test_include_nodes():
    ted = TED(topo([("0", "1", 100), ("1", "2", 100), ("0", "3", 100), ("3", "2", 100),
                    ("2", "4", 10)]))
    pce = PCE(ted)
    assert pce.compute("0", "2").route == ("0", "1", "2")
    assert pce.compute("0", "2", Constraints(include_nodes=("3",))).route == ("0", "3", "2")
    # 4 is a dead end: no simple path from 0 to 1 can visit it
    assert pce.compute("0", "1", Constraints(include_nodes=("4",))).reason == \
        "include-unsatisfied"


def test_hops_delay_jitter_and_no_wavelength():
    ted = TED(topo([("0", "1", 100, {"jitter_ms": 1}), ("1", "3", 100, {"jitter_ms": 1}),
                    ("0", "3", 1000, {"jitter_ms": 5})], wavelengths=2))
    pce = PCE(ted)
    assert pce.compute("0", "3").route == ("0", "3")
    assert pce.compute("0", "3", Constraints(max_hops=0)).reason == "hops-exceeded"
    assert pce.compute("0", "3", Constraints(max_delay_ms=4.9)).route == ("0", "1", "3")
    assert pce.compute("0", "3", Constraints(max_delay_ms=0.9)).reason == "delay-exceeded"
    assert pce.compute("0", "3", Constraints(max_delay_ms=1.0)).route == ("0", "1", "3")
    assert pce.compute("0", "3", Constraints(max_jitter_ms=2)).route == ("0", "1", "3")
    assert pce.compute("0", "3", Constraints(max_jitter_ms=1.5)).reason == "jitter-exceeded"
    for w in range(2):
        ted.occupy(["0-1"], w, f"x{w}")
        ted.occupy(["0-3"], w, f"y{w}")
    assert pce.compute("0", "3").reason == "no-wavelength"


def test_reason_is_the_furthest_check_any_candidate_reached():
    # candidate 1 (0-3, 1 hop) has no free wavelength; candidate 2 (0-1-3) is too long
    ted = TED(topo([("0", "1", 100), ("1", "3", 100), ("0", "3", 1000)], wavelengths=1))
    ted.occupy(["0-3"], 0, "x")
    pce = PCE(ted)
    result = pce.compute("0", "3", Constraints(max_hops=1))
    assert result.reason == "no-wavelength"
    # both candidates are too long: delay is the last check any of them reached
    assert pce.compute("0", "3", Constraints(max_delay_ms=0.5)).reason == "delay-exceeded"


def test_no_path_detail_is_informative(nsf):
    result = nsf.compute("0", "13", Constraints(max_hops=2))
    assert result.reason == "hops-exceeded" and "5 candidate(s)" in result.detail


# -- constraints ------------------------------------------------------------------------------

def test_constraints_validation_and_round_trip():
    with pytest.raises(ConstraintError):
        Constraints(max_hops=-1)
    with pytest.raises(ConstraintError):
        Constraints(max_hops=2.5)
    with pytest.raises(ConstraintError):
        Constraints(bandwidth_gbps="10")
    with pytest.raises(ConstraintError):
        Constraints(max_delay_ms=True)
    with pytest.raises(ConstraintError, match="unknown constraint"):
        Constraints.from_dict({"max_hop": 3})
    with pytest.raises(ConstraintError):
        Constraints.from_dict([1])
    c = Constraints.from_dict({"max_hops": 0, "include_nodes": ["1", "2"],
                               "exclude_links": "0-1,1-2", "bandwidth_gbps": 10})
    assert c.include_nodes == ("1", "2") and c.exclude_links == ("0-1", "1-2")
    assert Constraints.from_dict(c.to_dict()) == c
    assert c.to_dict()["max_hops"] == 0
    assert Constraints.from_dict(None) == Constraints() and Constraints().to_dict() == {}


def test_unknown_ids_in_exclusions_are_errors(nsf):
    with pytest.raises(ConstraintError, match="unknown link"):
        nsf.compute("0", "13", Constraints(exclude_links=("0-13",)))
    with pytest.raises(ConstraintError, match="unknown SRLG"):
        nsf.compute("0", "13", Constraints(exclude_srlgs=("nope",)))
    with pytest.raises(ConstraintError, match="unknown node"):
        nsf.compute("0", "13", Constraints(exclude_nodes=("99",)))


def test_constructor_rejects_bad_settings():
    ted = square()
    for kwargs in ({"order": "cost"}, {"policy": "best-fit"}, {"k": 0}):
        with pytest.raises(ValueError):
            PCE(ted, **kwargs)


# -- orders and policies ----------------------------------------------------------------------

def test_orders_hops_length_and_te():
    ted = square()
    assert PCE(ted, order="hops").compute("0", "3").route == ("0", "3")
    assert PCE(ted, order="length").compute("0", "3").route == ("0", "1", "3")
    ted = TED(ted.topology, load_weight=4)
    te = PCE(ted, order="te")
    assert te.compute("0", "3").route == ("0", "3")   # base weight 1 per link
    # load on 0-3 lifts its effective weight to 1 * (1 + 4 * 3/4) = 4 > 2
    for w in range(3):
        ted.occupy(["0-3"], w, f"x{w}")
    result = te.compute("0", "3")
    assert result.route == ("0", "1", "3") and result.te_cost == 2.0
    assert te.candidates("0", "3")[-1].path.te_cost == pytest.approx(4.0)
    # load on 0-1 now makes 0-2-3 the cheapest
    ted.occupy(["0-1"], 0, "y")
    assert te.compute("0", "3").route == ("0", "2", "3")


def test_ties_are_broken_by_node_ids():
    ted = TED(topo([("0", "2", 100), ("2", "3", 100), ("0", "1", 100), ("1", "3", 100)]))
    pce = PCE(ted)
    routes = [c.path.route for c in pce.candidates("0", "3")]
    assert routes == [("0", "1", "3"), ("0", "2", "3")]


def test_first_fit_most_used_and_random_fit():
    ted = square(wavelengths=8)
    ted.occupy(["0-3"], 0, "a")
    ted.occupy(["0-1", "1-3"], 5, "b")     # 5 is used on two links
    ted.occupy(["0-2"], 6, "c")
    assert PCE(ted).compute("0", "3").wavelength == 1
    assert PCE(ted, policy="most-used").compute("0", "3").wavelength == 5
    ted.occupy(["0-1", "1-3", "2-3"], 6, "d")   # now 6 is on four links, 5 on two
    assert PCE(ted, policy="most-used").compute("0", "3").wavelength == 6
    # ties go to the lowest index
    assert PCE(square(wavelengths=8), policy="most-used").compute("0", "3").wavelength == 0
    picks = [PCE(ted, policy="random-fit", seed=s).compute("0", "3").wavelength
             for s in range(20)]
    assert set(picks) <= {1, 2, 3, 4, 5, 6, 7} and len(set(picks)) > 1
    again = [PCE(ted, policy="random-fit", seed=s).compute("0", "3").wavelength
             for s in range(20)]
    assert picks == again


def test_same_inputs_same_outputs():
    def run():
        pce = PCE(TED(load("nsfnet")), policy="random-fit", seed=7)
        out = []
        for i in range(60):
            result = pce.reserve(str(i % 14), str((i * 5 + 3) % 14), owner=f"lp{i}")
            out.append(result.to_dict())
        return out
    assert run() == run()


# -- caching ----------------------------------------------------------------------------------

def test_candidates_are_cached_and_occupancy_keeps_the_cache(nsf):
    nsf.compute("0", "13")
    info = nsf.cache_info()
    assert info["entries"] == 1 and info["routes"] == 1   # lazy: only the first was needed
    path = nsf.reserve("0", "13", owner="lp")
    nsf.release(path, "lp")
    assert nsf.cache_info() == info


def test_state_change_invalidates_the_cache(nsf):
    assert nsf.compute("0", "13").route == ("0", "2", "5", "13")
    nsf.ted.set_admin("2-5", False)
    assert nsf.cache_info()["version"] != nsf.ted.version
    assert nsf.compute("0", "13").route == ("0", "7", "8", "11", "13")
    assert nsf.cache_info()["entries"] == 1
    nsf.ted.set_admin("2-5", True)
    assert nsf.compute("0", "13").route == ("0", "2", "5", "13")


def test_further_candidates_are_generated_only_when_needed():
    ted = square(wavelengths=1)
    pce = PCE(ted)
    ted.occupy(["0-3"], 0, "x")
    assert pce.compute("0", "3").route == ("0", "1", "3")
    assert pce.cache_info()["routes"] == 2


def test_candidates_list_metrics_masks_and_reasons():
    ted = square()
    ted.occupy(["1-3"], 0, "x")
    pce = PCE(ted, k=2)
    cands = pce.candidates("0", "3", Constraints(max_delay_ms=2))
    assert [c.path.route for c in cands] == [("0", "3"), ("0", "1", "3")]
    assert all(isinstance(c, Candidate) and c.path.wavelength is None for c in cands)
    assert [c.reason for c in cands] == ["delay-exceeded", None]
    assert cands[1].feasible and cands[1].path.free_wavelengths == (1, 2, 3)
    assert cands[0].path.free_wavelengths == (0, 1, 2, 3)
    assert pce.candidates("0", "0").reason == "same-node"
    ted.set_admin("0-3", False)
    ted.set_admin("0-1", False)
    ted.set_admin("0-2", False)
    assert pce.candidates("0", "3").reason == "disconnected"


def test_evaluate_answers_per_destination(nsf):
    answers = nsf.evaluate("0", ["1", "13", "0", "42"], Constraints(max_hops=2))
    assert answers["1"].route == ("0", "1") and answers["1"].te_cost == 1.0
    assert answers["13"].reason == "hops-exceeded"
    assert answers["0"].reason == "same-node" and answers["42"].reason == "unknown-node"


# -- reserve / release / restore --------------------------------------------------------------

def test_reserve_then_release_restores_the_exact_state(nsf):
    nsf.reserve("1", "8", owner="bg")
    before = nsf.ted.snapshot()["links"]
    path = nsf.reserve("0", "13", owner="lp1")
    assert nsf.ted.held("lp1") == {path.wavelength: tuple(sorted(path.links))}
    assert path.wavelength not in path.free_wavelengths
    nsf.release(path, "lp1")
    assert nsf.ted.snapshot()["links"] == before


def test_successive_reservations_never_share_a_wavelength_on_a_link():
    ted = square(wavelengths=2)
    pce = PCE(ted)
    paths = [pce.reserve("0", "3", owner=f"lp{i}") for i in range(7)]
    assert [p.ok for p in paths] == [True] * 6 + [False]
    assert paths[-1].reason == "no-wavelength"
    seen = set()
    for path in paths[:-1]:
        for link in path.links:
            assert (link, path.wavelength) not in seen
            seen.add((link, path.wavelength))


def test_release_by_another_owner_fails(nsf):
    path = nsf.reserve("0", "13", owner="lp1")
    with pytest.raises(WavelengthConflict):
        nsf.release(path, "lp2")
    with pytest.raises(TedError, match="no wavelength"):
        nsf.release(dataclasses.replace(path, wavelength=None), "lp1")


def test_restore_reoccupies_a_known_lightpath(nsf):
    path = nsf.restore(["0", "2", "5", "13"], 7, "lp-old")
    assert path.links == ("0-2", "2-5", "5-13") and path.wavelength == 7
    assert nsf.ted.owner("2-5", 7) == "lp-old"
    assert nsf.compute("0", "13").wavelength == 0
    with pytest.raises(WavelengthConflict):
        nsf.restore(["13", "5"], 7, "other")
    again = nsf.restore(["13", "5"], 8, "other", links=["5-13"])
    assert again.route == ("13", "5")
    for bad in (["0", "13"], ["0"], ["0", "99"], ["0", "2", "0"]):
        with pytest.raises(TedError):
            nsf.restore(bad, 1, "x")
    with pytest.raises(TedError):
        nsf.restore(["0", "2"], 1, "x", links=["2-5"])


# -- disjoint pairs ---------------------------------------------------------------------------

def test_disjoint_pair_link_and_srlg():
    ted = TED(topo([("0", "1", 100, {"srlg": ["d"]}), ("1", "3", 100),
                    ("0", "2", 150), ("2", "3", 150, {"srlg": ["d"]}),
                    ("0", "4", 400), ("4", "3", 400)]))
    pce = PCE(ted, order="length")
    pair = pce.disjoint_pair("0", "3")
    assert isinstance(pair, PathPair) and pair.mode == "link"
    assert (pair.working.route, pair.protection.route) == (("0", "1", "3"), ("0", "2", "3"))
    pair = pce.disjoint_pair("0", "3", mode="srlg")
    assert (pair.working.route, pair.protection.route) == (("0", "1", "3"), ("0", "4", "3"))
    data = pair.to_dict()
    assert data["route"] == ["0", "1", "3"] and data["protection"]["route"] == ["0", "4", "3"]
    with pytest.raises(ValueError):
        pce.disjoint_pair("0", "3", mode="node")


def test_disjoint_pair_finds_the_trap_topology_pair():
    # The shortest path 0-1-2-3 blocks every disjoint partner: Suurballe finds 0-1-3 / 0-2-3.
    ted = TED(topo([("0", "1", 1), ("1", "2", 1), ("2", "3", 1), ("0", "2", 10),
                    ("1", "3", 10)]))
    pair = PCE(ted, order="length", k=1).disjoint_pair("0", "3")
    links = set(pair.working.links) | set(pair.protection.links)
    assert not set(pair.working.links) & set(pair.protection.links)
    assert links == {"0-1", "1-3", "0-2", "2-3"}


def test_disjoint_pair_failures():
    chain = PCE(TED(topo([("0", "1", 1), ("1", "2", 1), ("0", "3", 1), ("3", "1", 1)])))
    assert chain.disjoint_pair("0", "2").reason == "no-disjoint-pair"
    assert chain.disjoint_pair("0", "2", Constraints(max_hops=1)).reason == "hops-exceeded"
    assert chain.disjoint_pair("0", "9").reason == "unknown-node"
    chain.ted.set_oper("1-2", False)
    assert chain.disjoint_pair("0", "2").reason == "disconnected"


def test_reserve_pair_and_its_rollback(monkeypatch):
    ted = square()
    pce = PCE(ted)
    before = ted.snapshot()["links"]
    pair = pce.reserve_pair("0", "3", owner="p")
    assert ted.owner(pair.working.links[0], pair.working.wavelength) == "p"
    assert ted.owner(pair.protection.links[0], pair.protection.wavelength) == "p"
    pce.release(pair, "p")
    assert ted.snapshot()["links"] == before
    calls = []
    real = ted.occupy_indices

    def second_fails(indices, wavelength, owner):
        calls.append(indices)
        if len(calls) == 2:
            raise WavelengthConflict("injected")
        real(indices, wavelength, owner)
    monkeypatch.setattr(ted, "occupy_indices", second_fails)
    with pytest.raises(WavelengthConflict):
        pce.reserve_pair("0", "3", owner="p")
    assert ted.snapshot()["links"] == before
