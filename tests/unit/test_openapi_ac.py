"""docs/openapi-ac.yaml stays true: a valid OpenAPI document with exactly the AC's routes, whose
schemas the AC's real answers follow.

A scenario drives every UAI route (successes, refusals by each stratum, unreachable and
misbehaving peers, bad input, roles); each answer is then looked up in the spec by its route,
method and status, which must be documented, and its body validated against the documented
schema with jsonschema. Request bodies the AC accepted are validated against the spec's
request schemas too, and bodies it refused as bad input must not validate.
"""
import os

import pytest

from openapi_spec_validator import validate as validate_openapi

from openapi_check import check_documented, load_spec, pointer, spec_operations, validator

from ac_app import procedure as proc
from ac_harness import Lab
from cso_base.rest import MAX_BODY_BYTES

SPEC_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi-ac.yaml")
REQS = "/uai/v1/requests"
VOD = {"type": "vod", "src": "10.1.0.1", "content": "movie"}
VM = {"type": "vm", "src": "10.1.13.1", "cpu": 2, "memory_gb": 4, "disk_gb": 20}


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC_FILE)


def app_operations(app):
    return {(method, path) for path, methods in app.paths().items() for method in methods}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    # Alarms at the first unconfirmed release, so the scenario sees one.
    the_lab = Lab(str(tmp_path_factory.mktemp("openapi-ac")), leftover_alarm_after_s=0)
    yield the_lab
    the_lab.close()


def test_the_spec_is_valid_openapi(spec):
    validate_openapi(spec)
    assert spec["openapi"].startswith("3.1")


def test_the_spec_has_exactly_the_routes_the_app_serves(spec, lab):
    assert spec_operations(spec) == app_operations(lab.service.app)


def run_scenario(lab, monkeypatch):
    """Drive every route; every exchange is what the spec must describe."""
    alice, bob, mgr, anon = lab.user("alice"), lab.user("bob"), lab.user("mgr"), lab.user(None)

    def managers_only(path):
        """A listing for managers: served to one; a user, a bad query, no token refused."""
        mgr.get(path)
        alice.get(path)  # 403
        mgr.get(f"{path}?all=1")  # 400
        anon.get(path)  # 401

    anon.get("/uai/v1/health")
    anon.get("/uai/v1/health?verbose=1")  # 400
    # Served: vod remote and local, vm.
    first = alice.post(REQS, {**VOD, "duration_s": 120, "max_delay_ms": 30}).json
    alice.post(REQS, {**VOD, "src": "10.1.1.1"})
    vm = bob.post(REQS, VM).json
    # Refused by each stratum, unavailable and misbehaving peers.
    alice.post(REQS, {**VM, "cpu": 1000})  # 409 application
    alice.post(REQS, {**VOD, "max_delay_ms": 1})  # 409 network
    agents = lab.arae.clients.values()
    for client in agents:
        client.down = True
    bob.post(REQS, VM)  # 503 application
    for client in agents:
        client.down, client.refuse = False, (500, "alias-failed")
    bob.post(REQS, VM)  # 502 application
    for client in agents:
        client.refuse = None
    lab.procedure.housekeeping()  # the VM the silent agent might have made: settled
    lab.transport.down = True
    alice.post(REQS, VOD)  # 503 network
    lab.transport.down = False
    with monkeypatch.context() as patch:
        patch.setattr(proc, "qoe_rating", None)
        alice.post(REQS, VOD)  # 500
    # Bad input.
    alice.post(REQS, raw=b'{"type": ')  # 400
    alice.post(REQS, {**VOD, "colour": "blue"})  # 400
    alice.post(REQS, {**VOD, "src": "10.2.1.1"})  # 422
    alice.post(REQS, raw=b"{}", content_type="text/plain")  # 415
    alice.post(REQS, raw=b" " * (MAX_BODY_BYTES + 1))  # 413
    anon.post(REQS, VOD)  # 401
    # Migration.
    bob.post(REQS, {"type": "migration", "request": vm["id"]})  # 403
    mgr.post(REQS, {"type": "migration", "request": vm["id"]})  # 201
    vm = mgr.get(f"{REQS}/{vm['id']}").json
    mgr.post(REQS, {"type": "migration", "request": vm["id"], "dst_dc": vm["dc"]})  # 422
    other = next(dc for dc in lab.arae.clients if dc != vm["dc"])
    lab.arae.clients[other].refuse = (409, "no-room")
    mgr.post(REQS, {"type": "migration", "request": vm["id"], "dst_dc": other})  # 409 rolled back
    mgr.get(f"{REQS}?type=migration")
    mgr.post(REQS, {"type": "migration", "request": "req-999"})  # 404
    mgr.post(REQS, {"type": "migration", "request": vm["id"], "dst_dc": "dc2"})  # 422
    mgr.post(REQS, {"type": "migration", "request": first["id"]})  # 409
    # Reading.
    alice.get(REQS)
    mgr.get(f"{REQS}?status=active&type=vod")
    mgr.get(f"{REQS}?owner=bob")
    alice.get(f"{REQS}?owner=bob")  # 403
    alice.get(f"{REQS}?status=odd")  # 400
    anon.get(REQS)  # 401
    alice.get(f"{REQS}/{first['id']}")
    alice.get(f"{REQS}/{vm['id']}")  # 404
    alice.get(f"{REQS}/{first['id']}?x=1")  # 400
    anon.get(f"{REQS}/{first['id']}")  # 401
    lab.clock.advance(60)
    alice.get("/uai/v1/accounting")
    mgr.get("/uai/v1/accounting?owner=alice")
    alice.get("/uai/v1/accounting?owner=bob")  # 403
    alice.get("/uai/v1/accounting?type=vod")  # 400
    anon.get("/uai/v1/accounting")  # 401
    managers_only("/uai/v1/dcs")
    # Release: one with a release the agent does not confirm, then expiry.
    lab.arae.clients[vm["dc"]].fail_delete = True
    mgr.delete(f"{REQS}/{vm['id']}")
    managers_only("/uai/v1/alarms")
    lab.arae.clients[vm["dc"]].fail_delete = False
    mgr.get(f"{REQS}/{vm['id']}")
    mgr.delete(f"{REQS}/{vm['id']}")  # 409
    alice.delete(f"{REQS}/req-999")  # 404
    alice.delete(f"{REQS}/{first['id']}?now=1")  # 400
    anon.delete(f"{REQS}/{first['id']}")  # 401
    lab.clock.advance(60)
    lab.procedure.housekeeping()
    alice.get(f"{REQS}/{first['id']}")
    alice.delete(f"{REQS}/{first['id']}")  # 409, expired
    mgr.get(REQS)
    mgr.get("/uai/v1/accounting")
    # The catch-all.
    alice.get("/uai/v1/nothing")  # 404
    alice.request("PUT", REQS)  # 405


@pytest.fixture(scope="module")
def exchanges(lab):
    with pytest.MonkeyPatch.context() as monkeypatch:
        run_scenario(lab, monkeypatch)
    return lab.exchanges


def routed(exchanges):
    """The exchanges an operation answered (not the catch-all's 404 and 405)."""
    return [r for r in exchanges if r.route is not None and r.status != 405]


def test_every_answer_is_documented_and_follows_its_schema(spec, exchanges):
    checked = routed(exchanges)
    for reply in checked:
        assert reply.content_type == "application/json", (reply.method, reply.path)
        check_documented(spec, reply)
    assert len(checked) >= 50


def test_the_scenario_exercises_every_operation_and_its_success(spec, exchanges):
    seen = {(r.method, r.route) for r in routed(exchanges)}
    assert seen == spec_operations(spec)
    for method, path in spec_operations(spec):
        documented = spec["paths"][path][method.lower()]["responses"]
        answered = {str(r.status) for r in routed(exchanges)
                    if (r.method, r.route) == (method, path)}
        assert {code for code in documented if code.startswith("2")} <= answered, (method, path)
        assert set(documented) == answered, (method, path, "documented but never seen")


def test_the_scenario_saw_the_interesting_states(exchanges):
    bodies = [r.json for r in exchanges if r.status in (200, 201) and r.route == REQS + "/{req_id}"]
    assert {b["status"] for b in bodies} >= {"active", "released"}
    assert any(b["leftovers"] == ["vm"] for b in bodies)
    assert any(b["end_reason"] == "expired" for b in bodies)
    created = [r.json for r in exchanges if r.status == 201]
    assert any(b["lightpath"]["hops"] == 0 for b in created)
    assert {r.json["stratum"] for r in exchanges if r.status in (409, 502, 503)
            and "stratum" in r.json} == {"application", "network"}


def test_unrouted_answers_are_errors_as_the_spec_describes_them(spec, exchanges):
    unrouted = [r for r in exchanges if r not in routed(exchanges)]
    assert {r.status for r in unrouted} == {404, 405}
    check = validator(spec, "/components/schemas/Error")
    for reply in unrouted:
        check.validate(reply.json)


@pytest.mark.parametrize("body, valid", [
    (VOD, True),
    ({**VOD, "duration_s": 60, "max_delay_ms": 20, "bandwidth_gbps": 10, "max_hops": 4}, True),
    (VM, True),
    ({"type": "migration", "request": "req-1", "dst_dc": "dc4"}, True),
    ({**VOD, "colour": "blue"}, False),
    ({**VOD, "content": "../x"}, False),
    ({**VM, "cpu": 0}, False),
    ({**VM, "content": "movie"}, False),
    ({"type": "vod", "src": "10.1.0.1"}, False),
    ({"type": "function", "src": "10.1.0.1"}, False),
    ({**VOD, "max_hops": 0}, False),
])
def test_the_request_schema_agrees_with_the_ac(spec, lab, body, valid):
    schema = pointer("paths", REQS, "post", "requestBody", "content", "application/json",
                     "schema")
    assert validator(spec, schema).is_valid(body) == valid
    reply = lab.user("mgr").post(REQS, body)
    assert (reply.status not in (400, 413, 415)) == valid, reply.json


@pytest.mark.parametrize("name, instance", [
    ("Error", {"error": "x"}),
    ("Error", {"error": "x", "reason": "y", "stack": "..."}),
    ("Request", {"id": "req-1"}),
    ("Lightpath", {"id": "lp-1", "route": [], "links": [], "wavelength": 0,
                   "vlan_vid": 1000, "hops": 0, "delay_ms": 0}),
    ("Totals", {"requests": 1}),
])
def test_the_schemas_are_strict_enough_to_fail(spec, name, instance):
    assert list(validator(spec, f"/components/schemas/{name}").iter_errors(instance))
