"""Load topology files into `topologies.model` objects.

PROVISIONAL minimal loader (no validation yet): the topology helper replaces it
with the validating loader. Keep the public names: `load`, `resolve`,
`TopologyError`, `from_dict`.
"""
from __future__ import annotations

import json
import os
from typing import Any

from topologies.model import (DataCentre, FIRST_FIBRE_PORT, Link, Node, Server,
                              Topology)

TOPOLOGY_DIR = os.path.dirname(os.path.abspath(__file__))


class TopologyError(ValueError):
    """A topology file is invalid: names the file, the JSON path and the reason."""

    def __init__(self, source: str, path: str, reason: str):
        super().__init__(f"{source}: {path}: {reason}")
        self.source, self.path, self.reason = source, path, reason


def resolve(name_or_path: str) -> str:
    """A topology name (``nsfnet``) or a file path -> the file path."""
    if os.path.exists(name_or_path):
        return name_or_path
    candidate = os.path.join(TOPOLOGY_DIR, name_or_path + ".json")
    if os.path.exists(candidate):
        return candidate
    raise TopologyError(name_or_path, "$", "no such topology file or name")


def load(name_or_path: str) -> Topology:
    """Read and validate a topology file (or a name under topologies/)."""
    path = resolve(name_or_path)
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return from_dict(data, source=path)


def from_dict(data: dict[str, Any], source: str = "<memory>") -> Topology:
    """Build a Topology from parsed JSON."""
    defaults = data.get("defaults", {})
    nodes = {}
    for i, raw in enumerate(data["nodes"]):
        dc = None
        if "dc" in raw:
            dc = DataCentre(raw["dc"]["id"], raw["id"], tuple(
                Server(s["id"], s["cpu"], s["memory_gb"], s["disk_gb"])
                for s in raw["dc"]["servers"]), raw["dc"].get("kind", "dc"))
        nodes[raw["id"]] = Node(raw["id"], raw.get("name", raw["id"]),
                                raw.get("domain", "default"),
                                raw.get("dpid", int(raw["id"]) + 1 if raw["id"].isdigit() else i + 1),
                                raw.get("lat"), raw.get("lon"), dc)
    next_port = {n: FIRST_FIBRE_PORT for n in nodes}
    links = []
    for raw in data["links"]:
        a, b = raw["a"], raw["b"]
        ports = raw.get("ports", {})
        a_port = ports.get(a, next_port[a])
        b_port = ports.get(b, next_port[b])
        next_port[a] = max(next_port[a], a_port + 1)
        next_port[b] = max(next_port[b], b_port + 1)
        links.append(Link(raw.get("id", f"{a}-{b}"), a, b, float(raw["length_km"]),
                          int(raw.get("wavelengths", defaults.get("wavelengths", 40))),
                          float(raw.get("capacity_gbps", defaults.get("capacity_gbps", 10))),
                          a_port, b_port, raw.get("te_weight"),
                          float(raw.get("jitter_ms", 0.0)), tuple(raw.get("srlg", ()))))
    domains = tuple(sorted({n.domain for n in nodes.values()}))
    return Topology(data.get("name", os.path.basename(source)), nodes, tuple(links),
                    source, data.get("description", ""), domains)
