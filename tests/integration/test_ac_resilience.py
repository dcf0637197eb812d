"""AC resilience live (issue 5, items 4 and 5): the real AC, SC and DC agents on NSFNET.

1. ``kill -9`` of the AC while requests are active: started again on the same config and
   state, it answers the same requests and accounting, and the SC's lightpaths and the
   agents' VMs are exactly those of the active requests (nothing leaked or duplicated).
2. A DC agent that stops answering (SIGSTOP: alive but mute, the way a hung host looks): the
   ARAE marks its DC unavailable, the AC migrates the vm request served there, and the user
   still pings the same address. Once the agent answers again (SIGCONT), housekeeping deletes
   the old VM there.
"""
from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from cso_base import http
from cso.emulation import lab as harness
from cso.emulation.lab import wait_for
from cso.emulation.lifecycle import command_lines
from uai_steps import AC_TOKEN, MANAGER, REQS, USER, served_vm

pytestmark = pytest.mark.integration

#: Fast failure detection: an agent silent for about 1.5 s makes its DC unavailable.
AC_OPTIONS = {"agent_poll_interval": 0.5, "agent_timeout": 0.5, "agent_failures": 2}
#: Fields of the accounting that grow with time while requests are active.
TIMED = ("duration_s", "cpu_s", "memory_gb_s", "disk_gb_s", "wavelength_link_s")


@pytest.fixture(scope="module")
def ac_options() -> dict[str, Any]:
    """Fast failure detection (`AC_OPTIONS`)."""
    return dict(AC_OPTIONS)


def dcs(ac: harness.AcRun) -> list[dict[str, Any]]:
    return ac.request("GET", "/uai/v1/dcs", token=MANAGER).json["dcs"]


def all_vms(net: harness.NetRun) -> dict[str, list[str]]:
    """DC -> ids of its agent's VMs (those with any)."""
    found = {}
    for dc, url in net.state["agents"].items():
        vms = http.request("GET", url + "/agent/v1/state", timeout=5).json["vms"]
        if vms:
            found[dc] = sorted(vm["id"] for vm in vms)
    return found


def lightpath_ids(sc: harness.ScRun) -> list[str]:
    return sorted(lp["id"] for lp in sc.request("GET", "/asi/v1/lightpaths",
                                                token=AC_TOKEN).json["lightpaths"])


def untimed(accounting: dict[str, Any]) -> dict[str, Any]:
    """The accounting without what grows with time."""
    return {"requests": [{k: v for k, v in entry.items() if k != "duration_s"}
                         for entry in accounting["requests"]],
            "totals": {kind: {k: v for k, v in total.items() if k not in TIMED}
                       for kind, total in accounting["totals"].items()}}


def agent_pid(net: harness.NetRun, dc: str) -> int:
    """The pid of ``dc``'s ``cso agent`` of this emulation (found by its state dir)."""
    state_dir = os.path.join(net.run_dir, "agents", dc)
    for pid, argv in command_lines():
        if b"agent" in argv and state_dir.encode() in argv:
            return pid
    raise AssertionError(f"no agent process for {dc} ({state_dir})")


def active(ac: harness.AcRun) -> list[dict[str, Any]]:
    return ac.request("GET", f"{REQS}?status=active", token=MANAGER).json["requests"]


def check_held(ac: harness.AcRun, sc: harness.ScRun, net: harness.NetRun) -> None:
    """The SC's lightpaths and the agents' VMs are exactly the active requests'."""
    requests = active(ac)
    assert lightpath_ids(sc) == sorted(r["lightpath"]["id"] for r in requests)
    expected: dict[str, list[str]] = {}
    for record in requests:
        expected.setdefault(record["dc"], []).append(record["id"])
    assert all_vms(net) == {dc: sorted(ids) for dc, ids in expected.items()}


def test_kill_9_of_the_ac_loses_nothing(ac, sc, net):
    vm = served_vm(ac, net)
    vod = ac.request("POST", REQS, {"type": "vod", "src": net.ip("u1"), "content": "movie-1"},
                     token=USER)
    assert vod.status == 201, vod.json
    requests = ac.request("GET", REQS, token=MANAGER).json
    accounting = ac.request("GET", "/uai/v1/accounting", token=MANAGER).json
    check_held(ac, sc, net)

    ac.process.popen.kill()
    ac.process.popen.wait(10)
    ac.start()

    assert ac.request("GET", REQS, token=MANAGER).json == requests
    assert untimed(ac.request("GET", "/uai/v1/accounting", token=MANAGER).json) == \
        untimed(accounting)
    check_held(ac, sc, net)
    assert net.ping("u5", vm["vm_ip"], count=2)
    for record in (vm, vod.json):
        gone = ac.request("DELETE", f"{REQS}/{record['id']}", token=USER)
        assert gone.status == 200 and gone.json["status"] == "released", gone.json
    check_held(ac, sc, net)
    wait_for("the DCs available again", lambda: all(dc["available"] for dc in dcs(ac)), 15, 0.2)


def test_a_dc_whose_agent_stops_answering_has_its_vm_migrated(ac, sc, net):
    before = served_vm(ac, net)
    vm_ip, source = before["vm_ip"], before["dc"]
    assert net.ping("u5", vm_ip, count=2)
    pid = agent_pid(net, source)
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(f"{source} unavailable",
                 lambda: not {d["dc"]: d for d in dcs(ac)}[source]["available"], 15, 0.2)
        after = wait_for("the vm request migrated", lambda: (
            lambda r: r if r["status"] == "active" and r["dc"] != source else None)(
                ac.request("GET", f"{REQS}/{before['id']}", token=USER).json), 30, 0.2)
        assert (after["id"], after["vm_ip"]) == (before["id"], vm_ip)
        assert net.ping("u5", vm_ip, count=3)
        (lp,) = sc.request("GET", "/asi/v1/lightpaths", token=AC_TOKEN).json["lightpaths"]
        assert (lp["dst"], lp["dst_endpoint"]["node"]) == (vm_ip, after["node"])
    finally:
        os.kill(pid, signal.SIGCONT)
    # The agent answers again: housekeeping deletes the old VM (retried every 10 s).
    wait_for("the old VM gone from the failed DC",
             lambda: all_vms(net) == {after["dc"]: [before["id"]]}, 30, 0.2)
    gone = ac.request("DELETE", f"{REQS}/{before['id']}", token=USER)
    assert gone.status == 200 and gone.json["status"] == "released", gone.json
    check_held(ac, sc, net)
