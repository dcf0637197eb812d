"""ALTO over HTTP through Ryu's router: media types, Accept, errors, access and update streams.

Every IRD entry is fetched at its URI with its method and checked against its advertised media
type (exactly, without parameters); costs follow lightpaths set up over ASI and link state
changed over SMI; an update stream tells its client of a new lightpath without polling.
"""
import json

import eventlet
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sc_app import config
from cso_base.wire import (DIRECTORY, E_INVALID_FIELD_VALUE, E_MISSING_FIELD, E_SYNTAX, ERROR,
                           EVENT_STREAM, MERGE_PATCH, UPDATE_STREAM_CONTROL)
from sc_app.alto import (COST_TYPES)
from sc_harness import make_sc, stream_events, state_dir  # noqa: F401 (fixture)

NUM_RC = {"cost-mode": "numerical", "cost-metric": "routingcost"}
COSTMAP = "application/alto-costmap+json"
FILTER = "application/alto-costmapfilter+json"
#: What a POST resource is sent: the smallest valid input of its ``accepts`` type.
INPUTS = {
    "networkmap-filtered": {"pids": ["dc-3"]},
    "costmap-filtered": {"cost-type": NUM_RC},
    "endpointcost": {"cost-type": NUM_RC,
                     "endpoints": {"srcs": ["ipv4:10.1.0.1"], "dsts": ["ipv4:10.2.3.1"]}},
    "endpointprop": {"properties": ["networkmap.pid"], "endpoints": ["ipv4:10.1.0.1"]},
    "propmap-filtered": {"entities": ["ipv4:10.1.0.1"], "properties": ["networkmap.pid"]},
}


@pytest.fixture
def sc(state_dir):
    instance = make_sc(state_dir, smi_tokens={"noc": "noc-token"})
    yield instance
    instance.close()


@pytest.fixture
def ac(sc):
    return sc.client("ac1")


def alto_post(client, path, body, media_type, **kwargs):
    return client.post(path, body, content_type=media_type, **kwargs)


def exact_type(reply):
    return reply.headers["Content-Type"]


def cost_map(client, name):
    return client.get(f"/alto/costmap/{name}").json


# -- directory and media types --------------------------------------------------------------

def test_every_directory_entry_answers_with_its_exact_media_type(ac):
    reply = ac.get("/alto/directory", headers={
        "Accept": f"{DIRECTORY},{ERROR}"})
    assert reply.status == 200 and exact_type(reply) == DIRECTORY
    resources = reply.json["resources"]
    served = set()
    for rid, entry in resources.items():
        if rid == "update-stream":
            continue
        accept = {"Accept": f"{entry['media-type']},{ERROR}"}
        if "accepts" in entry:
            got = ac.post(entry["uri"], INPUTS[rid], content_type=entry["accepts"],
                          headers=accept)
        else:
            got = ac.get(entry["uri"], headers=accept)
        assert got.status == 200, (rid, got.body)
        assert exact_type(got) == entry["media-type"], rid  # no "; charset=..." appended
        assert "meta" in got.json
        served.add(rid)
    assert served == set(resources) - {"update-stream"}
    assert {f"costmap-{ct.name}" for ct in COST_TYPES} <= served


def test_accept_headers_are_honoured(ac):
    for accept in ("*/*", "application/*", f"{COSTMAP},{ERROR}", "application/json, */*;q=0.1"):
        assert ac.get("/alto/costmap/num-hopcount", headers={"Accept": accept}).status == 200
    refused = ac.get("/alto/costmap/num-hopcount", headers={"Accept": "text/html"})
    assert refused.status == 406 and refused.json["error"] == "not-acceptable"
    wrong = ac.get("/alto/directory", headers={"Accept": COSTMAP})
    assert wrong.status == 406


def test_post_bodies_must_be_the_accepted_type_or_json(ac):
    assert alto_post(ac, "/alto/costmap/filtered", {"cost-type": NUM_RC},
                     "application/json").status == 200
    refused = alto_post(ac, "/alto/costmap/filtered", {"cost-type": NUM_RC},
                        "application/alto-networkmapfilter+json")
    assert refused.status == 415 and refused.json["error"] == "unsupported-media-type"
    assert ac.post("/alto/costmap/filtered", raw=b"x" * (70 * 1024),
                   content_type=FILTER).status == 413


def test_unknown_fields_are_ignored(ac):
    plain = alto_post(ac, "/alto/costmap/filtered", {"cost-type": NUM_RC}, FILTER).json
    extra = alto_post(ac, "/alto/costmap/filtered", {
        "cost-type": {**NUM_RC, "description": "x", "colour": 1}, "colour": "blue",
        "pids": {"srcs": [], "dsts": [], "via": ["node-1"]}}, FILTER).json
    assert extra == plain


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    (b'{"cost-type": ', {"code": E_SYNTAX}),
    (b'[1, 2]', {"code": E_SYNTAX}),
    (b'', {"code": E_SYNTAX}),
    (b'{"a": 1, "a": 2}', {"code": E_SYNTAX}),
    (b'{"pids": {}}', {"code": E_MISSING_FIELD, "field": "cost-type"}),
    (b'{"cost-type": {"cost-mode": "numerical", "cost-metric": 5}}',
     {"code": "E_INVALID_FIELD_TYPE", "field": "cost-type/cost-metric"}),
    (b'{"cost-type": {"cost-mode": "numerical", "cost-metric": "shoesize"}}',
     {"code": E_INVALID_FIELD_VALUE, "field": "cost-type/cost-metric", "value": "shoesize"}),
])
def test_errors_are_rfc7285_error_resources(ac, raw, expected):
    reply = ac.post("/alto/costmap/filtered", raw=raw, content_type=FILTER)
    assert reply.status == 400 and exact_type(reply) == ERROR
    meta = reply.json["meta"]
    assert {key: meta[key] for key in expected} == expected
    if expected["code"] == E_SYNTAX:
        assert meta["syntax-error"]


def test_unknown_alto_paths_and_methods_are_json_404_and_405(ac):
    assert ac.get("/alto/costmap/num-shoesize").status == 404
    assert ac.get("/alto/nothing").status == 404
    assert ac.get("/alto/costmap/filtered").status == 405
    assert ac.post("/alto/networkmap", {}).status == 405


# -- access ----------------------------------------------------------------------------------

def test_alto_needs_an_ac_token_by_default(sc):
    for client in (sc.client(None), sc.client(None, token="nope"),
                   sc.client(None, token="noc-token")):
        reply = client.get("/alto/networkmap")
        assert reply.status == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.post("/alto/updates", {"add": {}}).status == 401
    assert sc.client("ac2").get("/alto/networkmap").status == 200


def test_alto_can_be_open(state_dir):
    sc = make_sc(state_dir, alto_auth="none")
    try:
        anonymous = sc.client(None)
        assert anonymous.get("/alto/directory").status == 200
        assert anonymous.get("/alto/costmap/num-routingcost").status == 200
        assert anonymous.get("/asi/v1/lightpaths").status == 401  # only ALTO opens
    finally:
        sc.close()


@pytest.mark.parametrize("value, ok", [("none", True), ("ac-tokens", True), ("maybe", False)])
def test_the_alto_auth_option(value, ok):
    text = f"[sc]\ntopology = ring\nalto_auth = {value}\n"
    if ok:
        assert config.parse_string(text).alto_auth == value
    else:
        with pytest.raises(config.ConfigError, match="alto_auth"):
            config.parse_string(text)
    assert config.parse_string("[sc]\ntopology = ring\n").alto_auth == "ac-tokens"


# -- the maps follow the network ----------------------------------------------------------------

def test_a_lightpath_changes_routingcost_and_bw_residual_and_their_tags(sc, ac):
    names = ("num-routingcost", "num-bw-residual", "num-hopcount")
    before = {name: cost_map(ac, name) for name in names}
    lp = ac.post("/asi/v1/lightpaths", {"src": "10.1.0.1", "dst": "10.2.3.1"})
    assert lp.status == 201, lp.json
    during = {name: cost_map(ac, name) for name in before}
    for name in ("num-routingcost", "num-bw-residual"):
        assert during[name]["meta"]["vtag"] != before[name]["meta"]["vtag"]
    assert during["num-hopcount"] == before["num-hopcount"]
    assert during["num-bw-residual"]["cost-map"]["user-0"]["dc-3"] == 30_000_000
    assert during["num-routingcost"]["cost-map"]["user-0"]["dc-3"] > 3.0
    assert ac.delete(f"/asi/v1/lightpaths/{lp.json['id']}").status == 200
    assert {name: cost_map(ac, name) for name in before} == before  # same content, same tags


def test_a_link_set_down_over_smi_changes_hops_and_delay(sc, ac):
    before = cost_map(ac, "num-hopcount")
    noc = sc.client(None, token="noc-token")
    assert noc.put("/smi/v1/links/1-2/admin", {"state": "down"}).status == 200
    after = cost_map(ac, "num-hopcount")
    assert after["meta"]["vtag"] != before["meta"]["vtag"]
    assert (before["cost-map"]["user-1"]["user-2"], after["cost-map"]["user-1"]["user-2"]) == (1, 5)
    assert after["meta"]["dependent-vtags"] == before["meta"]["dependent-vtags"]


# -- update streams ---------------------------------------------------------------------------

def stream_request(ac, add, seconds, **kwargs):
    return ac.post(f"/alto/updates?max_seconds={seconds}", {"add": add},
                   content_type="application/alto-updatestreamparams+json",
                   headers={"Accept": EVENT_STREAM}, **kwargs)


def test_an_update_stream_tells_of_a_new_lightpath_without_polling(sc, ac):
    watcher = eventlet.spawn(stream_request, sc.client("ac2"), {
        "rc": {"resource-id": "costmap-num-routingcost"},
        "ecs": {"resource-id": "endpointcost", "input": {
            "cost-type": {"cost-mode": "numerical", "cost-metric": "bw-residual"},
            "endpoints": {"srcs": ["ipv4:10.1.0.1"], "dsts": ["ipv4:10.2.3.1"]}}}}, 0.3)
    eventlet.sleep(0.05)
    assert ac.post("/asi/v1/lightpaths", {"src": "10.1.0.1", "dst": "10.2.3.1"}).status == 201
    reply = watcher.wait()
    assert reply.status == 200 and exact_type(reply) == EVENT_STREAM
    events = stream_events(reply.body)
    kinds = [event["event"] for event in events]
    assert kinds == [UPDATE_STREAM_CONTROL, f"{COSTMAP},rc",
                     "application/alto-endpointcost+json,ecs", f"{MERGE_PATCH},rc",
                     f"{MERGE_PATCH},ecs"]
    assert events[0]["data"]["control-uri"].startswith("http://localhost/alto/updates/streams/")
    assert events[4]["data"] == {"endpoint-cost-map": {"ipv4:10.1.0.1": {
        "ipv4:10.2.3.1": 30_000_000}}}
    # A merge patch carries only what changed: here the tag, not the resource id.
    new_tag = cost_map(ac, "num-routingcost")["meta"]["vtag"]["tag"]
    assert events[3]["data"]["meta"] == {"vtag": {"tag": new_tag}}


def test_an_update_stream_is_controlled_through_its_control_uri(sc, ac):
    watcher = eventlet.spawn(stream_request, ac, {"nm": {"resource-id": "networkmap"}}, 0.3)
    eventlet.sleep(0.05)
    [stream_id] = sc.wsgi.registory["AltoController"]["alto_streams"].ids()
    control = f"/alto/updates/streams/{stream_id}"
    other = sc.client("ac2").post(control, {"remove": ["nm"]})
    assert other.status == 404  # another AC's stream
    bad = ac.post(control, {"remove": ["zz"]})
    assert bad.status == 400 and bad.json["meta"]["field"] == "remove"
    added = ac.post(control, {"add": {"p": {"resource-id": "propmap"}}},
                    content_type="application/alto-updatestreamparams+json")
    assert added.status == 204 and added.body == b""
    assert ac.post(control, {"remove": ["nm", "p"]}).status == 204
    events = stream_events(watcher.wait().body)
    assert [e["event"] for e in events] == [
        UPDATE_STREAM_CONTROL, "application/alto-networkmap+json,nm", UPDATE_STREAM_CONTROL,
        "application/alto-propmap+json,p", UPDATE_STREAM_CONTROL]
    assert events[2]["data"] == {"started": ["p"]}
    assert events[4]["data"] == {"stopped": ["nm", "p"]}
    assert ac.post(control, {"remove": ["nm"]}).status == 404  # the stream ended


def test_update_stream_requests_are_checked_before_streaming(ac):
    bad = stream_request(ac, {"x": {"resource-id": "nope"}}, 0)
    assert bad.status == 400 and exact_type(bad) == ERROR
    assert bad.json["meta"] == {"code": E_INVALID_FIELD_VALUE, "field": "add/x/resource-id",
                                "value": "nope"}
    assert stream_request(ac, {"x": {"resource-id": "networkmap"}}, "soon").status == 400
    not_a_stream = ac.post("/alto/updates?max_seconds=0",
                           {"add": {"x": {"resource-id": "networkmap"}}},
                           headers={"Accept": "application/json"})
    assert not_a_stream.status == 406


def test_event_stream_data_are_single_json_lines(ac):
    reply = stream_request(ac, {"c": {"resource-id": "costmap-ord-delay-ow"}}, 0)
    for block in reply.body.decode().split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("data:")]
        assert len(lines) <= 1
        if lines:
            json.loads(lines[0][len("data:"):])


# -- any body: an answer, never a failure -------------------------------------------------------

_WORDS = st.sampled_from([
    "cost-type", "multi-cost-types", "testable-cost-types", "constraints", "or-constraints",
    "pids", "srcs", "dsts", "endpoints", "properties", "entities", "add", "remove",
    "resource-id", "input", "tag", "incremental-changes", "cost-mode", "cost-metric",
    "cost-context", "cost-source", "address-types", "numerical", "ordinal", "routingcost",
    "bw-residual", "le 3", "[1] ge 2", "ipv4:10.1.0.1", "ipv4:10.1.0.0/8", "ipv6:::1",
    "networkmap.pid:dc-3", "networkmap.pid", "priv:cso-dc", "user-0", "costmap-filtered",
    "endpointcost", "ipv4:1.2.3", ""])
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2 ** 70) | st.floats(allow_nan=False) | _WORDS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_WORDS, inner, max_size=4),
    max_leaves=20)


@pytest.fixture(scope="module")
def shared_sc(tmp_path_factory):
    instance = make_sc(str(tmp_path_factory.mktemp("alto-any")))
    yield instance
    instance.close()


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/alto/networkmap/filtered", "/alto/costmap/filtered",
                             "/alto/endpointcost", "/alto/endpointprop",
                             "/alto/propmap/filtered", "/alto/updates?max_seconds=0"]),
       request_body=st.dictionaries(_WORDS, _VALUES, max_size=5))
def test_any_json_object_gets_a_map_or_an_alto_error(shared_sc, path, request_body):
    reply = shared_sc.client("ac1").post(path, request_body)
    assert reply.status in (200, 400), (reply.status, reply.body)
    if reply.status == 400:
        assert exact_type(reply) == ERROR
        assert reply.json["meta"]["code"] in ("E_SYNTAX", E_MISSING_FIELD,
                                              "E_INVALID_FIELD_TYPE", E_INVALID_FIELD_VALUE)
