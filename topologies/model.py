"""Plain, frozen data model of a topology file (docs/topology-format.md).

The loader (`topologies.loader`) turns JSON into these objects after
validation; the TED, the Mininet emulation and the simulator read them and
never the JSON itself.

Port convention shared by the topology file and the emulation: on switch
``s<i>`` port 1 is the user host ``u<i>``, port 2 the DC host ``dc<i>``
(reserved even where there is no DC), and fibres use ports 3, 4, ... in the
order the links are listed in the file, unless a link names its ports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Mapping, Optional

if TYPE_CHECKING:
    from topologies.addressing import AddressPlan

#: Nominal propagation delay in fibre, milliseconds per kilometre (5 µs/km).
DELAY_MS_PER_KM = 0.005
USER_PORT = 1
DC_PORT = 2
FIRST_FIBRE_PORT = 3


@dataclass(frozen=True)
class Server:
    """One physical server of a data centre."""

    id: str
    cpu: int
    memory_gb: float
    disk_gb: float


@dataclass(frozen=True)
class DataCentre:
    """A data centre (or edge cluster) attached to a node."""

    id: str
    node: str
    servers: tuple[Server, ...]
    kind: str = "dc"  # "dc" or "edge"


@dataclass(frozen=True)
class Node:
    """An optical node (an OpenFlow switch in the emulation)."""

    id: str
    name: str
    domain: str
    dpid: int
    lat: Optional[float] = None
    lon: Optional[float] = None
    dc: Optional[DataCentre] = None


@dataclass(frozen=True)
class Link:
    """A bidirectional fibre between nodes ``a`` and ``b``."""

    id: str
    a: str
    b: str
    length_km: float
    wavelengths: int
    capacity_gbps: float
    a_port: int
    b_port: int
    te_weight: Optional[float] = None
    jitter_ms: float = 0.0
    srlg: tuple[str, ...] = ()

    @property
    def delay_ms(self) -> float:
        """Nominal one-way propagation delay."""
        return self.length_km * DELAY_MS_PER_KM

    @property
    def inter_domain(self) -> bool:
        """Always False here; see `Topology.is_inter_domain`."""
        return False

    def other(self, node: str) -> str:
        """The far end of the link seen from ``node``."""
        return self.b if node == self.a else self.a

    def port(self, node: str) -> int:
        """The switch port of ``node`` on this link."""
        return self.a_port if node == self.a else self.b_port


@dataclass(frozen=True)
class Topology:
    """A validated topology: nodes by id, links in file order."""

    name: str
    nodes: dict[str, Node]
    links: tuple[Link, ...]
    source: str = "<memory>"
    description: str = ""
    domains: tuple[str, ...] = field(default=())
    #: Set on a domain sub-topology (`topologies.domain.restrict`): the domain it holds.
    domain: Optional[str] = None
    #: Border node -> its inter-domain fibres (a domain sub-topology only).
    borders: Mapping[str, tuple[Link, ...]] = field(default_factory=dict)
    #: Fibres from this domain to others: recorded, never part of `links`.
    inter_domain_links: tuple[Link, ...] = ()
    #: The full topology a domain sub-topology was cut from (None for a full one).
    whole: Optional["Topology"] = field(default=None, repr=False, compare=False)

    def link(self, link_id: str) -> Link:
        """The link with id ``link_id``."""
        for link in self.links:
            if link.id == link_id:
                return link
        raise KeyError(link_id)

    def link_between(self, a: str, b: str) -> Optional[Link]:
        """The link joining ``a`` and ``b`` in either direction, if any."""
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                return link
        return None

    def is_inter_domain(self, link: Link) -> bool:
        """True when the link joins two domains."""
        return self.nodes[link.a].domain != self.nodes[link.b].domain

    def dc_nodes(self) -> list[str]:
        """Ids of nodes with a data centre, in node order."""
        return [n.id for n in self.nodes.values() if n.dc is not None]

    def by_dpid(self) -> dict[int, Node]:
        """Nodes keyed by OpenFlow datapath id."""
        return {n.dpid: n for n in self.nodes.values()}

    @cached_property
    def addresses(self) -> "AddressPlan":
        """The address plan of this topology's hosts (`topologies.addressing`)."""
        from topologies.addressing import AddressPlan

        return AddressPlan(self)


def natural_key(node_id: str) -> tuple:
    """Sort key putting "2" before "10" and numeric ids before the others."""
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)
