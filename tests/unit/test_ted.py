"""TED: occupancy bitmaps and owners, atomicity, state, TE weights, events, snapshots."""
import json

import pytest

from sc_app.ted import (FREED, LINK_STATE, NODE_STATE, OCCUPIED, TE_WEIGHT, TED, TedError,
                        WavelengthConflict, natural_key)
from topologies.loader import from_dict, load


def small(**link_extra):
    """A triangle 0-1-2 plus a spur 2-3, W=4, with a DC at node 3."""
    links = [{"a": "0", "b": "1", "length_km": 100, "srlg": ["duct-a"]},
             {"a": "1", "b": "2", "length_km": 200, "te_weight": 3},
             {"a": "0", "b": "2", "length_km": 400, "srlg": ["duct-a"], **link_extra},
             {"a": "2", "b": "3", "length_km": 50, "jitter_ms": 0.5}]
    nodes = [{"id": "0", "domain": "A"}, {"id": "1", "domain": "A"}, {"id": "2", "domain": "B"},
             {"id": "3", "domain": "B", "dc": {"id": "dc3", "servers": [
                 {"id": "s0", "cpu": 4, "memory_gb": 8, "disk_gb": 100}]}}]
    return TED(from_dict({"name": "small", "defaults": {"wavelengths": 4},
                          "nodes": nodes, "links": links}))


def test_nsfnet_is_loaded_with_full_free_bitmaps():
    ted = TED(load("nsfnet"))
    assert len(ted.node_ids) == 14 and len(ted.link_ids) == 21
    assert ted.graph.number_of_nodes() == 14 and ted.graph.number_of_edges() == 21
    assert all(ted.free_mask(link) == (1 << 40) - 1 for link in ted.link_ids)
    assert ted.node_ids[:3] == ("0", "1", "2") and ted.node_ids[-1] == "13"


def test_natural_order_of_node_ids():
    assert sorted(["10", "2", "b", "a", "1"], key=natural_key) == ["1", "2", "10", "a", "b"]


def test_link_lookup_accepts_either_direction_and_rejects_unknown():
    ted = small()
    assert ted.link("1-0").id == "0-1"
    with pytest.raises(TedError, match="unknown link"):
        ted.index("0-3")


def test_occupy_and_release_record_owner_and_bits():
    ted = small()
    ted.occupy(["0-1", "1-2"], 2, "lp1")
    assert ted.owner("0-1", 2) == "lp1" and ted.owner("1-2", 2) == "lp1"
    assert ted.free_mask("0-1") == 0b1011 and ted.used("1-2") == (2,)
    assert ted.held("lp1") == {2: ("0-1", "1-2")}
    assert ted.usage[2] == 2
    ted.release(["1-0", "1-2"], 2, "lp1")
    assert ted.free_mask("0-1") == 0b1111 and ted.held("lp1") == {}
    assert ted.usage[2] == 0


def test_double_booking_is_refused_and_nothing_is_taken():
    ted = small()
    ted.occupy(["1-2"], 1, "lp1")
    before = ted.snapshot()
    with pytest.raises(WavelengthConflict, match="1-2 is already held by 'lp1'"):
        ted.occupy(["0-1", "1-2"], 1, "lp2")
    assert ted.snapshot() == before
    assert ted.owner("0-1", 1) is None


@pytest.mark.parametrize("wavelength", [-1, 4, 100])
def test_wavelength_outside_the_grid_is_refused(wavelength):
    ted = small()
    with pytest.raises(TedError):
        ted.occupy(["0-1"], wavelength, "lp")
    assert ted.free_mask("0-1") == 0b1111


def test_a_link_listed_twice_or_no_link_is_refused():
    ted = small()
    with pytest.raises(TedError, match="twice"):
        ted.occupy(["0-1", "1-0"], 0, "lp")
    assert ted.owner("0-1", 0) is None
    with pytest.raises(TedError, match="no links"):
        ted.occupy([], 0, "lp")
    with pytest.raises(TedError, match="no links"):
        ted.release([], 0, "lp")
    assert ted.held("lp") == {}


def test_release_by_another_owner_is_refused_atomically():
    ted = small()
    ted.occupy(["0-1"], 0, "lp1")
    ted.occupy(["1-2"], 0, "lp2")
    with pytest.raises(WavelengthConflict, match="held by 'lp2', not 'lp1'"):
        ted.release(["0-1", "1-2"], 0, "lp1")
    assert ted.owner("0-1", 0) == "lp1" and ted.owner("1-2", 0) == "lp2"


def test_release_owner_frees_everything_it_holds():
    ted = small()
    ted.occupy(["0-1", "1-2"], 0, "lp1")
    ted.occupy(["0-2"], 3, "lp1")
    ted.occupy(["2-3"], 0, "other")
    assert ted.release_owner("lp1") == 3
    assert ted.held("lp1") == {} and ted.owner("2-3", 0) == "other"
    assert ted.release_owner("nobody") == 0


def test_te_weights_default_file_value_and_load_dependence():
    ted = small()
    assert ted.te_weight("0-1") == 1.0          # no te_weight in the file
    assert ted.te_weight("1-2") == 3.0          # from the file
    assert ted.effective_te_weight("1-2") == 3.0
    ted.occupy(["1-2"], 0, "a")
    ted.occupy(["1-2"], 1, "b")
    assert ted.effective_te_weight("1-2") == pytest.approx(3.0 * 1.5)
    full = TED(ted.topology, load_weight=2.0)
    for w in range(4):
        full.occupy(["0-1"], w, f"lp{w}")
    assert full.effective_te_weight("0-1") == pytest.approx(3.0)


def test_set_te_weight_bumps_version_and_validates():
    ted = small()
    ted.set_te_weight("0-1", 5)
    assert ted.te_weight("0-1") == 5.0 and ted.version == 1
    ted.set_te_weight("0-1", None)
    assert ted.te_weight("0-1") == 1.0 and ted.version == 2
    with pytest.raises(TedError):
        ted.set_te_weight("0-1", 0)


def test_link_usable_only_when_admin_oper_and_nodes_up():
    ted = small()
    assert ted.usable("0-1")
    ted.set_admin("0-1", False)
    assert not ted.usable("0-1")
    ted.set_admin("0-1", True)
    ted.set_oper("0-1", False)
    assert not ted.usable("0-1")
    ted.set_oper("0-1", True)
    ted.set_node_up("1", False)
    assert not ted.usable("0-1") and not ted.usable("1-2") and ted.usable("0-2")
    assert set(ted.usable_graph().nodes) == {"0", "2", "3"}
    ted.set_node_up("1", True)
    assert ted.usable("0-1")
    with pytest.raises(TedError):
        ted.set_node_up("9", False)


def test_version_counts_state_changes_but_not_occupancy():
    ted = small()
    ted.occupy(["0-1"], 0, "lp")
    ted.release(["0-1"], 0, "lp")
    assert ted.version == 0 and ted.seq == 2
    ted.set_oper("0-1", False)
    ted.set_oper("0-1", False)    # no change, no new version
    assert ted.version == 1
    ted.set_node_up("0", False)
    assert ted.version == 2


def test_events_for_occupancy_and_state_changes():
    ted = small()
    events = []
    unsubscribe = ted.subscribe(events.append)
    ted.occupy(["0-1", "1-2"], 1, "lp")
    ted.release(["0-1", "1-2"], 1, "lp")
    ted.set_admin("0-2", False)
    ted.set_node_up("3", False)
    ted.set_te_weight("2-3", 2)
    assert [(e.kind, e.link) for e in events] == [
        (OCCUPIED, "0-1"), (OCCUPIED, "1-2"), (FREED, "0-1"), (FREED, "1-2"),
        (LINK_STATE, "0-2"), (NODE_STATE, None), (TE_WEIGHT, "2-3")]
    assert events[0].details == {"wavelength": 1, "owner": "lp"}
    assert events[4].details == {"admin_up": False, "oper_up": True, "usable": False,
                                 "intact": False}
    assert events[5].details == {"node": "3", "up": False}
    unsubscribe()
    ted.occupy(["0-1"], 0, "lp")
    assert len(events) == 7


def test_a_failing_subscriber_is_counted_not_raised():
    ted = small()
    ted.subscribe(lambda event: 1 / 0)
    ted.occupy(["0-1"], 0, "lp")
    assert ted.owner("0-1", 0) == "lp" and ted.callback_errors == 1


def test_snapshot_is_json_and_complete():
    ted = small()
    ted.occupy(["2-3"], 3, "lp9")
    snap = json.loads(json.dumps(ted.snapshot()))
    assert snap["name"] == "small" and snap["version"] == 0 and snap["seq"] == 1
    assert [n["id"] for n in snap["nodes"]] == ["0", "1", "2", "3"]
    assert snap["nodes"][3]["dc"] == "dc3"
    link = snap["links"][3]
    assert link["id"] == "2-3" and link["owners"] == {"3": "lp9"} and link["free"] == 3
    assert link["delay_ms"] == pytest.approx(0.25) and link["jitter_ms"] == 0.5
    assert snap["links"][0]["srlg"] == ["duct-a"]


def test_domains_dcs_and_srlgs():
    ted = small()
    assert ted.domains == {"A": ("0", "1"), "B": ("2", "3")}
    assert ted.dc_of("3").id == "dc3" and ted.dc_of("0") is None
    assert ted.domain_of("2") == "B"
    assert ted.srlg_links == {"duct-a": (0, 2)}


def test_links_with_different_wavelength_counts():
    ted = small(wavelengths=2)
    assert ted.free_mask("0-2") == 0b11
    with pytest.raises(TedError, match="outside"):
        ted.occupy(["0-2"], 2, "lp")
