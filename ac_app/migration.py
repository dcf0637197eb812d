"""VM migration (CSO draft §6.2): a provider manager moves an active vm request to another DC.

`Migration.migrate` takes a `MigrationRequest` the UA (`ac_app.ua`) parsed and authorised (or
one of `ac_app.failover`'s, for a failed DC) and moves the request, keeping its id and address::

    check -> the target goes pending (stage migrating: no release or expiry meanwhile)
    -> SSE over the application view without the current DC (or only the given dst_dc)
    -> the destination agent creates the VM with the same IP -> the old lightpath is torn down
    -> the new lightpath user -> VM IP with ``dst_node`` = the destination node
    -> the source agent deletes its VM -> the target is active again at its new place

The choice and the set-up follow the CSO procedure: the steps are `ac_app.procedure.Procedure`'s.
The SC refuses two lightpaths for one pair of endpoints, so the old lightpath goes before the
new one comes (break before make). The source VM is deleted last: until the new lightpath is
up the old placement is whole but for its lightpath, and a rollback (any failure) gives back
the destination VM and re-establishes that lightpath. When even that fails the request is
marked failed, says why, and gives back what it holds. A source VM whose delete is not
confirmed stays with the migration's record and is retried like any other release. Each
migration is recorded as a request of type migration (``spec``: the moved ``request``,
``from_dc``, ``to_dc``), released as soon as it is done: it holds nothing itself.
"""
from __future__ import annotations

import logging
from typing import Optional

from ac_app.arae import AgentRefused, AgentUnreachable
from ac_app.config import User
from ac_app.db import ACTIVE, FAILED, PENDING, RELEASED, UNKNOWN_LIGHTPATH, Record, StatusChanged
from ac_app.procedure import (CONNECTING, RESERVING, SELECTING, Procedure, network_step, outcome,
                              rating)
from ac_app.requests import MIGRATION, VM, AppRequest, Kind, MigrationRequest, RequestError
from ac_app.resources import AppView
from ac_app.sse import APPLICATION

LOG = logging.getLogger(__name__)

#: Stage of a vm request (pending meanwhile) that a migration is moving.
MIGRATING = "migrating"


class Migration:
    """Moves active vm requests between DCs with the procedure's steps (module docstring)."""

    def __init__(self, procedure: Procedure):
        self.procedure = procedure
        self.db = procedure.db
        self._dcs = {node.dc.id for node in procedure.topology.nodes.values()
                     if node.dc is not None}

    def migrate(self, user: User, request: MigrationRequest) -> Record:
        """Move an active vm request to another DC for ``user`` (a provider manager).

        The migration's own record (released once done), or the `RequestError` that says why
        not (after a rollback: with the migration's ``id``, the moved ``request`` and whether
        it was ``rolled_back`` to its old placement); the moved request keeps its id and
        address.
        """
        target, dst_dc = self._target(request)
        try:
            target = self.db.update(target, expect=ACTIVE, status=PENDING, stage=MIGRATING)
        except StatusChanged:
            raise RequestError(Kind.CONFLICT, "not-migratable",
                               f"request {target.id} is no longer active", id=target.id) from None
        record = self.db.create(
            owner=user.name, type=MIGRATION, status=PENDING, stage=SELECTING,
            created=self.procedure.clock(), src=target.src, src_node=target.src_node,
            duration_s=0.0, strategy=self.procedure.sse.name, cpu=target.cpu,
            memory_gb=target.memory_gb, disk_gb=target.disk_gb, vm_ip=target.vm_ip,
            spec={"request": target.id, "from_dc": target.dc, "from_server": target.server,
                  "dst_dc": dst_dc, "to_dc": None})
        LOG.info("%s: %s moves %s away from %s%s", record.id, user.name, target.id, target.dc,
                 f" to {dst_dc}" if dst_dc else "")
        try:
            return self._move(record, target, dst_dc)
        except RequestError as err:
            rolled_back = self._roll_back(record, target, err)
            raise err.with_facts(id=record.id, request=target.id,
                                 rolled_back=rolled_back) from None
        except Exception:
            LOG.exception("%s: the migration failed", record.id)
            self._roll_back(record, target, RequestError.stratum_failed(
                Kind.INTERNAL, None, "internal", "unexpected error; see the AC log"))
            raise

    def _target(self, request: MigrationRequest) -> tuple[Record, Optional[str]]:
        """The vm request to move, and the DC asked for (None: the SSE's choice)."""
        target = self.db.find(request.request)
        if target is None:
            raise RequestError(Kind.NOT_FOUND, "not-found", f"no request {request.request}")
        if target.type != VM or target.status != ACTIVE:
            raise RequestError(Kind.CONFLICT, "not-migratable", f"request {target.id} is not an "
                               f"active vm request ({target.type}, {target.status})")
        dst_dc = request.dst_dc
        if dst_dc is not None and dst_dc not in self._dcs:
            raise RequestError(Kind.INAPPLICABLE, "unknown-dc", f"no DC {dst_dc!r} in "
                               f"{self.procedure.topology.name}", field="dst_dc")
        if dst_dc == target.dc:
            raise RequestError(Kind.INAPPLICABLE, "same-dc",
                               f"request {target.id} already runs in {dst_dc}", field="dst_dc")
        return target, dst_dc

    def _move(self, record: Record, target: Record, dst_dc: Optional[str]) -> Record:
        """The migration's steps (module docstring); `RequestError` on the first that fails."""
        steps = self.procedure
        request = AppRequest.of(target)
        with steps.selecting:
            view = steps.app.app_view()
            choice = steps.select(request, AppView(
                state for state in view.servers
                if state.dc != target.dc and dst_dc in (None, state.dc)))
            # The migration holds the destination VM until the moved request takes it over.
            record = self.db.update(record, stage=RESERVING, dc=choice.server.dc,
                                    node=choice.node, server=choice.server.server,
                                    choice=dict(choice.details), vm_id=target.id)
            vm = steps.create_vm(target.id, choice, request.demand, ip=target.vm_ip)
            if vm["ip"] != target.vm_ip:
                raise RequestError.stratum_failed(
                    Kind.BAD_ANSWER, APPLICATION, "bad-answer",
                    f"the agent gave the VM {vm['ip']}, not {target.vm_ip}")
            record = self.db.update(record, server=vm["server"])
            steps.refresh(choice.server.dc)
        record = self.db.update(record, stage=CONNECTING)
        if target.lightpath_id:
            with network_step():
                steps.teardown(target)
            target = self.db.update(target, lightpath_id=None)
        target, lightpath = steps.establish(target, request, node=choice.node)
        source = (target.dc, target.server)
        target = self.db.update(
            target, dc=record.dc, node=record.node, server=record.server, choice=record.choice,
            lightpath=lightpath, rating=rating(lightpath, request))
        record = self.db.update(record, vm_id=None)
        record = self._delete_source_vm(record, target.id, source[0])
        target = self.db.update(target, expect=PENDING, status=ACTIVE, stage=None)
        now = steps.clock()
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
            self.procedure.app.client(dc).delete_vm(vm_id)
        except AgentRefused as exc:
            if exc.status != 404:
                LOG.warning("%s: old VM %s on %s not released: %s", record.id, vm_id, dc, exc)
                record = self.db.update(record, dc=dc, vm_id=vm_id)
        except AgentUnreachable as exc:
            LOG.warning("%s: old VM %s on %s not released: %s", record.id, vm_id, dc, exc)
            record = self.db.update(record, dc=dc, vm_id=vm_id)
        self.procedure.refresh(dc)
        return record

    def _roll_back(self, record: Record, target: Record, err: RequestError) -> bool:
        """Back to the old placement after a failed migration; False when that failed too."""
        steps = self.procedure
        record = steps.give_back(self.db.get(record.seq) or record)  # the destination VM
        target = self.db.get(target.seq) or target
        why = None
        try:
            if target.lightpath_id == UNKNOWN_LIGHTPATH:  # a new lightpath's answer was lost
                with network_step():
                    steps.teardown(target)
                target = self.db.update(target, lightpath_id=None)
            if not target.lightpath_id:
                request = AppRequest.of(target)
                target, lightpath = steps.establish(target, request, node=target.node)
                target = self.db.update(target, lightpath=lightpath,
                                        rating=rating(lightpath, request))
        except RequestError as again:
            why = f"{again.stratum or 'AC'} stratum: {again.reason} {again.detail}".strip()
        except Exception:  # noqa: BLE001 - a bug must not leave the request pending
            LOG.exception("%s: rolling back %s failed", record.id, target.id)
            why = "internal: unexpected error; see the AC log"
        if why is None:
            self.db.update(target, expect=PENDING, status=ACTIVE, stage=None)
            LOG.info("%s: %s stays on %s/%s", record.id, target.id, target.dc, target.server)
        else:
            steps.abandon(target, FAILED, err.stratum, "migration-failed",
                          f"{err.reason}: {err.detail}; the old placement could not be "
                          f"restored ({why})")
        steps.abandon(record, outcome(err), err.stratum, err.reason,
                      (err.detail or "") + ("" if why is None else f"; {target.id} failed: {why}"))
        return why is None
