"""Load (issue 5, item 7) and ``kill -9`` of the AC under load (item 4) on the real SC, AC,
DC agents and NSFNET emulation.

1. UAI users and ASI clients together for 20 s (`cso.bench.load.Load`, what ``cso bench
   load`` runs): no 5xx, no timeout, no lost or duplicated request; afterwards every
   invariant of `cso.emulation.invariants` (requests, lightpaths per AC, wavelengths per fibre, flow
   entries, VMs, server capacity, accounting sums); after releasing everything, nothing held.
2. UAI users submitting flat out while the AC is killed (SIGKILL) at a few moments and started
   again on the same config and state: every request ends active, refused, failed or released
   (none pending or releasing), nothing half-reserved (no SC lightpath or agent VM that no
   active request holds), reservations and accounting consistent, active VMs answer ping.
"""
from __future__ import annotations

import time
from typing import Any

import pytest

from cso.emulation import invariants
from cso.bench import load as bench_load
from cso.emulation import lab as harness
from cso.bench.load import MANAGER, REQUESTS, Load, Plan

pytestmark = pytest.mark.integration

#: Fast agent polling, so a restarted AC sees its DCs again within a second or two.
AC_OPTIONS = {"agent_poll_interval": 0.5, "agent_timeout": 1.0, "agent_failures": 4}
#: Seconds after the load starts at which the AC is killed, one round each.
KILL_AFTER = (0.7, 1.6, 2.5)


@pytest.fixture(scope="module")
def ac_options() -> dict[str, Any]:
    """Fast agent polling: a restarted AC sees its DCs again soon."""
    return dict(AC_OPTIONS)


def test_concurrent_uai_and_asi_clients_break_nothing(sc, net, ac):
    load = Load(sc.rest_port, ac.port, Plan.of(), uai_clients=6, asi_clients=4, seed=1)
    figures = bench_load.run(sc, ac, net, load, duration=20)
    print(bench_load.report({**figures, "topology": "nsfnet", "seed": 1, "date": "-",
                             "clients": {"uai": 6, "asi": 4}, "log_dir": ac.log_dir}))
    assert figures["failures"] == 0, figures["failure_samples"]
    assert figures["violations"] == []
    assert figures["release_problems"] == []
    assert figures["violations_after_release"] == []
    assert figures["left_after_release"] == []
    kinds = figures["kinds"]
    served = sum(kinds[k]["statuses"].get("201", 0) for k in ("uai-post-vm", "uai-post-vod"))
    assert served >= 20 and kinds["asi-post"]["statuses"].get("201", 0) >= 20, kinds
    assert figures["held_after_load"]["requests"] > 0


def test_kill_9_of_the_ac_under_load_leaves_nothing_half_done(sc, net, ac):
    plan, read = Plan.of(), bench_load.reader(sc, ac, net)
    hit = 0
    for round_, kill_after in enumerate(KILL_AFTER):
        before = {r["id"] for r in ac.request("GET", REQUESTS, token=MANAGER).json["requests"]}
        load = Load(sc.rest_port, ac.port, plan, uai_clients=4, asi_clients=0,
                    seed=100 + round_, timeout=10.0).start(kill_after + 4.0)
        time.sleep(kill_after)
        ac.process.popen.kill()
        ac.process.popen.wait(10)
        killed = time.monotonic()
        ac.start()
        down_s = time.monotonic() - killed
        ledger = load.wait()
        ledger.before = before
        # Only the kill may have cost answers: no 5xx, nothing but broken connections.
        assert {f["status"] for f in load.recorder.failures} <= {0}, load.recorder.failures
        lost = ledger.unanswered_posts + list(ledger.uai.values()).count(invariants.UNSURE)
        hit += lost
        violations, snap = invariants.settle(read, ledger, 20)
        assert violations == [], f"round {round_} (kill after {kill_after} s)"
        restarted = [r["id"] for r in snap.requests
                     if r["reason"] == "ac-restarted" and r["id"] not in before]
        print(f"round {round_}: kill after {kill_after} s, UAI back after {down_s:.2f} s, "
              f"{len(ledger.uai)} requests answered, {lost} answers lost, settled by the "
              f"restart: {restarted}")
        check_vms_answer(net, ac, snap)
    assert hit > 0, "the kills never caught a request in flight"
    ledger = invariants.Ledger(before={r["id"] for r in ac.request(
        "GET", REQUESTS, token=MANAGER).json["requests"]})
    assert bench_load.release_all(sc, ac, ledger) == []
    _, final = invariants.settle(read, ledger, 20)
    assert invariants.check_released(final) == []


def check_vms_answer(net: harness.NetRun, ac: harness.AcRun, snap: invariants.Snapshot,
                     most: int = 3) -> None:
    """A few active requests' VMs answer ping from their user's host.

    The requests that end last are pinged; one that expired meanwhile (durations are 1-8 s,
    the AC's expiry runs every second) is no longer bound to answer.
    """
    hosts = {info["ip"]: name for name, info in net.hosts.items()}
    latest = sorted(invariants.active_requests(snap), key=lambda r: r["ends_at"] or "",
                    reverse=True)
    for record in latest[:most]:
        if net.ping(hosts[record["src"]], record["vm_ip"], count=2):
            continue
        now = ac.request("GET", f"{REQUESTS}/{record['id']}", token=MANAGER).json
        assert now["status"] != "active", f"{record['id']} active but its VM does not answer"
