"""ALTO on the real SC (``cso sc``) with the NSFNET emulation: the IRD and cost maps over HTTP.

Every GET resource the IRD lists answers with its exact media type; the routingcost map has a
cost for every user site to every DC site; a lightpath set up over ASI changes the
routingcost and bw-residual maps (and their tags), and its teardown brings both back.
"""
from __future__ import annotations


import pytest

pytestmark = pytest.mark.integration

TOKEN = "demo-ac-token"
ERROR = "application/alto-error+json"
DCS = ("1", "4", "7", "9", "12")  # NSFNET's data centres


def alto(sc, path: str, media_type: str, token: str = TOKEN):
    return sc.request("GET", path, token=token, headers={"Accept": f"{media_type},{ERROR}"})


@pytest.fixture(scope="module")
def ready(sc, net):
    """Every fibre up and discovered by LLDP before the tests start."""
    sc.wait_discovered()
    return sc


def test_the_ird_and_every_map_it_lists(ready):
    sc = ready
    ird = alto(sc, "/alto/directory", "application/alto-directory+json")
    assert ird.status == 200, ird.body
    assert ird.headers["Content-Type"] == "application/alto-directory+json"
    for rid, entry in ird.json["resources"].items():
        if "accepts" in entry:
            continue  # POST resources: see the unit tests
        got = alto(sc, entry["uri"], entry["media-type"])
        assert got.status == 200 and got.headers["Content-Type"] == entry["media-type"], rid
    assert alto(sc, "/alto/directory", "application/alto-directory+json", token="").status == 401


def test_costs_follow_a_lightpath_set_up_and_torn_down(ready):
    sc = ready

    def maps():
        return {name: alto(sc, f"/alto/costmap/{name}", "application/alto-costmap+json").json
                for name in ("num-routingcost", "num-bw-residual")}

    before = maps()
    routing = before["num-routingcost"]["cost-map"]
    assert all(f"dc-{dc}" in routing[f"user-{node}"] for node in range(14) for dc in DCS)
    assert before["num-bw-residual"]["cost-map"]["user-0"]["dc-7"] == 400_000_000  # 40 x 10G

    lp = sc.request("POST", "/asi/v1/lightpaths", {"src": "10.1.0.1", "dst": "10.2.7.1"},
                    token=TOKEN)
    assert lp.status == 201, lp.body
    try:
        during = maps()
        for name in before:
            assert during[name]["meta"]["vtag"] != before[name]["meta"]["vtag"], name
        assert during["num-bw-residual"]["cost-map"]["user-0"]["dc-7"] == 390_000_000
        assert during["num-routingcost"]["cost-map"]["user-0"]["dc-7"] > routing["user-0"]["dc-7"]
    finally:
        assert sc.request("DELETE", f"/asi/v1/lightpaths/{lp.json['id']}",
                          token=TOKEN).status == 200
    assert maps() == before
