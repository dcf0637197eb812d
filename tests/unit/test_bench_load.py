"""``cso bench load`` and `cso.emulation.invariants` without root: each invariant catches its case.

The snapshot is built with the AC's own JSON code (`ac_app.uai.request_json`,
`ac_app.db.accounting_entry` / `accounting_totals`), so it is what UAI would answer.
"""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ac_app.db import Record, accounting_entry, accounting_totals
from ac_app.uai import request_json
from cso.emulation import invariants
from cso.bench import load as bench_load
from cso.bench.cli import benchmarks, main, parser
from cso.emulation.invariants import DELETED, HELD, REFUSED, UNSURE, Ledger, Snapshot
from cso_base.http import Answer

NOW = 1_700_000_100.0
LP1, LP9, LP5 = "0x4c50000000000001", "0x4c50000000000009", "0x4c50000000000005"


def record(seq: int, status: str, **values: Any) -> Record:
    base = dict(seq=seq, owner="alice", type="vm", status=status, created=NOW - 100,
                src="10.1.0.1", src_node="0", duration_s=60.0, strategy="GLB",
                spec={"constraints": {}}, cpu=2.0, memory_gb=4.0, disk_gb=20.0)
    return Record(**{**base, **values})


def lightpath(lp_id: str, cookie: str, link: str, wavelength: int, src: str,
              dst: str) -> dict[str, Any]:
    return {"id": lp_id, "cookie": cookie, "links": [link], "wavelength": wavelength,
            "src": src, "dst": dst, "owner": "demo-ac", "protection": None}


def flow(cookie: str) -> str:
    return f"cookie={cookie}, duration=1.2s, table=0, n_packets=0, priority=30000,dl_vlan=1000"


@pytest.fixture
def snap() -> Snapshot:
    """A consistent system: req-1 active (VM on dc1, lp-1), req-2 deleted, req-3 refused;
    the ASI clients hold lp-9 (demo-ac) and lp-5 (other-ac)."""
    records = [
        record(1, "active", started=NOW - 50, ends_at=NOW + 10, dc="dc1", node="1",
               server="dc1-s0", vm_id="req-1", vm_ip="10.2.1.2", lightpath_id="lp-1",
               lightpath={"id": "lp-1", "hops": 1, "wavelength": 0}, rating=5),
        record(2, "released", type="vod", started=NOW - 90, ended=NOW - 80, dc="dc4",
               vm_ip="10.2.4.2", lightpath={"id": "lp-2", "hops": 3, "wavelength": 2},
               end_reason="deleted", rating=3, cpu=1.0, memory_gb=1.0, disk_gb=1.0),
        record(3, "refused", ended=NOW - 70, stratum="network", reason="no-wavelength")]
    return Snapshot(
        requests=[request_json(r) for r in records],
        accounting={"requests": [accounting_entry(r, NOW) for r in records],
                    "totals": accounting_totals(records, NOW)},
        asi={"demo-ac": [{"id": "lp-1"}, {"id": "lp-9"}], "other-ac": [{"id": "lp-5"}]},
        lightpaths=[lightpath("lp-1", LP1, "0-1", 0, "10.1.0.1", "10.2.1.2"),
                    lightpath("lp-9", LP9, "0-1", 1, "10.1.0.201", "10.2.1.1"),
                    lightpath("lp-5", LP5, "1-2", 0, "10.1.2.202", "10.2.1.1")],
        links=[{"id": "0-1", "owners": {"0": "lp-1", "1": "lp-9"}, "used": [0, 1]},
               {"id": "1-2", "owners": {"0": "lp-5"}, "used": [0]}],
        agents={"dc1": {"servers": [
            {"id": "dc1-s0", "used": {"cpu": 2.0, "memory_gb": 4.0, "disk_gb": 20.0},
             "vms": ["req-1"]},
            {"id": "dc1-s1", "used": {"cpu": 0.0, "memory_gb": 0.0, "disk_gb": 0.0},
             "vms": []}],
            "vms": [{"id": "req-1", "server": "dc1-s0", "ip": "10.2.1.2", "cpu": 2.0,
                     "memory_gb": 4.0, "disk_gb": 20.0}]}},
        flows={"s0": [flow(LP1), flow(LP9), flow("0x4241000000000000")],
               "s1": [flow(LP1), flow(LP9), flow(LP5)], "s2": [flow(LP5)]})


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(uai={"req-1": HELD, "req-2": DELETED, "req-3": REFUSED},
                  asi_held={"demo-ac": {"lp-9"}, "other-ac": {"lp-5"}})


def test_a_consistent_system_violates_nothing(snap, ledger):
    assert invariants.check(snap, ledger) == []


def problems(snap: Snapshot, ledger: Ledger, needle: str) -> list[str]:
    found = invariants.check(snap, ledger)
    assert any(needle in p for p in found), found
    return found


def test_a_lost_request_is_found(snap, ledger):
    ledger.uai["req-7"] = HELD
    problems(snap, ledger, "req-7 (held by its client) is lost")


def test_a_duplicated_request_is_found(snap, ledger):
    snap.requests.append(copy.deepcopy(snap.requests[1]))
    problems(snap, ledger, "req-2 listed 2 times")


@pytest.mark.parametrize("known, needle", [(HELD, "never deleted it"),
                                           (REFUSED, "is released but its client saw it")])
def test_a_status_the_client_did_not_see_is_found(snap, ledger, known, needle):
    ledger.uai["req-2"] = known
    problems(snap, ledger, needle)


@pytest.mark.parametrize("end", ["expired", "released after an AC restart"])
def test_a_request_never_deleted_may_have_expired(snap, ledger, end):
    ledger.uai["req-2"] = HELD
    snap.requests[1]["end_reason"] = end
    assert invariants.check(snap, ledger) == []


def test_unsure_requests_may_end_any_settled_way(snap, ledger):
    ledger.uai = {rid: UNSURE for rid in ledger.uai}
    assert invariants.check(snap, ledger) == []


def test_a_request_left_in_flight_or_holding_leftovers_is_found(snap, ledger):
    snap.requests[0]["status"], snap.requests[0]["stage"] = "pending", "connecting"
    snap.requests[2]["leftovers"] = ["vm"]
    found = invariants.check(snap, ledger)
    assert "request req-1 still pending (connecting)" in found
    assert "request req-3 still holds ['vm']" in found


def test_requests_nobody_heard_of_are_allowed_only_for_unanswered_posts(snap, ledger):
    del ledger.uai["req-3"]
    problems(snap, ledger, "1 requests no client heard of (req-3)")
    ledger.unanswered_posts = 1
    assert invariants.check(snap, ledger) == []
    ledger.unanswered_posts, ledger.before = 0, {"req-3"}
    assert invariants.check(snap, ledger) == []


def test_a_lightpath_nobody_holds_or_a_missing_one_is_found(snap, ledger):
    ledger.asi_held["demo-ac"] = set()
    problems(snap, ledger, "SC lightpaths of demo-ac: not held by anyone: ['lp-9']")
    ledger.asi_held["demo-ac"] = {"lp-9", "lp-10"}
    problems(snap, ledger, "SC lightpaths of demo-ac: missing: ['lp-10']")


def test_smi_must_list_the_union_of_the_acs_lightpaths(snap, ledger):
    snap.lightpaths.pop()
    problems(snap, ledger, "SMI lightpaths: missing: ['lp-5']")


def test_a_lightpath_to_the_wrong_vm_is_found(snap, ledger):
    snap.lightpaths[0]["dst"] = "10.2.1.3"
    problems(snap, ledger, "lightpath lp-1 joins 10.1.0.1 -> 10.2.1.3")


def test_a_wavelength_held_twice_is_found(snap, ledger):
    snap.lightpaths[2]["links"] = ["0-1", "1-2"]
    snap.lightpaths[2]["wavelength"] = 1
    problems(snap, ledger, "λ1 on 0-1 held by ['lp-9', 'lp-5']")


def test_occupancy_that_is_not_the_lightpaths_hops_is_found(snap, ledger):
    snap.links[1]["owners"], snap.links[1]["used"] = {}, []
    problems(snap, ledger, "fibre 1-2: owners {}, lightpaths say {0: 'lp-5'}")
    snap.links[1]["owners"], snap.links[1]["used"] = {"0": "lp-5"}, [0, 3]
    problems(snap, ledger, "fibre 1-2: used [0, 3] but owners [0]")


def test_protection_backups_hold_wavelengths_too(snap, ledger):
    snap.lightpaths[2]["protection"] = {"links": ["0-1"], "wavelength": 4}
    problems(snap, ledger, "fibre 0-1: owners")
    snap.links[0]["owners"]["4"] = "lp-5"
    snap.links[0]["used"].append(4)
    assert invariants.check(snap, ledger) == []


def test_a_flow_entry_of_no_lightpath_and_a_lightpath_without_entries_are_found(snap, ledger):
    snap.flows["s1"].pop()
    snap.flows["s2"] = [flow("0x4c50000000000063")]
    found = problems(snap, ledger, "switch s2: entries of no lightpath, cookies "
                                   "['0x4c50000000000063']")
    assert "lightpath lp-5 (0x4c50000000000005) has no flow entry" in found


def test_vms_must_be_the_active_requests(snap, ledger):
    snap.agents["dc1"]["vms"].append({"id": "req-2", "server": "dc1-s1", "ip": "10.2.1.3",
                                      "cpu": 1.0, "memory_gb": 1.0, "disk_gb": 1.0})
    problems(snap, ledger, "VMs no active request holds: [('dc1', 'req-2')]")
    snap.agents["dc1"]["vms"] = []
    problems(snap, ledger, "active requests without their VM: [('dc1', 'req-1')]")


def test_a_vm_at_another_address_is_found(snap, ledger):
    snap.agents["dc1"]["vms"][0]["ip"] = "10.2.1.9"
    problems(snap, ledger, "at 10.2.1.9, its request says 10.2.1.2")


def test_used_capacity_must_be_the_sum_of_the_vms(snap, ledger):
    snap.agents["dc1"]["servers"][0]["used"]["cpu"] = 3.0
    problems(snap, ledger, "dc1/dc1-s0: cpu used 3.0, its VMs hold 2.0")
    snap.agents["dc1"]["servers"][0]["used"]["cpu"] = 2.0
    snap.agents["dc1"]["servers"][1]["vms"] = ["req-1"]
    problems(snap, ledger, "dc1/dc1-s1: lists VMs ['req-1'], holds []")


@pytest.mark.parametrize("kind, key", [("vm", "cpu_s"), ("all", "requests"),
                                       ("vod", "wavelength_link_s"), ("all", "mean_rating"),
                                       ("vm", "active")])
def test_accounting_totals_must_be_the_sums_of_the_entries(snap, ledger, kind, key):
    snap.accounting["totals"][kind][key] += 1
    problems(snap, ledger, f"accounting {kind}: {key}")


def test_accounting_entries_must_be_the_requests(snap, ledger):
    snap.accounting["requests"][0]["status"] = "released"
    problems(snap, ledger, "accounting entries are not the requests")


def test_check_released_lists_everything_still_held(snap):
    found = invariants.check_released(snap)
    assert "active request req-1" in found and "lightpath lp-9 (demo-ac)" in found
    assert "fibre 0-1 holds λ[0, 1]" in found and "dc1: VM req-1" in found
    assert "switch s1: 3 lightpath cookies" in found
    empty = Snapshot(snap.requests[1:], snap.accounting, {}, [], [], {"dc1": {
        "servers": [{"id": "dc1-s0", "used": {"cpu": 0, "memory_gb": 0, "disk_gb": 0},
                     "vms": []}], "vms": []}}, {"s0": [flow("0x4241000000000000")]})
    assert invariants.check_released(empty) == []


def test_settle_retries_until_nothing_is_violated(snap, ledger):
    broken = copy.deepcopy(snap)
    broken.agents["dc1"]["vms"] = []
    reads = iter([broken, broken, snap])
    found, last = invariants.settle(lambda: next(reads), ledger, timeout=5, step=0)
    assert found == [] and last is snap
    found, last = invariants.settle(lambda: broken, ledger, timeout=0, step=0)
    assert found and last is broken


# -- the load generator -----------------------------------------------------------------------

def test_load_is_registered_with_its_options():
    assert "load" in benchmarks()
    args = parser().parse_args(["load"])
    assert (args.duration, args.uai_clients, args.asi_clients, args.max_held, args.seed) == \
        (30.0, 6, 4, 4, 1)


@pytest.mark.parametrize("argv", [["--duration", "0"], ["--uai-clients", "-1"],
                                  ["--max-held", "0"], ["--timeout", "0"]])
def test_bad_arguments_exit_2(argv, capsys):
    assert main(["load", *argv]) == 2
    assert "usage: cso bench" in capsys.readouterr().err


def answer(status: int, data: Any, seconds: float) -> Answer:
    """A timed JSON answer, as `cso_base.http.Connection` gives."""
    return Answer(status, {}, json.dumps(data).encode(), seconds)


def test_the_recorder_counts_5xx_no_answer_and_the_unexpected_as_failures():
    rec = bench_load.Recorder()
    rec.add("uai-post-vm", "POST", answer(201, {"id": "req-1"}, 0.1))
    rec.add("uai-post-vm", "POST", answer(409, {"error": "refused"}, 0.2))
    rec.add("uai-post-vm", "POST", answer(503, {"error": "unavailable", "reason": "x"}, 0.3))
    rec.add("asi-delete", "DELETE", Answer.unanswered("ConnectionResetError: x", 1.0))
    rec.add("uai-get", "GET", answer(404, {"error": "not-found"}, 0.01))
    rec.fail("uai-list", "GET", "missing: ['req-1']")
    assert [(f["kind"], f["status"]) for f in rec.failures] == [
        ("uai-post-vm", 503), ("asi-delete", 0), ("uai-get", 404), ("uai-list", None)]
    figures = rec.figures(wall=2.0)
    assert figures["uai-post-vm"]["requests"] == 3 and figures["uai-post-vm"]["per_s"] == 1.5
    assert figures["uai-post-vm"]["statuses"] == {"201": 1, "409": 1, "503": 1}
    assert figures["uai-post-vm"]["latency"]["median_ms"] == 200.0


def test_asi_clients_use_addresses_no_uai_user_has():
    plan = bench_load.Plan.of("nsfnet")
    assert len(plan.users) == 14 and len(plan.dcs) == 5
    pairs = plan.asi_pairs(3)
    assert len(pairs) == 14 * 5 and ("10.1.0.203", "10.2.1.1") in pairs
    assert not {src for src, _ in pairs} & set(plan.users)
    assert not {src for src, _ in pairs} & {src for src, _ in plan.asi_pairs(2)}


@pytest.mark.parametrize("answer, sent", [
    (Answer.unanswered("ConnectionRefusedError: [Errno 111] Connection refused", 0.001), False),
    (Answer.unanswered("RemoteDisconnected: Remote end closed connection without response",
                       0.2), True),
    (Answer.unanswered("TimeoutError: timed out", 15.0), True), (answer(503, {}, 0.1), True)])
def test_only_a_refused_connection_is_known_not_to_have_been_sent(answer, sent):
    assert bench_load.not_sent(answer) is not sent
