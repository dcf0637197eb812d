"""Load and validate topology files into `topologies.model` objects (docs/topology-format.md).

`topologies.schema` checks the fields of each JSON object; this module checks
what spans objects: unique ids and dpids, link ends, duplicate links and ports.
Whatever the input, the only exception raised is `TopologyError`, which names
the file, the JSON path and the reason.
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

from topologies.model import (DataCentre, FIRST_FIBRE_PORT, Link, Node, Server,
                              Topology)
from topologies.schema import (JSONObject, MAX_DPID, MAX_PORT, TopologyError, check,
                               key_path, quote)

__all__ = ["TOPOLOGY_DIR", "TopologyError", "dumps", "from_dict", "load", "loads", "names",
           "resolve"]

TOPOLOGY_DIR = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
    """Names of the topologies shipped under topologies/."""
    return sorted(f[:-len(".json")] for f in os.listdir(TOPOLOGY_DIR) if f.endswith(".json"))


def resolve(name_or_path: str) -> str:
    """A topology name (``nsfnet``) or a file path -> the file path."""
    path = os.fspath(name_or_path)
    if os.path.isfile(path):
        return path
    if path and os.path.basename(path) == path:
        for candidate in (path + ".json", path):
            shipped = os.path.join(TOPOLOGY_DIR, candidate)
            if os.path.isfile(shipped):
                return shipped
    raise TopologyError(path, "$", "no such topology file or name "
                        f"(shipped: {', '.join(names())})")


def load(name_or_path: str) -> Topology:
    """Read and validate a topology file (or a name under topologies/)."""
    path = resolve(name_or_path)
    try:
        # utf-8-sig: editors on some systems save JSON with a byte-order mark.
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise TopologyError(path, "$", f"cannot read the file: {err}") from None
    return loads(text, source=path)


def loads(text: str, source: str = "<string>") -> Topology:
    """Parse and validate the JSON text of a topology."""
    try:
        data = json.loads(text, object_pairs_hook=JSONObject.from_pairs)
    except json.JSONDecodeError as err:
        raise TopologyError(source, "$", f"invalid JSON at line {err.lineno}, column "
                            f"{err.colno}: {err.msg}") from None
    except (ValueError, TypeError, RecursionError) as err:
        # e.g. integers longer than Python's digit limit, or absurdly deep nesting
        raise TopologyError(source, "$", f"invalid JSON: {err}") from None
    return from_dict(data, source=source)


def from_dict(data: Any, source: str = "<memory>") -> Topology:
    """Validate parsed JSON (or an equivalent dict) and build a Topology."""
    top = check(data, "topology", "$", source)
    nodes = _nodes(top["nodes"], source)
    links = _links(top["links"], nodes, top["defaults"], source)
    name = top["name"]
    if name is None:
        name = "unnamed" if source.startswith("<") else \
            os.path.splitext(os.path.basename(source))[0]
    domains = tuple(sorted({n.domain for n in nodes.values()}))
    return Topology(name, nodes, links, source, top["description"], domains)


def _claim(seen: dict[Any, str], key: Any, path: str, what: str, source: str,
           owner: Optional[str] = None) -> None:
    """Record that `owner` (default `path`) uses `key`; an error if another already does."""
    if key in seen:
        raise TopologyError(source, path, f"duplicate {what}: already at {seen[key]}")
    seen[key] = owner or path


def _default_dpid(node_id: str, position: int) -> int:
    # isascii: str.isdigit() also accepts digits such as "²" that int() rejects.
    if node_id.isascii() and node_id.isdigit():
        return int(node_id) + 1
    return position + 1


def _nodes(raw_nodes: list[dict[str, Any]], source: str) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    ids: dict[Any, str] = {}
    dpids: dict[Any, str] = {}
    dcs: dict[Any, str] = {}
    servers: dict[Any, str] = {}
    for i, raw in enumerate(raw_nodes):
        path = f"$.nodes[{i}]"
        node_id = raw["id"]
        _claim(ids, node_id, f"{path}.id", f"node id {quote(node_id)}", source)
        dpid = raw["dpid"]
        if dpid is None:
            dpid = _default_dpid(node_id, i)
            if dpid > MAX_DPID:
                raise TopologyError(source, f"{path}.dpid", f"the default dpid (id+1) is "
                                    f"above {MAX_DPID}: give a dpid")
        _claim(dpids, dpid, f"{path}.dpid", f"dpid {dpid}", source)
        if (raw["lat"] is None) != (raw["lon"] is None):
            missing = "lat" if raw["lat"] is None else "lon"
            raise TopologyError(source, f"{path}.{missing}", "lat and lon go together: "
                                "give both or neither")
        dc = None
        if raw["dc"] is not None:
            dc = _data_centre(raw["dc"], node_id, f"{path}.dc", dcs, servers, source)
        name = node_id if raw["name"] is None else raw["name"]
        nodes[node_id] = Node(node_id, name, raw["domain"], dpid, raw["lat"], raw["lon"], dc)
    return nodes


def _data_centre(raw: dict[str, Any], node_id: str, path: str, dcs: dict[Any, str],
                 servers: dict[Any, str], source: str) -> DataCentre:
    dc_id = raw["id"] or f"dc{node_id}"
    _claim(dcs, dc_id, f"{path}.id", f"data centre id {quote(dc_id)}", source)
    members = []
    for j, server in enumerate(raw["servers"]):
        where = f"{path}.servers[{j}].id"
        _claim(servers, server["id"], where, f"server id {quote(server['id'])}", source)
        members.append(Server(server["id"], server["cpu"], server["memory_gb"],
                              server["disk_gb"]))
    return DataCentre(dc_id, node_id, tuple(members), raw["kind"])


def _links(raw_links: list[dict[str, Any]], nodes: dict[str, Node],
           defaults: dict[str, Any], source: str) -> tuple[Link, ...]:
    ids: dict[Any, str] = {}
    pairs: dict[Any, str] = {}
    ports: dict[Any, str] = {}
    next_port = {node: FIRST_FIBRE_PORT for node in nodes}
    links = []
    for i, raw in enumerate(raw_links):
        path = f"$.links[{i}]"
        a, b = raw["a"], raw["b"]
        for end in ("a", "b"):
            if raw[end] not in nodes:
                raise TopologyError(source, f"{path}.{end}", f"unknown node {quote(raw[end])}")
        if a == b:
            raise TopologyError(source, f"{path}.b", f"self-loop: both ends are node {quote(a)}")
        _claim(pairs, frozenset((a, b)), path, f"link between {quote(a)} and {quote(b)}",
               source)
        link_id = raw["id"] or f"{a}-{b}"
        _claim(ids, link_id, f"{path}.id", f"link id {quote(link_id)}", source)
        end_ports = _ports(raw["ports"] or {}, a, b, path, next_port, ports, source)
        srlgs: dict[Any, str] = {}
        for j, srlg in enumerate(raw["srlg"]):
            _claim(srlgs, srlg, f"{path}.srlg[{j}]", f"SRLG {quote(srlg)}", source)
        own = {name: defaults[name] if raw[name] is None else raw[name] for name in defaults}
        links.append(Link(link_id, a, b, raw["length_km"], own["wavelengths"],
                          own["capacity_gbps"], end_ports[0], end_ports[1], own["te_weight"],
                          own["jitter_ms"], tuple(raw["srlg"])))
    return tuple(links)


def _ports(named: dict[str, int], a: str, b: str, path: str, next_port: dict[str, int],
           used: dict[Any, str], source: str) -> tuple[int, int]:
    """The switch ports of ends `a` and `b`: named ones, else the next free from port 3."""
    for node in named:
        if node not in (a, b):
            raise TopologyError(source, key_path(f"{path}.ports", node),
                                f"node {quote(node)} is not an end of this link")
    result = []
    for node in (a, b):
        port = named.get(node, next_port[node])
        where = key_path(f"{path}.ports", node)
        if port > MAX_PORT:
            raise TopologyError(source, where, f"no port number left on node {quote(node)}")
        _claim(used, (node, port), where, f"port {port} on node {quote(node)}", source,
               owner=path)
        next_port[node] = max(next_port[node], port + 1)
        result.append(port)
    return result[0], result[1]


def dumps(data: Any, width: int = 100) -> str:
    """JSON in the layout of the shipped files: what fits in `width` columns on one line."""
    return _layout(data, 0, width) + "\n"


def _layout(value: Any, indent: int, width: int) -> str:
    flat = json.dumps(value, ensure_ascii=False)
    if indent + len(flat) <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, list):
        # one element per line: a link, a node, a server
        lines = [_layout(item, indent + 2, width) for item in value]
        return "[\n" + ",\n".join(pad + line for line in lines) + "\n" + " " * indent + "]"
    lines: list[str] = []
    for key, item in value.items():
        part = f"{json.dumps(key, ensure_ascii=False)}: {_layout(item, indent + 2, width)}"
        # pack short fields side by side, as a person would write them
        if lines and "\n" not in part + lines[-1] and \
                len(pad) + len(lines[-1]) + len(part) + 2 <= width:
            lines[-1] += ", " + part
        else:
            lines.append(part)
    return "{\n" + ",\n".join(pad + line for line in lines) + "\n" + " " * indent + "}"
