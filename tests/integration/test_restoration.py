"""Restoration live on NSFNET: a fibre of a lightpath goes down under a running ping.

The switch-side interface of a fibre is taken down with ``ip link set`` in the root
namespace (where Mininet's switch interfaces live); OVS reports the port status, the SC
re-routes the lightpath make-before-break, the ping recovers with a bounded loss, the old
cookie's entries are gone, and bringing the interface back clears the alarm.
"""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from cso.emulation.lab import wait_for, wait_ping
from topologies.loader import load

pytestmark = pytest.mark.integration

TOKEN = "demo-ac-token"
TOPOLOGY = load("nsfnet")
PING_INTERVAL = 0.01
PING_COUNT = 400  # 4 s of pings


def interface(net, node: str, port: int) -> str:
    return net.switch_ports(f"s{node}")[port]


def set_link(intf: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", intf, state], check=True, timeout=10)


def alarms(sc):
    return {(a["kind"], a["subject"]) for a in sc.request("GET", "/smi/v1/alarms").json["alarms"]}


def cookie_switches(net, cookie: str) -> set[str]:
    hex_cookie = f"cookie={int(cookie, 16):#x},"
    return {switch for switch in net.switches
            if any(flow.startswith(hex_cookie) for flow in net.dump_flows(switch))}


def test_a_fibre_down_under_ping_reroutes_the_lightpath_and_up_clears_the_alarm(sc, net):
    sc.wait_discovered()
    reply = sc.request("POST", "/asi/v1/lightpaths",
                       {"src": net.ip("u0"), "dst": net.ip("dc7")}, token=TOKEN)
    assert reply.status == 201, reply.json
    lp = reply.json
    link = TOPOLOGY.link(lp["links"][0])
    intf = interface(net, link.a, link.a_port)
    path = f"/asi/v1/lightpaths/{lp['id']}"
    try:
        assert net.ping("u0", "dc7", count=2)
        ping = net.popen("u0", "ping", "-n", "-i", f"{PING_INTERVAL:g}", "-c", str(PING_COUNT),
                         "-W", "1", net.ip("dc7"), log_name="restoration-ping")
        time.sleep(1.0)
        set_link(intf, "down")
        try:
            now = wait_for("the re-route", lambda: (
                lambda cur: cur if cur["route"] != lp["route"] else None)(
                    sc.request("GET", path, token=TOKEN).json))
            assert now["state"] == "up" and link.id not in now["links"]
            assert now["cookie"] != lp["cookie"]
            assert cookie_switches(net, lp["cookie"]) == set()
            assert cookie_switches(net, now["cookie"]) == {f"s{n}" for n in now["route"]}
            assert ("link-down", link.id) in alarms(sc)
            sent, received = wait_ping(ping, PING_COUNT * PING_INTERVAL * 3 + 10)
            # Bounded loss: the port-status round trip and the re-route, well under a second.
            assert sent - received <= 50, ping.tail(5)
            assert net.ping("u0", "dc7", count=2)
            with open(sc.process.log_path, encoding="utf-8") as log:
                took = re.findall(rf"lightpath {lp['id']} re-routed .* in ([\d.]+) ms", log.read())
            assert len(took) == 1 and float(took[0]) < 1000, took  # port status -> installed
            smi = {x["id"]: x for x in sc.request("GET", "/smi/v1/links").json["links"]}
            assert now["wavelength"] in smi[now["links"][0]]["used"]
            assert smi[link.id]["used"] == []
        finally:
            set_link(intf, "up")
        wait_for("the alarm to clear", lambda: ("link-down", link.id) not in alarms(sc))
        assert net.ping("u0", "dc7", count=2)
    finally:
        assert sc.request("DELETE", path, token=TOKEN).status == 200
