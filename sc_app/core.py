"""The Service Controller's parts wired together, without Ryu.

`ScCore` owns TED, SA-PCE, DBM, PA, flow reconciliation, SA, NRAE access,
alarms, events and metrics for one topology. The Ryu application (`sc_app.app`) feeds it OpenFlow
events and gives it a transport to the switches; tests give it a fake one.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Mapping, Optional

import eventlet

from sc_app import flows, nrae
from sc_app.dbm import Database
from sc_app.events import EventBus
from sc_app.installer import FlowInstaller, Transport
from sc_app.lightpath import DOWN, UP
from sc_app.metrics import ScMetrics
from sc_app.pa import Alarms, ProvisioningAgent
from sc_app.pce import PCE
from sc_app.reconcile import CookieTracker, Reconciler
from sc_app.restoration import Restorer
from sc_app.sa import ServiceAgent
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
        self.pa = ProvisioningAgent(topology, self.ted, self.alarms, self.metrics,
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
