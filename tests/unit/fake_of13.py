"""A fake OpenFlow 1.3 network: flow tables that apply flow mods as a switch does.

Tests send the SC's real ``ofproto_v1_3_parser`` messages here and then ask
behavioural questions ("does IPv4 from port 1 leave s7 on port 2 untagged?")
with `FakeNetwork.forward`, instead of comparing message bytes.

What is modelled (OpenFlow 1.3.5 §6.4, §7.2.3): ADD (identical match and
priority replaced, ``OFPFF_CHECK_OVERLAP``), MODIFY/MODIFY_STRICT (no insert),
DELETE/DELETE_STRICT with cookie masks, ``out_port``/``out_group`` and
``OFPTT_ALL``; match prerequisites and wildcards; priority order; VLAN VIDs
with ``OFPVID_PRESENT``; actions push_vlan, set_field vlan_vid and eth_dst, pop_vlan
and output (physical, CONTROLLER, IN_PORT); fast-failover groups (OFPGT_FF, §5.6.1:
ADD/MODIFY/DELETE, buckets watching ports, the group action, a DELETE also removing
the entries that use the group) with port liveness (`FlowTable.down_ports`: the first
bucket whose watch port is live is used; nothing leaves through a down port).
Anything else raises NotImplementedError, so a test never passes by silently
ignoring a feature.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Optional

from ryu.lib import addrconv
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from topologies.model import Topology

ETH_IPV4, ETH_ARP, ETH_IPV6, ETH_LLDP = 0x0800, 0x0806, 0x86DD, 0x88CC
_WIDTH = {"in_port": 32, "eth_type": 16, "vlan_vid": 13, "ipv4_src": 32, "ipv4_dst": 32,
          "eth_src": 48, "eth_dst": 48}
_PREREQ = {"ipv4_src": ETH_IPV4, "ipv4_dst": ETH_IPV4}
_MAX_STEPS = 10_000


class OFError(Exception):
    """The OFPT_ERROR a real switch would answer (``type``, ``code`` from ofproto_v1_3)."""

    def __init__(self, type_: int, code: int, why: str):
        super().__init__(f"type={type_} code={code}: {why}")
        self.type, self.code = type_, code


@dataclass(frozen=True)
class Packet:
    """The header fields the SC's entries look at; ``vlans`` lists VIDs, outermost first."""

    eth_type: int
    ipv4_src: Optional[str] = None
    ipv4_dst: Optional[str] = None
    vlans: tuple[int, ...] = ()
    eth_src: str = "02:00:00:00:00:aa"
    eth_dst: str = "02:00:00:00:00:bb"

    def fields(self, in_port: int) -> dict[str, int]:
        """OXM field values of this packet arriving on ``in_port``."""
        values = {"in_port": in_port, "eth_type": self.eth_type,
                  # OF1.3: an untagged packet has vlan_vid OFPVID_NONE (0).
                  "vlan_vid": (self.vlans[0] | ofp.OFPVID_PRESENT) if self.vlans
                  else ofp.OFPVID_NONE,
                  "eth_src": _int("eth_src", self.eth_src),
                  "eth_dst": _int("eth_dst", self.eth_dst)}
        if self.eth_type == ETH_IPV4:
            values.update({name: _int(name, getattr(self, name))
                           for name in ("ipv4_src", "ipv4_dst") if getattr(self, name)})
        return values


def ipv4(src: str, dst: str, **kwargs) -> Packet:
    """An untagged IPv4 packet."""
    return Packet(ETH_IPV4, src, dst, **kwargs)


def arp() -> Packet:
    """An ARP packet (the fake does not look inside it)."""
    return Packet(ETH_ARP)


def _int(name: str, value) -> int:
    if isinstance(value, int):
        return value
    if name.startswith("ipv4"):
        return int(ipaddress.IPv4Address(value))
    if name.startswith("eth_") and name != "eth_type":
        return int.from_bytes(addrconv.mac.text_to_bin(value), "big")
    raise NotImplementedError(f"field {name} value {value!r}")


def _normalise(match: parser.OFPMatch) -> dict[str, tuple[int, int]]:
    """OFPMatch -> {field: (value, mask)}, checking wildcards and prerequisites."""
    fields: dict[str, tuple[int, int]] = {}
    for name, raw in match.items():
        if name not in _WIDTH:
            raise NotImplementedError(f"match field {name}")
        full = (1 << _WIDTH[name]) - 1
        value, mask = (raw if isinstance(raw, tuple) else (raw, full))
        value, mask = _int(name, value), _int(name, mask)
        if value & ~mask:
            raise OFError(ofp.OFPET_BAD_MATCH, ofp.OFPBMC_BAD_WILDCARDS,
                          f"{name}: value has bits outside its mask")
        fields[name] = (value, mask)
    for name, eth_type in _PREREQ.items():
        if name in fields and fields.get("eth_type") != (eth_type, 0xFFFF):
            raise OFError(ofp.OFPET_BAD_MATCH, ofp.OFPBMC_BAD_PREREQ,
                          f"{name} needs eth_type={eth_type:#06x}")
    return fields


def _covers(filter_: dict, fields: dict) -> bool:
    """Non-strict selection: ``fields`` is at least as specific as ``filter_``."""
    for name, (value, mask) in filter_.items():
        if name not in fields:
            return False
        e_value, e_mask = fields[name]
        if e_mask & mask != mask or (e_value ^ value) & mask:
            return False
    return True


def _overlap(a: dict, b: dict) -> bool:
    """Some packet could match both."""
    return all((a[n][0] ^ b[n][0]) & a[n][1] & b[n][1] == 0 for n in a.keys() & b.keys())


def _hits(fields: dict, packet_fields: dict) -> bool:
    return all(n in packet_fields and (packet_fields[n] ^ v) & m == 0
               for n, (v, m) in fields.items())


def _actions(instructions) -> tuple:
    actions: list = []
    for inst in instructions:
        if not (isinstance(inst, parser.OFPInstructionActions)
                and inst.type == ofp.OFPIT_APPLY_ACTIONS):
            raise NotImplementedError(f"instruction {inst}")
        actions.extend(inst.actions)
    return tuple(actions)


def _check_actions(fields: dict, actions: tuple, groups: Optional[dict] = None) -> None:
    """Action/match consistency as a switch checks it when the entry is added."""
    vid = fields.get("vlan_vid")
    tagged = vid is not None and vid[0] & vid[1] & ofp.OFPVID_PRESENT != 0
    for action in actions:
        if isinstance(action, parser.OFPActionPushVlan):
            if action.ethertype not in (0x8100, 0x88A8):
                raise OFError(ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_ARGUMENT, "push_vlan type")
            tagged = True
        elif isinstance(action, parser.OFPActionPopVlan):
            if not tagged:
                raise OFError(ofp.OFPET_BAD_ACTION, ofp.OFPBAC_MATCH_INCONSISTENT,
                              "pop_vlan on a packet not known to be tagged")
            tagged = False
        elif isinstance(action, parser.OFPActionSetField):
            if action.key == "eth_dst":
                _int("eth_dst", action.value)  # a well-formed MAC; any frame has one
                continue
            if action.key != "vlan_vid":
                raise NotImplementedError(f"set_field {action.key}")
            if not tagged:
                raise OFError(ofp.OFPET_BAD_ACTION, ofp.OFPBAC_MATCH_INCONSISTENT,
                              "set_field vlan_vid without a VLAN tag")
            if not action.value & ofp.OFPVID_PRESENT:
                raise OFError(ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_SET_ARGUMENT,
                              "set_field vlan_vid without OFPVID_PRESENT")
        elif isinstance(action, parser.OFPActionOutput):
            if action.port == 0 or (action.port > ofp.OFPP_MAX and action.port not in
                                    (ofp.OFPP_CONTROLLER, ofp.OFPP_IN_PORT)):
                raise NotImplementedError(f"output to port {action.port:#x}")
        elif isinstance(action, parser.OFPActionGroup):
            if groups is None or action.group_id not in groups:
                raise OFError(ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_OUT_GROUP,
                              f"group {action.group_id} does not exist")
        else:
            raise NotImplementedError(f"action {action}")


@dataclass
class Entry:
    """One flow entry."""

    table_id: int
    priority: int
    fields: dict[str, tuple[int, int]]
    actions: tuple
    cookie: int
    flags: int = 0
    #: The match as the ADD gave it (what flow stats report) and the packets that hit it.
    match: Optional[parser.OFPMatch] = None
    packet_count: int = 0

    def stats(self) -> parser.OFPFlowStats:
        """The entry as an OFPFlowStats reply reports it."""
        instructions = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, list(self.actions))
                        ] if self.actions else []
        return parser.OFPFlowStats(self.table_id, 0, 0, self.priority, 0, 0, self.flags,
                                   self.cookie, self.packet_count, 0, self.match, instructions)

    def outputs_to(self, port: int) -> bool:
        """Whether an output action names ``port`` (DELETE's out_port filter)."""
        return any(isinstance(a, parser.OFPActionOutput) and a.port == port
                   for a in self.actions)

    def uses_group(self, group_id: int) -> bool:
        """Whether a group action names ``group_id`` (DELETE's out_group filter)."""
        return any(isinstance(a, parser.OFPActionGroup) and a.group_id == group_id
                   for a in self.actions)


@dataclass
class Group:
    """One group: its type and its buckets as (watch_port, actions)."""

    type: int
    buckets: list[tuple[int, tuple]]


class FlowTable:
    """The flow tables of one switch."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.packet_outs: list[parser.OFPPacketOut] = []
        self.groups: dict[int, Group] = {}
        #: Ports whose link is down: not live for a group's watch, nothing output there.
        self.down_ports: set[int] = set()

    def apply(self, msg: parser.MsgBase) -> None:
        """Process one message as the switch would; raises `OFError` for an error reply."""
        if isinstance(msg, parser.OFPFlowMod):
            handler = {ofp.OFPFC_ADD: self._add, ofp.OFPFC_MODIFY: self._modify,
                       ofp.OFPFC_MODIFY_STRICT: self._modify, ofp.OFPFC_DELETE: self._delete,
                       ofp.OFPFC_DELETE_STRICT: self._delete}[msg.command]
            handler(msg)
        elif isinstance(msg, parser.OFPGroupMod):
            self._group_mod(msg)
        elif isinstance(msg, parser.OFPPacketOut):
            self.packet_outs.append(msg)
        elif not isinstance(msg, parser.OFPBarrierRequest):
            raise NotImplementedError(f"message {type(msg).__name__}")

    def _group_mod(self, msg: parser.OFPGroupMod) -> None:
        if msg.command == ofp.OFPGC_DELETE:
            doomed = set(self.groups) if msg.group_id == ofp.OFPG_ALL else {msg.group_id}
            for group_id in doomed:
                self.groups.pop(group_id, None)  # an unknown group is no error
            self.entries = [e for e in self.entries
                            if not any(e.uses_group(g) for g in doomed)]
            return
        if msg.type != ofp.OFPGT_FF:
            raise NotImplementedError(f"group type {msg.type}")
        if msg.group_id > ofp.OFPG_MAX:
            raise OFError(ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_INVALID_GROUP, "group id")
        buckets = []
        for bucket in msg.buckets:
            if bucket.watch_port in (0, ofp.OFPP_ANY):
                raise OFError(ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_BAD_WATCH,
                              "fast-failover bucket without a watch port")
            actions = tuple(bucket.actions)
            _check_actions({}, actions, self.groups)
            buckets.append((bucket.watch_port, actions))
        exists = msg.group_id in self.groups
        if msg.command == ofp.OFPGC_ADD and exists:
            raise OFError(ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_GROUP_EXISTS, "group exists")
        if msg.command == ofp.OFPGC_MODIFY and not exists:
            raise OFError(ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_UNKNOWN_GROUP, "no group")
        self.groups[msg.group_id] = Group(msg.type, buckets)

    def group_desc(self) -> list[parser.OFPGroupDescStats]:
        """Every group as an OFPGroupDescStats reply reports it (by id)."""
        return [parser.OFPGroupDescStats(group.type, group_id, [
            parser.OFPBucket(0, watch_port, ofp.OFPG_ANY, list(actions))
            for watch_port, actions in group.buckets])
            for group_id, group in sorted(self.groups.items())]

    def live_bucket(self, group_id: int) -> Optional[tuple]:
        """The actions of a fast-failover group's first live bucket; None when none is."""
        for watch_port, actions in self.groups[group_id].buckets:
            if watch_port not in self.down_ports:
                return actions
        return None

    def _add(self, msg: parser.OFPFlowMod) -> None:
        if msg.table_id > ofp.OFPTT_MAX:
            raise OFError(ofp.OFPET_FLOW_MOD_FAILED, ofp.OFPFMFC_BAD_TABLE_ID, "ADD to OFPTT_ALL")
        fields = _normalise(msg.match)
        actions = _actions(msg.instructions)
        _check_actions(fields, actions, self.groups)
        same_band = [e for e in self.entries
                     if e.table_id == msg.table_id and e.priority == msg.priority]
        if msg.flags & ofp.OFPFF_CHECK_OVERLAP and any(_overlap(e.fields, fields)
                                                       for e in same_band):
            raise OFError(ofp.OFPET_FLOW_MOD_FAILED, ofp.OFPFMFC_OVERLAP, "overlapping entry")
        # An identical match at the same priority is replaced, cookie included.
        self.entries = [e for e in self.entries if not (
            e.table_id == msg.table_id and e.priority == msg.priority and e.fields == fields)]
        self.entries.append(Entry(msg.table_id, msg.priority, fields, actions, msg.cookie,
                                  msg.flags, msg.match))

    def flow_stats(self, msg: parser.OFPFlowStatsRequest) -> list[parser.OFPFlowStats]:
        """Flow stats of the entries a request selects (table, cookie under its mask)."""
        if msg.out_port != ofp.OFPP_ANY or msg.out_group != ofp.OFPG_ANY or list(msg.match.items()):
            raise NotImplementedError("flow stats filtered by port, group or match")
        return [e.stats() for e in self.entries
                if (msg.table_id == ofp.OFPTT_ALL or e.table_id == msg.table_id)
                and not (e.cookie ^ msg.cookie) & msg.cookie_mask]

    def _select(self, msg: parser.OFPFlowMod, strict: bool) -> list[Entry]:
        fields = _normalise(msg.match)
        chosen = []
        for entry in self.entries:
            if msg.table_id != ofp.OFPTT_ALL and entry.table_id != msg.table_id:
                continue
            if (entry.cookie ^ msg.cookie) & msg.cookie_mask:
                continue
            if strict and (entry.priority != msg.priority or entry.fields != fields):
                continue
            if not strict and not _covers(fields, entry.fields):
                continue
            chosen.append(entry)
        return chosen

    def _modify(self, msg: parser.OFPFlowMod) -> None:
        actions = _actions(msg.instructions)
        for entry in self._select(msg, msg.command == ofp.OFPFC_MODIFY_STRICT):
            _check_actions(entry.fields, actions, self.groups)
            entry.actions = actions  # OF1.3: the cookie is left unchanged

    def _delete(self, msg: parser.OFPFlowMod) -> None:
        doomed = [e for e in self._select(msg, msg.command == ofp.OFPFC_DELETE_STRICT)
                  if (msg.out_port == ofp.OFPP_ANY or e.outputs_to(msg.out_port))
                  and (msg.out_group == ofp.OFPG_ANY or e.uses_group(msg.out_group))]
        self.entries = [e for e in self.entries if all(e is not d for d in doomed)]

    def lookup(self, in_port: int, packet: Packet, table_id: int = 0) -> Optional[Entry]:
        """The entry a packet hits (highest priority); None when no entry matches."""
        values = packet.fields(in_port)
        hits = [e for e in self.entries if e.table_id == table_id and _hits(e.fields, values)]
        if not hits:
            return None
        best = max(e.priority for e in hits)
        top = [e for e in hits if e.priority == best]
        assert len(top) == 1, f"ambiguous lookup: {len(top)} entries at priority {best}"
        return top[0]


@dataclass(frozen=True)
class Hop:
    """A packet crossing a fibre."""

    link: str
    dpid: int
    port: int
    packet: Packet


@dataclass
class Trace:
    """Where a packet injected with `FakeNetwork.forward` went."""

    delivered: list[tuple[int, int, Packet]] = field(default_factory=list)
    to_controller: list[tuple[int, Packet]] = field(default_factory=list)
    dropped: list[tuple[int, int, Packet]] = field(default_factory=list)
    fibres: list[Hop] = field(default_factory=list)
    hit: list[tuple[int, Entry]] = field(default_factory=list)
    looped: bool = False


def _run_actions(actions: tuple, packet: Packet,
                 table: Optional["FlowTable"] = None) -> list[tuple[int, Packet]]:
    """(port, packet as output) for each output action, applying the others in order.

    A group action runs the live bucket of ``table``'s group on a copy of the packet.
    """
    outputs = []
    for action in actions:
        if isinstance(action, parser.OFPActionGroup):
            bucket = None if table is None else table.live_bucket(action.group_id)
            if bucket is not None:
                outputs.extend(_run_actions(bucket, packet, table))
            continue
        if isinstance(action, parser.OFPActionPushVlan):
            # The new tag copies the VID of the current outer tag, else 0.
            packet = replace(packet, vlans=(packet.vlans[:1] or (0,)) + packet.vlans)
        elif isinstance(action, parser.OFPActionSetField) and action.key == "eth_dst":
            packet = replace(packet, eth_dst=action.value)
        elif isinstance(action, parser.OFPActionSetField):
            packet = replace(packet, vlans=(action.value & 0x0FFF,) + packet.vlans[1:])
        elif isinstance(action, parser.OFPActionPopVlan):
            packet = replace(packet, vlans=packet.vlans[1:])
        elif isinstance(action, parser.OFPActionOutput):
            outputs.append((action.port, packet))
    return outputs


class FakeNetwork:
    """Flow tables of many switches by dpid, and packet forwarding across the fibres."""

    def __init__(self) -> None:
        self.tables: dict[int, FlowTable] = {}
        self.errors: list[tuple[int, parser.MsgBase, OFError]] = []

    def table(self, dpid: int) -> FlowTable:
        """The switch ``dpid``'s table (created empty on first use)."""
        return self.tables.setdefault(dpid, FlowTable())

    def send(self, dpid: int, msg: parser.MsgBase) -> Optional[OFError]:
        """Deliver one message; returns the error the switch answers, if any."""
        try:
            self.table(dpid).apply(msg)
        except OFError as error:
            self.errors.append((dpid, msg, error))
            return error
        return None

    def send_all(self, messages: dict[int, list]) -> list[OFError]:
        """Deliver ``{dpid: [msg, ...]}``; returns every error answered."""
        errors = [self.send(dpid, msg) for dpid, msgs in messages.items() for msg in msgs]
        return [e for e in errors if e is not None]

    def set_port(self, dpid: int, port: int, up: bool) -> None:
        """Port liveness as the switch sees its link (fast-failover watches it)."""
        if up:
            self.table(dpid).down_ports.discard(port)
        else:
            self.table(dpid).down_ports.add(port)

    def cut(self, topology: Topology, link_id: str, up: bool = False) -> None:
        """A fibre cut (or repaired): both its ports down (or up)."""
        link = topology.link(link_id)
        self.set_port(topology.nodes[link.a].dpid, link.a_port, up)
        self.set_port(topology.nodes[link.b].dpid, link.b_port, up)

    def groups(self, dpid: int) -> dict[int, Group]:
        """Groups on ``dpid``."""
        return self.table(dpid).groups

    def cookies(self, dpid: int) -> set[int]:
        """Cookies of the entries on ``dpid``."""
        return {e.cookie for e in self.table(dpid).entries}

    def forward(self, topology: Topology, dpid: int, in_port: int, packet: Packet) -> Trace:
        """Inject ``packet`` at (dpid, in_port) and follow it across fibres until it leaves."""
        dpid_of = {n.id: n.dpid for n in topology.nodes.values()}
        peer = {}
        for link in topology.links:
            a, b = (dpid_of[link.a], link.a_port), (dpid_of[link.b], link.b_port)
            peer[a], peer[b] = (b, link.id), (a, link.id)
        trace, seen = Trace(), set()
        queue = [(dpid, in_port, packet)]
        while queue:
            state = queue.pop(0)
            if state in seen or len(seen) > _MAX_STEPS:
                trace.looped = True
                break
            seen.add(state)
            here, port_in, pkt = state
            entry = self.table(here).lookup(port_in, pkt)
            if entry is None or not entry.actions:
                trace.dropped.append(state)
                continue
            trace.hit.append((here, entry))
            entry.packet_count += 1
            for port, out in _run_actions(entry.actions, pkt, self.table(here)):
                if port == ofp.OFPP_CONTROLLER:
                    trace.to_controller.append((here, out))
                    continue
                if port == ofp.OFPP_IN_PORT:
                    port = port_in
                elif port == port_in:
                    # OF1.3: output to the ingress port only via OFPP_IN_PORT.
                    trace.dropped.append((here, port_in, out))
                    continue
                if port in self.table(here).down_ports:
                    trace.dropped.append((here, port, out))  # the link is down
                    continue
                if (here, port) in peer:
                    (far, far_port), link_id = peer[(here, port)]
                    trace.fibres.append(Hop(link_id, here, port, out))
                    queue.append((far, far_port, out))
                else:
                    trace.delivered.append((here, port, out))
        return trace
