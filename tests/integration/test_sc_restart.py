"""The SC killed with SIGKILL under load and started again on NSFNET: nothing lost.

Several lightpaths are up and a ping runs over one of them; a further lightpath is being
requested when the SC gets ``kill -9``. The switches are fail-secure, so their entries stay
and the ping goes on while the SC is gone. Started again (same ports, same state directory),
the SC restores its lightpaths from the DBM and reconciles every reconnecting switch:
the lightpaths and the wavelength occupancy are what they were, the entries of the
lightpaths that were up are untouched (their packet counters keep counting), nothing
is left of a lightpath that did not make it, and the one in flight is fully up or fully gone.
A fibre cut while the SC is dead has its lightpaths re-routed once the SC is back.
"""
from __future__ import annotations

import functools
import re
import signal
import subprocess
import threading
import time

import pytest

from cso.emulation import lab
from sc_app import flows
from sc_app.reconcile import READ_REQUESTS
from topologies.loader import load

pytestmark = pytest.mark.integration

TOKEN = "demo-ac-token"
TOPOLOGY = load("nsfnet")
LP_TAG = "cookie=0x4c50"
PING_INTERVAL = 0.01
PING_COUNT = 1500  # 15 s of pings
#: `lab.wait_for` with this module's longer default timeout (the SC restarts).
wait_for = functools.partial(lab.wait_for, timeout=20.0, step=0.1)
_COUNTERS = re.compile(r"\b(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]*,?\s*")


def lightpath_entries(net) -> dict[str, list[str]]:
    """Switch -> its lightpath entries (cookie tag), counters and durations left out."""
    return {switch: sorted(_COUNTERS.sub("", flow) for flow in net.dump_flows(switch)
                           if flow.startswith(LP_TAG))
            for switch in net.switches}


def cookies_on(net) -> dict[str, set[int]]:
    """Switch -> the lightpath cookies of its entries."""
    return {switch: {int(flow.split(",")[0].split("=")[1], 16) for flow in flows}
            for switch, flows in lightpath_entries(net).items()}


def packets(net, switch: str, cookie: str) -> int:
    """Packets counted by the entries of ``cookie`` on ``switch``."""
    prefix = f"cookie={int(cookie, 16):#x},"
    return sum(int(re.search(r"n_packets=(\d+)", flow).group(1))
               for flow in net.dump_flows(switch) if flow.startswith(prefix))


def lightpaths(sc) -> dict[str, dict]:
    return {lp["id"]: lp for lp in
            sc.request("GET", "/asi/v1/lightpaths", token=TOKEN).json["lightpaths"]}


def occupancy(sc) -> dict[str, dict[str, str]]:
    return {link["id"]: link["owners"] for link in sc.request("GET", "/smi/v1/links").json["links"]}


def expected_cookies(lps: dict[str, dict]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for lp in lps.values():
        for node in lp["route"]:
            out.setdefault(f"s{node}", set()).add(int(lp["cookie"], 16))
    return out


def establish(sc, src: str, dst: str) -> dict:
    reply = sc.request("POST", "/asi/v1/lightpaths", {"src": src, "dst": dst}, token=TOKEN)
    assert reply.status == 201, reply.json
    return reply.json


def test_kill_9_under_load_and_restart_loses_and_duplicates_nothing(sc_factory, net_factory):
    sc = sc_factory()
    net = net_factory(sc)
    sc.wait_discovered()
    users = sorted((h for h in net.hosts if h.startswith("u")), key=lambda h: int(h[1:]))
    first = establish(sc, net.ip("u0"), net.ip("dc9"))
    assert len(first["route"]) >= 3, first  # a transit switch to count packets on
    others = [establish(sc, net.ip(u), net.ip("dc12")) for u in users[1:4]]
    before = lightpaths(sc)
    assert len(before) == 4 and all(lp["state"] == "up" for lp in before.values())
    links_before = occupancy(sc)
    entries_before = lightpath_entries(net)
    transit = f"s{first['route'][1]}"

    assert net.ping("u0", "dc9", count=2)
    in_flight: dict[str, object] = {}
    ping = net.popen("u0", "ping", "-n", "-i", f"{PING_INTERVAL:g}", "-c", str(PING_COUNT),
                     "-W", "1", net.ip("dc9"), log_name="restart-ping")
    try:
        time.sleep(3.0)
        counted = packets(net, transit, first["cookie"])
        assert counted > 100

        # A lightpath requested just as the SC dies: it ends fully up or fully gone.

        def request() -> None:
            try:
                reply = sc.request("POST", "/asi/v1/lightpaths",
                                   {"src": net.ip(users[4]), "dst": net.ip("dc7")},
                                   token=TOKEN, timeout=5.0)
                in_flight["reply"] = (reply.status, reply.json)
            except Exception as exc:  # noqa: BLE001 - the SC died under it
                in_flight["error"] = exc

        thread = threading.Thread(target=request)
        thread.start()
        time.sleep(0.003)
        sc.process.popen.send_signal(signal.SIGKILL)
        sc.process.popen.wait(10)
        thread.join(10)

        # Fail-secure switches keep their entries: traffic goes on without the SC.
        assert lightpath_entries(net) != {}
        dead = packets(net, transit, first["cookie"])
        time.sleep(1.0)
        while_dead = packets(net, transit, first["cookie"])
        assert while_dead > dead > counted

        sc.start()
        wait_for("every switch connected", lambda: all(
            s["connected"] for s in sc.request("GET", "/smi/v1/switches").json["switches"]))
        after = lightpaths(sc)
        extra = set(after) - set(before)
        assert len(extra) <= 1, after
        # Reconciled: every switch holds exactly the recorded lightpaths' cookies.
        wait_for("reconciled switches", lambda: {
            s: c for s, c in cookies_on(net).items() if c} == expected_cookies(after))
        counted_after = packets(net, transit, first["cookie"])
        # Every entry reads back as the SC wants it: a resync now changes nothing
        # (the base entries and the flow stats request are all it sends).
        for switch in net.switches:
            dpid = net.switches[switch]["dpid"]
            reply = sc.request("POST", f"/smi/v1/switches/{dpid}/resync")
            assert reply.json["messages"] == len(flows.base_flows()) + READ_REQUESTS, \
                (switch, reply.json)

        # The lightpaths that were up are unchanged, and so are their entries.
        for lp_id, lp in before.items():
            assert {k: after[lp_id][k] for k in ("route", "links", "wavelength", "cookie",
                                                 "state", "vlan_vid")} == \
                {k: lp[k] for k in ("route", "links", "wavelength", "cookie", "state",
                                    "vlan_vid")}
        now_entries = lightpath_entries(net)
        for lp_id in extra:  # the one in flight made it: fully up, entries on its route
            lp = after[lp_id]
            assert lp["state"] == "up"
            new = f"cookie={int(lp['cookie'], 16):#x},"
            now_entries = {s: [f for f in flows if not f.startswith(new)]
                           for s, flows in now_entries.items()}
        assert now_entries == entries_before
        # Not re-added: the counters went on from where they were.
        assert counted_after >= while_dead

        # Occupancy: what it was, plus the lightpath in flight if it made it.
        links_after = occupancy(sc)
        for lp_id in extra:
            for link in after[lp_id]["links"]:
                owners = links_after[link]
                assert owners.pop(str(after[lp_id]["wavelength"])) == lp_id
        assert links_after == links_before
        # No wavelength double-booked (one owner per wavelength per link, the right one).
        for lp in after.values():
            for link in lp["links"]:
                assert occupancy(sc)[link][str(lp["wavelength"])] == lp["id"]
        if "reply" in in_flight and in_flight["reply"][0] == 201:
            assert in_flight["reply"][1]["id"] in after  # acknowledged means recorded

        sent, received = lab.wait_ping(ping, PING_COUNT * PING_INTERVAL * 3 + 10)
        assert sent - received <= 5, ping.tail(5)
        assert net.ping("u0", "dc9", count=2)
        assert all(net.ping(users[1 + i], "dc12", count=1) for i in range(len(others)))
    finally:
        ping.stop(signal.SIGINT, grace=2.0)


def set_link(intf: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", intf, state], check=True, timeout=10)


def test_a_fibre_cut_while_the_sc_is_dead_is_restored_when_it_starts(sc_factory, net_factory):
    """The SC gets kill -9, a fibre of a lightpath is cut, the SC starts again: once every
    switch is back the lightpath is re-routed off the fibre (it never changed state in the
    new process), the fibre's alarm is raised, and the ping flows."""
    sc = sc_factory()
    net = net_factory(sc)
    sc.wait_discovered()
    lp = establish(sc, net.ip("u0"), net.ip("dc9"))
    fibre = TOPOLOGY.link(lp["links"][0])
    intf = net.switch_ports(f"s{fibre.a}")[fibre.a_port]
    assert net.ping("u0", "dc9", count=2)
    sc.process.popen.send_signal(signal.SIGKILL)
    sc.process.popen.wait(10)
    set_link(intf, "down")
    try:
        assert not net.ping("u0", "dc9", count=2)  # cut, and nobody to re-route
        sc.start()

        def moved() -> dict | None:
            cur = lightpaths(sc)[lp["id"]]
            return cur if fibre.id not in cur["links"] and cur["state"] == "up" else None

        now = wait_for("the lightpath re-routed off the cut fibre", moved, timeout=60)
        assert now["cookie"] != lp["cookie"] and now["route"][0] == lp["route"][0]
        assert wait_for("ping over the new route", lambda: net.ping("u0", "dc9", count=1))
        alarms = sc.request("GET", "/smi/v1/alarms").json["alarms"]
        assert any(a["kind"] == "link-down" and a["subject"] == fibre.id for a in alarms)
        with open(sc.process.log_path, encoding="utf-8") as log:
            assert "restoration check after start" in log.read()
    finally:
        set_link(intf, "up")
