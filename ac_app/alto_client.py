"""The AC's ALTO client (RFC 7285, RFC 8189): the SC's ALTO costs as the SSE's network view.

`AltoClient` discovers the SC's resources from its Information Resource Directory (IRD), keeps
the IRD and the network map cached and asks, per decision, one filtered cost map from the
user's PID to the candidates' PIDs with the four metrics the strategies read (``routingcost``,
``hopcount``, ``delay-ow``, ``bw-residual``): one RFC 8189 multi-cost request when the IRD
offers it, else one filtered map per metric. Costs are always fresh; what is cached is what
changes rarely, and it is re-fetched only when its version tag changes: every cost answer names
the network map's vtag in ``dependent-vtags``, and a tag other than the cached one makes the
client fetch the network map again (and ask the costs again with the new PIDs). An IRD entry
that is gone (404) makes it read the IRD again.

`AltoNetworkView` is a `ac_app.resources.NetworkView` on those costs. A node's PID is the PID
of its host's address (`topologies.addressing`: user ``10.1.<i>.1``, DC ``10.2.<i>.1``) in the
network map, found by longest-prefix match, so the AC needs no knowledge of the server's PID
names. Per destination: ``hops`` = hopcount, ``te_cost`` = routingcost, ``delay_ms`` =
delay-ow / 1000, ``free_wavelengths`` = bw-residual / the per-wavelength capacity of the
topology's fibres; a pair the map leaves out has no feasible lightpath now (``no-path``).

The SC's ALTO costs are those of the path SA-PCE would choose for an unconstrained lightpath,
which is what ASI evaluation answers for a request without constraints. When a request has
constraints, a destination whose ALTO path meets them gets the same path from ASI (SA-PCE tries
candidates in the same order and takes the first that fits), so its ALTO answer stands; one
whose ALTO path does not meet them, or whose constraints ALTO cannot test (jitter, a bandwidth
above some fibre's capacity), is asked of the ``fallback`` view (ASI evaluation) so that no
destination is refused that ASI would accept.

`AltoEvaluation` is what `ac_app.service` hands to the procedure as its `Network` when
``network_view = alto``: lightpaths are set up and torn down over ASI as always, evaluations
come from ALTO.
"""
from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence
from urllib.parse import urljoin

from ac_app.asi_client import AsiError, AsiNetworkView, AsiUnreachable
from ac_app.resources import NetworkView, PathInfo
from cso_base import http
from cso_base.wire import (BANDWIDTH_EXCEEDED, COST_MAP, COST_MAP_FILTER, DELAY_EXCEEDED, DIRECTORY,
                           ERROR, HOPS_EXCEEDED, JITTER_EXCEEDED, NETWORK_MAP, NO_PATH, NUMERICAL)
from topologies.model import Topology

LOG = logging.getLogger(__name__)

#: The metrics a `PathInfo` is made of, in the order of a multi-cost request.
METRICS = ("routingcost", "hopcount", "delay-ow", "bw-residual")
#: Reason of a destination the cost map leaves out (no feasible lightpath now).

Costs = dict[str, dict[str, Optional[float]]]
Send = Callable[..., http.Answer]


class AltoUnreachable(AsiUnreachable):
    """The ALTO server did not answer (to the procedure: the SC is unreachable)."""


class AltoError(AsiError):
    """The ALTO server answered an error, or something that is not what RFC 7285 promises."""


class StaleNetworkMap(Exception):
    """A cost answer was made on another network map than the one the PIDs came from."""


@dataclass(frozen=True)
class NetworkMap:
    """A network map (RFC 7285 §11.2.1): its vtag and every PID's IPv4 prefixes."""

    tag: str
    pids: Mapping[str, tuple[ipaddress.IPv4Network, ...]]

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "NetworkMap":
        """Parse a network map resource; ValueError/KeyError/TypeError when malformed."""
        tag = body["meta"]["vtag"]["tag"]
        pids = {name: tuple(ipaddress.IPv4Network(p) for p in addresses.get("ipv4", ()))
                for name, addresses in body["network-map"].items()}
        return cls(str(tag), pids)

    def pid_of(self, address: str) -> Optional[str]:
        """The PID holding ``address`` by longest-prefix match (None: in no PID)."""
        ip = ipaddress.IPv4Address(address)
        best: Optional[tuple[int, str]] = None
        for name, prefixes in self.pids.items():
            for net in prefixes:
                if ip in net and (best is None or net.prefixlen > best[0]):
                    best = (net.prefixlen, name)
        return None if best is None else best[1]


class AltoClient:
    """RFC 7285 client of the SC's ALTO server: IRD, network map (cached by vtag) and costs."""

    def __init__(self, directory_url: str, token: str, timeout: float = 10.0,
                 send: Send = http.request):
        self.directory_url = directory_url
        self.token = token
        self.timeout = timeout
        self._send = send
        self._ird: Optional[dict[str, Any]] = None
        self._network_map: Optional[NetworkMap] = None
        #: Resources fetched so far, by IRD resource id (``directory`` for the IRD).
        self.fetches: Counter[str] = Counter()

    # -- HTTP ---------------------------------------------------------------------------------

    def _call(self, method: str, url: str, media_type: str,
              body: Optional[Mapping[str, Any]] = None,
              content_type: Optional[str] = None) -> dict[str, Any]:
        headers = {"Accept": f"{media_type},{ERROR}"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        try:
            answer = self._send(method, url, body=body, token=self.token, headers=headers,
                                timeout=self.timeout)
        except http.Unreachable as exc:
            raise AltoUnreachable(str(exc)) from None
        payload = answer.json
        if answer.status == 200 and isinstance(payload, dict):
            return payload
        meta = payload.get("meta") if isinstance(payload, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("code"), str):
            detail = ", ".join(f"{k}={meta[k]}" for k in ("field", "value", "syntax-error")
                               if k in meta)
            raise AltoError(answer.status, meta["code"], f"{method} {url}: {meta['code']}",
                            detail)
        if isinstance(payload, dict) and isinstance(payload.get("error"), str):
            raise AltoError(answer.status, payload["error"],
                            str(payload.get("reason") or payload["error"]))
        text = answer.body[:200].decode("utf-8", "replace")
        raise AltoError(answer.status, "bad-answer", f"{method} {url}: {text}")

    # -- the directory and the network map ----------------------------------------------------

    def directory(self, refresh: bool = False) -> dict[str, Any]:
        """The IRD, fetched once (again with ``refresh``)."""
        if self._ird is None or refresh:
            ird = self._call("GET", self.directory_url, DIRECTORY)
            if not isinstance(ird.get("resources"), dict):
                raise AltoError(200, "bad-answer", "the IRD has no resources")
            self.fetches["directory"] += 1
            self._ird = ird
            LOG.info("ALTO directory %s: %d resources", self.directory_url,
                     len(ird["resources"]))
        return self._ird

    def _resources(self) -> dict[str, dict[str, Any]]:
        return self.directory()["resources"]

    def _url(self, entry: Mapping[str, Any]) -> str:
        return urljoin(self.directory_url, str(entry["uri"]))

    def _network_map_id(self) -> str:
        ird = self.directory()
        default = ird.get("meta", {}).get("default-alto-network-map")
        resources = ird["resources"]
        if default in resources:
            return str(default)
        for rid, entry in resources.items():
            if entry.get("media-type") == NETWORK_MAP and "accepts" not in entry:
                return rid
        raise AltoError(200, "bad-answer", "the IRD lists no network map")

    def network_map(self, refresh: bool = False) -> NetworkMap:
        """The default network map, fetched once (again with ``refresh``)."""
        if self._network_map is None or refresh:
            rid = self._network_map_id()
            body = self._call("GET", self._url(self._resources()[rid]), NETWORK_MAP)
            try:
                self._network_map = NetworkMap.from_json(body)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise AltoError(200, "bad-answer", f"malformed network map: {exc!r}") from None
            self.fetches[rid] += 1
            LOG.info("ALTO network map %s: %d PIDs, vtag %s", rid,
                     len(self._network_map.pids), self._network_map.tag)
        return self._network_map

    # -- costs --------------------------------------------------------------------------------

    def _cost_type_names(self) -> dict[str, str]:
        """Metric -> the IRD's name of its numerical cost type."""
        names = {}
        for name, ctype in self.directory().get("meta", {}).get("cost-types", {}).items():
            if ctype.get("cost-mode") == NUMERICAL and ctype.get("cost-metric") in METRICS:
                names.setdefault(ctype["cost-metric"], name)
        return names

    def _filtered_cost_map(self) -> tuple[str, int]:
        """The filtered cost map's resource id and how many cost types one request may ask."""
        names = self._cost_type_names()
        missing = [m for m in METRICS if m not in names]
        if missing:
            raise AltoError(200, "bad-answer", f"the IRD offers no numerical {missing}")
        for rid, entry in self._resources().items():
            caps = entry.get("capabilities", {})
            if (entry.get("media-type"), entry.get("accepts")) == (COST_MAP, COST_MAP_FILTER) \
                    and set(names.values()) <= set(caps.get("cost-type-names", ())):
                return rid, int(caps.get("max-cost-types", 1) or 1)
        raise AltoError(200, "bad-answer", "the IRD lists no filtered cost map of every metric")

    def costs(self, src: str, dsts: Sequence[str]) -> Costs:
        """Destination PID -> metric -> numerical cost (None: undefined) from PID ``src``.

        A destination left out of the answer has no cost (no feasible lightpath now). The
        answer's network map must be the cached one; `StaleNetworkMap` when it is not (the
        map has been fetched again: resolve the PIDs anew).
        """
        try:
            rid, max_types = self._filtered_cost_map()
            entry = self._resources()[rid]
        except (AttributeError, TypeError, ValueError) as exc:
            raise AltoError(200, "bad-answer", f"malformed IRD: {exc!r}") from None
        groups = [METRICS] if max_types >= len(METRICS) else [(m,) for m in METRICS]
        result: Costs = {dst: dict.fromkeys(METRICS) for dst in dsts}
        present: set[str] = set()
        for group in groups:
            types = [{"cost-mode": NUMERICAL, "cost-metric": m} for m in group]
            params: dict[str, Any] = {"pids": {"srcs": [src], "dsts": list(dsts)}}
            if len(group) > 1:
                params["multi-cost-types"] = types
            else:
                params["cost-type"] = types[0]
            try:
                body = self._call("POST", self._url(entry), COST_MAP, params, COST_MAP_FILTER)
            except AltoError as exc:
                if exc.status == 404:
                    self._ird = None  # the IRD changed under us: read it again next time
                raise
            self.fetches[rid] += 1
            self._check_dependency(body)
            try:
                row = body["cost-map"].get(src, {})
                for dst, value in row.items():
                    if dst in result:
                        values = value if len(group) > 1 else [value]
                        result[dst].update(zip(group, values))
                        present.add(dst)
            except (AttributeError, KeyError, TypeError) as exc:
                raise AltoError(200, "bad-answer", f"malformed cost map: {exc!r}") from None
        return {dst: costs for dst, costs in result.items() if dst in present}

    def _check_dependency(self, body: Mapping[str, Any]) -> None:
        cached = self._network_map
        for vtag in body.get("meta", {}).get("dependent-vtags", ()):
            if (cached is not None and vtag.get("resource-id") == self._network_map_id()
                    and vtag.get("tag") != cached.tag):
                LOG.info("ALTO network map changed (vtag %s): fetching it again", vtag["tag"])
                self.network_map(refresh=True)
                raise StaleNetworkMap(vtag["tag"])


def _constraint(constraints: Mapping[str, Any], name: str) -> Optional[float]:
    value = constraints.get(name)
    return None if value is None else float(value)


class AltoNetworkView:
    """`NetworkView` on ALTO costs; what ALTO cannot settle goes to ``fallback`` (if any)."""

    def __init__(self, client: AltoClient, topology: Topology,
                 constraints: Optional[Mapping[str, Any]] = None,
                 fallback: Optional[NetworkView] = None):
        self.client = client
        self.topology = topology
        self.constraints = dict(constraints or {})
        self.fallback = fallback
        capacities = [link.capacity_gbps for link in topology.links]
        #: Per-wavelength capacity, Gb/s: exact when every fibre has the same (NSFNET does).
        self.wavelength_gbps = min(capacities) if capacities else 0.0

    def _address(self, node: str, dst: bool) -> Optional[str]:
        plan = self.topology.addresses
        if node not in plan.indices:
            return None  # beyond the address plan: no PID
        return plan.dc_ip(node) if dst and plan.has_dc(node) else plan.user_ip(node)

    def _pids(self, src: str, dsts: Sequence[str]) -> tuple[Optional[str], dict[str, str]]:
        nmap = self.client.network_map()
        addresses = {node: self._address(node, True) for node in dsts}
        source = self._address(src, False)
        src_pid = None if source is None else nmap.pid_of(source)
        return src_pid, {node: pid for node, address in addresses.items()
                         if address is not None and (pid := nmap.pid_of(address)) is not None}

    def _costs(self, src: str,
               dsts: Sequence[str]) -> tuple[Optional[str], dict[str, str], Costs]:
        for attempt in (1, 2):
            src_pid, pids = self._pids(src, dsts)
            if src_pid is None or not pids:
                return src_pid, pids, {}
            try:
                return src_pid, pids, self.client.costs(src_pid, sorted(set(pids.values())))
            except StaleNetworkMap:
                if attempt == 2:
                    raise AltoError(200, "bad-answer", "the network map keeps changing") \
                        from None
        raise AssertionError("unreachable")

    def _path_info(self, costs: Optional[Mapping[str, Optional[float]]], where: str) -> PathInfo:
        if costs is None or costs.get("hopcount") is None or costs.get("routingcost") is None:
            return PathInfo(False, reason=NO_PATH, detail=f"ALTO has no cost {where}")
        bw = costs.get("bw-residual")
        free = (int(round(bw / (self.wavelength_gbps * 1e6)))
                if bw is not None and self.wavelength_gbps > 0 else 0)
        delay = costs.get("delay-ow")
        return PathInfo(True, int(costs["hopcount"]), float(costs["routingcost"]),
                        None if delay is None else float(delay) / 1000.0, free)

    def _unmet(self, info: PathInfo) -> Optional[tuple[str, str]]:
        """The (reason, detail) of the first constraint the ALTO path does not surely meet."""
        c = self.constraints
        max_hops, max_delay = _constraint(c, "max_hops"), _constraint(c, "max_delay_ms")
        bandwidth = _constraint(c, "bandwidth_gbps") or 0.0
        if max_hops is not None and info.hops is not None and info.hops > max_hops:
            return HOPS_EXCEEDED, f"{info.hops} hops > {max_hops:g}"
        if max_delay is not None and (info.delay_ms is None or info.delay_ms > max_delay + 1e-9):
            return DELAY_EXCEEDED, f"{info.delay_ms} ms > {max_delay:g} ms"
        if bandwidth > self.wavelength_gbps:
            return BANDWIDTH_EXCEEDED, f"{bandwidth:g} Gb/s above some fibre's capacity"
        if c.get("max_jitter_ms") is not None:
            return JITTER_EXCEEDED, "ALTO carries no jitter metric"
        return None

    def evaluate(self, src: str, dsts: Sequence[str]) -> dict[str, PathInfo]:
        """A `PathInfo` for every node of ``dsts`` from one ALTO cost request."""
        src_pid, pids, costs = self._costs(src, dsts)
        result: dict[str, PathInfo] = {}
        unsettled: list[str] = []
        for node in dsts:
            pid = pids.get(node)
            info = self._path_info(costs.get(pid) if pid else None,
                                   f"from {src_pid or src} to {pid or node}")
            unmet = self._unmet(info) if info.feasible else None
            if unmet is not None and self.fallback is not None:
                unsettled.append(node)
            elif unmet is not None:
                result[node] = PathInfo(False, reason=unmet[0], detail=unmet[1])
            else:
                result[node] = info
        if unsettled:
            assert self.fallback is not None
            result.update(self.fallback.evaluate(src, unsettled))
        return result


def asi_result(dst: str, info: PathInfo) -> dict[str, Any]:
    """One entry of an ASI evaluate answer's ``results`` (`resources.path_info_from_asi`)."""
    if not info.feasible:
        return {"dst": dst, "feasible": False, "reason": info.reason, "detail": info.detail}
    return {"dst": dst, "feasible": True, "hops": info.hops, "te_cost": info.te_cost,
            "delay_ms": info.delay_ms if info.delay_ms is not None else 0.0,
            "free_wavelengths": info.free_wavelengths or 0}


class AltoEvaluation:
    """The procedure's `Network` with ALTO for evaluation; lightpaths still go over ASI."""

    def __init__(self, asi: Any, alto: AltoClient, topology: Topology):
        self.asi = asi
        self.alto = alto
        self.topology = topology

    def establish(self, src: str, dst: str, service_type: str, label: Optional[str] = None,
                  constraints: Optional[Mapping[str, Any]] = None,
                  dst_node: Optional[str] = None) -> dict[str, Any]:
        """ASI ``establish`` (``dst_node``: where a migrated VM's address is attached)."""
        return self.asi.establish(src, dst, service_type, label=label, constraints=constraints,
                                  dst_node=dst_node)

    def teardown(self, lp_id: str) -> Optional[dict[str, Any]]:
        """ASI ``teardown``."""
        return self.asi.teardown(lp_id)

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """Any other ASI call."""
        return self.asi.call(method, path, body)

    def evaluate(self, src: str, dsts: Sequence[str],
                 constraints: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        """An ASI-shaped evaluation answer made from ALTO costs (ASI for what ALTO cannot)."""
        view = AltoNetworkView(self.alto, self.topology, constraints,
                               fallback=AsiNetworkView(self.asi, constraints))
        infos = view.evaluate(src, dsts)
        return {"src": src, "results": [asi_result(dst, infos[dst]) for dst in dsts]}
