"""The orphan sweep: the AC reconciles what its peers hold for it against its own store.

A request gives back what it holds when it ends, and `recover` settles what a killed AC left
pending. One race escapes both: a peer still working on a call the killed AC had sent (the SC
installing a lightpath, an agent creating a VM) when the restarted AC settles the request finds
nothing to give back, and what the peer makes a moment later belongs to no request. Every
``[ac] orphan_sweep_interval_s`` (10 s by default; 0: never) housekeeping lists this AC's
lightpaths at the SC (``GET /asi/v1/lightpaths``, its own token: only its own) and the VMs of
every available agent (``GET /agent/v1/vms``), and releases the **orphans**: what no request
holds, seen as such by two consecutive sweeps. Each release logs one warning and is counted
(``orphans`` in ``GET /uai/v1/alarms``).

**Held.** After listing the peers, the sweep reads the store (`RequestStore.holding`):

- a lightpath is held by a request whose ``lightpath_id`` is its id, or, when it joins
  (``src``, ``vm_ip``) of a request that is pending or whose ``lightpath_id`` is unknown
  (``?``), by that request;
- a VM is held by a request whose (``dc``, ``vm_id``) it is; and a VM named ``req-N`` at any
  DC is held while request N (or a migration moving it) is not over (pending, active,
  releasing).

**Why an in-flight request is never touched.** The procedure records every claim before it
asks a peer: ``vm_id`` (and ``dc``) before the agent creates the VM (a migration's destination
VM: on the migration's record), ``lightpath_id = ?`` before the SC establishes; a claim is
cleared only once the peer confirmed the release (or refused to make the thing). The one
window where a VM exists that no (``dc``, ``vm_id``) names, a migration deleting the source
VM, has the moved request pending. So whatever a peer lists was claimed before it existed,
and the store, read after the listing, still shows the claim unless the thing is really given
back. Nothing can claim an orphan later: a VM ``req-N`` is claimed only by request N while it
is pending or by a migration of it while it is active, and a request never leaves a final
status; a lightpath id is claimed only by the answer to an establish whose request holds the
endpoints meanwhile, and the SC refuses a second lightpath for the same endpoints. The claim is
checked again, from the store, just before each release. Two consecutive sightings also leave
a peer the time to finish what it is doing (an SC still installing).

**What is this AC's.** The AC only touches lightpaths of its own token that it can trace to one
of its requests (they join a ``src`` to the ``vm_ip`` some request had): another client using
the AC's token (``cso bench load``'s ASI clients) is left alone. It only touches VMs named
``req-N`` after one of its own vm or vod requests, with that request's resources, its address
when known, at a DC where the request was placed or moved: a VM of another AC sharing the
agents (both number their requests ``req-1``, ...) is deleted only if it matches all of that,
and then with a warning; ``[ac] orphan_sweep_vms = false`` keeps the sweep away from VMs.
VMs and lightpaths that are not traceably this AC's are left alone (logged once).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

from ac_app.arae import AgentRefused, AgentUnreachable
from ac_app.asi_client import AsiError, AsiUnreachable
from ac_app.db import FINAL, PENDING, UNKNOWN_LIGHTPATH, Record, RequestStore, iso, \
    migration_json, parse_id
from ac_app.peers import AppStratum, Network

LOG = logging.getLogger(__name__)

#: Seconds between sweeps (``[ac] orphan_sweep_interval_s``; 0: no sweep).
ORPHAN_SWEEP_INTERVAL_S = 10.0
LIGHTPATH, VM = "lightpath", "vm"
_RESOURCES = ("cpu", "memory_gb", "disk_gb")
#: What became of an orphan the sweep tried to release.
RELEASED, GONE, KEPT = "released", "gone", "kept"


@dataclass(frozen=True)
class Orphan:
    """Something a peer holds for this AC that no request holds: a lightpath or a VM."""

    kind: str
    id: str
    where: str  # "sc", or the VM's DC
    key: tuple[Any, ...]  # the same thing in two sweeps has the same key
    what: str  # for the log


@dataclass
class Holdings:
    """What the store's requests hold (module docstring, "Held")."""

    lightpaths: set[str] = field(default_factory=set)
    endpoints: set[tuple[str, str]] = field(default_factory=set)
    vms: set[tuple[str, str]] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, records: Iterable[Record]) -> "Holdings":
        """The holdings of ``records`` (those of `RequestStore.holding`)."""
        held = cls()
        for record in records:
            if record.lightpath_id:
                held.lightpaths.add(record.lightpath_id)
            if (record.status == PENDING or record.lightpath_id == UNKNOWN_LIGHTPATH) \
                    and record.vm_ip:
                held.endpoints.add((record.src, record.vm_ip))
            if record.vm_id:
                held.vms.add((record.dc or "", record.vm_id))
            if record.status not in FINAL:
                held.names.add(record.id)
                moved = migration_json(record)
                if moved is not None:
                    held.names.add(moved["request"])
        return held

    def holds(self, orphan: Orphan, lightpath: Mapping[str, Any]) -> bool:
        """True when ``orphan`` (with the peer's ``lightpath`` JSON, for one) is held."""
        if orphan.kind == LIGHTPATH:
            return orphan.id in self.lightpaths or \
                (lightpath.get("src"), lightpath.get("dst")) in self.endpoints
        return (orphan.where, orphan.id) in self.vms or orphan.id in self.names


class OrphanSweep:
    """Finds and releases what the SC and the agents hold for this AC but no request holds."""

    def __init__(self, db: RequestStore, app: AppStratum, asi: Network,
                 clock: Callable[[], float], interval_s: float = ORPHAN_SWEEP_INTERVAL_S,
                 sweep_vms: bool = True, refresh: Callable[[str], None] = lambda dc: None):
        self.db = db
        self.app = app
        self.asi = asi
        self.clock = clock
        self.interval_s = interval_s
        self.sweep_vms = sweep_vms
        self.refresh = refresh
        self.released = {LIGHTPATH: 0, VM: 0}
        self.last_sweep: Optional[float] = None
        self.last_error: Optional[str] = None
        self._next = 0.0
        self._suspects: dict[tuple[Any, ...], Orphan] = {}
        # What was left alone by the last sweep and by this one (each logged once).
        self._foreign: set[tuple[Any, ...]] = set()
        self._foreign_now: set[tuple[Any, ...]] = set()

    def maybe_sweep(self, now: float) -> list[Orphan]:
        """Sweep when ``interval_s`` has passed since the last sweep; what was released."""
        if self.interval_s <= 0 or now < self._next:
            return []
        self._next = now + self.interval_s
        try:
            return self.sweep()
        except Exception:  # noqa: BLE001 - housekeeping goes on; the next sweep tries again
            LOG.exception("the orphan sweep failed")
            self.last_error = "internal: see the AC log"
            self._suspects = {}
            return []

    def sweep(self) -> list[Orphan]:
        """One sweep: list the peers, then the store; release what two sweeps saw orphaned."""
        errors: list[str] = []
        self._foreign_now = set()
        lightpaths = self._list_lightpaths(errors)
        vms = self._list_vms(errors) if self.sweep_vms else {}
        held = Holdings.of(self.db.holding())  # after the listing: see the module docstring
        orphans = {o.key: (o, lp) for o, lp in self._lightpath_orphans(lightpaths, held)}
        orphans.update((o.key, (o, {})) for o in self._vm_orphans(vms, held))
        released, suspects = [], {}
        for key, (orphan, lightpath) in orphans.items():
            outcome = self._release(orphan, lightpath, errors) if key in self._suspects \
                else KEPT
            if outcome == RELEASED:
                released.append(orphan)
            elif outcome == KEPT:
                suspects[key] = orphan
        self._suspects = suspects
        self._foreign = self._foreign_now
        self.last_sweep = self.clock()
        self.last_error = "; ".join(errors) or None
        return released

    def report(self) -> dict[str, Any]:
        """The sweep's figures since the AC started, for provider managers."""
        return {"interval_s": self.interval_s, "vms_swept": self.sweep_vms,
                "last_sweep": iso(self.last_sweep), "lightpaths_released":
                self.released[LIGHTPATH], "vms_deleted": self.released[VM],
                "suspects": len(self._suspects), "last_error": self.last_error}

    # -- listing -------------------------------------------------------------------------------

    def _list_lightpaths(self, errors: list[str]) -> list[Mapping[str, Any]]:
        try:
            listed = self.asi.call("GET", "/asi/v1/lightpaths").get("lightpaths")
            if not isinstance(listed, list):
                raise TypeError("no list of lightpaths")
            return [lp for lp in listed if isinstance(lp, dict) and isinstance(lp.get("id"), str)]
        except (AsiError, AsiUnreachable, TypeError) as exc:
            LOG.warning("orphan sweep: cannot list the SC's lightpaths: %s", exc)
            errors.append(f"sc: {exc}")
            return []

    def _list_vms(self, errors: list[str]) -> dict[str, list[Mapping[str, Any]]]:
        found = {}
        for dc in self.app.available():
            try:
                listed = self.app.client(dc).vms()
                if not isinstance(listed, list):
                    raise TypeError("no list of VMs")
                found[dc] = [vm for vm in listed
                             if isinstance(vm, dict) and isinstance(vm.get("id"), str)]
            except (AgentRefused, AgentUnreachable, KeyError, TypeError) as exc:
                LOG.warning("orphan sweep: cannot list the VMs of %s: %s", dc, exc)
                errors.append(f"{dc}: {exc}")
        return found

    # -- orphans -------------------------------------------------------------------------------

    def _lightpath_orphans(self, listed: Iterable[Mapping[str, Any]], held: Holdings
                           ) -> list[tuple[Orphan, Mapping[str, Any]]]:
        found = []
        for lp in listed:
            src, dst = lp.get("src"), lp.get("dst")
            orphan = Orphan(LIGHTPATH, lp["id"], "sc", (LIGHTPATH, lp["id"], src, dst),
                            f"lightpath {lp['id']} ({src} -> {dst})")
            if held.holds(orphan, lp):
                continue
            if isinstance(src, str) and isinstance(dst, str) and self.db.connected(src, dst):
                found.append((orphan, lp))
            else:
                self._left_alone(orphan, "no request of this AC joined its endpoints")
        return found

    def _vm_orphans(self, listed: Mapping[str, Iterable[Mapping[str, Any]]],
                    held: Holdings) -> list[Orphan]:
        found = []
        for dc, vms in listed.items():
            for vm in vms:
                orphan = Orphan(VM, vm["id"], dc, (VM, dc, vm["id"], vm.get("ip"),
                                                   vm.get("created")),
                                f"VM {vm['id']} on {dc}/{vm.get('server')} ({vm.get('ip')})")
                if held.holds(orphan, {}):
                    continue
                why = self._not_ours(dc, vm)
                if why is None:
                    found.append(orphan)
                else:
                    self._left_alone(orphan, why)
        return found

    def _not_ours(self, dc: str, vm: Mapping[str, Any]) -> Optional[str]:
        """None when ``vm`` is traceably one of this AC's requests' VMs, else why not."""
        seq = parse_id(vm["id"])
        record = self.db.get(seq) if seq is not None else None
        if record is None or migration_json(record) is not None:
            return "not named after a vm or vod request of this AC"
        try:
            same = all(math.isclose(float(vm[key]), getattr(record, key), abs_tol=1e-9)
                       for key in _RESOURCES)
        except (KeyError, TypeError, ValueError):
            same = False
        if not same:
            return f"its resources are not those of {record.id}"
        if record.vm_ip is not None and vm.get("ip") != record.vm_ip:
            return f"its address is not {record.id}'s {record.vm_ip}"
        if dc not in self._placements(record):
            return f"{record.id} was never placed at {dc}"
        return None

    def _placements(self, record: Record) -> set[Optional[str]]:
        """The DCs where ``record`` was placed or where a migration moved or tried to move it."""
        dcs = {record.dc}
        for migration in self.db.list(type_="migration"):
            moved = migration_json(migration) or {}
            if moved.get("request") == record.id:
                dcs.update((migration.dc, moved.get("from_dc")))
        return dcs

    def _left_alone(self, orphan: Orphan, why: str) -> None:
        if orphan.key not in self._foreign and orphan.key not in self._foreign_now:
            LOG.info("orphan sweep: %s is held by no request but left alone: %s", orphan.what,
                     why)
        self._foreign_now.add(orphan.key)

    # -- release -------------------------------------------------------------------------------

    def _release(self, orphan: Orphan, lightpath: Mapping[str, Any], errors: list[str]) -> str:
        """Release an orphan seen twice if the store still holds nothing of it: `RELEASED`;
        `GONE` when it turned out held or was gone already; `KEPT` when the peer failed."""
        if Holdings.of(self.db.holding()).holds(orphan, lightpath):
            return GONE
        try:
            done = self._teardown(orphan) if orphan.kind == LIGHTPATH else self._delete(orphan)
        except (AsiError, AsiUnreachable, AgentRefused, AgentUnreachable, KeyError) as exc:
            LOG.warning("orphan sweep: %s not released (retried next sweep): %s", orphan.what,
                        exc)
            errors.append(f"{orphan.what}: {exc}")
            return KEPT
        if not done:
            return GONE
        self.released[orphan.kind] += 1
        LOG.warning("orphan sweep: %s was held by no request for two sweeps: %s", orphan.what,
                    "torn down" if orphan.kind == LIGHTPATH else "deleted")
        return RELEASED

    def _teardown(self, orphan: Orphan) -> bool:
        return self.asi.teardown(orphan.id) is not None

    def _delete(self, orphan: Orphan) -> bool:
        try:
            self.app.client(orphan.where).delete_vm(orphan.id)
        except AgentRefused as exc:
            if exc.status != 404:
                raise
            return False
        finally:
            self.refresh(orphan.where)
        return True
