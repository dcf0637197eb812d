"""DC agents in the NSFNET emulation: the management network, VM aliases, content over a lightpath.

The agents are started by ``cso net`` (the ``net`` fixture) in every DC host; the test process
plays the AC from the root namespace, reaching them over the management network only. The user
host ``u0`` has no management interface: what it downloads from a VM came over the lightpath.
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any, Optional

import pytest

from ac_app.dc_agent.agent import content_digest
from ac_app.arae import Arae
from topologies.loader import load

pytestmark = pytest.mark.integration

TOPOLOGY = load("nsfnet")
DCS = {node.dc.id: node.dc for node in TOPOLOGY.nodes.values() if node.dc is not None}
AC_TOKEN = "demo-ac-token"
CONTENT, NBYTES = "itest-movie", 3_000_000

# argv: URL TIMEOUT. Prints {"status", "bytes", "sha256", "vm"} or {"error"}.
_DOWNLOAD = """
import hashlib, json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as answer:
        digest, size = hashlib.sha256(), 0
        while True:
            chunk = answer.read(1 << 16)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
        print(json.dumps({"status": answer.status, "bytes": size, "sha256": digest.hexdigest(),
                          "vm": answer.headers.get("X-CSO-VM")}))
except OSError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def call(url: str, method: str = "GET", body: Optional[dict] = None) -> tuple[int, Any]:
    """One request to an agent from the root namespace (over the management network)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read())


def download(net, url: str, timeout: float) -> dict[str, Any]:
    out = net.exec("u0", sys.executable, "-c", _DOWNLOAD, url, str(timeout),
                   timeout=timeout + 10)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def addresses(net, host: str, interface: str) -> str:
    return net.exec(host, "ip", "-o", "-4", "addr", "show", "dev", interface, check=True).stdout


def test_every_agent_answers_over_the_management_network(net):
    agents = net.state["agents"]
    assert sorted(agents) == sorted(DCS)
    for dc, url in agents.items():
        i = int(DCS[dc].node)
        assert url == f"http://10.255.0.{i + 1}:8100"
        assert f"inet 10.255.0.{i + 1}/16 " in addresses(net, f"dc{i}", f"dc{i}-eth1")
        status, report = call(f"{url}/agent/v1/state")
        assert status == 200
        assert (report["dc"], report["node"], report["data_ip"]) == (dc, DCS[dc].node,
                                                                     f"10.2.{i}.1")
        assert [s["id"] for s in report["servers"]] == [s.id for s in DCS[dc].servers]
        assert report["vms"] == []
    # The management bridge is a plain learning switch, no controller: not the SC's.
    bridge = subprocess.run(["ovs-vsctl", "get", "Bridge", "cso-mgmt", "fail_mode",
                             "datapath_type"], capture_output=True, text=True, check=True)
    assert bridge.stdout.split() == ["standalone", "netdev"]
    controller = subprocess.run(["ovs-vsctl", "get-controller", "cso-mgmt"],
                                capture_output=True, text=True, check=True)
    assert controller.stdout.strip() == ""
    # The ARAE (eventlet's green client) sees every DC from here.
    states = Arae(agents, timeout=5.0).poll_all()
    assert all(state.available for state in states.values()), states
    assert states["dc7"].capacity["cpu"] == sum(s.cpu for s in DCS["dc7"].servers)


def test_vm_on_dc7_gets_an_alias_and_serves_content_over_a_lightpath(net, sc):
    agent = net.state["agents"]["dc7"]
    status, vm = call(f"{agent}/agent/v1/vms", "POST",
                      {"id": "itest-vm", "cpu": 2, "memory_gb": 4, "disk_gb": 10})
    assert status == 201, vm
    ip = vm["ip"]
    assert ip == "10.2.7.2"
    try:
        assert f"inet {ip}/8 " in addresses(net, "dc7", "dc7-eth0")
        url = f"http://{ip}:8080/content/{CONTENT}?bytes={NBYTES}"
        assert "error" in download(net, url, timeout=1.0)  # no lightpath yet: no way there

        answer = sc.request("POST", "/asi/v1/lightpaths", {"src": "10.1.0.1", "dst": ip},
                            token=AC_TOKEN)
        assert answer.status == 201, answer.body
        lightpath = answer.json
        try:
            assert lightpath["route"][0] == "0" and lightpath["route"][-1] == "7"
            got = download(net, url, timeout=20.0)
            assert got == {"status": 200, "bytes": NBYTES, "vm": "itest-vm",
                           "sha256": content_digest(CONTENT, NBYTES)}, got
        finally:
            gone = sc.request("DELETE", f"/asi/v1/lightpaths/{lightpath['id']}",
                              token=AC_TOKEN)
            assert gone.status == 200, gone.body
        status, report = call(f"{agent}/agent/v1/state")
        assert report["totals"]["used"] == {"cpu": 2, "memory_gb": 4, "disk_gb": 10}
    finally:
        status, released = call(f"{agent}/agent/v1/vms/itest-vm", "DELETE")
    assert (status, released["ip"]) == (200, ip)
    assert f"inet {ip}/" not in addresses(net, "dc7", "dc7-eth0")
    assert call(f"{agent}/agent/v1/state")[1]["totals"]["used"]["cpu"] == 0
