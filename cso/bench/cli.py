"""``cso bench WHAT``: benchmarks, each printing its figures (one JSON object with --json).

Benchmarks register themselves in `BENCHMARKS` with `register`; each has its
own options and returns a JSON-able dict. Results and how to reproduce them
are kept in docs/benchmarks.md.

``pce``: the SA-PCE's compute + reserve + release per request against a naive
baseline (networkx ``shortest_simple_paths``, K paths, first-fit scan of the
occupancy) on the same random requests and the same background load, on
NSFNET and on a generated large topology.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import platform
import random
import sys
import time
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Optional, Sequence

import networkx as nx

from sc_app.pce import PCE
from sc_app.ted import TED
from topologies.generate import generate
from topologies.loader import from_dict, load
from topologies.model import Topology


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: its options, its run and its human-readable report."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], dict[str, Any]]
    report: Callable[[dict[str, Any]], str]


BENCHMARKS: dict[str, Benchmark] = {}


def register(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None],
             report: Callable[[dict[str, Any]], str]
             ) -> Callable[[Callable[[argparse.Namespace], dict[str, Any]]],
                           Callable[[argparse.Namespace], dict[str, Any]]]:
    """Decorator adding a run function to `BENCHMARKS` under ``name``."""
    def wrap(run: Callable[[argparse.Namespace], dict[str, Any]]
             ) -> Callable[[argparse.Namespace], dict[str, Any]]:
        BENCHMARKS[name] = Benchmark(name, help, configure, run, report)
        return run
    return wrap


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def summary_us(samples_ns: list[int]) -> dict[str, float]:
    """Median, p90, p99 and mean of nanosecond samples, in microseconds."""
    values = sorted(samples_ns)
    return {"median_us": round(percentile(values, 0.5) / 1000, 1),
            "p90_us": round(percentile(values, 0.9) / 1000, 1),
            "p99_us": round(percentile(values, 0.99) / 1000, 1),
            "mean_us": round(sum(values) / len(values) / 1000, 1) if values else math.nan}


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(terse=True)}


# -- pce ----------------------------------------------------------------------------------

BENCH_OWNER = "bench"


def _pce_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--requests", type=int, default=2000,
                   help="requests on NSFNET (default 2000)")
    p.add_argument("--large-requests", type=int, default=300,
                   help="requests on the large topology (default 300: the baseline is slow)")
    p.add_argument("--nodes", type=int, default=1000, help="nodes of the large topology")
    p.add_argument("--seed", type=int, default=1, help="seed of topology, load and requests")
    p.add_argument("--k", type=int, default=5, help="candidate paths")
    p.add_argument("--load", type=float, default=0.5,
                   help="background occupancy: fraction of (link, wavelength) held")


def _background(pce: PCE, rng: random.Random, target: float) -> int:
    """Reserve random lightpaths until ``target`` of all (link, λ) are held or one is refused.

    Stopping at the first refusal keeps the measured requests near a real
    operating point (blocking of a few percent at most) rather than in a
    saturated network, where every request is refused after trying all K.
    Returns the number of lightpaths reserved.
    """
    ted = pce.ted
    nodes = list(ted.node_ids)
    total = sum(ted.wavelengths)
    held = count = 0
    while held < target * total:
        src, dst = rng.sample(nodes, 2)
        path = pce.reserve(src, dst, owner=f"bg{count}")
        if not path.ok:
            break
        held += path.hops
        count += 1
    return count


class _Baseline:
    """Naive PCE: networkx's K shortest simple paths per request, then a first-fit scan."""

    def __init__(self, ted: TED, k: int):
        self.k = k
        self.graph = nx.Graph()
        self.graph.add_nodes_from(ted.node_ids)
        for link in ted.links:
            self.graph.add_edge(link.a, link.b, id=link.id, wavelengths=link.wavelengths)
        # The same background load, copied into the baseline's own structure.
        self.used = {link_id: set(ted.used(link_id)) for link_id in ted.link_ids}

    def reserve_release(self, src: str, dst: str, lazy: bool = False) -> bool:
        """One request; ``lazy`` stops generating paths at the first with a free wavelength."""
        graph, used = self.graph, self.used
        routes = islice(nx.shortest_simple_paths(graph, src, dst), self.k)
        for route in (routes if lazy else list(routes)):
            edges = [graph.edges[u, v] for u, v in zip(route, route[1:])]
            width = min(edge["wavelengths"] for edge in edges)
            for wavelength in range(width):
                if all(wavelength not in used[edge["id"]] for edge in edges):
                    for edge in edges:
                        used[edge["id"]].add(wavelength)
                    for edge in edges:
                        used[edge["id"]].discard(wavelength)
                    return True
        return False


def _measure(topology: Topology, requests: int, seed: int, k: int, load: float) -> dict[str, Any]:
    ted = TED(topology)
    pce = PCE(ted, k=k)
    rng = random.Random(seed)
    background = _background(pce, rng, load)
    nodes = list(ted.node_ids)
    pairs = [tuple(rng.sample(nodes, 2)) for _ in range(requests)]
    baseline = _Baseline(ted, k)
    before = ted.snapshot()["links"]
    clock = time.perf_counter_ns
    ours, ours_ok = [], 0
    gc.collect()
    for src, dst in pairs:
        start = clock()
        path = pce.reserve(src, dst, owner=BENCH_OWNER)
        if path.ok:
            pce.release(path, BENCH_OWNER)
            ours_ok += 1
        ours.append(clock() - start)
    assert ted.snapshot()["links"] == before, "release did not restore the background load"
    naive, naive_ok, lazy, lazy_ok = [], 0, [], 0
    gc.collect()
    for src, dst in pairs:
        start = clock()
        naive_ok += baseline.reserve_release(src, dst)
        naive.append(clock() - start)
    gc.collect()
    for src, dst in pairs:
        start = clock()
        lazy_ok += baseline.reserve_release(src, dst, lazy=True)
        lazy.append(clock() - start)
    mine, theirs, theirs_lazy = summary_us(ours), summary_us(naive), summary_us(lazy)
    return {
        "nodes": len(ted.node_ids), "links": len(ted.links),
        "wavelengths": max(ted.wavelengths), "k": k, "requests": requests,
        "background_lightpaths": background,
        "occupancy": round(1 - sum(f.bit_count() for f in ted.free) / sum(ted.wavelengths), 3),
        "ours": {**mine, "accepted": ours_ok},
        "baseline": {**theirs, "accepted": naive_ok},
        "baseline_lazy": {**theirs_lazy, "accepted": lazy_ok},
        "speedup": _ratios(theirs, mine),
        "speedup_vs_lazy": _ratios(theirs_lazy, mine),
    }


def _ratios(slow: dict[str, float], fast: dict[str, float]) -> dict[str, float]:
    return {key.replace("_us", ""): round(slow[key] / fast[key], 1)
            for key in ("median_us", "p90_us", "p99_us", "mean_us")}


@register("pce", "SA-PCE compute+reserve+release vs a networkx baseline", _pce_options,
          lambda figures: _pce_report(figures))
def bench_pce(args: argparse.Namespace) -> dict[str, Any]:
    """Run the PCE benchmark on NSFNET and on a generated large topology."""
    large = from_dict(generate(args.nodes, args.seed), source=f"generate({args.nodes})")
    results = {
        "nsfnet": _measure(load("nsfnet"), args.requests, args.seed, args.k, args.load),
        f"generated-{args.nodes}": _measure(large, args.large_requests, args.seed, args.k,
                                            args.load),
    }
    targets = {"nsfnet": 50.0, f"generated-{args.nodes}": 5000.0}
    for name, figures in results.items():
        figures["target_median_us"] = targets[name]
        figures["meets_targets"] = (figures["ours"]["median_us"] < targets[name]
                                    and figures["speedup"]["median"] >= 10)
    return {"benchmark": "pce", "seed": args.seed, "load": args.load,
            "topologies": results, "machine": machine()}


def _pce_report(figures: dict[str, Any]) -> str:
    lines = [f"PCE: compute + reserve + release per request, seed {figures['seed']}, "
             f"background load {figures['load']:.0%}"]
    for name, t in figures["topologies"].items():
        lines.append("")
        lines.append(f"{name}: {t['nodes']} nodes, {t['links']} links, W={t['wavelengths']}, "
                     f"K={t['k']}, {t['requests']} requests, {t['background_lightpaths']} "
                     f"background lightpaths (occupancy {t['occupancy']:.1%})")
        lines.append(f"  {'':15}{'median':>12}{'p90':>12}{'p99':>12}{'accepted':>10}")
        for who in ("ours", "baseline", "baseline_lazy"):
            f = t[who]
            lines.append(f"  {who:15}{f['median_us']:>10.1f}us{f['p90_us']:>10.1f}us"
                         f"{f['p99_us']:>10.1f}us{f['accepted']:>10}")
        for who in ("speedup", "speedup_vs_lazy"):
            s = t[who]
            lines.append(f"  {who:15}{s['median']:>11.1f}x{s['p90']:>11.1f}x"
                         f"{s['p99']:>11.1f}x")
        lines.append(f"  target: median < {t['target_median_us']:g} us and >= 10x: "
                     f"{'met' if t['meets_targets'] else 'NOT met'}")
    return "\n".join(lines)


#: Modules registering the other benchmarks; imported by `benchmarks`, not at import time, so
#: that each of them may be imported first (they import this module).
PLUGINS = ("cso.bench.provision", "cso.bench.sim", "cso.bench.restore", "cso.bench.load")


def benchmarks() -> dict[str, Benchmark]:
    """Every benchmark, by name: this module's and those the `PLUGINS` register."""
    for module in PLUGINS:
        importlib.import_module(module)
    return BENCHMARKS


# -- command ------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    """The command line of ``cso bench``: one subcommand per registered benchmark."""
    p = argparse.ArgumentParser(prog="cso bench", description="Run a benchmark.")
    sub = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    for bench in benchmarks().values():
        sp = sub.add_parser(bench.name, help=bench.help, description=bench.help)
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        bench.configure(sp)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cso bench``; returns the exit code."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on errors, 0 on --help
        return int(exit_.code or 0)
    bench = BENCHMARKS[args.what]
    figures = bench.run(args)
    print(json.dumps(figures) if args.json else bench.report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
