"""The CSO procedure (CSO draft §5, DESIGN §6): from a user's request to a server and a lightpath.

`Procedure.submit` runs, for an authenticated user::

    validate -> record (pending) -> SSE: the strategy on the ARAE's application view and, for
    NB/GLB, one ASI evaluation -> reserve the server (the DC agent creates a VM) -> ASI
    lightpath from the user's host to the VM -> accounting (active, rating) -> the record

Stages of a pending request: ``selecting``, ``reserving-server``, ``connecting``. Statuses::

    pending ──▶ active ──▶ releasing ──▶ released        (DELETE or expiry)
       │
       ├──▶ refused   a stratum said no (409): no server fits, no path, agent or SC refusal
       └──▶ failed    a peer did not answer (503) or answered nonsense (502), or a bug (500)

Any failure gives back everything already taken, lightpath first, then the VM, and the error
names the stratum and the reason. Error mapping (``error`` code, HTTP status):

=========================================  ===========  =====================
what happened                              stratum      answer
=========================================  ===========  =====================
strategy: no server up with room           application  409 refused
strategy: no feasible path to a candidate  network      409 refused
agent refuses the VM (409, 422: full...)   application  409 refused
SC refuses the lightpath (409, 422)        network      409 refused
agent / SC unreachable, SC install failed  its own      503 unavailable
agent / SC answered another error          its own      502 bad-gateway
=========================================  ===========  =====================

Nothing the AC holds is forgotten: the record keeps the VM id (= the request id, so a VM whose
creation answer was lost is still found) and the lightpath id until the agent or the SC has
confirmed the release, and `housekeeping` retries releases that a peer did not confirm.

Leftovers (a release not confirmed: a dead agent, an unreachable SC) are retried every
`CLEANUP_INTERVAL` for as long as it takes, since the peer may come back; the record counts
the attempts, since when, and the last error. Once that has lasted ``leftover_alarm_after_s``
(``[ac]`` option, 300 s by default) an alarm is raised (`alarms`, ``GET /uai/v1/alarms`` for
provider managers) and a warning logged, once; it clears when the release is confirmed.
Retrying stops only when the DC is declared gone: its agent removed from ``[ac] agents`` (an
AC restart), after which its VMs are forgotten with a warning.

What a peer makes for a request the AC already settled (a call of a killed AC that the SC or
an agent was still working on when `recover` looked for it) belongs to no request: the orphan
sweep of `housekeeping` (`ac_app.orphans`, every ``[ac] orphan_sweep_interval_s``) finds it
and releases it.

VM migration (`migrate`, provider managers; CSO draft §6.2) moves an active vm request to
another DC, keeping its id and address::

    validate -> the target goes pending (stage migrating: no release or expiry meanwhile)
    -> SSE over the application view without the current DC (or only the given dst_dc)
    -> the destination agent creates the VM with the same IP -> the old lightpath is torn down
    -> the new lightpath user -> VM IP with ``dst_node`` = the destination node
    -> the source agent deletes its VM -> the target is active again at its new place

The SC refuses two lightpaths for one pair of endpoints, so the old lightpath goes before the
new one comes (break before make). The source VM is deleted last: until the new lightpath is
up the old placement is whole but for its lightpath, and a rollback (any failure) gives back
the destination VM and re-establishes that lightpath. When even that fails the request is
marked failed, says why, and gives back what it holds. A source VM whose delete is not
confirmed stays with the migration's record and is retried like any other release. Each
migration is recorded as a request of type migration (``spec``: the moved ``request``,
``from_dc``, ``to_dc``), released as soon as it is done: it holds nothing itself.

A server at the user's own node needs no fibre (the strategies' ``LOCAL_PATH``): the SC
joins the two hosts inside the node's switch, a "lightpath" of 0 hops without a wavelength.
"""
from __future__ import annotations

import ipaddress
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Optional, Protocol, Sequence

from ac_app.dc_agent.agent import AgentError, check_content_request
from ac_app.arae import AgentRefused, AgentUnreachable

import eventlet.semaphore  # noqa: I100 - after ac_app.arae, which silences eventlet's notice
from ac_app.asi_client import AsiError, AsiNetworkView, AsiUnreachable
from ac_app.config import User
from ac_app.db import (ACTIVE, FAILED, PENDING, REFUSED, RELEASED, RELEASING, STATUSES,
                       UNKNOWN_LIGHTPATH, Record, RequestStore, StatusChanged, parse_id)
from ac_app.orphans import ORPHAN_SWEEP_INTERVAL_S, OrphanSweep
from ac_app.resources import AppView, Demand
from ac_app.strategies import APPLICATION, NETWORK, Choice, Strategy
from cso_base.rest import ApiError, Field, validate
from cso_base.wire import QOS_FIELDS
from topologies.addressing import USER, AddressError
from topologies.model import Topology

LOG = logging.getLogger(__name__)

VOD, VM, MIGRATION = "vod", "vm", "migration"
TYPES = (VOD, VM, MIGRATION)
SELECTING, RESERVING, CONNECTING = "selecting", "reserving-server", "connecting"
#: Stage of a vm request (pending meanwhile) that a migration is moving.
MIGRATING = "migrating"

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

_CONSTRAINTS = QOS_FIELDS
_TYPE = Field("str", required=True, choices=TYPES)
_SRC = Field("str", required=True, max_length=64)


class AgentApi(Protocol):
    """What the procedure asks of a DC agent (`ac_app.arae.AgentClient`)."""

    def create_vm(self, vm_id: str, demand: Demand, server: Optional[str] = None,
                  ip: Optional[str] = None) -> dict[str, Any]: ...

    def delete_vm(self, vm_id: str) -> dict[str, Any]: ...

    def vms(self) -> list[dict[str, Any]]: ...


class AppStratum(Protocol):
    """What the procedure asks of the ARAE (`ac_app.arae.Arae`)."""

    def app_view(self) -> AppView: ...

    def client(self, dc: str) -> AgentApi: ...

    def poll(self, dc: str) -> Any: ...

    def available(self) -> list[str]: ...


class Network(Protocol):
    """What the procedure asks of the SC (`ac_app.asi_client.AsiClient`)."""

    def establish(self, src: str, dst: str, service_type: str, label: Optional[str] = None,
                  constraints: Optional[Mapping[str, Any]] = None,
                  dst_node: Optional[str] = None) -> dict[str, Any]: ...

    def teardown(self, lp_id: str) -> Optional[dict[str, Any]]: ...

    def evaluate(self, src: str, dsts: Sequence[str],
                 constraints: Optional[Mapping[str, Any]] = None) -> dict[str, Any]: ...

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Spec:
    """A validated vod or vm request: what to serve, from where, for how long."""

    type: str
    src: str
    src_node: str
    demand: Demand
    duration_s: float
    constraints: Mapping[str, Any]
    content: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        """The specifics kept with the record."""
        spec: dict[str, Any] = {"constraints": dict(self.constraints)}
        if self.content is not None:
            spec["content"] = self.content
        return spec


class _Abort(Exception):
    """A step of the procedure could not be done: how to answer and what to record."""

    def __init__(self, status: int, stratum: Optional[str], reason: str, detail: str = ""):
        super().__init__(f"{status} {stratum}: {reason} {detail}")
        self.status = status
        self.stratum = stratum
        self.reason = reason
        self.detail = detail

    @property
    def code(self) -> str:
        """The UAI error code."""
        return {409: "refused", 503: "unavailable"}.get(self.status, "bad-gateway")


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


class Procedure:
    """The AC's UA and SSE at work: serves, releases, expires and accounts UAI requests."""

    def __init__(self, db: RequestStore, app: AppStratum, asi: Network, strategy: Strategy,
                 topology: Topology, vod_demand: Demand, default_duration_s: float,
                 max_duration_s: float, clock: Callable[[], float] = time.time,
                 leftover_alarm_after_s: float = LEFTOVER_ALARM_AFTER_S,
                 orphan_sweep_interval_s: float = ORPHAN_SWEEP_INTERVAL_S,
                 orphan_sweep_vms: bool = True):
        self.db = db
        self.app = app
        self.asi = asi
        self.strategy = strategy
        self.topology = topology
        self.vod_demand = vod_demand
        self.default_duration_s = default_duration_s
        self.max_duration_s = max_duration_s
        self.clock = clock
        self.leftover_alarm_after_s = leftover_alarm_after_s
        self._dcs = {node.dc.id for node in topology.nodes.values() if node.dc is not None}
        duration = Field("number", minimum=1, maximum=max_duration_s)
        self._schemas = {
            VOD: {"type": _TYPE, "src": _SRC, "content": Field("str", required=True),
                  "duration_s": duration, **_CONSTRAINTS},
            VM: {"type": _TYPE, "src": _SRC, "cpu": Field("number", required=True, maximum=1e6),
                 "memory_gb": Field("number", required=True, minimum=0, maximum=1e9),
                 "disk_gb": Field("number", required=True, minimum=0, maximum=1e12),
                 "duration_s": duration, **_CONSTRAINTS},
            MIGRATION: {"type": _TYPE, "request": Field("str", required=True, max_length=64),
                        "dst_dc": Field("str", max_length=64)},
        }
        # Choosing a server and reserving it is one step: two requests choosing at once on the
        # same view would both pick the emptiest server. The lightpath set-up runs in parallel.
        self._selecting = eventlet.semaphore.Semaphore(1)
        self._next_cleanup = 0.0
        # What the peers hold for this AC but no request holds (`ac_app.orphans`).
        self.orphans = OrphanSweep(db, app, asi, clock, orphan_sweep_interval_s,
                                   orphan_sweep_vms, refresh=self._refresh)

    # -- queries -------------------------------------------------------------------------------

    def get(self, user: User, request_id: str) -> Record:
        """A request the user may see (a manager: any); another user's is as good as missing."""
        seq = parse_id(request_id)
        record = self.db.get(seq) if seq is not None else None
        if record is None or not (user.manager or record.owner == user.name):
            raise ApiError(404, "not-found", f"no request {request_id}")
        return record

    def list(self, user: User, status: Optional[str] = None, type_: Optional[str] = None,
             owner: Optional[str] = None) -> list[Record]:
        """The user's requests (a manager: everyone's, or ``owner``'s), oldest first."""
        if status is not None and status not in STATUSES:
            raise ApiError(400, "invalid-parameter", f"status must be one of "
                           f"{', '.join(STATUSES)}", field="status")
        if type_ is not None and type_ not in TYPES:
            raise ApiError(400, "invalid-parameter", f"type must be one of {', '.join(TYPES)}",
                           field="type")
        if owner is not None and not user.manager:
            raise ApiError(403, "forbidden", "only provider managers may ask for another "
                           "user's requests", field="owner")
        return self.db.list(owner if user.manager else user.name, status, type_)

    # -- the procedure -------------------------------------------------------------------------

    def submit(self, user: User, body: Mapping[str, Any]) -> Record:
        """Serve a request (the active record; for a migration, its own record) or raise the
        `ApiError` that says why not."""
        kind = validate({"type": body.get("type")}, {"type": _TYPE})["type"]
        if kind == MIGRATION:
            return self.migrate(user, body)
        spec = self._parse(kind, body)
        record = self.db.create(owner=user.name, type=spec.type, status=PENDING, stage=SELECTING,
                                created=self.clock(), src=spec.src, src_node=spec.src_node,
                                duration_s=spec.duration_s, strategy=self.strategy.name,
                                spec=spec.to_json(), cpu=float(spec.demand.cpu),
                                memory_gb=float(spec.demand.memory_gb),
                                disk_gb=float(spec.demand.disk_gb))
        LOG.info("%s: %s asks %s from %s (%s)", record.id, user.name, spec.type, spec.src,
                 record.spec)
        try:
            return self._provision(record, spec)
        except _Abort as abort:
            self._abandon(record, REFUSED if abort.status == 409 else FAILED, abort.stratum,
                          abort.reason, abort.detail)
            raise ApiError(abort.status, abort.code, abort.reason, stratum=abort.stratum,
                           detail=abort.detail, id=record.id) from None
        except Exception:
            LOG.exception("%s: the procedure failed", record.id)
            self._abandon(record, FAILED, None, "internal", "unexpected error; see the AC log")
            raise

    def _provision(self, record: Record, spec: Spec) -> Record:
        with self._selecting:
            choice = self._select(spec, self.app.app_view())
            record = self.db.update(record, stage=RESERVING, dc=choice.server.dc,
                                    node=choice.node, server=choice.server.server,
                                    choice=dict(choice.details), vm_id=record.id)
            vm = self._create_vm(record.id, choice, spec.demand)
            record = self.db.update(record, server=vm["server"], vm_ip=vm["ip"])
            self._refresh(record.dc)
        record = self.db.update(record, stage=CONNECTING)
        record, lightpath = self._establish(record, spec)
        now = self.clock()
        record = self.db.update(
            record, expect=PENDING, status=ACTIVE, stage=None, started=now,
            ends_at=now + spec.duration_s, lightpath=lightpath,
            rating=qoe_rating(lightpath["delay_ms"], spec.constraints.get("max_delay_ms")))
        LOG.info("%s: active on %s/%s at %s over %s (%s hops)", record.id, record.dc,
                 record.server, record.vm_ip, lightpath["id"], lightpath["hops"])
        return record

    def _select(self, spec: Spec, view: AppView) -> Choice:
        net = AsiNetworkView(self.asi, spec.constraints)
        with _network_step():
            decision = self.strategy.choose(spec.src_node, spec.demand, view, net)
        if not decision.ok:
            raise _Abort(409, decision.stratum, decision.reason, decision.detail)
        return decision

    def _create_vm(self, vm_id: str, choice: Choice, demand: Demand,
                   ip: Optional[str] = None) -> dict[str, Any]:
        try:
            vm = self.app.client(choice.server.dc).create_vm(vm_id, demand,
                                                             server=choice.server.server, ip=ip)
        except AgentRefused as exc:
            status = 409 if exc.status in _AGENT_REFUSALS else 502
            raise _Abort(status, APPLICATION, exc.code, exc.reason) from None
        except AgentUnreachable as exc:
            raise _Abort(503, APPLICATION, "agent-unreachable", str(exc)) from None
        if not isinstance(vm, dict) or not isinstance(vm.get("ip"), str) \
                or not isinstance(vm.get("server"), str):
            raise _Abort(502, APPLICATION, "bad-answer", f"the agent's VM is {vm!r}")
        return vm

    def _establish(self, record: Record, spec: Spec,
                   node: Optional[str] = None) -> tuple[Record, dict[str, Any]]:
        """The lightpath from the user to the VM (attached at ``node`` when it was moved)."""
        # Recorded before asking: if the answer is lost the lightpath may exist all the same.
        record = self.db.update(record, lightpath_id=UNKNOWN_LIGHTPATH)
        extra = {} if node is None else {"dst_node": node}
        with _network_step():
            try:
                answer = self.asi.establish(spec.src, record.vm_ip, spec.type, label=record.id,
                                            constraints=spec.constraints, **extra)
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

    def _refresh(self, dc: str) -> None:
        # The next choice must see this VM, not wait for the next poll round.
        try:
            self.app.poll(dc)
        except Exception:  # noqa: BLE001 - the ARAE records its own failures; go on
            LOG.exception("refreshing %s failed", dc)

    def _abandon(self, record: Record, status: str, stratum: Optional[str], reason: str,
                 detail: str) -> None:
        """Give back whatever a request that could not be served holds; record why."""
        current = self.db.get(record.seq) or record
        current = self._give_back(current)
        self.db.update(current, status=status, stage=None, stratum=stratum, reason=reason,
                       detail=detail or None, ended=self.clock())
        LOG.info("%s: %s by the %s stratum: %s %s", record.id, status, stratum or "AC",
                 reason, detail)

    # -- release -------------------------------------------------------------------------------

    def delete(self, user: User, request_id: str) -> Record:
        """Release an active request now (its user or a manager): lightpath, then VM."""
        record = self.get(user, request_id)
        return self._release(record, "deleted" if record.owner == user.name
                             else f"deleted by {user.name}")

    def release(self, record: Record, why: str) -> Record:
        """Release an active request for the AC itself (e.g. its DC failed): ``why`` is kept
        as its ``end_reason``; `ApiError` 409 when it is no longer active."""
        return self._release(record, why)

    def _release(self, record: Record, why: str) -> Record:
        try:
            record = self.db.update(record, expect=ACTIVE, status=RELEASING)
        except StatusChanged:
            current = self.db.get(record.seq) or record
            raise ApiError(409, "not-active", f"request {record.id} is {current.status}",
                           id=record.id) from None
        record = self._give_back(record)
        record = self.db.update(record, status=RELEASED, ended=self.clock(), end_reason=why)
        LOG.info("%s: released (%s)%s", record.id, why,
                 f"; still held: {', '.join(record.leftovers)}" if record.leftovers else "")
        return record

    def _give_back(self, record: Record) -> Record:
        """Tear down the lightpath, then delete the VM; keeps whichever the peer did not confirm
        (and notes the attempt: `_note_leftover`)."""
        changes: dict[str, Any] = {}
        errors = []
        if record.lightpath_id:
            try:
                self._teardown(record)
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
            self._refresh(record.dc)
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

    def alarms(self, user: User) -> list[Record]:
        """Requests whose leftovers raised an alarm (provider managers only)."""
        if not user.manager:
            raise ApiError(403, "forbidden", "only provider managers may see the alarms")
        return [record for record in self.db.leftovers() if record.leftover_alarm is not None]

    def _teardown(self, record: Record) -> None:
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
                released.append(self._release(record, "expired"))
            except ApiError:
                continue  # deleted meanwhile
        if now >= self._next_cleanup:
            self._next_cleanup = now + CLEANUP_INTERVAL
            for record in self.db.leftovers():
                self._give_back(record)
        self.orphans.maybe_sweep(now)
        return released

    def recover(self) -> list[Record]:
        """At start-up: settle what a stopped AC left pending (failed) or releasing."""
        settled = []
        for record in self.db.unfinished():
            if record.status == PENDING:
                self._abandon(record, FAILED, None, "ac-restarted",
                              "the AC stopped while serving the request")
            else:
                record = self._give_back(record)
                self.db.update(record, status=RELEASED, ended=self.clock(),
                               end_reason="released after an AC restart")
            settled.append(self.db.get(record.seq) or record)
        return settled

    # -- validation ----------------------------------------------------------------------------

    def _parse(self, kind: str, body: Mapping[str, Any]) -> Spec:
        req = validate(body, self._schemas[kind])
        src_node = self._src_node(req["src"])
        constraints = {key: req[key] for key in _CONSTRAINTS if key in req}
        content = None
        if kind == VOD:
            content = req["content"]
            try:
                check_content_request(content, None)
            except AgentError as exc:
                raise ApiError(400, "invalid-field", f"content: {exc.reason}",
                               field="content") from None
            demand = self.vod_demand
        else:
            if req["cpu"] <= 0:
                raise ApiError(400, "invalid-field", "cpu must be > 0", field="cpu")
            demand = Demand(req["cpu"], req["memory_gb"], req["disk_gb"])
        return Spec(kind, req["src"], src_node, demand,
                    float(req.get("duration_s", self.default_duration_s)), constraints, content)

    def _src_node(self, src: str) -> str:
        try:
            ipaddress.IPv4Address(src)
        except ValueError:
            raise ApiError(400, "invalid-field", "src must be an IPv4 address",
                           field="src") from None
        try:
            host = self.topology.addresses.locate(src)
        except AddressError:
            host = None
        if host is None or host.kind != USER:
            raise ApiError(422, "unknown-endpoint", f"{src} is not a user host of "
                           f"{self.topology.name} (10.1.<i>.<n> at node i)", field="src")
        return host.node

    def _migration_target(self, user: User,
                          body: Mapping[str, Any]) -> tuple[Record, Optional[str]]:
        """The vm request a manager asks to move, and the DC asked for (None: the SSE's choice)."""
        if not user.manager:
            raise ApiError(403, "forbidden", "only provider managers may ask for VM migration")
        req = validate(body, self._schemas[MIGRATION])
        target = self.get(user, req["request"])
        if target.type != VM or target.status != ACTIVE:
            raise ApiError(409, "not-migratable", f"request {target.id} is not an active vm "
                           f"request ({target.type}, {target.status})")
        dst_dc = req.get("dst_dc")
        if dst_dc is not None and dst_dc not in self._dcs:
            raise ApiError(422, "unknown-dc", f"no DC {dst_dc!r} in "
                           f"{self.topology.name}", field="dst_dc")
        if dst_dc == target.dc:
            raise ApiError(422, "same-dc", f"request {target.id} already runs in {dst_dc}",
                           field="dst_dc")
        return target, dst_dc

    # -- migration -----------------------------------------------------------------------------

    def migrate(self, user: User, body: Mapping[str, Any]) -> Record:
        """Move an active vm request to another DC (a manager's ``migration`` request).

        The migration's own record (released once done), or the `ApiError` that says why not;
        the moved request keeps its id and address, or its old placement after a rollback.
        """
        target, dst_dc = self._migration_target(user, body)
        try:
            target = self.db.update(target, expect=ACTIVE, status=PENDING, stage=MIGRATING)
        except StatusChanged:
            raise ApiError(409, "not-migratable", f"request {target.id} is no longer active",
                           id=target.id) from None
        record = self.db.create(
            owner=user.name, type=MIGRATION, status=PENDING, stage=SELECTING,
            created=self.clock(), src=target.src, src_node=target.src_node, duration_s=0.0,
            strategy=self.strategy.name, cpu=target.cpu, memory_gb=target.memory_gb,
            disk_gb=target.disk_gb, vm_ip=target.vm_ip,
            spec={"request": target.id, "from_dc": target.dc, "from_server": target.server,
                  "dst_dc": dst_dc, "to_dc": None})
        LOG.info("%s: %s moves %s away from %s%s", record.id, user.name, target.id, target.dc,
                 f" to {dst_dc}" if dst_dc else "")
        try:
            return self._move(record, target, dst_dc)
        except _Abort as abort:
            rolled_back = self._roll_back(record, target, abort)
            raise ApiError(abort.status, abort.code, abort.reason, stratum=abort.stratum,
                           detail=abort.detail, id=record.id, request=target.id,
                           rolled_back=rolled_back) from None
        except Exception:
            LOG.exception("%s: the migration failed", record.id)
            self._roll_back(record, target, _Abort(500, None, "internal",
                                                   "unexpected error; see the AC log"))
            raise

    def _move(self, record: Record, target: Record, dst_dc: Optional[str]) -> Record:
        """The migration's steps (module docstring); `_Abort` on the first that fails."""
        spec = self._spec_of(target)
        with self._selecting:
            view = self.app.app_view()
            choice = self._select(spec, AppView(
                state for state in view.servers
                if state.dc != target.dc and dst_dc in (None, state.dc)))
            # The migration holds the destination VM until the moved request takes it over.
            record = self.db.update(record, stage=RESERVING, dc=choice.server.dc,
                                    node=choice.node, server=choice.server.server,
                                    choice=dict(choice.details), vm_id=target.id)
            vm = self._create_vm(target.id, choice, spec.demand, ip=target.vm_ip)
            if vm["ip"] != target.vm_ip:
                raise _Abort(502, APPLICATION, "bad-answer",
                             f"the agent gave the VM {vm['ip']}, not {target.vm_ip}")
            record = self.db.update(record, server=vm["server"])
            self._refresh(choice.server.dc)
        record = self.db.update(record, stage=CONNECTING)
        if target.lightpath_id:
            with _network_step():
                self._teardown(target)
            target = self.db.update(target, lightpath_id=None)
        target, lightpath = self._establish(target, spec, node=choice.node)
        source = (target.dc, target.server)
        target = self.db.update(
            target, dc=record.dc, node=record.node, server=record.server, choice=record.choice,
            lightpath=lightpath,
            rating=qoe_rating(lightpath["delay_ms"], spec.constraints.get("max_delay_ms")))
        record = self.db.update(record, vm_id=None)
        record = self._delete_source_vm(record, target.id, source[0])
        target = self.db.update(target, expect=PENDING, status=ACTIVE, stage=None)
        now = self.clock()
        record = self.db.update(
            record, status=RELEASED, stage=None, started=now, ended=now, lightpath=lightpath,
            spec={**record.spec, "to_dc": target.dc, "to_server": target.server},
            end_reason=f"moved {target.id} from {source[0]}/{source[1]} to "
                       f"{target.dc}/{target.server}")
        LOG.info("%s: %s now on %s/%s at %s over %s", record.id, target.id, target.dc,
                 target.server, target.vm_ip, lightpath["id"])
        return record

    def _delete_source_vm(self, record: Record, vm_id: str, dc: str) -> Record:
        """Delete the moved VM at its old DC; one not confirmed stays with the migration."""
        try:
            self.app.client(dc).delete_vm(vm_id)
        except AgentRefused as exc:
            if exc.status != 404:
                LOG.warning("%s: old VM %s on %s not released: %s", record.id, vm_id, dc, exc)
                record = self.db.update(record, dc=dc, vm_id=vm_id)
        except AgentUnreachable as exc:
            LOG.warning("%s: old VM %s on %s not released: %s", record.id, vm_id, dc, exc)
            record = self.db.update(record, dc=dc, vm_id=vm_id)
        self._refresh(dc)
        return record

    def _roll_back(self, record: Record, target: Record, abort: _Abort) -> bool:
        """Back to the old placement after a failed migration; False when that failed too."""
        record = self._give_back(self.db.get(record.seq) or record)  # the destination VM
        target = self.db.get(target.seq) or target
        why = None
        try:
            if target.lightpath_id == UNKNOWN_LIGHTPATH:  # a new lightpath's answer was lost
                with _network_step():
                    self._teardown(target)
                target = self.db.update(target, lightpath_id=None)
            if not target.lightpath_id:
                spec = self._spec_of(target)
                target, lightpath = self._establish(target, spec, node=target.node)
                target = self.db.update(target, lightpath=lightpath, rating=qoe_rating(
                    lightpath["delay_ms"], spec.constraints.get("max_delay_ms")))
        except _Abort as again:
            why = f"{again.stratum or 'AC'} stratum: {again.reason} {again.detail}".strip()
        except Exception:  # noqa: BLE001 - a bug must not leave the request pending
            LOG.exception("%s: rolling back %s failed", record.id, target.id)
            why = "internal: unexpected error; see the AC log"
        if why is None:
            self.db.update(target, expect=PENDING, status=ACTIVE, stage=None)
            LOG.info("%s: %s stays on %s/%s", record.id, target.id, target.dc, target.server)
        else:
            self._abandon(target, FAILED, abort.stratum, "migration-failed",
                          f"{abort.reason}: {abort.detail}; the old placement could not be "
                          f"restored ({why})")
        self._abandon(record, REFUSED if abort.status == 409 else FAILED, abort.stratum,
                      abort.reason, abort.detail + ("" if why is None else
                                                    f"; {target.id} failed: {why}"))
        return why is None

    @staticmethod
    def _spec_of(record: Record) -> Spec:
        """The `Spec` a recorded vm or vod request was served with."""
        return Spec(record.type, record.src, record.src_node,
                    Demand(record.cpu, record.memory_gb, record.disk_gb), record.duration_s,
                    dict(record.spec.get("constraints", {})), record.spec.get("content"))


@contextmanager
def _network_step() -> Iterator[None]:
    """Turns the SC's answers inside the block into `_Abort`s of the network stratum."""
    try:
        yield
    except AsiUnreachable as exc:
        raise _Abort(503, NETWORK, "sc-unreachable", str(exc)) from None
    except AsiError as exc:
        if exc.status in _SC_REFUSALS:
            # no-path carries the PCE's reason in ``reason``; other refusals their code.
            reason = exc.reason if exc.code == "no-path" else exc.code
            raise _Abort(409, NETWORK, reason, exc.detail or exc.reason) from None
        raise _Abort(503 if exc.status == 503 else 502, NETWORK, exc.code,
                     exc.detail or exc.reason) from None
