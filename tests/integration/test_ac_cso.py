"""The whole CSO procedure live: the real AC (``cso ac``), SC (``cso sc``) and DC agents
(started by ``cso net`` in the NSFNET emulation).

A user host asks over UAI for VoD; the AC picks a server with GLB, has the agent create
the session's VM and the SC the lightpath, and the user host downloads the content from
the chosen DC over that lightpath. A VM request gets a reachable VM. When the network
refuses, no server stays reserved. Users see only their own requests.
"""
from __future__ import annotations

import json
import sys

import pytest

from cso_base import http
from uai_steps import AC_TOKEN, MANAGER, OTHER, USER, served_vm

pytestmark = pytest.mark.integration

# argv: URL. Prints {"status", "bytes"} or {"error"}: run inside a user host.
_DOWNLOAD = """
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as answer:
        print(json.dumps({"status": answer.status, "bytes": len(answer.read())}))
except OSError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def vms_everywhere(net) -> list[str]:
    """Ids of every VM on every agent, asked over the management network."""
    ids = []
    for url in net.state["agents"].values():
        ids += [vm["id"] for vm in http.request("GET", url + "/agent/v1/state").json["vms"]]
    return ids


def download(net, host: str, url: str) -> dict:
    out = net.exec(host, sys.executable, "-c", _DOWNLOAD, url, timeout=20)
    return json.loads(out.stdout)


def test_vod_with_glb_over_a_lightpath_then_release(ac, sc, net):
    resp = ac.request("POST", "/uai/v1/requests",
                      {"type": "vod", "src": net.ip("u0"), "content": "film"}, token=USER)
    assert resp.status == 201, resp.json
    req = resp.json
    assert req["status"] == "active" and req["strategy"] == "GLB"
    lp = req["lightpath"]
    assert lp["route"][0] == "0" and req["vm_ip"].startswith(f"10.2.{lp['route'][-1]}.")
    held = sc.request("GET", f"/asi/v1/lightpaths/{lp['id']}", token=AC_TOKEN).json
    assert (held["state"], held["dst"], held["route"]) == ("up", req["vm_ip"], lp["route"])
    got = download(net, "u0", req["content_url"] + "?bytes=1000000")
    assert got == {"status": 200, "bytes": 1_000_000}, got
    # The user host reaches nothing else: another DC's address stays unreachable.
    assert not net.ping("u0", "dc9" if req["dc"] != "dc9" else "dc4", count=1)
    assert ac.request("GET", f"/uai/v1/requests/{req['id']}", token=OTHER).status == 404
    assert ac.request("GET", f"/uai/v1/requests/{req['id']}", token=MANAGER).status == 200
    gone = ac.request("DELETE", f"/uai/v1/requests/{req['id']}", token=USER)
    assert gone.status == 200 and gone.json["status"] == "released", gone.json
    assert req["id"] not in vms_everywhere(net)
    assert sc.request("GET", "/asi/v1/lightpaths", token=AC_TOKEN).json["lightpaths"] == []
    assert "error" in download(net, "u0", req["content_url"] + "?bytes=1000")


def test_vm_request_gets_a_reachable_vm(ac, net):
    req = served_vm(ac, net)
    try:
        assert net.ping("u5", req["vm_ip"], count=3)
        assert req["id"] in vms_everywhere(net)
    finally:
        assert ac.request("DELETE", f"/uai/v1/requests/{req['id']}", token=USER).status == 200


def test_network_refusal_leaves_no_server_reserved(ac, sc, net):
    before = vms_everywhere(net)
    resp = ac.request("POST", "/uai/v1/requests",
                      {"type": "vm", "src": net.ip("u0"), "cpu": 1, "memory_gb": 1,
                       "disk_gb": 1, "max_delay_ms": 0.001}, token=USER)
    assert resp.status == 409, resp.json
    assert (resp.json["error"], resp.json["stratum"]) == ("refused", "network")
    assert vms_everywhere(net) == before
    assert sc.request("GET", "/asi/v1/lightpaths", token=AC_TOKEN).json["lightpaths"] == []
    assert ac.request("GET", f"/uai/v1/requests/{resp.json['id']}",
                      token=USER).json["status"] == "refused"


def test_bad_input_and_tokens(ac, net):
    assert ac.request("POST", "/uai/v1/requests", {"type": "vod"}, token="nope").status == 401
    bad = ac.request("POST", "/uai/v1/requests", {"type": "teleport", "src": net.ip("u0")},
                     token=USER)
    assert bad.status == 400 and {"error", "reason"} <= set(bad.json)
    mig = ac.request("POST", "/uai/v1/requests", {"type": "migration", "request": "x"},
                     token=USER)
    assert mig.status == 403
