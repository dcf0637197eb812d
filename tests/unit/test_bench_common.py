"""`cso.bench.common`: what the benchmarks share (arguments, workload, statistics, SIGTERM)."""
from __future__ import annotations

import argparse
import math

import pytest
from prometheus_client import generate_latest

from cso.bench import common
from cso.emulation.network import HostPlan
from sc_app.metrics import ScMetrics

HISTOGRAM = "cso_provisioning_seconds"


def test_at_least_names_the_bound():
    assert common.at_least(int, 1)("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
        common.at_least(int, 1)("0")
    with pytest.raises(argparse.ArgumentTypeError, match="greater than 0"):
        common.at_least(float, 0.0, strict=True)("0")
    with pytest.raises(argparse.ArgumentTypeError, match="not a number"):
        common.at_least(float, 0.0)("fast")


def test_sigterm_during_a_run_unwinds_like_ctrl_c():
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        common.interrupt(15, None)


# -- workload ---------------------------------------------------------------------------

def test_nsfnet_has_65_user_dc_pairs_at_different_nodes():
    pairs, ip = common.workload("nsfnet")
    assert len(pairs) == 65 == len(set(pairs))
    assert {user for user, _ in pairs} == {f"u{i}" for i in range(14)}
    assert {dc for _, dc in pairs} == {"dc1", "dc4", "dc7", "dc9", "dc12"}
    assert all(user[1:] != dc[2:] for user, dc in pairs)
    assert ip["u3"] == "10.1.3.1" and ip["dc12"] == "10.2.12.1"


def test_host_pairs_skips_same_node_and_keeps_plan_order():
    hosts = [HostPlan("u0", "0", "user", "10.1.0.1", "m", "s0", 1),
             HostPlan("u1", "1", "user", "10.1.1.1", "m", "s1", 1),
             HostPlan("dc1", "1", "dc", "10.2.1.1", "m", "s1", 2)]
    assert common.host_pairs(hosts) == [("u0", "dc1")]


# -- statistics ---------------------------------------------------------------------------

def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert common.percentile(values, 0.5) == 50 and common.percentile(values, 0.9) == 90
    assert common.percentile(values, 0.99) == 99 and common.percentile([7], 0.99) == 7
    assert common.summary_us([1000, 2000, 3000]) == {"median_us": 2.0, "p90_us": 3.0,
                                                     "p99_us": 3.0, "mean_us": 2.0}


def test_latency_summary_in_milliseconds():
    figures = common.latency_summary([i / 1000 for i in range(100, 0, -1)])
    assert figures == {"count": 100, "median_ms": 50.0, "p90_ms": 90.0, "p99_ms": 99.0,
                       "mean_ms": 50.5, "max_ms": 100.0}
    assert common.latency_summary([])["median_ms"] is None


def _metrics_text(observations: list[float], metrics: ScMetrics | None = None) -> str:
    metrics = metrics or ScMetrics()
    for value in observations:
        metrics.provisioning.observe(value)
    return generate_latest(metrics.registry).decode()


def test_histogram_delta_from_the_scs_own_metrics():
    metrics = ScMetrics()
    before = common.parse_histogram(_metrics_text([0.5, 0.5], metrics), HISTOGRAM)
    after = common.parse_histogram(
        _metrics_text([0.003] * 60 + [0.015] * 39 + [0.07], metrics), HISTOGRAM)
    delta = after - before
    assert delta.count == 100 and math.isclose(delta.sum, 0.003 * 60 + 0.015 * 39 + 0.07)
    summary = delta.summary((20.0, 100.0))
    assert summary["count"] == 100 and summary["mean_ms"] == pytest.approx(8.35, abs=0.01)
    assert summary["within_20ms"] == 0.99 and summary["within_100ms"] == 1.0
    # Median: rank 50 of the 60 in the (2, 3] ms bucket -> 2 + 1 * 50/60 ms.
    assert summary["median_ms_est"] == pytest.approx(2 + 50 / 60, abs=0.01)
    # p99: rank 99 is the last of the (10, 15] ms bucket -> its upper bound.
    assert summary["p99_ms_est"] == pytest.approx(15.0, abs=0.01)


def test_histogram_edge_cases():
    empty = common.Histogram(((0.01, 0.0), (math.inf, 0.0)), 0.0, 0.0)
    assert math.isnan(empty.quantile(0.5)) and empty.summary((20.0,)) == {
        "count": 0, "mean_ms": None, "median_ms_est": None, "p99_ms_est": None,
        "within_20ms": None}
    overflow = common.Histogram(((0.01, 1.0), (0.1, 1.0), (math.inf, 10.0)), 10.0, 50.0)
    assert overflow.quantile(0.99) == 0.1  # in +Inf: the highest finite bound
    assert math.isnan(overflow.fraction_within(0.05))
    with pytest.raises(ValueError):
        overflow - common.Histogram(((0.02, 0.0), (math.inf, 0.0)), 0.0, 0.0)
    with pytest.raises(KeyError):
        common.parse_histogram("# nothing here\n", HISTOGRAM)
