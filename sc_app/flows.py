"""OpenFlow 1.3 messages of the SC's flow programming (PA over SCI), built without a datapath.

Every function returns unbound messages of the module-level
``ofproto_v1_3_parser``; the Ryu app binds them to a datapath only when it
sends them (Faucet's pattern, see shared/STYLE.md). Each message object is
meant to be sent once: sending sets its datapath and xid.

Table 0 layout (priority: match -> actions; cookie)::

    65000  eth_type=LLDP                           -> CONTROLLER          BASE_COOKIE
    40000  eth_type=ARP                            -> CONTROLLER          BASE_COOKIE
    40000  eth_type=IPv6                           -> drop                BASE_COOKIE
    30100  in_port=fibre, vlan_vid, IPv4, ipv4_dst -> pop_vlan,
           [set eth_dst,] access                                      lightpath (egress)
    30000  in_port=fibre, vlan_vid                 -> fibre               lightpath (transit)
    20000+ in_port=access, IPv4, ipv4_src, ipv4_dst -> push_vlan,
           set vlan_vid, fibre                                           lightpath (ingress)
        0  (table-miss)                            -> drop                BASE_COOKIE

The ingress priority is 20000 plus both prefix lengths, so a narrower service
(a single VM) wins over a wider one (a whole site) like a longest-prefix
match. An attachment away from its home node (a migrated VM, see
`sc_app.lightpath`) also has its host's MAC written as eth_dst where the
frame leaves on the access port (egress, or a local connection). Lightpath
entries carry ``OFPFF_CHECK_OVERLAP``: an entry that would
silently replace or shadow another lightpath's at the same priority is refused
by the switch instead (the install then fails and rolls back). Nothing is ever
flooded: the topology has loops.
"""
from __future__ import annotations

import functools
import ipaddress
from typing import Any, Callable, Iterable, Optional

from ryu.lib.pack_utils import msg_pack_into
from ryu.lib.packet import arp, ether_types, ethernet, packet
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from sc_app.lightpath import Attachment, Endpoint, Lightpath
from topologies.model import Topology

PRIO_LLDP = 65000
PRIO_ARP = 40000
PRIO_IPV6 = 40000
PRIO_EGRESS = 30100
PRIO_TRANSIT = 30000
PRIO_INGRESS = 20000
PRIO_TABLE_MISS = 0

#: Cookie of the base entries ("BA" in the top 16 bits; lightpaths use "LP").
BASE_COOKIE = 0x4241 << 48
ALL_ONES = 0xFFFF_FFFF_FFFF_FFFF

FlowMessages = dict[int, list[parser.MsgBase]]


def _flow_mod(cookie: int, priority: int, match: parser.OFPMatch,
              actions: Iterable[parser.OFPAction], flags: int = 0) -> parser.OFPFlowMod:
    actions = list(actions)
    # An empty instruction list is OpenFlow's drop.
    instructions = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] \
        if actions else []
    return parser.OFPFlowMod(None, cookie=cookie, table_id=0, command=ofp.OFPFC_ADD,
                             priority=priority, buffer_id=ofp.OFP_NO_BUFFER, flags=flags,
                             match=match, instructions=instructions)


def _to_controller() -> list[parser.OFPAction]:
    return [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)]


def base_flows() -> list[parser.OFPFlowMod]:
    """Entries every switch gets on connect: LLDP and ARP to the SC, IPv6 and table-miss dropped."""
    return [
        _flow_mod(BASE_COOKIE, PRIO_LLDP, parser.OFPMatch(eth_type=ether_types.ETH_TYPE_LLDP),
                  _to_controller()),
        _flow_mod(BASE_COOKIE, PRIO_ARP, parser.OFPMatch(eth_type=ether_types.ETH_TYPE_ARP),
                  _to_controller()),
        _flow_mod(BASE_COOKIE, PRIO_IPV6, parser.OFPMatch(eth_type=ether_types.ETH_TYPE_IPV6),
                  []),
        _flow_mod(BASE_COOKIE, PRIO_TABLE_MISS, parser.OFPMatch(), []),
    ]


@functools.lru_cache(maxsize=4096)
def _net(net: ipaddress.IPv4Network) -> tuple[str, str]:
    return str(net.network_address), str(net.netmask)


@functools.lru_cache(maxsize=8192)
def _match_fields(fields: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """Ryu's own normalised, OXM-ordered form of ``fields`` (computed once per shape)."""
    return tuple(parser.OFPMatch(**dict(fields))._fields2)


@functools.lru_cache(maxsize=8192)
def _match_bytes(fields: tuple[tuple[str, Any], ...]) -> tuple[bytes, int]:
    """Ryu's serialisation of a match with these normalised fields: (padded bytes, length)."""
    match = parser.OFPMatch(_ordered_fields=list(fields))
    buf = bytearray()
    match.serialize(buf, 0)
    return bytes(buf), match.length


class OFPMatch(parser.OFPMatch):
    """Ryu's OFPMatch that serialises from a cache of the bytes Ryu gives the same fields."""

    def serialize(self, buf: bytearray, offset: int) -> int:
        """Write the match at ``offset`` of ``buf`` (as Ryu's would); its padded length."""
        data, self.length = _match_bytes(tuple(self._fields2))
        msg_pack_into(f"!{len(data)}s", buf, offset, data)
        return len(data)


def _match(**fields: Any) -> parser.OFPMatch:
    """``parser.OFPMatch(**fields)``, without redoing Ryu's work for every message.

    Lightpath entries repeat a few hundred match shapes (port, VID, prefixes): normalising
    the keyword form and serialising the fields cost ~45 µs per match in Ryu. The cached
    normalised fields of the same keywords give an equal match, and its serialisation
    comes from a cache of Ryu's own (tests/unit/test_flow_bytes.py compares the bytes).
    """
    return OFPMatch(_ordered_fields=list(_match_fields(tuple(fields.items()))))


def _deliver(dst: Attachment) -> list[parser.OFPAction]:
    """The last actions towards an access port: the host's MAC when it is not the prefix's own."""
    rewrite = [] if dst.mac is None else [parser.OFPActionSetField(eth_dst=dst.mac)]
    return rewrite + [parser.OFPActionOutput(dst.port)]


def _fibre_ports(topology: Topology, route: tuple[str, ...],
                 links: tuple[str, ...]) -> list[tuple[int, int]]:
    """Per hop j, (port leaving route[j], port entering route[j+1])."""
    ports = []
    for j, link_id in enumerate(links):
        link = topology.link(link_id)
        if {link.a, link.b} != {route[j], route[j + 1]}:
            raise ValueError(f"link {link_id} does not join {route[j]} and {route[j + 1]}")
        ports.append((link.port(route[j]), link.port(route[j + 1])))
    return ports


def _one_direction(topology: Topology, cookie: int, vid: Optional[int], src: Endpoint,
                   dst: Endpoint,
                   route: tuple[str, ...],
                   links: tuple[str, ...]) -> list[tuple[str, parser.OFPFlowMod]]:
    """(node, message) pairs carrying traffic from ``src`` to ``dst`` along ``route``."""
    flags = ofp.OFPFF_CHECK_OVERLAP
    tagged = None if vid is None else vid | ofp.OFPVID_PRESENT  # None: local, untagged
    hops = _fibre_ports(topology, route, links)
    out: list[tuple[str, parser.OFPFlowMod]] = []
    for s in src.attachments:
        for d in dst.attachments:
            if not hops and s.port == d.port:
                continue  # same node and port: the hosts do not need the switch
            match = _match(in_port=s.port, eth_type=ether_types.ETH_TYPE_IP,
                           ipv4_src=_net(s.net), ipv4_dst=_net(d.net))
            priority = PRIO_INGRESS + s.net.prefixlen + d.net.prefixlen
            if hops:
                actions = [parser.OFPActionPushVlan(ether_types.ETH_TYPE_8021Q),
                           parser.OFPActionSetField(vlan_vid=tagged),
                           parser.OFPActionOutput(hops[0][0])]
            else:
                actions = _deliver(d)
            out.append((route[0], _flow_mod(cookie, priority, match, actions, flags)))
    for j in range(1, len(hops)):
        match = _match(in_port=hops[j - 1][1], vlan_vid=tagged)
        out.append((route[j], _flow_mod(cookie, PRIO_TRANSIT, match,
                                        [parser.OFPActionOutput(hops[j][0])], flags)))
    if hops:
        for d in dst.attachments:
            match = _match(in_port=hops[-1][1], vlan_vid=tagged,
                           eth_type=ether_types.ETH_TYPE_IP, ipv4_dst=_net(d.net))
            actions = [parser.OFPActionPopVlan(), *_deliver(d)]
            out.append((route[-1], _flow_mod(cookie, PRIO_EGRESS, match, actions, flags)))
    return out


def lightpath_flows(topology: Topology, lp: Lightpath,
                    protection_first: Iterable[bool] = ()) -> FlowMessages:
    """All entries of ``lp``, both directions, keyed by dpid (every route node is a key).

    A protected lightpath (``lp.protection``) gets `protected_lightpath_flows`: its
    fast-failover groups come first in each switch's list, before the entries using them;
    ``protection_first``: the directions (reverse?) whose group the SC turned.
    """
    if lp.protection is not None:
        return protected_lightpath_flows(topology, lp, protection_first)
    forward = _one_direction(topology, lp.cookie, lp.vlan_vid, lp.src_endpoint,
                             lp.dst_endpoint, lp.route, lp.links)
    reverse = _one_direction(topology, lp.cookie, lp.vlan_vid, lp.dst_endpoint,
                             lp.src_endpoint, lp.route[::-1], lp.links[::-1])
    by_dpid: FlowMessages = {topology.nodes[n].dpid: [] for n in lp.route}
    for node, msg in forward + reverse:
        by_dpid[topology.nodes[node].dpid].append(msg)
    return by_dpid


#: Group ids of protected lightpaths: 2 * cookie serial + direction (0: src -> dst, 1: back).
_MAX_GROUP_ID = ofp.OFPG_MAX
_SERIAL_MASK = (1 << 48) - 1


def protection_group_id(cookie: int, reverse: bool) -> int:
    """The fast-failover group id of a lightpath's ingress in one direction (unique per both)."""
    group_id = 2 * (cookie & _SERIAL_MASK) + int(reverse)
    if not 0 < group_id <= _MAX_GROUP_ID:
        raise ValueError(f"cookie {cookie:#x} gives no valid group id")
    return group_id


def _failover_group(group_id: int, buckets: list[tuple[int, int]]) -> parser.OFPGroupMod:
    """An OFPGT_FF group: per (vid, port) a bucket tagging with ``vid`` out of ``port``,
    watching ``port``; the switch uses the first bucket whose port is live."""
    return parser.OFPGroupMod(None, ofp.OFPGC_ADD, ofp.OFPGT_FF, group_id, [
        parser.OFPBucket(watch_port=port, watch_group=ofp.OFPG_ANY, actions=[
            parser.OFPActionPushVlan(ether_types.ETH_TYPE_8021Q),
            parser.OFPActionSetField(vlan_vid=vid | ofp.OFPVID_PRESENT),
            parser.OFPActionOutput(port)])
        for vid, port in buckets])


#: The cookie given to the installer with group-only messages: no entry carries it, so a
#: failed batch's rollback (a cookie DELETE) removes nothing.
GROUP_BATCH_COOKIE = 0x4750 << 48


def _ends(topology: Topology, lp: Lightpath, reverse: bool) -> tuple[str, int, int]:
    """(ingress node, first working fibre port, first protection fibre port) of a direction."""
    assert lp.protection is not None
    w_route, w_links = ((lp.route[::-1], lp.links[::-1]) if reverse
                        else (lp.route, lp.links))
    prot = lp.protection
    p_route, p_links = ((prot.route[::-1], prot.links[::-1]) if reverse
                        else (prot.route, prot.links))
    return (w_route[0], _fibre_ports(topology, w_route, w_links)[0][0],
            _fibre_ports(topology, p_route, p_links)[0][0])


def protection_group(topology: Topology, lp: Lightpath, reverse: bool,
                     protection_first: bool = False,
                     modify: bool = False) -> tuple[int, parser.OFPGroupMod]:
    """(dpid, group mod) of one direction's fast-failover group at its ingress switch.

    ``protection_first``: the protection bucket comes first (the SC's switch-over of an
    end that cannot see the failure itself); else the working one does.
    ``modify``: an OFPGC_MODIFY of the existing group instead of an ADD.
    """
    assert lp.protection is not None and lp.vlan_vid is not None
    node, w_port, p_port = _ends(topology, lp, reverse)
    buckets = [(lp.vlan_vid, w_port), (lp.protection.vlan_vid, p_port)]
    if protection_first:
        buckets.reverse()
    group = _failover_group(protection_group_id(lp.cookie, reverse), buckets)
    if modify:
        group.command = ofp.OFPGC_MODIFY
    return topology.nodes[node].dpid, group


def delete_group(group_id: int) -> parser.OFPGroupMod:
    """A group DELETE (the switch also removes the entries that use the group)."""
    return parser.OFPGroupMod(None, ofp.OFPGC_DELETE, ofp.OFPGT_FF, group_id, [])


def _is_ingress(msg: parser.MsgBase) -> bool:
    return isinstance(msg, parser.OFPFlowMod) and PRIO_INGRESS <= msg.priority < PRIO_TRANSIT


def protected_lightpath_flows(topology: Topology, lp: Lightpath,
                              protection_first: Iterable[bool] = ()) -> FlowMessages:
    """A protected lightpath's groups and entries, both directions, keyed by dpid.

    Per direction, the ingress switch has one fast-failover group: bucket 1 pushes
    the working VID and outputs to the working route's first fibre (watching that
    port), bucket 2 pushes the protection VID towards the protection route's first
    fibre (watching that one). The ingress entries apply the group. Transit and
    egress entries exist on both routes (each with its own VID and in_port, so they
    never overlap); the egress switch accepts either. The group comes first in
    its switch's list: an entry naming a missing group would be refused. The directions in
    ``protection_first`` have the protection bucket first (the SC's switch-over).
    """
    turned = set(protection_first)
    prot = lp.protection
    if prot is None or lp.vlan_vid is None:
        raise ValueError(f"{lp.id} is not a protected lightpath")
    by_dpid: FlowMessages = {topology.nodes[n].dpid: [] for n in (*lp.route, *prot.route)}
    for reverse in (False, True):
        src, dst = ((lp.dst_endpoint, lp.src_endpoint) if reverse
                    else (lp.src_endpoint, lp.dst_endpoint))
        w_route, w_links = ((lp.route[::-1], lp.links[::-1]) if reverse
                            else (lp.route, lp.links))
        p_route, p_links = ((prot.route[::-1], prot.links[::-1]) if reverse
                            else (prot.route, prot.links))
        group_id = protection_group_id(lp.cookie, reverse)
        working = _one_direction(topology, lp.cookie, lp.vlan_vid, src, dst, w_route, w_links)
        backup = _one_direction(topology, lp.cookie, prot.vlan_vid, src, dst, p_route, p_links)
        ingress_dpid, group = protection_group(topology, lp, reverse, reverse in turned)
        by_dpid[ingress_dpid].append(group)
        for node, msg in working:
            if _is_ingress(msg):
                msg = _flow_mod(lp.cookie, msg.priority, msg.match,
                                [parser.OFPActionGroup(group_id)], msg.flags)
            by_dpid[topology.nodes[node].dpid].append(msg)
        for node, msg in backup:
            if not _is_ingress(msg):
                by_dpid[topology.nodes[node].dpid].append(msg)
    # Groups before any entry on their switch (the ingress entries name them).
    for msgs in by_dpid.values():
        msgs.sort(key=lambda m: not isinstance(m, parser.OFPGroupMod))
    return by_dpid


def delete_protection_groups(topology: Topology, lp: Lightpath) -> FlowMessages:
    """The group DELETEs of a protected lightpath's two ingress switches ({} if unprotected)."""
    if lp.protection is None or lp.wavelength is None:
        return {}
    out: FlowMessages = {}
    for reverse, node in ((False, lp.route[0]), (True, lp.route[-1])):
        out.setdefault(topology.nodes[node].dpid, []).append(
            delete_group(protection_group_id(lp.cookie, reverse)))
    return out


def split_for_reroute(messages: FlowMessages) -> tuple[FlowMessages, FlowMessages]:
    """A re-routed lightpath's entries as (transit and egress, ingress replacements).

    Make-before-break: the transit and egress entries of the new route never
    overlap the old route's (another VID, or another in_port, on every fibre
    they share), so they go in first with ``OFPFF_CHECK_OVERLAP``. The ingress
    entries have the old ones' match and priority: sent without the overlap
    check, each ADD replaces its old twin in one step, cookie included, which
    moves the traffic onto the new route without a gap. (MODIFY_STRICT would
    keep the old cookie, and deleting the old cookie would then remove them.)
    """
    rest: FlowMessages = {}
    ingress: FlowMessages = {}
    for dpid, msgs in messages.items():
        rest[dpid] = []
        for msg in msgs:
            if PRIO_INGRESS <= msg.priority < PRIO_TRANSIT:
                msg.flags &= ~ofp.OFPFF_CHECK_OVERLAP
                ingress.setdefault(dpid, []).append(msg)
            else:
                rest[dpid].append(msg)
    return rest, ingress


def lightpath_dpids(topology: Topology, lp: Lightpath) -> frozenset[int]:
    """The dpids of the switches a lightpath has entries on (both routes when protected)."""
    nodes = lp.route if lp.protection is None else (*lp.route, *lp.protection.route)
    return frozenset(topology.nodes[n].dpid for n in nodes)


def delete_by_cookie(cookie: int, cookie_mask: int = ALL_ONES) -> parser.OFPFlowMod:
    """A DELETE of every entry whose cookie matches under ``cookie_mask``, in all tables."""
    # out_port/out_group must be ANY: their default 0 would restrict the delete
    # to entries that output to port 0, i.e. none.
    return parser.OFPFlowMod(None, cookie=cookie, cookie_mask=cookie_mask,
                             table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=parser.OFPMatch())


def delete_lightpath(cookie: int, dpids: Iterable[int]) -> FlowMessages:
    """Teardown (or rollback): one cookie DELETE per switch, each its own message."""
    return {dpid: [delete_by_cookie(cookie)] for dpid in dpids}


def barrier() -> parser.OFPBarrierRequest:
    """A barrier request: its reply confirms everything sent before it."""
    return parser.OFPBarrierRequest(None)


def arp_reply(data: bytes, in_port: int,
              mac_of: Callable[[str], Optional[str]]) -> Optional[parser.OFPPacketOut]:
    """The packet-out answering an ARP request for a host ``mac_of`` knows, else None.

    None also for anything that is not an ARP request and for gratuitous ARP
    (a host announcing or probing its own address): the SC never floods, so an
    unanswered request simply goes unanswered.
    """
    request = packet.Packet(data)
    eth = request.get_protocol(ethernet.ethernet)
    query = request.get_protocol(arp.arp)
    if eth is None or query is None or query.opcode != arp.ARP_REQUEST:
        return None
    if query.src_ip == query.dst_ip:
        return None
    mac = mac_of(query.dst_ip)
    if mac is None:
        return None
    reply = packet.Packet()
    reply.add_protocol(ethernet.ethernet(dst=eth.src, src=mac,
                                         ethertype=ether_types.ETH_TYPE_ARP))
    reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=mac, src_ip=query.dst_ip,
                               dst_mac=query.src_mac, dst_ip=query.src_ip))
    reply.serialize()
    return parser.OFPPacketOut(None, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                               actions=[parser.OFPActionOutput(in_port)], data=reply.data)
