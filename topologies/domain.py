"""One domain of a multi-domain topology, as a topology of its own (docs/multi-domain.md).

An SC that owns one domain (``[sc] domain``) works on `restrict`'s result: a `Topology`
holding the domain's nodes and the fibres between them, so its TED, PCE, PA and SCI need no
change to stay inside the domain. What lies beyond is recorded on it: the border nodes with
their inter-domain fibres, and the full topology (`Topology.whole`) that keeps the address
plan the same in every domain and says where a foreign node or host lives (`domain_of`).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from topologies.addressing import AddressError, parse_host
from topologies.model import Link, Topology


class DomainError(ValueError):
    """A domain that the topology does not define."""


def restrict(topology: Topology, domain: str) -> Topology:
    """The sub-topology of ``domain``: its nodes, its intra-domain fibres, its borders."""
    if domain not in topology.domains:
        raise DomainError(f"no domain {domain!r} in topology {topology.name} "
                          f"(its domains: {', '.join(topology.domains)})")
    nodes = {nid: node for nid, node in topology.nodes.items() if node.domain == domain}
    inside = tuple(link for link in topology.links if link.a in nodes and link.b in nodes)
    crossing = tuple(link for link in topology.links if (link.a in nodes) != (link.b in nodes))
    borders: dict[str, tuple[Link, ...]] = {}
    for link in crossing:
        node = link.a if link.a in nodes else link.b
        borders[node] = borders.get(node, ()) + (link,)
    return dataclasses.replace(topology, nodes=nodes, links=inside, domains=(domain,),
                               domain=domain, borders=borders, inter_domain_links=crossing,
                               whole=topology)


def domain_of(topology: Topology, endpoint: str) -> Optional[str]:
    """The domain of the node an endpoint (node id or host address) names in the full
    topology ``topology`` belongs to (or was cut from); None when it names no node."""
    whole = topology.whole or topology
    node = endpoint if endpoint in whole.nodes else None
    if node is None:
        try:
            node = whole.addresses.node_at(parse_host(endpoint)[1])
        except AddressError:
            return None
    return None if node is None else whole.nodes[node].domain


def foreign(topology: Topology, endpoint: str) -> Optional[str]:
    """Why ``endpoint`` is outside the domain sub-topology ``topology``, or None when it is
    not (inside it, not a node at all, or ``topology`` is not a domain sub-topology)."""
    if topology.domain is None:
        return None
    other = domain_of(topology, endpoint)
    if other is None or other == topology.domain:
        return None
    return f"{endpoint} is in domain {other}; this SC serves domain {topology.domain}"
