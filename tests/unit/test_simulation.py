"""cso.simulation.engine: determinism, metrics on hand-computed cases, the same choices as live."""
import copy
import json
import math

import pytest

from ac_app.asi_client import AsiNetworkView
from ac_app.resources import Demand
from cso.simulation.engine import (CSO, METRICS, RWA, RWA_SERIES, Point, Range, Scenario, Series,
                                   Simulator, iter_requests, mean_ci, run_point, sweep, t975)
from sc_app.sa import describe


def line_topology(tmp_path, servers, dc_node="2"):
    """Three nodes 0-1-2 on a line, W=1, one DC at ``dc_node`` with ``servers`` (cpu, mem)."""
    nodes = [{"id": str(i), "name": f"n{i}", "domain": "d"} for i in range(3)]
    nodes[int(dc_node)]["dc"] = {"id": "dc", "servers": [
        {"id": f"s{i}", "cpu": cpu, "memory_gb": mem, "disk_gb": 100}
        for i, (cpu, mem) in enumerate(servers)]}
    data = {"name": "line", "defaults": {"wavelengths": 1, "capacity_gbps": 10},
            "nodes": nodes, "links": [{"a": "0", "b": "1", "length_km": 10},
                                      {"a": "1", "b": "2", "length_km": 10}]}
    path = tmp_path / "line.json"
    path.write_text(json.dumps(data))
    return str(path)


def simulator(topo, traffic, strategy, requests, a=0.5):
    scenario = Scenario(traffic=traffic, topo=topo, requests=requests, warmup=0, a=a)
    return Simulator(Point(scenario, Series(strategy, k=2), 1.0, 1))


def req(t, holding, src, cpu, dst="0", memory=1):
    return (t, holding, src, dst, Demand(cpu, memory, 1))


def test_blocking_and_hops_are_counted_exactly_on_a_line(tmp_path):
    topo = line_topology(tmp_path, [(2, 10)])
    trace = [
        req(1.0, 10.0, "0", 1),   # server at 2, lightpath 0-1-2 on the only wavelength
        req(2.0, 10.0, "1", 1),   # server fits, but 1-2 has no wavelength: network
        req(3.0, 1.0, "2", 1),    # server at the user's node: no lightpath; server full now
        req(3.5, 1.0, "0", 1),    # no server fits: application
        req(5.0, 1.0, "2", 1),    # the request of t=3 left at t=4: local again
    ]
    result = simulator(topo, CSO, "NB", len(trace)).run(trace)
    m = result["metrics"]
    assert (result["requests"], result["accepted"]) == (5, 3)
    assert (result["network_blocked"], result["application_blocked"]) == (1, 1)
    assert (m["network_blocking"], m["application_blocking"], m["global_blocking"]) == (
        0.2, 0.2, 0.4)
    assert m["avg_hops"] == 2.0 and m["avg_hops_per_request"] == pytest.approx(2 / 3)
    assert m["load_balance_factor"] == 0.0          # one server: no dispersion
    assert m["link_occupancy"] == 1.0               # both channels held from t=1 to t=5


def test_a_refusal_at_reservation_is_a_network_refusal(tmp_path):
    topo = line_topology(tmp_path, [(4, 10)])
    # AB does not consult the network: it chooses, then the reservation fails.
    trace = [req(1.0, 10.0, "0", 1), req(2.0, 10.0, "0", 1)]
    sim = simulator(topo, CSO, "AB", len(trace))
    result = sim.run(trace)
    assert (result["network_blocked"], result["application_blocked"]) == (1, 0)
    assert sim.app.get("s0").cpu_used == 1          # the refused request's server was not kept


def test_load_balance_factor_is_the_time_weighted_std_of_a(tmp_path):
    topo = line_topology(tmp_path, [(2, 100), (2, 100)], dc_node="1")
    trace = [
        req(1.0, 2.0, "1", 1),    # AB: s0 -> A = [.5, 0], std .25
        req(2.0, 10.0, "1", 1),   # s1 -> [.5, .5], std 0; s0's request leaves at 3: std .25
        req(5.0, 1.0, "1", 2),    # only s0 fits -> [1, .5]; the run ends at this arrival
    ]
    result = simulator(topo, CSO, "AB", len(trace), a=0.0).run(trace)
    m = result["metrics"]
    # ∫ std dt from 1 to 5 = .25*1 + 0*1 + .25*2 = .75, over 4 time units.
    assert m["load_balance_factor"] == pytest.approx(0.75 / 4)
    assert m["mean_app_utilisation"] == pytest.approx((0.25 + 0.5 + 0.25 * 2) / 4)
    assert m["avg_hops"] is None and m["avg_hops_per_request"] == 0.0
    assert m["global_blocking"] == 0.0


def test_rwa_blocking_on_a_line(tmp_path):
    topo = line_topology(tmp_path, [(1, 1)])
    trace = [req(1.0, 2.0, "0", 0, dst="2"), req(1.5, 1.0, "1", 0, dst="2"),
             req(2.0, 1.0, "0", 0, dst="1"), req(3.5, 1.0, "1", 0, dst="2")]
    result = simulator(topo, RWA, RWA_SERIES, len(trace)).run(trace)
    m = result["metrics"]
    assert (result["network_blocked"], m["network_blocking"], m["global_blocking"]) == (
        2, 0.5, 0.5)
    assert m["avg_hops"] == 1.5 and m["load_balance_factor"] is None


def test_warmup_is_not_measured(tmp_path):
    topo = line_topology(tmp_path, [(2, 10)])
    scenario = Scenario(topo=topo, requests=1, warmup=1)
    sim = Simulator(Point(scenario, Series("NB", k=2), 1.0, 1))
    result = sim.run([req(1.0, 10.0, "0", 1), req(2.0, 10.0, "1", 1)])
    assert (result["requests"], result["network_blocked"], result["accepted"]) == (1, 1, 0)


SMALL = Scenario(requests=600, warmup=100, wavelengths=4)


@pytest.mark.parametrize("traffic,strategy", [(CSO, "RB"), (CSO, "GLB"), (RWA, RWA_SERIES)])
def test_a_seed_determines_the_run(traffic, strategy):
    scenario = Scenario(traffic=traffic, requests=600, warmup=100, wavelengths=4)
    point = Point(scenario, Series(strategy, policy="random-fit"), 30.0, 7)
    first, again = run_point(point), run_point(point)
    other = run_point(Point(scenario, point.series, 30.0, 8))
    strip = ("wall_s", "requests_per_s")
    assert {k: v for k, v in first.items() if k not in strip} == {
        k: v for k, v in again.items() if k not in strip}
    assert first["metrics"] != other["metrics"]
    assert first["network_blocked"] > 0             # W=4 at 30 E: the network does block


def test_every_series_sees_the_same_requests():
    nodes = [str(i) for i in range(14)]
    a = list(zip(range(50), iter_requests(3, SMALL, nodes, 20.0)))
    b = list(zip(range(50), iter_requests(3, SMALL, nodes, 20.0)))
    assert a == b and all(src != dst for _, (_, _, src, dst, _) in a)
    times = [t for _, (t, *_rest) in a]
    assert times == sorted(times)


class FakeAsiClient:
    """What the live AC's ASI client gets from the SC's evaluate, over the same PCE."""

    def __init__(self, pce):
        self.pce = pce

    def evaluate(self, src, dsts, constraints=None):
        results = [{"dst": dst, "node": dst, **describe(self.pce.compute(src, dst))}
                   for dst in dsts]
        return json.loads(json.dumps({"src": src, "results": results}))


@pytest.mark.parametrize("strategy", ["RB", "AB", "NB", "GLB"])
def test_the_simulator_and_the_live_ac_choose_alike(strategy):
    scenario = Scenario(requests=400, warmup=0, wavelengths=4)
    sim = Simulator(Point(scenario, Series(strategy), 60.0, 5))
    trace = list(zip(range(400), iter_requests(5, scenario, sim.nodes, 60.0)))
    # Long holding times: the state at the end is loaded (servers and wavelengths).
    sim.run((t, 100.0, src, dst, demand) for _, (t, _h, src, dst, demand) in trace)
    live_net = AsiNetworkView(FakeAsiClient(sim.pce))
    assert any(link != full for link, full in zip(sim.ted.free, sim.ted.full))
    outcomes = set()
    for _, (_, _, src, _, demand) in trace[:60]:
        live = copy.deepcopy(sim.strategy)            # same parameters and RNG state
        ours = sim.decide(src, demand)
        theirs = live.choose(src, demand, sim.app, live_net)
        assert ours == theirs, (src, demand)
        outcomes.add(ours.ok)
    assert True in outcomes


def test_confidence_intervals():
    assert t975(1) == 12.706 and t975(30) == 2.042
    assert abs(t975(1000) - 1.962) < 1e-3 and t975(31) < t975(30)
    summary = mean_ci([1.0, 2.0, 3.0, None])
    assert summary["mean"] == 2.0 and summary["n"] == 3
    assert summary["ci95"] == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert mean_ci([None])["mean"] is None and mean_ci([0.5])["ci95"] is None


def test_sweep_summarises_every_series_and_load():
    series = [Series("AB"), Series("GLB")]
    out = sweep(Scenario(requests=200, warmup=20, wavelengths=4), series, [10.0, 40.0], [1, 2])
    rows = out["results"]
    assert [(r["series"], r["load"], r["seeds"]) for r in rows] == [
        ("AB", 10.0, 2), ("AB", 40.0, 2), ("GLB", 10.0, 2), ("GLB", 40.0, 2)]
    for row in rows:
        assert set(METRICS) <= set(row)
        assert row["network_blocking"]["n"] == 2 and row["network_blocking"]["ci95"] is not None


def test_parameters_are_checked():
    with pytest.raises(ValueError):
        Range.parse("5-2")
    assert str(Range.parse("3")) == "3" and str(Range.parse("1-4")) == "1-4"
    with pytest.raises(ValueError):
        Scenario(traffic="mesh")
    with pytest.raises(ValueError):
        Series("GLB", policy="best-fit")
    with pytest.raises(ValueError):
        run_point(Point(Scenario(requests=10), Series("XB"), 10.0, 1))
