"""DC failure (issue 5, item 5): what the AC does when the ARAE reports a DC unavailable.

The ARAE marks a DC unavailable when its agent stops answering (``max_failures`` polls in a
row, or no answer for ``stale_after`` s) and tells its listeners; `DcFailover` is one. For
each request still served by that DC:

* an active **vm** request is moved with the ordinary migration procedure
  (`ac_app.migration.Migration.migrate`, as the AC's own provider manager ``FAILOVER_USER``):
  the SSE picks another DC, whose agent creates the VM with the same IP; the lightpath is
  re-established to the new DC. The failed agent cannot delete the source VM: the migration
  leaves it with its own record, and housekeeping retries that delete until the
  agent answers again (then the stale VM is removed, nothing leaks). The user keeps the
  request id and the address.
* an active **vod** session is released (its lightpath at once, its VM when the agent answers
  again, through the same leftover retries); the user is told by the record: status
  ``released`` with ``reason`` ``dc-failed`` and an ``end_reason`` saying which DC failed.
  A video session's content is served from the DC it was placed at, so re-placing it would be
  a new session; the user asks again (the failed DC is no longer a candidate).
* a vm request that cannot be migrated (no other DC has room, no path, a peer refusal) is
  told the same way: released with ``reason`` ``dc-failed``. When the migration's rollback
  itself failed, the procedure already marked the request failed (``migration-failed``).

Requests pending at the time (being served or migrated) are left to their own procedure:
it either completes (and a later failure round sees them) or fails and gives back. A DC
already down when the AC starts is never reported as a change: `AcService` calls `check`
once the agents had time to answer (``stale_after``), so its requests move too.

The work runs in its own green thread (``spawn``): the ARAE calls listeners from its poll
round, and the migration itself polls the ARAE.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from ac_app.arae import DcState

import eventlet  # noqa: I100 - after ac_app.arae, which silences eventlet's notice
from ac_app.config import User
from ac_app.db import ACTIVE, Record
from ac_app.migration import Migration
from ac_app.procedure import Procedure
from ac_app.requests import VM, VOD, MigrationRequest, RequestError

LOG = logging.getLogger(__name__)

#: The reason recorded on a request its DC's failure ended.
DC_FAILED = "dc-failed"
#: Who asks for the failover migrations (recorded as the migrations' owner).
FAILOVER_USER = User("ac-failover", "provider-manager", "")

Spawn = Callable[..., Any]


class DcFailover:
    """Moves or ends the requests of a DC the ARAE reports unavailable (module docstring)."""

    def __init__(self, procedure: Procedure, migration: Migration,
                 spawn: Spawn = eventlet.spawn, user: User = FAILOVER_USER):
        self.procedure = procedure
        self.migration = migration
        self.spawn = spawn
        self.user = user
        self._running: set[str] = set()

    def on_change(self, state: DcState) -> None:
        """ARAE listener: a DC that became unavailable is handled in a green thread."""
        if not state.available and state.dc not in self._running:
            self._running.add(state.dc)
            self.spawn(self._handle_once, state.dc, state.error)

    def check(self, states: Mapping[str, DcState]) -> None:
        """Handle every DC of ``states`` that is unavailable (e.g. already down at start-up,
        which the ARAE reports as no change)."""
        for state in states.values():
            self.on_change(state)

    def _handle_once(self, dc: str, error: str) -> None:
        try:
            self.handle(dc, error)
        except Exception:  # noqa: BLE001 - a bug must not kill the ARAE's green thread
            LOG.exception("failover of DC %s failed", dc)
        finally:
            self._running.discard(dc)

    def handle(self, dc: str, error: str = "") -> list[Record]:
        """Migrate or release every active request served by ``dc``; their records after."""
        affected = [record for record in self.procedure.db.list(None, ACTIVE, None)
                    if record.dc == dc and record.type in (VM, VOD)]
        if affected:
            LOG.warning("DC %s failed (%s): %d request(s) to move or end", dc, error,
                        len(affected))
        done = []
        for record in affected:
            if record.type == VM:
                done.append(self._migrate(record, dc, error))
            else:
                done.append(self._end(record, dc, error, "its DC failed"))
        return done

    def _migrate(self, record: Record, dc: str, error: str) -> Record:
        try:
            self.migration.migrate(self.user, MigrationRequest(record.id))
        except RequestError as exc:
            current = self.procedure.db.get(record.seq) or record
            if current.status != ACTIVE:  # the rollback failed: marked failed, told why
                return current
            return self._end(current, dc, error, f"its DC failed and it could not be "
                             f"migrated ({exc.code}: {exc.reason})")
        moved = self.procedure.db.get(record.seq) or record
        LOG.info("%s: moved from failed DC %s to %s", record.id, dc, moved.dc)
        return moved

    def _end(self, record: Record, dc: str, error: str, why: str) -> Record:
        try:
            released = self.procedure.release(record, f"{DC_FAILED}: {why} ({dc}: {error})"
                                              if error else f"{DC_FAILED}: {why} ({dc})")
        except RequestError:  # deleted or expired meanwhile
            return self.procedure.db.get(record.seq) or record
        return self.procedure.db.update(released, reason=DC_FAILED)
