"""The address plan: the IPv4 addresses and MACs of every node's hosts, defined once.

Every part that names a host by address reads this module: the emulation builds hosts
with these addresses, the SC resolves ASI endpoints and answers ARP with them, its ALTO
server groups them into PIDs, the AC finds a user's node from its address, and a DC
agent takes its data address from it.

Each node has a site *index* ``i``: its id when every id of the topology is a decimal
number (NSFNET's ``"0"``..``"13"``), otherwise its position in the file. The index is one
octet of an address, so nodes with an index above `MAX_INDEX` have no hosts (a large
generated topology is covered up to that node; the emulation refuses it). With ``HH:LL``
the index as two hex octets:

- user host ``u<i>``: ``10.1.<i>.1``, MAC ``02:01:00:00:HH:LL``, the user sites ``10.1.<i>.0/24``;
- DC host ``dc<i>`` at a DC node: ``10.2.<i>.1``, MAC ``02:02:00:00:HH:LL``; its VMs are the
  aliases ``10.2.<i>.<n>`` and share that MAC;
- the node's own infrastructure range ``10.0.<i>.0/24`` (an ALTO PID, no host);
- management address of ``dc<i>``: ``10.255.<(i+1)>>8>.<(i+1)&255>`` on the management network.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from topologies.model import Topology

NODE_NET, USER_NET, DC_NET = 0, 1, 2
#: The indices an address octet can hold.
MAX_INDEX = 255
#: Every user host address (10.1.<i>.<n>) and every DC host or VM address (10.2.<i>.<n>).
USER_PREFIX = ipaddress.IPv4Network("10.1.0.0/16")
DC_PREFIX = ipaddress.IPv4Network("10.2.0.0/16")
#: Prefix length of the emulated hosts' data interfaces.
HOST_PREFIX_LEN = 8
#: Kinds of site: a user host, a DC host (and its VMs), the node's own range (no host).
USER, DC, NODE = "user", "dc", "node"
_KIND_NET = {USER: USER_NET, DC: DC_NET, NODE: NODE_NET}


class AddressError(ValueError):
    """An address or node outside the address plan; the message says why."""


def host_ip(net: int, index: int) -> str:
    """Address of the user (net 1) or DC (net 2) host of the node of index ``index``."""
    return f"10.{net}.{index}.1"


def site_net(net: int, index: int) -> ipaddress.IPv4Network:
    """The /24 of the user (1), DC (2) or node (0) site of the node of index ``index``."""
    return ipaddress.IPv4Network(f"10.{net}.{index}.0/24")


def host_mac(net: int, index: int) -> str:
    """Locally administered MAC of the user (net 1) or DC (net 2) host of index ``index``."""
    return f"02:{net:02x}:00:00:{index >> 8:02x}:{index & 0xff:02x}"


def mgmt_ip(index: int) -> str:
    """Management address of the DC host of index ``index``: 10.255.0.<i+1> (i < 255)."""
    return f"10.255.{(index + 1) >> 8}.{(index + 1) & 0xff}"


def parse_host(address: str | ipaddress.IPv4Address) -> tuple[str, int]:
    """The kind of host (`USER` or `DC`) and the site index of a host address, whatever the
    topology; `AddressError` when it is not one (outside 10.1/16 and 10.2/16, .0 or .255)."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise AddressError(f"{address!r} is not an IPv4 address") from None
    if ip in USER_PREFIX:
        kind = USER
    elif ip in DC_PREFIX:
        kind = DC
    else:
        raise AddressError(f"{ip} is not a user (10.1.i.x) or DC (10.2.i.x) host address")
    if ip.packed[3] in (0, 255):
        raise AddressError(f"{ip} is a network or broadcast address, not a host")
    return kind, ip.packed[2]


@dataclass(frozen=True)
class Host:
    """Where an address lives: its node, the kind of host (`USER` or `DC`) and the node's index."""

    node: str
    kind: str
    index: int


class AddressPlan:
    """Node ids and site indices of one topology, and the addresses that follow from them."""

    def __init__(self, topology: "Topology"):
        self.topology = topology
        # A domain sub-topology keeps the indices its nodes have in the full topology, so
        # every SC of a multi-domain network agrees on every address.
        ids = list((topology.whole or topology).nodes)
        if all(re.fullmatch(r"\d+", node) for node in ids):
            indices = {node: int(node) for node in ids}
        else:
            indices = {node: position for position, node in enumerate(ids)}
        indices = {node: i for node, i in indices.items() if node in topology.nodes}
        #: Node id -> index, for the nodes the plan covers (index <= MAX_INDEX).
        self.indices = {node: i for node, i in indices.items() if i <= MAX_INDEX}
        #: Nodes left without hosts: their index does not fit an octet.
        self.uncovered = tuple(node for node, i in indices.items() if i > MAX_INDEX)
        self._nodes = {i: node for node, i in self.indices.items()}

    def index(self, node: str) -> int:
        """The site index of ``node``; `AddressError` when it has none."""
        try:
            return self.indices[node]
        except KeyError:
            why = ("is not a node of" if node not in self.topology.nodes
                   else f"has an index above {MAX_INDEX} in")
            raise AddressError(f"node {node!r} {why} {self.topology.name}'s address plan") \
                from None

    def node_at(self, index: int) -> Optional[str]:
        """The node of site index ``index``, or None."""
        return self._nodes.get(index)

    def has_dc(self, node: str) -> bool:
        """True when ``node`` has a data centre (and so a DC host)."""
        return self.topology.nodes[node].dc is not None

    def user_ip(self, node: str) -> str:
        """Address of the user host ``u<i>`` of ``node``."""
        return host_ip(USER_NET, self.index(node))

    def dc_ip(self, node: str) -> str:
        """Address of the DC host ``dc<i>`` of ``node`` (which must have a DC)."""
        if not self.has_dc(node):
            raise AddressError(f"node {node!r} of {self.topology.name} has no data centre")
        return host_ip(DC_NET, self.index(node))

    def site(self, node: str, kind: str) -> ipaddress.IPv4Network:
        """The /24 of the user (`USER`), DC (`DC`) or own (`NODE`) site of ``node``."""
        return site_net(_KIND_NET[kind], self.index(node))

    def locate(self, address: str | ipaddress.IPv4Address) -> Host:
        """The node and kind of host an address belongs to; `AddressError` when none does.

        A user address is any ``10.1.<i>.<n>``, a DC address any ``10.2.<i>.<n>`` (the DC
        host and its VMs), n not 0 or 255, at a node of this topology (with a DC for 10.2).
        """
        kind, index = parse_host(address)
        node = self._nodes.get(index)
        if node is None:
            raise AddressError(f"{address}: no node of index {index} in {self.topology.name}")
        if kind == DC and not self.has_dc(node):
            raise AddressError(f"{address}: node {node} has no data centre")
        return Host(node, kind, index)

    def mac(self, node: str, kind: str) -> str:
        """MAC of the `USER` or `DC` host of ``node``."""
        if kind == DC and not self.has_dc(node):
            raise AddressError(f"node {node!r} of {self.topology.name} has no data centre")
        return host_mac(_KIND_NET[kind], self.index(node))
