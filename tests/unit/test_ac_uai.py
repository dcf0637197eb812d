"""UAI: tokens, roles and ownership, bad input (always 4xx JSON, nothing reserved), listing,
accounting sums, migration's gate, health and the managers' DC view."""
import pytest

from ac_harness import NOTHING, REQS, lab  # noqa: F401 (fixture)
from rest_cases import FRAMING
from sc_harness import state_dir  # noqa: F401 (fixture)

VOD = {"type": "vod", "src": "10.1.0.1", "content": "movie"}
VM = {"type": "vm", "src": "10.1.0.1", "cpu": 2, "memory_gb": 4, "disk_gb": 10}


def new(lab, user, body=None):
    reply = lab.user(user).post(REQS, body or VOD)
    assert reply.status == 201, reply.json
    return reply.json["id"]


# -- authentication, roles, ownership -------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("POST", REQS), ("GET", REQS), ("GET", f"{REQS}/req-1"), ("DELETE", f"{REQS}/req-1"),
    ("GET", "/uai/v1/accounting"), ("GET", "/uai/v1/dcs"),
])
@pytest.mark.parametrize("token", [None, "nope", "alice-tokenx", "ALICE-TOKEN",
                                   "Bearer alice-token"])
def test_every_resource_needs_a_valid_token(lab, method, path, token):
    reply = lab.user(None).request(method, path, VOD if method == "POST" else None,
                                   token=token)
    assert reply.status == 401
    assert reply.json["error"] == "unauthorized"
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert lab.held() == NOTHING and lab.procedure.db.list() == []


def test_a_user_sees_and_releases_only_their_own_requests(lab):
    mine, theirs = new(lab, "alice"), new(lab, "bob")
    alice, bob, mgr = lab.user("alice"), lab.user("bob"), lab.user("mgr")
    assert [r["id"] for r in alice.get(REQS).json["requests"]] == [mine]
    assert [r["id"] for r in bob.get(REQS).json["requests"]] == [theirs]
    assert [r["id"] for r in mgr.get(REQS).json["requests"]] == [mine, theirs]
    for method in ("GET", "DELETE"):
        reply = alice.request(method, f"{REQS}/{theirs}")
        assert (reply.status, reply.json["error"]) == (404, "not-found")
        # Exactly what an id that does not exist answers: nothing tells them apart.
        assert reply.json["reason"] == f"no request {theirs}"
    assert bob.get(f"{REQS}/{theirs}").json["status"] == "active"
    assert [r["owner"] for r in alice.get("/uai/v1/accounting").json["requests"]] == ["alice"]


def test_a_manager_sees_and_releases_anyones_request(lab):
    theirs = new(lab, "bob")
    mgr = lab.user("mgr")
    assert mgr.get(f"{REQS}/{theirs}").json["owner"] == "bob"
    gone = mgr.delete(f"{REQS}/{theirs}").json
    assert (gone["status"], gone["end_reason"]) == ("released", "deleted by mgr")
    assert lab.held() == NOTHING
    assert [r["owner"] for r in mgr.get("/uai/v1/accounting").json["requests"]] == ["bob"]
    assert mgr.get(f"{REQS}?owner=alice").json["requests"] == []
    assert len(mgr.get("/uai/v1/accounting?owner=bob").json["requests"]) == 1


def test_users_may_not_ask_for_another_owner_or_the_dcs(lab):
    alice = lab.user("alice")
    for path in (f"{REQS}?owner=bob", "/uai/v1/accounting?owner=bob", "/uai/v1/dcs"):
        reply = alice.get(path)
        assert (reply.status, reply.json["error"]) == (403, "forbidden")


def test_managers_see_the_arae_view_of_each_dc(lab):
    new(lab, "alice")
    dcs = lab.user("mgr").get("/uai/v1/dcs").json["dcs"]
    assert [d["dc"] for d in dcs] == ["dc1", "dc4", "dc7", "dc9", "dc12"]
    assert sum(d["vms"] for d in dcs) == 1 and all(d["available"] for d in dcs)


def test_health_needs_no_token(lab):
    reply = lab.user(None).get("/uai/v1/health")
    assert (reply.status, reply.json) == (200, {"status": "ok", "strategy": "GLB"})


# -- migration: managers only, of an active vm request ---------------------------------------

def test_migration_is_for_managers_and_only_of_an_active_vm_request(lab):
    vm_id, vod_id = new(lab, "bob", VM), new(lab, "bob", VOD)
    ask = {"type": "migration", "request": vm_id}
    reply = lab.user("bob").post(REQS, ask)
    assert (reply.status, reply.json["error"]) == (403, "forbidden")
    mgr = lab.user("mgr")
    here = mgr.get(f"{REQS}/{vm_id}").json["dc"]
    cases = [
        ({"type": "migration"}, 400, "missing-field"),
        ({**ask, "src": "10.1.0.1"}, 400, "unknown-field"),
        ({**ask, "request": "req-99"}, 404, "not-found"),
        ({**ask, "request": vod_id}, 409, "not-migratable"),
        ({**ask, "dst_dc": "dc2"}, 422, "unknown-dc"),
        ({**ask, "dst_dc": here}, 422, "same-dc"),
    ]
    for body, status, error in cases:
        reply = mgr.post(REQS, body)
        assert (reply.status, reply.json["error"]) == (status, error), body
    assert len(lab.procedure.db.list()) == 2  # refused at the gate: nothing recorded
    moved = mgr.post(REQS, ask)
    assert moved.status == 201 and moved.json["type"] == "migration", moved.json
    assert moved.json["migration"]["request"] == vm_id
    mgr.delete(f"{REQS}/{vm_id}")
    reply = mgr.post(REQS, ask)
    assert (reply.status, reply.json["error"]) == (409, "not-migratable")
    assert [r.type for r in lab.procedure.db.list()] == ["vm", "vod", "migration"]
    assert lab.user("bob").get(f"{REQS}?type=migration").json == {"requests": []}
    assert len(mgr.get(f"{REQS}?type=migration").json["requests"]) == 1


# -- bad input -------------------------------------------------------------------------------

def body(**fields):
    return {"body": fields}


BAD = {
    **FRAMING,
    "no-type": (body(src="10.1.0.1", content="movie"), 400, "missing-field"),
    "null-type": (body(type=None, src="10.1.0.1"), 400, "missing-field"),
    "unknown-type": (body(type="function", src="10.1.0.1"), 400, "invalid-field"),
    "type-number": (body(type=1), 400, "invalid-field"),
    "type-case": (body(**{**VOD, "type": "VOD"}), 400, "invalid-field"),
    "unknown-field": (body(**VOD, priority=1), 400, "unknown-field"),
    "vm-field-on-vod": (body(**VOD, cpu=1), 400, "unknown-field"),
    "vod-field-on-vm": (body(**VM, content="movie"), 400, "unknown-field"),
    "no-src": (body(type="vod", content="movie"), 400, "missing-field"),
    "src-number": (body(**{**VOD, "src": 10}), 400, "invalid-field"),
    "src-name": (body(**{**VOD, "src": "u0"}), 400, "invalid-field"),
    "src-ipv6": (body(**{**VOD, "src": "::1"}), 400, "invalid-field"),
    "src-dc-host": (body(**{**VOD, "src": "10.2.1.1"}), 422, "unknown-endpoint"),
    "src-other-net": (body(**{**VOD, "src": "192.168.0.1"}), 422, "unknown-endpoint"),
    "src-no-node": (body(**{**VOD, "src": "10.1.14.1"}), 422, "unknown-endpoint"),
    "src-network": (body(**{**VOD, "src": "10.1.0.0"}), 422, "unknown-endpoint"),
    "src-broadcast": (body(**{**VOD, "src": "10.1.0.255"}), 422, "unknown-endpoint"),
    "no-content": (body(type="vod", src="10.1.0.1"), 400, "missing-field"),
    "content-path": (body(**{**VOD, "content": "../etc/passwd"}), 400, "invalid-field"),
    "content-space": (body(**{**VOD, "content": "a movie"}), 400, "invalid-field"),
    "content-empty": (body(**{**VOD, "content": ""}), 400, "invalid-field"),
    "content-long": (body(**{**VOD, "content": "m" * 300}), 400, "invalid-field"),
    "duration-zero": (body(**VOD, duration_s=0), 400, "invalid-field"),
    "duration-negative": (body(**VOD, duration_s=-5), 400, "invalid-field"),
    "duration-too-long": (body(**VOD, duration_s=86401), 400, "invalid-field"),
    "duration-string": (body(**VOD, duration_s="60"), 400, "invalid-field"),
    "duration-bool": (body(**VOD, duration_s=True), 400, "invalid-field"),
    "bandwidth-negative": (body(**VOD, bandwidth_gbps=-1), 400, "invalid-field"),
    "delay-huge": (body(**VOD, max_delay_ms=1e308), 400, "invalid-field"),
    "hops-float": (body(**VOD, max_hops=1.5), 400, "invalid-field"),
    "hops-zero": (body(**VOD, max_hops=0), 400, "invalid-field"),
    "jitter-list": (body(**VOD, max_jitter_ms=[1]), 400, "invalid-field"),
    "vm-no-cpu": (body(type="vm", src="10.1.0.1", memory_gb=1, disk_gb=1), 400,
                  "missing-field"),
    "vm-no-disk": (body(type="vm", src="10.1.0.1", cpu=1, memory_gb=1), 400, "missing-field"),
    "vm-cpu-zero": (body(**{**VM, "cpu": 0}), 400, "invalid-field"),
    "vm-cpu-negative": (body(**{**VM, "cpu": -2}), 400, "invalid-field"),
    "vm-cpu-string": (body(**{**VM, "cpu": "2"}), 400, "invalid-field"),
    "vm-memory-negative": (body(**{**VM, "memory_gb": -1}), 400, "invalid-field"),
    "vm-disk-huge": (body(**{**VM, "disk_gb": 1e13}), 400, "invalid-field"),
    "vm-cpu-huge-int": (body(**{**VM, "cpu": 10 ** 30}), 400, "invalid-field"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_4xx_json_error_and_reserves_nothing(lab, case):
    kwargs, status, error = BAD[case]
    reply = lab.user("alice").request("POST", REQS, **kwargs)
    assert reply.status == status, reply.json
    assert reply.content_type == "application/json"
    assert reply.json["reason"]
    if error is not None:  # None: a case of `rest_cases.FRAMING` whose code differs by interface
        assert reply.json["error"] == error
    assert lab.held() == NOTHING and lab.procedure.db.list() == []
    assert all(not client.calls for client in lab.arae.clients.values())
    assert lab.transport.calls == []


@pytest.mark.parametrize("path, status, error", [
    (f"{REQS}/nope", 404, "not-found"),
    (f"{REQS}/req-0", 404, "not-found"),
    (f"{REQS}/req-01", 404, "not-found"),
    (f"{REQS}/req-1x", 404, "not-found"),
    (f"{REQS}/req-99999999999999999999999", 404, "not-found"),
    (f"{REQS}/req-1?verbose=1", 400, "unknown-parameter"),
    (f"{REQS}?status=running", 400, "invalid-parameter"),
    (f"{REQS}?type=teleport", 400, "invalid-parameter"),
    (f"{REQS}?sort=id", 400, "unknown-parameter"),
    (f"{REQS}?status=active&status=refused", 400, "invalid-parameter"),
    ("/uai/v1/accounting?type=vod", 400, "unknown-parameter"),
    ("/uai/v1/nothing", 404, "not-found"),
    ("/uai/v2/requests", 404, "not-found"),
])
def test_bad_queries_and_paths(lab, path, status, error):
    new(lab, "alice")
    reply = lab.user("alice").get(path)
    assert (reply.status, reply.json["error"]) == (status, error), reply.json


def test_wrong_methods_are_405_with_the_allowed_ones(lab):
    reply = lab.user("alice").request("PUT", REQS, VOD)
    assert (reply.status, reply.json["error"], reply.json["allowed"]) == (
        405, "method-not-allowed", ["GET", "POST"])
    reply = lab.user("alice").request("POST", f"{REQS}/req-1", VOD)
    assert reply.json["allowed"] == ["DELETE", "GET"]


# -- listing and accounting ------------------------------------------------------------------

def test_list_filters_by_status_and_type(lab):
    first, second = new(lab, "alice", VOD), new(lab, "alice", VM)
    lab.user("alice").post(REQS, {**VM, "cpu": 100})  # refused
    lab.user("alice").delete(f"{REQS}/{first}")
    alice = lab.user("alice")

    def ids(query):
        return [r["id"] for r in alice.get(f"{REQS}?{query}").json["requests"]]

    assert ids("status=active") == [second]
    assert ids("status=released") == [first]
    assert ids("status=refused") == ["req-3"]
    assert ids("type=vm") == [second, "req-3"]
    assert ids("type=vod&status=active") == []


def test_accounting_per_request_and_totals_per_type(lab):
    alice, bob = lab.user("alice"), lab.user("bob")
    a1 = new(lab, "alice", {**VOD, "duration_s": 100})                        # 1 cpu, 1, 1
    a2 = new(lab, "alice", {**VM, "src": "10.1.13.1"})                        # 2 cpu, 4, 10
    refused = alice.post(REQS, {**VM, "cpu": 1000}).json["id"]
    b1 = new(lab, "bob", {**VM, "cpu": 4, "memory_gb": 8, "disk_gb": 0})
    lab.clock.advance(30)
    alice.delete(f"{REQS}/{a2}")
    lab.clock.advance(70)
    lab.procedure.housekeeping()                                             # a1 expires at 100
    lab.clock.advance(20)                                                    # b1 still active
    book = lab.user("mgr").get("/uai/v1/accounting").json
    entries = {e["id"]: e for e in book["requests"]}
    assert set(entries) == {a1, a2, refused, b1}
    assert (entries[a1]["duration_s"], entries[a2]["duration_s"], entries[b1]["duration_s"],
            entries[refused]["duration_s"]) == (100, 30, 120, 0)
    assert entries[a2]["resources"]["cpu"] == 2 and entries[a2]["resources"]["hops"] >= 1
    assert entries[refused]["resources"] == {"cpu": 0, "memory_gb": 0, "disk_gb": 0,
                                             "wavelength": None, "hops": 0}
    assert (entries[refused]["stratum"], entries[refused]["reason"]) == (
        "application", "no-server-fits")
    assert entries[b1]["end"] is None and entries[a1]["end"] is not None
    totals = book["totals"]
    assert totals["vod"] == {"requests": 1, "served": 1, "active": 0, "refused": 0, "failed": 0,
                             "duration_s": 100, "cpu_s": 100, "memory_gb_s": 100,
                             "disk_gb_s": 100,
                             "wavelength_link_s": 100 * entries[a1]["resources"]["hops"],
                             "mean_rating": entries[a1]["rating"]}
    vm = totals["vm"]
    assert (vm["requests"], vm["served"], vm["active"], vm["refused"]) == (3, 2, 1, 1)
    assert (vm["duration_s"], vm["cpu_s"], vm["memory_gb_s"], vm["disk_gb_s"]) == (
        150, 2 * 30 + 4 * 120, 4 * 30 + 8 * 120, 10 * 30)
    assert totals["all"]["requests"] == 4 and totals["all"]["cpu_s"] == 100 + 540
    mine = alice.get("/uai/v1/accounting").json
    assert {e["id"] for e in mine["requests"]} == {a1, a2, refused}
    assert mine["totals"]["all"]["requests"] == 3
    assert bob.get("/uai/v1/accounting").json["totals"]["all"]["cpu_s"] == 480
