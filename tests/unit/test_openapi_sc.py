"""docs/openapi-sc.yaml stays true: a valid OpenAPI document with exactly the SC's routes, whose
response schemas the SC's real answers follow.

A scenario drives every ASI and SMI route through Ryu's router (successes and the usual
failures); each answer is then looked up in the spec by its route, method and status, which
must be documented, and its body validated with jsonschema against the documented schema.
"""
import os

import eventlet
import pytest

from openapi_spec_validator import validate as validate_openapi

from openapi_check import check_documented, load_spec, resolve, spec_operations, validator

from cso_base.rest import MAX_BODY_BYTES
from sc_harness import make_sc, stream_events, state_dir  # noqa: F401 (fixture)

SPEC_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi-sc.yaml")
NOC = "noc-token"
ALTO = "/alto"
NUM_RC = {"cost-mode": "numerical", "cost-metric": "routingcost"}


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC_FILE)


def mapper_operations(wsgi):
    ops = set()
    for route in wsgi.mapper.matchlist:
        if route.defaults["action"] == "not_found":
            continue  # the JSON 404/405 catch-all is no operation
        for method in route.conditions.get("method") or ():
            ops.add((method, route.routepath))
    return ops


def test_the_spec_is_valid_openapi(spec):
    validate_openapi(spec)
    assert spec["openapi"].startswith("3.")


def test_the_spec_has_exactly_the_routes_the_controllers_register(spec, state_dir):
    sc = make_sc(state_dir, connect=False)
    try:
        assert spec_operations(spec) == mapper_operations(sc.wsgi)
    finally:
        sc.close()


def test_path_parameters_have_the_routes_requirements(spec, state_dir):
    sc = make_sc(state_dir, connect=False)
    try:
        for route in sc.wsgi.mapper.matchlist:
            if route.routepath not in spec["paths"]:
                continue
            item = spec["paths"][route.routepath]
            for method in route.conditions.get("method") or ():
                params = item.get("parameters", []) + item[method.lower()].get("parameters", [])
                params = [resolve(spec, p["$ref"]) if "$ref" in p else p for p in params]
                in_path = {p["name"]: p["schema"]["pattern"] for p in params if p["in"] == "path"}
                assert in_path == {name: f"^{regex}$" for name, regex in route.reqs.items()}, \
                    (method, route.routepath)
    finally:
        sc.close()


def run_scenario(sc):
    """Drive every route; the exchanges of every client are what the spec must describe."""
    ac1, ac2, anon, noc = sc.client("ac1"), sc.client("ac2"), sc.client(None), \
        sc.client(None, token=NOC)
    lp = "/asi/v1/lightpaths"
    # ASI: lightpaths.
    first = ac1.post(lp, {"src": "10.1.0.1", "dst": "10.1.3.1", "service_type": "vod",
                          "bandwidth_gbps": 10, "max_delay_ms": 5, "exclude_links": ["5-0"],
                          "label": "scenario"}).json
    ac2.post(lp, {"src": "10.2.0.1", "dst": "10.2.3.1", "include_nodes": ["4"], "max_hops": 3})
    ac1.post(lp, {"src": "10.1.3.1", "dst": "10.1.0.1"})  # 409 endpoint-in-use
    ac1.post(lp, {"src": "10.2.0.3", "dst": "10.2.3.3", "max_hops": 1})  # 409 no-path
    ac1.post(lp, {"src": "10.2.0.1", "dst": "10.1.42.1"})  # 422
    ac1.post(lp, {"src": "3", "dst": "10.2.3.1"})  # 422 same node
    ac1.post(lp, raw=b'{"src": ')  # 400
    ac1.post(lp, {"src": "0", "dst": "3", "colour": "blue"})  # 400
    ac1.post(lp, raw=b"{}", content_type="text/plain")  # 415
    ac1.post(lp, raw=b" " * (MAX_BODY_BYTES + 1))  # 413
    anon.post(lp, {"src": "0", "dst": "3"})  # 401
    sc.transport.absent.add(sc.dpid("1"))
    ac1.post(lp, {"src": "10.2.0.2", "dst": "10.2.3.2"})  # 503
    sc.transport.absent.clear()
    ac1.get(lp)
    ac2.get(lp)
    ac1.get(f"{lp}?x=1")  # 400
    anon.get(lp)  # 401
    ac1.get(f"{lp}/{first['id']}")
    ac2.get(f"{lp}/{first['id']}")  # 404
    ac1.request("GET", f"{lp}/{first['id']}", token="nope")  # 401
    # ASI: evaluation, views, events.
    ac1.post("/asi/v1/evaluate", {"src": "0", "dsts": ["3", "1", "0", "42", "10.2.3.1"]})
    ac1.post("/asi/v1/evaluate", {"src": "0", "dsts": ["3"], "max_hops": 1})
    ac1.post("/asi/v1/evaluate", {"src": "0", "dsts": "3"})  # 400
    ac1.post("/asi/v1/evaluate", {"src": "42", "dsts": ["3"]})  # 422
    ac1.post("/asi/v1/evaluate", raw=b"<x/>", content_type="application/xml")  # 415
    for view in ("", "?view=full", "?view=virtual-node", "?view=dc-mesh", "?view=nope"):
        ac1.get(f"/asi/v1/topology{view}")
    anon.get("/asi/v1/topology")
    # SMI.
    noc.get("/smi/v1/switches")
    anon.get("/smi/v1/switches")  # 401
    ac1.get("/smi/v1/links")  # 401: an AC token is no operator token
    noc.get("/smi/v1/links")
    noc.get("/smi/v1/links/0-1")
    noc.get("/smi/v1/links/0-9")  # 404
    noc.put("/smi/v1/links/1-2/admin", {"state": "down"})
    noc.put("/smi/v1/links/1-2/admin", {"state": "sideways"})  # 400
    noc.put("/smi/v1/links/9-9/admin", {"state": "down"})  # 404
    noc.put("/smi/v1/links/1-2/admin", raw=b"state=up", content_type="text/plain")  # 415
    noc.get("/smi/v1/alarms")
    noc.put("/smi/v1/links/1-2/admin", {"state": "up"})
    noc.get("/smi/v1/alarms?state=all")
    noc.get("/smi/v1/alarms?state=old")  # 400
    noc.put("/smi/v1/links/2-1/te-weight", {"te_weight": 3})
    noc.put("/smi/v1/links/1-2/te-weight", {"te_weight": None})
    noc.put("/smi/v1/links/1-2/te-weight", {"te_weight": "heavy"})  # 400
    noc.put("/smi/v1/links/1-2/te-weight", raw=b"x" * (MAX_BODY_BYTES + 1))  # 413
    noc.put("/smi/v1/links/9-9/te-weight", {"te_weight": 3})  # 404
    noc.post("/smi/v1/switches/1/resync")
    noc.post("/smi/v1/switches/99/resync")  # 404
    sc.disconnect("5")
    noc.post("/smi/v1/switches/6/resync")  # 409
    noc.get("/smi/v1/lightpaths")
    anon.get("/smi/v1/lightpaths")  # 401
    noc.get("/metrics")
    anon.get("/metrics")
    # Everything that happened, as the event stream replays it.
    ac1.get("/asi/v1/events?max_seconds=0.01", headers={"Last-Event-ID": "0"})
    ac1.get("/asi/v1/events?max_seconds=later")  # 400
    anon.get("/asi/v1/events?max_seconds=0")  # 401
    run_alto_scenario(sc, ac1, ac2, anon)
    # Teardown, then the catch-all.
    ac1.delete(f"{lp}/{first['id']}")
    ac1.delete(f"{lp}/{first['id']}")  # 404
    anon.delete(f"{lp}/{first['id']}")  # 401
    ac1.get("/asi/v1/nothing")  # 404
    ac1.request("PUT", lp)  # 405


def run_alto_scenario(sc, ac1, ac2, anon):
    """Every ALTO route: its success and its usual failures."""
    ird = ac1.get(f"{ALTO}/directory").json
    anon.get(f"{ALTO}/directory")  # 401
    ac1.get(f"{ALTO}/directory", headers={"Accept": "text/html"})  # 406
    ac1.get(f"{ALTO}/networkmap")
    anon.get(f"{ALTO}/networkmap")  # 401
    nmf = "application/alto-networkmapfilter+json"
    ac1.post(f"{ALTO}/networkmap/filtered", {"pids": ["dc-3", "nope"]}, content_type=nmf)
    ac1.post(f"{ALTO}/networkmap/filtered", {"pids": 3}, content_type=nmf)  # 400
    ac1.post(f"{ALTO}/networkmap/filtered", raw=b"pids=1", content_type="text/plain")  # 415
    for name in ird["meta"]["cost-types"]:
        ac1.get(f"{ALTO}/costmap/{name}")
    ac1.get(f"{ALTO}/costmap/num-routingcost", headers={"Accept": "application/json"})  # 406
    cmf = "application/alto-costmapfilter+json"
    ac1.post(f"{ALTO}/costmap/filtered", {"cost-type": NUM_RC}, content_type=cmf)
    ac1.post(f"{ALTO}/costmap/filtered", {
        "multi-cost-types": [NUM_RC, {"cost-mode": "numerical", "cost-metric": "bw-residual"}],
        "or-constraints": [["[0] le 2"], ["[1] ge 1"]],
        "pids": {"srcs": ["user-0"], "dsts": ["dc-0", "dc-3"]}}, content_type=cmf)
    ac1.post(f"{ALTO}/costmap/filtered", raw=b'{"cost-type": ', content_type=cmf)  # 400
    ac1.post(f"{ALTO}/costmap/filtered", raw=b" " * (MAX_BODY_BYTES + 1),
             content_type=cmf)  # 413
    ecs = "application/alto-endpointcostparams+json"
    ac1.post(f"{ALTO}/endpointcost", {"cost-type": {"cost-mode": "ordinal",
                                                    "cost-metric": "delay-ow"},
                                      "endpoints": {"srcs": ["ipv4:10.1.0.1"],
                                                    "dsts": ["ipv4:10.2.3.1", "ipv4:10.2.0.1"]}},
             content_type=ecs)
    ac1.post(f"{ALTO}/endpointcost", {"cost-type": NUM_RC, "endpoints": {"srcs": ["x"]}},
             content_type=ecs)  # 400
    ac1.post(f"{ALTO}/endpointprop", {"properties": ["networkmap.pid"],
                                      "endpoints": ["ipv4:10.1.3.1", "ipv6:::1"]},
             content_type="application/alto-endpointpropparams+json")
    anon.post(f"{ALTO}/endpointprop", {})  # 401
    ac1.post(f"{ALTO}/endpointprop", {"properties": ["pid"], "endpoints": ["ipv4:10.1.3.1"]})
    ac1.get(f"{ALTO}/propmap")
    anon.get(f"{ALTO}/propmap")  # 401
    ac1.post(f"{ALTO}/propmap/filtered", {"entities": ["networkmap.pid:dc-0", "ipv4:10.1.2.3"],
                                          "properties": ["priv:cso-dc", "networkmap.pid"]},
             content_type="application/alto-propmapparams+json")
    ac1.post(f"{ALTO}/propmap/filtered", {"entities": []})  # 400
    # An update stream, controlled while it runs.
    usp = "application/alto-updatestreamparams+json"
    watcher = eventlet.spawn(ac1.post, f"{ALTO}/updates?max_seconds=0.2", {"add": {
        "rc": {"resource-id": "costmap-num-routingcost"},
        "f": {"resource-id": "costmap-filtered", "input": {"cost-type": NUM_RC}}}},
        content_type=usp)
    eventlet.sleep(0.05)
    [stream] = sc.wsgi.registory["AltoController"]["alto_streams"].ids()
    control = f"{ALTO}/updates/streams/{stream}"
    ac1.post(control, {"add": {"p": {"resource-id": "propmap"}}}, content_type=usp)  # 204
    ac1.post(control, {"remove": ["zz"]}, content_type=usp)  # 400
    ac2.post(control, {"remove": ["p"]}, content_type=usp)  # 404
    sc.core.ted.occupy(["2-3"], 3, "alto-scenario")  # a change for the stream to report
    watcher.wait()
    sc.core.ted.release(["2-3"], 3, "alto-scenario")
    ac1.post(f"{ALTO}/updates", {"add": {"x": {"resource-id": "nope"}}}, content_type=usp)  # 400
    ac1.post(f"{ALTO}/updates?max_seconds=never", {"add": {}}, content_type=usp)  # 400
    anon.post(f"{ALTO}/updates", {"add": {}}, content_type=usp)  # 401


@pytest.fixture(scope="module")
def exchanges(tmp_path_factory):
    sc = make_sc(str(tmp_path_factory.mktemp("openapi")), smi_tokens={"noc": NOC})
    try:
        run_scenario(sc)
        yield sc.exchanges
    finally:
        sc.close()


def test_every_answer_is_documented_and_follows_its_schema(spec, exchanges):
    checked = [reply for reply in exchanges if reply.route is not None]
    for reply in checked:
        check_documented(spec, reply)
    assert len(checked) >= 95


def test_the_scenario_exercises_every_operation_and_its_success(spec, exchanges):
    seen = {(r.method, r.route) for r in exchanges if r.route}
    assert seen == spec_operations(spec)
    for method, path in spec_operations(spec):
        documented = spec["paths"][path][method.lower()]["responses"]
        successes = {code for code in documented if code.startswith("2")}
        answered = {str(r.status) for r in exchanges if (r.method, r.route) == (method, path)}
        assert successes <= answered, (method, path)
        assert answered - successes or path == "/metrics", (method, path, "no failure")


def test_unrouted_answers_are_errors_as_the_spec_describes_them(spec, exchanges):
    unrouted = [r for r in exchanges if r.route is None]
    assert {r.status for r in unrouted} == {404, 405}
    check = validator(spec, "/components/schemas/Error")
    for reply in unrouted:
        check.validate(reply.json)


def test_alto_update_stream_events_follow_the_spec(spec, exchanges):
    streams = [r for r in exchanges if r.route == "/alto/updates" and r.status == 200]
    events = [e for r in streams for e in stream_events(r.body)]
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["application/alto-updatestreamcontrol+json",
                         "application/alto-costmap+json,rc", "application/alto-costmap+json,f"]
    assert "application/merge-patch+json,rc" in kinds and kinds.count(kinds[0]) >= 2
    for event in events:
        media_type = event["event"].split(",")[0]
        if media_type == "application/alto-updatestreamcontrol+json":
            validator(spec, "/components/schemas/AltoUpdateStreamControlEvent").validate(
                event["data"])
        elif media_type != "application/merge-patch+json":
            name = {"application/alto-costmap+json": "AltoCostMap",
                    "application/alto-propmap+json": "AltoPropertyMap"}[media_type]
            validator(spec, f"/components/schemas/{name}").validate(event["data"])


def test_event_stream_data_follow_the_spec(spec, exchanges):
    streams = [r for r in exchanges if r.route == "/asi/v1/events" and r.status == 200]
    events = [e for r in streams for e in stream_events(r.body)]
    kinds = {e["event"] for e in events}
    assert kinds == {"lightpath", "alarm"}
    for event in events:
        name = {"lightpath": "LightpathEvent", "alarm": "AlarmEvent"}[event["event"]]
        validator(spec, f"/components/schemas/{name}").validate(event["data"])


@pytest.mark.parametrize("name, instance", [
    ("Lightpath", {"id": "lp-1"}),
    ("Error", {"error": "x"}),
    ("Error", {"error": "x", "reason": "y", "stack": "..."}),
    ("LinkView", {"id": "0-1", "owners": {}}),
    ("FullView", {"view": "full", "version": 0, "nodes": [], "links": [], "owners": {}}),
    ("AltoError", {"meta": {"code": "E_SYNTAX", "value": "x"}}),
    ("AltoError", {"meta": {"code": "E_NOPE"}}),
    ("AltoCostMap", {"meta": {"cost-type": {}}, "cost-map": {}}),
    ("AltoCostMap", {"meta": {"dependent-vtags": [], "cost-type": {}, "x": 1}, "cost-map": {}}),
    ("AltoNetworkMap", {"meta": {}, "network-map": {}}),
])
def test_the_schemas_are_strict_enough_to_fail(spec, name, instance):
    assert list(validator(spec, f"/components/schemas/{name}").iter_errors(instance))
