"""VM migration live: the real AC, SC and DC agents on NSFNET in Mininet.

A user host gets a VM and pings it; a provider manager migrates it; the user host still pings
the same address, now served by another DC's host (the agents say which), and nothing of the
VM is left at the source: no VM on its agent, no alias on its host.
"""
from __future__ import annotations

import pytest

from cso_base import http
from uai_steps import AC_TOKEN, MANAGER, REQS, USER, served_vm

pytestmark = pytest.mark.integration


def holders(net, vm_id: str) -> dict[str, str]:
    """DC -> the address of VM ``vm_id`` there, from every agent's ``/agent/v1/state``."""
    found = {}
    for dc, url in net.state["agents"].items():
        for vm in http.request("GET", url + "/agent/v1/state").json["vms"]:
            if vm["id"] == vm_id:
                found[dc] = vm["ip"]
    return found


def has_address(net, host: str, ip: str) -> bool:
    out = net.exec(host, "ip", "-o", "-4", "addr", "show", check=True).stdout
    return any(word.split("/")[0] == ip for word in out.split())


def test_a_migrated_vm_keeps_its_address_and_answers_from_another_dc(ac, sc, net):
    before = served_vm(ac, net)
    vm_ip, source = before["vm_ip"], before["dc"]
    try:
        assert net.ping("u5", vm_ip, count=3)
        assert holders(net, before["id"]) == {source: vm_ip}

        moved = ac.request("POST", REQS, {"type": "migration", "request": before["id"]},
                           token=MANAGER)
        assert moved.status == 201, moved.json
        assert moved.json["migration"]["from_dc"] == source

        after = ac.request("GET", f"{REQS}/{before['id']}", token=USER).json
        assert (after["status"], after["vm_ip"]) == ("active", vm_ip)
        assert after["dc"] != source and moved.json["migration"]["to_dc"] == after["dc"]
        # The user reaches the same address, now at the destination DC.
        assert net.ping("u5", vm_ip, count=3)
        assert holders(net, before["id"]) == {after["dc"]: vm_ip}
        assert has_address(net, f"dc{after['node']}", vm_ip)
        assert not has_address(net, f"dc{before['node']}", vm_ip)
        (lp,) = sc.request("GET", "/asi/v1/lightpaths", token=AC_TOKEN).json["lightpaths"]
        assert (lp["id"], lp["dst"], lp["dst_endpoint"]["node"], lp["state"]) == \
            (after["lightpath"]["id"], vm_ip, after["node"], "up")
        # The source DC's host itself is not reachable over the VM's lightpath.
        assert not net.ping("u5", f"dc{before['node']}", count=1)
    finally:
        gone = ac.request("DELETE", f"{REQS}/{before['id']}", token=USER)
        assert gone.status == 200 and gone.json["status"] == "released", gone.json
    assert holders(net, before["id"]) == {}
    assert sc.request("GET", "/asi/v1/lightpaths", token=AC_TOKEN).json["lightpaths"] == []
