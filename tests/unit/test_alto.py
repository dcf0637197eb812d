"""The ALTO server's logic against RFC 7285, 8189, 8895, 9240 and 9439, without HTTP.

Maps are checked for what the RFCs require of them (a complete, non-overlapping network map;
costs that follow SA-PCE's path; ordinal ranks; tags that change exactly when the content
does), requests for the error each malformed one must get, and update streams for the events
a client sees when the network changes.
"""
import ipaddress
import itertools
import json

import pytest

from sc_app import nrae
from cso_base.wire import (E_INVALID_FIELD_TYPE, E_INVALID_FIELD_VALUE, E_MISSING_FIELD,
                           MERGE_PATCH, UPDATE_STREAM_CONTROL)
from sc_app.alto import (COST_TYPES, PID_DOMAIN, PID_PROPERTY, AltoError, AltoServer, merge_patch,
                         site_pids, tag_of)
from sc_app.alto_updates import UpdateStreams
from sc_app.pce import PCE
from sc_app.ted import TED
from topologies.loader import from_dict, load

NUM_RC = {"cost-mode": "numerical", "cost-metric": "routingcost"}
ORD_RC = {"cost-mode": "ordinal", "cost-metric": "routingcost"}
NUM_HOP = {"cost-mode": "numerical", "cost-metric": "hopcount"}
NUM_DELAY = {"cost-mode": "numerical", "cost-metric": "delay-ow"}
NUM_BW = {"cost-mode": "numerical", "cost-metric": "bw-residual"}


def server(name="ring", **pce_options):
    ted = TED(load(name))
    return AltoServer(PCE(ted, **pce_options))


@pytest.fixture
def alto():
    return server()


def body(alto, resource_id, params=None, client=None):
    return alto.render(resource_id, params, client)[1]


def costs(alto, name):
    return body(alto, f"costmap-{name}")["cost-map"]


def error(call, *args):
    with pytest.raises(AltoError) as info:
        call(*args)
    return info.value.body()["meta"]


def apply_patch(target, patch):
    """RFC 7396 merge patch application (the client's side)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_patch(result.get(key), value)
    return result


# -- network map ---------------------------------------------------------------------------------

def test_pids_are_user_dc_and_node_sites_plus_a_default(alto):
    data = body(alto, "networkmap")["network-map"]
    assert data == {
        **{f"user-{i}": {"ipv4": [f"10.1.{i}.0/24"]} for i in range(6)},
        "dc-0": {"ipv4": ["10.2.0.0/24"]}, "dc-3": {"ipv4": ["10.2.3.0/24"]},
        **{f"node-{i}": {"ipv4": [f"10.0.{i}.0/24"]} for i in range(6)},
        "default": {"ipv4": ["0.0.0.0/0"]}}


@pytest.mark.parametrize("name", ["ring", "nsfnet", "three-domain"])
def test_the_network_map_is_complete_and_non_overlapping(name):
    alto = server(name)
    data = body(alto, "networkmap")["network-map"]
    prefixes = [p for group in data.values() for p in group["ipv4"]]
    # Non-overlapping (RFC 7285 §11.2.2): no prefix in two PIDs; complete: 0.0.0.0/0 is in one.
    assert len(prefixes) == len(set(prefixes)) and "0.0.0.0/0" in prefixes
    nets = [ipaddress.IPv4Network(p) for p in prefixes]
    for a, b in itertools.combinations(nets, 2):
        assert a.prefixlen == 0 or b.prefixlen == 0 or not a.overlaps(b)
    topology = alto.ted.topology
    assert len(data) == 2 * len(topology.nodes) + len(topology.dc_nodes()) + 1


@pytest.mark.parametrize("address, pid", [
    ("10.1.3.1", "user-3"), ("10.2.3.77", "dc-3"), ("10.0.5.9", "node-5"),
    ("10.2.1.1", "default"),  # node 1 has no DC
    ("10.1.9.1", "default"), ("8.8.8.8", "default"), ("10.1.0.0/24", "user-0"),
    ("10.1.0.0/16", "default")])
def test_every_address_falls_in_exactly_one_pid_by_longest_prefix(alto, address, pid):
    assert alto.pid_of(ipaddress.IPv4Network(address)) == pid


def test_nodes_outside_the_address_plan_get_no_pid():
    topology = from_dict({"name": "t", "nodes": [
        {"id": "0", "domain": "d"}, {"id": "7", "domain": "d"}, {"id": "300", "domain": "d"}],
        "links": [{"a": "0", "b": "7", "length_km": 1}, {"a": "7", "b": "300", "length_km": 1}]})
    assert [p.name for p in site_pids(topology)] == [
        "user-0", "user-7", "node-0", "node-7", "default"]


def test_non_numeric_node_ids_get_pids_by_position():
    topology = from_dict({"name": "t", "nodes": [
        {"id": "0", "domain": "d"}, {"id": "x", "domain": "d"}, {"id": "300", "domain": "d"}],
        "links": [{"a": "0", "b": "x", "length_km": 1}, {"a": "x", "b": "300", "length_km": 1}]})
    pids = {p.name: [str(net) for net in p.prefixes] for p in site_pids(topology)}
    assert pids["user-x"] == ["10.1.1.0/24"] and pids["node-300"] == ["10.0.2.0/24"]
    assert list(pids) == ["user-0", "user-300", "user-x", "node-0", "node-300", "node-x",
                          "default"]


# -- cost maps ---------------------------------------------------------------------------------

def test_costs_are_those_of_the_path_the_dc_mesh_view_shows(alto):
    routing, hops = costs(alto, "num-routingcost"), costs(alto, "num-hopcount")
    delay, bandwidth = costs(alto, "num-delay-ow"), costs(alto, "num-bw-residual")
    mesh = nrae.dc_mesh_view(alto.pce)["links"]
    for link in mesh:
        src, dst = f"user-{link['src']}", f"dc-{link['dst']}"
        assert routing[src][dst] == pytest.approx(link["te_cost"])
        assert hops[src][dst] == link["hops"]
        assert delay[src][dst] == pytest.approx(link["delay_ms"] * 1000)  # microseconds
        if link["src"] == link["dst"]:
            assert dst not in bandwidth.get(src, {})  # no fibre crossed: no residual bandwidth
        else:
            assert bandwidth[src][dst] == link["free_wavelengths"] * 10 * 1_000_000  # kbps


def test_sites_of_one_node_cost_nothing_and_default_has_no_cost(alto):
    routing = costs(alto, "num-routingcost")
    assert routing["user-3"]["dc-3"] == routing["dc-3"]["node-3"] == 0
    assert "default" not in routing and all("default" not in row for row in routing.values())


def test_the_ring_costs(alto):
    routing, delay = costs(alto, "num-routingcost"), costs(alto, "num-delay-ow")
    assert routing["user-0"]["dc-3"] == 3.0  # 0-1-2-3, TE weight 1 per fibre
    assert delay["user-0"]["dc-3"] == 1500  # 300 km at 5 us/km
    assert delay["user-0"]["user-4"] == 1000  # 0-5-4: 200 km


def test_ordinal_maps_rank_the_numerical_values_densely_from_one(alto):
    for metric in ("routingcost", "hopcount", "delay-ow"):
        numerical = costs(alto, f"num-{metric}")
        ordinal = costs(alto, f"ord-{metric}")
        values = sorted({v for row in numerical.values() for v in row.values()})
        for src, row in numerical.items():
            for dst, value in row.items():
                assert ordinal[src][dst] == values.index(value) + 1


def test_routingcost_grows_with_load_and_bw_residual_shrinks(alto):
    before = costs(alto, "num-routingcost")["user-0"]["user-1"]
    alto.ted.occupy(["0-1"], 0, "lp-1")
    assert costs(alto, "num-routingcost")["user-0"]["user-1"] == pytest.approx(before * 1.25)
    assert costs(alto, "num-bw-residual")["user-0"]["user-3"] == 30_000_000


def test_a_pair_without_a_feasible_lightpath_has_no_cost(alto):
    for w in range(4):
        alto.ted.occupy(["0-1"], w, f"lp-{w}")
        alto.ted.occupy(["5-0"], w, f"lq-{w}")
    routing = costs(alto, "num-routingcost")
    assert routing["user-0"] == {"user-0": 0.0, "dc-0": 0.0, "node-0": 0.0}
    assert "user-0" not in routing["user-3"]


def test_reading_costs_leaves_the_random_fit_generator_alone():
    alto = server(policy="random-fit", seed=7)
    state = alto.pce.rng.getstate()
    costs(alto, "num-routingcost")
    assert alto.pce.rng.getstate() == state


# -- vtags ---------------------------------------------------------------------------------------

def vtags(alto):
    ids = ["networkmap", "propmap"] + [f"costmap-{ct.name}" for ct in COST_TYPES]
    return {rid: body(alto, rid)["meta"]["vtag"] for rid in ids}


def test_a_vtag_is_the_hash_of_the_resource_without_it(alto):
    for rid, vtag in vtags(alto).items():
        resource = json.loads(json.dumps(body(alto, rid)))
        del resource["meta"]["vtag"]
        assert vtag == {"resource-id": rid, "tag": tag_of(
            resource if rid != "networkmap" else resource["network-map"])}
        assert len(vtag["tag"]) <= 64 and all(0x21 <= ord(c) <= 0x7E for c in vtag["tag"])


def test_vtags_change_exactly_with_the_content(alto):
    first = vtags(alto)
    alto.ted.set_te_weight("0-1", None)  # a change of TED version that changes no cost
    assert vtags(alto) == first
    alto.ted.occupy(["0-1"], 0, "lp-1")
    occupied = vtags(alto)
    changed = {rid for rid in first if occupied[rid] != first[rid]}
    # Load moves TE weights, free wavelengths and the ranks of routingcost; not hops or delay.
    assert changed == {"costmap-num-routingcost", "costmap-ord-routingcost",
                       "costmap-num-bw-residual", "propmap"}
    alto.ted.release(["0-1"], 0, "lp-1")
    assert vtags(alto) == first  # same content, same tag
    alto.ted.set_admin("1-2", False)
    down = vtags(alto)
    # Routes around the fibre: longer, slower; still 4 free wavelengths on every route.
    assert {rid for rid in first if down[rid] != first[rid]} == {
        rid for rid in first if rid not in ("networkmap", "costmap-num-bw-residual")}


def test_cost_maps_depend_on_the_network_map_version(alto):
    nm = body(alto, "networkmap")["meta"]["vtag"]
    for ct in COST_TYPES:
        meta = body(alto, f"costmap-{ct.name}")["meta"]
        assert meta["dependent-vtags"] == [nm]
        assert meta["cost-type"] == ct.to_json()


# -- filtered maps ------------------------------------------------------------------------------

def test_filtered_network_map_keeps_known_pids_and_address_types(alto):
    full = body(alto, "networkmap")
    got = body(alto, "networkmap-filtered", {"pids": ["dc-3", "nope", "dc-3", "user-1"]})
    assert got["network-map"] == {"dc-3": full["network-map"]["dc-3"],
                                  "user-1": full["network-map"]["user-1"]}
    assert got["meta"]["vtag"] == full["meta"]["vtag"]  # the full map's tag (§11.3.1.6)
    assert body(alto, "networkmap-filtered", {"pids": []})["network-map"] == full["network-map"]
    v6 = body(alto, "networkmap-filtered", {"pids": ["dc-3"], "address-types": ["ipv6"]})
    assert v6["network-map"] == {"dc-3": {}}
    extra = body(alto, "networkmap-filtered", {"pids": ["dc-3"], "colour": "blue"})
    assert extra["network-map"] == {"dc-3": full["network-map"]["dc-3"]}


def filtered(alto, **params):
    return body(alto, "costmap-filtered", params)


def test_filtered_cost_map_restricts_pairs_and_ignores_unknown_pids(alto):
    got = filtered(alto, **{"cost-type": NUM_RC, "pids": {"srcs": ["user-0", "x"],
                                                          "dsts": ["dc-0", "dc-3", "y"]}})
    assert got["cost-map"] == {"user-0": {"dc-0": 0.0, "dc-3": 3.0}}
    assert got["meta"]["cost-type"] == NUM_RC
    everything = filtered(alto, **{"cost-type": NUM_RC})["cost-map"]
    assert everything == costs(alto, "num-routingcost")


@pytest.mark.parametrize("constraints, expected", [
    (["le 1"], {"dc-0": 0, "user-1": 1, "user-5": 1}),
    (["ge 3"], {"dc-3": 3}),
    (["gt 1", "lt 3"], {"user-2": 2, "user-4": 2}),
    (["eq 2"], {"user-2": 2, "user-4": 2}),
    (["ne 2", "le 1"], {"dc-0": 0, "user-1": 1, "user-5": 1}),
    (["[0] ge 3"], {"dc-3": 3}),
])
def test_constraints_filter_the_cost_map(alto, constraints, expected):
    got = filtered(alto, **{"cost-type": NUM_HOP, "constraints": constraints, "pids": {
        "srcs": ["user-0"], "dsts": ["dc-0", "user-1", "user-2", "dc-3", "user-4", "user-5"]}})
    assert got["cost-map"] == {"user-0": expected}


def test_ordinal_filtered_costs_rank_the_pairs_asked_for(alto):
    got = filtered(alto, **{"cost-type": ORD_RC, "pids": {"srcs": ["user-0"],
                                                          "dsts": ["dc-3", "user-1"]}})
    assert got["cost-map"] == {"user-0": {"user-1": 1, "dc-3": 2}}


def test_multi_cost_returns_arrays_in_the_order_asked(alto):
    got = filtered(alto, **{"multi-cost-types": [NUM_HOP, NUM_DELAY, NUM_BW],
                            "pids": {"srcs": ["user-0"], "dsts": ["dc-3", "dc-0"]}})
    assert got["meta"]["cost-type"] == {}
    assert [ct["cost-metric"] for ct in got["meta"]["multi-cost-types"]] == [
        "hopcount", "delay-ow", "bw-residual"]
    # bw-residual is undefined within one node: null in its place (RFC 8189).
    assert got["cost-map"] == {"user-0": {"dc-3": [3, 1500, 40_000_000], "dc-0": [0, 0, None]}}


def test_testable_cost_types_and_or_constraints(alto):
    dsts = ["user-1", "user-2", "dc-3", "user-4"]
    got = filtered(alto, **{"cost-type": NUM_RC, "testable-cost-types": [NUM_HOP, NUM_DELAY],
                            "or-constraints": [["[0] le 1"], ["[0] ge 3", "[1] le 1500"]],
                            "pids": {"srcs": ["user-0"], "dsts": dsts}})
    # Tested on hops and delay, returned as routingcost: 0-1 (1 hop), 0-3 (3 hops, 1500 us).
    assert got["cost-map"] == {"user-0": {"user-1": 1.0, "dc-3": 3.0}}
    multi = filtered(alto, **{"multi-cost-types": [NUM_RC, NUM_DELAY],
                              "constraints": ["[1] le 1100"],
                              "pids": {"srcs": ["user-0"], "dsts": dsts}})
    assert multi["cost-map"] == {"user-0": {"user-1": [1.0, 500], "user-2": [2.0, 1100],
                                            "user-4": [2.0, 1000]}}


# -- endpoint services -----------------------------------------------------------------------------

def test_endpoint_costs_follow_the_endpoints_pids(alto):
    got = body(alto, "endpointcost", {"cost-type": NUM_RC, "endpoints": {
        "srcs": ["ipv4:10.1.0.1"],
        "dsts": ["ipv4:10.2.3.5", "ipv4:10.1.1.1", "ipv4:8.8.8.8", "ipv6:2001:db8::1"]}})
    assert got == {"meta": {"cost-type": NUM_RC}, "endpoint-cost-map": {
        "ipv4:10.1.0.1": {"ipv4:10.2.3.5": 3.0, "ipv4:10.1.1.1": 1.0}}}


def test_endpoint_ranking_and_the_clients_own_address(alto):
    got = body(alto, "endpointcost", {"cost-type": ORD_RC, "endpoints": {
        "dsts": ["ipv4:10.2.3.5", "ipv4:10.2.0.9", "ipv4:10.1.1.1"]}}, "10.1.0.1")
    assert got["endpoint-cost-map"] == {"ipv4:10.1.0.1": {
        "ipv4:10.2.0.9": 1, "ipv4:10.1.1.1": 2, "ipv4:10.2.3.5": 3}}


def test_endpoint_multi_cost_with_constraints(alto):
    got = body(alto, "endpointcost", {
        "multi-cost-types": [NUM_HOP, NUM_BW], "constraints": ["[1] ge 40000000"],
        "endpoints": {"srcs": ["ipv4:10.1.0.1"], "dsts": ["ipv4:10.2.3.5", "ipv4:10.2.0.9"]}})
    assert got["endpoint-cost-map"] == {"ipv4:10.1.0.1": {"ipv4:10.2.3.5": [3, 40_000_000]}}


def test_endpoint_property_service_gives_the_pid(alto):
    got = body(alto, "endpointprop", {"properties": [PID_PROPERTY],
                                      "endpoints": ["ipv4:10.2.3.1", "ipv6:::1"]})
    assert got == {"meta": {"dependent-vtags": [body(alto, "networkmap")["meta"]["vtag"]]},
                   "endpoint-properties": {"ipv4:10.2.3.1": {PID_PROPERTY: "dc-3"},
                                           "ipv6:::1": {}}}


# -- property map (RFC 9240) ------------------------------------------------------------------

def test_the_property_map_describes_each_pid_and_prefix(alto):
    got = body(alto, "propmap")
    data = got["property-map"]
    assert data[f"{PID_DOMAIN}:dc-3"] == {
        "priv:cso-site": "dc", "priv:cso-node": "3", "priv:cso-domain": "ring",
        "priv:cso-dc": "dc3", "priv:cso-free-wavelengths": 8}
    assert "priv:cso-dc" not in data[f"{PID_DOMAIN}:user-1"]
    assert f"{PID_DOMAIN}:default" not in data
    assert data["ipv4:10.2.3.0/24"] == {PID_PROPERTY: "dc-3"}
    assert data["ipv4:0.0.0.0/0"] == {PID_PROPERTY: "default"}
    assert got["meta"]["dependent-vtags"] == [body(alto, "networkmap")["meta"]["vtag"]]


def test_free_wavelengths_follow_occupancy_and_link_state(alto):
    alto.ted.occupy(["2-3"], 1, "lp-1")
    alto.ted.set_admin("3-4", False)
    props = body(alto, "propmap")["property-map"][f"{PID_DOMAIN}:node-3"]
    assert props["priv:cso-free-wavelengths"] == 3


def test_filtered_property_map(alto):
    got = body(alto, "propmap-filtered", {
        "entities": [f"{PID_DOMAIN}:dc-0", f"{PID_DOMAIN}:nope", "ipv4:10.1.4.7"],
        "properties": ["priv:cso-dc", PID_PROPERTY]})
    assert got["property-map"] == {f"{PID_DOMAIN}:dc-0": {"priv:cso-dc": "dc0"},
                                   "ipv4:10.1.4.7": {PID_PROPERTY: "user-4"}}


# -- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("resource, params, expected", [
    ("networkmap-filtered", {}, {"code": E_MISSING_FIELD, "field": "pids"}),
    ("networkmap-filtered", {"pids": "dc-3"}, {"code": E_INVALID_FIELD_TYPE, "field": "pids"}),
    ("networkmap-filtered", {"pids": ["dc-3", 7]},
     {"code": E_INVALID_FIELD_VALUE, "field": "pids", "value": "7"}),
    ("costmap-filtered", {}, {"code": E_MISSING_FIELD, "field": "cost-type"}),
    ("costmap-filtered", {"cost-type": {"cost-mode": "numerical"}},
     {"code": E_MISSING_FIELD, "field": "cost-type/cost-metric"}),
    ("costmap-filtered", {"cost-type": []}, {"code": E_INVALID_FIELD_TYPE, "field": "cost-type"}),
    ("costmap-filtered", {"cost-type": {"cost-mode": 1, "cost-metric": "hopcount"}},
     {"code": E_INVALID_FIELD_TYPE, "field": "cost-type/cost-mode"}),
    ("costmap-filtered", {"cost-type": {"cost-mode": "numerical", "cost-metric": "shoesize"}},
     {"code": E_INVALID_FIELD_VALUE, "field": "cost-type/cost-metric", "value": "shoesize"}),
    ("costmap-filtered", {"cost-type": {"cost-mode": "foo", "cost-metric": "hopcount"}},
     {"code": E_INVALID_FIELD_VALUE, "field": "cost-type/cost-mode", "value": "foo"}),
    ("costmap-filtered", {"cost-type": {"cost-mode": "ordinal", "cost-metric": "bw-residual"}},
     {"code": E_INVALID_FIELD_VALUE, "field": "cost-type/cost-mode", "value": "ordinal"}),
    ("costmap-filtered", {"cost-type": {**NUM_DELAY, "cost-context": {"cost-source": "sla"}}},
     {"code": E_INVALID_FIELD_VALUE, "field": "cost-type/cost-context/cost-source",
      "value": "sla"}),
    ("costmap-filtered", {"cost-type": NUM_RC, "constraints": ["about 3"]},
     {"code": E_INVALID_FIELD_VALUE, "field": "constraints", "value": "about 3"}),
    ("costmap-filtered", {"cost-type": NUM_RC, "constraints": ["le nan"]},
     {"code": E_INVALID_FIELD_VALUE, "field": "constraints", "value": "le nan"}),
    ("costmap-filtered", {"cost-type": NUM_RC, "constraints": ["[1] le 3"]},
     {"code": E_INVALID_FIELD_VALUE, "field": "constraints", "value": "[1] le 3"}),
    ("costmap-filtered", {"cost-type": NUM_RC, "constraints": "le 3"},
     {"code": E_INVALID_FIELD_TYPE, "field": "constraints"}),
    ("costmap-filtered", {"cost-type": NUM_RC, "constraints": [], "or-constraints": [["le 1"]]},
     {"code": E_INVALID_FIELD_VALUE, "field": "or-constraints", "value": '[["le 1"]]'}),
    ("costmap-filtered", {"cost-type": NUM_RC, "or-constraints": [[]]},
     {"code": E_INVALID_FIELD_VALUE, "field": "or-constraints", "value": "[]"}),
    ("costmap-filtered", {"cost-type": NUM_RC, "multi-cost-types": [NUM_HOP]},
     {"code": E_INVALID_FIELD_VALUE, "field": "cost-type",
      "value": '{"cost-mode":"numerical","cost-metric":"routingcost"}'}),
    ("costmap-filtered", {"multi-cost-types": []},
     {"code": E_INVALID_FIELD_VALUE, "field": "multi-cost-types", "value": "[]"}),
    ("costmap-filtered", {"multi-cost-types": [NUM_RC] * (len(COST_TYPES) + 1)},
     {"code": E_INVALID_FIELD_VALUE, "field": "multi-cost-types"}),
    ("costmap-filtered", {"multi-cost-types": [NUM_RC, "hopcount"]},
     {"code": E_INVALID_FIELD_VALUE, "field": "multi-cost-types", "value": "hopcount"}),
    ("costmap-filtered", {"cost-type": NUM_RC, "pids": {"srcs": []}},
     {"code": E_MISSING_FIELD, "field": "pids/dsts"}),
    ("costmap-filtered", {"cost-type": NUM_RC, "testable-cost-types": [{"cost-mode": "x"}]},
     {"code": E_MISSING_FIELD, "field": "testable-cost-types/cost-metric"}),
    ("endpointcost", {"cost-type": NUM_RC}, {"code": E_MISSING_FIELD, "field": "endpoints"}),
    ("endpointcost", {"cost-type": NUM_RC, "endpoints": {"srcs": [], "dsts": []}},
     {"code": E_INVALID_FIELD_VALUE, "field": "endpoints"}),
    ("endpointcost", {"cost-type": NUM_RC, "endpoints": {"dsts": ["10.1.0.1"]}},
     {"code": E_INVALID_FIELD_VALUE, "field": "endpoints/dsts", "value": "10.1.0.1"}),
    ("endpointcost", {"cost-type": NUM_RC, "endpoints": {"srcs": ["ipv4:300.1.1.1"]}},
     {"code": E_INVALID_FIELD_VALUE, "field": "endpoints/srcs", "value": "ipv4:300.1.1.1"}),
    ("endpointprop", {"properties": ["pid"], "endpoints": ["ipv4:10.1.0.1"]},
     {"code": E_INVALID_FIELD_VALUE, "field": "properties", "value": "pid"}),
    ("endpointprop", {"properties": [PID_PROPERTY], "endpoints": []},
     {"code": E_INVALID_FIELD_VALUE, "field": "endpoints", "value": "[]"}),
    ("propmap-filtered", {"entities": ["mac:00:11"], "properties": [PID_PROPERTY]},
     {"code": E_INVALID_FIELD_VALUE, "field": "entities", "value": "mac:00:11"}),
    ("propmap-filtered", {"entities": ["ipv4:10.1.0.1"], "properties": ["priv:colour"]},
     {"code": E_INVALID_FIELD_VALUE, "field": "properties", "value": "priv:colour"}),
    ("propmap-filtered", {"properties": [PID_PROPERTY]},
     {"code": E_MISSING_FIELD, "field": "entities"}),
])
def test_each_malformed_request_gets_its_rfc7285_error(alto, resource, params, expected):
    meta = error(alto.render, resource, params, None)
    assert {key: meta[key] for key in expected} == expected
    assert set(meta) <= {"code", "field", "value", "syntax-error"}
    assert "value" not in meta or "field" in meta  # RFC 7285 §8.5.2


def test_endpoint_costs_without_sources_need_the_clients_address(alto):
    meta = error(alto.render, "endpointcost", {"cost-type": NUM_RC,
                                               "endpoints": {"dsts": ["ipv4:10.1.0.1"]}}, None)
    assert meta == {"code": E_MISSING_FIELD, "field": "endpoints/srcs"}


# -- IRD -----------------------------------------------------------------------------------------

def test_the_directory_lists_every_resource_with_what_it_uses(alto):
    ird = alto.directory()
    assert ird["meta"]["default-alto-network-map"] == "networkmap"
    names = ird["meta"]["cost-types"]
    resources = ird["resources"]
    for rid, entry in resources.items():
        assert set(entry["uses"] if "uses" in entry else []) <= set(resources), rid
        for name in entry.get("capabilities", {}).get("cost-type-names", []):
            assert name in names
    for ct in COST_TYPES:
        entry = resources[f"costmap-{ct.name}"]
        assert entry["capabilities"] == {"cost-type-names": [ct.name]}  # exactly one (§11.2.3.4)
        assert entry["uses"] == ["networkmap"] and "accepts" not in entry
    assert "uses" not in resources["endpointcost"]  # RFC 7285 §11.5.1.5: ECS MUST NOT
    stream = resources["update-stream"]
    assert set(stream["uses"]) == set(resources) - {"update-stream"}
    assert stream["capabilities"]["incremental-change-media-types"] == {
        rid: MERGE_PATCH for rid in stream["uses"]}


# -- update streams (RFC 8895) ----------------------------------------------------------------

def events(stream_iter, count, keepalives=50):
    """The next ``count`` events as (event, data), failing after ``keepalives`` idle beats."""
    out = []
    while len(out) < count:
        chunk = next(stream_iter).decode()
        if chunk.startswith(":"):
            keepalives -= 1
            assert keepalives, f"only {out} came"
            continue
        head, data = chunk.split("\n")[:2]
        out.append((head[len("event: "):], json.loads(data[len("data: "):])))
    return out


def open_stream(alto, add, client=None):
    streams = UpdateStreams(alto)
    stream = streams.open("ac1", {"add": add}, client, "http://sc/alto/updates/streams/")
    return streams, stream, stream.events(heartbeat=0.01)


def test_a_stream_sends_the_control_uri_then_data_then_merge_patches(alto):
    streams, stream, it = open_stream(alto, {
        "rc": {"resource-id": "costmap-num-routingcost"},
        "bw": {"resource-id": "costmap-filtered", "input": {
            "cost-type": NUM_BW, "pids": {"srcs": ["user-0"], "dsts": ["dc-3"]}}}})
    (control, uri), (rc_event, rc), (bw_event, bw) = events(it, 3)
    assert (control, uri) == (UPDATE_STREAM_CONTROL, {"control-uri": stream.control_uri})
    assert stream.control_uri == f"http://sc/alto/updates/streams/{stream.id}"
    assert streams.get(stream.id, "ac1") is stream and streams.get(stream.id, "ac2") is None
    assert rc_event == "application/alto-costmap+json,rc" and rc == costs_body(alto)
    assert bw_event == "application/alto-costmap+json,bw"
    assert bw["cost-map"] == {"user-0": {"dc-3": 40_000_000}}
    alto.pce.reserve("0", "3", owner="lp-1")  # a lightpath: wavelength 0 on 0-1, 1-2, 2-3
    got = dict(events(it, 2))
    assert set(got) == {f"{MERGE_PATCH},rc", f"{MERGE_PATCH},bw"}
    assert apply_patch(rc, got[f"{MERGE_PATCH},rc"]) == costs_body(alto)
    assert got[f"{MERGE_PATCH},bw"] == {"cost-map": {"user-0": {"dc-3": 30_000_000}}}
    it.close()
    assert streams.get(stream.id, "ac1") is None


def costs_body(alto):
    return body(alto, "costmap-num-routingcost")


def test_a_change_that_changes_nothing_sends_nothing(alto):
    _streams, _stream, it = open_stream(alto, {"hops": {"resource-id": "costmap-num-hopcount"}})
    events(it, 2)
    alto.ted.occupy(["0-1"], 3, "lp-1")  # load changes TE weights, not hops
    assert next(it) == b": keep-alive\n\n"
    it.close()


def test_full_replacement_when_the_client_wants_no_increments(alto):
    _streams, _stream, it = open_stream(alto, {"p": {
        "resource-id": "propmap", "incremental-changes": False}})
    events(it, 2)
    alto.ted.occupy(["0-1"], 0, "lp-1")
    [(event, data)] = events(it, 1)
    assert event == "application/alto-propmap+json,p" and data == body(alto, "propmap")
    it.close()


def test_a_client_with_the_current_tag_gets_no_initial_data(alto):
    tag = costs_body(alto)["meta"]["vtag"]["tag"]
    _streams, _stream, it = open_stream(alto, {"rc": {
        "resource-id": "costmap-num-routingcost", "tag": tag}})
    events(it, 1)
    assert next(it) == b": keep-alive\n\n"
    alto.ted.occupy(["0-1"], 0, "lp-1")
    [(event, _patch)] = events(it, 1)
    assert event == f"{MERGE_PATCH},rc"
    it.close()


def test_stream_control_adds_and_removes_substreams(alto):
    streams, stream, it = open_stream(alto, {"nm": {"resource-id": "networkmap"}})
    events(it, 2)
    stream.control({"add": {"hops": {"resource-id": "costmap-num-hopcount"}}})
    assert events(it, 2) == [
        (UPDATE_STREAM_CONTROL, {"started": ["hops"]}),
        ("application/alto-costmap+json,hops", body(alto, "costmap-num-hopcount"))]
    stream.control({"remove": ["nm"]})
    assert events(it, 1) == [(UPDATE_STREAM_CONTROL, {"stopped": ["nm"]})]
    stream.control({"remove": ["hops"]})
    assert events(it, 1) == [(UPDATE_STREAM_CONTROL, {"stopped": ["hops"]})]
    with pytest.raises(StopIteration):  # no substream left: the stream ends
        next(it)
    assert len(streams) == 0


@pytest.mark.parametrize("request_body, expected", [
    ({}, {"code": E_MISSING_FIELD, "field": "add"}),
    ({"add": {}}, {"code": E_INVALID_FIELD_VALUE, "field": "add", "value": "{}"}),
    ({"add": {"a b": {"resource-id": "networkmap"}}},
     {"code": E_INVALID_FIELD_VALUE, "field": "add", "value": "a b"}),
    ({"add": {"x": {}}}, {"code": E_MISSING_FIELD, "field": "add/x/resource-id"}),
    ({"add": {"x": {"resource-id": "update-stream"}}},
     {"code": E_INVALID_FIELD_VALUE, "field": "add/x/resource-id", "value": "update-stream"}),
    ({"add": {"x": {"resource-id": "costmap-filtered"}}},
     {"code": E_MISSING_FIELD, "field": "add/x/input"}),
    ({"add": {"x": {"resource-id": "costmap-filtered", "input": {"cost-type": {}}}}},
     {"code": E_MISSING_FIELD, "field": "add/x/input/cost-type/cost-metric"}),
    ({"add": {"x": {"resource-id": "networkmap", "incremental-changes": "yes"}}},
     {"code": E_INVALID_FIELD_TYPE, "field": "add/x/incremental-changes"}),
])
def test_update_stream_requests_are_checked(alto, request_body, expected):
    meta = error(UpdateStreams(alto).open, "ac1", request_body, None, "u/")
    assert meta == expected


def test_stream_control_requests_are_checked(alto):
    _streams, stream, it = open_stream(alto, {"nm": {"resource-id": "networkmap"}})
    events(it, 2)
    assert error(stream.control, {"remove": ["zz"]}) == {
        "code": E_INVALID_FIELD_VALUE, "field": "remove", "value": "zz"}
    assert error(stream.control, {"add": {"nm": {"resource-id": "propmap"}}}) == {
        "code": E_INVALID_FIELD_VALUE, "field": "add", "value": "nm"}
    # Removing a client id frees it for an add in the same request.
    stream.control({"remove": ["nm"], "add": {"nm": {"resource-id": "propmap"}}})
    assert [event for event, _ in events(it, 3)] == [
        UPDATE_STREAM_CONTROL, UPDATE_STREAM_CONTROL, "application/alto-propmap+json,nm"]
    it.close()


def test_streams_watch_the_ted_only_while_open(alto):
    ted = alto.ted
    subscribers = len(ted._subscribers)
    _streams, _stream, it = open_stream(alto, {"nm": {"resource-id": "networkmap"}})
    events(it, 2)
    assert len(ted._subscribers) == subscribers + 1
    it.close()
    assert len(ted._subscribers) == subscribers


def test_merge_patch_round_trips():
    old = {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 5}
    new = {"a": {"b": 1, "c": 3, "f": 4}, "d": [1], "g": {"h": 0}}
    patch = merge_patch(old, new)
    assert patch == {"a": {"c": 3, "f": 4}, "d": [1], "e": None, "g": {"h": 0}}
    assert apply_patch(old, patch) == new
