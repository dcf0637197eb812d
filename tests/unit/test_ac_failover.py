"""DC failure: the ARAE reports a DC unavailable; its vm requests move, its vod sessions end.

The SC is the real one on NSFNET behind ASI in process; the DC agents are real `Agent`s behind
fake clients (`ac_harness`). A failed agent answers nothing, so the source VM of a migration is
deleted by housekeeping once the agent is back.
"""
import pytest

from ac_app.db import ACTIVE, FAILED, RELEASED
from ac_app.failover import DC_FAILED, FAILOVER_USER
from ac_app.procedure import CLEANUP_INTERVAL
from ac_harness import NOTHING, REQS, Lab
from sc_harness import state_dir  # noqa: F401 (fixture)

USER = "10.1.5.1"  # u5, Houston


@pytest.fixture
def lab(state_dir):
    the_lab = Lab(state_dir)
    the_lab.service.failover.spawn = lambda func, *args: func(*args)  # run at once
    yield the_lab
    the_lab.close()


def submit(lab, **body):
    reply = lab.user("alice").post(REQS, {"src": USER, **body})
    assert reply.status == 201, reply.json
    return reply.json


def vm_request(lab):
    return submit(lab, type="vm", cpu=2, memory_gb=4, disk_gb=20)


def back_up(lab, dc):
    lab.arae.unavailable.discard(dc)
    lab.arae.clients[dc].down = False


def test_a_failed_dc_s_vm_moves_with_its_address_and_the_old_vm_goes_when_the_agent_is_back(lab):
    before = vm_request(lab)
    lab.arae.fail(before["dc"])
    after = lab.user("alice").get(f"{REQS}/{before['id']}").json
    assert (after["id"], after["vm_ip"], after["status"], after["stage"]) == \
        (before["id"], before["vm_ip"], ACTIVE, None)
    assert after["dc"] != before["dc"]
    (lp,) = lab.sc.core.service.list()
    assert (lp.id, lp.dst, lp.dst_endpoint.node) == (after["lightpath"]["id"], before["vm_ip"],
                                                     after["node"])
    # The failed agent still has the old VM: kept by the migration record, retried.
    (migration,) = [r for r in lab.user("mgr").get(REQS).json["requests"]
                    if r["type"] == "migration"]
    assert migration["owner"] == FAILOVER_USER.name
    assert migration["status"] == RELEASED and migration["leftovers"] == ["vm"]
    assert lab.arae.vms() == {before["dc"]: [before["id"]], after["dc"]: [before["id"]]}
    lab.clock.advance(CLEANUP_INTERVAL + 1)
    lab.procedure.housekeeping()  # agent still down: nothing changes, nothing breaks
    assert lab.arae.vms()[before["dc"]] == [before["id"]]
    back_up(lab, before["dc"])
    lab.clock.advance(CLEANUP_INTERVAL + 1)
    lab.procedure.housekeeping()
    assert lab.arae.vms() == {after["dc"]: [before["id"]]}
    assert lab.user("mgr").get(f"{REQS}/{migration['id']}").json["leftovers"] == []
    assert lab.user("alice").delete(f"{REQS}/{before['id']}").json["status"] == RELEASED
    assert lab.held() == NOTHING


def test_a_vod_session_on_a_failed_dc_is_released_and_its_user_told(lab):
    vod = submit(lab, type="vod", content="movie-1")
    lab.arae.fail(vod["dc"])
    after = lab.user("alice").get(f"{REQS}/{vod['id']}").json
    assert (after["status"], after["reason"]) == (RELEASED, DC_FAILED)
    assert after["end_reason"].startswith(f"{DC_FAILED}: its DC failed ({vod['dc']}")
    assert lab.lightpaths() == [] and after["leftovers"] == ["vm"]
    back_up(lab, vod["dc"])
    lab.clock.advance(CLEANUP_INTERVAL + 1)
    lab.procedure.housekeeping()
    assert lab.held() == NOTHING


def test_a_vm_that_cannot_move_is_released_with_the_reason(lab):
    before = vm_request(lab)
    for dc in lab.arae.agents:
        if dc != before["dc"]:
            lab.arae.unavailable.add(dc)  # nowhere to go
    lab.arae.fail(before["dc"])
    after = lab.user("alice").get(f"{REQS}/{before['id']}").json
    assert (after["status"], after["reason"]) == (RELEASED, DC_FAILED)
    assert "could not be migrated" in after["end_reason"]
    assert lab.lightpaths() == []
    for dc in lab.arae.agents:
        back_up(lab, dc)
    lab.clock.advance(CLEANUP_INTERVAL + 1)
    lab.procedure.housekeeping()
    assert lab.held() == NOTHING
    statuses = {r["type"]: r["status"] for r in lab.user("mgr").get(REQS).json["requests"]}
    assert statuses["migration"] in (FAILED, "refused")


def test_other_dcs_and_a_dc_coming_back_are_left_alone(lab):
    before = vm_request(lab)
    other = next(dc for dc in lab.arae.agents if dc != before["dc"])
    lab.arae.fail(other)
    lab.service.failover.on_change(lab.arae.states()[before["dc"]])  # available: no-op
    after = lab.user("alice").get(f"{REQS}/{before['id']}").json
    assert (after["status"], after["dc"]) == (ACTIVE, before["dc"])
    assert [r["type"] for r in lab.user("mgr").get(REQS).json["requests"]] == ["vm"]


def test_a_dc_already_down_is_handled_by_a_check_of_every_dc(lab):
    before = vm_request(lab)
    # Down without a change reported (e.g. down when the AC started): the listener saw nothing.
    lab.arae.unavailable.add(before["dc"])
    lab.arae.clients[before["dc"]].down = True
    lab.service.failover.check(lab.arae.states())
    after = lab.user("alice").get(f"{REQS}/{before['id']}").json
    assert (after["status"], after["vm_ip"]) == (ACTIVE, before["vm_ip"])
    assert after["dc"] != before["dc"]
