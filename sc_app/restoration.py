"""Restoration: lightpaths re-routed when a fibre fails, brought back when it returns.

The `Restorer` listens to the TED. A fibre that stops being usable (port
down at either end, LLDP losing it, a switch gone, an operator's admin down)
queues every ``up`` lightpath crossing it; a fibre that becomes usable again
queues every ``down`` lightpath. One worker green thread, started with the
``spawn`` it is given (``hub.spawn`` in the Ryu app), takes the queue in
order and has SA (`ServiceAgent.recover`) re-route each lightpath
make-before-break, or re-install it, or mark it down. The TED callback itself
never waits on a barrier: it runs inside the OpenFlow event handler.

Alarms: ``lightpath-down`` (major) while a lightpath has no working route;
the fibre's own ``link-down`` alarm is PA's.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from sc_app.lightpath import DOWN, UP
from sc_app.metrics import ScMetrics
from sc_app.pa import Alarms
from sc_app.service import ServiceAgent
from sc_app.ted import LINK_STATE, TED, TedEvent

LOG = logging.getLogger(__name__)


class Restorer:
    """Queues the lightpaths a fibre state change affects and recovers them one by one."""

    def __init__(self, service: ServiceAgent, ted: TED, alarms: Alarms, metrics: ScMetrics,
                 spawn: Callable[[Callable[[], None]], Any]):
        self.service = service
        self.alarms = alarms
        self.metrics = metrics
        self.spawn = spawn
        #: lp id -> when its failure (or repair) was seen, in the order seen.
        self.pending: dict[str, float] = {}
        self._worker: Optional[Any] = None
        self._unsubscribe = ted.subscribe(self._on_ted_event)

    @property
    def idle(self) -> bool:
        """True when nothing is queued nor being recovered."""
        return not self.pending and self._worker is None

    def _on_ted_event(self, event: TedEvent) -> None:
        if event.kind != LINK_STATE:
            return
        now = self.service.clock()
        if event.details["usable"]:
            affected = [lp.id for lp in self.service.lightpaths.values() if lp.state == DOWN]
        else:
            affected = [lp.id for lp in self.service.lightpaths.values()
                        if lp.state == UP and (event.link in lp.links or (
                            lp.protection is not None and event.link in lp.protection.links))]
        for lp_id in affected:
            self.pending.setdefault(lp_id, now)
        if self.pending and self._worker is None:
            self._worker = self.spawn(self.run)

    def run(self) -> None:
        """Recover every queued lightpath (the worker's body; also callable directly)."""
        try:
            while self.pending:
                lp_id = next(iter(self.pending))
                since = self.pending.pop(lp_id)
                try:
                    self.recover(lp_id, since)
                except Exception:  # noqa: BLE001 - one lightpath must not stop the others
                    LOG.exception("restoration of %s failed", lp_id)
                    self.metrics.handler_errors.labels(handler="restoration").inc()
        finally:
            self._worker = None

    def recover(self, lp_id: str, since: Optional[float] = None) -> Optional[str]:
        """Recover one lightpath now; its outcome (see `ServiceAgent.recover`)."""
        outcome = self.service.recover(lp_id, since)
        if outcome is None:
            return None
        self.metrics.restorations.labels(outcome=outcome).inc()
        if outcome in ("rerouted", "reinstalled"):
            if since is not None:
                self.metrics.restoration.observe(self.service.clock() - since)
            self.alarms.clear("lightpath-down", lp_id)
        elif outcome == "down":
            lp = self.service.lightpaths.get(lp_id)
            reason = lp.reason if lp is not None and lp.reason else "no working route"
            self.alarms.raise_("lightpath-down", "major", lp_id, reason)
        else:
            self.alarms.clear("lightpath-down", lp_id)
        return outcome

    def close(self) -> None:
        """Stop listening to the TED."""
        self._unsubscribe()
