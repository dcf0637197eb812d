"""NRAE: network resource abstraction (NRAA) for authorised ACs (CSO draft §3.2, §6.1).

Three views of the TED, none of which reveals who holds a wavelength:

- ``full``: every node and fibre with TE weight, delay and free wavelengths;
- ``virtual-node``: one node per domain, one virtual link per pair of
  adjacent domains (aggregated inter-domain fibres);
- ``dc-mesh``: one virtual link from every node (user site) to every DC site,
  weighted by SA-PCE's current best path (Σ TE weight, hops, delay, free λs).

The ALTO maps are built from the same views.
"""
from __future__ import annotations

from typing import Any, Callable

from sc_app.pce import PCE, NoPath, Result
from sc_app.ted import TED

VIEWS = ("full", "virtual-node", "dc-mesh")


def full_view(ted: TED) -> dict[str, Any]:
    """Nodes and fibres with TE attributes and free wavelengths."""
    snap = ted.snapshot()
    links = []
    for link in snap["links"]:
        link = dict(link)
        del link["owners"]
        links.append(link)
    return {"view": "full", "version": snap["version"], "nodes": snap["nodes"], "links": links}


def virtual_node_view(ted: TED) -> dict[str, Any]:
    """One node per domain; inter-domain fibres aggregated per domain pair."""
    nodes = []
    for domain, members in sorted(ted.domains.items()):
        nodes.append({"id": domain, "nodes": len(members),
                      "dcs": sorted(ted.dc_nodes[n].id for n in members if n in ted.dc_nodes)})
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for i, link in enumerate(ted.links):
        da, db = ted.domain_of(link.a), ted.domain_of(link.b)
        if da == db:
            continue
        key = (min(da, db), max(da, db))
        entry = pairs.setdefault(key, {"a": key[0], "b": key[1], "fibres": 0, "usable": 0,
                                       "free_wavelengths": 0, "min_delay_ms": None})
        entry["fibres"] += 1
        if ted.usable_index(i):
            entry["usable"] += 1
            entry["free_wavelengths"] += ted.free[i].bit_count()
            delay = link.delay_ms
            if entry["min_delay_ms"] is None or delay < entry["min_delay_ms"]:
                entry["min_delay_ms"] = delay
    return {"view": "virtual-node", "version": ted.version, "nodes": nodes,
            "links": [pairs[key] for key in sorted(pairs)]}


def site_path(pce: PCE, src: str, dst: str) -> Result:
    """SA-PCE's best path between two sites now, reserving nothing.

    What dc-mesh links and ALTO costs are made of. Leaves the random-fit generator where it
    was, so reading a view never changes which wavelength the next lightpath gets.
    """
    if pce.policy != "random-fit":
        return pce.compute(src, dst)
    state = pce.rng.getstate()
    try:
        return pce.compute(src, dst)
    finally:
        pce.rng.setstate(state)


def dc_mesh_view(pce: PCE) -> dict[str, Any]:
    """Virtual links from every node to every DC node, from SA-PCE's current best path."""
    ted = pce.ted
    links = []
    for src in ted.node_ids:
        for dst, dc in sorted(ted.dc_nodes.items(), key=lambda item: ted.node_index[item[0]]):
            entry: dict[str, Any] = {"src": src, "dst": dst, "dc": dc.id}
            if src == dst:
                entry.update(feasible=True, hops=0, te_cost=0.0, delay_ms=0.0,
                             free_wavelengths=None)
            else:
                result = site_path(pce, src, dst)
                if isinstance(result, NoPath):
                    entry.update(feasible=False, reason=result.reason)
                else:
                    entry.update(feasible=True, hops=result.hops, te_cost=result.te_cost,
                                 delay_ms=result.delay_ms,
                                 free_wavelengths=len(result.free_wavelengths))
            links.append(entry)
    return {"view": "dc-mesh", "version": ted.version, "seq": ted.seq,
            "dcs": [{"node": n, "dc": dc.id, "servers": len(dc.servers)}
                    for n, dc in ted.dc_nodes.items()],
            "links": links}


def view(name: str, pce: PCE) -> dict[str, Any]:
    """The named view; ValueError for an unknown name."""
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "full": lambda: full_view(pce.ted),
        "virtual-node": lambda: virtual_node_view(pce.ted),
        "dc-mesh": lambda: dc_mesh_view(pce),
    }
    if name not in builders:
        raise ValueError(f"unknown view {name!r}; views: {', '.join(VIEWS)}")
    return builders[name]()
