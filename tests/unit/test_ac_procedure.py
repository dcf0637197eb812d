"""The CSO procedure: every strategy end to end, rollback at each failing step, release, expiry.

The SC is the real one (SA-PCE on NSFNET, fake switches) behind ASI in process; the DC agents
are real `Agent`s behind fake clients that can refuse, be unreachable or lose an answer. After
every failure nothing may stay held: no VM, no lightpath, no wavelength.
"""
import pytest

from ac_app import procedure as proc
from ac_app.db import FAILED, PENDING, REFUSED, RELEASED
from ac_app.procedure import CLEANUP_INTERVAL, UNKNOWN_LIGHTPATH, qoe_rating
from ac_app.resources import Demand
from ac_app.sse import get
from cso.simulation.network import PceNetworkView
from ac_harness import NOTHING, REQS, Lab, lab  # noqa: F401 (fixture)
from sc_harness import state_dir  # noqa: F401 (fixture)

import eventlet  # noqa: E402,I100 - after ac_app, which silences eventlet's notice


def make_lab(state_dir, strategy):
    return Lab(state_dir, strategy)


def vod(src="10.1.0.1", **extra):
    return {"type": "vod", "src": src, "content": "movie", **extra}


def vm(src="10.1.0.1", cpu=2, memory_gb=4, disk_gb=20, **extra):
    return {"type": "vm", "src": src, "cpu": cpu, "memory_gb": memory_gb, "disk_gb": disk_gb,
            **extra}


def served(lab, reply):
    """Check a 201 against what the agents and the SC really hold; the body."""
    assert reply.status == 201, reply.json
    body = reply.json
    assert body["status"] == "active" and body["id"].startswith("req-")
    assert reply.headers["Location"].endswith(f"{REQS}/{body['id']}")
    agent = lab.arae.agents[body["dc"]]
    vm_ = agent.vm(body["id"])
    assert (vm_.ip, vm_.server) == (body["vm_ip"], body["server"])
    assert body["vm_ip"].startswith(f"10.2.{body['node']}.")
    lp = lab.sc.core.service.lightpaths[body["lightpath"]["id"]]
    assert (lp.src, lp.dst, lp.service_type) == (body["src"], body["vm_ip"], body["type"])
    assert lp.owner == "ac" and lp.state == "up"
    assert lp.route[0] == body["src_node"] and lp.route[-1] == body["node"]
    assert body["lightpath"]["wavelength"] == lp.wavelength
    return body


# -- every strategy through the procedure ---------------------------------------------------

@pytest.mark.parametrize("strategy", ["RB", "AB", "NB", "GLB"])
def test_each_strategy_serves_vod_and_vm_and_releases(state_dir, strategy):
    lab = make_lab(state_dir, strategy)
    try:
        alice = lab.user("alice")
        first = served(lab, alice.post(REQS, vod("10.1.13.1")))
        assert first["strategy"] == strategy
        assert first["content_url"] == f"http://{first['vm_ip']}:8080/content/movie"
        second = served(lab, alice.post(REQS, vm("10.1.5.1", cpu=3, memory_gb=6, disk_gb=50)))
        held = lab.arae.agents[second["dc"]].vm(second["id"])
        assert (held.cpu, held.memory_gb, held.disk_gb) == (3, 6, 50)
        assert second["resources"] == {"cpu": 3.0, "memory_gb": 6.0, "disk_gb": 50.0}
        for body in (first, second):
            assert alice.delete(f"{REQS}/{body['id']}").json["status"] == RELEASED
        assert lab.held() == NOTHING
    finally:
        lab.close()


def test_nb_takes_the_dc_of_fewest_hops(state_dir):
    lab = make_lab(state_dir, "NB")
    try:
        # From Houston (5): Atlanta (dc9) and Boulder (dc4) are one hop away; dc4 comes first.
        body = served(lab, lab.user("alice").post(REQS, vod("10.1.5.1")))
        assert (body["dc"], body["lightpath"]["hops"]) == ("dc4", 1)
        body = served(lab, lab.user("alice").post(REQS, vod("10.1.3.1")))
        assert body["lightpath"]["hops"] == 1 and body["dc"] in ("dc1", "dc4")
    finally:
        lab.close()


def test_glb_choice_is_the_formula_on_the_real_network_state(lab):
    # From College Park (13): dc12 is next door but busy, dc7 idle but far, dc9 in between.
    loads = {"dc1": (10, 38), "dc4": (8, 32), "dc7": (1, 3), "dc9": (5, 19), "dc12": (14, 60)}
    for dc, (cpu, memory) in loads.items():
        # One server per DC with room, so that the K = 5 candidates are one per DC.
        first, *others = lab.arae.agents[dc].dc.servers
        lab.arae.agents[dc].allocate("load", Demand(cpu, memory, 0), first.id)
        for server in others:
            lab.arae.agents[dc].allocate(f"full-{server.id}", Demand(16, 64, 0), server.id)
    for src, dst in (("10.1.11.1", "10.2.7.1"), ("10.1.10.1", "10.2.9.1")):
        assert lab.asi.establish(src, dst, "generic")["id"]
    demand, view = lab.service.ua.vod_demand, lab.arae.app_view()
    net = PceNetworkView(lab.sc.core.pce)
    expected = get("GLB", a=0.5, b=0.5, k=5).choose("13", demand, view, net)
    ab, nb = get("AB").choose("13", demand, view, net), get("NB").choose("13", demand, view, net)
    assert (ab.server.dc, nb.server.dc, expected.server.dc) == ("dc7", "dc12", "dc9")
    body = served(lab, lab.user("alice").post(REQS, vod("10.1.13.1")))
    assert (body["server"], body["node"]) == (expected.server.server, expected.node)
    assert body["selection"]["x"] == pytest.approx(expected.details["x"])
    assert body["selection"]["candidates"] == 5
    # One evaluation for the K candidates, then one establish: nothing else asked of the SC.
    assert [(m, p) for m, p, _ in lab.transport.calls][-2:] == [
        ("POST", "/asi/v1/evaluate"), ("POST", "/asi/v1/lightpaths")]


def test_a_dc_at_the_users_node_is_reached_by_a_local_connection(lab):
    body = served(lab, lab.user("alice").post(REQS, vod("10.1.1.1")))
    assert (body["dc"], body["rating"]) == ("dc1", 5)
    assert body["lightpath"]["route"] == ["1"]
    assert (body["lightpath"]["hops"], body["lightpath"]["wavelength"],
            body["lightpath"]["delay_ms"]) == (0, None, 0)
    # Traffic really goes from the user's host to the VM inside the switch.
    assert [(node, port) for node, port, _ in lab.sc.delivered_to("10.1.1.1", body["vm_ip"])] \
        == [("1", 2)]
    lab.user("alice").delete(f"{REQS}/{body['id']}")
    assert lab.held() == NOTHING


def test_constraints_reach_the_sc_and_the_rating(lab):
    body = served(lab, lab.user("alice").post(REQS, vod("10.1.0.1", max_delay_ms=30,
                                                        bandwidth_gbps=10, max_hops=3)))
    lp = lab.sc.core.service.lightpaths[body["lightpath"]["id"]]
    assert lp.constraints == {"bandwidth_gbps": 10, "max_delay_ms": 30, "max_hops": 3}
    assert body["constraints"] == {"bandwidth_gbps": 10, "max_delay_ms": 30, "max_hops": 3}
    assert body["rating"] == qoe_rating(body["lightpath"]["delay_ms"], 30)


def test_a_down_dc_is_never_chosen(lab):
    lab.arae.unavailable.update({"dc1", "dc7"})
    body = served(lab, lab.user("alice").post(REQS, vod("10.1.0.1")))
    assert body["dc"] not in ("dc1", "dc7")


def test_the_new_vm_is_seen_by_the_next_choice(lab):
    lab.arae.polls.clear()
    first = served(lab, lab.user("alice").post(REQS, vm("10.1.0.1", cpu=16, memory_gb=64)))
    assert lab.arae.polls == [first["dc"]]
    second = served(lab, lab.user("alice").post(REQS, vm("10.1.0.1", cpu=16, memory_gb=64)))
    assert second["server"] != first["server"]


def test_concurrent_requests_each_get_their_own_server(lab):
    sources = [f"10.1.{i}.1" for i in (0, 2, 3, 5, 6, 8, 10, 11)]
    pool = eventlet.GreenPool()
    replies = list(pool.imap(lambda src: lab.user("alice").post(
        REQS, vm(src, cpu=16, memory_gb=64, disk_gb=0)), sources))
    bodies = [served(lab, reply) for reply in replies]
    assert len({b["server"] for b in bodies}) == len(sources)
    assert len({b["lightpath"]["id"] for b in bodies}) == len(sources)


# -- refusals and failures roll everything back ---------------------------------------------

def refused(lab, reply, status, error, stratum, reason):
    """Check a refusal or failure: its answer, its record, and that nothing is held."""
    assert reply.status == status, reply.json
    body = reply.json
    assert (body["error"], body["stratum"], body["reason"]) == (error, stratum, reason)
    assert body["id"].startswith("req-") and isinstance(body.get("detail"), str)
    record = lab.user("alice").get(f"{REQS}/{body['id']}").json
    assert record["status"] == (REFUSED if status == 409 else FAILED)
    assert (record["stratum"], record["reason"], record["stage"]) == (stratum, reason, None)
    assert record["ended"] is not None and record["leftovers"] == []
    assert lab.held() == NOTHING
    return body


def test_application_refusal_when_no_server_fits(lab):
    reply = lab.user("alice").post(REQS, vm(cpu=17))
    refused(lab, reply, 409, "refused", "application", "no-server-fits")
    assert all(not client.calls for client in lab.arae.clients.values())


def test_network_refusal_by_the_strategy_names_the_constraint(lab):
    reply = lab.user("alice").post(REQS, vod("10.1.0.1", max_delay_ms=1))
    body = refused(lab, reply, 409, "refused", "network", "delay-exceeded")
    assert "no feasible path" in body["detail"]
    assert all(not client.calls for client in lab.arae.clients.values())


@pytest.mark.parametrize("status, code, answer", [
    (409, "server-full", (409, "refused")),
    (409, "no-address", (409, "refused")),
    (422, "unknown-server", (409, "refused")),
    (500, "alias-failed", (502, "bad-gateway")),
    (401, "unauthorized", (502, "bad-gateway")),
])
def test_agent_refusal_or_error(lab, status, code, answer):
    client = lab.arae.clients["dc1"]
    client.refuse = (status, code)
    reply = lab.user("alice").post(REQS, vod("10.1.0.1"))
    refused(lab, reply, *answer, "application", code)
    assert client.calls[0][0] == "create"


def test_agent_unreachable_then_its_possible_vm_is_settled_when_it_answers(lab):
    client = lab.arae.clients["dc1"]
    client.down = True
    reply = lab.user("alice").post(REQS, vod("10.1.0.1"))
    assert (reply.status, reply.json["error"], reply.json["stratum"], reply.json["reason"]) == (
        503, "unavailable", "application", "agent-unreachable")
    # Whether the agent created the VM before going silent cannot be known: it stays owed.
    path = f"{REQS}/{reply.json['id']}"
    assert lab.user("alice").get(path).json["leftovers"] == ["vm"]
    client.down = False
    lab.procedure.housekeeping()
    assert lab.user("alice").get(path).json["leftovers"] == []
    assert client.calls[-1] == ("delete", reply.json["id"]) and lab.held() == NOTHING


def test_agent_answer_lost_after_creating_the_vm_deletes_it(lab):
    client = lab.arae.clients["dc1"]
    client.lose_create = True
    reply = lab.user("alice").post(REQS, vod("10.1.0.1"))
    body = refused(lab, reply, 503, "unavailable", "application", "agent-unreachable")
    assert client.calls == [("create", body["id"]), ("delete", body["id"])]


def test_sc_refuses_the_lightpath_and_the_vm_is_deleted(state_dir):
    lab = make_lab(state_dir, "AB")  # AB does not consult the network: the SC refuses later
    try:
        reply = lab.user("alice").post(REQS, vod("10.1.13.1", max_hops=1))
        body = refused(lab, reply, 409, "refused", "network", "hops-exceeded")
        assert lab.arae.clients["dc1"].calls == [("create", body["id"]), ("delete", body["id"])]
    finally:
        lab.close()


def test_sc_endpoint_in_use_is_a_network_refusal(state_dir):
    lab = make_lab(state_dir, "AB")
    try:
        # The next VM of dc1 will be 10.2.1.2: another lightpath already carries its traffic.
        existing = lab.asi.establish("10.1.13.1", "10.2.1.2", "generic")
        reply = lab.user("alice").post(REQS, vod("10.1.13.1"))
        assert reply.status == 409
        assert (reply.json["stratum"], reply.json["reason"]) == ("network", "endpoint-in-use")
        assert lab.arae.vms() == {} and [lp["id"] for lp in lab.lightpaths()] == [existing["id"]]
    finally:
        lab.close()


def test_sc_unreachable_when_evaluating(lab):
    lab.transport.down = True
    reply = lab.user("alice").post(REQS, vod("10.1.0.1"))
    refused(lab, reply, 503, "unavailable", "network", "sc-unreachable")
    assert all(not client.calls for client in lab.arae.clients.values())


def test_sc_unreachable_when_establishing_then_the_unknown_lightpath_is_settled(state_dir):
    lab = make_lab(state_dir, "RB")
    try:
        lab.transport.down = True
        reply = lab.user("alice").post(REQS, vod("10.1.0.1"))
        assert reply.status == 503 and reply.json["stratum"] == "network"
        record = lab.user("alice").get(f"{REQS}/{reply.json['id']}").json
        # The VM is gone; whether the SC set the lightpath up cannot be known yet.
        assert lab.arae.vms() == {} and record["leftovers"] == ["lightpath"]
        lab.transport.down = False
        lab.procedure.housekeeping()
        assert lab.user("alice").get(f"{REQS}/{reply.json['id']}").json["leftovers"] == []
        assert lab.held() == NOTHING
    finally:
        lab.close()


def test_sc_answer_lost_after_establishing_the_lightpath_is_found_and_torn_down(lab):
    lab.transport.lose.add(("POST", "/asi/v1/lightpaths"))
    reply = lab.user("alice").post(REQS, vod("10.1.0.1"))
    refused(lab, reply, 503, "unavailable", "network", "sc-unreachable")
    methods = [(m, p) for m, p, _ in lab.transport.calls]
    assert ("GET", "/asi/v1/lightpaths") in methods
    assert methods[-1][0] == "DELETE"


def test_sc_install_failure_is_unavailable(lab):
    lab.sc.transport.absent.add(lab.sc.dpid("1"))
    reply = lab.user("alice").post(REQS, vod("10.1.0.1"))
    refused(lab, reply, 503, "unavailable", "network", "install-failed")


def test_sc_refusing_the_acs_token_is_a_bad_gateway(lab):
    lab.asi.token = "wrong"
    reply = lab.user("alice").post(REQS, vod("10.1.0.1"))
    refused(lab, reply, 502, "bad-gateway", "network", "unauthorized")


def test_a_bug_fails_the_request_with_a_500_and_gives_everything_back(lab, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(proc, "qoe_rating", broken)
    reply = lab.user("alice").post(REQS, vod("10.1.0.1"))
    assert (reply.status, reply.json["error"]) == (500, "internal")
    record = lab.procedure.db.list()[0]
    assert (record.status, record.reason, record.leftovers) == (FAILED, "internal", [])
    assert lab.held() == NOTHING


# -- release, expiry, restart ---------------------------------------------------------------

def test_delete_releases_and_closes_the_accounting(lab):
    alice = lab.user("alice")
    body = served(lab, alice.post(REQS, vod()))
    lab.clock.advance(42)
    gone = alice.delete(f"{REQS}/{body['id']}")
    assert gone.status == 200
    assert (gone.json["status"], gone.json["end_reason"]) == (RELEASED, "deleted")
    assert gone.json["content_url"] is None and gone.json["leftovers"] == []
    assert lab.held() == NOTHING
    entry = alice.get("/uai/v1/accounting").json["requests"][0]
    assert entry["duration_s"] == 42 and entry["end"] is not None
    again = alice.delete(f"{REQS}/{body['id']}")
    assert (again.status, again.json["error"]) == (409, "not-active")
    assert again.json["reason"] == f"request {body['id']} is released"


def test_requests_expire_after_their_duration(lab):
    alice = lab.user("alice")
    short = served(lab, alice.post(REQS, vod(duration_s=60)))
    long = served(lab, alice.post(REQS, vm(duration_s=600)))
    assert lab.procedure.housekeeping() == []
    lab.clock.advance(60)
    assert [r.id for r in lab.procedure.housekeeping()] == [short["id"]]
    assert alice.get(f"{REQS}/{short['id']}").json["end_reason"] == "expired"
    assert alice.get(f"{REQS}/{long['id']}").json["status"] == "active"
    lab.clock.advance(600)
    assert [r.id for r in lab.procedure.housekeeping()] == [long["id"]]
    assert lab.held() == NOTHING
    totals = alice.get("/uai/v1/accounting").json["totals"]
    assert (totals["vod"]["duration_s"], totals["vm"]["duration_s"]) == (60, 660)


def test_an_unconfirmed_release_is_retried_until_the_agent_confirms(lab):
    alice = lab.user("alice")
    body = served(lab, alice.post(REQS, vod()))
    client = lab.arae.clients[body["dc"]]
    client.fail_delete = True
    gone = alice.delete(f"{REQS}/{body['id']}").json
    assert (gone["status"], gone["leftovers"]) == (RELEASED, ["vm"])
    assert lab.lightpaths() == []  # the lightpath went first
    lab.procedure.housekeeping()
    assert lab.arae.vms() == {body["dc"]: [body["id"]]}
    client.fail_delete = False
    lab.clock.advance(CLEANUP_INTERVAL)
    lab.procedure.housekeeping()
    assert alice.get(f"{REQS}/{body['id']}").json["leftovers"] == []
    assert lab.held() == NOTHING


def test_restart_settles_pending_and_releasing_requests(lab):
    alice = lab.user("alice")
    body = served(lab, alice.post(REQS, vod()))
    db = lab.procedure.db
    # As if the AC had stopped in the middle: one request releasing, one still being set up.
    db.update(db.get(1), status="releasing")
    pending = db.create(owner="alice", type="vm", status=PENDING, stage="reserving-server",
                        created=lab.clock(), src="10.1.0.1", src_node="0", duration_s=60.0,
                        strategy="GLB", spec={"constraints": {}}, cpu=1.0, dc="dc4", node="4")
    lab.arae.agents["dc4"].allocate(pending.id, Demand(1, 0, 0))
    db.update(pending, vm_id=pending.id)
    settled = lab.procedure.recover()
    assert [(r.id, r.status) for r in settled] == [(body["id"], RELEASED), (pending.id, FAILED)]
    assert db.get(pending.seq).reason == "ac-restarted"
    assert lab.held() == NOTHING


def test_unknown_lightpath_marker_is_looked_up_by_endpoints(lab):
    body = served(lab, lab.user("alice").post(REQS, vod()))
    db = lab.procedure.db
    record = db.update(db.get(1), lightpath_id=UNKNOWN_LIGHTPATH)
    lab.procedure.give_back(record)
    assert lab.lightpaths() == [] and body["lightpath"]["id"]


# -- rating ---------------------------------------------------------------------------------

@pytest.mark.parametrize("delay, budget, stars", [
    (0.0, None, 5), (5.0, None, 5), (5.5, None, 4), (12.5, None, 3), (15.0, None, 3),
    (20.0, None, 2), (24.9, None, 1), (40.0, None, 1), (2.0, 10.0, 5), (8.0, 10.0, 2),
    (10.0, 10.0, 1), (None, None, None),
])
def test_qoe_rating(delay, budget, stars):
    assert qoe_rating(delay, budget) == stars
