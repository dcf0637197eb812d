"""The Service Controller's parts wired together, without Ryu.

`ScCore` owns TED, SA-PCE, DBM, PA, flow reconciliation, SA, NRAE access,
alarms, events and metrics for one topology. The Ryu application (`sc_app.app`) gives it
a transport to the switches and calls one method per OpenFlow event (`switch_connecting`,
`port_description`, `switch_disconnected`, `port_status`, `barrier_reply`, `error`,
`stats_reply`, `link_discovered`, `link_lost`, `packet_in`), as Faucet's shim calls only
its valve's; what an event means for the PA, the SCI, reconciliation and restoration,
and in which order, is decided here. Tests give it a fake transport.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable, Iterable, Mapping, Optional

import eventlet
from ryu.ofproto import ofproto_v1_3_parser as parser

from sc_app import flows, nrae
from sc_app.dbm import Database
from sc_app.events import EventBus
from sc_app.lightpath import DOWN, UP, host_mac
from sc_app.metrics import ScMetrics
from sc_app.pa import Alarms, ProtocolAgent
from sc_app.pce import PCE
from sc_app.reconcile import READ_REQUESTS, CookieTracker, Reconciler
from sc_app.restoration import Restorer
from sc_app.sa import ServiceAgent
from sc_app.sci import FlowInstaller, SwitchUnreachable, Transport
from sc_app.ted import TED
from topologies.model import Topology

LOG = logging.getLogger(__name__)

DB_FILE = "sc.sqlite"


class ScCore:
    """Everything the SC knows and does, behind the Ryu shell and the REST controllers."""

    def __init__(self, topology: Topology, state_dir: str, ac_tokens: Mapping[str, str],
                 transport: Transport, k: int = 5, path_order: str = "hops",
                 wavelength_policy: str = "first-fit", seed: Optional[int] = 0,
                 barrier_timeout: float = 2.0, event_keepalive: float = 15.0,
                 switch_hold: float = 0.0,
                 config_snapshot: Optional[dict[str, Any]] = None,
                 spawn: Callable[[Callable[[], None]], Any] = eventlet.spawn):
        os.makedirs(state_dir, exist_ok=True)
        self.topology = topology
        self.transport = transport
        self.spawn = spawn
        #: The reconciliation started when each switch last connected (a green thread).
        self.reconciliations: dict[int, Any] = {}
        self.ac_tokens = dict(ac_tokens)
        self.event_keepalive = event_keepalive
        self.metrics = ScMetrics()
        self.bus = EventBus()
        self.db = Database(os.path.join(state_dir, DB_FILE))
        if config_snapshot is not None:
            self.db.snapshot_config(config_snapshot)
        self.ted = TED(topology)
        self.pce = PCE(self.ted, k=k, order=path_order, policy=wavelength_policy, seed=seed)
        self.alarms = Alarms(self.db, self.bus, self.metrics)
        self.installer = FlowInstaller(transport, barrier_timeout=barrier_timeout)
        #: The SA's installs and removals go through it: reconciliation leaves their cookies.
        self.tracker = CookieTracker(self.installer)
        self.service = ServiceAgent(topology, self.pce, self.db, self.tracker, self.bus,
                                    self.metrics)
        self.pa = ProtocolAgent(topology, self.ted, self.alarms, self.metrics,
                                lambda: list(self.service.lightpaths.values()),
                                switch_hold=switch_hold)
        self.reconciler = Reconciler(transport, self.expected_flows, self.leave_cookie,
                                     timeout=barrier_timeout)
        dropped = self.service.restore()
        if dropped:
            LOG.warning("dropped lightpaths that were not fully set up: %s", dropped)
        # After restore: the lightpaths' wavelengths are held before any fibre event counts.
        self.restorer = Restorer(self.service, self.ted, self.alarms, self.metrics, spawn)
        #: Whether the one restoration check after start (`check_after_start`) was made.
        self.start_checked = False
        LOG.info("SC ready: topology %s (%d nodes, %d links), %d lightpath(s) restored",
                 topology.name, len(topology.nodes), len(topology.links),
                 len(self.service.lightpaths))

    # -- OpenFlow events (the Ryu app calls these and nothing else of the core) ------------

    def switch_connecting(self, dpid: int) -> None:
        """A switch's OpenFlow channel is up: ask for its ports (`port_description`)."""
        self._send(dpid, [parser.OFPPortDescStatsRequest(None, 0)])

    def port_description(self, dpid: int, ports: Mapping[int, bool]) -> list[Any]:
        """A switch's ports (number -> live): it connects (`switch_connected`) the first
        time; later descriptions only update its ports. The messages sent to it."""
        if dpid in self.pa.connected:
            for port, live in ports.items():
                self.port_status(dpid, port, live)
            return []
        return self.switch_connected(dpid, [port for port, live in ports.items() if live])

    def switch_connected(self, dpid: int, live_ports: Iterable[int]) -> list[Any]:
        """A switch connected with these ports live: its base entries are sent, then its
        lightpath entries reconciled (in their own green thread); the last switch back
        after a start has the lightpaths restored. The messages sent (none for a switch
        that is not in the topology, or of another domain)."""
        if self._foreign_switch(dpid):
            return []
        msgs = self.pa.switch_up(dpid, live_ports)
        self._send(dpid, msgs)
        if msgs:
            self.reconciliations[dpid] = self.spawn(functools.partial(self._reconcile, dpid))
            # Fibres still down then never changed state in this process: their
            # lightpaths are restored now.
            self.check_after_start()
        return msgs

    def _foreign_switch(self, dpid: int) -> bool:
        """True (and an alarm) for a switch of another domain than this SC's own: it gets
        no entries, as an unknown switch; the alarm says whose it is."""
        whole = self.topology.whole
        if whole is None or dpid in self.pa.nodes_by_dpid:
            return False
        node = whole.by_dpid().get(dpid)
        if node is None:
            return False  # not in the topology at all: the PA's unknown-switch
        self.alarms.raise_("foreign-switch", "minor", node.id,
                           f"switch {node.id} (dpid {dpid}) of domain {node.domain} connected "
                           f"to the SC of domain {self.topology.domain}")
        return True

    def switch_disconnected(self, dpid: int) -> None:
        """A switch's OpenFlow channel is gone: what waits on it fails, then PA holds it."""
        self.installer.on_switch_down(dpid)
        self.reconciler.on_switch_down(dpid)
        self.pa.switch_down(dpid)

    def port_status(self, dpid: int, port: int, live: bool) -> None:
        """A port of a switch went up or down."""
        self.pa.port_changed(dpid, port, live)

    def barrier_reply(self, dpid: int, xid: int) -> None:
        """A switch answered a barrier."""
        self.installer.on_barrier_reply(dpid, xid)

    def error(self, dpid: int, xid: int, msg: Any) -> bool:
        """A switch answered OFPT_ERROR; False (and logged) when nothing waited for it."""
        if self.reconciler.on_error(dpid, xid, msg) or self.installer.on_error(dpid, xid, msg):
            return True
        LOG.warning("OpenFlow error from %s (xid %s): type %s code %s", dpid, xid,
                    getattr(msg, "type", "?"), getattr(msg, "code", "?"))
        return False

    def stats_reply(self, dpid: int, xid: int, body: list[Any], more: bool) -> None:
        """A flow stats or group description reply (``more``: parts follow)."""
        self.reconciler.on_stats_reply(dpid, xid, body, more)

    def link_discovered(self, src: tuple[int, int], dst: tuple[int, int]) -> None:
        """LLDP saw a link from (dpid, port) to (dpid, port)."""
        if not self._inter_domain(src, dst):
            self.pa.lldp_link(src, dst, True)

    def link_lost(self, src: tuple[int, int], dst: tuple[int, int]) -> None:
        """LLDP no longer sees a link from (dpid, port) to (dpid, port)."""
        if not self._inter_domain(src, dst):
            self.pa.lldp_link(src, dst, False)

    def _inter_domain(self, src: tuple[int, int], dst: tuple[int, int]) -> bool:
        """True for an inter-domain fibre of this SC's domain: recorded in the topology, not
        an unexpected link, and not the PA's (no intra-domain path uses it)."""
        whole = self.topology.whole
        if whole is None:
            return False
        nodes = whole.by_dpid()
        ends = [(nodes[dpid].id, port) for dpid, port in (src, dst) if dpid in nodes]
        return len(ends) == 2 and any(
            {(link.a, link.a_port), (link.b, link.b_port)} == set(ends)
            for link in self.topology.inter_domain_links)

    def packet_in(self, dpid: int, in_port: Optional[int], data: bytes) -> Optional[Any]:
        """A packet a switch sent up: an ARP request for a known host is answered (the
        reply sent is returned); anything else is dropped, never flooded."""
        reply = flows.arp_reply(data, in_port, lambda ip: host_mac(ip, self.topology))
        if reply is not None:
            self._send(dpid, [reply])
        return reply

    def discovery_check(self) -> list[str]:
        """The discovery period is over: the check after start is made even if a switch never
        came back, and fibres LLDP has not seen are alarms (returned)."""
        self.check_after_start(force=True)
        return self.pa.check_discovery()

    def resync(self, dpid: int) -> int:
        """Re-send a switch its base entries and reconcile its lightpath entries (waits);
        the number of messages sent (with the flow stats and group description requests)."""
        base = list(flows.base_flows())
        self._send(dpid, base)
        return len(base) + READ_REQUESTS + self.reconciler.reconcile(dpid).messages

    def _reconcile(self, dpid: int) -> None:
        """Reconcile a switch that connected (its own green thread); a failure is logged."""
        try:
            self.reconciler.reconcile(dpid)
        except Exception:  # noqa: BLE001 - the switch keeps its entries; logged
            LOG.exception("reconciliation of switch %s failed", dpid)
            self.on_handler_failure("reconcile")

    def _send(self, dpid: int, msgs: list[Any]) -> None:
        for msg in msgs:
            try:
                self.transport.send(dpid, msg)
            except SwitchUnreachable:
                LOG.warning("switch %s went away while being programmed", dpid)
                return

    # -- state --------------------------------------------------------------------------------

    def expected_flows(self, dpid: int) -> dict[int, list[Any]]:
        """Cookie -> the messages each settled (up or down) lightpath needs on switch ``dpid``
        (a protected one's groups as the SC last set them: turned or not)."""
        out: dict[int, list[Any]] = {}
        for lp in list(self.service.lightpaths.values()):
            if lp.state in (UP, DOWN):
                turned = self.service.switched.get(lp.id, ())
                msgs = flows.lightpath_flows(self.topology, lp, turned).get(dpid)
                if msgs is not None:
                    out[lp.cookie] = msgs
        return out

    def check_after_start(self, force: bool = False) -> bool:
        """Once after start, when every switch of the topology is connected (or ``force``):
        every recorded lightpath is queued for restoration; True when that happened now.

        Every fibre starts down in this process and goes up as its switches connect: a
        fibre still down then never changes state, so the lightpaths the DBM has on it
        would not be re-routed. Once all switches are connected their ports say which
        fibres work; ``force`` (the Ryu app's first discovery period) covers a switch
        that does not come back.
        """
        if self.start_checked:
            return False
        connected = all(node.dpid in self.pa.connected for node in self.topology.nodes.values())
        if not (connected or force):
            return False
        self.start_checked = True
        broken = self.pa.alarm_down_fibres()
        queued = self.restorer.check_all()
        LOG.info("restoration check after start: %d lightpath(s) looked at, fibres down "
                 "between connected switches: %s", queued, ", ".join(broken) or "none")
        return True

    def leave_cookie(self, cookie: int) -> bool:
        """Whether reconciliation must leave a cookie alone: an operation is working on it."""
        if self.tracker.busy(cookie):
            return True
        return any(lp.cookie == cookie and lp.state not in (UP, DOWN)
                   for lp in list(self.service.lightpaths.values()))

    def view(self, name: str) -> dict[str, Any]:
        """An NRAE view by name (ValueError for an unknown one)."""
        return nrae.view(name, self.pce)

    def set_link_admin(self, link_id: str, up: bool) -> None:
        """OAM: put a fibre administratively up or down."""
        self.ted.set_admin(link_id, up)
        if up:
            self.alarms.clear("link-admin-down", link_id)
        else:
            self.alarms.raise_("link-admin-down", "warning", link_id, "set down by an operator")
        self.pa._gauges()

    def on_handler_failure(self, name: str) -> None:
        """Count an unexpected handler failure (REST or OpenFlow)."""
        self.metrics.handler_errors.labels(handler=name).inc()

    def close(self) -> None:
        """Stop restoration and close the DBM."""
        self.restorer.close()
        self.db.close()
