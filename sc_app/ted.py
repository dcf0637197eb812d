"""Traffic Engineering Database (TED / NRDB) of the network stratum.

Structure lives in a networkx ``MultiGraph`` (nodes, fibres keyed by link id)
for views and analyses; the state the PCE reads on every request lives in
plain lists indexed by link number, because attribute look-ups through
networkx cost microseconds each:

- wavelength occupancy: ``free[i]`` is an int bitmap of the wavelengths still
  free on link ``i`` (bit λ for λ in 0..W-1); the data plane carries λ as VLAN
  VID ``VLAN_BASE + λ``; ``owner(link, λ)`` names the holder;
- admin and oper state of links and nodes: a link is *usable* (may carry new
  lightpaths) only when it is admin up, oper up and both its nodes are up (the
  SC can program their switches); it is *intact* (carries the lightpaths it
  has) when it is admin and oper up, whatever its nodes: a switch that lost
  its controller connection for a moment still forwards;
- TE weight: the file's ``te_weight``, or 1.0 per link when unset (so that the
  sum over a path is its hop count, as in the CSO draft's GLB N(p)). The
  *effective* weight, used for GLB and the PCE's ``te`` order, grows with the
  link's load: ``base * (1 + load_weight * used / W)`` (a full link weighs
  twice its base with the default ``load_weight`` 1).

``version`` counts structure/state changes (link or node up/down, TE weight):
caches of candidate paths depend on it. Occupancy changes bump ``seq`` only,
since they never change which routes exist. Not thread-safe: under eventlet
every call runs to completion without yielding, which makes it atomic.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

import networkx as nx

from topologies.model import DataCentre, Link, Topology, natural_key

LOG = logging.getLogger(__name__)

#: VLAN VID of wavelength 0 in the emulated data plane (VID = VLAN_BASE + λ).
VLAN_BASE = 1000
#: Default base TE weight of a link whose file entry has none.
DEFAULT_TE_WEIGHT = 1.0

# Event kinds.
OCCUPIED = "occupied"
FREED = "freed"
LINK_STATE = "link-state"
NODE_STATE = "node-state"
TE_WEIGHT = "te-weight"


class TedError(Exception):
    """A TED operation was refused; nothing was changed."""


class WavelengthConflict(TedError):
    """A wavelength is already held on a link, or is not held by the owner freeing it."""


@dataclass(frozen=True)
class TedEvent:
    """A change of occupancy or state: ``kind``, the link (or node) id and details."""

    kind: str
    link: Optional[str]
    details: dict[str, Any] = field(default_factory=dict)


class TED:
    """Nodes, fibres, wavelength occupancy and TE state of one optical network."""

    def __init__(self, topology: Topology, load_weight: float = 1.0):
        self.topology = topology
        self.load_weight = load_weight
        self.version = 0
        self.seq = 0
        # Nodes are numbered in natural id order so that int tuples compare like id tuples.
        self.node_ids: tuple[str, ...] = tuple(sorted(topology.nodes, key=natural_key))
        self.node_index = {node: i for i, node in enumerate(self.node_ids)}
        self.links: tuple[Link, ...] = topology.links
        self.link_ids: tuple[str, ...] = tuple(link.id for link in self.links)
        self.link_index = {link_id: i for i, link_id in enumerate(self.link_ids)}
        self.ends = [(self.node_index[link.a], self.node_index[link.b]) for link in self.links]
        self.wavelengths = [link.wavelengths for link in self.links]
        self.full = [(1 << w) - 1 for w in self.wavelengths]
        self.free = list(self.full)
        self.base_te = [DEFAULT_TE_WEIGHT if link.te_weight is None else float(link.te_weight)
                        for link in self.links]
        self.admin_up = [True] * len(self.links)
        self.oper_up = [True] * len(self.links)
        self.node_up = [True] * len(self.node_ids)
        #: usage[λ] = number of links where λ is held (for the most-used policy).
        self.usage = [0] * max(self.wavelengths, default=0)
        self._owners: list[dict[int, str]] = [{} for _ in self.links]
        self._held: dict[str, set[tuple[int, int]]] = {}
        self._subscribers: list[Callable[[TedEvent], None]] = []
        self.callback_errors = 0
        self.srlg_links: dict[str, tuple[int, ...]] = {}
        for i, link in enumerate(self.links):
            for group in link.srlg:
                self.srlg_links[group] = self.srlg_links.get(group, ()) + (i,)
        self.dc_nodes: dict[str, DataCentre] = {
            node.id: node.dc for node in topology.nodes.values() if node.dc is not None}
        self.domains: dict[str, tuple[str, ...]] = {}
        for node_id in self.node_ids:
            domain = topology.nodes[node_id].domain
            self.domains[domain] = self.domains.get(domain, ()) + (node_id,)
        self.graph = nx.MultiGraph(name=topology.name)
        for node_id in self.node_ids:
            self.graph.add_node(node_id, node=topology.nodes[node_id])
        for i, link in enumerate(self.links):
            self.graph.add_edge(link.a, link.b, key=link.id, link=link, index=i)

    # -- look-ups -------------------------------------------------------------------------

    def index(self, link_id: str) -> int:
        """The link number of ``link_id``; "b-a" is accepted for a link "a-b"."""
        try:
            return self.link_index[link_id]
        except KeyError:
            a, sep, b = link_id.partition("-")
            reverse = self.link_index.get(f"{b}-{a}") if sep else None
            if reverse is None:
                raise TedError(f"unknown link {link_id!r}") from None
            return reverse

    def link(self, link_id: str) -> Link:
        """The topology link ``link_id``."""
        return self.links[self.index(link_id)]

    def usable_index(self, i: int) -> bool:
        """True when link number ``i`` may carry new lightpaths."""
        a, b = self.ends[i]
        return (self.admin_up[i] and self.oper_up[i]
                and self.node_up[a] and self.node_up[b])

    def usable(self, link_id: str) -> bool:
        """True when the link is admin up, oper up and both its nodes are up."""
        return self.usable_index(self.index(link_id))

    def intact_index(self, i: int) -> bool:
        """True when link number ``i`` carries the lightpaths it has: admin and oper up
        (its nodes' switches may be out of the SC's reach for a while)."""
        return self.admin_up[i] and self.oper_up[i]

    def intact(self, link_id: str) -> bool:
        """`intact_index` by link id."""
        return self.intact_index(self.index(link_id))

    def free_mask(self, link_id: str) -> int:
        """Bitmap of the wavelengths free on the link."""
        return self.free[self.index(link_id)]

    def used(self, link_id: str) -> tuple[int, ...]:
        """The wavelengths held on the link, ascending."""
        return tuple(sorted(self._owners[self.index(link_id)]))

    def owner(self, link_id: str, wavelength: int) -> Optional[str]:
        """Who holds ``wavelength`` on the link, or None."""
        return self._owners[self.index(link_id)].get(wavelength)

    def held(self, owner: str) -> dict[int, tuple[str, ...]]:
        """What ``owner`` holds: wavelength -> link ids (in link order)."""
        result: dict[int, list[str]] = {}
        for i, wavelength in sorted(self._held.get(owner, ())):
            result.setdefault(wavelength, []).append(self.link_ids[i])
        return {w: tuple(ids) for w, ids in sorted(result.items())}

    def te_weight(self, link_id: str) -> float:
        """The base (administrative) TE weight of the link."""
        return self.base_te[self.index(link_id)]

    def effective_te_index(self, i: int) -> float:
        """Load-dependent TE weight of link number ``i``: base * (1 + load_weight * used/W)."""
        width = self.wavelengths[i]
        if not width:
            return self.base_te[i]
        used = width - self.free[i].bit_count()
        return self.base_te[i] * (1.0 + self.load_weight * used / width)

    def effective_te_weight(self, link_id: str) -> float:
        """Load-dependent TE weight of the link (see the module docstring)."""
        return self.effective_te_index(self.index(link_id))

    def dc_of(self, node_id: str) -> Optional[DataCentre]:
        """The data centre attached to the node, if any."""
        return self.dc_nodes.get(node_id)

    def domain_of(self, node_id: str) -> str:
        """The domain of the node."""
        return self.topology.nodes[node_id].domain

    def usable_graph(self) -> nx.MultiGraph:
        """A live read-only view of the graph without unusable nodes and links."""
        return nx.subgraph_view(
            self.graph,
            filter_node=lambda node: self.node_up[self.node_index[node]],
            filter_edge=lambda a, b, key: self.usable_index(self.link_index[key]))

    # -- state ----------------------------------------------------------------------------

    def set_admin(self, link_id: str, up: bool) -> None:
        """Set a link's administrative state (operator OAM)."""
        i = self.index(link_id)
        if self.admin_up[i] != up:
            self.admin_up[i] = up
            self._state_changed(i)

    def set_oper(self, link_id: str, up: bool) -> None:
        """Set a link's operational state (port status, LLDP)."""
        i = self.index(link_id)
        if self.oper_up[i] != up:
            self.oper_up[i] = up
            self._state_changed(i)

    def set_node_up(self, node_id: str, up: bool) -> None:
        """Set a node's state (switch enter/leave)."""
        try:
            n = self.node_index[node_id]
        except KeyError:
            raise TedError(f"unknown node {node_id!r}") from None
        if self.node_up[n] != up:
            self.node_up[n] = up
            self.version += 1
            self._emit(TedEvent(NODE_STATE, None, {"node": node_id, "up": up}))

    def set_te_weight(self, link_id: str, weight: Optional[float]) -> None:
        """Set a link's base TE weight (None restores the default)."""
        i = self.index(link_id)
        if weight is not None and not weight > 0:
            raise TedError(f"TE weight of {link_id} must be > 0, not {weight!r}")
        new = DEFAULT_TE_WEIGHT if weight is None else float(weight)
        if new != self.base_te[i]:
            self.base_te[i] = new
            self.version += 1
            self._emit(TedEvent(TE_WEIGHT, self.link_ids[i], {"te_weight": new}))

    def _state_changed(self, i: int) -> None:
        self.version += 1
        self._emit(TedEvent(LINK_STATE, self.link_ids[i], {
            "admin_up": self.admin_up[i], "oper_up": self.oper_up[i],
            "usable": self.usable_index(i), "intact": self.intact_index(i)}))

    # -- occupancy --------------------------------------------------------------------------

    def occupy(self, link_ids: Iterable[str], wavelength: int, owner: str) -> None:
        """Hold ``wavelength`` on every link for ``owner``, all or nothing.

        Raises WavelengthConflict when any link already has it held (by anyone),
        TedError for an unknown link, a repeated link or a wavelength beyond W.
        Also used to re-occupy known lightpaths when reconciling after a restart.
        """
        link_ids = list(link_ids)
        indices = tuple(self.index(link_id) for link_id in link_ids)
        if len(set(indices)) != len(indices):
            raise TedError(f"a link is listed twice in {link_ids}")
        if not indices:
            raise TedError("no links to occupy")
        self.occupy_indices(indices, wavelength, owner)

    def occupy_indices(self, indices: tuple[int, ...], wavelength: int, owner: str) -> None:
        """`occupy` by link numbers (the PCE's fast path); links must be distinct."""
        if wavelength < 0:
            raise TedError(f"wavelength {wavelength} is negative")
        bit = 1 << wavelength
        free = self.free
        for i in indices:
            if not free[i] & bit:
                if wavelength < 0 or wavelength >= self.wavelengths[i]:
                    raise TedError(f"wavelength {wavelength} is outside "
                                   f"0..{self.wavelengths[i] - 1} on link {self.link_ids[i]}")
                raise WavelengthConflict(
                    f"wavelength {wavelength} on link {self.link_ids[i]} is already held by "
                    f"{self._owners[i][wavelength]!r}")
        # Everything checked: now set all.
        owners = self._owners
        held = self._held.setdefault(owner, set())
        for i in indices:
            free[i] ^= bit
            owners[i][wavelength] = owner
            held.add((i, wavelength))
        self.usage[wavelength] += len(indices)
        self.seq += 1
        if self._subscribers:
            for i in indices:
                self._emit(TedEvent(OCCUPIED, self.link_ids[i],
                                    {"wavelength": wavelength, "owner": owner}))

    def release(self, link_ids: Iterable[str], wavelength: int, owner: str) -> None:
        """Free ``wavelength`` on every link, all or nothing; each must be held by ``owner``."""
        self.release_indices(tuple(self.index(link_id) for link_id in link_ids),
                             wavelength, owner)

    def release_indices(self, indices: tuple[int, ...], wavelength: int, owner: str) -> None:
        """`release` by link numbers."""
        if not indices:
            raise TedError("no links to release")
        owners = self._owners
        for i in indices:
            holder = owners[i].get(wavelength)
            if holder != owner:
                raise WavelengthConflict(
                    f"wavelength {wavelength} on link {self.link_ids[i]} is held by "
                    f"{holder!r}, not {owner!r}")
        if len(set(indices)) != len(indices):
            raise TedError("a link is listed twice")
        held = self._held[owner]
        bit = 1 << wavelength
        for i in indices:
            self.free[i] |= bit
            del owners[i][wavelength]
            held.discard((i, wavelength))
        if not held:
            del self._held[owner]
        self.usage[wavelength] -= len(indices)
        self.seq += 1
        if self._subscribers:
            for i in indices:
                self._emit(TedEvent(FREED, self.link_ids[i],
                                    {"wavelength": wavelength, "owner": owner}))

    def release_owner(self, owner: str) -> int:
        """Free everything ``owner`` holds; returns the number of (link, λ) freed."""
        by_wavelength: dict[int, list[int]] = {}
        for i, wavelength in sorted(self._held.get(owner, ())):
            by_wavelength.setdefault(wavelength, []).append(i)
        for wavelength, indices in by_wavelength.items():
            self.release_indices(tuple(indices), wavelength, owner)
        return sum(len(indices) for indices in by_wavelength.values())

    # -- views and events -------------------------------------------------------------------

    def subscribe(self, callback: Callable[[TedEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on every change; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def _emit(self, event: TedEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a faulty listener must not undo a committed change
                self.callback_errors += 1
                LOG.exception("TED subscriber %r failed on %s", callback, event)

    def link_snapshot(self, i: int) -> dict[str, Any]:
        """JSON-able state of link number ``i``."""
        link = self.links[i]
        return {
            "id": link.id, "a": link.a, "b": link.b,
            "a_port": link.a_port, "b_port": link.b_port,
            "length_km": link.length_km, "delay_ms": link.delay_ms, "jitter_ms": link.jitter_ms,
            "wavelengths": link.wavelengths, "capacity_gbps": link.capacity_gbps,
            "srlg": list(link.srlg), "te_weight": self.base_te[i],
            "effective_te_weight": self.effective_te_index(i),
            "admin_up": self.admin_up[i], "oper_up": self.oper_up[i],
            "usable": self.usable_index(i),
            "free": self.free[i].bit_count(),
            "owners": {str(w): o for w, o in sorted(self._owners[i].items())},
        }

    def snapshot(self) -> dict[str, Any]:
        """JSON-able view of nodes, links and occupancy (for NRAE views and REST)."""
        nodes = []
        for n, node_id in enumerate(self.node_ids):
            node = self.topology.nodes[node_id]
            nodes.append({"id": node_id, "name": node.name, "domain": node.domain,
                          "dpid": node.dpid, "up": self.node_up[n],
                          "dc": node.dc.id if node.dc else None})
        return {"name": self.topology.name, "version": self.version, "seq": self.seq,
                "nodes": nodes,
                "links": [self.link_snapshot(i) for i in range(len(self.links))]}
