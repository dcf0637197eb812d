"""Lightpath flows by behaviour: packets walked through a fake OpenFlow 1.3 NSFNET."""
import ipaddress

import pytest
from ryu.lib.packet import arp, ethernet, packet
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser
from ryu.ofproto.ofproto_protocol import ProtocolDesc

from fake_of13 import ETH_ARP, ETH_IPV6, ETH_LLDP, FakeNetwork, OFError, Packet, ipv4
from sc_app import flows
from sc_app.lightpath import (EndpointError, Lightpath, host_mac, lightpath_cookie,
                              resolve_endpoint)
from topologies.loader import load

TOPO = load("nsfnet")
DPID = {n: TOPO.nodes[n].dpid for n in TOPO.nodes}
USER, DC = 1, 2


def make_lp(serial, src, dst, route, wavelength):
    links = tuple(TOPO.link_between(a, b).id for a, b in zip(route, route[1:]))
    return Lightpath(f"lp-{serial}", "ac", "vod", src, dst, resolve_endpoint(TOPO, src),
                     resolve_endpoint(TOPO, dst), tuple(route), links, wavelength,
                     lightpath_cookie(serial))


def network(*lps):
    net = FakeNetwork()
    for node in TOPO.nodes.values():
        for msg in flows.base_flows():
            assert net.send(node.dpid, msg) is None
    for lp in lps:
        assert net.send_all(flows.lightpath_flows(TOPO, lp)) == []
    return net


def forward(net, node, port, pkt):
    return net.forward(TOPO, DPID[node], port, pkt)


# u0 to the DC at UrbanaChampaign the long way round, on wavelength 3.
LP = make_lp(1, "10.1.0.1", "10.2.7.1", ("0", "1", "3", "4", "6", "7"), 3)


def test_forward_direction_is_tagged_on_every_fibre_and_leaves_untagged():
    trace = forward(network(LP), "0", USER, ipv4("10.1.0.1", "10.2.7.1"))
    assert trace.delivered == [(DPID["7"], DC, ipv4("10.1.0.1", "10.2.7.1"))]
    assert [h.link for h in trace.fibres] == list(LP.links)
    assert {h.packet.vlans for h in trace.fibres} == {(1003,)}
    assert {entry.cookie for _, entry in trace.hit} == {LP.cookie}
    assert not (trace.dropped or trace.to_controller or trace.looped)


def test_reverse_direction_mirrors_it():
    trace = forward(network(LP), "7", DC, ipv4("10.2.7.1", "10.1.0.1"))
    assert trace.delivered == [(DPID["0"], USER, ipv4("10.2.7.1", "10.1.0.1"))]
    assert [h.link for h in trace.fibres] == list(reversed(LP.links))
    assert {h.packet.vlans for h in trace.fibres} == {(1003,)}


@pytest.mark.parametrize("src,dst", [("10.1.0.1", "10.2.7.9"),   # another VM of dc7
                                     ("10.1.0.1", "10.1.7.1"),   # u7, not in the service
                                     ("10.1.0.7", "10.2.7.1"),   # unknown source
                                     ("10.1.0.1", "10.2.4.1")])  # another DC
def test_traffic_the_lightpath_does_not_cover_is_dropped(src, dst):
    trace = forward(network(LP), "0", USER, ipv4(src, dst))
    assert trace.dropped and not trace.delivered and not trace.fibres


def test_covered_traffic_entering_the_wrong_port_is_dropped():
    trace = forward(network(LP), "0", DC, ipv4("10.1.0.1", "10.2.7.1"))
    assert trace.dropped and not trace.delivered


def test_node_endpoints_cover_both_access_ports_of_the_site():
    lp = make_lp(2, "0", "7", ("0", "7"), 0)
    net = network(lp)
    assert [d[:2] for d in forward(net, "0", USER, ipv4("10.1.0.1", "10.1.7.1")).delivered] \
        == [(DPID["7"], USER)]
    assert [d[:2] for d in forward(net, "0", USER, ipv4("10.1.0.1", "10.2.7.5")).delivered] \
        == [(DPID["7"], DC)]
    back = forward(net, "7", DC, ipv4("10.2.7.5", "10.1.0.1"))
    assert [d[:2] for d in back.delivered] == [(DPID["0"], USER)]
    assert {h.packet.vlans for h in back.fibres} == {(1000,)}
    # Node 0 has no DC: nothing leads to 10.2.0.0/24.
    assert not forward(net, "7", DC, ipv4("10.2.7.5", "10.2.0.1")).delivered


def test_a_narrower_service_wins_over_a_wider_one_at_the_ingress():
    site = make_lp(2, "0", "7", ("0", "7"), 0)
    vm = make_lp(3, "10.1.0.1", "10.2.7.5", ("0", "1", "3", "4", "6", "7"), 1)
    net = network(site, vm)
    to_vm = forward(net, "0", USER, ipv4("10.1.0.1", "10.2.7.5"))
    assert {h.packet.vlans for h in to_vm.fibres} == {(1001,)}
    assert to_vm.delivered[0][:2] == (DPID["7"], DC)
    to_host = forward(net, "0", USER, ipv4("10.1.0.1", "10.2.7.1"))
    assert {h.packet.vlans for h in to_host.fibres} == {(1000,)}


def test_ambiguous_services_are_refused_by_the_switch_not_merged():
    # u0 -> site 7 and site 0 -> dc7 overlap at the same ingress priority (/32+/24).
    net = network(make_lp(2, "10.1.0.1", "7", ("0", "7"), 0))
    other = make_lp(3, "0", "10.2.7.1", ("0", "7"), 1)
    errors = net.send_all(flows.lightpath_flows(TOPO, other))
    # Both ingress entries (one per direction) collide.
    assert [e.code for e in errors] == [ofp.OFPFMFC_OVERLAP] * 2


def test_two_lightpaths_sharing_links_on_different_wavelengths_do_not_interfere():
    other = make_lp(2, "10.1.1.1", "10.2.4.1", ("1", "3", "4"), 0)  # shares 1-3 and 3-4
    net = network(LP, other)
    first = forward(net, "0", USER, ipv4("10.1.0.1", "10.2.7.1"))
    second = forward(net, "1", USER, ipv4("10.1.1.1", "10.2.4.1"))
    assert first.delivered[0][:2] == (DPID["7"], DC)
    assert second.delivered[0][:2] == (DPID["4"], DC)
    assert [h.link for h in second.fibres] == ["1-3", "3-4"]
    assert {h.packet.vlans for h in second.fibres} == {(1000,)}
    assert {h.packet.vlans for h in first.fibres} == {(1003,)}


def test_a_wavelength_held_twice_on_a_link_is_refused_by_the_switch():
    clash = make_lp(2, "10.1.1.1", "10.2.4.1", ("1", "3", "4"), LP.wavelength)
    net = network(LP)
    errors = net.send_all(flows.lightpath_flows(TOPO, clash))
    assert errors and {e.code for e in errors} == {ofp.OFPFMFC_OVERLAP}


def test_teardown_by_cookie_removes_exactly_that_lightpath():
    other = make_lp(2, "10.1.1.1", "10.2.4.1", ("1", "3", "4"), 0)
    net = network(LP, other)
    before = {d: len(t.entries) for d, t in net.tables.items()}
    assert net.send_all(flows.delete_lightpath(LP.cookie, flows.lightpath_dpids(TOPO, LP))) == []
    assert all(LP.cookie not in net.cookies(d) for d in net.tables)
    assert not forward(net, "0", USER, ipv4("10.1.0.1", "10.2.7.1")).delivered
    assert forward(net, "1", USER, ipv4("10.1.1.1", "10.2.4.1")).delivered
    own = {dpid: len(msgs) for dpid, msgs in flows.lightpath_flows(TOPO, LP).items()}
    assert {d: len(t.entries) for d, t in net.tables.items()} == \
        {d: n - own.get(d, 0) for d, n in before.items()}
    assert all(flows.BASE_COOKIE in net.cookies(d) for d in net.tables)


def test_local_lightpath_inside_one_switch():
    net = network(make_lp(2, "10.1.7.1", "10.2.7.3", ("7",), None))
    trace = forward(net, "7", USER, ipv4("10.1.7.1", "10.2.7.3"))
    assert trace.delivered == [(DPID["7"], DC, ipv4("10.1.7.1", "10.2.7.3"))]
    assert not trace.fibres
    assert forward(net, "7", DC, ipv4("10.2.7.3", "10.1.7.1")).delivered[0][:2] == \
        (DPID["7"], USER)


def test_base_flows_send_arp_and_lldp_to_the_controller_and_drop_the_rest():
    net = network(LP)
    assert forward(net, "3", USER, Packet(ETH_ARP)).to_controller == [(DPID["3"], Packet(ETH_ARP))]
    assert forward(net, "3", 3, Packet(ETH_LLDP)).to_controller
    for pkt in (Packet(ETH_IPV6), ipv4("10.1.3.1", "10.1.5.1")):
        trace = forward(net, "3", USER, pkt)
        assert trace.dropped and not (trace.delivered or trace.fibres or trace.to_controller)


def test_lightpath_touches_exactly_its_route_switches():
    assert flows.lightpath_dpids(TOPO, LP) == {DPID[n] for n in LP.route}
    assert set(flows.lightpath_flows(TOPO, LP)) == set(flows.lightpath_dpids(TOPO, LP))


def test_teardown_message_is_one_delete_per_switch_over_all_tables():
    msgs = flows.delete_lightpath(LP.cookie, [1, 2])
    assert set(msgs) == {1, 2} and msgs[1][0] is not msgs[2][0]
    delete = msgs[1][0]
    assert (delete.command, delete.table_id, delete.cookie, delete.cookie_mask) == \
        (ofp.OFPFC_DELETE, ofp.OFPTT_ALL, LP.cookie, 2 ** 64 - 1)
    assert (delete.out_port, delete.out_group) == (ofp.OFPP_ANY, ofp.OFPG_ANY)


def test_every_message_serialises_for_a_real_switch():
    msgs = [m for ms in flows.lightpath_flows(TOPO, LP).values() for m in ms]
    msgs += flows.base_flows() + [flows.delete_by_cookie(LP.cookie), flows.barrier(),
                                  flows.arp_reply(arp_request("10.2.7.1"), 1, host_mac)]
    for msg in msgs:
        msg.datapath = ProtocolDesc(ofp.OFP_VERSION)
        msg.serialize()
        assert msg.buf


def arp_request(target, sender="10.1.0.1", mac="02:01:00:00:00:00", opcode=arp.ARP_REQUEST):
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet("ff:ff:ff:ff:ff:ff", mac, 0x0806))
    pkt.add_protocol(arp.arp(opcode=opcode, src_mac=mac, src_ip=sender,
                             dst_mac="00:00:00:00:00:00", dst_ip=target))
    pkt.serialize()
    return bytes(pkt.data)


def test_arp_reply_answers_for_known_hosts_on_the_asking_port():
    out = flows.arp_reply(arp_request("10.2.7.1"), 1, lambda ip: host_mac(ip, TOPO))
    assert isinstance(out, parser.OFPPacketOut) and out.in_port == ofp.OFPP_CONTROLLER
    assert [a.port for a in out.actions] == [1]
    reply = packet.Packet(out.data)
    eth, answer = reply.get_protocol(ethernet.ethernet), reply.get_protocol(arp.arp)
    assert (eth.dst, eth.src) == ("02:01:00:00:00:00", "02:02:00:00:00:07")
    assert (answer.opcode, answer.src_ip, answer.src_mac, answer.dst_ip, answer.dst_mac) == \
        (arp.ARP_REPLY, "10.2.7.1", "02:02:00:00:00:07", "10.1.0.1", "02:01:00:00:00:00")


@pytest.mark.parametrize("data", [arp_request("10.2.0.1"),              # node 0 has no DC
                                  arp_request("10.1.0.1"),              # gratuitous
                                  arp_request("10.1.3.1", opcode=arp.ARP_REPLY),
                                  b"\x00" * 60])
def test_arp_reply_stays_silent_otherwise(data):
    assert flows.arp_reply(data, 1, lambda ip: host_mac(ip, TOPO)) is None


# --- endpoints and the address plan --------------------------------------------------

def test_host_addresses_resolve_to_one_port_and_a_host_prefix():
    user, vm = resolve_endpoint(TOPO, "10.1.5.1"), resolve_endpoint(TOPO, "10.2.12.7")
    assert (user.node, user.ports, [str(n) for n in user.nets]) == ("5", (1,), ["10.1.5.1/32"])
    assert (vm.node, vm.ports, [str(n) for n in vm.nets]) == ("12", (2,), ["10.2.12.7/32"])


def test_node_ids_resolve_to_the_site_prefixes():
    assert resolve_endpoint(TOPO, "4").nets == (ipaddress.IPv4Network("10.1.4.0/24"),
                                                ipaddress.IPv4Network("10.2.4.0/24"))
    assert resolve_endpoint(TOPO, "4").ports == (1, 2)
    assert resolve_endpoint(TOPO, "0").ports == (1,)  # no DC at Seattle


@pytest.mark.parametrize("endpoint", ["10.2.0.1", "10.1.14.1", "10.3.1.1", "10.1.1.0",
                                      "10.1.1.255", "99", "Seattle", "", "::1"])
def test_unknown_endpoints_carry_a_reason_code(endpoint):
    with pytest.raises(EndpointError) as caught:
        resolve_endpoint(TOPO, endpoint)
    assert caught.value.code == "unknown-endpoint" and caught.value.reason


def test_host_mac_scheme():
    assert host_mac("10.1.3.1") == "02:01:00:00:00:03"
    assert host_mac("10.2.12.1") == host_mac("10.2.12.44") == "02:02:00:00:00:0c"
    assert host_mac("10.1.3.2") is None and host_mac("192.0.2.1") is None
    assert host_mac("nonsense") is None
    assert host_mac("10.2.0.1") == "02:02:00:00:00:00"
    assert host_mac("10.2.0.1", TOPO) is None and host_mac("10.1.14.1", TOPO) is None


def test_lightpath_record_states_and_json():
    assert LP.vlan_vid == 1003 and LP.hops == 5
    up = LP.with_state("up", now=LP.created_at + 1)
    assert up.state == "up" and up.updated_at > LP.updated_at
    with pytest.raises(ValueError):
        up.with_state("installing")
    doc = up.with_state("down", reason="fibre 3-4 cut").to_json()
    assert doc["route"] == list(LP.route) and doc["wavelength"] == 3 and doc["hops"] == 5
    assert doc["cookie"] == f"{LP.cookie:#018x}" and doc["reason"] == "fibre 3-4 cut"
    assert doc["dst_endpoint"] == {"node": "7",
                                   "attachments": [{"port": 2, "net": "10.2.7.1/32"}]}


def test_lightpath_record_rejects_an_inconsistent_route():
    with pytest.raises(ValueError):
        Lightpath("lp-9", "ac", "vod", "0", "7", resolve_endpoint(TOPO, "0"),
                  resolve_endpoint(TOPO, "7"), ("0", "7"), (), 0, lightpath_cookie(9))


# --- the fake itself, on the OpenFlow rules the tests above rely on ---------------------

def flow_mod(priority=10, cookie=1, command=ofp.OFPFC_ADD, port=3, **match):
    actions = [parser.OFPActionOutput(port)]
    return parser.OFPFlowMod(None, cookie=cookie, command=command, priority=priority,
                             match=parser.OFPMatch(**match), out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, instructions=[
                                 parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)])


def test_fake_add_replaces_identical_match_and_priority():
    net = FakeNetwork()
    net.send(1, flow_mod(cookie=1, in_port=1))
    net.send(1, flow_mod(cookie=2, in_port=1))
    net.send(1, flow_mod(priority=11, cookie=3, in_port=1))
    assert sorted(e.cookie for e in net.table(1).entries) == [2, 3]


def test_fake_delete_filters_by_cookie_mask_out_port_and_strictness():
    net = FakeNetwork()
    for cookie, port in ((0x10, 3), (0x11, 4), (0x20, 3)):
        net.send(1, flow_mod(cookie=cookie, port=port, in_port=cookie))
    delete = flows.delete_by_cookie(0x10, 0xF0)
    delete.out_port = 4
    net.send(1, delete)
    assert net.cookies(1) == {0x10, 0x20}
    net.send(1, flow_mod(priority=9, command=ofp.OFPFC_DELETE_STRICT, in_port=0x10))
    assert net.cookies(1) == {0x10, 0x20}  # wrong priority: strict delete misses it
    unbounded = parser.OFPFlowMod(None, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                  match=parser.OFPMatch())  # out_port left at 0
    net.send(1, unbounded)
    assert net.cookies(1) == {0x10, 0x20}


def test_fake_modify_never_inserts_and_keeps_the_cookie():
    net = FakeNetwork()
    net.send(1, flow_mod(command=ofp.OFPFC_MODIFY, in_port=1))
    assert net.table(1).entries == []
    net.send(1, flow_mod(cookie=7, in_port=1))
    net.send(1, flow_mod(cookie=8, command=ofp.OFPFC_MODIFY, port=9))
    (entry,) = net.table(1).entries
    assert entry.cookie == 7 and entry.outputs_to(9)


def test_fake_rejects_what_a_switch_rejects():
    net = FakeNetwork()
    assert net.send(1, flow_mod(ipv4_dst="10.0.0.1")).code == ofp.OFPBMC_BAD_PREREQ
    set_vid = parser.OFPFlowMod(None, match=parser.OFPMatch(in_port=1), instructions=[
        parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                     [parser.OFPActionSetField(vlan_vid=0x1000 | 5)])])
    assert isinstance(net.send(1, set_vid), OFError)
    assert net.table(1).entries == []


def test_fake_vlan_match_needs_a_tag():
    net = FakeNetwork()
    net.send(1, flow_mod(in_port=1, vlan_vid=0x1000 | 1003))
    assert net.table(1).lookup(1, Packet(0x0800, vlans=(1003,))) is not None
    assert net.table(1).lookup(1, Packet(0x0800)) is None
    assert net.table(1).lookup(1, Packet(0x0800, vlans=(1004,))) is None


# --- a migrated VM: its address attached at another DC node ------------------------------

def make_moved_lp(serial, src, dst, route, wavelength, dst_node):
    links = tuple(TOPO.link_between(a, b).id for a, b in zip(route, route[1:]))
    return Lightpath(f"lp-{serial}", "ac", "vm", src, dst, resolve_endpoint(TOPO, src),
                     resolve_endpoint(TOPO, dst, node=dst_node), tuple(route), links,
                     wavelength, lightpath_cookie(serial))


def test_an_address_attached_elsewhere_is_delivered_there_to_the_host_on_that_port():
    # VM 10.2.7.2 moved from dc7 to dc9; u5 still sends to dc7's MAC (the ARP proxy's answer).
    lp = make_moved_lp(2, "10.1.5.1", "10.2.7.2", ("5", "9"), 2, "9")
    assert lp.dst_endpoint.node == "9" and lp.dst_endpoint.attachments[0].mac == host_mac(
        "10.2.9.1")
    net = network(lp)
    sent = ipv4("10.1.5.1", "10.2.7.2", eth_dst=host_mac("10.2.7.1"))
    trace = forward(net, "5", USER, sent)
    assert trace.delivered == [(DPID["9"], DC, ipv4("10.1.5.1", "10.2.7.2",
                                                    eth_dst=host_mac("10.2.9.1")))]
    assert {h.packet.vlans for h in trace.fibres} == {(1002,)}
    # Nothing reaches the old DC, and the moved VM's replies are classified at node 9.
    assert not forward(net, "7", DC, ipv4("10.2.7.2", "10.1.5.1")).delivered
    back = forward(net, "9", DC, ipv4("10.2.7.2", "10.1.5.1", eth_dst=host_mac("10.1.5.1")))
    assert back.delivered == [(DPID["5"], USER, ipv4("10.2.7.2", "10.1.5.1",
                                                     eth_dst=host_mac("10.1.5.1")))]


def test_a_local_connection_to_a_moved_address_rewrites_the_mac_too():
    lp = make_moved_lp(2, "10.1.9.1", "10.2.7.2", ("9",), None, "9")
    net = network(lp)
    trace = forward(net, "9", USER, ipv4("10.1.9.1", "10.2.7.2"))
    assert trace.delivered == [(DPID["9"], DC, ipv4("10.1.9.1", "10.2.7.2",
                                                    eth_dst=host_mac("10.2.9.1")))]
    assert forward(net, "9", DC, ipv4("10.2.7.2", "10.1.9.1")).delivered[0][:2] == \
        (DPID["9"], USER)


def test_the_home_node_as_override_changes_nothing_and_the_attachment_round_trips():
    assert resolve_endpoint(TOPO, "10.2.7.2", node="7") == resolve_endpoint(TOPO, "10.2.7.2")
    moved = resolve_endpoint(TOPO, "10.2.7.2", node="12")
    assert moved.to_json() == {"node": "12", "attachments": [
        {"port": DC, "net": "10.2.7.2/32", "mac": host_mac("10.2.12.1")}]}
    assert type(moved).from_json(moved.to_json()) == moved


@pytest.mark.parametrize("endpoint,node", [("10.1.5.1", "9"),   # a user host stays home
                                           ("7", "9"),          # a node endpoint
                                           ("10.2.7.2", "5"),   # node 5 has no DC
                                           ("10.2.7.2", "42"),  # no such node
                                           ("10.2.7.2", "")])
def test_only_dc_host_addresses_move_and_only_to_dc_nodes(endpoint, node):
    with pytest.raises(EndpointError) as err:
        resolve_endpoint(TOPO, endpoint, node=node)
    assert err.value.code == "invalid-attachment"


def test_fake_applies_set_field_eth_dst():
    net = FakeNetwork()
    mod = parser.OFPFlowMod(None, match=parser.OFPMatch(in_port=USER), instructions=[
        parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [
            parser.OFPActionSetField(eth_dst="02:02:00:00:00:09"),
            parser.OFPActionOutput(DC)])])
    assert net.send(DPID["0"], mod) is None
    trace = forward(net, "0", USER, ipv4("10.1.0.1", "10.2.0.1"))
    assert trace.delivered == [(DPID["0"], DC, ipv4("10.1.0.1", "10.2.0.1",
                                                    eth_dst="02:02:00:00:00:09"))]
