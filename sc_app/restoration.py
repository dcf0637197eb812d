"""Restoration: lightpaths re-routed when a fibre fails, brought back when it returns.

The `Restorer` listens to the TED. A fibre that stops being intact (port
down at either end, LLDP losing it, a switch gone for longer than PA's hold,
an operator's admin down) queues every ``up`` lightpath crossing it; a fibre
that becomes usable again, or a switch that reconnects, queues every ``down``
lightpath. A switch that loses its OpenFlow connection is first only out of
reach (PA's ``switch_hold``): new routes avoid it, the lightpaths crossing it
stay where they are, since it keeps forwarding.

One worker green thread, started with the ``spawn`` it is given (``hub.spawn``
in the Ryu app), takes everything queued at once and has SA
(`ServiceAgent.recover_all`) recover it: new routes computed one by one, the
make-before-breaks computed so far sent to the switches as one batch every few
ms meanwhile (one barrier per switch and step), each lightpath rolled back or
marked down on its own. What a fibre change queues meanwhile is the next round;
the lightpaths of the round in progress are queued again too (their new route
may cross the fibre that just failed, or the one that just returned may bring
one just marked down back), and SA finds nothing to do for those that are fine.
The TED callback itself never waits on a barrier: it runs inside the OpenFlow
event handler.

`check_all` queues every settled lightpath whatever happened: after an SC restart, a
fibre already down when the SC came back makes no state change (it was never usable
in this process), so the Ryu app calls it once link state has settled.

Alarms: ``lightpath-down`` (major) while a lightpath has no working route;
the fibre's own ``link-down`` alarm is PA's.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from sc_app.lightpath import DOWN, UP
from sc_app.metrics import ScMetrics
from sc_app.pa import Alarms
from sc_app.sa import ServiceAgent
from sc_app.ted import LINK_STATE, NODE_STATE, TED, TedEvent

LOG = logging.getLogger(__name__)


class Restorer:
    """Queues the lightpaths a fibre state change affects and recovers them in rounds."""

    def __init__(self, service: ServiceAgent, ted: TED, alarms: Alarms, metrics: ScMetrics,
                 spawn: Callable[[Callable[[], None]], Any]):
        self.service = service
        self.alarms = alarms
        self.metrics = metrics
        self.spawn = spawn
        #: lp id -> when its failure (or repair) was seen, in the order seen.
        self.pending: dict[str, float] = {}
        #: The lightpaths of the round being recovered now.
        self.in_flight: frozenset[str] = frozenset()
        self._worker: Optional[Any] = None
        self._unsubscribe = ted.subscribe(self._on_ted_event)

    @property
    def idle(self) -> bool:
        """True when nothing is queued nor being recovered."""
        return not self.pending and self._worker is None

    def _on_ted_event(self, event: TedEvent) -> None:
        if event.kind == NODE_STATE:
            if not event.details["up"]:
                return  # nothing breaks: the node's fibres say when they do
            # A switch back within its hold: a re-route it blocked may go through now.
            affected = self._down_ones()
        elif event.kind != LINK_STATE:
            return
        elif not event.details["intact"]:
            affected = [lp.id for lp in self.service.lightpaths.values()
                        if lp.state == UP and (event.link in lp.links or (
                            lp.protection is not None and event.link in lp.protection.links))]
        elif event.details["usable"]:
            affected = self._down_ones()
        else:
            return  # intact again, but a node is out of reach: wait for it
        self._queue([*affected, *self.in_flight], self.service.clock())

    def _down_ones(self) -> list[str]:
        return [lp.id for lp in self.service.lightpaths.values() if lp.state == DOWN]

    def check_all(self) -> int:
        """Queue every settled lightpath (e.g. after a restart); how many were queued."""
        lp_ids = [lp.id for lp in self.service.lightpaths.values() if lp.state in (UP, DOWN)]
        self._queue(lp_ids, self.service.clock())
        return len(lp_ids)

    def _queue(self, lp_ids: list[str], now: float) -> None:
        for lp_id in lp_ids:
            self.pending.setdefault(lp_id, now)
        if self.pending and self._worker is None:
            self._worker = self.spawn(self.run)

    def run(self) -> None:
        """Recover every queued lightpath, round after round (the worker's body; also
        callable directly)."""
        try:
            while self.pending:
                batch, self.pending = self.pending, {}
                self.in_flight = frozenset(batch)
                try:
                    outcomes = self.service.recover_all(batch)
                except Exception:  # noqa: BLE001 - the next round must still run
                    LOG.exception("restoration of %s failed", ", ".join(batch))
                    self.metrics.handler_errors.labels(handler="restoration").inc()
                    continue
                finally:
                    self.in_flight = frozenset()
                for lp_id, outcome in outcomes.items():
                    self._account(lp_id, outcome, batch.get(lp_id))
        finally:
            self._worker = None

    def recover(self, lp_id: str, since: Optional[float] = None) -> Optional[str]:
        """Recover one lightpath now; its outcome (see `ServiceAgent.recover`)."""
        return self._account(lp_id, self.service.recover(lp_id, since), since)

    def _account(self, lp_id: str, outcome: Optional[str],
                 since: Optional[float]) -> Optional[str]:
        """Metrics and alarms of one lightpath's outcome."""
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
