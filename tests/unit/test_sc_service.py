"""SA over ASI: lightpaths set up and torn down through Ryu's router, checked in the data plane.

Every request goes through the REST controllers as an AC sends it; the switches are fake
OpenFlow 1.3 tables, so the tests ask where traffic goes rather than which messages were sent.
"""
import eventlet
import pytest

from fake_of13 import ipv4
from sc_harness import TABLE_FULL, make_sc, sc, stream_events, state_dir  # noqa: F401 (fixtures)
from sc_app.lightpath import VID_BASE, host_mac

LP = "/asi/v1/lightpaths"
U0, U3 = "10.1.0.1", "10.1.3.1"  # user hosts at nodes 0 and 3 of the ring


def establish(client, src, dst, **extra):
    reply = client.post(LP, {"src": src, "dst": dst, **extra})
    assert reply.status == 201, reply.body
    return reply.json


def vids_on_fibres(sc, src, dst):
    """[(link, VIDs of the packet on it)] for IPv4 from host ``src`` to ``dst``."""
    return [(hop.link, hop.packet.vlans) for hop in sc.forward(src, dst).fibres]


def test_establish_answers_the_lightpath_and_carries_traffic_both_ways(sc):
    ac1 = sc.client("ac1")
    reply = ac1.post(LP, {"src": U0, "dst": U3, "service_type": "vod", "bandwidth_gbps": 10})
    assert reply.status == 201, reply.body
    lp = reply.json
    assert reply.headers["Location"].endswith(f"{LP}/{lp['id']}")
    assert (lp["route"][0], lp["route"][-1], lp["hops"]) == ("0", "3", len(lp["route"]) - 1)
    assert (lp["state"], lp["owner"], lp["service_type"]) == ("up", "ac1", "vod")
    assert lp["vlan_vid"] == VID_BASE + lp["wavelength"]
    tag = (VID_BASE + lp["wavelength"],)
    # Tagged with the wavelength's VID on every fibre of the route, untagged at the far host.
    assert vids_on_fibres(sc, U0, U3) == [(link, tag) for link in lp["links"]]
    assert sc.delivered_to(U0, U3) == [("3", 1, ipv4(U0, U3))]
    assert vids_on_fibres(sc, U3, U0) == [(link, tag) for link in reversed(lp["links"])]
    assert sc.delivered_to(U3, U0) == [("0", 1, ipv4(U3, U0))]
    # Only this service's traffic is carried: nothing is flooded.
    assert sc.delivered_to(U0, "10.1.2.1") == []
    assert sc.delivered_to("10.2.0.1", U3) == []
    for link in lp["links"]:
        assert sc.core.ted.owner(link, lp["wavelength"]) == lp["id"]
    assert ac1.get(f"{LP}/{lp['id']}").json == lp


def test_a_local_connection_joins_two_hosts_of_one_node_without_a_wavelength(sc):
    ac1 = sc.client("ac1")
    before = sc.ted_state()
    lp = establish(ac1, "10.1.3.1", "10.2.3.1")
    assert (lp["route"], lp["links"], lp["hops"]) == (["3"], [], 0)
    assert (lp["wavelength"], lp["vlan_vid"]) == (None, None)
    assert sc.delivered_to("10.1.3.1", "10.2.3.1") == [("3", 2, ipv4("10.1.3.1", "10.2.3.1"))]
    assert sc.delivered_to("10.2.3.1", "10.1.3.1") == [("3", 1, ipv4("10.2.3.1", "10.1.3.1"))]
    assert sc.ted_state() == before
    assert ac1.delete(f"{LP}/{lp['id']}").status == 200
    assert sc.delivered_to("10.1.3.1", "10.2.3.1") == []
    assert sc.ted_state() == before


def test_teardown_removes_the_entries_stops_traffic_and_frees_the_wavelength(sc):
    ac1 = sc.client("ac1")
    before = sc.ted_state()
    lp = establish(ac1, U0, U3)
    cookie = int(lp["cookie"], 16)
    assert set(sc.entries_with(cookie)) == {sc.dpid(n) for n in lp["route"]}
    assert sc.ted_state() != before
    reply = ac1.delete(f"{LP}/{lp['id']}")
    assert reply.status == 200, reply.body
    assert (reply.json["id"], reply.json["state"]) == (lp["id"], "deleted")
    assert sc.entries_with(cookie) == {}
    assert sc.delivered_to(U0, U3) == [] and sc.delivered_to(U3, U0) == []
    assert sc.ted_state() == before
    assert sc.core.db.get_lightpath(lp["id"]) is None
    assert ac1.get(f"{LP}/{lp['id']}").status == 404
    assert ac1.delete(f"{LP}/{lp['id']}").status == 404
    assert ac1.get(LP).json == {"lightpaths": []}
    # The wavelength is free again: the same request gets it back.
    again = establish(ac1, U0, U3)
    assert (again["route"], again["wavelength"]) == (lp["route"], lp["wavelength"])
    assert again["id"] != lp["id"] and again["cookie"] != lp["cookie"]


def test_two_lightpaths_on_one_link_get_different_wavelengths_and_both_carry_traffic(sc):
    ac1, ac2 = sc.client("ac1"), sc.client("ac2")
    first = establish(ac1, U0, U3)
    second = establish(ac2, "10.2.0.1", "10.2.3.1")
    shared = set(first["links"]) & set(second["links"])
    assert shared
    assert first["wavelength"] != second["wavelength"]
    for link in shared:
        assert set(sc.core.ted.used(link)) == {first["wavelength"], second["wavelength"]}
    assert sc.delivered_to(U0, U3) == [("3", 1, ipv4(U0, U3))]
    assert sc.delivered_to("10.2.3.1", "10.2.0.1") == [("0", 2, ipv4("10.2.3.1", "10.2.0.1"))]
    assert {hop.packet.vlans for hop in sc.forward("10.2.0.1", "10.2.3.1").fibres} == {
        (VID_BASE + second["wavelength"],)}


ASI_ROUTES = [("GET", LP), ("POST", LP), ("GET", f"{LP}/lp-1"), ("DELETE", f"{LP}/lp-1"),
              ("POST", "/asi/v1/evaluate"), ("GET", "/asi/v1/topology"),
              ("GET", "/asi/v1/events?max_seconds=0")]
BAD_AUTH = {"absent": None, "unknown": "Bearer token-ac9", "wrong-case": "Bearer TOKEN-AC1",
            "prefix": "Bearer token-ac", "basic": "Basic token-ac1", "no-scheme": "token-ac1",
            "empty": "Bearer ", "two-tokens": "Bearer token-ac1 token-ac2"}


@pytest.mark.parametrize("method, path", ASI_ROUTES)
@pytest.mark.parametrize("auth", BAD_AUTH.values(), ids=BAD_AUTH.keys())
def test_a_bad_token_gets_401_json_and_changes_nothing(sc, method, path, auth):
    lp = establish(sc.client("ac1"), U0, U3)
    assert lp["id"] == "lp-1"
    before = sc.state()
    headers = {} if auth is None else {"Authorization": auth}
    reply = sc.client(None).request(method, path, {"src": "0", "dst": "3", "dsts": ["3"]},
                                    headers=headers)
    assert reply.status == 401, reply.body
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert reply.content_type == "application/json"
    assert reply.json["error"] == "unauthorized" and reply.json["reason"]
    assert sc.state() == before


def test_an_ac_sees_and_changes_only_its_own_lightpaths(sc):
    ac1, ac2 = sc.client("ac1"), sc.client("ac2")
    mine = establish(ac1, U0, U3)
    theirs = establish(ac2, "10.2.0.1", "10.2.3.1")
    before = sc.state()
    for client, other in ((ac1, theirs), (ac2, mine)):
        for method in ("GET", "DELETE"):
            reply = client.request(method, f"{LP}/{other['id']}")
            assert reply.status == 404, reply.body
            assert reply.json["error"] == "not-found"
    assert sc.state() == before
    assert sc.delivered_to("10.2.0.1", "10.2.3.1") == [("3", 2, ipv4("10.2.0.1", "10.2.3.1"))]
    assert [lp["id"] for lp in ac1.get(LP).json["lightpaths"]] == [mine["id"]]
    assert [lp["id"] for lp in ac2.get(LP).json["lightpaths"]] == [theirs["id"]]
    every = sc.client(None).get("/smi/v1/lightpaths").json["lightpaths"]
    assert {(lp["id"], lp["owner"]) for lp in every} == {(mine["id"], "ac1"),
                                                         (theirs["id"], "ac2")}


def test_evaluate_answers_each_destination_and_reserves_nothing(sc):
    ac1 = sc.client("ac1")
    dsts = ["3", "10.2.3.1", "nope", "1", "0", "10.2.1.1"]
    before = sc.state()
    reply = ac1.post("/asi/v1/evaluate", {"src": "0", "dsts": dsts})
    assert reply.status == 200, reply.body
    assert sc.state() == before
    body = reply.json
    assert (body["src"], body["node"]) == ("0", "0")
    results = {r["dst"]: r for r in body["results"]}
    assert [r["dst"] for r in body["results"]] == dsts
    to3 = results["3"]
    assert to3["feasible"] is True
    assert (to3["hops"], to3["route"], to3["free_wavelengths"]) == (3, ["0", "1", "2", "3"], 4)
    assert to3["delay_ms"] == pytest.approx(300 * 0.005)  # 100 + 120 + 80 km at 5 us/km
    assert to3["te_cost"] > 0
    assert {k: v for k, v in results["10.2.3.1"].items() if k != "dst"} == \
        {k: v for k, v in to3.items() if k != "dst"}
    assert results["1"]["hops"] == 1
    for dst, reason in (("nope", "unknown-endpoint"), ("0", "same-node"),
                        ("10.2.1.1", "unknown-endpoint")):
        assert results[dst]["feasible"] is False
        assert results[dst]["reason"] == reason and results[dst]["detail"]
    # It reflects occupancy: one wavelength fewer on the route once a lightpath holds it.
    establish(ac1, U0, U3)
    after = ac1.post("/asi/v1/evaluate", {"src": "0", "dsts": ["3"]}).json["results"][0]
    assert after["free_wavelengths"] == 3


def test_evaluate_applies_the_constraints(sc):
    reply = sc.client("ac1").post("/asi/v1/evaluate", {"src": "0", "dsts": ["3", "1"],
                                                       "max_hops": 2})
    results = {r["dst"]: r for r in reply.json["results"]}
    assert results["3"]["feasible"] is False and results["3"]["reason"] == "hops-exceeded"
    assert results["1"]["feasible"] is True


@pytest.mark.parametrize("view, key", [("full", "links"), ("virtual-node", "links"),
                                       ("dc-mesh", "links")])
def test_topology_views(sc, view, key):
    reply = sc.client("ac1").get(f"/asi/v1/topology?view={view}")
    assert reply.status == 200, reply.body
    assert reply.json["view"] == view and isinstance(reply.json[key], list)


def test_topology_defaults_to_full_and_rejects_a_bad_view(sc):
    ac1 = sc.client("ac1")
    full = ac1.get("/asi/v1/topology").json
    assert full["view"] == "full" and len(full["nodes"]) == 6 and len(full["links"]) == 6
    assert len(ac1.get("/asi/v1/topology?view=dc-mesh").json["links"]) == 6 * 2
    for query in ("view=mesh", "view=", "view=full&view=dc-mesh", "colour=red"):
        reply = ac1.get(f"/asi/v1/topology?{query}")
        assert reply.status == 400, query
        assert reply.json["error"] in ("invalid-parameter", "unknown-parameter")


def test_events_reach_the_owner_only(sc):
    ac1, ac2 = sc.client("ac1"), sc.client("ac2")
    streams = [eventlet.spawn(c.get, "/asi/v1/events?max_seconds=0.1") for c in (ac1, ac2)]
    eventlet.sleep(0)  # both subscribed before anything happens
    lp = establish(ac1, U0, U3)
    mine, theirs = (s.wait() for s in streams)
    assert mine.status == 200 and mine.headers["Content-Type"] == "text/event-stream"
    events = [e for e in stream_events(mine.body) if e["event"] == "lightpath"]
    assert [(e["data"]["event"], e["data"]["lightpath"]["id"]) for e in events] == \
        [("up", lp["id"])]
    assert [e for e in stream_events(theirs.body) if e["event"] == "lightpath"] == []


def test_events_replay_after_last_event_id_for_the_owner_only(sc):
    ac1, ac2 = sc.client("ac1"), sc.client("ac2")
    lp = establish(ac1, U0, U3)
    ac1.delete(f"{LP}/{lp['id']}")
    replay = {"Last-Event-ID": "0"}
    mine = stream_events(ac1.get("/asi/v1/events?max_seconds=0.02", headers=replay).body)
    assert [e["event"] for e in mine] == ["lightpath"] * 3
    assert [e["data"]["event"] for e in mine] == ["up", "tearing-down", "deleted"]
    assert {e["data"]["lightpath"]["id"] for e in mine} == {lp["id"]}
    assert [int(e["id"]) for e in mine] == sorted(int(e["id"]) for e in mine)
    assert stream_events(ac2.get("/asi/v1/events?max_seconds=0.02", headers=replay).body) == []


@pytest.mark.parametrize("query, headers", [("max_seconds=soon", {}),
                                            ("max_seconds=1", {"Last-Event-ID": "x"}),
                                            ("since=1", {})])
def test_events_reject_bad_parameters(sc, query, headers):
    reply = sc.client("ac1").get(f"/asi/v1/events?{query}", headers=headers)
    assert reply.status == 400 and reply.json["reason"]


FAILURES = {
    "absent": (lambda t, dpid: t.absent.add(dpid), "switch-unreachable"),
    "error": (lambda t, dpid: t.refuse.__setitem__(dpid, TABLE_FULL), "switch-error"),
    "silent": (lambda t, dpid: t.silent.add(dpid), "barrier-timeout"),
}


@pytest.mark.parametrize("node", ["0", "2", "3"])  # ingress, transit, egress
@pytest.mark.parametrize("failure", FAILURES)
def test_a_failed_install_answers_503_and_leaves_nothing_behind(state_dir, failure, node):
    sc = make_sc(state_dir, barrier_timeout=0.05)
    try:
        ac1 = sc.client("ac1")
        before = sc.state()
        breaks, code = FAILURES[failure]
        breaks(sc.transport, sc.dpid(node))
        reply = ac1.post(LP, {"src": U0, "dst": U3})
        assert reply.status == 503, reply.body
        assert reply.json["error"] == "install-failed"
        assert (reply.json["reason"], reply.json["dpid"]) == (code, sc.dpid(node))
        assert sc.state() == before  # TED, DBM, SA and every flow table
        assert sc.transport.reply_errors == []
        assert ac1.get(LP).json == {"lightpaths": []}
        assert sc.delivered_to(U0, U3) == []
        metrics = sc.client(None).get("/metrics").body.decode()
        assert f'cso_requests_blocked_total{{reason="{code}"}} 1.0' in metrics
        # The switch is back: the same request now succeeds.
        sc.transport.absent.clear(), sc.transport.refuse.clear(), sc.transport.silent.clear()
        assert ac1.post(LP, {"src": U0, "dst": U3}).status == 201
        assert sc.delivered_to(U0, U3) == [("3", 1, ipv4(U0, U3))]
    finally:
        sc.close()


@pytest.mark.parametrize("failure", ["absent", "error"])
def test_replies_arriving_after_a_failure_are_absorbed_quietly(sc, failure):
    FAILURES[failure][0](sc.transport, sc.dpid("2"))
    assert sc.client("ac1").post(LP, {"src": U0, "dst": U3}).status == 503
    eventlet.sleep(0)  # let every reply in flight arrive
    assert sc.transport.reply_errors == []


def test_no_wavelength_left_is_409_with_the_reason_and_changes_nothing(sc):
    ac1 = sc.client("ac1")
    # W = 4 on both ways round the ring between the two DCs: 8 lightpaths fill it.
    lps = [establish(ac1, f"10.2.0.{n}", f"10.2.3.{n}") for n in range(1, 9)]
    assert sorted((tuple(lp["route"]), lp["wavelength"]) for lp in lps) == sorted(
        (route, w) for route in (("0", "1", "2", "3"), ("0", "5", "4", "3")) for w in range(4))
    before = sc.state()
    reply = ac1.post(LP, {"src": "10.2.0.9", "dst": "10.2.3.9"})
    assert reply.status == 409, reply.body
    assert (reply.json["error"], reply.json["reason"]) == ("no-path", "no-wavelength")
    assert reply.json["detail"]
    assert sc.state() == before
    metrics = sc.client(None).get("/metrics").body.decode()
    assert 'cso_requests_blocked_total{reason="no-wavelength"} 1.0' in metrics
    for n in range(1, 9):
        assert sc.delivered_to(f"10.2.0.{n}", f"10.2.3.{n}") == [
            ("3", 2, ipv4(f"10.2.0.{n}", f"10.2.3.{n}"))]
    # One torn down: its wavelength serves the next request.
    assert ac1.delete(f"{LP}/{lps[5]['id']}").status == 200
    last = establish(ac1, "10.2.0.9", "10.2.3.9")
    assert (last["route"], last["wavelength"]) == (lps[5]["route"], lps[5]["wavelength"])


def test_concurrent_requests_never_share_a_wavelength(sc):
    ac1 = sc.client("ac1")
    requests = [eventlet.spawn(ac1.post, LP, {"src": f"10.2.0.{n}", "dst": f"10.2.3.{n}"})
                for n in range(1, 11)]
    replies = [r.wait() for r in requests]
    assert sorted(r.status for r in replies) == [201] * 8 + [409] * 2
    up = [r.json for r in replies if r.status == 201]
    held = [(link, lp["wavelength"]) for lp in up for link in lp["links"]]
    assert len(held) == len(set(held))
    for lp in up:
        assert sc.delivered_to(lp["src"], lp["dst"]) == [("3", 2, ipv4(lp["src"], lp["dst"]))]
        assert {hop.packet.vlans for hop in sc.forward(lp["src"], lp["dst"]).fibres} == {
            (VID_BASE + lp["wavelength"],)}


def test_teardown_with_a_switch_gone_frees_the_wavelength_and_cleans_up_on_return(sc):
    def occupancy():
        return {link["id"]: (link["free"], link["owners"]) for link in sc.ted_state()["links"]}

    ac1 = sc.client("ac1")
    before = occupancy()
    lp = establish(ac1, U0, U3)
    sc.disconnect("2")  # a transit switch
    assert ac1.delete(f"{LP}/{lp['id']}").status == 200
    assert occupancy() == before
    cookie = int(lp["cookie"], 16)
    assert set(sc.entries_with(cookie)) == {sc.dpid("2")}  # stale, unreachable
    sc.connect("2")
    assert sc.entries_with(cookie) == {}


@pytest.mark.parametrize("src, dst", [("99", "3"), ("0", "10.1.42.1"), ("10.2.1.1", "3"),
                                      ("10.3.0.1", "3"), ("0", "10.1.3.0"), ("host-a", "3")])
def test_an_unknown_endpoint_is_422(sc, src, dst):
    before = sc.state()
    reply = sc.client("ac1").post(LP, {"src": src, "dst": dst})
    assert reply.status == 422, reply.body
    assert reply.json["error"] == "unknown-endpoint"
    assert reply.json["field"] == ("src" if src != "0" else "dst")
    assert sc.state() == before


@pytest.mark.parametrize("owner", ["ac1", "ac2"])
@pytest.mark.parametrize("src, dst", [(U0, U3), (U3, U0), ("0", U3), (U0, "3"), ("0", "3")])
def test_a_second_service_between_the_same_endpoints_is_409(sc, owner, src, dst):
    first = establish(sc.client("ac1"), U0, U3)
    before = sc.state()
    reply = sc.client(owner).post(LP, {"src": src, "dst": dst})
    assert reply.status == 409, reply.body
    assert reply.json["error"] == "endpoint-in-use"
    # Another AC is not told which lightpath is in the way.
    assert (first["id"] in reply.json["reason"]) == (owner == "ac1")
    assert sc.state() == before


def test_distinct_hosts_between_the_same_nodes_are_distinct_services(sc):
    ac1 = sc.client("ac1")
    establish(ac1, U0, U3)
    establish(ac1, "10.2.0.1", U3)
    establish(ac1, "10.2.0.2", "10.2.3.7")
    assert len(ac1.get(LP).json["lightpaths"]) == 3


def test_a_restarted_sc_restores_lightpaths_and_wavelengths(state_dir):
    first = make_sc(state_dir)
    lp = establish(first.client("ac1"), U0, U3)
    ted = first.ted_state()
    first.close()
    second = make_sc(state_dir)
    try:
        assert second.client("ac1").get(f"{LP}/{lp['id']}").json == lp
        assert second.ted_state()["links"] == ted["links"]
        # The switches were told to re-install it when they reconnected.
        assert second.delivered_to(U0, U3) == [("3", 1, ipv4(U0, U3))]
        assert establish(second.client("ac1"), "10.2.0.1", "10.2.3.1")["id"] != lp["id"]
    finally:
        second.close()


# -- a migrated VM: its address attached at another DC node (dst_node / src_node) ----------

def test_a_dc_host_address_attached_at_another_dc_node_is_served_there(sc):
    ac1 = sc.client("ac1")
    vm, user = "10.2.3.5", "10.1.1.1"  # a VM of dc3 that now lives at node 0's DC
    lp = establish(ac1, user, vm, dst_node="0")
    assert (lp["route"][0], lp["route"][-1]) == ("1", "0")
    assert lp["dst_endpoint"] == {"node": "0", "attachments": [
        {"port": 2, "net": "10.2.3.5/32", "mac": host_mac("10.2.0.1")}]}
    sent = ipv4(user, vm, eth_dst=host_mac("10.2.3.1"))  # the ARP proxy's answer: dc3's MAC
    trace = sc.forward(user, vm, sent)
    assert [(d, port) for d, port, _ in trace.delivered] == [(sc.dpid("0"), 2)]
    assert trace.delivered[0][2].eth_dst == host_mac("10.2.0.1")
    # The VM's replies enter at node 0's DC port.
    back = sc.net.forward(sc.topology, sc.dpid("0"), 2, ipv4(vm, user))
    assert [(d, port) for d, port, _ in back.delivered] == [(sc.dpid("1"), 1)]
    # One lightpath per endpoint pair, wherever the address is attached: break before make.
    again = ac1.post(LP, {"src": user, "dst": vm})
    assert (again.status, again.json["error"]) == (409, "endpoint-in-use")
    assert ac1.delete(f"{LP}/{lp['id']}").status == 200
    assert sc.forward(user, vm, sent).delivered == []
    home = establish(ac1, user, vm)
    assert home["route"][-1] == "3" and "mac" not in home["dst_endpoint"]["attachments"][0]


def test_src_node_attaches_the_source_and_survives_a_restart(state_dir):
    first = make_sc(state_dir)
    lp = establish(first.client("ac1"), "10.2.3.5", "10.1.1.1", src_node="0")
    assert lp["route"][0] == "0" and lp["src_endpoint"]["node"] == "0"
    first.close()
    second = make_sc(state_dir)
    try:
        again = second.client("ac1").get(f"{LP}/{lp['id']}").json
        assert again["src_endpoint"] == lp["src_endpoint"]
        assert second.core.service.lightpaths[lp["id"]].src_endpoint.attachments[0].mac == \
            host_mac("10.2.0.1")
    finally:
        second.close()


def test_the_overlap_index_answers_as_a_scan_of_every_lightpath(sc):
    """`_check_overlap` looks only at lightpaths indexed by node or prefix: same answers,
    same lightpath named, as checking every held one in order, also after changes."""
    import dataclasses
    import random

    from sc_app import sa
    from sc_app.lightpath import Lightpath, lightpath_cookie, resolve_endpoint

    agent = sc.core.service
    topo = sc.topology
    rng = random.Random(3)
    texts = [n for n in topo.nodes] + [f"10.1.{n}.1" for n in topo.nodes] + [
        f"10.2.{n}.{h}" for n in topo.dc_nodes() for h in (1, 2, 5)]

    def endpoint(text):
        node = rng.choice(topo.dc_nodes()) if text.startswith("10.2.") and \
            rng.random() < 0.3 else None
        return resolve_endpoint(topo, text, node)

    def scan(owner, src, dst):
        for lp in agent.lightpaths.values():
            for a, b in ((lp.src_endpoint, lp.dst_endpoint),
                         (lp.dst_endpoint, lp.src_endpoint)):
                if sa._overlaps(a, src) and sa._overlaps(b, dst):
                    return f"lightpath {lp.id}" if lp.owner == owner else "another lightpath"
        return None

    def indexed(owner, src, dst):
        try:
            agent._check_overlap(owner, src, dst)
        except sa.SaError as exc:
            assert (exc.kind, exc.code) == (sa.ErrorKind.CONFLICT, "endpoint-in-use")
            return exc.reason.split(" already")[0]
        return None

    held, refused = [], [0, 0]
    for serial in range(1, 120):
        src, dst = endpoint(rng.choice(texts)), endpoint(rng.choice(texts))
        local = src.node == dst.node
        lp = Lightpath(f"lp-x{serial}", rng.choice(["ac1", "ac2"]), "vod", "s", "d", src, dst,
                       (src.node,) if local else (src.node, dst.node), () if local else ("f",),
                       None if local else 1, lightpath_cookie(10_000 + serial))
        agent._hold(lp)
        held.append(lp)
        if rng.random() < 0.3:
            agent._drop(rng.choice(held).id)
        if rng.random() < 0.3:
            victim = rng.choice(held)
            if victim.id in agent.lightpaths:
                agent._hold(dataclasses.replace(agent.lightpaths[victim.id], reason="new record"))
        for _ in range(10):
            owner = rng.choice(["ac1", "ac2"])
            a, b = endpoint(rng.choice(texts)), endpoint(rng.choice(texts))
            answer = indexed(owner, a, b)
            assert answer == scan(owner, a, b)
            refused[answer is not None] += 1
    assert min(refused) > 100  # both answers were put to the test
    for lp in list(agent.lightpaths.values()):
        agent._drop(lp.id)
    assert agent._by_endpoint == {} and agent._order == {}


# -- the SA without HTTP: typed requests in, domain errors out ---------------------------------

def test_the_sa_takes_typed_requests_and_refuses_with_domain_errors(sc):
    from sc_app.pce import Constraints
    from sc_app.sa import ErrorKind, EvaluateRequest, LightpathRequest, SaError

    agent = sc.core.service
    lp = agent.establish("ac1", LightpathRequest(U0, U3, service_type="vod",
                                                 constraints=Constraints(max_hops=3)))
    assert (lp.state, lp.service_type, lp.constraints) == ("up", "vod", {"max_hops": 3})
    assert sc.delivered_to(U0, U3) == [("3", 1, ipv4(U0, U3))]

    def refusal(call, *args):
        with pytest.raises(SaError) as info:
            call(*args)
        err = info.value
        return err.kind, err.code, err.reason, err.details

    assert refusal(agent.establish, "ac1", LightpathRequest("10.9.9.9", U3))[:2] == (
        ErrorKind.INVALID, "unknown-endpoint")
    assert refusal(agent.establish, "ac1", LightpathRequest(U0, U3))[:2] == (
        ErrorKind.CONFLICT, "endpoint-in-use")
    assert refusal(agent.establish, "ac2", LightpathRequest(
        "10.2.0.1", "10.2.3.1", constraints=Constraints(max_hops=1)))[:3] == (
        ErrorKind.NO_PATH, "no-path", "hops-exceeded")
    assert refusal(agent.establish, "ac2", LightpathRequest(
        "10.1.3.1", "10.2.3.1", protection="link")) == (
        ErrorKind.INVALID, "invalid-constraint",
        "a local connection (both endpoints at one node) has no path to protect",
        {"field": "protection"})
    assert refusal(agent.get, "ac2", lp.id)[:2] == (ErrorKind.NOT_FOUND, "not-found")
    answer = agent.evaluate(EvaluateRequest("0", ("3", "nowhere")))
    assert [r["feasible"] for r in answer["results"]] == [True, False]
    assert refusal(agent.evaluate, EvaluateRequest("nowhere", ("3",)))[::3] == (
        ErrorKind.INVALID, {"field": "src"})
    sc.transport.refuse[sc.dpid("1")] = TABLE_FULL
    kind, code, reason, details = refusal(agent.establish, "ac2",
                                          LightpathRequest("10.2.0.1", "10.2.3.1"))
    assert (kind, code, reason, details["dpid"]) == (
        ErrorKind.UNAVAILABLE, "install-failed", "switch-error", sc.dpid("1"))
    assert list(details) == ["detail", "dpid"] and details["detail"]


def test_the_asi_shell_maps_each_domain_error_to_the_status_it_always_had():
    from sc_app.asi import http_error
    from sc_app.sa import ErrorKind, SaError

    cases = [
        (SaError(ErrorKind.INVALID, "unknown-endpoint", "no such host", field="src"), 422),
        (SaError(ErrorKind.INVALID, "invalid-constraint", "unknown link 'x'"), 422),
        (SaError(ErrorKind.NOT_FOUND, "not-found", "no lightpath lp-9"), 404),
        (SaError(ErrorKind.CONFLICT, "endpoint-in-use", "lightpath lp-1 already ..."), 409),
        (SaError(ErrorKind.CONFLICT, "conflict", "already being torn down"), 409),
        (SaError(ErrorKind.NO_PATH, "no-path", "no-wavelength", detail=""), 409),
        (SaError(ErrorKind.NO_PATH, "no-path", "excluded", detail="node 3 is excluded"), 409),
        (SaError(ErrorKind.NO_PATH, "no-path", "unknown-node", detail="x"), 422),
        (SaError(ErrorKind.NO_PATH, "no-path", "same-node", detail="x"), 422),
        (SaError(ErrorKind.UNAVAILABLE, "install-failed", "switch-error", detail="table full",
                 dpid=3), 503),
    ]
    for err, status in cases:
        answer = http_error(err)
        assert answer.status == status, err
        assert answer.body() == {"error": err.code, "reason": err.reason, **err.details}


def test_only_the_rest_shells_speak_http():
    """The SA and every other part of the SC raise domain errors; HTTP is the shells' business."""
    import ast
    import pathlib

    shells = {"asi.py", "smi.py", "alto_api.py", "rest_base.py"}
    root = pathlib.Path(__file__).resolve().parents[2] / "sc_app"
    speaking = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(n == "cso_base.rest" or n.split(".")[0] in ("webob", "routes")
                   for n in names):
                speaking.add(path.name)
    assert speaking == shells
