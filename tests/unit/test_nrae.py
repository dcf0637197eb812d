"""NRAE views: what an authorised AC may see of the network, and that it follows the TED."""
import json

import pytest

from sc_app import nrae
from sc_app.pce import PCE
from sc_app.ted import TED
from topologies.loader import load


def network(name):
    ted = TED(load(name))
    return ted, PCE(ted)


def test_the_full_view_shows_every_fibre_but_no_owner():
    ted, pce = network("ring")
    pce.reserve("0", "3", owner="lp-secret-1")
    view = nrae.full_view(ted)
    assert view["view"] == "full"
    assert {n["id"] for n in view["nodes"]} == set(ted.node_ids)
    links = {link["id"]: link for link in view["links"]}
    assert set(links) == set(ted.link_ids)
    assert all("owners" not in link for link in links.values())
    assert "lp-secret-1" not in json.dumps(view)
    assert [links[i]["free"] for i in ("0-1", "1-2", "2-3", "3-4")] == [3, 3, 3, 4]
    # The TED itself still knows who holds what: the view copies, it does not strip in place.
    assert ted.snapshot()["links"][0]["owners"] == {"0": "lp-secret-1"}


def test_virtual_node_view_has_one_node_per_domain_and_aggregates_inter_domain_fibres():
    ted, _pce = network("three-domain")
    view = nrae.virtual_node_view(ted)
    assert [(n["id"], n["nodes"], n["dcs"]) for n in view["nodes"]] == [
        ("A", 5, ["dc1"]), ("B", 5, ["dc6", "dc8"]), ("C", 5, ["dc12"])]
    # Domains A, B, C in a chain, each pair joined by two fibres; no A-C link.
    pairs = {(link["a"], link["b"]): link for link in view["links"]}
    assert set(pairs) == {("A", "B"), ("B", "C")}
    ab = pairs[("A", "B")]
    assert (ab["fibres"], ab["usable"], ab["free_wavelengths"]) == (2, 2, 80)
    # The shorter of Paris-Brussels (330 km) and Barcelona-Milan (910 km), at 5 us/km.
    assert ab["min_delay_ms"] == pytest.approx(330 * 0.005)
    assert pairs[("B", "C")]["min_delay_ms"] == pytest.approx(440 * 0.005)
    # Nothing inside a domain shows: no node ids, no intra-domain fibre.
    assert "Lisbon" not in json.dumps(view) and '"0-1"' not in json.dumps(view)


def test_virtual_node_view_follows_occupancy_and_link_state():
    ted, pce = network("three-domain")
    path = pce.reserve("4", "5", owner="lp-1")  # Paris-Brussels: one inter-domain fibre
    assert path.links == ("4-5",)
    ted.set_admin("2-8", False)
    ab = nrae.virtual_node_view(ted)["links"][0]
    assert (ab["a"], ab["b"]) == ("A", "B")
    assert (ab["fibres"], ab["usable"], ab["free_wavelengths"]) == (2, 1, 39)
    ted.set_admin("4-5", False)
    ab = nrae.virtual_node_view(ted)["links"][0]
    assert (ab["usable"], ab["free_wavelengths"], ab["min_delay_ms"]) == (0, 0, None)


def test_dc_mesh_has_one_entry_per_node_and_dc():
    ted, pce = network("three-domain")
    view = nrae.dc_mesh_view(pce)
    dcs = {d["node"]: d["dc"] for d in view["dcs"]}
    assert dcs == {"1": "dc1", "6": "dc6", "8": "dc8", "12": "dc12"}
    pairs = [(e["src"], e["dst"]) for e in view["links"]]
    assert sorted(pairs) == sorted((n, d) for n in ted.node_ids for d in dcs)
    assert len(pairs) == len(set(pairs)) == 15 * 4
    for entry in view["links"]:
        assert entry["dc"] == dcs[entry["dst"]]
        assert entry["feasible"] is True
        if entry["src"] == entry["dst"]:
            assert (entry["hops"], entry["delay_ms"]) == (0, 0.0)
        else:
            assert entry["hops"] >= 1 and entry["te_cost"] > 0 and entry["delay_ms"] > 0
            assert entry["free_wavelengths"] == 40


def test_dc_mesh_reflects_occupancy_and_failures():
    ted, pce = network("ring")

    def entry(src, dst):
        view = nrae.dc_mesh_view(pce)
        return next(e for e in view["links"] if (e["src"], e["dst"]) == (src, dst))

    before = entry("1", "3")
    assert (before["hops"], before["free_wavelengths"]) == (2, 4)
    pce.reserve("1", "3", owner="lp-1")
    after = entry("1", "3")
    assert (after["hops"], after["free_wavelengths"]) == (2, 3)
    assert after["te_cost"] > before["te_cost"]  # TE weight follows load
    ted.set_oper("1-2", False)
    assert entry("1", "3")["hops"] == 4  # the long way round
    ted.set_oper("0-1", False)
    cut = entry("1", "3")
    assert (cut["feasible"], cut["reason"]) == (False, "disconnected")


def test_view_by_name():
    _ted, pce = network("ring")
    assert [nrae.view(name, pce)["view"] for name in nrae.VIEWS] == list(nrae.VIEWS)
    with pytest.raises(ValueError):
        nrae.view("physical", pce)
