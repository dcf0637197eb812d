"""ASI and SMI through Ryu's router: bad input never gets past validation, SMI state and OAM.

Every bad request must be answered with a 4xx JSON error carrying ``error`` and ``reason``
(never a 500) and must leave the TED, the DBM and the flow tables exactly as they were.
"""
import json

import pytest

from fake_of13 import ipv4
from rest_cases import FRAMING, raw
from sc_harness import make_sc, sc, state_dir  # noqa: F401 (fixtures)

LP = "/asi/v1/lightpaths"
EVAL = "/asi/v1/evaluate"
OK = {"src": "10.1.0.1", "dst": "10.1.3.1"}


def body(**fields):
    return {"raw": json.dumps(fields).encode(), "content_type": "application/json"}


def with_ok(**fields):
    return body(**{**OK, **fields})


# (request, status) for POST /asi/v1/lightpaths; the error code is checked where it is fixed.
ESTABLISH_CASES = {
    **FRAMING,
    # Fields.
    "no-fields": (body(), 400, "missing-field"),
    "missing-dst": (body(src="0"), 400, "missing-field"),
    "missing-src": (body(dst="3"), 400, "missing-field"),
    "null-src": (body(src=None, dst="3"), 400, "missing-field"),
    "unknown-field": (with_ok(priority=7), 400, "unknown-field"),
    "constraints-object": (with_ok(constraints={"max_hops": 3}), 400, "unknown-field"),
    "case-of-field": (body(SRC="0", dst="3"), 400, "unknown-field"),
    # Types.
    "src-number": (body(src=0, dst="3"), 400, "invalid-field"),
    "src-list": (body(src=["0"], dst="3"), 400, "invalid-field"),
    "src-object": (body(src={"node": "0"}, dst="3"), 400, "invalid-field"),
    "src-bool": (body(src=True, dst="3"), 400, "invalid-field"),
    "src-empty": (body(src="", dst="3"), 400, "invalid-field"),
    "src-too-long": (body(src="1" * 65, dst="3"), 400, "invalid-field"),
    "bandwidth-bool": (with_ok(bandwidth_gbps=True), 400, "invalid-field"),
    "bandwidth-string": (with_ok(bandwidth_gbps="10"), 400, "invalid-field"),
    "bandwidth-negative": (with_ok(bandwidth_gbps=-1), 400, "invalid-field"),
    "bandwidth-huge": (with_ok(bandwidth_gbps=1e308), 400, "invalid-field"),
    "bandwidth-huge-int": (with_ok(bandwidth_gbps=10 ** 40), 400, "invalid-field"),
    "delay-negative": (with_ok(max_delay_ms=-0.5), 400, "invalid-field"),
    "jitter-list": (with_ok(max_jitter_ms=[1]), 400, "invalid-field"),
    "hops-float": (with_ok(max_hops=2.5), 400, "invalid-field"),
    "hops-zero": (with_ok(max_hops=0), 400, "invalid-field"),
    "hops-bool": (with_ok(max_hops=False), 400, "invalid-field"),
    "hops-huge": (with_ok(max_hops=2 ** 63), 400, "invalid-field"),
    "hops-string": (with_ok(max_hops="3"), 400, "invalid-field"),
    "include-string": (with_ok(include_nodes="1,2"), 400, "invalid-field"),
    "exclude-numbers": (with_ok(exclude_nodes=[1, 2]), 400, "invalid-field"),
    "exclude-nested": (with_ok(exclude_links=[["0-1"]]), 400, "invalid-field"),
    "exclude-empty-id": (with_ok(exclude_srlgs=[""]), 400, "invalid-field"),
    "exclude-too-many": (with_ok(exclude_links=["0-1"] * 5000), 400, "invalid-field"),
    "service-type-unknown": (with_ok(service_type="teleport"), 400, "invalid-field"),
    "service-type-number": (with_ok(service_type=1), 400, "invalid-field"),
    "label-object": (with_ok(label={"a": 1}), 400, "invalid-field"),
    "label-too-long": (with_ok(label="x" * 129), 400, "invalid-field"),
    # Endpoints that do not exist.
    "unicode-garbage": (body(src="\u202e\u0000\U0001f4a5", dst="3"), 422, "unknown-endpoint"),
    "fullwidth-digit": (body(src="\uff10", dst="3"), 422, "unknown-endpoint"),
    "nul-suffix": (body(src="0\u0000", dst="3"), 422, "unknown-endpoint"),
    "rtl-override": (body(src="0", dst="\u202e3"), 422, "unknown-endpoint"),
    "sql-ish": (body(src="0'; DROP TABLE lightpaths; --", dst="3"), 422, "unknown-endpoint"),
    "unknown-node": (body(src="0", dst="42"), 422, "unknown-endpoint"),
    "negative-node": (body(src="-1", dst="3"), 422, "unknown-endpoint"),
    "unknown-host": (body(src="10.1.200.1", dst="3"), 422, "unknown-endpoint"),
    "no-dc-there": (body(src="10.2.2.1", dst="3"), 422, "unknown-endpoint"),
    "network-address": (body(src="10.1.0.0", dst="3"), 422, "unknown-endpoint"),
    "foreign-address": (body(src="192.0.2.1", dst="3"), 422, "unknown-endpoint"),
    "ipv6": (body(src="::1", dst="3"), 422, "unknown-endpoint"),
    "same-node": (body(src="3", dst="3"), 422, "no-path"),
    # Attachment overrides: only a DC host address, only at a node with a DC (ring: 0 and 3).
    "dst-node-number": (with_ok(dst="10.2.3.5", dst_node=0), 400, "invalid-field"),
    "dst-node-user-host": (with_ok(dst_node="3"), 422, "invalid-attachment"),
    "dst-node-of-a-node": (body(src="1", dst="3", dst_node="0"), 422, "invalid-attachment"),
    "dst-node-without-dc": (with_ok(dst="10.2.3.5", dst_node="1"), 422, "invalid-attachment"),
    "dst-node-unknown": (with_ok(dst="10.2.3.5", dst_node="42"), 422, "invalid-attachment"),
    "src-node-unknown-host": (with_ok(src="10.2.9.5", src_node="0"), 422, "unknown-endpoint"),
    "src-node-user-host": (with_ok(src_node="3"), 422, "invalid-attachment"),
    "same-host": (body(src="10.2.3.1", dst="10.2.3.1"), 422, "no-path"),
    # Constraints nothing can satisfy.
    "max-hops-1": (with_ok(max_hops=1), 409, "no-path"),
    "max-delay-tiny": (with_ok(max_delay_ms=0.001), 409, "no-path"),
    "max-delay-zero": (with_ok(max_delay_ms=0), 409, "no-path"),
    "bandwidth-beyond-fibre": (with_ok(bandwidth_gbps=100), 409, "no-path"),
    "exclude-both-ways": (with_ok(exclude_nodes=["1", "5"]), 409, "no-path"),
    "exclude-src": (with_ok(exclude_nodes=["0"]), 409, "no-path"),
    "exclude-cut": (with_ok(exclude_links=["0-1", "4-5"]), 409, "no-path"),
    "include-unknown": (with_ok(include_nodes=["99"]), 422, "no-path"),
    "exclude-unknown-node": pytest.param(with_ok(exclude_nodes=["99"]), 422, None),
    "exclude-unknown-link": pytest.param(with_ok(exclude_links=["0-9"]), 422, None),
    "exclude-unknown-srlg": pytest.param(with_ok(exclude_srlgs=["duct-9"]), 422, None),
}

EVALUATE_CASES = {
    "array": (raw(b'["0", "3"]'), 400, "bad-json"),
    "malformed": (raw(b'{"src": "0", "dsts": ["3"'), 400, "bad-json"),
    "text-plain": (raw(b'{"src": "0", "dsts": ["3"]}', "text/plain"), 415, None),
    "missing-dsts": (body(src="0"), 400, "missing-field"),
    "missing-src": (body(dsts=["3"]), 400, "missing-field"),
    "dsts-string": (body(src="0", dsts="3"), 400, "invalid-field"),
    "dsts-numbers": (body(src="0", dsts=[3]), 400, "invalid-field"),
    "dsts-null-item": (body(src="0", dsts=["3", None]), 400, "invalid-field"),
    "dsts-too-many": (body(src="0", dsts=["3"] * 4097), 400, "invalid-field"),
    "unknown-field": (body(src="0", dsts=["3"], dst="3"), 400, "unknown-field"),
    "service-type-not-here": (body(src="0", dsts=["3"], service_type="vod"), 400, None),
    "hops-negative": (body(src="0", dsts=["3"], max_hops=-1), 400, "invalid-field"),
    "delay-bool": (body(src="0", dsts=["3"], max_delay_ms=True), 400, "invalid-field"),
    "unknown-src": (body(src="\U0001f4a5", dsts=["3"]), 422, "unknown-endpoint"),
    "exclude-unknown-link": pytest.param(body(src="0", dsts=["3"], exclude_links=["x"]), 422,
                                         None),
}


def check_refused(reply, status, code):
    assert reply.status == status, reply.body
    assert reply.content_type == "application/json"
    error = reply.json
    assert isinstance(error["error"], str) and error["error"]
    assert isinstance(error["reason"], str) and error["reason"]
    if code is not None:
        assert error["error"] == code


@pytest.fixture
def busy_sc(sc):
    """The ring SC with one lightpath up, so a bad request has something to disturb."""
    assert sc.client("ac2").post(LP, {"src": "10.2.0.1", "dst": "10.2.3.1"}).status == 201
    return sc


@pytest.mark.parametrize("request_, status, code", ESTABLISH_CASES.values(),
                         ids=ESTABLISH_CASES.keys())
def test_a_bad_establish_is_refused_with_json_and_changes_nothing(busy_sc, request_, status,
                                                                  code):
    before = busy_sc.state()
    reply = busy_sc.client("ac1").post(LP, **request_)
    check_refused(reply, status, code)
    assert busy_sc.state() == before
    assert busy_sc.client("ac1").get(LP).json == {"lightpaths": []}


@pytest.mark.parametrize("request_, status, code", EVALUATE_CASES.values(),
                         ids=EVALUATE_CASES.keys())
def test_a_bad_evaluation_is_refused_with_json_and_changes_nothing(busy_sc, request_, status,
                                                                   code):
    before = busy_sc.state()
    check_refused(busy_sc.client("ac1").post(EVAL, **request_), status, code)
    assert busy_sc.state() == before


def test_an_impossible_constraint_says_which_one(sc):
    ac1 = sc.client("ac1")
    for extra, reason in (({"max_hops": 1}, "hops-exceeded"),
                          ({"max_delay_ms": 0.001}, "delay-exceeded"),
                          ({"bandwidth_gbps": 100}, "bandwidth-exceeded"),
                          ({"exclude_nodes": ["1", "5"]}, "excluded")):
        reply = ac1.post(LP, {**OK, **extra})
        assert (reply.status, reply.json["reason"]) == (409, reason), reply.body
        assert reply.json["detail"]


def test_a_request_that_fits_the_constraints_is_served(sc):
    reply = sc.client("ac1").post(LP, {**OK, "max_hops": 3, "max_delay_ms": 1.5,
                                       "exclude_links": ["0-5"], "include_nodes": ["2"],
                                       "bandwidth_gbps": 10, "label": "\U0001f4fa vod"})
    assert reply.status == 201, reply.body
    assert reply.json["route"] == ["0", "1", "2", "3"]
    assert reply.json["constraints"]["max_hops"] == 3


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/", 404), ("GET", "/asi/v2/lightpaths", 404), ("GET", "/asi/v1/lightpath", 404),
    ("GET", "/asi/v1/lightpaths/a/b", 404), ("GET", "/asi/v1/lightpaths/%E2%98%83", 404),
    ("GET", "/asi/v1/lightpaths/" + "x" * 65, 404), ("PUT", LP, 405), ("PATCH", LP, 405),
    ("POST", f"{LP}/lp-1", 405), ("DELETE", LP, 405), ("GET", EVAL, 405),
    ("DELETE", "/smi/v1/links/0-1", 405), ("GET", "/smi/v1/links/0-1/admin", 405),
    ("GET", "/smi/v1/switches/1/resync", 405), ("POST", "/metrics", 405),
    ("GET", "/smi/v1/switches/abc/resync", 404),
])
def test_unknown_paths_and_methods_get_json(sc, method, path, status):
    reply = sc.client("ac1").request(method, path)
    assert reply.status == status, reply.body
    assert reply.content_type == "application/json"
    assert reply.json["error"] in ("not-found", "method-not-allowed") and reply.json["reason"]


def test_an_unknown_query_parameter_is_400(sc):
    reply = sc.client("ac1").get(f"{LP}?owner=ac2")
    assert (reply.status, reply.json["error"]) == (400, "unknown-parameter")


# -- SMI ---------------------------------------------------------------------------------


def test_smi_switches(sc):
    sc.disconnect("4")
    switches = {s["node"]: s for s in sc.client(None).get("/smi/v1/switches").json["switches"]}
    assert set(switches) == set(sc.topology.nodes)
    assert switches["0"]["connected"] and switches["0"]["dpid"] == 1
    assert switches["0"]["live_ports"] == [1, 2, 3, 4]
    assert not switches["4"]["connected"] and switches["4"]["live_ports"] == []


def test_smi_links_show_occupancy_and_lightpaths_of_every_ac(sc):
    lp1 = sc.client("ac1").post(LP, OK).json
    lp2 = sc.client("ac2").post(LP, {"src": "10.2.0.1", "dst": "10.2.3.1"}).json
    smi = sc.client(None)
    links = {link["id"]: link for link in smi.get("/smi/v1/links").json["links"]}
    assert set(links) == {link.id for link in sc.topology.links}
    for link_id, link in links.items():
        expected = sorted({lp["wavelength"] for lp in (lp1, lp2) if link_id in lp["links"]})
        assert link["used"] == expected
        assert link["free"] == 4 - len(expected)
        assert link["usable"] and link["discovered"]
    one = smi.get("/smi/v1/links/0-1").json
    assert one["owners"] == {str(lp1["wavelength"]): lp1["id"], str(lp2["wavelength"]): lp2["id"]}
    assert smi.get("/smi/v1/links/1-0").json["id"] == "0-1"  # either direction names it
    assert smi.get("/smi/v1/links/0-3").status == 404
    ids = {lp["id"] for lp in smi.get("/smi/v1/lightpaths").json["lightpaths"]}
    assert ids == {lp1["id"], lp2["id"]}


def test_link_admin_down_raises_an_alarm_and_the_pce_avoids_it_until_up(sc):
    smi, ac1 = sc.client(None), sc.client("ac1")
    reply = smi.put("/smi/v1/links/1-2/admin", {"state": "down"})
    assert reply.status == 200, reply.body
    assert (reply.json["admin_up"], reply.json["usable"]) == (False, False)
    alarms = smi.get("/smi/v1/alarms").json["alarms"]
    assert [(a["kind"], a["subject"], a["active"]) for a in alarms] == [
        ("link-admin-down", "1-2", True)]
    lp = ac1.post(LP, OK).json
    assert lp["route"] == ["0", "5", "4", "3"]
    assert sc.delivered_to("10.1.0.1", "10.1.3.1") == [("3", 1, ipv4("10.1.0.1", "10.1.3.1"))]
    reply = smi.put("/smi/v1/links/1-2/admin", {"state": "up"})
    assert (reply.status, reply.json["usable"]) == (200, True)
    assert smi.get("/smi/v1/alarms").json["alarms"] == []
    cleared = smi.get("/smi/v1/alarms?state=all").json["alarms"]
    assert [(a["kind"], a["active"]) for a in cleared] == [("link-admin-down", False)]
    assert ac1.post(LP, {"src": "10.2.0.1", "dst": "10.2.3.1"}).json["route"] == [
        "0", "1", "2", "3"]


@pytest.mark.parametrize("payload, status", [
    ({"state": "sideways"}, 400), ({"state": "DOWN"}, 400), ({}, 400), ({"state": False}, 400),
    ({"state": "down", "why": "maintenance"}, 400), ([], 400)])
def test_link_admin_validates(sc, payload, status):
    before = sc.state()
    reply = sc.client(None).put("/smi/v1/links/1-2/admin", payload)
    assert reply.status == status and reply.json["reason"]
    assert sc.state() == before


def test_te_weight_is_set_used_and_reset(sc):
    smi = sc.client(None)
    reply = smi.put("/smi/v1/links/0-1/te-weight", {"te_weight": 7.5})
    assert (reply.status, reply.json["te_weight"]) == (200, 7.5)
    cost = sc.client("ac1").post(EVAL, {"src": "0", "dsts": ["1"]}).json["results"][0]
    assert cost["te_cost"] == pytest.approx(7.5)
    reply = smi.put("/smi/v1/links/0-1/te-weight", {"te_weight": None})
    assert (reply.status, reply.json["te_weight"]) == (200, 1.0)


TE_BAD = {"negative": -1, "string": "5", "bool": True, "huge": 1e12, "list": [5]}


@pytest.mark.parametrize("value", TE_BAD.values(), ids=TE_BAD.keys())
def test_te_weight_validates(sc, value):
    before = sc.state()
    reply = sc.client(None).put("/smi/v1/links/0-1/te-weight", {"te_weight": value})
    assert (reply.status, reply.json["error"]) == (400, "invalid-field")
    assert sc.state() == before


def test_te_weight_zero_is_refused(sc):
    reply = sc.client(None).put("/smi/v1/links/0-1/te-weight", {"te_weight": 0})
    assert reply.status == 400


@pytest.mark.parametrize("payload, code", [({}, "missing-field"), ({"weight": 2}, "unknown-field")])
def test_te_weight_needs_its_field(sc, payload, code):
    reply = sc.client(None).put("/smi/v1/links/0-1/te-weight", payload)
    assert (reply.status, reply.json["error"]) == (400, code)


def test_oam_on_an_unknown_link_is_404(sc):
    smi = sc.client(None)
    assert smi.put("/smi/v1/links/7-8/admin", {"state": "down"}).status == 404
    assert smi.put("/smi/v1/links/7-8/te-weight", {"te_weight": 2}).status == 404


def test_resync_restores_a_switch_that_lost_its_entries(sc):
    sc.client("ac1").post(LP, OK)
    assert sc.delivered_to("10.1.0.1", "10.1.3.1") != []
    sc.net.tables[sc.dpid("2")].entries.clear()  # e.g. the switch restarted
    assert sc.delivered_to("10.1.0.1", "10.1.3.1") == []
    reply = sc.client(None).post("/smi/v1/switches/3/resync")
    assert reply.status == 200, reply.body
    assert reply.json["dpid"] == 3 and reply.json["messages"] > 0
    assert sc.delivered_to("10.1.0.1", "10.1.3.1") == [("3", 1, ipv4("10.1.0.1", "10.1.3.1"))]


def test_resync_of_an_unknown_or_disconnected_switch(sc):
    smi = sc.client(None)
    reply = smi.post("/smi/v1/switches/99/resync")
    assert (reply.status, reply.json["error"]) == (404, "not-found")
    sc.disconnect("2")
    reply = smi.post("/smi/v1/switches/3/resync")
    assert (reply.status, reply.json["error"]) == (409, "switch-unreachable")


def test_alarms_query_is_validated(sc):
    reply = sc.client(None).get("/smi/v1/alarms?state=cleared")
    assert (reply.status, reply.json["error"]) == (400, "invalid-parameter")


def test_smi_with_operator_tokens_needs_one(state_dir):
    sc = make_sc(state_dir, smi_tokens={"noc": "noc-token"})
    try:
        assert sc.client(None).get("/smi/v1/links").status == 401
        assert sc.client("ac1").get("/smi/v1/links").status == 401  # an AC is no operator
        assert sc.client(None, token="noc-token").get("/smi/v1/links").status == 200
        reply = sc.client("ac1").put("/smi/v1/links/0-1/admin", {"state": "down"})
        assert reply.status == 401 and sc.core.ted.usable("0-1")
    finally:
        sc.close()


def test_metrics_count_lightpaths_refusals_and_alarms(sc):
    ac1 = sc.client("ac1")
    assert ac1.post(LP, OK).status == 201
    assert ac1.post(LP, {**OK, "src": "10.2.0.1", "max_hops": 1}).status == 409
    assert ac1.post(LP, {**OK, "src": "10.2.0.1", "max_delay_ms": 0.01}).status == 409
    sc.client(None).put("/smi/v1/links/4-5/admin", {"state": "down"})
    reply = sc.client(None).get("/metrics")
    assert reply.status == 200 and reply.content_type == "text/plain"
    text = reply.body.decode()
    for line in ("cso_lightpaths_established_total 1.0",
                 'cso_lightpaths{state="up"} 1.0',
                 'cso_requests_blocked_total{reason="hops-exceeded"} 1.0',
                 'cso_requests_blocked_total{reason="delay-exceeded"} 1.0',
                 "cso_provisioning_seconds_count 1.0",
                 'cso_alarms_active{kind="link-admin-down"} 1.0',
                 "cso_switches_connected 6.0", "cso_links_up 5.0",
                 "cso_wavelengths_used 3.0"):
        assert line in text.splitlines(), line
