"""PA: the Protocol Agent (CSO draft §3.2, §5), as plain state.

In the draft the PA drives the control plane's path set-up (RSVP signalling through the
SCI) and receives its routing information (OSPF LSAs), which it hands to the DBM. Here
the control plane is the switches' OpenFlow channels: the PA receives the routing
information — a switch connected or gone, its ports live or not, LLDP seeing a fibre —
and turns it into TED state and alarms, and it gives a (re)connecting switch its base
entries. The paths themselves are set up through the SCI (`sc_app.sci`: barrier-confirmed
flow entries instead of RSVP), and a (re)connecting switch's lightpath entries are
reconciled by `sc_app.reconcile`.

A fibre is operationally up when both its switches are connected and both its ports are
live; LLDP confirms the wiring, and a discovered link that is not the file's fibre is an
alarm, never a crash.

A switch whose OpenFlow connection drops is *held* for ``switch_hold`` seconds
before its fibres count as down: a fail-secure switch keeps forwarding on its
entries, so a control-channel flap must not move traffic. While held, its node
is down in the TED (new routes avoid a switch the SC cannot program) but its
fibres keep their state (the lightpaths crossing them stay, `TED.intact`); a
neighbour's port going down on one of them still takes that fibre down at
once. Back within the hold, the switch is reconciled and nothing else moves;
not back, its fibres go down and restoration re-routes what crossed them.
"""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable, Iterable, Optional

import eventlet

from sc_app import flows
from sc_app.dbm import Database
from sc_app.events import EventBus
from sc_app.lightpath import Lightpath
from sc_app.metrics import ScMetrics
from sc_app.ted import TED
from topologies.model import Topology

LOG = logging.getLogger(__name__)


class Alarms:
    """Raises and clears alarms: persisted in DBM, pushed to ACs, counted in metrics."""

    def __init__(self, db: Database, bus: EventBus, metrics: ScMetrics):
        self.db = db
        self.bus = bus
        self.metrics = metrics
        self._refresh()

    def raise_(self, kind: str, severity: str, subject: str, detail: str = "") -> None:
        """Raise an alarm unless the same one is already active."""
        active = {(a.kind, a.subject) for a in self.db.list_alarms(active=True)}
        alarm = self.db.raise_alarm(kind, severity, subject, detail)
        if (kind, subject) not in active:
            LOG.warning("alarm %s on %s: %s", kind, subject, detail)
            self.bus.publish("alarm", {"event": "raised", "alarm": alarm.to_json()})
        self._refresh()

    def clear(self, kind: str, subject: str) -> None:
        """Clear an active alarm, if any."""
        alarm = self.db.clear_alarm(kind, subject)
        if alarm is not None:
            LOG.info("alarm %s on %s cleared", kind, subject)
            self.bus.publish("alarm", {"event": "cleared", "alarm": alarm.to_json()})
        self._refresh()

    def _refresh(self) -> None:
        counts: dict[str, int] = {}
        for alarm in self.db.list_alarms(active=True):
            counts[alarm.kind] = counts.get(alarm.kind, 0) + 1
        for metric in list(self.metrics.alarms._metrics):  # reset kinds no longer active
            self.metrics.alarms.labels(*metric).set(0)
        for kind, count in counts.items():
            self.metrics.alarms.labels(kind=kind).set(count)


class ProtocolAgent:
    """The draft's PA: switch, port and fibre state of the network, fed by OpenFlow events."""

    def __init__(self, topology: Topology, ted: TED, alarms: Alarms, metrics: ScMetrics,
                 lightpaths: Callable[[], Iterable[Lightpath]], switch_hold: float = 0.0,
                 schedule: Callable[[float, Callable[[], None]], Any] = eventlet.spawn_after):
        #: Seconds a disconnected switch keeps its fibres' state (0: none, down at once).
        self.switch_hold = switch_hold
        #: ``schedule(seconds, fn)`` runs ``fn`` later (the hold's end).
        self.schedule = schedule
        #: Disconnected switches within their hold: dpid -> the hold's number.
        self.held: dict[int, int] = {}
        self._holds = itertools.count(1)
        self.topology = topology
        self.ted = ted
        self.alarms = alarms
        self.metrics = metrics
        self.lightpaths = lightpaths
        self.nodes_by_dpid = topology.by_dpid()
        self.connected: set[int] = set()
        self.live_ports: dict[int, set[int]] = {}
        #: (dpid, port) -> link id, both ends of every fibre.
        self.fibre_at: dict[tuple[int, int], str] = {}
        for link in topology.links:
            self.fibre_at[(topology.nodes[link.a].dpid, link.a_port)] = link.id
            self.fibre_at[(topology.nodes[link.b].dpid, link.b_port)] = link.id
        self.discovered: set[str] = set()
        #: Fibres LLDP lost while their ports stayed live (a cut between the ports): down
        #: until LLDP sees them again or a port or switch event at either end.
        self.lldp_lost: set[str] = set()
        # Until a switch connects, its node and fibres are down.
        for node_id in topology.nodes:
            ted.set_node_up(node_id, False)
        for link in topology.links:
            ted.set_oper(link.id, False)
        self._gauges()

    # -- events -----------------------------------------------------------------------------

    def switch_up(self, dpid: int, live_ports: Iterable[int]) -> list[Any]:
        """A switch connected: the messages to send it (its base entries).

        Its lightpath entries are then reconciled (`sc_app.reconcile.Reconciler`).
        """
        node = self.nodes_by_dpid.get(dpid)
        if node is None:
            self.alarms.raise_("unknown-switch", "minor", f"dpid {dpid}",
                               "a switch that is not in the topology connected")
            return []
        if self.held.pop(dpid, None) is not None:
            LOG.info("switch %s (dpid %s) back within its hold: its fibres never went down",
                     node.id, dpid)
        self.connected.add(dpid)
        self.live_ports[dpid] = set(live_ports)
        self._forget_lldp_loss(node.id)
        self.ted.set_node_up(node.id, True)
        self.alarms.clear("switch-down", node.id)
        self._update_links_of(node.id)
        return list(flows.base_flows())

    def switch_down(self, dpid: int) -> None:
        """A switch disconnected: out of reach at once, its fibres down after the hold."""
        node = self.nodes_by_dpid.get(dpid)
        if node is None or dpid not in self.connected:
            return
        self.connected.discard(dpid)
        self.ted.set_node_up(node.id, False)
        if self.switch_hold > 0:
            hold = self.held[dpid] = next(self._holds)
            self.alarms.raise_("switch-down", "major", node.id,
                               f"switch dpid {dpid} disconnected; its fibres are kept "
                               f"{self.switch_hold:g} s")
            self.schedule(self.switch_hold, lambda: self._guarded_hold_over(dpid, hold))
            self._gauges()
            return
        self.alarms.raise_("switch-down", "major", node.id, f"switch dpid {dpid} disconnected")
        self._gone(dpid)

    def _guarded_hold_over(self, dpid: int, hold: int) -> None:
        try:
            self.hold_over(dpid, hold)
        except Exception:  # noqa: BLE001 - a timer's failure is logged and counted
            LOG.exception("end of the hold of switch %s failed", dpid)
            self.metrics.handler_errors.labels(handler="switch-hold").inc()

    def hold_over(self, dpid: int, hold: int) -> None:
        """The hold of a disconnected switch ended: unless it is back, its fibres go down."""
        if self.held.get(dpid) != hold:
            return  # back meanwhile (or held again since)
        del self.held[dpid]
        node = self.nodes_by_dpid[dpid]
        LOG.warning("switch %s (dpid %s) not back after %g s: its fibres are down", node.id,
                    dpid, self.switch_hold)
        self._gone(dpid)

    def _gone(self, dpid: int) -> None:
        node = self.nodes_by_dpid[dpid]
        self.live_ports.pop(dpid, None)
        self._forget_lldp_loss(node.id)
        self._update_links_of(node.id)

    def port_changed(self, dpid: int, port: int, live: bool) -> None:
        """A port went up or down (OpenFlow port status)."""
        if dpid not in self.connected:
            return
        ports = self.live_ports.setdefault(dpid, set())
        (ports.add if live else ports.discard)(port)
        link_id = self.fibre_at.get((dpid, port))
        if link_id is not None:
            self.lldp_lost.discard(link_id)  # the port's own state says it now
            self._update_link(link_id)

    def lldp_link(self, src: tuple[int, int], dst: tuple[int, int], up: bool) -> None:
        """LLDP saw (or lost) a link from (dpid, port) to (dpid, port)."""
        a, b = self.fibre_at.get(src), self.fibre_at.get(dst)
        if a is None or a != b:
            subject = f"{src[0]}:{src[1]}-{dst[0]}:{dst[1]}"
            if up:
                self.alarms.raise_("unexpected-link", "major", subject,
                                   "LLDP found a link that is not a fibre of the topology")
            else:
                self.alarms.clear("unexpected-link", subject)
            return
        if up:
            self.discovered.add(a)
            self.lldp_lost.discard(a)
            self.alarms.clear("link-undiscovered", a)
        elif src[0] in self.held or dst[0] in self.held:
            return  # Ryu forgets a leaving switch's links: that is the switch, not the fibre
        elif a in self.discovered:
            # A fibre LLDP had confirmed and no longer sees: down, like a port down.
            self.discovered.discard(a)
            self.lldp_lost.add(a)
        self._update_link(a)

    def check_discovery(self) -> list[str]:
        """Fibres whose switches are both connected but that LLDP has not seen: alarms."""
        missing = []
        for link in self.topology.links:
            ends = (self.topology.nodes[link.a].dpid, self.topology.nodes[link.b].dpid)
            if all(d in self.connected for d in ends) and link.id not in self.discovered:
                missing.append(link.id)
                self.alarms.raise_("link-undiscovered", "minor", link.id,
                                   "both switches are connected but LLDP has not seen the fibre")
        return missing

    def alarm_down_fibres(self) -> list[str]:
        """Fibres down between two connected switches: ``link-down`` alarms (after a start,
        a fibre down all along never went from up to down here, so nothing raised one)."""
        down = []
        for link in self.topology.links:
            ends = (self.topology.nodes[link.a].dpid, self.topology.nodes[link.b].dpid)
            if all(d in self.connected for d in ends) and not self.ted.oper_up[
                    self.ted.index(link.id)]:
                down.append(link.id)
                self.alarms.raise_("link-down", "major", link.id,
                                   "LLDP lost the fibre" if link.id in self.lldp_lost
                                   else "fibre port down")
        return down

    # -- helpers ----------------------------------------------------------------------------

    def _forget_lldp_loss(self, node_id: str) -> None:
        """A switch came or went: its ports' state decides its fibres, not a past LLDP loss."""
        for link in self.topology.links:
            if node_id in (link.a, link.b):
                self.lldp_lost.discard(link.id)

    def _update_links_of(self, node_id: str) -> None:
        for link in self.topology.links:
            if node_id in (link.a, link.b):
                self._update_link(link.id)
        self._gauges()

    def _update_link(self, link_id: str) -> None:
        link = self.topology.link(link_id)
        ends = ((self.topology.nodes[link.a].dpid, link.a_port),
                (self.topology.nodes[link.b].dpid, link.b_port))
        # A held switch keeps its ports' last state: its fibres are as they were.
        present = [dpid in self.connected or dpid in self.held for dpid, _ in ends]
        up = link_id not in self.lldp_lost and all(present) and all(
            port in self.live_ports.get(dpid, ()) for dpid, port in ends)
        was = self.ted.oper_up[self.ted.index(link_id)]
        if up != was:
            self.ted.set_oper(link_id, up)
            if up:
                self.alarms.clear("link-down", link_id)
            elif all(present):
                # A port down between two connected switches is a fibre failure.
                self.alarms.raise_("link-down", "major", link_id,
                                   "LLDP lost the fibre" if link_id in self.lldp_lost
                                   else "fibre port down")
        self._gauges()

    def _gauges(self) -> None:
        self.metrics.switches.set(len(self.connected))
        self.metrics.links_up.set(sum(1 for i in range(len(self.ted.links))
                                      if self.ted.usable_index(i)))

    def snapshot(self) -> list[dict[str, Any]]:
        """Switches as SMI shows them."""
        out = []
        for node_id in self.ted.node_ids:
            node = self.topology.nodes[node_id]
            out.append({"node": node_id, "name": node.name, "dpid": node.dpid,
                        "connected": node.dpid in self.connected,
                        "held": node.dpid in self.held,
                        "live_ports": sorted(self.live_ports.get(node.dpid, ()))})
        return out

    def dpid_of(self, node_id: str) -> Optional[int]:
        """The dpid of a node, or None."""
        node = self.topology.nodes.get(node_id)
        return None if node is None else node.dpid
