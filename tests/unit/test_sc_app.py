"""Smoke test of the Ryu application: built directly with its contexts, every handler called.

`ServiceController` is created the way ryu-manager creates it (Ryu's ``CONF`` parsed from a
config file, a `WSGIApplication` context) and fed fake OpenFlow events. The fake datapaths apply
what the app sends to a fake OpenFlow 1.3 network and answer barriers and errors back through the
app's own handlers, so a lightpath set up over its REST API can be followed in the data plane.
"""
import logging
import os
import types

import eventlet
import pytest
from ryu import cfg
from ryu.controller import ofp_event
from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER
from ryu.lib.packet import arp, ether_types, ethernet, packet
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser
from ryu.topology import event as topo_event

from fake_of13 import FakeNetwork, ipv4
from sc_harness import TABLE_FULL, Client, all_ports, make_sc, state_dir  # noqa: F401 (fixture)
from sc_app.app import ServiceController
from sc_app.lightpath import host_mac
from sc_app.sci import SwitchUnreachable

TOKEN = "app-token"


class FakeDatapath:
    """What the app sees of a switch; replies come back through the app's handlers."""

    def __init__(self, dpid, app, net, errors=None):
        self.id = dpid
        self.ofproto = ofp
        self.ofproto_parser = parser
        self.app = app
        self.net = net
        self.sent = []
        self.refuse = None  # an OFError answered to every flow ADD
        self.xid = 0
        self.errors = [] if errors is None else errors  # what the app's handlers raised

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)  # asserts that no message object is sent twice
        return self.xid

    def send_msg(self, msg):
        assert msg.datapath is self and msg.xid is not None
        self.sent.append(msg)
        if isinstance(msg, parser.OFPPortDescStatsRequest):
            return  # the test plays the reply (`port_desc`)
        if isinstance(msg, parser.OFPFlowStatsRequest):
            reply = parser.OFPFlowStatsReply(self, body=self.net.table(self.id).flow_stats(msg),
                                             flags=0)
            reply.xid = msg.xid
            eventlet.spawn(self._deliver, self.app._stats_reply,
                           ofp_event.EventOFPFlowStatsReply(reply))
            return
        if isinstance(msg, parser.OFPGroupDescStatsRequest):
            reply = parser.OFPGroupDescStatsReply(self, body=self.net.table(self.id).group_desc(),
                                                  flags=0)
            reply.xid = msg.xid
            eventlet.spawn(self._deliver, self.app._stats_reply,
                           ofp_event.EventOFPGroupDescStatsReply(reply))
            return
        refused = (self.refuse is not None and isinstance(msg, parser.OFPFlowMod)
                   and msg.command == ofp.OFPFC_ADD)
        error = self.refuse if refused else self.net.send(self.id, msg)
        if error is not None:
            reply = parser.OFPErrorMsg(self, type_=error.type, code=error.code, data=b"")
            reply.xid = msg.xid
            eventlet.spawn(self._deliver, self.app._error, ofp_event.EventOFPErrorMsg(reply))
        elif isinstance(msg, parser.OFPBarrierRequest):
            reply = parser.OFPBarrierReply(self)
            reply.xid = msg.xid
            eventlet.spawn(self._deliver, self.app._barrier_reply,
                           ofp_event.EventOFPBarrierReply(reply))

    def _deliver(self, handler, ev):
        """Ryu's event loop: a handler's exception is logged and the loop goes on."""
        try:
            handler(ev)
        except Exception as exc:  # noqa: BLE001 - recorded for the test to see
            self.errors.append(exc)

    def of_type(self, cls):
        return [m for m in self.sent if isinstance(m, cls)]


def ofport(port_no, live=True):
    return parser.OFPPort(port_no, "02:00:00:00:00:%02x" % port_no, f"p{port_no}".encode(),
                          0 if live else ofp.OFPPC_PORT_DOWN, 0 if live else ofp.OFPPS_LINK_DOWN,
                          0, 0, 0, 0, 0, 0)


def state_change(app, dp, state):
    ev = ofp_event.EventOFPStateChange(dp)
    ev.state = state
    app._state_change(ev)


def port_desc(app, dp, ports):
    reply = parser.OFPPortDescStatsReply(dp, body=ports)
    app._port_desc(ofp_event.EventOFPPortDescStatsReply(reply))


class Rig:
    """The app, its WSGI context, fake switches and a client."""

    def __init__(self, app, wsgi):
        self.app = app
        self.wsgi = wsgi
        self.net = FakeNetwork()
        self.dps = {}
        self.errors = []
        self.client = Client(wsgi, TOKEN)

    def connect(self, node_id, ports=None):
        topology = self.app.core.topology
        dpid = topology.nodes[node_id].dpid
        dp = self.dps[dpid] = FakeDatapath(dpid, self.app, self.net, self.errors)
        state_change(self.app, dp, MAIN_DISPATCHER)
        live = all_ports(topology, node_id) if ports is None else ports
        port_desc(self.app, dp, [ofport(p) for p in live] + [ofport(ofp.OFPP_LOCAL)])
        return dp

    def connect_all(self):
        for node_id in self.app.core.topology.nodes:
            self.connect(node_id)

    def delivered(self, src, dst):
        node = {"10.1.0.1": 1, "10.1.3.1": 4, "10.2.0.1": 1, "10.2.3.1": 4}[src]
        port = 1 if src.startswith("10.1.") else 2
        return self.net.forward(self.app.core.topology, node, port, ipv4(src, dst)).delivered


@pytest.fixture
def rig(state_dir, tmp_path):
    conf_file = tmp_path / "sc.conf"
    conf_file.write_text(f"[sc]\ntopology = ring\nstate_dir = {state_dir}\n"
                         f"ac_tokens = app-ac:{TOKEN}\nbarrier_timeout = 0.5\n"
                         "discovery_grace = 0.01\n")
    cfg.CONF(args=["--config-file", str(conf_file)], project="ryu", default_config_files=[])
    wsgi = ServiceController.context_iteritems().__next__()[1]()
    app = ServiceController(wsgi=wsgi)
    try:
        yield Rig(app, wsgi)
    finally:
        app.close()
        cfg.CONF.clear()


def test_the_contexts_and_the_config_file_are_used(rig):
    assert dict(ServiceController.context_iteritems()) == {"wsgi": type(rig.wsgi)}
    assert rig.app.settings.topology.name == "ring"
    assert rig.app.core.ac_tokens == {"app-ac": TOKEN}
    assert rig.app.settings.discovery_grace == 0.01


def test_the_app_registers_the_routes_the_harness_registers(rig, state_dir):
    def routes(wsgi):
        return [(r.name, r.routepath, tuple(r.conditions.get("method") or ()),
                 r.defaults["controller"].__name__, r.defaults["action"])
                for r in wsgi.mapper.matchlist]

    sc = make_sc(os.path.join(state_dir, "harness"), connect=False)
    try:
        assert routes(sc.wsgi) == routes(rig.wsgi)
    finally:
        sc.close()


def test_main_state_asks_for_the_port_description(rig):
    dp = FakeDatapath(1, rig.app, rig.net)
    state_change(rig.app, dp, MAIN_DISPATCHER)
    assert rig.app.datapaths == {1: dp}
    [request] = dp.sent
    assert isinstance(request, parser.OFPPortDescStatsRequest)


def test_a_datapath_without_an_id_is_ignored(rig):
    dp = FakeDatapath(None, rig.app, rig.net)
    state_change(rig.app, dp, MAIN_DISPATCHER)
    assert rig.app.datapaths == {} and dp.sent == []


def test_the_port_description_brings_the_switch_up_with_its_base_entries(rig):
    dp = rig.connect("0")
    flow_mods = dp.of_type(parser.OFPFlowMod)
    assert len(flow_mods) == 4  # the base entries; then its lightpath entries are read
    wait_for(lambda: dp.of_type(parser.OFPFlowStatsRequest), "the flow stats request")
    assert rig.app.core.pa.connected == {1}
    assert rig.app.core.pa.live_ports[1] == {1, 2, 3, 4}  # OFPP_LOCAL is no port of ours
    assert rig.net.forward(rig.app.core.topology, 1, 1, ipv4("10.1.0.1", "10.1.3.1")).dropped
    # A later description of a connected switch only updates its ports.
    port_desc(rig.app, dp, [ofport(1), ofport(2), ofport(3), ofport(4, live=False)])
    assert len(dp.of_type(parser.OFPFlowMod)) == len(flow_mods)
    assert rig.app.core.pa.live_ports[1] == {1, 2, 3}


def test_port_status_takes_a_fibre_down_and_up(rig):
    rig.connect_all()
    ted = rig.app.core.ted
    assert ted.usable("0-1")
    dp = rig.dps[1]
    for reason, live, usable in ((ofp.OFPPR_MODIFY, False, False), (ofp.OFPPR_MODIFY, True, True),
                                 (ofp.OFPPR_DELETE, True, False), (ofp.OFPPR_ADD, True, True)):
        msg = parser.OFPPortStatus(dp, reason=reason, desc=ofport(3, live=live))
        rig.app._port_status(ofp_event.EventOFPPortStatus(msg))
        assert ted.usable("0-1") is usable, (reason, live)
    kinds = [(a.kind, a.subject, a.active) for a in rig.app.core.db.list_alarms(active=None)]
    assert ("link-down", "0-1", False) in kinds


def arp_request(dst_ip, src_ip="10.1.0.1", src_mac="02:01:00:00:00:00", opcode=arp.ARP_REQUEST):
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=src_mac,
                                       ethertype=ether_types.ETH_TYPE_ARP))
    pkt.add_protocol(arp.arp(opcode=opcode, src_mac=src_mac, src_ip=src_ip,
                             dst_mac="00:00:00:00:00:00", dst_ip=dst_ip))
    pkt.serialize()
    return pkt.data


def packet_in(rig, dp, data, in_port=1):
    msg = parser.OFPPacketIn(dp, buffer_id=ofp.OFP_NO_BUFFER, total_len=len(data),
                             reason=ofp.OFPR_ACTION, table_id=0, cookie=0,
                             match=parser.OFPMatch(in_port=in_port), data=data)
    rig.app._packet_in(ofp_event.EventOFPPacketIn(msg))


def test_an_arp_request_for_a_known_host_is_answered_by_the_sc(rig):
    dp = rig.connect("0")
    before = len(dp.sent)
    packet_in(rig, dp, arp_request("10.2.3.1"), in_port=1)
    [out] = dp.sent[before:]
    assert isinstance(out, parser.OFPPacketOut)
    assert [a.port for a in out.actions] == [1]
    reply = packet.Packet(out.data).get_protocol(arp.arp)
    assert (reply.opcode, reply.src_ip, reply.dst_ip) == (arp.ARP_REPLY, "10.2.3.1", "10.1.0.1")
    assert reply.src_mac == host_mac("10.2.3.1") and reply.dst_mac == "02:01:00:00:00:00"


@pytest.mark.parametrize("data", [
    arp_request("10.2.2.1"),  # node 2 has no DC
    arp_request("10.1.99.1"),  # no node 99
    arp_request("10.1.0.1", src_ip="10.1.0.1"),  # gratuitous
    arp_request("10.1.3.1", opcode=arp.ARP_REPLY),
    b"\x00" * 14,  # not even a packet
], ids=["no-dc", "no-node", "gratuitous", "reply", "garbage"])
def test_other_packets_in_are_never_answered_nor_flooded(rig, data):
    dp = rig.connect("0")
    before = len(dp.sent)
    packet_in(rig, dp, data)
    assert dp.sent[before:] == []


def wait_for(condition, what):
    for _ in range(1000):
        if condition():
            return
        eventlet.sleep(0.001)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_lightpath_over_the_apps_rest_is_confirmed_by_barrier_replies(rig):
    rig.connect_all()
    reply = rig.client.post("/asi/v1/lightpaths", {"src": "10.1.0.1", "dst": "10.1.3.1"})
    assert reply.status == 201, reply.body
    lp = reply.json
    for node in lp["route"]:
        dp = rig.dps[rig.app.core.topology.nodes[node].dpid]
        assert dp.of_type(parser.OFPBarrierRequest)
    assert rig.delivered("10.1.0.1", "10.1.3.1") == [(4, 1, ipv4("10.1.0.1", "10.1.3.1"))]
    assert rig.client.delete(f"/asi/v1/lightpaths/{lp['id']}").status == 200
    assert rig.delivered("10.1.0.1", "10.1.3.1") == []
    assert rig.errors == []


def test_an_error_reply_fails_the_install_and_it_is_rolled_back(rig):
    rig.connect_all()
    rig.dps[3].refuse = TABLE_FULL  # node 2, transit of 0-1-2-3
    reply = rig.client.post("/asi/v1/lightpaths", {"src": "10.1.0.1", "dst": "10.1.3.1"})
    assert reply.status == 503, reply.body
    assert (reply.json["reason"], reply.json["dpid"]) == ("switch-error", 3)
    cookies = {e.cookie for t in rig.net.tables.values() for e in t.entries}
    assert cookies == {0x4241 << 48}  # only the base entries are left
    assert rig.app.core.service.lightpaths == {}


def test_a_reply_nobody_waits_for_is_logged_not_raised(rig, caplog):
    dp = rig.connect("0")
    reply = parser.OFPErrorMsg(dp, type_=ofp.OFPET_BAD_REQUEST, code=ofp.OFPBRC_BAD_TYPE,
                               data=b"")
    reply.xid = 4242
    with caplog.at_level(logging.WARNING, logger="sc_app"):
        rig.app._error(ofp_event.EventOFPErrorMsg(reply))
    assert "4242" in caplog.text
    barrier = parser.OFPBarrierReply(dp)
    barrier.xid = 4243
    rig.app._barrier_reply(ofp_event.EventOFPBarrierReply(barrier))


def lldp_link(src, dst):
    """What ryu.topology.switches.Link offers the app: src and dst with dpid and port_no."""
    def end(dpid, port_no):
        return types.SimpleNamespace(dpid=dpid, port_no=port_no)
    return types.SimpleNamespace(src=end(*src), dst=end(*dst))


def test_lldp_link_events_confirm_fibres_and_flag_strangers(rig):
    rig.connect_all()
    pa = rig.app.core.pa
    rig.app._link_add(topo_event.EventLinkAdd(lldp_link((1, 3), (2, 3))))
    assert "0-1" in pa.discovered
    rig.app._link_delete(topo_event.EventLinkDelete(lldp_link((1, 3), (2, 3))))
    assert "0-1" not in pa.discovered
    rig.app._link_add(topo_event.EventLinkAdd(lldp_link((1, 3), (4, 4))))
    alarms = [(a.kind, a.subject) for a in rig.app.core.db.list_alarms(active=True)]
    assert ("unexpected-link", "1:3-4:4") in alarms


def test_the_discovery_loop_alarms_fibres_lldp_has_not_seen(rig):
    rig.connect("0")
    rig.connect("1")
    wait_for(lambda: rig.app.core.db.list_alarms(active=True), "a discovery alarm")
    alarms = [(a.kind, a.subject) for a in rig.app.core.db.list_alarms(active=True)]
    assert alarms == [("link-undiscovered", "0-1")]
    rig.app._link_add(topo_event.EventLinkAdd(lldp_link((1, 3), (2, 3))))
    assert rig.app.core.db.list_alarms(active=True) == []


def test_dead_switch_goes_down_and_can_no_longer_be_sent_to(rig):
    rig.connect_all()
    dp = rig.dps[4]
    state_change(rig.app, dp, DEAD_DISPATCHER)
    assert 4 not in rig.app.datapaths and 4 not in rig.app.core.pa.connected
    alarms = [(a.kind, a.subject) for a in rig.app.core.db.list_alarms(active=True)]
    assert alarms == [("switch-down", "3")]
    with pytest.raises(SwitchUnreachable):
        rig.app.send(4, parser.OFPBarrierRequest(None))
    reply = rig.client.post("/asi/v1/lightpaths", {"src": "10.1.0.1", "dst": "10.1.3.1"})
    assert reply.status == 409  # node 3 is down: no route to it
    smi = rig.client.post("/smi/v1/switches/4/resync")
    assert (smi.status, smi.json["error"]) == (409, "switch-unreachable")


def test_a_dead_switch_is_torn_down_by_the_core_in_the_order_the_app_had(rig, monkeypatch):
    """What waits on the switch fails first (installs, then reconciliation's reads), then PA
    takes it out of reach: its TED changes, and the restoration they queue, come last."""
    rig.connect_all()
    core, calls = rig.app.core, []
    for part, name in ((core.installer, "on_switch_down"), (core.reconciler, "on_switch_down"),
                       (core.pa, "switch_down")):
        def recording(dpid, _part=part, _name=name, _real=getattr(part, name)):
            calls.append((type(_part).__name__, _name, dpid))
            return _real(dpid)
        monkeypatch.setattr(part, name, recording)
    state_change(rig.app, rig.dps[4], DEAD_DISPATCHER)
    assert calls == [("FlowInstaller", "on_switch_down", 4), ("Reconciler", "on_switch_down", 4),
                     (type(core.pa).__name__, "switch_down", 4)]


def test_the_app_calls_only_the_cores_own_methods():
    """No handler reaches into the core's parts (``self.core.pa.x``): one facade per event."""
    import ast
    import inspect

    import sc_app.app

    tree = ast.parse(inspect.getsource(sc_app.app))
    core_attrs = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                  and isinstance(node.value, ast.Attribute) and node.value.attr == "core"
                  and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"]
    used = {node.attr for node in core_attrs}
    reached_into = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                    and node.value in core_attrs]
    assert reached_into == []
    assert used <= {"switch_connecting", "port_description", "switch_disconnected",
                    "port_status", "barrier_reply", "error", "stats_reply", "link_discovered",
                    "link_lost", "packet_in", "discovery_check", "on_handler_failure", "close",
                    "topology"}, used


def test_a_stale_dead_event_does_not_drop_the_new_connection(rig):
    old = rig.connect("0")
    new = rig.connect("0")
    state_change(rig.app, old, DEAD_DISPATCHER)
    assert rig.app.datapaths[1] is new and 1 in rig.app.core.pa.connected


def test_resync_over_smi_resends_the_switch_its_entries(rig):
    rig.connect_all()
    assert rig.client.post("/asi/v1/lightpaths", {"src": "10.1.0.1",
                                                  "dst": "10.1.3.1"}).status == 201
    rig.net.tables[2].entries.clear()
    assert rig.delivered("10.1.0.1", "10.1.3.1") == []
    reply = rig.client.post("/smi/v1/switches/2/resync")
    assert reply.status == 200 and reply.json["messages"] > 0
    assert rig.delivered("10.1.0.1", "10.1.3.1") == [(4, 1, ipv4("10.1.0.1", "10.1.3.1"))]


def test_a_switch_that_is_closing_is_unreachable(rig):
    dp = rig.connect("0")
    dp.send_msg = types.MethodType(lambda self, msg: False, dp)
    with pytest.raises(SwitchUnreachable):
        rig.app.send(1, parser.OFPBarrierRequest(None))
    rig.app.core.switch_connecting(1)  # its port description request: logged, not raised


def test_close_stops_the_discovery_loop_and_the_database(state_dir, tmp_path):
    conf_file = tmp_path / "sc.conf"
    conf_file.write_text(f"[sc]\ntopology = ring\nstate_dir = {state_dir}\n")
    cfg.CONF(args=["--config-file", str(conf_file)], project="ryu", default_config_files=[])
    try:
        app = ServiceController(wsgi=ServiceController._CONTEXTS["wsgi"]())
        app.close()
        assert app._discovery.dead
        with pytest.raises(Exception):
            app.core.db.list_alarms()
    finally:
        cfg.CONF.clear()


def test_the_last_switch_back_starts_the_restoration_check(rig):
    """After the last switch's port description (not before) every lightpath is looked at
    once, so a fibre down since before the start gets its lightpaths restored."""
    nodes = list(rig.app.core.topology.nodes)
    for node_id in nodes[:-1]:
        rig.connect(node_id)
    assert not rig.app.core.start_checked
    rig.connect(nodes[-1])
    assert rig.app.core.start_checked


def test_the_discovery_loop_checks_after_start_when_a_switch_never_comes(rig):
    rig.connect("0")
    wait_for(lambda: rig.app.core.start_checked, "the check forced by the discovery loop")
