"""Protection live on NSFNET: the working fibre next to the ingress goes down under a ping.

A protected lightpath u0 -> dc7 has a fast-failover group at s0 and at s7. On NSFNET its
working route is the direct fibre 0-7: taking s0's interface down with ``ip link set``
(root namespace) also takes the veth peer on s7 down, so both groups' working buckets
die and both switches send on the protection route by themselves. No flow entry and no
group changes anywhere, the lightpath keeps its routes and cookie, and the ping loses
only a few packets (the loss times the interval is the switch-over time, printed).
u0 -> dc4 works on 0-1-3-4: s4 cannot see fibre 0-1 go down, so the SC turns s4's
group protection-first with one group MODIFY on the port status (still no flow mod): the
reverse direction's switch-over takes that round trip. A group lost on a switch is
read back and re-added by reconciliation (SMI resync), a stale one deleted.
"""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from sc_app.flows import base_flows
from sc_app.reconcile import READ_REQUESTS
from cso.emulation.lab import wait_for, wait_ping
from topologies.loader import load

pytestmark = pytest.mark.integration

TOKEN = "demo-ac-token"
TOPOLOGY = load("nsfnet")
PING_INTERVAL = 0.01
PING_COUNT = 400  # 4 s of pings
MAX_LOST = 10  # 100 ms at 10 ms per ping


def ofctl(*args: str) -> str:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], check=True,
                          capture_output=True, text=True, timeout=10).stdout


def flows(switch: str) -> list[str]:
    """The switch's entries without counters: equal lists mean no flow mod in between."""
    return sorted(line.strip() for line in ofctl("--no-stats", "dump-flows", switch).splitlines()
                  if "cookie=" in line or "priority=" in line)


def groups(switch: str) -> dict[int, str]:
    """group id -> its dump-groups line."""
    out = {}
    for line in ofctl("dump-groups", switch).splitlines():
        found = re.search(r"group_id=(\d+)", line)
        if found:
            out[int(found.group(1))] = line.strip()
    return out


def watch_ports(line: str) -> list[int]:
    return [int(p) for p in re.findall(r"watch_port:(\d+)", line)]


def set_link(intf: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", intf, state], check=True, timeout=10)


@pytest.mark.parametrize("dst", ["dc7", "dc4"])
def test_a_cut_next_to_the_ingress_fails_over_to_the_backup_without_flow_mods(sc, net, dst):
    sc.wait_discovered()
    reply = sc.request("POST", "/asi/v1/lightpaths",
                       {"src": net.ip("u0"), "dst": net.ip(dst), "protection": "link"},
                       token=TOKEN)
    assert reply.status == 201, reply.json
    lp = reply.json
    prot = lp["protection"]
    assert prot and not set(lp["links"]) & set(prot["links"])
    path = f"/asi/v1/lightpaths/{lp['id']}"
    serial = int(lp["cookie"], 16) & ((1 << 48) - 1)
    near, far = "s0", f"s{lp['route'][-1]}"
    working = TOPOLOGY.link(lp["links"][0])
    backup = TOPOLOGY.link(prot["links"][0])
    w_port, p_port = working.port("0"), backup.port("0")
    # Fast-failover groups at both ends, working bucket first, derived from the cookie.
    near_group = groups(near)[2 * serial]
    assert "type=ff" in near_group and watch_ports(near_group) == [w_port, p_port]
    far_group = groups(far)[2 * serial + 1]
    assert "type=ff" in far_group
    switches = sorted({f"s{n}" for n in lp["route"] + prot["route"]})
    before = {s: flows(s) for s in switches}
    intf = net.switch_ports(near)[w_port]
    try:
        assert net.ping("u0", dst, count=2)
        ping = net.popen("u0", "ping", "-n", "-i", f"{PING_INTERVAL:g}", "-c", str(PING_COUNT),
                         "-W", "1", net.ip(dst), log_name=f"protection-ping-{dst}")
        time.sleep(1.0)
        set_link(intf, "down")
        sent, received = wait_ping(ping, PING_COUNT * PING_INTERVAL * 3 + 10)
        lost = sent - received
        print(f"protection switch-over u0 -> {dst}: {lost} of {sent} pings lost at "
              f"{PING_INTERVAL * 1e3:g} ms: about {lost * PING_INTERVAL * 1e3:g} ms")
        assert lost <= MAX_LOST, ping.tail(5)
        assert net.ping("u0", dst, count=2)
        # No flow mod anywhere; the near group untouched (its own port went dead).
        assert {s: flows(s) for s in switches} == before
        assert groups(near)[2 * serial] == near_group
        if len(lp["links"]) == 1:  # both ends saw the port go down: no group mod either
            assert groups(far)[2 * serial + 1] == far_group
            with open(sc.process.log_path, encoding="utf-8") as log:
                assert f"protected lightpath {lp['id']}: working broken, protection whole, " \
                    "groups unchanged" in log.read()
        else:  # the far end was turned by the SC: protection bucket first
            far_now = groups(far)[2 * serial + 1]
            assert watch_ports(far_now) == watch_ports(far_group)[::-1], far_now
        # The SC neither re-routed nor re-installed: same routes, same cookie, up.
        now = sc.request("GET", path, token=TOKEN).json
        assert now["state"] == "up" and now["route"] == lp["route"]
        assert now["protection"] == prot and now["cookie"] == lp["cookie"]
    finally:
        set_link(intf, "up")
    wait_for("the link to come back", lambda: net.ping("u0", dst, count=1), timeout=15)
    assert sc.request("DELETE", path, token=TOKEN).status == 200
    assert 2 * serial not in groups(near) and 2 * serial + 1 not in groups(far)
    hex_cookie = f"cookie={int(lp['cookie'], 16):#x},"
    assert not any(line.startswith(hex_cookie) for s in switches for line in flows(s))


def test_a_lost_group_is_put_back_by_a_resync_and_a_stale_one_removed(sc, net):
    """`ovs-ofctl del-groups` on the ingress (its ingress entries go with the group) and a
    group no lightpath has: SMI resync reads the groups back, adds the missing one (traffic
    flows again), deletes the stale one, and a second resync finds nothing to do."""
    sc.wait_discovered()
    reply = sc.request("POST", "/asi/v1/lightpaths",
                       {"src": net.ip("u0"), "dst": net.ip("dc7"), "protection": "link"},
                       token=TOKEN)
    assert reply.status == 201, reply.json
    lp = reply.json
    serial = int(lp["cookie"], 16) & ((1 << 48) - 1)
    dpid = net.switches["s0"]["dpid"]
    try:
        assert net.ping("u0", "dc7", count=2)
        group = groups("s0")[2 * serial]
        ofctl("del-groups", "s0")
        stale = 2 * (serial + 100)
        ofctl("add-group", "s0", f"group_id={stale},type=ff,bucket=watch_port:1,output:1")
        assert 2 * serial not in groups("s0") and stale in groups("s0")
        assert not net.ping("u0", "dc7", count=1)
        resync = sc.request("POST", f"/smi/v1/switches/{dpid}/resync")
        assert resync.status == 200, resync.json
        assert groups("s0") == {2 * serial: group}
        wait_for("traffic over the re-added group", lambda: net.ping("u0", "dc7", count=1))
        again = sc.request("POST", f"/smi/v1/switches/{dpid}/resync").json
        assert again["messages"] == len(base_flows()) + READ_REQUESTS, again
    finally:
        assert sc.request("DELETE", f"/asi/v1/lightpaths/{lp['id']}", token=TOKEN).status == 200
    assert 2 * serial not in groups("s0")
