"""Restoration: lightpaths re-routed when a fibre fails, brought back when it returns.

The `Restorer` listens to the TED. A fibre that stops being intact (port
down at either end, LLDP losing it, a switch gone for longer than PA's hold,
an operator's admin down) queues every ``up`` lightpath crossing it; a fibre
that becomes usable again, or a switch that reconnects, queues every ``down``
lightpath. A switch that loses its OpenFlow connection is first only out of
reach (PA's ``switch_hold``): new routes avoid it, the lightpaths crossing it
stay where they are, since it keeps forwarding.

One worker green thread, started with the ``spawn`` it is given (``hub.spawn``
in the Ryu app), takes everything queued at once and has the `Recovery` recover
it (`Recovery.recover_all`): new routes computed one by one, the
make-before-breaks computed so far sent to the switches as one batch every few
ms meanwhile (one barrier per switch and step), each lightpath rolled back or
marked down on its own. What a fibre change queues meanwhile is the next round;
the lightpaths of the round in progress are queued again too (their new route
may cross the fibre that just failed, or the one that just returned may bring
one just marked down back), and nothing is done for those that are fine.
The TED callback itself never waits on a barrier: it runs inside the OpenFlow
event handler.

`check_all` queues every settled lightpath whatever happened: after an SC restart, a
fibre already down when the SC came back makes no state change (it was never usable
in this process), so the Ryu app calls it once link state has settled.

The `Recovery` holds no state of its own: it reserves and gives back routes with
SA-PCE, installs through the SA's installer (the SCI) and records every change through
the SA (`ServiceAgent.set_state`, ``record``, ``set_switched``, ``publish``), so a
lightpath's record, its wavelengths and its AC's events change exactly as for a request.

Alarms: ``lightpath-down`` (major) while a lightpath has no working route;
the fibre's own ``link-down`` alarm is PA's.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable, Mapping, Optional

import eventlet

from sc_app import flows
from sc_app.lightpath import DOWN, UP, Lightpath
from sc_app.metrics import ScMetrics
from sc_app.pa import Alarms
from sc_app.pce import Constraints, NoPath, Path
from sc_app.sa import ServiceAgent
from sc_app.sci import InstallResult
from sc_app.ted import LINK_STATE, NODE_STATE, TED, TedEvent

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class _Reroute:
    """One lightpath's make-before-break re-route, its new route reserved, not yet installed."""

    old: Lightpath
    new: Lightpath
    path: Path
    started: float
    rest: flows.FlowMessages
    ingress: flows.FlowMessages


class Recovery:
    """Brings the lightpaths a fibre change hit back into service, through the SA."""

    def __init__(self, sa: ServiceAgent, batch_interval: float = 0.005):
        self.sa = sa
        self.topology = sa.topology
        self.pce = sa.pce
        self.ted = sa.ted
        self.installer = sa.installer
        self.metrics = sa.metrics
        #: The re-routes computed so far go to the switches this often (s).
        self.batch_interval = batch_interval

    def recover(self, lp_id: str, since: Optional[float] = None) -> Optional[str]:
        """Bring a lightpath hit by a failure (or waiting for a repair) back into service.

        An ``up`` lightpath whose route is broken is re-routed make-before-break;
        a ``down`` one is re-installed on its route when that works again, else
        re-routed. The outcome: ``"rerouted"``, ``"reinstalled"``, ``"down"`` (no
        restoration path, or the install failed), ``"switched"`` (a protected one's
        groups turned), ``"gone"`` (torn down meanwhile) or None (nothing to do).
        ``since``: when the failure was seen (``clock``), for the restoration time.
        """
        return self.recover_all({lp_id: since})[lp_id]

    def recover_all(self, pending: Mapping[str, Optional[float]]) -> dict[str, Optional[str]]:
        """`recover` for several lightpaths (id -> ``since``), the re-routes in parallel.

        Protected lightpaths first (at most a group MODIFY each); then the broken ones are
        re-routed (`_reroute_waves`); last the re-installs of down lightpaths whose route
        works again.
        """
        outcomes: dict[str, Optional[str]] = dict.fromkeys(pending)
        for lp_id in pending:
            lp = self._recoverable(lp_id)
            if lp is not None and lp.protection is not None:
                outcomes[lp_id] = self._guarded(lp_id, self._recover_protected, lp)
        reinstall = [lp_id for lp_id in pending if self._whole(lp_id)]
        outcomes.update(self._reroute_waves(
            [(lp_id, since) for lp_id, since in pending.items() if self._broken(lp_id)]))
        for lp_id in reinstall:
            lp = self._recoverable(lp_id)
            if lp is not None and lp.state == DOWN:
                outcomes[lp_id] = self._guarded(lp_id, self._reinstall, lp)
        return outcomes

    def _reroute_waves(self, broken: list[tuple[str, Optional[float]]]) -> dict[str, str]:
        """Re-route broken lightpaths in waves, each wave's installs in parallel batches.

        A wave computes a new route for each, one after the other (SA-PCE: a wavelength
        is never taken twice); the re-routes computed so far go to the switches as one
        batch (`_reroute_all`, in its own green thread) every ``batch_interval`` while
        the next ones are being computed, so the first are restored while the last are
        planned. The old routes' wavelengths are only given back when a batch is over
        (make-before-break), so a lightpath SA-PCE finds no route for tries again in
        the next wave, once every batch of this one is over; it is down only when a wave
        moved nothing.
        """
        outcomes: dict[str, str] = {}
        while broken:
            pool = eventlet.GreenPool()
            batches: list[Any] = []
            batch: list[_Reroute] = []
            blocked: list[tuple[str, Optional[float], NoPath]] = []
            flushed = self.sa.clock()
            for lp_id, since in broken:
                lp = self.sa.lightpaths[lp_id] if self._broken(lp_id) else None
                step = None if lp is None else self._guarded(lp_id, self._plan_reroute, lp,
                                                             since)
                if isinstance(step, _Reroute):
                    batch.append(step)
                elif isinstance(step, NoPath):
                    blocked.append((lp_id, since, step))
                if batch and self.sa.clock() - flushed >= self.batch_interval:
                    batches.append(pool.spawn(self._reroute_all, batch))
                    batch, flushed = [], self.sa.clock()
                eventlet.sleep(0)  # the batches in flight get their replies
            if batch:
                batches.append(pool.spawn(self._reroute_all, batch))
            if not batches:
                for lp_id, _since, path in blocked:
                    outcomes[lp_id] = self._down(self.sa.lightpaths[lp_id],
                                                 f"no restoration path: {path.reason}")
                break
            for thread in batches:
                outcomes.update(thread.wait())
            broken = [(lp_id, since) for lp_id, since, _path in blocked]
        return outcomes

    def _whole(self, lp_id: str) -> bool:
        """An unprotected down lightpath whose own route works again (to re-install)."""
        lp = self._recoverable(lp_id)
        return (lp is not None and lp.protection is None and lp.state == DOWN
                and all(self.ted.usable(link) for link in lp.links))

    def _broken(self, lp_id: str) -> bool:
        """An unprotected settled lightpath whose route crosses a fibre that is not intact."""
        lp = self._recoverable(lp_id)
        return (lp is not None and lp.protection is None
                and not all(self.ted.intact(link) for link in lp.links))

    def _recoverable(self, lp_id: str) -> Optional[Lightpath]:
        """A lightpath restoration may act on: settled (up or down) and holding a wavelength."""
        lp = self.sa.lightpaths.get(lp_id)
        if lp is None or lp.state not in (UP, DOWN) or lp.wavelength is None:
            return None
        return lp

    def _guarded(self, lp_id: str, step: Callable[..., Any], *args: Any) -> Any:
        """``step(*args)``; an unexpected failure is logged and counted, the others go on."""
        try:
            return step(*args)
        except Exception:  # noqa: BLE001 - one lightpath must not stop the others
            LOG.exception("recovery of %s failed", lp_id)
            self.metrics.handler_errors.labels(handler="restoration").inc()
            return None

    def _recover_protected(self, lp: Lightpath) -> Optional[str]:
        """A protected lightpath is never re-routed: its switches fail over by themselves.

        Up while either route is whole (its entries stay as they are); down when both
        are broken; up again, with its entries untouched, once either is whole again.
        A fast-failover group sees only its own switch's ports: the ingress next to a
        broken working fibre fails over by itself; an ingress that cannot see the
        break (the far end, or any break in the middle of the route) is turned
        protection-first by one group MODIFY from here (no flow mod). Non-revertive:
        it stays on protection until the protection route breaks.
        """
        assert lp.protection is not None
        w_ok, p_ok = (all(self.ted.intact(link) for link in links)
                      for links in (lp.links, lp.protection.links))
        if not (w_ok or p_ok):
            return self._down(lp, "working and protection routes both broken")
        switched = self.sa.switched.get(lp.id, frozenset())
        changes = {}
        for reverse in (False, True):
            first = lp.links[-1] if reverse else lp.links[0]
            if reverse not in switched and not w_ok and self.ted.intact(first):
                changes[reverse] = True  # this end cannot see the break: turn it
            elif reverse in switched and not p_ok and w_ok:
                changes[reverse] = False  # non-revertive: back only when protection breaks
        if changes:
            messages: dict[int, list] = {}
            for reverse, protection_first in changes.items():
                dpid, group = flows.protection_group(self.topology, lp, reverse,
                                                     protection_first, modify=True)
                messages.setdefault(dpid, []).append(group)
            result = self.installer.install(flows.GROUP_BATCH_COOKIE, messages)
            if not result.ok:
                LOG.warning("switch-over of %s failed on %s: %s", lp.id, result.dpid,
                            result.reason)
            for reverse, protection_first in changes.items():
                self.sa.set_switched(lp.id, reverse, protection_first)
        LOG.info("protected lightpath %s: working %s, protection %s, %s", lp.id,
                 "whole" if w_ok else "broken", "whole" if p_ok else "broken",
                 f"groups turned {changes}" if changes else "groups unchanged")
        if lp.state == DOWN:
            self.sa.set_state(lp, UP)
            return "reinstalled"
        return "switched" if changes else None

    def _plan_reroute(self, old: Lightpath, since: Optional[float]) -> NoPath | _Reroute:
        """Reserve a new route for a broken lightpath: its re-route, or why there is none."""
        path = self.pce.reserve(old.route[0], old.route[-1],
                                Constraints.from_dict(old.constraints), owner=old.id)
        if isinstance(path, NoPath):
            return path
        started = self.sa.clock() if since is None else since
        cookie = self.sa.new_cookie()
        new = dataclasses.replace(old, route=path.route, links=path.links,
                                  wavelength=path.wavelength, cookie=cookie, state=UP,
                                  reason=None, updated_at=time.time())
        rest, ingress = flows.split_for_reroute(flows.lightpath_flows(self.topology, new))
        return _Reroute(old, new, path, started, rest, ingress)

    def _reroute_all(self, plans: list[_Reroute]) -> dict[str, str]:
        """Make-before-break for many lightpaths at once, in three batches (one barrier per
        switch each): every new transit and egress entry, then every ingress swap, then
        every old entry out. A lightpath whose install fails (or that was torn down
        meanwhile) is rolled back on its own (`_abandon`); the others go on."""
        if not plans:
            return {}
        failed: list[tuple[_Reroute, Optional[InstallResult]]] = []
        live = plans
        for stage in ("rest", "ingress"):
            results = self.installer.install_many(
                [(plan.new.cookie, getattr(plan, stage)) for plan in live])
            kept = []
            for plan, result in zip(live, results):
                if result.ok and self.sa.lightpaths.get(plan.old.id) is plan.old:
                    kept.append(plan)
                else:
                    failed.append((plan, result))
            live = kept
        # Recorded before anything else waits: reconciliation takes a cookie that is neither
        # recorded nor being installed for a stale one.
        for plan in live:
            self.sa.record(plan.new)
        outcomes = self._abandon(failed)
        removed = self.installer.remove_many(
            [(plan.old.cookie, flows.lightpath_dpids(self.topology, plan.old))
             for plan in live])
        for plan, result in zip(live, removed):
            outcomes[plan.old.id] = self._rerouted(plan, result)
        return outcomes

    def _abandon(self, failed: list[tuple[_Reroute, Optional[InstallResult]]]
                 ) -> dict[str, str]:
        """Re-routes that failed or whose lightpath was torn down: nothing of the new
        routes stays (entries and wavelengths); a failed one's lightpath is marked down."""
        if not failed:
            return {}
        self.installer.remove_many(
            [(plan.new.cookie, flows.lightpath_dpids(self.topology, plan.new))
             for plan, _ in failed])
        outcomes = {}
        for plan, result in failed:
            self.pce.release(plan.path, plan.old.id)
            if self.sa.lightpaths.get(plan.old.id) is not plan.old:
                outcomes[plan.old.id] = "gone"
            else:
                why = f"{result.code}: {result.reason}" if result is not None else "?"
                outcomes[plan.old.id] = self._down(plan.old, f"re-route failed: {why}")
        return outcomes

    def _rerouted(self, plan: _Reroute, removed: InstallResult) -> str:
        """A re-route's last step, its old entries removed: old wavelength back, AC told."""
        old, new = plan.old, plan.new
        if not removed.ok:
            LOG.warning("re-route of %s left old entries on %s: %s", old.id, removed.unclean,
                        removed.reason)
        self.ted.release(old.links, old.wavelength, old.id)
        if self.sa.lightpaths.get(new.id) is not new:
            return "gone"  # torn down while the old entries were being removed
        elapsed = self.sa.clock() - plan.started
        LOG.info("lightpath %s re-routed %s -> %s (λ %s -> %s) in %.1f ms", old.id,
                 "-".join(old.route), "-".join(new.route), old.wavelength, new.wavelength,
                 elapsed * 1e3)
        self.sa.publish(new, "rerouted", old={
            "route": list(old.route), "links": list(old.links), "wavelength": old.wavelength,
            "vlan_vid": old.vlan_vid, "cookie": f"{old.cookie:#018x}", "state": old.state},
            restoration_ms=round(elapsed * 1e3, 3))
        return "rerouted"

    def _reinstall(self, lp: Lightpath) -> str:
        """A down lightpath whose route works again: its entries afresh, then up."""
        dpids = flows.lightpath_dpids(self.topology, lp)
        self.installer.remove(lp.cookie, dpids)
        result = self.installer.install(lp.cookie, flows.lightpath_flows(self.topology, lp))
        if self.sa.lightpaths.get(lp.id) is not lp:
            self.installer.remove(lp.cookie, dpids)  # torn down meanwhile
            return "gone"
        if not result.ok:
            return self._down(lp, f"re-install failed: {result.code}: {result.reason}")
        self.sa.set_state(lp, UP)
        return "reinstalled"

    def _down(self, lp: Lightpath, reason: str) -> str:
        if lp.state == UP:
            self.sa.set_state(lp, DOWN, reason)
        LOG.warning("lightpath %s down: %s", lp.id, reason)
        return "down"


class Restorer:
    """Queues the lightpaths a fibre state change affects and recovers them in rounds."""

    def __init__(self, sa: ServiceAgent, ted: TED, alarms: Alarms, metrics: ScMetrics,
                 spawn: Callable[[Callable[[], None]], Any], batch_interval: float = 0.005):
        self.sa = sa
        #: What recovers each round's lightpaths.
        self.recovery = Recovery(sa, batch_interval)
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
            affected = [lp.id for lp in self.sa.lightpaths.values()
                        if lp.state == UP and (event.link in lp.links or (
                            lp.protection is not None and event.link in lp.protection.links))]
        elif event.details["usable"]:
            affected = self._down_ones()
        else:
            return  # intact again, but a node is out of reach: wait for it
        self._queue([*affected, *self.in_flight], self.sa.clock())

    def _down_ones(self) -> list[str]:
        return [lp.id for lp in self.sa.lightpaths.values() if lp.state == DOWN]

    def check_all(self) -> int:
        """Queue every settled lightpath (e.g. after a restart); how many were queued."""
        lp_ids = [lp.id for lp in self.sa.lightpaths.values() if lp.state in (UP, DOWN)]
        self._queue(lp_ids, self.sa.clock())
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
                    outcomes = self.recovery.recover_all(batch)
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
        """Recover one lightpath now; its outcome (see `Recovery.recover`)."""
        return self._account(lp_id, self.recovery.recover(lp_id, since), since)

    def _account(self, lp_id: str, outcome: Optional[str],
                 since: Optional[float]) -> Optional[str]:
        """Metrics and alarms of one lightpath's outcome."""
        if outcome is None:
            return None
        self.metrics.restorations.labels(outcome=outcome).inc()
        if outcome in ("rerouted", "reinstalled"):
            if since is not None:
                self.metrics.restoration.observe(self.sa.clock() - since)
            self.alarms.clear("lightpath-down", lp_id)
        elif outcome == "down":
            lp = self.sa.lightpaths.get(lp_id)
            reason = lp.reason if lp is not None and lp.reason else "no working route"
            self.alarms.raise_("lightpath-down", "major", lp_id, reason)
        else:
            self.alarms.clear("lightpath-down", lp_id)
        return outcome

    def close(self) -> None:
        """Stop listening to the TED."""
        self._unsubscribe()
