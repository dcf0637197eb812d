"""Lightpaths: the record the SC keeps for each one, and endpoint resolution.

A lightpath joins two endpoints over a route of fibres on one wavelength λ,
emulated in the data plane as VLAN VID ``1000 + λ``. Endpoints are
given as a node id (the whole site: both access ports) or a host IPv4 address,
following the address plan (`topologies.addressing`):

- user host ``u<i>``: ``10.1.<i>.1`` on port 1 of switch ``s<i>``;
- DC host ``dc<i>`` and its VM aliases: ``10.2.<i>.<n>`` on port 2, only where
  node ``i`` has a data centre.

A VM keeps its address when it migrates, so a DC-host address
``10.2.<i>.<n>`` may be attached at another DC node ``j``: `resolve_endpoint`
takes that node as an override. Such an attachment carries the MAC of the host
really on the port (``dc<j>``): the egress switch writes it as the frame's
destination, because senders address ``10.2.<i>.*`` to ``dc<i>``'s MAC (the
SC's ARP proxy answers so) and ``dc<j>`` would drop frames not meant for it.

State machine of a lightpath (`TRANSITIONS`)::

    installing ──▶ up ◀──▶ down
        │           │       │
        ▼           ▼       ▼
      failed ──▶ tearing-down ──▶ (record deleted) ; tearing-down ──▶ failed

``installing``: flows sent, barriers awaited. ``up``: every switch confirmed.
``down``: a fibre or switch on the route failed. ``failed``: the install was
rolled back, or a teardown was not confirmed by every switch (``reason`` says
why); a failed record stays until torn down so the operator can see it.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from cso_base.wire import INVALID_ATTACHMENT, NOT_IN_DOMAIN, PROTECTION_MODES, UNKNOWN_ENDPOINT
from topologies import addressing
from topologies.addressing import DC, DC_NET, USER, USER_NET, AddressError, parse_host
from topologies.domain import foreign
from topologies.model import DC_PORT, USER_PORT, Topology

#: VLAN VID of wavelength 0; wavelength λ is VID ``VID_BASE + λ``.
VID_BASE = 1000
#: Highest wavelength index a 12-bit VID can carry (VID 4095 is reserved).
MAX_WAVELENGTH = 4094 - VID_BASE

#: Lightpath cookies carry this tag in their top 16 bits ("LP"), so the SC can
#: tell its lightpath entries from anything else when it reconciles a switch.
#: The tag keeps cookies below 2**63: they fit SQLite's signed INTEGER.
LIGHTPATH_COOKIE_TAG = 0x4C50 << 48
LIGHTPATH_COOKIE_TAG_MASK = 0xFFFF << 48
_COOKIE_SERIAL_MASK = (1 << 48) - 1

INSTALLING = "installing"
UP = "up"
DOWN = "down"
TEARING_DOWN = "tearing-down"
FAILED = "failed"
TRANSITIONS: dict[str, frozenset[str]] = {
    INSTALLING: frozenset({UP, FAILED}),
    UP: frozenset({DOWN, TEARING_DOWN}),
    DOWN: frozenset({UP, TEARING_DOWN}),
    FAILED: frozenset({TEARING_DOWN}),
    TEARING_DOWN: frozenset({FAILED}),
}


class EndpointError(ValueError):
    """An endpoint that cannot be resolved; ``code`` is machine-readable."""

    def __init__(self, endpoint: str, reason: str, code: str = UNKNOWN_ENDPOINT):
        super().__init__(f"{endpoint!r}: {reason}")
        self.endpoint, self.reason, self.code = endpoint, reason, code


@dataclass(frozen=True)
class Attachment:
    """An access port of a node and the IPv4 prefix reached through it.

    ``mac``: the destination MAC the egress entry writes, set only when the
    prefix's addresses are attached away from their home node (a migrated VM).
    """

    port: int
    net: ipaddress.IPv4Network
    mac: Optional[str] = None


@dataclass(frozen=True)
class Endpoint:
    """A resolved endpoint: the node and the (port, prefix) pairs it covers."""

    node: str
    attachments: tuple[Attachment, ...]

    @property
    def ports(self) -> tuple[int, ...]:
        """Access ports, in the order of `attachments`."""
        return tuple(a.port for a in self.attachments)

    @property
    def nets(self) -> tuple[ipaddress.IPv4Network, ...]:
        """Prefixes, in the order of `attachments`."""
        return tuple(a.net for a in self.attachments)

    def to_json(self) -> dict[str, Any]:
        """JSON form (also what the DBM stores)."""
        return {"node": self.node, "attachments": [
            {"port": a.port, "net": str(a.net), **({"mac": a.mac} if a.mac else {})}
            for a in self.attachments]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Endpoint":
        """Inverse of `to_json`."""
        return cls(str(data["node"]), tuple(
            Attachment(int(a["port"]), ipaddress.IPv4Network(a["net"]), a.get("mac"))
            for a in data["attachments"]))


def _resolve_address(topology: Topology, text: str) -> Endpoint:
    try:
        host = topology.addresses.locate(text)
    except AddressError as exc:
        raise EndpointError(text, str(exc)) from None
    port = USER_PORT if host.kind == USER else DC_PORT
    return Endpoint(host.node, (Attachment(port, ipaddress.IPv4Network(f"{text}/32")),))


def _moved(topology: Topology, home: Endpoint, text: str, node: str) -> Endpoint:
    """``home`` (a DC-host address at its own node) attached at DC node ``node`` instead."""
    (attachment,) = home.attachments
    if attachment.port != DC_PORT:
        raise EndpointError(text, "only a DC host address (10.2.i.x) can be attached at "
                            "another node", INVALID_ATTACHMENT)
    _check_domain(topology, node)
    if node not in topology.nodes:
        raise EndpointError(text, f"no node {node!r} in topology {topology.name}",
                            INVALID_ATTACHMENT)
    if topology.nodes[node].dc is None:
        raise EndpointError(text, f"node {node} has no data centre", INVALID_ATTACHMENT)
    if node == home.node:
        return home
    mac = access_mac(topology, node, DC_PORT)
    return Endpoint(node, (dataclasses.replace(attachment, mac=mac),))


def _check_domain(topology: Topology, text: str) -> None:
    """Refuse a node or host of another domain (an SC that owns one domain)."""
    why = foreign(topology, text)
    if why is not None:
        raise EndpointError(text, why, NOT_IN_DOMAIN)


def resolve_endpoint(topology: Topology, endpoint: str, node: Optional[str] = None) -> Endpoint:
    """A node id or host IPv4 address -> its `Endpoint`; raises `EndpointError` otherwise.

    ``node``: where a DC-host address (``10.2.i.x``) is attached now, when not at its home
    node ``i`` (a migrated VM); it must be a node with a data centre.
    """
    text = str(endpoint).strip()
    _check_domain(topology, text)
    if node is not None:
        home = resolve_endpoint(topology, text)
        if text in topology.nodes:
            raise EndpointError(text, "a node endpoint cannot be attached elsewhere",
                                INVALID_ATTACHMENT)
        return _moved(topology, home, text, str(node))
    if text in topology.nodes:
        plan = topology.addresses
        try:
            attachments = [Attachment(USER_PORT, plan.site(text, USER))]
            if plan.has_dc(text):
                attachments.append(Attachment(DC_PORT, plan.site(text, DC)))
        except AddressError as exc:
            raise EndpointError(text, str(exc)) from None
        return Endpoint(text, tuple(attachments))
    try:
        address = str(ipaddress.IPv4Address(text))
    except ValueError:
        raise EndpointError(text, f"neither a node of {topology.name} nor an IPv4 address") \
            from None
    return _resolve_address(topology, address)


def host_mac(ip: str, topology: Optional[Topology] = None) -> Optional[str]:
    """MAC of the emulated host owning ``ip`` (``u<i>``: 02:01:.., ``dc<i>``: 02:02:..), or None.

    Only a user host (``10.1.<i>.1``) or a DC host or VM (``10.2.<i>.<n>``; VMs share their
    DC host's MAC) has one. With ``topology`` the host must also exist there (node ``i``, and
    its DC for 10.2.i.x), which is what the SC's ARP proxy needs: it answers only for hosts
    that are really attached.
    """
    try:
        kind, index = parse_host(ip)
        if kind == USER and ipaddress.IPv4Address(ip).packed[3] != 1:
            return None
        if topology is None:
            return addressing.host_mac(USER_NET if kind == USER else DC_NET, index)
        host = topology.addresses.locate(ip)
        return topology.addresses.mac(host.node, host.kind)
    except AddressError:
        return None


def access_mac(topology: Topology, node: str, port: int) -> str:
    """MAC of the host on access ``port`` of ``node``: ``u<i>`` (user port) or ``dc<i>``."""
    try:
        return topology.addresses.mac(node, USER if port == USER_PORT else DC)
    except AddressError as exc:
        raise EndpointError(node, f"no host on port {port} of node {node}: {exc}",
                            INVALID_ATTACHMENT) from None


def lightpath_cookie(serial: int) -> int:
    """The OpenFlow cookie of the lightpath with serial number ``serial`` (1, 2, ...)."""
    if not 0 < serial <= _COOKIE_SERIAL_MASK:
        raise ValueError(f"lightpath serial {serial} out of range")
    return LIGHTPATH_COOKIE_TAG | serial


@dataclass(frozen=True)
class Protection:
    """A protected lightpath's backup: a disjoint route with its own wavelength.

    The working route stays in `Lightpath.route`; the ingress switches reach both
    through a fast-failover group (see `sc_app.flows.protected_lightpath_flows`).
    """

    mode: str
    route: tuple[str, ...]
    links: tuple[str, ...]
    wavelength: int

    def __post_init__(self) -> None:
        if self.mode not in PROTECTION_MODES[1:]:
            raise ValueError(f"unknown protection mode {self.mode!r}")
        if len(self.route) < 2 or len(self.links) != len(self.route) - 1:
            raise ValueError(f"protection route {self.route} does not match links {self.links}")
        if not 0 <= self.wavelength <= MAX_WAVELENGTH:
            raise ValueError(f"protection wavelength {self.wavelength} not in 0..{MAX_WAVELENGTH}")

    @property
    def vlan_vid(self) -> int:
        """The VLAN VID standing for the protection wavelength."""
        return VID_BASE + self.wavelength

    def to_json(self) -> dict[str, Any]:
        """JSON form (REST and DBM)."""
        return {"mode": self.mode, "route": list(self.route), "links": list(self.links),
                "hops": len(self.links), "wavelength": self.wavelength,
                "vlan_vid": self.vlan_vid}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Protection":
        """Inverse of `to_json`."""
        return cls(str(data["mode"]), tuple(data["route"]), tuple(data["links"]),
                   int(data["wavelength"]))


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Lightpath:
    """One lightpath as the SC records it (immutable: changes make a new record)."""

    id: str
    owner: str
    service_type: str
    src: str
    dst: str
    src_endpoint: Endpoint
    dst_endpoint: Endpoint
    route: tuple[str, ...]
    links: tuple[str, ...]
    #: None for a local connection (both endpoints at one node: no fibre, no wavelength).
    wavelength: Optional[int]
    cookie: int
    state: str = INSTALLING
    # Excluded from the hash: a dict is not hashable, and the id already is.
    constraints: dict[str, Any] = field(default_factory=dict, hash=False)
    created_at: float = field(default_factory=time.time)
    updated_at: float = 0.0
    reason: Optional[str] = None
    #: The disjoint backup of a protected lightpath (None: unprotected).
    protection: Optional[Protection] = None

    def __post_init__(self) -> None:
        if self.state not in TRANSITIONS:
            raise ValueError(f"unknown lightpath state {self.state!r}")
        if not self.route:
            raise ValueError(f"{self.id}: empty route")
        if len(self.links) != len(self.route) - 1:
            raise ValueError(f"{self.id}: {len(self.route)} nodes need {len(self.route) - 1} "
                             f"links, got {len(self.links)}")
        if (self.wavelength is None) != (len(self.route) == 1):
            raise ValueError(f"{self.id}: a wavelength is needed exactly when the route has fibres")
        if self.wavelength is not None and not 0 <= self.wavelength <= MAX_WAVELENGTH:
            raise ValueError(f"{self.id}: wavelength {self.wavelength} not in 0..{MAX_WAVELENGTH}")
        if self.src_endpoint.node != self.route[0] or self.dst_endpoint.node != self.route[-1]:
            raise ValueError(f"{self.id}: route {self.route} does not join the endpoints")
        if self.protection is not None and (
                (self.protection.route[0], self.protection.route[-1])
                != (self.route[0], self.route[-1])):
            raise ValueError(f"{self.id}: protection route {self.protection.route} does not "
                             "join the endpoints")
        if not self.updated_at:
            object.__setattr__(self, "updated_at", self.created_at)

    @property
    def vlan_vid(self) -> Optional[int]:
        """The VLAN VID that stands for this lightpath's wavelength (None when local)."""
        return None if self.wavelength is None else VID_BASE + self.wavelength

    @property
    def hops(self) -> int:
        """Number of fibres crossed."""
        return len(self.links)

    def with_state(self, state: str, reason: Optional[str] = None,
                   now: Optional[float] = None) -> "Lightpath":
        """A copy in ``state``; raises ValueError on a transition `TRANSITIONS` forbids."""
        if state not in TRANSITIONS.get(self.state, ()):
            raise ValueError(f"{self.id}: no transition {self.state} -> {state}")
        return dataclasses.replace(self, state=state, reason=reason,
                                   updated_at=time.time() if now is None else now)

    def to_json(self) -> dict[str, Any]:
        """The REST representation (ASI/SMI)."""
        return {
            "id": self.id, "owner": self.owner, "service_type": self.service_type,
            "src": self.src, "dst": self.dst,
            "src_endpoint": self.src_endpoint.to_json(),
            "dst_endpoint": self.dst_endpoint.to_json(),
            "route": list(self.route), "links": list(self.links), "hops": self.hops,
            "wavelength": self.wavelength, "vlan_vid": self.vlan_vid,
            # Hex: a 64-bit cookie does not survive JSON numbers in JavaScript.
            "cookie": f"{self.cookie:#018x}",
            "state": self.state, "constraints": dict(self.constraints),
            "created": _iso(self.created_at), "updated": _iso(self.updated_at),
            "reason": self.reason,
            "protection": None if self.protection is None else self.protection.to_json(),
        }
