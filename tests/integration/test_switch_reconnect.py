"""A switch's OpenFlow connection drops and comes back on NSFNET, under a running ping.

Pointing s0's controller at a port nobody listens on (``ovs-vsctl set-controller s0
tcp:127.0.0.1:1``) cuts the control channel of a transit switch of two lightpaths; the switch
is fail-secure, so it keeps forwarding on its entries (``del-controller`` would not do: OVS
flushes a bridge's flow table when its last controller leaves its configuration). While it
is away one lightpath's entries are deleted on it and a stale lightpath-tagged entry added.

- Back within ``switch_hold``: the SC reconciles the switch: the stale entry goes, the missing
  entries come back, the other lightpath's entries are untouched (same entries, counters and
  durations still growing) and its ping loses nothing; no lightpath moves.
- Not back within the hold: the lightpaths crossing it are re-routed around it (the ping
  follows), and when it comes back its now stale entries are removed.
"""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from cso.emulation.lab import wait_for, wait_ping

pytestmark = pytest.mark.integration

TOKEN = "demo-ac-token"
HOLD = 4.0
SWITCH = "s0"
DEAD_TARGET = "tcp:127.0.0.1:1"  # nothing listens there: the switch keeps trying
STALE_COOKIE = 0x4C50_0000_0000_0FFF  # lightpath tag, no lightpath's serial
PING_INTERVAL = 0.01
_COUNTERS = re.compile(r"\b(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]*,?\s*")


@pytest.fixture(scope="module")
def sc_options():
    return {"switch_hold": HOLD}


def ovs(*argv: str) -> str:
    return subprocess.run(["ovs-vsctl", "--timeout=10", *argv], check=True, timeout=15,
                          capture_output=True, text=True).stdout.strip()


def ofctl(*argv: str) -> None:
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *argv], check=True, timeout=15)


def entries(net, cookie: int) -> list[str]:
    """The switch's entries of ``cookie``, counters and durations left out, sorted."""
    prefix = f"cookie={cookie:#x},"
    return sorted(_COUNTERS.sub("", flow) for flow in net.dump_flows(SWITCH)
                  if flow.startswith(prefix))


def counters(net, cookie: int) -> list[tuple[float, int]]:
    """(duration s, n_packets) of each of the switch's entries of ``cookie``, in entry order."""
    prefix = f"cookie={cookie:#x},"
    out = []
    for flow in sorted(net.dump_flows(SWITCH), key=lambda f: _COUNTERS.sub("", f)):
        if flow.startswith(prefix):
            out.append((float(re.search(r"duration=([\d.]+)s", flow).group(1)),
                        int(re.search(r"n_packets=(\d+)", flow).group(1))))
    return out


def switch(sc) -> dict:
    return {s["node"]: s for s in sc.request("GET", "/smi/v1/switches").json["switches"]}["0"]


def alarms(sc) -> set[tuple[str, str]]:
    return {(a["kind"], a["subject"]) for a in sc.request("GET", "/smi/v1/alarms").json["alarms"]}


def lightpaths(sc) -> dict[str, dict]:
    return {lp["id"]: lp for lp in
            sc.request("GET", "/asi/v1/lightpaths", token=TOKEN).json["lightpaths"]}


def establish(sc, net, src: str, dst: str) -> dict:
    reply = sc.request("POST", "/asi/v1/lightpaths", {"src": net.ip(src), "dst": net.ip(dst)},
                       token=TOKEN)
    assert reply.status == 201, reply.json
    assert reply.json["route"][1] == "0", reply.json  # s0 is a transit switch
    return reply.json


def ping_loss(ping) -> tuple[int, int]:
    sent, received = wait_ping(ping, 60)
    return sent, sent - received


def disconnect(sc, target: str) -> None:
    assert target.startswith("tcp:"), target
    ovs("set-controller", SWITCH, DEAD_TARGET)
    wait_for("s0 held", lambda: (lambda s: not s["connected"] and s["held"])(switch(sc)))
    assert ("switch-down", "0") in alarms(sc)


def reconnect(sc, target: str) -> None:
    ovs("set-controller", SWITCH, target)
    wait_for("s0 back", lambda: switch(sc)["connected"], timeout=20)


def teardown_all(sc) -> None:
    for lp_id in lightpaths(sc):
        assert sc.request("DELETE", f"/asi/v1/lightpaths/{lp_id}", token=TOKEN).status == 200


def test_back_within_the_hold_the_switch_is_reconciled_and_nothing_moves(sc, net):
    sc.wait_discovered()
    target = ovs("get-controller", SWITCH)
    a = establish(sc, net, "u1", "dc7")  # 1-0-7
    b = establish(sc, net, "u2", "dc7")  # 2-0-7
    a_cookie, b_cookie = int(a["cookie"], 16), int(b["cookie"], 16)
    try:
        assert net.ping("u1", "dc7", count=2) and net.ping("u2", "dc7", count=2)
        before = lightpaths(sc)
        a_entries, a_counters = entries(net, a_cookie), counters(net, a_cookie)
        b_entries = entries(net, b_cookie)
        assert a_entries and b_entries
        ping = net.popen("u1", "ping", "-n", "-i", f"{PING_INTERVAL:g}", "-c", "400", "-W", "1",
                         net.ip("dc7"), log_name="reconnect-ping")
        time.sleep(0.5)
        disconnect(sc, target)
        # Away: b loses its entries on s0, and an entry no lightpath owns appears.
        ofctl("del-flows", SWITCH, f"cookie={b_cookie:#x}/-1")
        ofctl("add-flow", SWITCH, f"cookie={STALE_COOKIE:#x},priority=2000,in_port=1,"
                                  "dl_vlan=1039,actions=drop")
        assert not net.ping("u2", "dc7", count=1)
        reconnect(sc, target)
        wait_for("b's entries back and the stale one gone",
                 lambda: entries(net, b_cookie) == b_entries and not entries(net, STALE_COOKIE))
        wait_for("the switch-down alarm cleared", lambda: ("switch-down", "0") not in alarms(sc))
        assert net.ping("u2", "dc7", count=2)
        # a: the same entries, never re-added (durations and counters kept growing).
        assert entries(net, a_cookie) == a_entries
        after = counters(net, a_cookie)
        assert len(after) == len(a_counters)
        assert all(d1 >= d0 + 0.5 and n1 > n0 for (d0, n0), (d1, n1) in zip(a_counters, after))
        sent, lost = ping_loss(ping)
        assert sent >= 300 and lost <= 2, ping.tail(5)
        # Nothing moved: same lightpaths, routes, wavelengths and cookies; no re-route told.
        assert lightpaths(sc) == before
        assert ("switch-down", "0") not in alarms(sc)
    finally:
        teardown_all(sc)


def test_not_back_within_the_hold_its_lightpaths_are_rerouted_around_it(sc, net):
    sc.wait_discovered()
    target = ovs("get-controller", SWITCH)
    a = establish(sc, net, "u1", "dc7")
    a_cookie = int(a["cookie"], 16)
    try:
        ping = net.popen("u1", "ping", "-n", "-i", f"{PING_INTERVAL:g}", "-c",
                         str(int((HOLD + 4) / PING_INTERVAL)), "-W", "1", net.ip("dc7"),
                         log_name="hold-over-ping")
        time.sleep(0.5)
        cut = time.monotonic()
        disconnect(sc, target)
        try:
            time.sleep(HOLD / 2)
            assert lightpaths(sc)[a["id"]]["route"] == a["route"]  # still held: unmoved
            now = wait_for("the re-route around s0", lambda: (
                lambda lp: lp if lp["route"] != a["route"] else None)(lightpaths(sc)[a["id"]]),
                timeout=HOLD + 10)
            assert time.monotonic() - cut >= HOLD - 0.5
            assert now["state"] == "up" and "0" not in now["route"]
            sent, lost = ping_loss(ping)
            assert lost <= 50, ping.tail(5)  # the ingress swap, as after a fibre cut
            assert net.ping("u1", "dc7", count=2)
            assert entries(net, a_cookie)  # s0 kept the old entries: it was unreachable
        finally:
            reconnect(sc, target)
        wait_for("the old entries removed from s0", lambda: not entries(net, a_cookie))
        wait_for("the alarms cleared", lambda: not {kind for kind, _ in alarms(sc)} & {
            "switch-down", "link-down"})
        assert net.ping("u1", "dc7", count=2)
    finally:
        teardown_all(sc)
