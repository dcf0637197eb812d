"""``cso bench pce``: the SA-PCE's compute + reserve + release per request.

Against a naive baseline (networkx ``shortest_simple_paths``, K paths, first-fit scan of the
occupancy) on the same random requests and the same background load, on NSFNET and on a
generated large topology.
"""
from __future__ import annotations

import argparse
import gc
import random
import time
from itertools import islice
from typing import Any

import networkx as nx

from cso.bench.cli import register
from cso.bench.common import machine, summary_us
from cso_base.cli import FRACTION, POSITIVE_INT, number
from sc_app.pce import PCE
from sc_app.ted import TED
from topologies.generate import generate
from topologies.loader import from_dict, load
from topologies.model import Topology

BENCH_OWNER = "bench"
#: The smallest topology `topologies.generate` makes.
MIN_NODES = 3


def _pce_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--requests", type=POSITIVE_INT, default=2000,
                   help="requests on NSFNET (default 2000)")
    p.add_argument("--large-requests", type=POSITIVE_INT, default=300,
                   help="requests on the large topology (default 300: the baseline is slow)")
    p.add_argument("--nodes", type=number(int, low=MIN_NODES), default=1000,
                   help=f"nodes of the large topology (at least {MIN_NODES}; default 1000)")
    p.add_argument("--seed", type=int, default=1, help="seed of topology, load and requests")
    p.add_argument("--k", type=POSITIVE_INT, default=5, help="candidate paths (default 5)")
    p.add_argument("--load", type=FRACTION, default=0.5,
                   help="background occupancy: fraction of (link, wavelength) held "
                        "(default 0.5)")


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
