"""The real SC (``cso sc`` loading sc_app) on the NSFNET emulation: lightpaths over ASI.

A lightpath set up over ASI carries ping and a TCP transfer; the flow tables show its VID
on exactly the switches of its route; teardown removes them and traffic stops; lightpaths
sharing a fibre get different wavelengths; tokens and ownership are enforced; bad input
is refused with JSON and changes nothing.
"""
from __future__ import annotations


import pytest

from topologies.loader import load

pytestmark = pytest.mark.integration

TOKEN = "demo-ac-token"
OTHER = "other-ac-token"
TOPOLOGY = load("nsfnet")


def vid_switches(net, vid: int) -> set[str]:
    """Switches with at least one entry matching or setting VLAN ``vid``."""
    found = set()
    for switch in net.switches:
        for flow in net.dump_flows(switch):
            if f"dl_vlan={vid}" in flow or f"set_field:{4096 + vid}->vlan_vid" in flow:
                found.add(switch)
    return found


def establish(sc, src: str, dst: str, token: str = TOKEN, **extra):
    return sc.request("POST", "/asi/v1/lightpaths", {"src": src, "dst": dst, **extra},
                      token=token)


def teardown(sc, lp_id: str, token: str = TOKEN):
    return sc.request("DELETE", f"/asi/v1/lightpaths/{lp_id}", token=token)


@pytest.fixture(scope="module")
def ready(sc, net):
    """Every fibre up and discovered by LLDP before the tests start."""
    sc.wait_discovered()
    return sc, net


def test_switches_links_and_no_alarms(ready):
    sc, _net = ready
    switches = sc.request("GET", "/smi/v1/switches").json["switches"]
    assert all(s["connected"] for s in switches) and len(switches) == 14
    links = sc.request("GET", "/smi/v1/links").json["links"]
    assert len(links) == 21 and all(link["free"] == 40 for link in links)
    assert sc.request("GET", "/smi/v1/alarms").json["alarms"] == []


def test_nothing_flows_without_a_lightpath(ready):
    _sc, net = ready
    assert not net.ping("u0", "dc7", count=1)


def test_lightpath_carries_traffic_and_teardown_stops_it(ready):
    sc, net = ready
    resp = establish(sc, net.ip("u0"), net.ip("dc7"), service_type="vod")
    assert resp.status == 201, resp.json
    lp = resp.json
    assert lp["state"] == "up" and lp["route"][0] == "0" and lp["route"][-1] == "7"
    vid = 1000 + lp["wavelength"]
    assert lp["vlan_vid"] == vid
    try:
        assert net.ping("u0", "dc7", count=3)
        transfer = net.tcp_transfer("u0", "dc7", nbytes=2_000_000)
        assert transfer.ok, transfer.error
        assert vid_switches(net, vid) == {f"s{n}" for n in lp["route"]}
        assert sc.request("GET", f"/asi/v1/lightpaths/{lp['id']}", token=TOKEN).json["state"] \
            == "up"
    finally:
        assert teardown(sc, lp["id"]).status == 200
    assert vid_switches(net, vid) == set()
    assert not net.ping("u0", "dc7", count=2)
    assert sc.request("GET", f"/asi/v1/lightpaths/{lp['id']}", token=TOKEN).status == 404


def test_lightpaths_sharing_a_fibre_get_different_wavelengths(ready):
    sc, net = ready
    # u0 -> dc7 and u13 -> dc12... route both over 0-7: force the second one through it.
    first = establish(sc, net.ip("u0"), net.ip("dc7")).json
    second = establish(sc, net.ip("u0"), net.ip("dc12"), include_nodes=["7"]).json
    try:
        shared = set(first["links"]) & set(second["links"])
        assert shared, (first["links"], second["links"])
        assert first["wavelength"] != second["wavelength"]
        assert net.ping("u0", "dc7") and net.ping("u0", "dc12")
        links = {link["id"]: link for link in sc.request("GET", "/smi/v1/links").json["links"]}
        for link_id in shared:
            assert sorted(links[link_id]["used"]) == sorted(
                [first["wavelength"], second["wavelength"]])
    finally:
        teardown(sc, first["id"])
        teardown(sc, second["id"])


def test_tokens_and_ownership(ready):
    sc, net = ready
    assert establish(sc, net.ip("u1"), net.ip("dc4"), token="wrong").status == 401
    no_token = sc.request("POST", "/asi/v1/lightpaths", {"src": "1", "dst": "4"})
    assert no_token.status == 401 and no_token.json["error"] == "unauthorized"
    lp = establish(sc, net.ip("u1"), net.ip("dc4")).json
    try:
        assert sc.request("GET", f"/asi/v1/lightpaths/{lp['id']}", token=OTHER).status == 404
        assert teardown(sc, lp["id"], token=OTHER).status == 404
        assert sc.request("GET", "/asi/v1/lightpaths", token=OTHER).json["lightpaths"] == []
        assert net.ping("u1", "dc4")
    finally:
        assert teardown(sc, lp["id"]).status == 200


@pytest.mark.parametrize("body, status", [
    (b"{not json", 400), ({"src": "0"}, 400), ({"src": "0", "dst": "7", "colour": 1}, 400),
    ({"src": "0", "dst": "99"}, 422), ({"src": "10.9.9.9", "dst": "7"}, 422),
    ({"src": "0", "dst": "13", "max_hops": 1}, 409),
    ({"src": "0", "dst": "13", "max_delay_ms": 0.001}, 409),
    ({"src": "0", "dst": "13", "bandwidth_gbps": -1}, 400),
])
def test_bad_input_is_refused_and_changes_nothing(ready, body, status):
    sc, _net = ready
    before = sc.request("GET", "/smi/v1/links").json
    resp = sc.request("POST", "/asi/v1/lightpaths", body, token=TOKEN,
                      headers={"Content-Type": "application/json"})
    assert resp.status == status, resp.json
    assert set(resp.json) >= {"error", "reason"}
    assert sc.request("GET", "/smi/v1/links").json == before
    assert sc.request("GET", "/asi/v1/lightpaths", token=TOKEN).json["lightpaths"] == []
