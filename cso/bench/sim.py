"""``cso bench sim``: simulated requests per second of `cso.simulation.engine` on one core.

Two cases on NSFNET, each one `Simulator` run of ``--warmup + --requests`` arrivals
in this process (no workers), timed from the first arrival to the last, events
and metrics included, topology load and TED/PCE construction excluded:

- ``rwa``: random node pairs, SA-PCE K=5 by hops, first-fit (target 50,000 req/s);
- ``glb``: CSO traffic with the GLB strategy, same PCE (target 10,000 req/s).

Loads are chosen so that the network works with some blocking but is not saturated
(see docs/benchmarks.md); blocking is reported alongside the rate.
"""
from __future__ import annotations

import argparse
import gc
from typing import Any

from cso.bench.cli import register
from cso.bench.common import machine
from cso_base.cli import COUNT, POSITIVE, POSITIVE_INT
from cso.simulation.engine import CSO, RWA, RWA_SERIES, Point, Scenario, Series, Simulator

TARGETS = {"rwa": 50_000.0, "glb": 10_000.0}


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--requests", type=POSITIVE_INT, default=100_000,
                   help="measured requests per case")
    p.add_argument("--warmup", type=COUNT, default=5_000, help="warm-up requests per case")
    p.add_argument("--seed", type=int, default=1, help="seed of the request stream")
    p.add_argument("--k", type=POSITIVE_INT, default=5, help="candidate paths of the SA-PCE")
    p.add_argument("--rwa-load", type=POSITIVE, default=300.0,
                   help="rwa offered load (Erlang)")
    p.add_argument("--glb-load", type=POSITIVE, default=120.0,
                   help="GLB offered load (Erlang)")
    p.add_argument("--repeat", type=POSITIVE_INT, default=3,
                   help="runs per case; the best is reported")


def _case(traffic: str, strategy: str, load: float, args: argparse.Namespace) -> dict[str, Any]:
    scenario = Scenario(traffic=traffic, requests=args.requests, warmup=args.warmup)
    point = Point(scenario, Series(strategy, args.k, "first-fit"), load, args.seed)
    best = None
    for _ in range(args.repeat):
        simulator = Simulator(point)
        gc.collect()
        result = simulator.run()
        if best is None or result["wall_s"] < best["wall_s"]:
            best = result
    assert best is not None
    return {"traffic": traffic, "strategy": strategy, "load": load, "k": args.k,
            "requests": args.warmup + args.requests, "wall_s": round(best["wall_s"], 3),
            "requests_per_s": round(best["requests_per_s"]),
            "network_blocking": round(best["metrics"]["network_blocking"], 4),
            "global_blocking": round(best["metrics"]["global_blocking"], 4),
            "link_occupancy": round(best["metrics"]["link_occupancy"] or 0.0, 3)}


@register("sim", "simulated requests per second (rwa first-fit and GLB on NSFNET)", _options,
          lambda figures: _report(figures))
def bench_sim(args: argparse.Namespace) -> dict[str, Any]:
    """Run both cases and compare them with their targets."""
    cases = {"rwa": _case(RWA, RWA_SERIES, args.rwa_load, args),
             "glb": _case(CSO, "GLB", args.glb_load, args)}
    for name, case in cases.items():
        case["target_per_s"] = TARGETS[name]
        case["meets_target"] = case["requests_per_s"] >= TARGETS[name]
    return {"benchmark": "sim", "topology": "nsfnet", "seed": args.seed, "cases": cases,
            "machine": machine()}


def _report(figures: dict[str, Any]) -> str:
    lines = [f"Simulator speed on NSFNET (one core, seed {figures['seed']})"]
    for name, c in figures["cases"].items():
        lines.append(f"  {name:4} load {c['load']:g} E, K={c['k']}: {c['requests_per_s']:>8,} req/s"
                     f" ({c['requests']} requests in {c['wall_s']} s; network blocking "
                     f"{c['network_blocking']:.2%}, global {c['global_blocking']:.2%}); target "
                     f"{c['target_per_s']:,.0f}: {'met' if c['meets_target'] else 'NOT met'}")
    return "\n".join(lines)
