"""``cso topo``: check, generate and list topology files (docs/topology-format.md).

Exit codes as every ``cso`` command's: 0 ok, 1 an invalid topology or a file that cannot be
written, 2 usage; errors are one ``cso topo ...: error: ...`` line (and JSON under ``--json``).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence, TextIO

from cso_base.cli import Parser, dumps, parse_args
from topologies.generate import generate
from topologies import loader
from topologies.loader import TopologyError, from_dict, load, names
from topologies.model import Topology

#: Lists longer than this are cut short in the text summary (not in --json).
_SHOWN = 10


def summary(topo: Topology) -> dict[str, Any]:
    """The facts `cso topo check` reports about a valid topology."""
    degree = {node: 0 for node in topo.nodes}
    for link in topo.links:
        degree[link.a] += 1
        degree[link.b] += 1
    dcs = [topo.nodes[n].dc for n in topo.dc_nodes()]
    wavelengths = [link.wavelengths for link in topo.links]
    components = _components(topo)
    return {
        "name": topo.name, "source": topo.source,
        "nodes": len(topo.nodes), "links": len(topo.links),
        "inter_domain_links": sum(topo.is_inter_domain(link) for link in topo.links),
        "domains": list(topo.domains),
        "data_centres": len(dcs), "dc_nodes": topo.dc_nodes(),
        "servers": sum(len(dc.servers) for dc in dcs if dc is not None),
        "wavelengths": {"min": min(wavelengths, default=None),
                        "max": max(wavelengths, default=None)},
        "total_km": round(sum(link.length_km for link in topo.links), 1),
        "degree": {"min": min(degree.values()), "avg": round(2 * len(topo.links) / len(degree), 2),
                   "max": max(degree.values())},
        "connected": components == 1, "components": components,
    }


def _components(topo: Topology) -> int:
    parent = {node: node for node in topo.nodes}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node
    for link in topo.links:
        parent[root(link.a)] = root(link.b)
    return len({root(node) for node in topo.nodes})


def _say(text: str, stream: Optional[TextIO] = None) -> None:
    """Print anything, even text the terminal's encoding cannot show."""
    stream = stream or sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    print(text.encode(encoding, "backslashreplace").decode(encoding), file=stream)


def _few(items: Sequence[Any]) -> str:
    shown = ", ".join(str(item) for item in items[:_SHOWN])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOWN else "")


def _text(info: dict[str, Any]) -> str:
    w, degree = info["wavelengths"], info["degree"]
    w_text = "none (no links)" if w["min"] is None else \
        str(w["min"]) if w["min"] == w["max"] else f"{w['min']}..{w['max']}"
    connected = "yes" if info["connected"] else f"NO ({info['components']} components)"
    return "\n".join([
        f"{info['name']} ({info['source']}): valid",
        f"  nodes        {info['nodes']} in {len(info['domains'])} domain(s): "
        f"{_few(info['domains'])}",
        f"  links        {info['links']} ({info['inter_domain_links']} inter-domain), "
        f"{info['total_km']:g} km in all",
        f"  wavelengths  {w_text} per fibre",
        f"  DCs          {info['data_centres']} with {info['servers']} servers"
        + (f", at nodes {_few(info['dc_nodes'])}" if info["dc_nodes"] else ""),
        f"  degree       min {degree['min']}, avg {degree['avg']:.2f}, max {degree['max']}",
        f"  connected    {connected}",
    ])


def _check(args: argparse.Namespace) -> int:
    try:
        topo = load(args.topology)
    except TopologyError as err:
        if args.json:
            _say(dumps({"error": "invalid-topology", "reason": err.reason,
                        "source": err.source, "path": err.path}))
        _say(f"cso topo check: error: {err}", sys.stderr)
        return 1
    info = summary(topo)
    _say(dumps(info) if args.json else _text(info))
    if not info["connected"] and args.require_connected:
        _say(f"cso topo check: error: {topo.source}: not connected", sys.stderr)
        return 1
    return 0


def _generate(args: argparse.Namespace) -> int:
    try:
        data = generate(args.nodes, args.seed, wavelengths=args.wavelengths,
                        capacity_gbps=args.capacity_gbps, dc_fraction=args.dc_fraction,
                        domains=args.domains)
        # The generator's output must load: what it lets through (e.g. an infinite capacity)
        # the loader refuses, and that is the option's fault.
        topo = from_dict(data, source=args.output)
    except (ValueError, TopologyError) as err:
        _say(f"cso topo generate: error: {err}", sys.stderr)
        return 2
    text = loader.dumps(data)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as err:
        _say(f"cso topo generate: error: cannot write {args.output}: {err.strerror or err}",
             sys.stderr)
        return 1
    _say(f"wrote {args.output}: {len(topo.nodes)} nodes, {len(topo.links)} links, "
         f"{len(topo.domains)} domain(s), {len(topo.dc_nodes())} DCs")
    return 0


def _list(args: argparse.Namespace) -> int:
    status, rows = 0, []
    for name in names():
        try:
            rows.append(summary(load(name)))
        except TopologyError as err:
            status = 1
            rows.append({"name": name, "error": "invalid-topology", "reason": str(err)})
    if args.json:
        _say(dumps(rows))
        return status
    for row in rows:
        if "error" in row:
            _say(f"{row['name']:<16} INVALID: {row['reason']}")
        else:
            _say(f"{row['name']:<16} {row['nodes']:>5} nodes {row['links']:>5} links "
                 f"{len(row['domains']):>3} domain(s) {row['data_centres']:>4} DCs")
    return status


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="cso topo", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser("check", help="validate a topology and summarise it")
    check.add_argument("topology", metavar="FILE|NAME", help="a topology file or a shipped name")
    check.add_argument("--json", action="store_true", help="the summary as one JSON object")
    check.add_argument("--require-connected", action="store_true",
                       help="exit 1 when the topology is not connected")
    check.set_defaults(run=_check)
    gen = commands.add_parser("generate", help="write a synthetic topology")
    gen.add_argument("--nodes", type=int, required=True, help="number of nodes (at least 3)")
    gen.add_argument("--seed", type=int, required=True, help="seed of the random generator")
    gen.add_argument("-o", "--output", default="-", metavar="FILE",
                     help="where to write it; - (default) is stdout")
    gen.add_argument("--wavelengths", type=int, default=40,
                     help="wavelengths per fibre (default 40)")
    gen.add_argument("--capacity-gbps", type=float, default=10,
                     help="capacity of each wavelength in Gb/s (default 10)")
    gen.add_argument("--dc-fraction", type=float, default=0.1,
                     help="fraction of the nodes with a DC, in [0, 1] (default 0.1)")
    gen.add_argument("--domains", type=int, default=1, help="SDN domains (default 1)")
    gen.set_defaults(run=_generate)
    shipped = commands.add_parser("list", help="list the shipped topologies")
    shipped.add_argument("--json", action="store_true", help="the list as one JSON array")
    shipped.set_defaults(run=_list)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cso topo``."""
    args = parse_args(_parser(), argv)
    if isinstance(args, int):
        return args
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
