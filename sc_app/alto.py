"""ALTO server (RFC 7285 and extensions) over the SC's TED and SA-PCE: plain logic, no HTTP.

Information resources (ids as in the IRD; `sc_app.alto_api` serves them under ``/alto``):

- ``networkmap``: one PID per site, with the IPv4 prefixes of the address plan
  (`topologies.addressing`):
  ``user-<i>`` 10.1.<i>.0/24 at every node, ``dc-<i>`` 10.2.<i>.0/24 at DC nodes, ``node-<i>``
  10.0.<i>.0/24 (the node's own infrastructure range), and ``default`` 0.0.0.0/0 for every
  other address, so the map is complete and non-overlapping (RFC 7285 §11.2.2). Nodes outside
  the plan (ids other than 0..255) have no PIDs.
- ``costmap-<type>``: costs between PIDs are those between their nodes along the path SA-PCE
  would choose now (NRAE `site_path`, the abstraction behind the ASI dc-mesh view):
  ``routingcost`` Σ load-dependent TE weight, ``hopcount``, RFC 9439 ``delay-ow`` (µs, nominal:
  5 µs/km) and ``bw-residual`` (kbps: wavelengths free on every fibre of the path × the
  lowest per-wavelength capacity), numerical and ordinal (bw-residual numerical only). Sites of
  one node cost 0 (no bw-residual: no fibre is crossed); a pair without a feasible lightpath
  now, or involving ``default``, has no cost and is left out (RFC 7285 §11.2.3.6).
- filtered network and cost maps, the endpoint cost service (RFC 8189 multi-cost, testable
  cost types, constraints and or-constraints on both), the endpoint property service
  (``networkmap.pid``) and an RFC 9240 property map (per PID: site kind, node, domain, DC,
  free wavelengths at the node; per IPv4 prefix: its PID).

Every tag is a hash of the resource's content, so it changes exactly when the content does.
What is computed from the TED (per pair of nodes, when first asked) is cached until its
``(version, seq)`` moves.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from cso_base.wire import (ALTO_PREFIX, COST_MAP, COST_MAP_FILTER, ENDPOINT_COST,
                           ENDPOINT_COST_PARAMS, ENDPOINT_PROP, ENDPOINT_PROP_PARAMS, EVENT_STREAM,
                           E_INVALID_FIELD_TYPE, E_INVALID_FIELD_VALUE, E_MISSING_FIELD,
                           MERGE_PATCH, NETWORK_MAP, NETWORK_MAP_FILTER, NUMERICAL, ORDINAL,
                           PROP_MAP, PROP_MAP_PARAMS, UPDATE_STREAM_PARAMS)
from sc_app import nrae
from sc_app.lightpath import EndpointError, resolve_endpoint
from sc_app.pce import PCE, NoPath, Path
from sc_app.ted import TedEvent
from topologies.addressing import NODE
from topologies.model import DC_PORT, USER_PORT, Topology, natural_key

PREFIX = ALTO_PREFIX
NETWORK_MAP_ID = "networkmap"
UPDATE_STREAM_ID = "update-stream"
#: The "pid" property of IPv4 endpoints (RFC 7285 §7.1.1) and the PID entity domain (RFC 9240).
PID_PROPERTY = f"{NETWORK_MAP_ID}.pid"
PID_DOMAIN = PID_PROPERTY
SITE_PROPERTIES = ("priv:cso-site", "priv:cso-node", "priv:cso-domain", "priv:cso-dc",
                   "priv:cso-free-wavelengths")
#: RFC 7285 §10.2: resource ids (and update stream client ids) are PID names.
RESOURCE_ID = re.compile(r"[A-Za-z0-9:@_-]{1,64}")
_DEFAULT = ipaddress.IPv4Network("0.0.0.0/0")


class AltoError(Exception):
    """An RFC 7285 §8.5 error: answered 400 with an ``application/alto-error+json`` body."""

    status = 400

    def __init__(self, code: str, field: Optional[str] = None, value: Any = None,
                 syntax_error: Optional[str] = None):
        super().__init__(" ".join(str(p) for p in (code, field, value, syntax_error) if p))
        self.code = code
        self.field = field
        # RFC 7285 §8.5.2: "value" is a string, and only given with "field".
        self.value = None if value is None or field is None else as_text(value)
        self.syntax_error = syntax_error

    def body(self) -> dict[str, Any]:
        """The error resource: ``{"meta": {"code": ..., ...}}``."""
        meta: dict[str, Any] = {"code": self.code}
        for name, value in (("syntax-error", self.syntax_error), ("field", self.field),
                            ("value", self.value)):
            if value is not None:
                meta[name] = value
        return {"meta": meta}


def as_text(value: Any) -> str:
    """A request value as RFC 7285 §8.5.2 reports it: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


_KINDS: dict[str, type] = {"object": dict, "array": list, "string": str, "boolean": bool}


def get_field(obj: Mapping[str, Any], name: str, kind: str, path: str,
              required: bool = False) -> Any:
    """``obj[name]`` checked to be JSON ``kind``; None when absent and not required."""
    if name not in obj:
        if required:
            raise AltoError(E_MISSING_FIELD, path)
        return None
    value = obj[name]
    if not isinstance(value, _KINDS[kind]):
        raise AltoError(E_INVALID_FIELD_TYPE, path)
    return value


def get_strings(obj: Mapping[str, Any], name: str, path: str, required: bool = False,
                non_empty: bool = False) -> Optional[list[str]]:
    """An array of strings, duplicates dropped; a non-string element is an invalid value."""
    values = get_field(obj, name, "array", path, required)
    if values is None:
        return None
    for value in values:
        if not isinstance(value, str):
            raise AltoError(E_INVALID_FIELD_VALUE, path, value)
    if non_empty and not values:
        raise AltoError(E_INVALID_FIELD_VALUE, path, values)
    return list(dict.fromkeys(values))


def tag_of(content: Any) -> str:
    """A version tag: a hash of the canonical JSON of ``content`` (RFC 7285 §10.3)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=20).hexdigest()


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7396) that turns ``old`` into ``new`` (neither holds null)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch


# -- PIDs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pid:
    """A PID of the network map: a site (``kind`` user, dc, node) or ``default``."""

    name: str
    kind: str
    node: Optional[str]
    prefixes: tuple[ipaddress.IPv4Network, ...]


def site_pids(topology: Topology) -> tuple[Pid, ...]:
    """The PIDs of a topology: user sites, DC sites, node sites, then ``default``."""
    sites: dict[str, list[Pid]] = {"user": [], "dc": [], "node": []}
    kinds = {USER_PORT: "user", DC_PORT: "dc"}
    for node in sorted(topology.nodes, key=natural_key):
        try:
            endpoint = resolve_endpoint(topology, node)
        except EndpointError:
            continue  # outside the 10.x.<i>.0/24 address plan
        for attachment in endpoint.attachments:
            kind = kinds[attachment.port]
            sites[kind].append(Pid(f"{kind}-{node}", kind, node, (attachment.net,)))
        own = topology.addresses.site(node, NODE)
        sites["node"].append(Pid(f"node-{node}", "node", node, (own,)))
    default = Pid("default", "default", None, (_DEFAULT,))
    return (*sites["user"], *sites["dc"], *sites["node"], default)


def parse_typed_address(text: str) -> Optional[ipaddress.IPv4Network]:
    """``ipv4:ADDR[/LEN]`` -> its network; None for ``ipv6:...``; ValueError otherwise."""
    kind, sep, address = text.partition(":")
    if not sep:
        raise ValueError(f"{text!r} is not ADDRESS-TYPE:ADDRESS")
    if kind == "ipv4":
        return ipaddress.IPv4Network(address, strict=False)
    if kind == "ipv6":
        ipaddress.IPv6Network(address, strict=False)
        return None  # a valid address, in no PID of an IPv4-only map
    raise ValueError(f"unknown address type {kind!r}")


# -- cost types and constraints -----------------------------------------------------------------

@dataclass(frozen=True)
class CostType:
    """A cost type offered: IRD name, metric, mode, and RFC 9439 cost source if any."""

    name: str
    metric: str
    mode: str
    description: str
    source: Optional[str] = None

    def to_json(self, described: bool = False) -> dict[str, Any]:
        """The RFC 7285 §10.7 CostType object."""
        result: dict[str, Any] = {"cost-mode": self.mode, "cost-metric": self.metric}
        if self.source is not None:
            result["cost-context"] = {"cost-source": self.source}
        if described:
            result["description"] = self.description
        return result


_PATH = "the path SA-PCE would choose now"
COST_TYPES: tuple[CostType, ...] = (
    CostType("num-routingcost", "routingcost", NUMERICAL,
             f"sum of the load-dependent TE weights along {_PATH}"),
    CostType("ord-routingcost", "routingcost", ORDINAL, "rank of routingcost (1 is best)"),
    CostType("num-hopcount", "hopcount", NUMERICAL, f"fibres crossed by {_PATH}"),
    CostType("ord-hopcount", "hopcount", ORDINAL, "rank of hopcount (1 is best)"),
    CostType("num-delay-ow", "delay-ow", NUMERICAL,
             f"one-way propagation delay along {_PATH}, in microseconds (5 us/km)", "nominal"),
    CostType("ord-delay-ow", "delay-ow", ORDINAL, "rank of delay-ow (1 is best)", "nominal"),
    CostType("num-bw-residual", "bw-residual", NUMERICAL,
             f"kbps: wavelengths free on every fibre of {_PATH} x the lowest per-wavelength "
             "capacity", "estimation"),
)
#: RFC 8189 ``max-cost-types``.
MAX_COST_TYPES = len(COST_TYPES)

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt, "lt": operator.lt, "ge": operator.ge, "le": operator.le,
    "eq": operator.eq, "ne": operator.ne}
_CONSTRAINT = re.compile(r"\s*(?:\[(\d{1,3})\]\s*)?(gt|lt|ge|le|eq|ne)\s+(\S+)\s*")


@dataclass(frozen=True)
class Constraint:
    """``[index] op value``: a test on the index-th tested cost type (RFC 7285, RFC 8189)."""

    index: int
    op: str
    value: float

    @classmethod
    def parse(cls, text: str, tested: int, path: str) -> "Constraint":
        """Parse one constraint string; ``tested`` is how many cost types it may refer to."""
        match = _CONSTRAINT.fullmatch(text)
        try:
            value = float(match.group(3)) if match else math.nan
        except ValueError:
            value = math.nan
        index = int(match.group(1) or 0) if match else 0
        if not match or not math.isfinite(value) or index >= tested:
            raise AltoError(E_INVALID_FIELD_VALUE, path, text)
        return cls(index, match.group(2), value)

    def holds(self, cost: Optional[float]) -> bool:
        """Whether a cost passes (an undefined cost passes nothing)."""
        return cost is not None and _OPERATORS[self.op](cost, self.value)


@dataclass(frozen=True)
class CostQuery:
    """The cost part of a filtered cost map or endpoint cost request."""

    types: tuple[CostType, ...]
    multi: bool
    tested: tuple[CostType, ...]
    any_of: tuple[tuple[Constraint, ...], ...]  # OR of AND groups; () means no constraint

    def meta(self) -> dict[str, Any]:
        """``cost-type`` (and RFC 8189 ``multi-cost-types``) of the response's meta."""
        if not self.multi:
            return {"cost-type": self.types[0].to_json()}
        return {"cost-type": {}, "multi-cost-types": [t.to_json() for t in self.types]}


# -- resources ----------------------------------------------------------------------------------

Render = Callable[[Optional[dict[str, Any]], Optional[str]], dict[str, Any]]


@dataclass(frozen=True)
class Resource:
    """One IRD entry; ``render(params, client address)`` makes it (None: not a map)."""

    id: str
    uri: str
    media_type: str
    render: Optional[Render]
    accepts: Optional[str] = None
    capabilities: Mapping[str, Any] = field(default_factory=dict)
    uses: tuple[str, ...] = ()

    def entry(self) -> dict[str, Any]:
        """The IRDResourceEntry (RFC 7285 §9.2.2)."""
        result: dict[str, Any] = {"uri": self.uri, "media-type": self.media_type}
        if self.accepts is not None:
            result["accepts"] = self.accepts
        if self.capabilities:
            result["capabilities"] = dict(self.capabilities)
        if self.uses:
            result["uses"] = list(self.uses)
        return result


Metrics = dict[str, Optional[float]]
_UNDEFINED: Metrics = {ct.metric: None for ct in COST_TYPES}
_SAME_SITE: Metrics = {"routingcost": 0.0, "hopcount": 0, "delay-ow": 0.0, "bw-residual": None}


def _number(value: float) -> float:
    return int(value) if float(value).is_integer() else round(value, 3)


def _ranks(values: Iterable[Optional[float]]) -> dict[float, int]:
    """Dense ranks, 1 for the lowest (RFC 7285 §6.1.2.2: lower is preferred)."""
    return {v: n for n, v in enumerate(sorted({v for v in values if v is not None}), 1)}


class AltoServer:
    """The ALTO information resources of one SC, computed from its TED and SA-PCE."""

    def __init__(self, pce: PCE):
        self.pce = pce
        self.ted = pce.ted
        self.pids = site_pids(self.ted.topology)
        self._pid_by_name = {pid.name: pid for pid in self.pids}
        self._lookup = sorted(((net, pid.name) for pid in self.pids for net in pid.prefixes),
                              key=lambda item: -item[0].prefixlen)
        self._capacity = {link.id: link.capacity_gbps for link in self.ted.links}
        self.cost_types = {ct.name: ct for ct in COST_TYPES}
        data = {pid.name: {"ipv4": [str(net) for net in pid.prefixes]} for pid in self.pids}
        self.network_map_vtag = {"resource-id": NETWORK_MAP_ID, "tag": tag_of(data)}
        self._network_map = {"meta": {"vtag": self.network_map_vtag}, "network-map": data}
        self.resources = {r.id: r for r in self._resources()}
        self._state: Optional[tuple[int, int]] = None
        self._site_costs: dict[tuple[str, str], Metrics] = {}
        self._bodies: dict[str, dict[str, Any]] = {}
        self._watchers: list[Callable[[], None]] = []
        self._unsubscribe: Optional[Callable[[], None]] = None

    # -- directory and dispatch ---------------------------------------------------------------

    def _resources(self) -> list[Resource]:
        nm, names = (NETWORK_MAP_ID,), list(self.cost_types)
        filtered_caps = {"cost-type-names": names, "cost-constraints": True,
                         "max-cost-types": MAX_COST_TYPES, "testable-cost-type-names": names}
        mappings = {PID_DOMAIN: list(SITE_PROPERTIES), "ipv4": [PID_PROPERTY]}
        maps = [
            Resource(NETWORK_MAP_ID, f"{PREFIX}/networkmap", NETWORK_MAP,
                     lambda _p, _c: self._network_map),
            Resource("networkmap-filtered", f"{PREFIX}/networkmap/filtered", NETWORK_MAP,
                     self.filtered_network_map, NETWORK_MAP_FILTER, uses=nm),
            *(Resource(f"costmap-{ct.name}", f"{PREFIX}/costmap/{ct.name}", COST_MAP,
                       self._full_cost_map(ct), capabilities={"cost-type-names": [ct.name]},
                       uses=nm) for ct in COST_TYPES),
            Resource("costmap-filtered", f"{PREFIX}/costmap/filtered", COST_MAP,
                     self.filtered_cost_map, COST_MAP_FILTER, filtered_caps, nm),
            Resource("endpointcost", f"{PREFIX}/endpointcost", ENDPOINT_COST,
                     self.endpoint_cost, ENDPOINT_COST_PARAMS, filtered_caps),
            Resource("endpointprop", f"{PREFIX}/endpointprop", ENDPOINT_PROP,
                     self.endpoint_properties, ENDPOINT_PROP_PARAMS,
                     {"prop-types": [PID_PROPERTY]}),
            Resource("propmap", f"{PREFIX}/propmap", PROP_MAP, self.property_map,
                     capabilities={"mappings": mappings}, uses=nm),
            Resource("propmap-filtered", f"{PREFIX}/propmap/filtered", PROP_MAP,
                     self.filtered_property_map, PROP_MAP_PARAMS, {"mappings": mappings}, nm),
        ]
        streamable = tuple(r.id for r in maps)
        updates = Resource(UPDATE_STREAM_ID, f"{PREFIX}/updates", EVENT_STREAM, None,
                           UPDATE_STREAM_PARAMS, {
                               "incremental-change-media-types": {
                                   rid: MERGE_PATCH for rid in streamable},
                               "support-stream-control": True}, streamable)
        return [*maps, updates]

    def directory(self) -> dict[str, Any]:
        """The Information Resource Directory (RFC 7285 §9)."""
        return {"meta": {"cost-types": {ct.name: ct.to_json(described=True)
                                        for ct in COST_TYPES},
                         "default-alto-network-map": NETWORK_MAP_ID},
                "resources": {rid: r.entry() for rid, r in self.resources.items()}}

    @property
    def streamable(self) -> tuple[str, ...]:
        """Resources an update stream can carry."""
        return tuple(rid for rid, r in self.resources.items() if r.render is not None)

    def render(self, resource_id: str, params: Optional[dict[str, Any]] = None,
               client: Optional[str] = None) -> tuple[str, dict[str, Any]]:
        """(media type, body) of a resource now; POST resources take their ``params``.

        Raises AltoError for invalid params. Never mutate a body: GET bodies are cached.
        """
        resource = self.resources[resource_id]
        assert resource.render is not None, resource_id
        if resource.accepts is not None:
            return resource.media_type, resource.render(params or {}, client)
        self._sync()
        body = self._bodies.get(resource_id)
        if body is None:
            body = self._bodies[resource_id] = resource.render(None, client)
        return resource.media_type, body

    # -- change notification ------------------------------------------------------------------

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after every TED change; returns a function that stops it."""
        self._watchers.append(callback)
        if self._unsubscribe is None:
            self._unsubscribe = self.ted.subscribe(self._changed)

        def stop() -> None:
            if callback in self._watchers:
                self._watchers.remove(callback)
            if not self._watchers and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

        return stop

    def _changed(self, _event: TedEvent) -> None:
        for callback in list(self._watchers):
            callback()

    # -- costs ----------------------------------------------------------------------------------

    def _sync(self) -> None:
        state = (self.ted.version, self.ted.seq)
        if state != self._state:
            self._state = state
            self._site_costs = {}
            self._bodies = {}

    def site_cost(self, src: str, dst: str) -> Metrics:
        """Metric -> value (None: undefined) between two PID nodes, computed on first use."""
        self._sync()
        metrics = self._site_costs.get((src, dst))
        if metrics is None:
            if src == dst:
                metrics = _SAME_SITE if self.ted.node_up[self.ted.node_index[src]] else _UNDEFINED
            else:
                path = nrae.site_path(self.pce, src, dst)
                metrics = _UNDEFINED if isinstance(path, NoPath) else self._metrics(path)
            self._site_costs[src, dst] = metrics
        return metrics

    def _metrics(self, path: Path) -> Metrics:
        capacity_gbps = min(self._capacity[link] for link in path.links)
        return {"routingcost": round(path.te_cost, 6), "hopcount": path.hops,
                "delay-ow": _number(path.delay_ms * 1000),
                "bw-residual": _number(path.free_mask.bit_count() * capacity_gbps * 1e6)}

    def _matrix(self, cost_type: CostType, srcs: Sequence[str], dsts: Sequence[str],
                node_of: Callable[[str], Optional[str]]) -> dict[tuple[str, str], Any]:
        """Costs of one type between keys (PIDs or endpoints); ordinal ranks these pairs."""
        metric, values = cost_type.metric, {}
        for src in srcs:
            a = node_of(src)
            for dst in dsts:
                b = node_of(dst)
                values[src, dst] = (None if a is None or b is None
                                    else self.site_cost(a, b)[metric])
        if cost_type.mode == ORDINAL:
            ranks = _ranks(values.values())
            values = {key: None if v is None else ranks[v] for key, v in values.items()}
        return values

    def _node_of_pid(self, name: str) -> Optional[str]:
        return self._pid_by_name[name].node

    def _full_cost_map(self, cost_type: CostType) -> Render:
        def render(_params: Any, _client: Any) -> dict[str, Any]:
            names = [pid.name for pid in self.pids]
            values = self._matrix(cost_type, names, names, self._node_of_pid)
            data: dict[str, dict[str, Any]] = {}
            for (src, dst), value in values.items():
                if value is not None:
                    data.setdefault(src, {})[dst] = value
            meta = {"dependent-vtags": [self.network_map_vtag],
                    "cost-type": cost_type.to_json()}
            return _versioned(f"costmap-{cost_type.name}", meta, "cost-map", data)

        return render

    def _evaluate(self, query: CostQuery, srcs: Sequence[str], dsts: Sequence[str],
                  node_of: Callable[[str], Optional[str]]) -> dict[str, dict[str, Any]]:
        """The (multi-)cost values of every pair that has one and passes the constraints."""
        needed = dict.fromkeys(query.types + query.tested)
        matrices = {ct: self._matrix(ct, srcs, dsts, node_of) for ct in needed}
        result: dict[str, dict[str, Any]] = {}
        for src in srcs:
            for dst in dsts:
                values = [matrices[ct][src, dst] for ct in query.types]
                if all(value is None for value in values):
                    continue
                if query.any_of and not any(
                        all(c.holds(matrices[query.tested[c.index]][src, dst]) for c in group)
                        for group in query.any_of):
                    continue
                result.setdefault(src, {})[dst] = values if query.multi else values[0]
        return result

    # -- request parsing ------------------------------------------------------------------------

    def _cost_type(self, obj: Any, path: str, element: bool = False) -> CostType:
        """A requested CostType; inside an array, problems are reported on the array."""
        if not isinstance(obj, dict):
            raise AltoError(E_INVALID_FIELD_VALUE if element else E_INVALID_FIELD_TYPE, path,
                            obj if element else None)
        metric = get_field(obj, "cost-metric", "string", f"{path}/cost-metric", True)
        mode = get_field(obj, "cost-mode", "string", f"{path}/cost-mode", True)
        context = get_field(obj, "cost-context", "object", f"{path}/cost-context")
        # RFC 7285 says nothing of a context; ours (the spec's CostType) requires its source.
        source = None if context is None else get_field(
            context, "cost-source", "string", f"{path}/cost-context/cost-source", True)
        for ct in COST_TYPES:
            if (ct.metric, ct.mode) == (metric, mode) and source in (None, ct.source):
                return ct
        if element:
            raise AltoError(E_INVALID_FIELD_VALUE, path, obj)
        if not any(ct.metric == metric for ct in COST_TYPES):
            raise AltoError(E_INVALID_FIELD_VALUE, f"{path}/cost-metric", metric)
        if not any((ct.metric, ct.mode) == (metric, mode) for ct in COST_TYPES):
            raise AltoError(E_INVALID_FIELD_VALUE, f"{path}/cost-mode", mode)
        raise AltoError(E_INVALID_FIELD_VALUE, f"{path}/cost-context/cost-source", source)

    def _cost_types(self, params: Mapping[str, Any], name: str) -> Optional[tuple[CostType, ...]]:
        items = get_field(params, name, "array", name)
        if items is None:
            return None
        if not 1 <= len(items) <= MAX_COST_TYPES:
            raise AltoError(E_INVALID_FIELD_VALUE, name, items)
        return tuple(self._cost_type(item, name, element=True) for item in items)

    def cost_query(self, params: Mapping[str, Any]) -> CostQuery:
        """The cost type(s), testable types and constraints of a request (RFC 7285, 8189)."""
        single = get_field(params, "cost-type", "object", "cost-type")
        multi = self._cost_types(params, "multi-cost-types")
        if single is not None and multi is not None:
            raise AltoError(E_INVALID_FIELD_VALUE, "cost-type", single)
        if single is None and multi is None:
            raise AltoError(E_MISSING_FIELD, "cost-type")
        types = multi if multi is not None else (self._cost_type(single, "cost-type"),)
        tested = self._cost_types(params, "testable-cost-types") or types
        constraints = get_strings(params, "constraints", "constraints")
        alternatives = get_field(params, "or-constraints", "array", "or-constraints")
        if constraints is not None and alternatives is not None:
            raise AltoError(E_INVALID_FIELD_VALUE, "or-constraints", alternatives)
        groups: list[list[str]] = [constraints] if constraints else []
        if alternatives is not None:
            if not alternatives:
                raise AltoError(E_INVALID_FIELD_VALUE, "or-constraints", alternatives)
            for group in alternatives:
                if not isinstance(group, list) or not group or not all(
                        isinstance(item, str) for item in group):
                    raise AltoError(E_INVALID_FIELD_VALUE, "or-constraints", group)
                groups.append(group)
        where = "or-constraints" if alternatives is not None else "constraints"
        any_of = tuple(tuple(Constraint.parse(text, len(tested), where) for text in group)
                       for group in groups)
        return CostQuery(types, multi is not None, tested, any_of)

    def _pid_list(self, obj: Mapping[str, Any], name: str, path: str,
                  required: bool = True) -> list[str]:
        """Requested PIDs: an empty list means all, unknown ones are ignored (RFC 7285)."""
        names = get_strings(obj, name, path, required)
        if not names:
            return [pid.name for pid in self.pids]
        return [n for n in names if n in self._pid_by_name]

    def pid_of(self, net: Optional[ipaddress.IPv4Network]) -> Optional[str]:
        """The PID of an address or prefix by longest-prefix match (RFC 7285 §11.2.2)."""
        if net is None:
            return None
        for prefix, name in self._lookup:
            if net.subnet_of(prefix):
                return name
        return None  # unreachable: default holds 0.0.0.0/0

    def _endpoints(self, values: Sequence[str], path: str) -> dict[str, Optional[str]]:
        """Typed endpoint addresses -> their PIDs (None: not in the map, e.g. IPv6)."""
        result = {}
        for text in values:
            try:
                result[text] = self.pid_of(parse_typed_address(text))
            except ValueError:
                raise AltoError(E_INVALID_FIELD_VALUE, path, text) from None
        return result

    # -- the services ---------------------------------------------------------------------------

    def filtered_network_map(self, params: Mapping[str, Any], _client: Any) -> dict[str, Any]:
        """RFC 7285 §11.3.1: the PIDs asked for, with the address types asked for."""
        names = self._pid_list(params, "pids", "pids")
        types = get_strings(params, "address-types", "address-types") or ["ipv4"]
        full = self._network_map["network-map"]
        data = {name: {t: full[name][t] for t in types if t in full[name]} for name in names}
        return {"meta": {"vtag": self.network_map_vtag}, "network-map": data}

    def filtered_cost_map(self, params: Mapping[str, Any], _client: Any) -> dict[str, Any]:
        """RFC 7285 §11.3.2 with RFC 8189 multi-cost, testable types and or-constraints."""
        query = self.cost_query(params)
        pids = get_field(params, "pids", "object", "pids")
        if pids is None:
            srcs = dsts = [pid.name for pid in self.pids]
        else:
            srcs = self._pid_list(pids, "srcs", "pids/srcs")
            dsts = self._pid_list(pids, "dsts", "pids/dsts")
        return {"meta": {"dependent-vtags": [self.network_map_vtag], **query.meta()},
                "cost-map": self._evaluate(query, srcs, dsts, self._node_of_pid)}

    def endpoint_cost(self, params: Mapping[str, Any], client: Optional[str]) -> dict[str, Any]:
        """RFC 7285 §11.5 (costs between the endpoints' PIDs) with RFC 8189 multi-cost."""
        query = self.cost_query(params)
        endpoints = get_field(params, "endpoints", "object", "endpoints", required=True)
        srcs = get_strings(endpoints, "srcs", "endpoints/srcs") or []
        dsts = get_strings(endpoints, "dsts", "endpoints/dsts") or []
        if not srcs and not dsts:
            raise AltoError(E_INVALID_FIELD_VALUE, "endpoints", endpoints)
        pids = {**self._endpoints(srcs, "endpoints/srcs"),
                **self._endpoints(dsts, "endpoints/dsts")}
        if not srcs or not dsts:  # the client's own address stands for the empty list
            try:
                own = f"ipv{ipaddress.ip_address(client).version}:{client}"
            except ValueError:  # no client address (or not an IP one) to stand in
                raise AltoError(E_MISSING_FIELD, "endpoints/dsts" if srcs
                                else "endpoints/srcs") from None
            pids.update(self._endpoints([own], "endpoints"))
            srcs, dsts = srcs or [own], dsts or [own]
        values = self._evaluate(query, srcs, dsts,
                                lambda e: None if pids[e] is None else self._node_of_pid(pids[e]))
        return {"meta": query.meta(), "endpoint-cost-map": values}

    def endpoint_properties(self, params: Mapping[str, Any], _client: Any) -> dict[str, Any]:
        """RFC 7285 §11.4: the PID of each endpoint (the only endpoint property)."""
        properties = get_strings(params, "properties", "properties", True, True)
        for name in properties:
            if name != PID_PROPERTY:
                raise AltoError(E_INVALID_FIELD_VALUE, "properties", name)
        endpoints = get_strings(params, "endpoints", "endpoints", True, True)
        pids = self._endpoints(endpoints, "endpoints")
        return {"meta": {"dependent-vtags": [self.network_map_vtag]},
                "endpoint-properties": {e: {} if pid is None else {PID_PROPERTY: pid}
                                        for e, pid in pids.items()}}

    def site_properties(self) -> dict[str, dict[str, Any]]:
        """PID name -> its RFC 9240 properties (``default`` has none)."""
        ted = self.ted
        free = dict.fromkeys(ted.node_ids, 0)
        for i, link in enumerate(ted.links):
            if ted.usable_index(i):
                count = ted.free[i].bit_count()
                free[link.a] += count
                free[link.b] += count
        result = {}
        for pid in self.pids:
            if pid.node is None:
                continue
            props: dict[str, Any] = {"priv:cso-site": pid.kind, "priv:cso-node": pid.node,
                                     "priv:cso-domain": ted.domain_of(pid.node)}
            dc = ted.dc_of(pid.node)
            if dc is not None:
                props["priv:cso-dc"] = dc.id
            props["priv:cso-free-wavelengths"] = free[pid.node]
            result[pid.name] = props
        return result

    def property_map(self, _params: Any, _client: Any) -> dict[str, Any]:
        """RFC 9240 property map: every PID's properties and every prefix's PID."""
        data: dict[str, dict[str, Any]] = {
            f"{PID_DOMAIN}:{name}": props for name, props in self.site_properties().items()}
        for net, name in sorted(self._lookup, key=lambda item: item[0]):
            data[f"ipv4:{net}"] = {PID_PROPERTY: name}
        return _versioned("propmap", {"dependent-vtags": [self.network_map_vtag]},
                          "property-map", data)

    def filtered_property_map(self, params: Mapping[str, Any], _client: Any) -> dict[str, Any]:
        """RFC 9240 filtered property map; unknown PIDs are left out."""
        entities = get_strings(params, "entities", "entities", True, True)
        properties = get_strings(params, "properties", "properties", True, True)
        for name in properties:
            if name not in SITE_PROPERTIES and name != PID_PROPERTY:
                raise AltoError(E_INVALID_FIELD_VALUE, "properties", name)
        sites = self.site_properties()
        data: dict[str, dict[str, Any]] = {}
        for entity in entities:
            domain, _sep, ident = entity.partition(":")
            if domain == PID_DOMAIN:
                values = sites.get(ident, {})
            elif domain == "ipv4":
                values = {PID_PROPERTY: self._endpoints([entity], "entities")[entity]}
            else:
                raise AltoError(E_INVALID_FIELD_VALUE, "entities", entity)
            chosen = {name: values[name] for name in properties if name in values}
            if chosen:
                data[entity] = chosen
        return {"meta": {"dependent-vtags": [self.network_map_vtag]}, "property-map": data}


def _versioned(resource_id: str, meta: dict[str, Any], name: str,
               data: dict[str, Any]) -> dict[str, Any]:
    """A GET resource body whose ``meta.vtag`` is the hash of the rest of it."""
    tag = tag_of({"meta": meta, name: data})
    return {"meta": {"vtag": {"resource-id": resource_id, "tag": tag}, **meta}, name: data}
