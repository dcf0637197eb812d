"""PA: switches, ports and LLDP turned into TED state, alarms and the messages a switch needs.

The SC is built on the ring with no switch connected; each test plays the OpenFlow facts
(switch up/down, port status, LLDP) into PA and looks at the TED, the alarms and, through a
fake OpenFlow 1.3 table, at what the messages PA returns do to traffic.
"""
import pytest
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from fake_of13 import ETH_ARP, ETH_IPV6, ETH_LLDP, FakeNetwork, Packet, ipv4
from sc_app import flows, reconcile
from sc_app.lightpath import LIGHTPATH_COOKIE_TAG
from sc_harness import all_ports, fibre_ports, make_sc, state_dir  # noqa: F401 (fixture)


@pytest.fixture
def sc(state_dir):
    instance = make_sc(state_dir, connect=False)
    yield instance
    instance.close()


def active(sc):
    return sorted((a.kind, a.subject) for a in sc.core.db.list_alarms(active=True))


def usable(sc):
    return {link_id for link_id in sc.core.ted.link_ids if sc.core.ted.usable(link_id)}


def test_before_any_switch_connects_nothing_is_usable(sc):
    assert usable(sc) == set()
    assert not any(sc.core.ted.node_up)
    assert active(sc) == []
    assert sc.client("ac1").post("/asi/v1/lightpaths", {"src": "0", "dst": "3"}).status == 409


def _entry(cookie, priority, match, out_port):
    return parser.OFPFlowMod(None, cookie=cookie, priority=priority, match=match,
                             instructions=[parser.OFPInstructionActions(
                                 ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(out_port)])])


def test_switch_up_gets_base_entries_that_send_lldp_and_arp_up_and_drop_the_rest(sc):
    net = FakeNetwork()
    table = net.table(1)
    # Left from before the SC (re)started: a lightpath entry, and an operator's own entry.
    tagged = parser.OFPMatch(in_port=3, vlan_vid=ofp.OFPVID_PRESENT | 1001)
    table.apply(_entry(LIGHTPATH_COOKIE_TAG | 5, flows.PRIO_TRANSIT, tagged, 4))
    table.apply(_entry(0x99, 100, parser.OFPMatch(in_port=2), 1))
    msgs = sc.core.pa.switch_up(1, all_ports(sc.topology, "0"))
    assert net.send_all({1: msgs}) == []
    assert 1 in sc.core.pa.connected
    # Then reconciliation: the lightpath entry no recorded lightpath owns goes.
    stats = [e.stats() for e in table.entries if e.cookie >> 48 == LIGHTPATH_COOKIE_TAG >> 48]
    todo = reconcile.plan(sc.core.expected_flows(1), stats, sc.core.leave_cookie)
    assert net.send_all({1: todo.messages()}) == []
    lldp = net.forward(sc.topology, 1, 3, Packet(ETH_LLDP))
    assert [dpid for dpid, _pkt in lldp.to_controller] == [1]
    arp = net.forward(sc.topology, 1, 1, Packet(ETH_ARP))
    assert [dpid for dpid, _pkt in arp.to_controller] == [1]
    for in_port, packet in ((1, ipv4("10.1.0.1", "10.1.3.1")), (1, Packet(ETH_IPV6)),
                            (1, Packet(0x88B5)), (3, ipv4("10.1.9.1", "10.1.0.1", vlans=(1001,)))):
        trace = net.forward(sc.topology, 1, in_port, packet)
        assert (trace.delivered, trace.to_controller, trace.fibres) == ([], [], [])
        assert len(trace.dropped) == 1
    assert {e.cookie for e in table.entries} == {flows.BASE_COOKIE, 0x99}


def test_switch_up_removes_entries_of_lightpaths_that_no_longer_exist(state_dir):
    sc = make_sc(state_dir)
    try:
        lp = sc.client("ac1").post("/asi/v1/lightpaths", {"src": "10.1.0.1", "dst": "10.1.3.1"})
        cookie = int(lp.json["cookie"], 16)
        sc.core.service._forget(sc.core.service.lightpaths[lp.json["id"]])  # SC lost it
        sc.disconnect("1")
        sc.connect("1")
        assert sc.dpid("1") not in sc.entries_with(cookie)
    finally:
        sc.close()


def test_a_reconnecting_switch_gets_its_lightpath_entries_back(state_dir):
    sc = make_sc(state_dir)
    try:
        assert sc.client("ac1").post("/asi/v1/lightpaths", {"src": "10.1.0.1",
                                                            "dst": "10.1.3.1"}).status == 201
        sc.disconnect("2")
        sc.net.tables[sc.dpid("2")].entries.clear()  # it restarted empty
        assert sc.delivered_to("10.1.0.1", "10.1.3.1") == []
        sc.connect("2")
        assert sc.delivered_to("10.1.0.1", "10.1.3.1") == [
            ("3", 1, ipv4("10.1.0.1", "10.1.3.1"))]
    finally:
        sc.close()


def test_a_fibre_is_up_only_when_both_switches_are_connected_and_both_ports_live(sc):
    pa = sc.core.pa
    pa.switch_up(1, all_ports(sc.topology, "0"))
    assert usable(sc) == set()  # node 1 (dpid 2) not connected
    pa.switch_up(2, [1, 2])  # its fibre ports are not live yet
    assert usable(sc) == set()
    pa.port_changed(2, 3, True)  # port 3 of s1 is the 0-1 fibre
    assert usable(sc) == {"0-1"}
    pa.port_changed(2, 4, True)  # 1-2: node 2 still absent
    assert usable(sc) == {"0-1"}
    assert active(sc) == []  # a fibre to a switch not yet seen is no failure


def test_port_down_raises_link_down_and_makes_the_fibre_unusable_until_up(sc):
    sc.connect_all()
    assert usable(sc) == set(sc.core.ted.link_ids)
    sc.core.pa.port_changed(3, 4, False)  # s2 port 4: the 2-3 fibre
    assert "2-3" not in usable(sc)
    assert active(sc) == [("link-down", "2-3")]
    lp = sc.client("ac1").post("/asi/v1/lightpaths", {"src": "10.1.0.1", "dst": "10.1.3.1"})
    assert lp.json["route"] == ["0", "5", "4", "3"]
    sc.core.pa.port_changed(3, 4, True)
    assert "2-3" in usable(sc) and active(sc) == []


def test_a_port_without_a_fibre_changes_no_link(sc):
    sc.connect_all()
    sc.core.pa.port_changed(1, 1, False)  # the user host's port
    assert usable(sc) == set(sc.core.ted.link_ids) and active(sc) == []
    assert sc.core.pa.live_ports[1] == {2, 3, 4}


def test_port_status_of_a_disconnected_switch_is_ignored(sc):
    sc.core.pa.port_changed(1, 3, True)
    assert 1 not in sc.core.pa.live_ports and usable(sc) == set()


def test_lldp_on_a_fibre_of_the_topology_marks_it_discovered(sc):
    sc.connect_all()
    pa = sc.core.pa
    assert pa.discovered == set(sc.core.ted.link_ids)
    pa.lldp_link((1, 3), (2, 3), False)
    assert "0-1" not in pa.discovered


def test_lldp_losing_a_confirmed_fibre_takes_it_down_until_seen_again(sc):
    sc.connect_all()
    pa = sc.core.pa
    pa.lldp_link((1, 3), (2, 3), False)  # ports still live: a cut between them
    assert "0-1" not in usable(sc)
    assert active(sc) == [("link-down", "0-1")]
    pa.lldp_link((1, 3), (2, 3), True)
    assert "0-1" in usable(sc) and active(sc) == []
    pa.lldp_link((1, 3), (2, 3), False)
    pa.port_changed(1, 3, True)  # a port event at either end: the ports' state decides
    assert "0-1" in usable(sc) and active(sc) == []


def test_lldp_losing_a_fibre_it_never_saw_changes_nothing(sc):
    for node in sc.topology.nodes:
        sc.connect(node, discover=False)
    sc.core.pa.lldp_link((1, 3), (2, 3), False)
    assert usable(sc) == set(sc.core.ted.link_ids)


@pytest.mark.parametrize("src, dst", [((1, 3), (3, 3)), ((1, 3), (2, 4)), ((1, 1), (2, 3)),
                                      ((1, 3), (99, 3))])
def test_an_lldp_link_that_is_not_a_fibre_is_an_alarm_not_a_crash(sc, src, dst):
    sc.connect_all()
    pa = sc.core.pa
    discovered = set(pa.discovered)
    pa.lldp_link(src, dst, True)
    subject = f"{src[0]}:{src[1]}-{dst[0]}:{dst[1]}"
    assert active(sc) == [("unexpected-link", subject)]
    assert pa.discovered == discovered and usable(sc) == set(sc.core.ted.link_ids)
    pa.lldp_link(src, dst, True)  # seen again: still one alarm
    assert len(sc.core.db.list_alarms(active=True)) == 1
    pa.lldp_link(src, dst, False)
    assert active(sc) == []


def test_check_discovery_alarms_fibres_lldp_has_not_seen(sc):
    pa = sc.core.pa
    for node in sc.topology.nodes:
        sc.connect(node, discover=False)
    assert pa.check_discovery() == list(sc.core.ted.link_ids)
    assert active(sc) == sorted(("link-undiscovered", link) for link in sc.core.ted.link_ids)
    sc.discover_links()
    assert pa.check_discovery() == [] and active(sc) == []


def test_check_discovery_waits_for_both_switches(sc):
    sc.connect("0", discover=False)
    assert sc.core.pa.check_discovery() == []


def test_switch_down_raises_an_alarm_and_takes_its_fibres_down(sc):
    sc.connect_all()
    sc.disconnect("3")
    assert active(sc) == [("switch-down", "3")]  # its fibres are not "link-down" as well
    assert usable(sc) == {"0-1", "1-2", "4-5", "5-0"}
    assert not sc.core.ted.node_up[sc.core.ted.node_index["3"]]
    assert sc.client("ac1").post("/asi/v1/lightpaths", {"src": "0", "dst": "3"}).status == 409
    sc.connect("3")
    assert active(sc) == [] and usable(sc) == set(sc.core.ted.link_ids)


def test_switch_down_twice_or_of_an_unknown_switch_is_harmless(sc):
    sc.connect_all()
    sc.core.pa.switch_down(4)
    sc.core.pa.switch_down(4)
    sc.core.pa.switch_down(77)
    assert active(sc) == [("switch-down", "3")]
    assert len(sc.core.db.list_alarms(active=None)) == 1


def test_an_unknown_switch_is_an_alarm_and_gets_nothing(sc):
    assert sc.core.pa.switch_up(77, [1, 2, 3]) == []
    assert active(sc) == [("unknown-switch", "dpid 77")]
    assert 77 not in sc.core.pa.connected


def test_alarms_are_pushed_to_every_ac_and_counted(sc):
    sc.connect_all()
    sub = sc.core.bus.subscribe("ac2")
    sc.disconnect("2")
    event = sub.get(timeout=0)
    assert event.type == "alarm"
    assert (event.data["event"], event.data["alarm"]["kind"]) == ("raised", "switch-down")
    metrics = sc.core.metrics.render().decode()
    assert 'cso_alarms_active{kind="switch-down"} 1.0' in metrics
    assert "cso_switches_connected 5.0" in metrics
    sc.connect("2")
    assert sub.get(timeout=0).data["event"] == "cleared"
    assert 'cso_alarms_active{kind="switch-down"} 0.0' in sc.core.metrics.render().decode()


def test_snapshot_lists_every_switch(sc):
    sc.connect("0")
    snap = {s["node"]: s for s in sc.core.pa.snapshot()}
    assert snap["0"]["connected"] and snap["0"]["live_ports"] == [1, 2] + fibre_ports(
        sc.topology, "0")
    assert not snap["5"]["connected"]
    assert sc.core.pa.dpid_of("5") == 6 and sc.core.pa.dpid_of("nope") is None
