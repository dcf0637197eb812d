"""Leftover releases (a peer that does not confirm): retried, alarmed after a while, given up
only when the DC is declared gone (removed from ``[ac] agents``)."""
import logging
import sqlite3

import pytest

from ac_app.db import RELEASED, RequestStore
from ac_app.procedure import CLEANUP_INTERVAL
from ac_app.resources import Demand
from ac_harness import REQS, Lab
from sc_harness import state_dir  # noqa: F401 (fixture)

ALARM_AFTER = 60.0


@pytest.fixture
def lab(state_dir):
    the_lab = Lab(state_dir, leftover_alarm_after_s=ALARM_AFTER)
    yield the_lab
    the_lab.close()


def stuck_vm(lab):
    """A released vod request whose VM delete the (dead) agent never confirms; its id."""
    body = lab.user("alice").post(REQS, {"type": "vod", "src": "10.1.0.1",
                                         "content": "movie"}).json
    lab.arae.clients[body["dc"]].fail_delete = True
    gone = lab.user("alice").delete(f"{REQS}/{body['id']}").json
    assert (gone["status"], gone["leftovers"]) == (RELEASED, ["vm"])
    return body


def retry(lab, rounds):
    for _ in range(rounds):
        lab.clock.advance(CLEANUP_INTERVAL)
        lab.procedure.housekeeping()


def test_the_option_defaults_to_five_minutes(state_dir):
    the_lab = Lab(state_dir)
    try:
        assert the_lab.settings.leftover_alarm_after_s == 300.0
        assert the_lab.procedure.leftover_alarm_after_s == 300.0
    finally:
        the_lab.close()


def test_retries_are_counted_and_shown_with_the_request(lab):
    body = stuck_vm(lab)
    retries = lab.user("alice").get(f"{REQS}/{body['id']}").json["leftover_retries"]
    assert retries["attempts"] == 1 and retries["alarm"] is None
    assert retries["since"] is not None and "timed out" in retries["last_error"]
    retry(lab, 2)
    assert lab.user("alice").get(f"{REQS}/{body['id']}").json["leftover_retries"][
        "attempts"] == 3


def test_an_alarm_is_raised_once_after_the_configured_time_and_retries_go_on(lab, caplog):
    body = stuck_vm(lab)
    mgr = lab.user("mgr")
    retry(lab, int(ALARM_AFTER // CLEANUP_INTERVAL) - 1)
    assert mgr.get("/uai/v1/alarms").json["alarms"] == []
    with caplog.at_level(logging.WARNING, logger="ac_app.procedure"):
        retry(lab, 3)
    assert len([r for r in caplog.records if "ALARM leftover" in r.getMessage()]) == 1
    (alarm,) = mgr.get("/uai/v1/alarms").json["alarms"]
    assert (alarm["type"], alarm["request"], alarm["held"], alarm["dc"]) == \
        ("leftover", body["id"], ["vm"], body["dc"])
    assert alarm["attempts"] == int(ALARM_AFTER // CLEANUP_INTERVAL) + 3
    record = lab.user("alice").get(f"{REQS}/{body['id']}").json
    assert record["leftover_retries"]["alarm"] == alarm["raised"]
    # The agent answers again: the VM is deleted and the alarm clears.
    lab.arae.clients[body["dc"]].fail_delete = False
    retry(lab, 1)
    assert mgr.get("/uai/v1/alarms").json["alarms"] == []
    record = lab.user("alice").get(f"{REQS}/{body['id']}").json
    assert (record["leftovers"], record["leftover_retries"]) == ([], None)
    assert lab.arae.vms() == {}


def test_only_provider_managers_see_the_alarms(lab):
    reply = lab.user("alice").get("/uai/v1/alarms")
    assert (reply.status, reply.json["error"]) == (403, "forbidden")


def test_a_dc_removed_from_the_config_is_given_up(lab, caplog):
    first = stuck_vm(lab)
    second = stuck_vm(lab)
    assert first["dc"] == second["dc"]
    # The operator declares the DC gone: its agent leaves [ac] agents (the AC is restarted).
    del lab.arae.clients[first["dc"]]
    with caplog.at_level(logging.WARNING, logger="ac_app.procedure"):
        retry(lab, 1)
    assert f"DC {first['dc']} is no longer configured" in caplog.text
    for body in (first, second):
        record = lab.user("alice").get(f"{REQS}/{body['id']}").json
        assert (record["leftovers"], record["leftover_retries"]) == ([], None)
    assert lab.procedure.recover() == []


def test_a_leftover_on_a_gone_dc_does_not_stop_the_ac_from_starting(lab):
    body = stuck_vm(lab)
    del lab.arae.clients[body["dc"]]
    lab.procedure.db.update(lab.procedure.db.get(1), status="releasing")
    (settled,) = lab.procedure.recover()
    assert (settled.status, settled.leftovers) == (RELEASED, [])


def test_a_leftover_on_a_gone_dc_does_not_hold_up_the_others(lab):
    """Regression: the gone DC's KeyError ended every housekeeping round at that record."""
    db = lab.procedure.db
    for dc in ("dc1", "dc4"):
        record = db.create(owner="alice", type="vm", status=RELEASED, created=lab.clock(),
                           src="10.1.0.1", src_node="0", duration_s=60.0, strategy="GLB",
                           spec={"constraints": {}}, cpu=1.0, dc=dc)
        lab.arae.agents[dc].allocate(record.id, Demand(1, 0, 0))
        db.update(record, vm_id=record.id)
    del lab.arae.clients["dc1"]
    retry(lab, 1)
    assert db.leftovers() == []
    assert lab.arae.vms() == {"dc1": ["req-1"]}  # forgotten there, deleted at dc4


def test_an_older_db_gets_the_new_columns(tmp_path):
    path = str(tmp_path / "ac.db")
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE requests (seq INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT, "
                "type TEXT, status TEXT, created REAL NOT NULL, src TEXT, src_node TEXT, "
                "duration_s REAL NOT NULL, strategy TEXT, spec TEXT, cpu REAL NOT NULL, "
                "memory_gb REAL NOT NULL, disk_gb REAL NOT NULL, stage TEXT, started REAL, "
                "ends_at REAL, ended REAL, dc TEXT, node TEXT, server TEXT, vm_id TEXT, "
                "vm_ip TEXT, lightpath_id TEXT, lightpath TEXT, choice TEXT, stratum TEXT, "
                "reason TEXT, detail TEXT, end_reason TEXT, rating INTEGER)")
    old.execute("INSERT INTO requests (owner, type, status, created, src, src_node, "
                "duration_s, strategy, spec, cpu, memory_gb, disk_gb, vm_id, dc) VALUES "
                "('alice', 'vm', 'released', 1.0, '10.1.0.1', '0', 60, 'GLB', '{}', 1, 1, 1, "
                "'req-1', 'dc1')")
    old.commit()
    old.close()
    store = RequestStore(path)
    try:
        (record,) = store.leftovers()
        assert (record.leftover_since, record.leftover_attempts, record.leftover_alarm) == \
            (None, 0, None)
        assert store.update(record, leftover_attempts=2).leftover_attempts == 2
    finally:
        store.close()
