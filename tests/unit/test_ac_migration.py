"""VM migration through the procedure: a manager moves an active vm request to another DC.

The SC is the real one (SA-PCE on NSFNET, fake switches) behind ASI in process; the DC agents
are real `Agent`s behind fake clients. After a migration the user's traffic to the same address
reaches the destination DC's host (eth_dst rewritten); after a failure the request is back at
its old placement, or failed with nothing held.
"""
from ac_app.asi_client import AsiError
from ac_app.db import ACTIVE, FAILED, REFUSED, RELEASED
from ac_app.procedure import CLEANUP_INTERVAL
from ac_harness import NOTHING, REQS, lab  # noqa: F401 (fixture)
from fake_of13 import ipv4
from sc_app.lightpath import host_mac
from sc_harness import state_dir  # noqa: F401 (fixture)

USER = "10.1.5.1"  # u5, Houston


def vm_request(lab):
    reply = lab.user("alice").post(REQS, {"type": "vm", "src": USER, "cpu": 2, "memory_gb": 4,
                                          "disk_gb": 20})
    assert reply.status == 201, reply.json
    return reply.json


def migrate(lab, request_id, **extra):
    return lab.user("mgr").post(REQS, {"type": "migration", "request": request_id, **extra})


def delivered(lab, vm_ip, home_dc_node):
    """(node, port, eth_dst) where u5's packet to ``vm_ip``, sent to dc<i>'s MAC, leaves."""
    sent = ipv4(USER, vm_ip, eth_dst=host_mac(f"10.2.{home_dc_node}.1"))
    by_dpid = {n.dpid: n.id for n in lab.sc.topology.nodes.values()}
    return [(by_dpid[dpid], port, pkt.eth_dst)
            for dpid, port, pkt in lab.sc.forward(USER, vm_ip, sent).delivered]


def only_lightpath(lab):
    (lp,) = lab.sc.core.service.list()
    return lp


def test_a_vm_moves_to_another_dc_and_keeps_its_id_and_address(lab):
    before = vm_request(lab)
    home = before["vm_ip"].split(".")[2]
    assert delivered(lab, before["vm_ip"], home) == [(home, 2, host_mac(f"10.2.{home}.1"))]
    reply = migrate(lab, before["id"])
    assert reply.status == 201, reply.json
    record = reply.json
    after = lab.user("alice").get(f"{REQS}/{before['id']}").json
    # The request: same id and address, another DC, server and lightpath; active again.
    assert (after["id"], after["vm_ip"], after["status"], after["stage"]) == \
        (before["id"], before["vm_ip"], ACTIVE, None)
    assert after["dc"] != before["dc"] and after["node"] != before["node"]
    assert after["lightpath"]["id"] != before["lightpath"]["id"]
    assert after["lightpath"]["route"][-1] == after["node"]
    # The agents: the VM only at the destination, with the same address.
    assert lab.arae.vms() == {after["dc"]: [before["id"]]}
    assert lab.arae.agents[after["dc"]].vm(before["id"]).ip == before["vm_ip"]
    assert before["vm_ip"] not in lab.arae.agents[before["dc"]].aliases.addresses()
    # The SC: one lightpath, to the address attached at the destination node.
    lp = only_lightpath(lab)
    assert (lp.id, lp.dst, lp.dst_endpoint.node) == (after["lightpath"]["id"],
                                                     before["vm_ip"], after["node"])
    # The data plane: frames for dc<home>'s MAC reach the destination host with its MAC.
    assert delivered(lab, before["vm_ip"], home) == \
        [(after["node"], 2, host_mac(f"10.2.{after['node']}.1"))]
    # The migration's own record: who, what, from where to where; released, holds nothing.
    assert (record["type"], record["owner"], record["status"]) == ("migration", "mgr", RELEASED)
    assert record["migration"] == {"request": before["id"], "from_dc": before["dc"],
                                   "to_dc": after["dc"]}
    assert (record["dc"], record["vm_ip"], record["leftovers"]) == \
        (after["dc"], before["vm_ip"], [])
    accounting = lab.user("mgr").get("/uai/v1/accounting").json
    (entry,) = [e for e in accounting["requests"] if e["type"] == "migration"]
    assert entry["migration"] == record["migration"]
    assert accounting["totals"]["migration"]["served"] == 1
    # The user cannot see the manager's migration record; releasing the VM frees everything.
    assert lab.user("alice").get(f"{REQS}/{record['id']}").status == 404
    assert lab.user("alice").delete(f"{REQS}/{before['id']}").json["status"] == RELEASED
    assert lab.held() == NOTHING


def test_the_dc_asked_for_is_taken_and_a_vm_can_move_twice(lab):
    before = vm_request(lab)
    first_dst = next(dc for dc in ("dc9", "dc12") if dc != before["dc"])
    assert migrate(lab, before["id"], dst_dc=first_dst).status == 201
    assert lab.arae.vms() == {first_dst: [before["id"]]}
    # Back home: the address is at its own node again, no MAC rewrite needed.
    reply = migrate(lab, before["id"], dst_dc=before["dc"])
    assert reply.status == 201, reply.json
    assert lab.arae.vms() == {before["dc"]: [before["id"]]}
    lp = only_lightpath(lab)
    assert lp.dst_endpoint.node == before["node"]
    assert lp.dst_endpoint.attachments[0].mac is None
    home = before["node"]
    assert delivered(lab, before["vm_ip"], home) == [(home, 2, host_mac(f"10.2.{home}.1"))]


def check_rolled_back(lab, before, reply, status, stratum):
    assert reply.status == status, reply.json
    assert (reply.json["stratum"], reply.json["request"], reply.json["rolled_back"]) == \
        (stratum, before["id"], True)
    record = lab.user("mgr").get(f"{REQS}/{reply.json['id']}").json
    assert record["type"] == "migration" and record["status"] in (REFUSED, FAILED)
    assert record["leftovers"] == []
    after = lab.user("alice").get(f"{REQS}/{before['id']}").json
    assert (after["status"], after["dc"], after["server"], after["vm_ip"]) == \
        (ACTIVE, before["dc"], before["server"], before["vm_ip"])
    assert lab.arae.vms() == {before["dc"]: [before["id"]]}
    lp = only_lightpath(lab)
    assert (lp.dst, lp.dst_endpoint.node, lp.state) == (before["vm_ip"], before["node"], "up")
    assert after["lightpath"]["id"] == lp.id
    home = before["node"]
    assert delivered(lab, before["vm_ip"], home) == [(home, 2, host_mac(f"10.2.{home}.1"))]


def other_dc(before):
    return next(dc for dc in ("dc9", "dc12") if dc != before["dc"])


def test_a_destination_agent_that_refuses_leaves_the_vm_where_it_was(lab):
    before = vm_request(lab)
    dst = other_dc(before)
    lab.arae.clients[dst].refuse = (409, "no-room")
    reply = migrate(lab, before["id"], dst_dc=dst)
    check_rolled_back(lab, before, reply, 409, "application")
    assert reply.json["reason"] == "no-room"
    # Refused before the old lightpath was touched: it is the very same one.
    assert only_lightpath(lab).id == before["lightpath"]["id"]


def test_a_lost_create_answer_is_cleaned_up_at_the_destination(lab):
    before = vm_request(lab)
    dst = other_dc(before)
    lab.arae.clients[dst].lose_create = True
    check_rolled_back(lab, before, migrate(lab, before["id"], dst_dc=dst), 503, "application")
    assert lab.arae.clients[dst].calls[-1] == ("delete", before["id"])


def test_no_strategy_choice_and_no_room_anywhere_else_is_refused(lab):
    before = vm_request(lab)
    for dc in lab.arae.agents:
        if dc != before["dc"]:
            lab.arae.unavailable.add(dc)
    reply = migrate(lab, before["id"])
    check_rolled_back(lab, before, reply, 409, "application")
    assert only_lightpath(lab).id == before["lightpath"]["id"]


def refuse_moved_lightpaths(lab, monkeypatch, also_home=False):
    """The SC refuses a lightpath to a moved VM (and, with ``also_home``, any lightpath)."""
    real = lab.asi.establish

    def establish(src, dst, service_type, label=None, constraints=None, dst_node=None):
        if also_home or dst_node != dst.split(".")[2]:
            raise AsiError(409, "no-path", "wavelength", "no wavelength free (test)")
        return real(src, dst, service_type, label=label, constraints=constraints,
                    dst_node=dst_node)

    monkeypatch.setattr(lab.asi, "establish", establish)


def test_a_refused_new_lightpath_rolls_back_to_the_old_placement(lab, monkeypatch):
    before = vm_request(lab)
    refuse_moved_lightpaths(lab, monkeypatch)
    reply = migrate(lab, before["id"], dst_dc=other_dc(before))
    check_rolled_back(lab, before, reply, 409, "network")
    assert reply.json["reason"] == "wavelength"
    assert only_lightpath(lab).id != before["lightpath"]["id"]  # re-established


def test_a_lost_lightpath_answer_is_torn_down_before_rolling_back(lab):
    before = vm_request(lab)
    lab.transport.lose.add(("POST", "/asi/v1/lightpaths"))
    calls = []
    real = lab.asi.establish

    def establish_once_lost(*args, **kwargs):
        calls.append(kwargs.get("dst_node"))
        if len(calls) > 1:
            lab.transport.lose.clear()
        return real(*args, **kwargs)

    lab.asi.establish = establish_once_lost
    reply = migrate(lab, before["id"], dst_dc=other_dc(before))
    check_rolled_back(lab, before, reply, 503, "network")
    assert len(calls) == 2 and calls[1] == before["node"]


def test_when_the_rollback_fails_too_the_request_is_failed_and_holds_nothing(lab, monkeypatch):
    before = vm_request(lab)
    refuse_moved_lightpaths(lab, monkeypatch, also_home=True)
    reply = migrate(lab, before["id"], dst_dc=other_dc(before))
    assert reply.status == 409 and reply.json["rolled_back"] is False, reply.json
    after = lab.user("alice").get(f"{REQS}/{before['id']}").json
    assert (after["status"], after["reason"]) == (FAILED, "migration-failed")
    assert "could not be restored" in after["detail"] and after["leftovers"] == []
    assert lab.held() == NOTHING


def test_an_unconfirmed_delete_at_the_source_is_retried_by_housekeeping(lab):
    before = vm_request(lab)
    lab.arae.clients[before["dc"]].fail_delete = True
    reply = migrate(lab, before["id"], dst_dc=other_dc(before))
    assert reply.status == 201, reply.json
    assert reply.json["leftovers"] == ["vm"] and reply.json["dc"] == before["dc"]
    assert lab.user("alice").get(f"{REQS}/{before['id']}").json["status"] == ACTIVE
    lab.arae.clients[before["dc"]].fail_delete = False
    lab.clock.advance(CLEANUP_INTERVAL + 1)
    lab.procedure.housekeeping()
    assert lab.arae.vms() == {other_dc(before): [before["id"]]}
    assert lab.user("mgr").get(f"{REQS}/{reply.json['id']}").json["leftovers"] == []


def test_a_request_being_moved_cannot_be_released_meanwhile(lab):
    before = vm_request(lab)
    dst = other_dc(before)
    client = lab.arae.clients[dst]
    real = client.create_vm
    seen = []

    def create_and_try_a_delete(*args, **kwargs):
        seen.append(lab.user("alice").delete(f"{REQS}/{before['id']}"))
        seen.append(lab.user("alice").get(f"{REQS}/{before['id']}").json)
        return real(*args, **kwargs)

    client.create_vm = create_and_try_a_delete
    assert migrate(lab, before["id"], dst_dc=dst).status == 201
    assert (seen[0].status, seen[0].json["error"]) == (409, "not-active")
    assert (seen[1]["status"], seen[1]["stage"]) == ("pending", "migrating")
    assert lab.arae.vms() == {dst: [before["id"]]}
