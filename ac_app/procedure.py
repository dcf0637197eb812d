"""The CSO procedure (CSO draft §5): from a user's request to a server and a lightpath.

`Procedure.submit` serves an `AppRequest` the UA (`ac_app.ua`) parsed and authorised::

    record (pending) -> SSE: the strategy on the ARAE's application view and, for NB/GLB, one
    ASI evaluation -> reserve the server (the DC agent creates a VM) -> ASI lightpath from the
    user's host to the VM -> accounting (active, rating) -> the record

Stages of a pending request: ``selecting``, ``reserving-server``, ``connecting``. Statuses::

    pending ──▶ active ──▶ releasing ──▶ released        (DELETE or expiry)
       │
       ├──▶ refused   a stratum said no: no server fits, no path, agent or SC refusal
       └──▶ failed    a peer did not answer or answered nonsense, or a bug

Any failure gives back everything already taken, lightpath first, then the VM, and the
`RequestError` names the stratum and the reason. Its kind decides the record's status
(refused or failed) and, at the UAI (`ac_app.uai`), the answer (``error`` code, HTTP status):

=========================================  ===========  ===========  ===================
what happened                              stratum      kind         UAI answer
=========================================  ===========  ===========  ===================
strategy: no server up with room           application  refused      409 refused
strategy: no feasible path to a candidate  network      refused      409 refused
agent refuses the VM (409, 422: full...)   application  refused      409 refused
SC refuses the lightpath (409, 422)        network      refused      409 refused
agent / SC unreachable, SC install failed  its own      unavailable  503 unavailable
agent / SC answered another error          its own      bad-answer   502 bad-gateway
=========================================  ===========  ===========  ===================

Nothing the AC holds is forgotten: the record keeps the VM id (= the request id, so a VM whose
creation answer was lost is still found) and the lightpath id until the agent or the SC has
confirmed the release, and `housekeeping` retries releases that a peer did not confirm.

Leftovers (a release not confirmed: a dead agent, an unreachable SC) are retried every
`CLEANUP_INTERVAL` for as long as it takes, since the peer may come back; the record counts
the attempts, since when, and the last error. Once that has lasted ``leftover_alarm_after_s``
(``[ac]`` option, 300 s by default) an alarm is raised (``GET /uai/v1/alarms`` for provider
managers) and a warning logged, once; it clears when the release is confirmed. Retrying stops
only when the DC is declared gone: its agent removed from ``[ac] agents`` (an AC restart),
after which its VMs are forgotten with a warning.

What a peer makes for a request the AC already settled (a call of a killed AC that the SC or
an agent was still working on when `recover` looked for it) belongs to no request: the orphan
sweep of `housekeeping` (`ac_app.orphans`, every ``[ac] orphan_sweep_interval_s``) finds it
and releases it.

VM migration (CSO draft §6.2, `ac_app.migration`) runs the same steps (`select`, `create_vm`,
`establish`, `give_back`, `abandon`) in another order.

A server at the user's own node needs no fibre (the strategies' ``LOCAL_PATH``): the SC
joins the two hosts inside the node's switch, a "lightpath" of 0 hops without a wavelength.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

from ac_app.arae import AgentRefused, AgentUnreachable

import eventlet.semaphore  # noqa: I100 - after ac_app.arae, which silences eventlet's notice
from ac_app.asi_client import AsiError, AsiNetworkView, AsiUnreachable
from ac_app.config import User
from ac_app.db import (ACTIVE, FAILED, PENDING, REFUSED, RELEASED, RELEASING,
                       UNKNOWN_LIGHTPATH, Record, RequestStore, StatusChanged)
from ac_app.orphans import ORPHAN_SWEEP_INTERVAL_S, OrphanSweep
from ac_app.peers import AppStratum, Network
from ac_app.requests import AppRequest, Kind, RequestError
from ac_app.resources import AppView, Demand
from ac_app.sse import APPLICATION, NETWORK, Choice, Sse
from cso_base.wire import NO_PATH
from topologies.model import Topology

LOG = logging.getLogger(__name__)

SELECTING, RESERVING, CONNECTING = "selecting", "reserving-server", "connecting"

#: QoE: the one-way delay budget of a request that names none (about NSFNET coast to coast).
REFERENCE_DELAY_MS = 25.0
#: Seconds between retries of releases a peer did not confirm.
CLEANUP_INTERVAL = 10.0
#: Seconds of unconfirmed release retries before an alarm (``[ac] leftover_alarm_after_s``).
LEFTOVER_ALARM_AFTER_S = 300.0

#: Agent refusals that mean "not here, not now" (the application stratum says no).
_AGENT_REFUSALS = (409, 422)
#: SC refusals: no path, endpoint in use (409); an endpoint or constraint it cannot serve (422).
_SC_REFUSALS = (409, 422)


def qoe_rating(delay_ms: Optional[float], max_delay_ms: Optional[float] = None) -> Optional[int]:
    """QoE of a served request, 1 to 5 stars, from its path's one-way delay against its budget.

    The budget is the user's ``max_delay_ms``, else `REFERENCE_DELAY_MS`; the delay uses up
    at most 20 % of it: 5, 40 %: 4, 60 %: 3, 80 %: 2, more: 1. A server at the user's own node
    (a local connection, no fibre) is 5; an unknown delay is not rated (None).
    """
    if delay_ms is None:
        return None
    budget = max_delay_ms if max_delay_ms else REFERENCE_DELAY_MS
    used = delay_ms / budget
    for stars, share in ((5, 0.2), (4, 0.4), (3, 0.6), (2, 0.8)):
        if used <= share + 1e-9:
            return stars
    return 1


def rating(lightpath: Mapping[str, Any], request: AppRequest) -> Optional[int]:
    """The QoE rating of ``request`` served over ``lightpath`` (a `Procedure.establish` summary)."""
    return qoe_rating(lightpath["delay_ms"], request.constraints.get("max_delay_ms"))


class Procedure:
    """The CSO procedure at work: serves, releases, expires and accounts application requests."""

    def __init__(self, db: RequestStore, app: AppStratum, asi: Network, sse: Sse,
                 topology: Topology, clock: Callable[[], float] = time.time,
                 leftover_alarm_after_s: float = LEFTOVER_ALARM_AFTER_S,
                 orphan_sweep_interval_s: float = ORPHAN_SWEEP_INTERVAL_S,
                 orphan_sweep_vms: bool = True):
        self.db = db
        self.app = app
        self.asi = asi
        self.sse = sse
        self.topology = topology
        self.clock = clock
        self.leftover_alarm_after_s = leftover_alarm_after_s
        # Choosing a server and reserving it is one step: two requests choosing at once on the
        # same view would both pick the emptiest server. The lightpath set-up runs in parallel.
        self.selecting = eventlet.semaphore.Semaphore(1)
        self._next_cleanup = 0.0
        # What the peers hold for this AC but no request holds (`ac_app.orphans`).
        self.orphans = OrphanSweep(db, app, asi, clock, orphan_sweep_interval_s,
                                   orphan_sweep_vms, refresh=self.refresh)

    # -- the procedure -------------------------------------------------------------------------

    def submit(self, user: User, request: AppRequest) -> Record:
        """Serve ``user``'s request: the active record, or the `RequestError` that says why not
        (with the ``id`` of the record that keeps the outcome)."""
        record = self.db.create(owner=user.name, type=request.type, status=PENDING,
                                stage=SELECTING, created=self.clock(), src=request.src,
                                src_node=request.src_node, duration_s=request.duration_s,
                                strategy=self.sse.name, spec=request.to_json(),
                                cpu=float(request.demand.cpu),
                                memory_gb=float(request.demand.memory_gb),
                                disk_gb=float(request.demand.disk_gb))
        LOG.info("%s: %s asks %s from %s (%s)", record.id, user.name, request.type, request.src,
                 record.spec)
        try:
            return self._provision(record, request)
        except RequestError as err:
            self.abandon(record, outcome(err), err.stratum, err.reason, err.detail or "")
            raise err.with_facts(id=record.id) from None
        except Exception:
            LOG.exception("%s: the procedure failed", record.id)
            self.abandon(record, FAILED, None, "internal", "unexpected error; see the AC log")
            raise

    def _provision(self, record: Record, request: AppRequest) -> Record:
        with self.selecting:
            choice = self.select(request, self.app.app_view())
            record = self.db.update(record, stage=RESERVING, dc=choice.server.dc,
                                    node=choice.node, server=choice.server.server,
                                    choice=dict(choice.details), vm_id=record.id)
            vm = self.create_vm(record.id, choice, request.demand)
            record = self.db.update(record, server=vm["server"], vm_ip=vm["ip"])
            self.refresh(record.dc)
        record = self.db.update(record, stage=CONNECTING)
        record, lightpath = self.establish(record, request)
        now = self.clock()
        record = self.db.update(
            record, expect=PENDING, status=ACTIVE, stage=None, started=now,
            ends_at=now + request.duration_s, lightpath=lightpath,
            rating=rating(lightpath, request))
        LOG.info("%s: active on %s/%s at %s over %s (%s hops)", record.id, record.dc,
                 record.server, record.vm_ip, lightpath["id"], lightpath["hops"])
        return record

    # -- its steps (the migration runs them too) -----------------------------------------------

    def select(self, request: AppRequest, view: AppView) -> Choice:
        """The SSE's choice of a server for ``request`` on ``view``; `RequestError` when none."""
        net = AsiNetworkView(self.asi, request.constraints)
        with network_step():
            decision = self.sse.choose(request.src_node, request.demand, view, net)
        if not decision.ok:
            raise RequestError.stratum_failed(Kind.REFUSED, decision.stratum, decision.reason,
                                              decision.detail)
        return decision

    def create_vm(self, vm_id: str, choice: Choice, demand: Demand,
                  ip: Optional[str] = None) -> dict[str, Any]:
        """The chosen DC's agent creates the VM (at ``ip`` when given); `RequestError` when
        not."""
        try:
            vm = self.app.client(choice.server.dc).create_vm(vm_id, demand,
                                                             server=choice.server.server, ip=ip)
        except AgentRefused as exc:
            kind = Kind.REFUSED if exc.status in _AGENT_REFUSALS else Kind.BAD_ANSWER
            raise RequestError.stratum_failed(kind, APPLICATION, exc.code, exc.reason) from None
        except AgentUnreachable as exc:
            raise RequestError.stratum_failed(Kind.UNAVAILABLE, APPLICATION, "agent-unreachable",
                                              str(exc)) from None
        if not isinstance(vm, dict) or not isinstance(vm.get("ip"), str) \
                or not isinstance(vm.get("server"), str):
            raise RequestError.stratum_failed(Kind.BAD_ANSWER, APPLICATION, "bad-answer",
                                              f"the agent's VM is {vm!r}")
        return vm

    def establish(self, record: Record, request: AppRequest,
                  node: Optional[str] = None) -> tuple[Record, dict[str, Any]]:
        """The lightpath from the user to the VM (attached at ``node`` when it was moved)."""
        # Recorded before asking: if the answer is lost the lightpath may exist all the same.
        record = self.db.update(record, lightpath_id=UNKNOWN_LIGHTPATH)
        extra = {} if node is None else {"dst_node": node}
        with network_step():
            try:
                answer = self.asi.establish(request.src, record.vm_ip, request.type,
                                            label=record.id, constraints=request.constraints,
                                            **extra)
            except AsiError as exc:
                if not 200 <= exc.status < 300:  # the SC said no: it holds nothing
                    self.db.update(record, lightpath_id=None)
                raise
        return (self.db.update(record, lightpath_id=answer["id"]),
                self._lightpath_summary(answer))

    def _lightpath_summary(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        summary = {key: answer.get(key) for key in ("id", "route", "links", "wavelength",
                                                    "vlan_vid", "hops")}
        try:
            delay = sum(self.topology.link(link).delay_ms for link in answer["links"])
        except KeyError:
            delay = None  # a fibre this AC's topology file does not have: not rated
        summary["delay_ms"] = None if delay is None else round(delay, 6)
        return summary

    def refresh(self, dc: str) -> None:
        """Poll ``dc``'s agent now: the next choice must see this VM, not wait for the next
        poll round."""
        try:
            self.app.poll(dc)
        except Exception:  # noqa: BLE001 - the ARAE records its own failures; go on
            LOG.exception("refreshing %s failed", dc)

    def abandon(self, record: Record, status: str, stratum: Optional[str], reason: str,
                detail: str) -> None:
        """Give back whatever a request that could not be served holds; record why."""
        current = self.db.get(record.seq) or record
        current = self.give_back(current)
        self.db.update(current, status=status, stage=None, stratum=stratum, reason=reason,
                       detail=detail or None, ended=self.clock())
        LOG.info("%s: %s by the %s stratum: %s %s", record.id, status, stratum or "AC",
                 reason, detail)

    # -- release -------------------------------------------------------------------------------

    def release(self, record: Record, why: str) -> Record:
        """Release an active request now: lightpath, then VM; ``why`` is kept as its
        ``end_reason``. `RequestError` (conflict, not-active) when it is no longer active."""
        try:
            record = self.db.update(record, expect=ACTIVE, status=RELEASING)
        except StatusChanged:
            current = self.db.get(record.seq) or record
            raise RequestError(Kind.CONFLICT, "not-active",
                               f"request {record.id} is {current.status}", id=record.id) from None
        record = self.give_back(record)
        record = self.db.update(record, status=RELEASED, ended=self.clock(), end_reason=why)
        LOG.info("%s: released (%s)%s", record.id, why,
                 f"; still held: {', '.join(record.leftovers)}" if record.leftovers else "")
        return record

    def give_back(self, record: Record) -> Record:
        """Tear down the lightpath, then delete the VM; keeps whichever the peer did not confirm
        (and notes the attempt: `_note_leftover`)."""
        changes: dict[str, Any] = {}
        errors = []
        if record.lightpath_id:
            try:
                self.teardown(record)
                changes["lightpath_id"] = None
            except (AsiError, AsiUnreachable) as exc:
                LOG.warning("%s: lightpath %s not torn down: %s", record.id,
                            record.lightpath_id, exc)
                errors.append(f"lightpath {record.lightpath_id}: {exc}")
        if record.vm_id:
            error = self._delete_vm(record)
            if error is None:
                changes["vm_id"] = None
            else:
                errors.append(f"VM {record.vm_id} on {record.dc}: {error}")
        if errors:
            changes.update(self._note_leftover(record, errors))
        elif record.leftover_since is not None:
            LOG.info("%s: leftovers released after %d attempts", record.id,
                     record.leftover_attempts + 1)
            changes.update(leftover_since=None, leftover_attempts=0, leftover_error=None,
                           leftover_alarm=None)
        return self.db.update(record, **changes) if changes else record

    def _delete_vm(self, record: Record) -> Optional[str]:
        """Delete the record's VM at its DC: None once it is gone, else why not.

        A DC no longer configured (its agent removed from ``[ac] agents``: the operator
        declared it gone) has nothing left to ask: the VM is forgotten, with a warning.
        """
        try:
            client = self.app.client(record.dc)
        except KeyError:
            LOG.warning("%s: VM %s forgotten: DC %s is no longer configured", record.id,
                        record.vm_id, record.dc)
            return None
        try:
            client.delete_vm(record.vm_id)
        except AgentRefused as exc:
            if exc.status != 404:  # 404: never created, or already gone
                LOG.warning("%s: VM not released: %s", record.id, exc)
                return str(exc)
        except AgentUnreachable as exc:
            LOG.warning("%s: VM not released: %s", record.id, exc)
            return str(exc)
        finally:
            self.refresh(record.dc)
        return None

    def _note_leftover(self, record: Record, errors: Sequence[str]) -> dict[str, Any]:
        """The changes recording one more unconfirmed release; the alarm once it has lasted
        ``leftover_alarm_after_s`` (raised once, with a warning; retries go on)."""
        now = self.clock()
        since = record.leftover_since if record.leftover_since is not None else now
        changes = {"leftover_since": since, "leftover_attempts": record.leftover_attempts + 1,
                   "leftover_error": "; ".join(errors)}
        if record.leftover_alarm is None and now - since >= self.leftover_alarm_after_s:
            changes["leftover_alarm"] = now
            LOG.warning("%s: ALARM leftover: not released for %.0f s (%d attempts), still "
                        "retried: %s", record.id, now - since, changes["leftover_attempts"],
                        changes["leftover_error"])
        return changes

    def alarms(self) -> list[Record]:
        """Requests whose leftovers raised an alarm."""
        return [record for record in self.db.leftovers() if record.leftover_alarm is not None]

    def teardown(self, record: Record) -> None:
        """Tear down the record's lightpath (`AsiError` / `AsiUnreachable` when not done)."""
        if record.lightpath_id == UNKNOWN_LIGHTPATH:
            self._teardown_by_endpoints(record)
        else:
            self.asi.teardown(record.lightpath_id)

    def _teardown_by_endpoints(self, record: Record) -> None:
        mine = self.asi.call("GET", "/asi/v1/lightpaths").get("lightpaths", [])
        for lp in mine:
            if lp.get("src") == record.src and lp.get("dst") == record.vm_ip:
                self.asi.teardown(lp["id"])

    def housekeeping(self) -> list[Record]:
        """Release the requests whose time is up; now and then retry unconfirmed releases and
        sweep orphans (`ac_app.orphans`)."""
        now = self.clock()
        released = []
        for record in self.db.due(now):
            try:
                released.append(self.release(record, "expired"))
            except RequestError:
                continue  # deleted meanwhile
        if now >= self._next_cleanup:
            self._next_cleanup = now + CLEANUP_INTERVAL
            for record in self.db.leftovers():
                self.give_back(record)
        self.orphans.maybe_sweep(now)
        return released

    def recover(self) -> list[Record]:
        """At start-up: settle what a stopped AC left pending (failed) or releasing."""
        settled = []
        for record in self.db.unfinished():
            if record.status == PENDING:
                self.abandon(record, FAILED, None, "ac-restarted",
                             "the AC stopped while serving the request")
            else:
                record = self.give_back(record)
                self.db.update(record, status=RELEASED, ended=self.clock(),
                               end_reason="released after an AC restart")
            settled.append(self.db.get(record.seq) or record)
        return settled


@contextmanager
def network_step() -> Iterator[None]:
    """Turns the SC's answers inside the block into `RequestError`s of the network stratum."""
    try:
        yield
    except AsiUnreachable as exc:
        raise RequestError.stratum_failed(Kind.UNAVAILABLE, NETWORK, "sc-unreachable",
                                          str(exc)) from None
    except AsiError as exc:
        if exc.status in _SC_REFUSALS:
            # no-path carries the PCE's reason in ``reason``; other refusals their code.
            reason = exc.reason if exc.code == NO_PATH else exc.code
            raise RequestError.stratum_failed(Kind.REFUSED, NETWORK, reason,
                                              exc.detail or exc.reason) from None
        kind = Kind.UNAVAILABLE if exc.status == 503 else Kind.BAD_ANSWER
        raise RequestError.stratum_failed(kind, NETWORK, exc.code,
                                          exc.detail or exc.reason) from None


def outcome(err: RequestError) -> str:
    """The final status of a request that ``err`` ended: refused (a stratum said no) or
    failed."""
    return REFUSED if err.kind is Kind.REFUSED else FAILED
