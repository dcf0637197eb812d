"""Restoration on the fake network: a fibre fails, its lightpaths are re-routed make-before-break.

The SC runs on the six-node ring with every switch connected; a port status (or an LLDP loss)
takes a fibre down, the restorer's green thread re-routes with SA-PCE and the tests look at the
traffic, the flow tables, the TED, the DBM, the alarms and the AC's event stream.
"""
import os

import pytest

import openapi_check
from sc_app import flows
from sc_app.lightpath import DOWN, LIGHTPATH_COOKIE_TAG, LIGHTPATH_COOKIE_TAG_MASK, UP
from sc_harness import TABLE_FULL, sc, settle, state_dir  # noqa: F401 (fixtures)

SPEC_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi-sc.yaml")
LP = {"src": "10.1.0.1", "dst": "10.1.2.1"}  # route 0-1-2 on the ring


def fibre_down(sc, link_id, up=False):
    """The port at the fibre's first end goes down (or up): what the switch reports."""
    link = sc.topology.link(link_id)
    sc.core.pa.port_changed(sc.dpid(link.a), link.a_port, up)
    settle(sc)


def establish(sc, body=LP, ac="ac1"):
    reply = sc.client(ac).post("/asi/v1/lightpaths", body)
    assert reply.status == 201, reply.json
    return reply.json


def events(sc, what, ac="ac1"):
    return [e.data for e in sc.core.bus.recent(ac, 1000)
            if e.type == "lightpath" and e.data["event"] == what]


def active(sc):
    return sorted((a.kind, a.subject) for a in sc.core.db.list_alarms(active=True))


def held(sc, owner):
    return {w: sorted(links) for w, links in sc.core.ted.held(owner).items()}


def fibres_crossed(sc, src, dst):
    return [(hop.link, hop.packet.vlans) for hop in sc.forward(src, dst).fibres]


def test_a_failed_fibre_reroutes_the_lightpath_and_traffic_follows(sc):
    lp = establish(sc)
    assert lp["route"] == ["0", "1", "2"]
    old_cookie = int(lp["cookie"], 16)
    fibre_down(sc, "1-2")
    now = sc.core.service.lightpaths[lp["id"]]
    assert now.state == UP and now.route == ("0", "5", "4", "3", "2")
    assert "1-2" not in now.links and now.cookie != old_cookie
    # Both directions delivered over the new route, none of the old entries left anywhere.
    assert [n for n, _, _ in sc.delivered_to("10.1.0.1", "10.1.2.1")] == ["2"]
    assert [n for n, _, _ in sc.delivered_to("10.1.2.1", "10.1.0.1")] == ["0"]
    assert [link for link, _ in fibres_crossed(sc, "10.1.0.1", "10.1.2.1")] == list(now.links)
    assert sc.entries_with(old_cookie) == {}
    assert set(sc.entries_with(now.cookie)) == {sc.dpid(n) for n in now.route}
    # The TED holds the wavelength on the new route only; the DBM has the new record.
    assert held(sc, lp["id"]) == {now.wavelength: sorted(now.links)}
    assert sc.core.db.get_lightpath(lp["id"]) == now
    # The AC is told, with the old and the new route.
    (event,) = events(sc, "rerouted")
    assert event["old"]["route"] == ["0", "1", "2"] and event["old"]["links"] == ["0-1", "1-2"]
    assert event["lightpath"]["route"] == list(now.route)
    assert event["lightpath"]["cookie"] == f"{now.cookie:#018x}"
    assert event["restoration_ms"] >= 0
    (published,) = [e for e in sc.core.bus.recent("ac1") if e.data["event"] == "rerouted"]
    openapi_check.validator(openapi_check.load_spec(SPEC_FILE), "urn:cso-oaas:openapi-sc",
                            "/components/schemas/LightpathEvent").validate(
        {"type": published.type, "time": published.time, **published.data})
    assert active(sc) == [("link-down", "1-2")]
    assert sc.core.metrics.restorations.labels(outcome="rerouted")._value.get() == 1


def test_a_new_wavelength_is_taken_when_the_old_one_is_busy_on_the_new_route(sc):
    lp = establish(sc)
    establish(sc, {"src": "10.1.4.1", "dst": "10.1.3.1"}, ac="ac2")  # λ0 on 3-4
    assert lp["wavelength"] == 0
    fibre_down(sc, "0-1")
    now = sc.core.service.lightpaths[lp["id"]]
    assert now.route == ("0", "5", "4", "3", "2") and now.wavelength == 1
    assert {vlans for _, vlans in fibres_crossed(sc, "10.1.0.1", "10.1.2.1")} == {(1001,)}
    assert [n for n, _, _ in sc.delivered_to("10.1.2.1", "10.1.0.1")] == ["0"]
    assert held(sc, lp["id"]) == {1: sorted(now.links)}
    assert sc.core.ted.used("0-1") == () and sc.core.ted.used("1-2") == ()


def test_traffic_is_delivered_after_every_message_of_the_reroute(sc):
    """Make-before-break: no message of the re-route leaves the traffic without entries."""
    establish(sc)
    transport, send = sc.transport, sc.transport.send
    gaps = []

    def checked_send(dpid, msg):
        xid = send(dpid, msg)
        for src, dst in (("10.1.0.1", "10.1.2.1"), ("10.1.2.1", "10.1.0.1")):
            if not sc.delivered_to(src, dst):
                gaps.append((dpid, msg))
        return xid

    transport.send = checked_send
    fibre_down(sc, "1-2")
    assert sc.core.service.lightpaths["lp-1"].route == ("0", "5", "4", "3", "2")
    assert gaps == [] and sc.net.errors == []


def test_only_the_lightpaths_on_the_failed_fibre_move(sc):
    hit = establish(sc)
    spared = establish(sc, {"src": "10.1.3.1", "dst": "10.1.4.1"})
    flows_before = sc.entries_with(int(spared["cookie"], 16))
    fibre_down(sc, "1-2")
    assert sc.core.service.lightpaths[hit["id"]].route != tuple(hit["route"])
    assert sc.core.service.lightpaths[spared["id"]].route == tuple(spared["route"])
    assert sc.entries_with(int(spared["cookie"], 16)) == flows_before
    assert [e["lightpath"]["id"] for e in events(sc, "rerouted")] == [hit["id"]]


def test_lldp_losing_the_fibre_also_reroutes(sc):
    lp = establish(sc)
    link = sc.topology.link("1-2")
    sc.core.pa.lldp_link((sc.dpid(link.a), link.a_port), (sc.dpid(link.b), link.b_port), False)
    settle(sc)
    assert "1-2" not in sc.core.service.lightpaths[lp["id"]].links


def test_without_a_restoration_path_the_lightpath_is_down_until_the_fibre_returns(sc):
    lp = establish(sc)
    old = sc.core.service.lightpaths[lp["id"]]
    fibre_down(sc, "3-4")  # the ring is now a line: 1-2 is the only way
    fibre_down(sc, "1-2")
    down = sc.core.service.lightpaths[lp["id"]]
    assert down.state == DOWN and down.route == old.route and down.cookie == old.cookie
    assert "no restoration path" in down.reason
    assert [e["lightpath"]["state"] for e in events(sc, "down")] == [DOWN]
    assert sc.core.db.get_lightpath(lp["id"]).state == DOWN
    assert ("lightpath-down", lp["id"]) in active(sc)
    assert held(sc, lp["id"]) == {old.wavelength: sorted(old.links)}  # kept for its return
    # The fibre returns: re-installed on its own route, up again, alarms cleared.
    fibre_down(sc, "1-2", up=True)
    back = sc.core.service.lightpaths[lp["id"]]
    assert back.state == UP and back.route == old.route and back.reason is None
    assert [e["lightpath"]["state"] for e in events(sc, "up")] == [UP, UP]  # setup, return
    assert active(sc) == [("link-down", "3-4")]
    assert [n for n, _, _ in sc.delivered_to("10.1.0.1", "10.1.2.1")] == ["2"]
    assert set(sc.entries_with(old.cookie)) == {sc.dpid(n) for n in old.route}


def test_a_down_lightpath_is_rerouted_when_another_fibre_returns(sc):
    lp = establish(sc)
    fibre_down(sc, "3-4")
    fibre_down(sc, "1-2")
    assert sc.core.service.lightpaths[lp["id"]].state == DOWN
    fibre_down(sc, "3-4", up=True)
    now = sc.core.service.lightpaths[lp["id"]]
    assert now.state == UP and now.route == ("0", "5", "4", "3", "2")
    assert [n for n, _, _ in sc.delivered_to("10.1.0.1", "10.1.2.1")] == ["2"]
    assert ("lightpath-down", lp["id"]) not in active(sc)


def test_a_failed_reroute_install_gives_everything_back_and_marks_down(sc):
    lp = establish(sc)
    old = sc.core.service.lightpaths[lp["id"]]
    sc.transport.refuse[sc.dpid("4")] = TABLE_FULL
    fibre_down(sc, "1-2")
    now = sc.core.service.lightpaths[lp["id"]]
    assert now.state == DOWN and "re-route failed" in now.reason
    assert held(sc, lp["id"]) == {old.wavelength: sorted(old.links)}
    cookies = {e.cookie for t in sc.net.tables.values() for e in t.entries}
    assert {c for c in cookies if c & LIGHTPATH_COOKIE_TAG_MASK == LIGHTPATH_COOKIE_TAG} \
        <= {old.cookie}  # the new route's entries are gone


def test_a_lightpath_torn_down_meanwhile_is_not_resurrected(sc):
    lp = establish(sc)
    client = sc.client("ac1")
    link = sc.topology.link("1-2")
    sc.core.pa.port_changed(sc.dpid(link.a), link.a_port, False)  # queued, not yet run
    assert client.delete(f"/asi/v1/lightpaths/{lp['id']}").status in (200, 204)
    settle(sc)
    assert lp["id"] not in sc.core.service.lightpaths
    assert sc.core.ted.held(lp["id"]) == {}
    cookies = {e.cookie for t in sc.net.tables.values() for e in t.entries}
    assert not any(c & LIGHTPATH_COOKIE_TAG_MASK == LIGHTPATH_COOKIE_TAG for c in cookies)


def test_split_for_reroute_keeps_the_overlap_check_off_ingress_entries_only(sc):
    establish(sc)
    lp = sc.core.service.lightpaths["lp-1"]
    rest, ingress = flows.split_for_reroute(flows.lightpath_flows(sc.topology, lp))
    assert set(ingress) == {sc.dpid("0"), sc.dpid("2")}
    assert all(not m.flags for msgs in ingress.values() for m in msgs)
    assert all(m.flags for msgs in rest.values() for m in msgs)
    assert all(m.priority >= flows.PRIO_TRANSIT for msgs in rest.values() for m in msgs)
