"""Restoration on the fake network: a fibre fails, its lightpaths are re-routed make-before-break.

The SC runs on the six-node ring with every switch connected; a port status (or an LLDP loss)
takes a fibre down, the restorer's green thread re-routes with SA-PCE and the tests look at the
traffic, the flow tables, the TED, the DBM, the alarms and the AC's event stream.
"""
import os

import pytest
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

import openapi_check
from sc_app import flows
from sc_app.lightpath import DOWN, LIGHTPATH_COOKIE_TAG, LIGHTPATH_COOKIE_TAG_MASK, UP
from sc_app.pce import NoPath
from sc_harness import (TABLE_FULL, all_ports, make_sc, sc, settle,  # noqa: F401 (fixtures)
                        state_dir)

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
    openapi_check.validator(openapi_check.load_spec(SPEC_FILE),
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


# -- parallel restoration: every lightpath of a fibre in one round ----------------------------

#: Three lightpaths across fibre 1-2 (routes 0-1-2, 1-2 and 1-2-3), each with its own ends.
CROSSING = [LP, {"src": "10.1.1.1", "dst": "10.1.2.1"}, {"src": "10.1.1.1", "dst": "10.1.3.1"}]


def barriers_by_dpid(sent):
    counts = {}
    for dpid, msg in sent:
        if isinstance(msg, parser.OFPBarrierRequest):
            counts[dpid] = counts.get(dpid, 0) + 1
    return counts


def lightpath_cookies(sc):
    return {e.cookie for t in sc.net.tables.values() for e in t.entries
            if e.cookie & LIGHTPATH_COOKIE_TAG_MASK == LIGHTPATH_COOKIE_TAG}


def assert_wavelengths_consistent(sc):
    """Every wavelength held is its lightpath's on its links, and each lightpath holds only its."""
    for lp in sc.core.service.lightpaths.values():
        assert held(sc, lp.id) == {lp.wavelength: sorted(lp.links)}, lp.id


def test_every_lightpath_of_the_fibre_moves_in_one_round_of_three_barriers_per_switch(sc):
    sc.core.restorer.recovery.batch_interval = 60  # one batch, however slow the planning
    lps = [establish(sc, body) for body in CROSSING]
    assert all("1-2" in lp["links"] for lp in lps)
    before = len(sc.transport.sent)
    fibre_down(sc, "1-2")
    now = [sc.core.service.lightpaths[lp["id"]] for lp in lps]
    assert all(n.state == UP and "1-2" not in n.links for n in now)
    # New transit/egress entries, ingress swaps, old entries out: one barrier per switch each.
    assert max(barriers_by_dpid(sc.transport.sent[before:]).values()) == 3
    assert lightpath_cookies(sc) == {n.cookie for n in now}
    assert_wavelengths_consistent(sc)
    for body in CROSSING:
        assert sc.delivered_to(body["src"], body["dst"])
        assert sc.delivered_to(body["dst"], body["src"])
    assert sorted(e["lightpath"]["id"] for e in events(sc, "rerouted")) == sorted(
        lp["id"] for lp in lps)
    assert sc.core.metrics.restorations.labels(outcome="rerouted")._value.get() == 3
    assert sc.transport.reply_errors == [] and sc.net.errors == []


def test_one_failed_install_marks_only_its_lightpath_down_and_rolls_only_it_back(sc):
    """The ingress swap of the lightpath from node 0 is refused at s0 (after s2 swapped):
    that one is rolled back and down; the two others are re-routed in the same round."""
    lps = [establish(sc, body) for body in CROSSING]
    old = {lp["id"]: sc.core.service.lightpaths[lp["id"]] for lp in lps}
    originals = {lp.cookie for lp in old.values()}

    def refuse(dpid, msg):
        if (dpid == sc.dpid("0") and getattr(msg, "command", None) == ofp.OFPFC_ADD
                and msg.cookie not in originals
                and flows.PRIO_INGRESS <= msg.priority < flows.PRIO_TRANSIT):
            return TABLE_FULL
        return None

    sc.transport.refuse_when = refuse
    fibre_down(sc, "1-2")
    victim, *others = [sc.core.service.lightpaths[lp["id"]] for lp in lps]
    assert victim.state == DOWN and "re-route failed" in victim.reason
    assert victim.cookie == old[victim.id].cookie and victim.route == old[victim.id].route
    assert held(sc, victim.id) == {victim.wavelength: sorted(victim.links)}
    assert all(o.state == UP and "1-2" not in o.links for o in others)
    assert_wavelengths_consistent(sc)
    # Nothing of the victim's new route stays; the others carry traffic.
    assert lightpath_cookies(sc) <= {victim.cookie} | {o.cookie for o in others}
    for body in CROSSING[1:]:
        assert sc.delivered_to(body["src"], body["dst"])
    assert active(sc) == [("lightpath-down", victim.id), ("link-down", "1-2")]
    assert [e["lightpath"]["id"] for e in events(sc, "down")] == [victim.id]
    # The fibre returns: the victim is re-installed on its own route.
    sc.transport.refuse_when = None
    fibre_down(sc, "1-2", up=True)
    back = sc.core.service.lightpaths[victim.id]
    assert back.state == UP and back.route == old[victim.id].route
    assert sc.delivered_to("10.1.0.1", "10.1.2.1") and sc.delivered_to("10.1.2.1", "10.1.0.1")


def test_a_second_fibre_failing_during_the_round_is_looked_at_again(sc):
    """4-5 fails while the re-route over 0-5-4-3-2 is being installed: the lightpath was not
    on 4-5 when it failed, but the round in flight is queued again; with the ring cut twice
    there is no path left, so it is down (holding its new route) until 4-5 returns."""
    lp = establish(sc)
    send, cut = sc.transport.send, []

    def send_and_cut(dpid, msg):
        if not cut and isinstance(msg, parser.OFPFlowMod) and msg.cookie != int(lp["cookie"], 16) \
                and msg.command == ofp.OFPFC_ADD:
            cut.append(dpid)
            link = sc.topology.link("4-5")
            sc.core.pa.port_changed(sc.dpid(link.a), link.a_port, False)
        return send(dpid, msg)

    sc.transport.send = send_and_cut
    fibre_down(sc, "1-2")
    now = sc.core.service.lightpaths[lp["id"]]
    assert cut and now.state == DOWN and "no restoration path" in now.reason
    assert now.route == ("0", "5", "4", "3", "2")  # moved, then broken again
    assert held(sc, lp["id"]) == {now.wavelength: sorted(now.links)}
    assert ("lightpath-down", lp["id"]) in active(sc)
    fibre_down(sc, "4-5", up=True)
    back = sc.core.service.lightpaths[lp["id"]]
    assert back.state == UP and back.route == now.route
    assert [n for n, _, _ in sc.delivered_to("10.1.0.1", "10.1.2.1")] == ["2"]


def test_an_unexpected_failure_of_one_lightpath_does_not_stop_the_round(sc, monkeypatch):
    lps = [establish(sc, body) for body in CROSSING]
    plan = sc.core.restorer.recovery._plan_reroute

    def broken_for_the_first(old, since):
        if old.id == lps[0]["id"]:
            raise RuntimeError("boom")
        return plan(old, since)

    monkeypatch.setattr(sc.core.restorer.recovery, "_plan_reroute", broken_for_the_first)
    fibre_down(sc, "1-2")
    states = [sc.core.service.lightpaths[lp["id"]] for lp in lps]
    assert "1-2" in states[0].links and all("1-2" not in s.links for s in states[1:])
    assert sc.core.metrics.handler_errors.labels(handler="restoration")._value.get() == 1
    assert_wavelengths_consistent(sc)


# -- a fibre already down when the SC starts again ------------------------------------------

def restart_with_fibres_down(state_dir, first, down, absent=()):
    """``first`` closes; a new SC on the same state and switch tables connects every switch
    but ``absent``, the ports of the fibres ``down`` not live (cut while the SC was away)."""
    tables = first.net.tables
    first.close()
    second = make_sc(state_dir, connect=False)
    second.net.tables = tables  # fail-secure switches keep their entries
    dead = {}
    for link_id in down:
        link = second.topology.link(link_id)
        dead.setdefault(link.a, set()).add(link.a_port)
        dead.setdefault(link.b, set()).add(link.b_port)
    for node_id in second.topology.nodes:
        if node_id not in absent:
            ports = [p for p in all_ports(second.topology, node_id)
                     if p not in dead.get(node_id, ())]
            second.connect(node_id, ports, discover=False)
    settle(second)
    return second


def test_after_a_restart_a_fibre_already_down_reroutes_the_lightpaths_on_it(state_dir):
    first = make_sc(state_dir)
    lp = establish(first)
    spared = establish(first, {"src": "10.1.3.1", "dst": "10.1.4.1"})
    spared_entries = first.entries_with(int(spared["cookie"], 16))
    second = restart_with_fibres_down(state_dir, first, ["1-2"])
    try:
        now = second.core.service.lightpaths[lp["id"]]
        assert now.state == UP and now.route == ("0", "5", "4", "3", "2")
        assert [n for n, _, _ in second.delivered_to("10.1.0.1", "10.1.2.1")] == ["2"]
        assert [n for n, _, _ in second.delivered_to("10.1.2.1", "10.1.0.1")] == ["0"]
        assert second.entries_with(int(lp["cookie"], 16)) == {}
        assert held(second, lp["id"]) == {now.wavelength: sorted(now.links)}
        assert [e["old"]["route"] for e in events(second, "rerouted")] == [["0", "1", "2"]]
        assert second.entries_with(int(spared["cookie"], 16)) == spared_entries
        assert second.core.service.lightpaths[spared["id"]].route == tuple(spared["route"])
        assert ("link-down", "1-2") in active(second)
        assert second.core.check_after_start() is False  # once only
    finally:
        second.close()


def test_after_a_restart_with_no_path_left_the_lightpath_is_down_until_the_fibre_returns(
        state_dir):
    first = make_sc(state_dir)
    lp = establish(first)
    second = restart_with_fibres_down(state_dir, first, ["1-2", "3-4"])
    try:
        down = second.core.service.lightpaths[lp["id"]]
        assert down.state == DOWN and "no restoration path" in down.reason
        assert ("lightpath-down", lp["id"]) in active(second)
        assert second.core.db.get_lightpath(lp["id"]).state == DOWN
        link = second.topology.link("1-2")
        for node, port in ((link.a, link.a_port), (link.b, link.b_port)):
            second.core.pa.port_changed(second.dpid(node), port, True)
        settle(second)
        back = second.core.service.lightpaths[lp["id"]]
        assert back.state == UP and back.route == ("0", "1", "2")
        assert ("lightpath-down", lp["id"]) not in active(second)
        assert second.delivered_to("10.1.0.1", "10.1.2.1")
    finally:
        second.close()


def test_a_switch_that_does_not_come_back_is_checked_after_the_grace_period(state_dir):
    first = make_sc(state_dir)
    lp = establish(first)
    second = restart_with_fibres_down(state_dir, first, [], absent=["1"])
    try:
        assert not second.core.start_checked  # waits for every switch
        assert second.core.service.lightpaths[lp["id"]].route == ("0", "1", "2")
        assert second.core.check_after_start(force=True) is True  # the discovery period
        settle(second)
        now = second.core.service.lightpaths[lp["id"]]
        assert now.state == UP and now.route == ("0", "5", "4", "3", "2")
        assert second.delivered_to("10.1.0.1", "10.1.2.1")
    finally:
        second.close()


def test_a_lightpath_without_a_wavelength_tries_again_once_the_others_gave_theirs_back(
        sc, monkeypatch):
    """The old routes' wavelengths are held until a wave is over (make-before-break): a
    lightpath SA-PCE finds none for waits for the next wave instead of going down."""
    lps = [establish(sc, body) for body in CROSSING]
    last = lps[-1]["id"]
    reserve, calls = sc.core.pce.reserve, []

    def busy_the_first_time(src, dst, constraints, owner):
        calls.append(owner)
        if owner == last and calls.count(owner) == 1:
            assert sc.core.ted.held(lps[0]["id"])  # the others' old routes still held
            return NoPath("no-wavelength", "all taken for now")
        return reserve(src, dst, constraints, owner=owner)

    monkeypatch.setattr(sc.core.pce, "reserve", busy_the_first_time)
    sc.core.restorer.recovery.batch_interval = 60
    before = len(sc.transport.sent)
    fibre_down(sc, "1-2")
    assert calls == [lp["id"] for lp in lps] + [last]
    now = [sc.core.service.lightpaths[lp["id"]] for lp in lps]
    assert all(n.state == UP and "1-2" not in n.links for n in now)
    assert max(barriers_by_dpid(sc.transport.sent[before:]).values()) == 6  # two waves
    assert_wavelengths_consistent(sc)
    assert active(sc) == [("link-down", "1-2")]


@pytest.mark.parametrize("interval, early", [(0.0, True), (60.0, False)])
def test_batches_go_to_the_switches_while_the_next_routes_are_computed(sc, monkeypatch,
                                                                       interval, early):
    """``batch_interval`` 0: every re-route is sent as soon as computed (the first one's
    barriers are out before the last route is computed); 60 s: all in one batch."""
    lps = [establish(sc, body) for body in CROSSING]
    reserve, barriers_seen = sc.core.pce.reserve, []

    def counting(src, dst, constraints, owner):
        barriers_seen.append(sum(barriers_by_dpid(sc.transport.sent[before:]).values()))
        return reserve(src, dst, constraints, owner=owner)

    monkeypatch.setattr(sc.core.pce, "reserve", counting)
    sc.core.restorer.recovery.batch_interval = interval
    before = len(sc.transport.sent)
    fibre_down(sc, "1-2")
    assert (barriers_seen[-1] > 0) is early
    assert all(sc.core.service.lightpaths[lp["id"]].state == UP for lp in lps)
    assert sorted(e["lightpath"]["id"] for e in events(sc, "rerouted")) == sorted(
        lp["id"] for lp in lps)
    assert_wavelengths_consistent(sc)
    for body in CROSSING:
        assert sc.delivered_to(body["src"], body["dst"])
