"""The orphan sweep (`ac_app.orphans`): what the SC and the agents hold for the AC but no request
holds is released once two sweeps in a row saw it, never before, never what a request in flight
holds, never what is not traceably the AC's; an unreachable peer only delays it.

The SC is the real one (NSFNET, fake switches) behind ASI in process; the agents are real
`Agent`s behind fake clients that can pause the procedure while they work (`pause` hooks): the
sweep runs right there, twice, and must neither release nor suspect anything.
"""
import logging

from ac_app.config import parse_string
from ac_app.db import FAILED, PENDING, RELEASED, UNKNOWN_LIGHTPATH
from ac_app.orphans import ORPHAN_SWEEP_INTERVAL_S
from ac_app.procedure import CONNECTING, RESERVING
from ac_app.resources import Demand
from ac_harness import REQS, Lab, config_text, lab  # noqa: F401 (fixture)
from sc_harness import state_dir  # noqa: F401 (fixture)

USER = "10.1.5.1"
NO_ORPHANS = {"lightpaths_released": 0, "vms_deleted": 0, "suspects": 0}


def sweep(lab, seconds=ORPHAN_SWEEP_INTERVAL_S):
    """One housekeeping round ``seconds`` later (a sweep when the interval has passed)."""
    lab.clock.advance(seconds)
    lab.procedure.housekeeping()


def figures(lab):
    report = lab.procedure.orphans.report()
    return {key: report[key] for key in NO_ORPHANS}


def settled_at_restart(lab, stage, dc="dc4", **values):
    """A vm request the AC was serving when killed (``stage``), settled by `recover` at the
    restart: failed, with nothing found to give back; its record."""
    db = lab.procedure.db
    server = lab.arae.agents[dc].dc.servers[0].id
    record = db.create(owner="alice", type="vm", status=PENDING, stage=stage,
                       created=lab.clock(), src=USER, src_node="5", duration_s=60.0,
                       strategy="GLB", spec={"constraints": {}}, cpu=2.0, memory_gb=4.0,
                       disk_gb=20.0, dc=dc, node=lab.arae.agents[dc].dc.node, server=server,
                       **values)
    record = db.update(record, vm_id=record.id)
    (settled,) = lab.procedure.recover()
    assert (settled.status, settled.reason, settled.leftovers) == (FAILED, "ac-restarted", [])
    return db.get(record.seq)


def late_vm(lab, record):
    """The agent creates the VM the killed AC had asked for, after the restart settled it."""
    return lab.arae.agents[record.dc].allocate(
        record.id, Demand(record.cpu, record.memory_gb, record.disk_gb), record.server,
        record.vm_ip)


# -- orphans are released on the second sweep, never before ----------------------------------

def test_a_lightpath_the_sc_set_up_after_the_restart_is_torn_down_by_the_second_sweep(
        lab, caplog):
    record = settled_at_restart(lab, CONNECTING, vm_ip="10.2.4.2",
                                lightpath_id=UNKNOWN_LIGHTPATH)
    lp = lab.asi.establish(USER, record.vm_ip, "vm", label=record.id)  # the SC was still at it
    sweep(lab, 0)
    assert figures(lab) == {**NO_ORPHANS, "suspects": 1}
    sweep(lab, ORPHAN_SWEEP_INTERVAL_S - 1)  # not a sweep yet
    assert [p["id"] for p in lab.lightpaths()] == [lp["id"]]
    with caplog.at_level(logging.WARNING, logger="ac_app.orphans"):
        sweep(lab, 1)
    assert lab.held() == ({}, [], 0)
    assert figures(lab) == {**NO_ORPHANS, "lightpaths_released": 1}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"lightpath {lp['id']} ({USER} -> 10.2.4.2)" in warning and "torn down" in warning


def test_a_vm_the_agent_created_after_the_restart_is_deleted_by_the_second_sweep(lab, caplog):
    record = settled_at_restart(lab, RESERVING)
    vm = late_vm(lab, record)
    sweep(lab, 0)
    assert lab.arae.vms() == {"dc4": [record.id]}
    assert figures(lab) == {**NO_ORPHANS, "suspects": 1}
    with caplog.at_level(logging.WARNING, logger="ac_app.orphans"):
        sweep(lab)
    assert lab.arae.vms() == {}
    assert figures(lab) == {**NO_ORPHANS, "vms_deleted": 1}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"VM {record.id} on dc4/{vm.server} ({vm.ip})" in warning and "deleted" in warning
    report = lab.user("mgr").get("/uai/v1/alarms").json["orphans"]
    assert (report["vms_deleted"], report["vms_swept"], report["last_error"]) == (1, True, None)


def test_the_sightings_must_be_consecutive_and_an_unreachable_sc_only_delays(lab):
    record = settled_at_restart(lab, CONNECTING, vm_ip="10.2.4.2",
                                lightpath_id=UNKNOWN_LIGHTPATH)
    lab.asi.establish(USER, record.vm_ip, "vm")
    sweep(lab, 0)
    lab.transport.down = True
    sweep(lab)  # no exception; the SC could not be listed: the first sighting is forgotten
    report = lab.procedure.orphans.report()
    assert report["suspects"] == 0 and "Connection refused" in report["last_error"]
    lab.transport.down = False
    sweep(lab)
    assert len(lab.lightpaths()) == 1 and figures(lab)["suspects"] == 1
    sweep(lab)
    assert lab.lightpaths() == [] and figures(lab)["lightpaths_released"] == 1


def test_an_unreachable_or_garbling_agent_only_delays(lab):
    record = settled_at_restart(lab, RESERVING)
    late_vm(lab, record)
    client = lab.arae.clients["dc4"]
    client.down = True
    sweep(lab, 0)
    sweep(lab)
    assert "dc4" in lab.procedure.orphans.report()["last_error"]
    client.down = False
    client.vms = lambda: {"vms": "nonsense"}
    sweep(lab)
    client.vms = lambda: [{"id": 7}, "x", {"no": "id"}]
    sweep(lab)
    assert lab.arae.vms() == {"dc4": [record.id]} and figures(lab) == NO_ORPHANS
    del client.vms
    sweep(lab)
    sweep(lab)
    assert lab.arae.vms() == {} and figures(lab)["vms_deleted"] == 1


def test_a_release_the_peer_refuses_is_tried_again_next_sweep(lab):
    record = settled_at_restart(lab, RESERVING)
    late_vm(lab, record)
    client = lab.arae.clients["dc4"]
    client.fail_delete = True
    sweep(lab, 0)
    sweep(lab)
    assert lab.arae.vms() == {"dc4": [record.id]} and figures(lab)["suspects"] == 1
    client.fail_delete = False
    sweep(lab)
    assert lab.arae.vms() == {} and figures(lab)["vms_deleted"] == 1


def test_a_bug_in_the_sweep_does_not_stop_housekeeping(lab, monkeypatch, caplog):
    alice = lab.user("alice")
    body = alice.post(REQS, {"type": "vod", "src": USER, "content": "movie",
                             "duration_s": 5}).json

    def broken():
        raise RuntimeError("bug")

    monkeypatch.setattr(lab.procedure.db, "holding", broken)
    with caplog.at_level(logging.ERROR, logger="ac_app.orphans"):
        sweep(lab)
    assert "the orphan sweep failed" in caplog.text
    assert alice.get(f"{REQS}/{body['id']}").json["status"] == RELEASED  # expiry still ran
    assert lab.procedure.orphans.report()["last_error"] == "internal: see the AC log"


# -- in flight: never touched, never even suspected ------------------------------------------

class Pauses:
    """Sweeps, twice, wherever the procedure is paused; checks that nothing was touched."""

    def __init__(self, lab):
        self.lab = lab
        self.seen = []

    def __call__(self, where):
        def at(*_args):
            before = self.lab.held()
            for _ in range(2):
                assert self.lab.procedure.orphans.sweep() == []
            assert self.lab.held() == before, where
            assert figures(self.lab) == NO_ORPHANS, where
            self.seen.append((where, before))
        return at

    def on_agents(self, what):
        for dc, client in self.lab.arae.clients.items():
            client.pause[what] = self(f"{dc} {what}")

    def on_sc(self, method, path):
        self.lab.transport.pause[(method, path)] = self(f"SC {method} {path}")


def test_a_request_is_never_touched_at_any_stage(lab):
    pauses = Pauses(lab)
    pauses.on_sc("POST", "/asi/v1/evaluate")            # selecting: nothing made yet
    pauses.on_agents("create")                          # reserving: the VM made, no answer
    pauses.on_sc("POST", "/asi/v1/lightpaths")          # connecting: the lightpath up, no answer
    body = lab.user("alice").post(REQS, {"type": "vm", "src": USER, "cpu": 2, "memory_gb": 4,
                                         "disk_gb": 20}).json
    assert body["status"] == "active"
    assert [where for where, _ in pauses.seen] == [
        "SC POST /asi/v1/evaluate", f"{body['dc']} create", "SC POST /asi/v1/lightpaths"]
    vms, lightpaths, _ = pauses.seen[-1][1]
    assert vms == {body["dc"]: [body["id"]]} and len(lightpaths) == 1  # both were there to see
    pauses.on_sc("DELETE", "/asi/v1/lightpaths/")      # releasing: the lightpath going
    pauses.on_agents("delete")                          # releasing: the VM going
    assert lab.user("alice").delete(f"{REQS}/{body['id']}").json["status"] == RELEASED
    assert len(pauses.seen) == 5 and lab.held() == ({}, [], 0)


def test_a_migration_is_never_touched_at_any_step(lab):
    body = lab.user("alice").post(REQS, {"type": "vm", "src": USER, "cpu": 2, "memory_gb": 4,
                                         "disk_gb": 20}).json
    pauses = Pauses(lab)
    for dc, client in lab.arae.clients.items():
        if dc != body["dc"]:
            client.pause["create"] = pauses(f"{dc} create")  # both VMs, the old lightpath
    pauses.on_sc("DELETE", "/asi/v1/lightpaths/")      # the old lightpath gone
    pauses.on_sc("POST", "/asi/v1/lightpaths")          # the new one up, no answer yet
    lab.arae.clients[body["dc"]].pause["delete"] = pauses("source delete")  # the old VM going
    reply = lab.user("mgr").post(REQS, {"type": "migration", "request": body["id"]})
    assert reply.status == 201, reply.json
    moved = lab.user("alice").get(f"{REQS}/{body['id']}").json
    assert moved["status"] == "active" and moved["dc"] != body["dc"]
    assert len(pauses.seen) == 4
    # While the source VM was being deleted, no (dc, vm_id) named it: the moved request did.
    vms, _, _ = pauses.seen[-1][1]
    assert vms == {body["dc"]: [body["id"]], moved["dc"]: [body["id"]]}


def test_a_request_settled_by_a_restart_mid_migration_leaves_no_orphan(lab):
    """The destination VM the agent made after the restart settled the migration goes too."""
    body = lab.user("alice").post(REQS, {"type": "vm", "src": USER, "cpu": 2, "memory_gb": 4,
                                         "disk_gb": 20}).json
    db = lab.procedure.db
    target = db.update(db.get(1), status=PENDING, stage="migrating")
    dst = next(dc for dc in lab.arae.agents if dc != body["dc"])
    migration = db.create(owner="mgr", type="migration", status=PENDING, stage=RESERVING,
                          created=lab.clock(), src=USER, src_node="5", duration_s=0.0,
                          strategy="GLB", cpu=2.0, memory_gb=4.0, disk_gb=20.0,
                          vm_ip=body["vm_ip"], dc=dst, vm_id=body["id"],
                          spec={"request": body["id"], "from_dc": body["dc"], "to_dc": None,
                                "dst_dc": None})
    lab.procedure.recover()
    assert db.get(migration.seq).status == FAILED and db.get(target.seq).status == FAILED
    lab.arae.agents[dst].allocate(body["id"], Demand(2, 4, 20), ip=body["vm_ip"])
    sweep(lab, 0)
    sweep(lab)
    assert lab.held() == ({}, [], 0) and figures(lab)["vms_deleted"] == 1


def test_an_orphan_gone_or_claimed_by_the_second_sweep_is_not_counted(lab, monkeypatch):
    record = settled_at_restart(lab, RESERVING)
    late_vm(lab, record)
    orphans = lab.procedure.orphans
    assert orphans.sweep() == []
    # Between the listing and the release, someone else deletes it: nothing to count.
    lab.arae.clients["dc4"].pause["delete"] = lambda vm_id: lab.arae.agents["dc4"].release(vm_id)
    assert orphans.sweep() == [] and figures(lab) == NO_ORPHANS
    # Claimed after the store was read, just before the release: re-checked, left alone.
    late_vm(lab, record)
    assert orphans.sweep() == []
    classify = orphans._vm_orphans

    def then_claimed(*args):
        found = classify(*args)
        lab.procedure.db.update(record, vm_id=record.id)
        return found

    monkeypatch.setattr(orphans, "_vm_orphans", then_claimed)
    assert orphans.sweep() == [] and lab.arae.vms() == {"dc4": [record.id]}
    assert figures(lab) == NO_ORPHANS


def test_leftovers_are_the_retries_business_not_the_sweeps(lab):
    body = lab.user("alice").post(REQS, {"type": "vod", "src": USER, "content": "movie"}).json
    lab.arae.clients[body["dc"]].fail_delete = True
    lab.user("alice").delete(f"{REQS}/{body['id']}")
    for _ in range(3):
        sweep(lab)
    assert figures(lab) == NO_ORPHANS and lab.arae.vms() == {body["dc"]: [body["id"]]}


# -- only what is traceably this AC's --------------------------------------------------------

def test_what_is_not_traceably_the_acs_is_left_alone(lab, caplog):
    first = lab.user("alice").post(REQS, {"type": "vm", "src": USER, "cpu": 2, "memory_gb": 4,
                                          "disk_gb": 20}).json
    lab.user("alice").delete(f"{REQS}/{first['id']}")
    # Another client with the AC's token (as `cso bench load`'s ASI clients): not a request's.
    other_lp = lab.asi.establish("10.1.3.200", "10.2.7.1", "vod")
    # Another AC's VMs on a shared agent: a name this AC never gave, the name of one of its
    # requests with other resources, with another address, and at a DC it never was at.
    others = {"dc1": ("x-1", None, Demand(1, 1, 1)), "dc7": ("req-9", None, Demand(2, 4, 20)),
              "dc9": (first["id"], None, Demand(1, 1, 1)),
              first["dc"]: (first["id"], "10.2.99.7", Demand(2, 4, 20))}
    never = next(dc for dc in ("dc12", "dc4") if dc != first["dc"])
    others[never] = (first["id"], first["vm_ip"], Demand(2, 4, 20))
    for dc, (name, ip, demand) in others.items():
        lab.arae.agents[dc].allocate(name, demand, ip=ip)
    before = lab.held()
    with caplog.at_level(logging.INFO, logger="ac_app.orphans"):
        for _ in range(3):
            sweep(lab)
    assert lab.held() == before and figures(lab) == NO_ORPHANS
    left = [r.getMessage() for r in caplog.records if "left alone" in r.getMessage()]
    assert len(left) == len(others) + 1  # once each, not every sweep
    assert any(other_lp["id"] in line for line in left)


def test_the_vm_sweep_can_be_turned_off_and_the_whole_sweep_too(state_dir):
    lab = Lab(state_dir, orphan_sweep_vms="false")
    try:
        vm_record = settled_at_restart(lab, RESERVING)
        late_vm(lab, vm_record)
        lp_record = settled_at_restart(lab, CONNECTING, dc="dc9", vm_ip="10.2.9.2",
                                       lightpath_id=UNKNOWN_LIGHTPATH)
        lab.asi.establish(USER, lp_record.vm_ip, "vm")
        sweep(lab, 0)
        sweep(lab)
        assert lab.lightpaths() == [] and lab.arae.vms() == {"dc4": [vm_record.id]}
        assert all(client.lists == 0 for client in lab.arae.clients.values())
        assert lab.procedure.orphans.report()["vms_swept"] is False
        lab.procedure.orphans.interval_s = 0
        lab.asi.establish(USER, lp_record.vm_ip, "vm")
        for _ in range(3):
            sweep(lab)
        assert len(lab.lightpaths()) == 1
    finally:
        lab.close()


def test_the_options_and_their_defaults():
    settings = parse_string(config_text())
    assert (settings.orphan_sweep_interval_s, settings.orphan_sweep_vms) == (10.0, True)
    settings = parse_string(config_text(orphan_sweep_interval_s=0, orphan_sweep_vms="no"))
    assert (settings.orphan_sweep_interval_s, settings.orphan_sweep_vms) == (0.0, False)


def test_only_managers_see_the_sweep(lab):
    assert lab.user("alice").get("/uai/v1/alarms").status == 403
    report = lab.user("mgr").get("/uai/v1/alarms").json["orphans"]
    assert report == {"interval_s": 10.0, "vms_swept": True, "last_sweep": None,
                      "lightpaths_released": 0, "vms_deleted": 0, "suspects": 0,
                      "last_error": None}
