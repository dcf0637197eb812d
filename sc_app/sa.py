"""SA: the Service Agent behind ASI (CSO draft §3.2, §5, §7.2).

Translates an AC's request (service type, endpoints, bandwidth, delay,
jitter, hops, include/exclude) into SA-PCE constraints, reserves the route
and wavelength, has the SCI install the flow entries (barrier-confirmed), records
the lightpath in the DBM and answers; any failure on the way gives back
everything taken. A plain class: the Ryu app and the WSGI controllers only
call it, so tests drive it with a fake installer. Restoration (`sc_app.restoration`)
changes lightpaths through its state methods (``set_state``, ``record``, ...).
"""
from __future__ import annotations

import enum
import functools
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence

from cso_base import wire
from cso_base.errors import CodedError
from sc_app import flows
from sc_app.dbm import Database
from sc_app.events import EventBus
from sc_app.lightpath import (DOWN, FAILED, INSTALLING, TEARING_DOWN, UP, Endpoint, EndpointError,
                              Lightpath, Protection, resolve_endpoint)
from sc_app.metrics import ScMetrics
from sc_app.pce import (NO_CONSTRAINTS, PCE, ConstraintError, Constraints, NoPath, Path,
                        PathPair)
from sc_app.sci import InstallResult
from sc_app.ted import TedError
from topologies.model import Topology

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class LightpathRequest:
    """An AC's request for a lightpath (ASI establish), validated by the shell."""

    src: str
    dst: str
    #: Where a DC-host address is attached now (a VM migrated away from its home node).
    src_node: Optional[str] = None
    dst_node: Optional[str] = None
    service_type: str = "generic"
    label: Optional[str] = None
    #: ``none``, ``link`` or ``srlg`` (`cso_base.wire.PROTECTION_MODES`).
    protection: str = "none"
    constraints: Constraints = NO_CONSTRAINTS


@dataclass(frozen=True)
class EvaluateRequest:
    """Candidate paths from one source to many destinations (ASI evaluate), reserving nothing."""

    src: str
    dsts: tuple[str, ...]
    constraints: Constraints = NO_CONSTRAINTS


class ErrorKind(str, enum.Enum):
    """How the SA refuses a request; the ASI shell maps each kind to an HTTP status."""

    #: The request names something that cannot be (an unknown endpoint, a bad constraint).
    INVALID = "invalid"
    #: No such lightpath (or another AC's).
    NOT_FOUND = "not-found"
    #: The request clashes with the state of a lightpath.
    CONFLICT = "conflict"
    #: No route: ``reason`` is one of `cso_base.wire.REASONS`.
    NO_PATH = "no-path"
    #: The switches did not take the entries.
    UNAVAILABLE = "unavailable"


class SaError(CodedError):
    """A request the SA refuses: its kind, a code of `cso_base.wire`, a reason and details."""

    def __init__(self, kind: ErrorKind, code: str, reason: str, **details: Any):
        super().__init__(kind.value, code, reason)
        self.kind = kind
        #: More fields for the AC (``field``, ``detail``, ``dpid``), in the order given.
        self.details = details


class Installer(Protocol):
    """What the SA needs from the SCI's flow installer (`sc_app.sci.FlowInstaller`)."""

    def install(self, cookie: int, messages: dict[int, list],
                timeout: Optional[float] = None) -> InstallResult: ...

    def remove(self, cookie: int, dpids: Any, timeout: Optional[float] = None) -> InstallResult:
        ...

    def install_many(self, batches: Sequence[tuple[int, dict[int, list]]],
                     timeout: Optional[float] = None) -> list[InstallResult]: ...

    def remove_many(self, removals: Sequence[tuple[int, Any]],
                    timeout: Optional[float] = None) -> list[InstallResult]: ...


class ServiceAgent:
    """Serves ASI requests: establish, teardown, query and evaluate lightpaths."""

    def __init__(self, topology: Topology, pce: PCE, db: Database, installer: Installer,
                 bus: EventBus, metrics: ScMetrics, clock: Callable[[], float] = time.monotonic):
        self.topology = topology
        self.pce = pce
        self.ted = pce.ted
        self.db = db
        self.installer = installer
        self.bus = bus
        self.metrics = metrics
        self.clock = clock
        #: Held lightpaths by id, oldest first; changed only through `_hold` and `_drop`.
        self.lightpaths: dict[str, Lightpath] = {}
        #: The ids of held lightpaths with an endpoint at a node or on a prefix (keys
        #: ``("node", id)``, ``("net", network)``): `_check_overlap`'s candidates.
        self._by_endpoint: dict[tuple[str, Any], set[str]] = {}
        #: Position of each held id in ``lightpaths`` (the order `_check_overlap` reports in).
        self._order: dict[str, int] = {}
        self._serial = itertools.count()
        for lp in db.list_lightpaths():
            self._hold(lp)
        #: Protected lightpaths' directions (reverse?) whose group the SC turned
        #: protection-first; kept in the DBM too, so a restart and reconciliation keep them.
        self.switched: dict[str, set[bool]] = {
            lp_id: turned for lp_id, turned in db.list_switched().items()
            if lp_id in self.lightpaths}
        self._export_gauges()

    # -- start-up ---------------------------------------------------------------------------

    def restore(self) -> list[str]:
        """Re-occupy the wavelengths of every recorded lightpath (before serving requests).

        A lightpath still ``installing`` (or being torn down) was cut short by a
        crash: it is dropped, and its stray entries are removed when its switches
        reconnect and are reconciled (`sc_app.reconcile`): fully gone. Returns the
        ids of lightpaths that could not be restored (and were dropped).
        """
        dropped = []
        for lp in list(self.lightpaths.values()):
            if lp.state in (INSTALLING, TEARING_DOWN, FAILED):
                dropped.append(lp.id)
                self._forget(lp)
                continue
            if lp.wavelength is None:
                continue  # a local connection holds no wavelength
            try:
                self.pce.restore(lp.route, lp.wavelength, lp.id, lp.links)
                if lp.protection is not None:
                    self.pce.restore(lp.protection.route, lp.protection.wavelength, lp.id,
                                     lp.protection.links)
            except TedError as exc:
                LOG.error("cannot restore %s: %s", lp.id, exc)
                self.db.raise_alarm("restore-failed", "major", lp.id, str(exc))
                dropped.append(lp.id)
                self._forget(lp)
        return dropped

    # -- ASI --------------------------------------------------------------------------------

    def establish(self, owner: str, req: LightpathRequest) -> Lightpath:
        """Compute, reserve and install a lightpath for AC ``owner``; SaError when refused."""
        started = self.clock()
        src = self._endpoint(req.src, "src", req.src_node)
        dst = self._endpoint(req.dst, "dst", req.dst_node)
        constraints = req.constraints
        self._check_overlap(owner, src, dst)
        mode = req.protection
        if mode != "none" and src.node == dst.node:
            raise SaError(ErrorKind.INVALID, wire.INVALID_CONSTRAINT,
                          "a local connection (both endpoints at one node) has no path to "
                          "protect", field="protection")
        lp_id, cookie = self.db.next_ids()
        if mode == "none":
            path: Optional[Path | PathPair] = self._reserve(lp_id, src, dst, constraints)
        else:
            path = self._reserve_pair(lp_id, src, dst, constraints, mode)
        working = path.working if isinstance(path, PathPair) else path
        route, links, wavelength = ((src.node,), (), None) if working is None else (
            working.route, working.links, working.wavelength)
        protection = None if not isinstance(path, PathPair) else Protection(
            mode, path.protection.route, path.protection.links, path.protection.wavelength)
        lp = Lightpath(id=lp_id, owner=owner, service_type=req.service_type,
                       src=req.src, dst=req.dst, src_endpoint=src, dst_endpoint=dst,
                       route=route, links=links, wavelength=wavelength,
                       cookie=cookie, state=INSTALLING, constraints=constraints.to_dict(),
                       protection=protection)
        try:
            self.db.save_lightpath(lp)
            self._hold(lp)
            result = self.installer.install(cookie, flows.lightpath_flows(self.topology, lp))
        except Exception:
            self._remove_groups(lp)
            self._give_back(lp, path)
            raise
        if not result.ok:
            self._remove_groups(lp)  # the installer's rollback removes the entries only
            self._give_back(lp, path)
            self.metrics.blocked.labels(reason=result.code or wire.INSTALL_FAILED).inc()
            raise SaError(ErrorKind.UNAVAILABLE, wire.INSTALL_FAILED,
                          result.code or wire.INSTALL_FAILED, detail=result.reason,
                          dpid=result.dpid)
        lp = self.set_state(lp, UP)
        self.metrics.established.inc()
        self.metrics.provisioning.observe(self.clock() - started)
        return lp

    def _reserve(self, lp_id: str, src: Endpoint, dst: Endpoint,
                 constraints: Constraints) -> Optional[Path]:
        """Route and wavelength for a new lightpath; None for a local connection.

        Two endpoints at one node (a user and a server of the DC at their own node) are
        joined inside the switch: no fibre and no wavelength, as long as the constraints
        allow it (a local connection has 0 hops and no delay).
        """
        if src.node == dst.node:
            if _overlaps(src, dst):
                raise SaError(ErrorKind.NO_PATH, wire.NO_PATH, wire.SAME_NODE,
                              detail="source and destination are the same endpoint")
            if constraints.include_nodes and set(constraints.include_nodes) != {src.node}:
                raise self._blocked(NoPath(wire.INCLUDE_UNSATISFIED,
                                           "a local connection visits no other node"))
            if src.node in constraints.exclude_nodes:
                raise self._blocked(NoPath(wire.EXCLUDED, f"node {src.node} is excluded"))
            return None
        try:
            path = self.pce.reserve(src.node, dst.node, constraints, owner=lp_id)
        except ConstraintError as exc:
            raise _invalid_constraint(exc) from None
        if isinstance(path, NoPath):
            raise self._blocked(path)
        return path

    def _reserve_pair(self, lp_id: str, src: Endpoint, dst: Endpoint, constraints: Constraints,
                      mode: str) -> PathPair:
        """A disjoint working/protection pair, both wavelengths held; SaError when none."""
        try:
            pair = self.pce.reserve_pair(src.node, dst.node, constraints, mode, owner=lp_id)
        except ConstraintError as exc:
            raise _invalid_constraint(exc) from None
        if isinstance(pair, NoPath):
            raise self._blocked(pair)
        return pair

    def _blocked(self, no_path: NoPath) -> SaError:
        """A request blocked for want of a path: counted, and the error to raise."""
        self.metrics.blocked.labels(reason=no_path.reason).inc()
        return SaError(ErrorKind.NO_PATH, wire.NO_PATH, no_path.reason, detail=no_path.detail)

    def _remove_groups(self, lp: Lightpath) -> None:
        """Delete a protected lightpath's fast-failover groups (after its entries)."""
        groups = flows.delete_protection_groups(self.topology, lp)
        if not groups:
            return
        result = self.installer.install(flows.GROUP_BATCH_COOKIE, groups)
        if not result.ok:
            LOG.warning("groups of %s left on %s: %s", lp.id, result.dpid, result.reason)

    def teardown(self, owner: str, lp_id: str) -> Lightpath:
        """Remove an AC's lightpath: its entries on every switch, then its wavelength."""
        lp = self.get(owner, lp_id)
        if lp.state == TEARING_DOWN:
            raise SaError(ErrorKind.CONFLICT, wire.CONFLICT,
                          f"lightpath {lp_id} is already being torn down")
        lp = self.set_state(lp, TEARING_DOWN)
        result = self.installer.remove(lp.cookie, flows.lightpath_dpids(self.topology, lp))
        if not result.ok:
            # The wavelength is given back all the same: the entries left on an
            # unreachable switch are stale and removed when it reconnects.
            LOG.warning("teardown of %s left entries on %s: %s", lp.id, result.unclean,
                        result.reason)
        self._remove_groups(lp)
        self.switched.pop(lp.id, None)
        self._forget(lp)
        self.publish(lp, "deleted")
        return lp

    def get(self, owner: str, lp_id: str) -> Lightpath:
        """An AC's own lightpath; another AC's is as good as missing (404)."""
        lp = self.lightpaths.get(lp_id)
        if lp is None or lp.owner != owner:
            raise SaError(ErrorKind.NOT_FOUND, wire.NOT_FOUND, f"no lightpath {lp_id}")
        return lp

    def list(self, owner: Optional[str] = None) -> list[Lightpath]:
        """Lightpaths of ``owner`` (all when None), oldest first."""
        return [lp for lp in self.lightpaths.values() if owner is None or lp.owner == owner]

    def evaluate(self, req: EvaluateRequest) -> dict[str, Any]:
        """Candidates from one source to many destinations, nothing reserved (for GLB)."""
        src = self._endpoint(req.src, "src")
        constraints = req.constraints
        results = []
        for dst_text in req.dsts:
            try:
                dst = resolve_endpoint(self.topology, dst_text)
            except EndpointError as exc:
                results.append({"dst": dst_text, "feasible": False, "reason": exc.code,
                                "detail": exc.reason})
                continue
            try:
                answer = self.pce.compute(src.node, dst.node, constraints)
            except ConstraintError as exc:
                raise _invalid_constraint(exc) from None
            results.append({"dst": dst_text, "node": dst.node, **describe(answer)})
        return {"src": req.src, "node": src.node, "k": self.pce.k,
                "order": self.pce.order, "results": results}

    # -- state changes (restoration, `sc_app.restoration`) ---------------------------------

    def set_state(self, lp: Lightpath, state: str, reason: Optional[str] = None) -> Lightpath:
        """Record a new state of a held lightpath (e.g. down when a fibre fails), tell its AC."""
        new = lp.with_state(state, reason)
        self.db.write_state(new)
        self._hold(new)
        self.publish(new, state)
        return new

    def new_cookie(self) -> int:
        """A fresh cookie for a lightpath's new entries (a re-route's)."""
        _, cookie = self.db.next_ids()  # the id it comes with is never used
        return cookie

    def record(self, lp: Lightpath) -> None:
        """Record a new version of a held lightpath (a re-route's new route) and hold it."""
        self.db.save_lightpath(lp)
        self._hold(lp)

    def set_switched(self, lp_id: str, reverse: bool, protection_first: bool) -> None:
        """Remember that a protected lightpath's group (one direction) was turned or back."""
        turned = self.switched.setdefault(lp_id, set())
        (turned.add if protection_first else turned.discard)(reverse)
        self.db.set_switched(lp_id, reverse, protection_first)

    def publish(self, lp: Lightpath, what: str, **extra: Any) -> None:
        """Tell the lightpath's AC what happened to it (``extra``: more fields of the event)."""
        self.bus.publish("lightpath", {"event": what, "lightpath": lp.to_json(), **extra},
                         owner=lp.owner)

    # -- helpers ----------------------------------------------------------------------------

    def _endpoint(self, text: str, field: str, node: Optional[str] = None) -> Endpoint:
        try:
            return resolve_endpoint(self.topology, text, node)
        except EndpointError as exc:
            where = f"{field}_node" if exc.code == wire.INVALID_ATTACHMENT else field
            raise SaError(ErrorKind.INVALID, exc.code, exc.reason, field=where) from None

    def _check_overlap(self, owner: str, src: Endpoint, dst: Endpoint) -> None:
        """Refuse a service whose traffic an existing lightpath already carries.

        Both would classify the same packets at the ingress switch; the switch
        would refuse the second (overlap check) after the wavelength was taken.
        """
        # Only a lightpath with an end at src's node or on one of its prefixes can overlap.
        candidates = set().union(self._by_endpoint.get(("node", src.node), ()),
                                 *(self._by_endpoint.get(("net", net), ()) for net in src.nets))
        for lp_id in sorted(candidates, key=self._order.__getitem__):
            lp = self.lightpaths[lp_id]
            for a, b in ((lp.src_endpoint, lp.dst_endpoint), (lp.dst_endpoint, lp.src_endpoint)):
                if _overlaps(a, src) and _overlaps(b, dst):
                    # Another AC's lightpath is not named: ACs see only their own.
                    whose = f"lightpath {lp.id}" if lp.owner == owner else "another lightpath"
                    raise SaError(ErrorKind.CONFLICT, wire.ENDPOINT_IN_USE,
                                  f"{whose} already carries traffic between these endpoints")

    @staticmethod
    def _endpoint_keys(lp: Lightpath) -> set[tuple[str, Any]]:
        return {key for ep in (lp.src_endpoint, lp.dst_endpoint)
                for key in (("node", ep.node), *(("net", net) for net in ep.nets))}

    def _hold(self, lp: Lightpath) -> None:
        """Keep ``lp`` (a new lightpath, or a new record of a held one) and index its ends."""
        old = self.lightpaths.get(lp.id)
        if old is None:
            self._order[lp.id] = next(self._serial)
        else:
            self._unindex(old)
        self.lightpaths[lp.id] = lp
        for key in self._endpoint_keys(lp):
            self._by_endpoint.setdefault(key, set()).add(lp.id)

    def _drop(self, lp_id: str) -> None:
        """Forget a held lightpath (nothing if it is not held)."""
        lp = self.lightpaths.pop(lp_id, None)
        if lp is not None:
            self._unindex(lp)
            del self._order[lp_id]

    def _unindex(self, lp: Lightpath) -> None:
        for key in self._endpoint_keys(lp):
            ids = self._by_endpoint[key]
            ids.discard(lp.id)
            if not ids:
                del self._by_endpoint[key]

    def _give_back(self, lp: Lightpath, path: Optional[Path | PathPair]) -> None:
        if path is not None:
            self.pce.release(path, lp.id)
        self._drop(lp.id)
        self.db.delete_lightpath(lp.id)

    def _forget(self, lp: Lightpath) -> None:
        if lp.wavelength is not None:
            try:
                self.ted.release(lp.links, lp.wavelength, lp.id)
            except TedError:
                pass  # never restored (dropped at start-up): nothing held
        if lp.protection is not None:
            try:
                self.ted.release(lp.protection.links, lp.protection.wavelength, lp.id)
            except TedError:
                pass
        self._drop(lp.id)
        self.switched.pop(lp.id, None)
        self.db.delete_lightpath(lp.id)

    def _export_gauges(self) -> None:
        """Have the lightpath and wavelength gauges read the SA's state when scraped.

        Counting on every state change cost O(lightpaths + links) per change (3-4 per
        lightpath); a scrape now counts once, from the same state.
        """
        for state in (INSTALLING, UP, DOWN, TEARING_DOWN, FAILED):
            self.metrics.lightpaths.labels(state=state).set_function(
                functools.partial(self._count, state))
        self.metrics.wavelengths_used.set_function(self._wavelengths_used)

    def _count(self, state: str) -> int:
        return sum(1 for lp in self.lightpaths.values() if lp.state == state)

    def _wavelengths_used(self) -> int:
        return sum(bin(full & ~free).count("1")
                   for full, free in zip(self.ted.full, self.ted.free))


def _invalid_constraint(exc: ConstraintError) -> SaError:
    """A constraint that names what the network does not have (an unknown link or SRLG)."""
    return SaError(ErrorKind.INVALID, wire.INVALID_CONSTRAINT, str(exc))


def _overlaps(a: Endpoint, b: Endpoint) -> bool:
    """Same traffic: overlapping prefixes at one node, or one host address wherever attached.

    An address attached at two nodes (a VM being migrated) still needs one lightpath at a
    time: the far end would classify its traffic with identical entries.
    """
    return any(x.overlaps(y) and (a.node == b.node or x == y) for x in a.nets for y in b.nets)


def describe(result: Any) -> dict[str, Any]:
    """A PCE answer as an evaluation entry: feasible, hops, Σ TE weight, delay, free λs."""
    if isinstance(result, NoPath):
        return {"feasible": False, "reason": result.reason, "detail": result.detail}
    return {"feasible": True, "route": list(result.route), "hops": result.hops,
            "te_cost": result.te_cost, "delay_ms": result.delay_ms,
            "length_km": result.length_km, "wavelength": result.wavelength,
            "free_wavelengths": len(result.free_wavelengths)}
