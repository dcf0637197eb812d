"""A switch that loses its OpenFlow connection is held before its fibres count as down.

The SC runs on the six-node ring with ``switch_hold`` set; a switch's connection drops (what
the Ryu app does on DEAD_DISPATCHER) while the fake switch keeps its table, as a fail-secure
switch does. Within the hold nothing moves but new routes avoid the switch; after it, the
lightpaths crossing it are re-routed as after a fibre cut.
"""
import eventlet
import pytest

from sc_app.lightpath import DOWN, UP
from sc_harness import make_sc, settle, state_dir  # noqa: F401 (fixture)

HOLD = 0.3
LP = {"src": "10.1.0.1", "dst": "10.1.2.1"}  # route 0-1-2 on the ring


@pytest.fixture
def sc(state_dir):
    instance = make_sc(state_dir, switch_hold=HOLD)
    yield instance
    instance.close()


def establish(sc, body=LP):
    reply = sc.client().post("/asi/v1/lightpaths", body)
    assert reply.status == 201, reply.json
    return sc.core.service.lightpaths[reply.json["id"]]


def active(sc):
    return sorted((a.kind, a.subject) for a in sc.core.db.list_alarms(active=True))


def lightpath_events(sc):
    return [e.data["event"] for e in sc.core.bus.recent("ac1", 1000) if e.type == "lightpath"]


def entries(sc, cookie):
    """dpid -> the entry objects carrying ``cookie`` (the same objects: untouched)."""
    return {dpid: [id(e) for e in table.entries if e.cookie == cookie]
            for dpid, table in sc.net.tables.items()}


def delivered(sc, src="10.1.0.1", dst="10.1.2.1"):
    return [node for node, _, _ in sc.delivered_to(src, dst)]


def test_a_switch_back_within_its_hold_moves_nothing(sc):
    lp = establish(sc)
    assert lp.route == ("0", "1", "2")
    before = entries(sc, lp.cookie)
    sc.disconnect("1")
    settle(sc)
    # Out of reach: alarmed, avoided by new routes; its fibres and the lightpath stay.
    assert active(sc) == [("switch-down", "1")]
    assert sc.core.service.lightpaths[lp.id] is lp and lp.state == UP
    assert all(sc.core.ted.intact(link) for link in ("0-1", "1-2"))
    assert not any(sc.core.ted.usable(link) for link in ("0-1", "1-2"))
    assert {s["node"]: s["held"] for s in sc.core.pa.snapshot()}["1"]
    assert delivered(sc) == ["2"] and delivered(sc, "10.1.2.1", "10.1.0.1") == ["0"]
    other = sc.client().post("/asi/v1/lightpaths", {"src": "10.1.5.1", "dst": "10.1.2.1"})
    assert other.status == 201 and "1" not in other.json["route"], other.json
    assert sc.client().post("/asi/v1/lightpaths",
                            {"src": "10.1.1.1", "dst": "10.1.3.1"}).status == 409
    # Back: reconciled, nothing of the lightpath sent again, the alarm cleared.
    sent = len(sc.transport.sent)
    sc.connect("1")
    settle(sc)
    assert not [msg for dpid, msg in sc.transport.sent[sent:]
                if getattr(msg, "cookie", None) == lp.cookie]
    assert entries(sc, lp.cookie) == before
    assert active(sc) == []
    # The hold's end comes and goes: nothing happens.
    eventlet.sleep(HOLD + 0.1)
    settle(sc)
    assert sc.core.service.lightpaths[lp.id] is lp and lp.state == UP
    assert lightpath_events(sc) == ["up", "up"]
    assert all(sc.core.ted.usable(link) for link in ("0-1", "1-2"))


def test_a_switch_not_back_after_its_hold_has_its_lightpaths_rerouted(sc):
    lp = establish(sc)
    sc.disconnect("1")
    eventlet.sleep(HOLD / 3)
    settle(sc)
    assert sc.core.service.lightpaths[lp.id].route == ("0", "1", "2")
    eventlet.sleep(HOLD)
    settle(sc)
    now = sc.core.service.lightpaths[lp.id]
    assert now.state == UP and now.route == ("0", "5", "4", "3", "2")
    assert not sc.core.ted.intact("0-1") and not sc.core.ted.intact("1-2")
    assert delivered(sc) == ["2"]
    assert lightpath_events(sc) == ["up", "rerouted"]
    assert not {s["node"]: s["held"] for s in sc.core.pa.snapshot()}["1"]
    # Back later: its fibres return, its stale entries go (the lightpath no longer crosses it).
    sc.connect("1")
    settle(sc)
    assert sc.entries_with(lp.cookie) == {}
    assert sc.core.ted.usable("0-1") and active(sc) == []


def test_a_neighbour_port_down_while_held_takes_the_fibre_down_at_once(sc):
    lp = establish(sc)
    sc.disconnect("1")
    link = sc.topology.link("0-1")
    end = (link.a, link.a_port) if link.a == "0" else (link.b, link.b_port)
    sc.core.pa.port_changed(sc.dpid(end[0]), end[1], False)
    settle(sc)
    assert not sc.core.ted.intact("0-1") and sc.core.ted.intact("1-2")
    assert ("link-down", "0-1") in active(sc)
    assert sc.core.service.lightpaths[lp.id].route == ("0", "5", "4", "3", "2")


def test_ryu_forgetting_a_held_switchs_links_is_not_a_fibre_loss(sc):
    lp = establish(sc)
    sc.disconnect("1")
    for link_id in ("0-1", "1-2"):
        link = sc.topology.link(link_id)
        a, b = (sc.dpid(link.a), link.a_port), (sc.dpid(link.b), link.b_port)
        sc.core.pa.lldp_link(a, b, False)
        sc.core.pa.lldp_link(b, a, False)
    settle(sc)
    assert all(sc.core.ted.intact(link) for link in ("0-1", "1-2"))
    assert sc.core.service.lightpaths[lp.id] is lp


def test_a_reroute_the_held_switch_blocked_goes_through_when_it_is_back(sc):
    lp = establish(sc)
    sc.disconnect("4")  # the only way around 0-1-2 is 0-5-4-3-2
    link = sc.topology.link("1-2")
    sc.core.pa.port_changed(sc.dpid(link.a), link.a_port, False)
    settle(sc)
    assert sc.core.service.lightpaths[lp.id].state == DOWN
    sc.connect("4")
    settle(sc)
    now = sc.core.service.lightpaths[lp.id]
    assert now.state == UP and now.route == ("0", "5", "4", "3", "2")
    assert delivered(sc) == ["2"]


def test_without_a_hold_a_disconnected_switch_takes_its_fibres_down_at_once(state_dir):
    sc = make_sc(state_dir, switch_hold=0)
    try:
        lp = establish(sc)
        sc.disconnect("1")
        settle(sc)
        assert not sc.core.ted.intact("0-1")
        assert sc.core.service.lightpaths[lp.id].route == ("0", "5", "4", "3", "2")
    finally:
        sc.close()
