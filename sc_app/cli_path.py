"""``cso path``: compute a lightpath offline on a topology file.

Exit codes: 0 a path was found, 1 no path (the JSON says why) or an invalid topology,
2 bad arguments (`cso_base.cli.EXIT_CODES`).
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence, Union

from cso_base.cli import (NEGATIVE, NON_NEGATIVE, POSITIVE_INT, USAGE, Parser, dumps, fail,
                          parse_args)
from sc_app.pce import (DISJOINT_MODES, ORDERS, POLICIES, PCE, ConstraintError, Constraints,
                        NoPath, Path, PathPair)
from sc_app.ted import TED
from topologies.loader import TopologyError, load
from topologies.model import Topology


def _ids(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parser() -> argparse.ArgumentParser:
    """The command line of ``cso path``."""
    p = Parser(prog="cso path", description=(
        "Compute a constrained lightpath (route + wavelength) on a topology, offline, "
        "with an empty network."))
    p.add_argument("--topo", required=True, help="topology name (nsfnet, ...) or JSON file")
    p.add_argument("--src", required=True, help="source node id")
    p.add_argument("--dst", required=True, help="destination node id")
    p.add_argument("--k", type=POSITIVE_INT, default=5, help="candidate paths (default 5)")
    p.add_argument("--order", choices=ORDERS, default="hops", help="candidate order")
    p.add_argument("--policy", choices=POLICIES, default="first-fit", help="wavelength policy")
    p.add_argument("--seed", type=int, default=0, help="seed of random-fit")
    p.add_argument("--bandwidth", type=NON_NEGATIVE, default=0.0, metavar="GBPS",
                   help="per-wavelength bandwidth every link must carry")
    p.add_argument("--max-delay", type=NON_NEGATIVE, metavar="MS", help="maximum delay")
    p.add_argument("--max-jitter", type=NON_NEGATIVE, metavar="MS", help="maximum jitter")
    p.add_argument("--max-hops", type=POSITIVE_INT, metavar="H", help="maximum hop count")
    p.add_argument("--include-nodes", type=_ids, default=(), metavar="A,B",
                   help="nodes the path must visit")
    p.add_argument("--exclude-nodes", type=_ids, default=(), metavar="A,B",
                   help="nodes the path must avoid")
    p.add_argument("--exclude-links", type=_ids, default=(), metavar="0-1,...",
                   help="links the path must avoid")
    p.add_argument("--exclude-srlgs", type=_ids, default=(), metavar="G,...",
                   help="shared-risk link groups the path must avoid")
    p.add_argument("--disjoint", choices=DISJOINT_MODES,
                   help="also compute a link- or SRLG-disjoint protection path")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _describe(path: Path, names: dict[str, str]) -> list[str]:
    free = path.free_wavelengths
    return [
        f"route       {' -> '.join(path.route)}",
        f"            ({' -> '.join(names.get(n, n) for n in path.route)})",
        f"wavelength  {path.wavelength} (VLAN {path.vlan})",
        f"hops        {path.hops}",
        f"length      {path.length_km:g} km",
        f"delay       {path.delay_ms:.3f} ms",
        f"jitter      {path.jitter_ms:.3f} ms",
        f"TE cost     {path.te_cost:g}",
        f"free        {len(free)} wavelength(s) on the route",
    ]


def _print(result: Union[Path, PathPair], names: dict[str, str]) -> None:
    if isinstance(result, PathPair):
        print(f"working path ({result.mode}-disjoint pair):")
        print("\n".join("  " + line for line in _describe(result.working, names)))
        print("protection path:")
        print("\n".join("  " + line for line in _describe(result.protection, names)))
    else:
        print("\n".join(_describe(result, names)))


def _known_nodes(args: argparse.Namespace, topology: Topology) -> None:
    """ConstraintError when --include-nodes or --exclude-nodes names a node not in the topology."""
    for option in ("include_nodes", "exclude_nodes"):
        for node in getattr(args, option):
            if node not in topology.nodes:
                raise ConstraintError(f"unknown node {node!r} in --{option.replace('_', '-')}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cso path``; returns the exit code."""
    args = parse_args(parser(), argv)
    if isinstance(args, int):                # --help or a usage error, already reported
        return args
    try:
        constraints = Constraints(
            bandwidth_gbps=args.bandwidth, max_delay_ms=args.max_delay,
            max_jitter_ms=args.max_jitter, max_hops=args.max_hops,
            include_nodes=args.include_nodes, exclude_nodes=args.exclude_nodes,
            exclude_links=args.exclude_links, exclude_srlgs=args.exclude_srlgs)
        topology = load(args.topo)
        _known_nodes(args, topology)
        pce = PCE(TED(topology), k=args.k, order=args.order, policy=args.policy,
                  seed=args.seed)
        if args.disjoint:
            result = pce.disjoint_pair(args.src, args.dst, constraints, mode=args.disjoint)
        else:
            result = pce.compute(args.src, args.dst, constraints)
    except TopologyError as err:
        return fail("cso path", str(err), NEGATIVE, args.json, "invalid-topology")
    except ConstraintError as err:
        return fail("cso path", str(err), USAGE, args.json)
    if isinstance(result, NoPath):
        if args.json:
            print(dumps({**result.to_dict(), "src": args.src, "dst": args.dst}))
        else:
            print(f"no path from {args.src} to {args.dst}: {result.reason}"
                  f" ({result.detail})")
        return 1
    if args.json:
        print(dumps(result.to_dict()))
    else:
        _print(result, {n.id: n.name for n in topology.nodes.values()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
