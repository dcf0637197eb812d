"""What the benchmarks share: argument types, statistics, the lab's user->DC workload, the
machine they ran on and how a run unwinds on SIGTERM.

Each benchmark is a module of its own (`cso.bench.pce`, `provision`, `restore`, `load`, `sim`)
registered with `cso.bench.cli.register`; none imports another.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from cso.emulation import network as emulation
from cso.emulation.network import HostPlan
from topologies.loader import load

#: The demo AC's ASI token (`cso.emulation.lab.DEMO_TOKENS`), which the live benchmarks use.
TOKEN = "demo-ac-token"

Number = TypeVar("Number", int, float)
Pair = tuple[str, str]


# -- arguments ----------------------------------------------------------------------------

def at_least(kind: Callable[[str], Number], minimum: Number,
             strict: bool = False) -> Callable[[str], Number]:
    """argparse type: a number of ``kind`` (int, float) >= ``minimum`` (> when ``strict``)."""
    def convert(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum or (strict and value == minimum) or value != value:  # NaN
            bound = "greater than" if strict else "at least"
            raise argparse.ArgumentTypeError(f"must be {bound} {minimum}, not {text}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


# -- the workload ---------------------------------------------------------------------------

def host_pairs(hosts: Iterable[HostPlan]) -> list[Pair]:
    """Every (user host, DC host) pair at different nodes, in the plan's order.

    A user host and a DC host at the same node are left out: no fibre, no wavelength, so
    not what provisioning a lightpath measures.
    """
    hosts = list(hosts)
    return [(user.name, dc.name) for user in hosts if user.kind == "user"
            for dc in hosts if dc.kind == "dc" and dc.node != user.node]


def workload(topo: str) -> tuple[list[Pair], dict[str, str]]:
    """The user->DC pairs of a topology's emulation and every host's address (from its plan,
    so arguments are checked before anything starts)."""
    hosts = emulation.plan(load(topo)).hosts
    return host_pairs(hosts), {host.name: host.ip for host in hosts}


# -- statistics -----------------------------------------------------------------------------

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


def latency_summary(seconds: Iterable[float]) -> dict[str, Any]:
    """Count, median, p90, p99, mean and max (nearest rank) of latencies, in milliseconds."""
    values = sorted(seconds)
    if not values:
        return {"count": 0, "median_ms": None, "p90_ms": None, "p99_ms": None,
                "mean_ms": None, "max_ms": None}
    return {"count": len(values),
            "median_ms": _ms(percentile(values, 0.5)), "p90_ms": _ms(percentile(values, 0.9)),
            "p99_ms": _ms(percentile(values, 0.99)),
            "mean_ms": _ms(sum(values) / len(values)), "max_ms": _ms(values[-1])}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


@dataclass(frozen=True)
class Histogram:
    """A Prometheus histogram's state: cumulative counts by upper bound, count and sum."""

    buckets: tuple[tuple[float, float], ...]  # (le, cumulative count), ascending, ends at +Inf
    count: float
    sum: float

    def __sub__(self, before: "Histogram") -> "Histogram":
        if [le for le, _ in self.buckets] != [le for le, _ in before.buckets]:
            raise ValueError("histograms with different buckets")
        return Histogram(tuple((le, now - then) for (le, now), (_, then)
                               in zip(self.buckets, before.buckets)),
                         self.count - before.count, self.sum - before.sum)

    def quantile(self, q: float) -> float:
        """Estimate of the ``q`` quantile (seconds), as PromQL's ``histogram_quantile``.

        Linear within the bucket that holds the rank; a rank in the +Inf bucket gives the
        highest finite bound. NaN when empty.
        """
        if self.count <= 0:
            return math.nan
        rank = q * self.count
        lower, below = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(le):
                    return lower
                inside = cumulative - below
                return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = le, cumulative
        return lower

    def fraction_within(self, bound: float) -> float:
        """Exact fraction of observations <= ``bound`` when it is a bucket bound (else NaN)."""
        for le, cumulative in self.buckets:
            if le == bound:
                return cumulative / self.count if self.count else math.nan
        return math.nan

    def summary(self, within_ms: Sequence[float]) -> dict[str, Any]:
        """Count, exact mean, interpolated median/p99 (ms), exact fractions <= each bound of
        ``within_ms`` (bucket bounds, in ms; keys ``within_<bound>ms``)."""
        if self.count <= 0:
            return {"count": 0, "mean_ms": None, "median_ms_est": None, "p99_ms_est": None,
                    **{f"within_{bound:g}ms": None for bound in within_ms}}
        return {"count": int(self.count), "mean_ms": _ms(self.sum / self.count),
                "median_ms_est": _ms(self.quantile(0.5)), "p99_ms_est": _ms(self.quantile(0.99)),
                **{f"within_{bound:g}ms": round(self.fraction_within(bound / 1000), 4)
                   for bound in within_ms}}


def parse_histogram(text: str, name: str) -> Histogram:
    """The histogram ``name`` from Prometheus exposition text (KeyError when absent)."""
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        buckets, count, total = [], 0.0, 0.0
        for sample in family.samples:
            if sample.name == name + "_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == name + "_count":
                count = sample.value
            elif sample.name == name + "_sum":
                total = sample.value
        return Histogram(tuple(sorted(buckets)), count, total)
    raise KeyError(f"no histogram {name} in the metrics")


# -- a run ----------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(terse=True)}


def interrupt(signum: int, _frame: Any) -> None:
    """SIGTERM handler during a run: unwind like Ctrl-C, so the ``finally`` stops the SC and
    the emulation (they run in sessions of their own, out of reach of terminal signals)."""
    raise KeyboardInterrupt(f"signal {signum}")
