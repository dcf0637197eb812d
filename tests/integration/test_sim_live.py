"""`cso sim --live` on the real system: `cso sc`, `cso net` and `cso ac` (GLB) on nsfnet-small.

A tiny trace (60 requests at 25 Erlang, 0.3 s per time unit) is replayed over UAI: no errors,
every request chosen as the simulator chooses it (same outcome, same server, same hops), both
strata block, and nothing is left held at the AC or the SC.
"""
import json

import pytest

from cso.simulation import cli as sim

MANAGER_TOKEN = "demo-manager-token"
SCENARIO = ["--topo", "nsfnet-small", "--loads", "25", "--requests", "50", "--warmup", "10",
            "--seeds", "1", "--seed", "3", "--time-scale", "0.3", "--quiet"]


@pytest.fixture(scope="module")
def net_topology() -> str:
    """3 wavelengths per fibre and 4-core servers: both strata block at 25 Erlang."""
    return "nsfnet-small"


def test_live_replay_agrees_with_the_simulator_and_leaves_the_system_clean(sc, net, ac, capsys):
    argv = [*SCENARIO, "--live", ac.url, "--token", MANAGER_TOKEN, "--sc-url", sc.url, "--json"]
    assert sim.main(argv) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["parameters"]["live"]["strategy"] == "GLB"
    assert "wavelengths" in out["parameters"]["live"]["checked"]
    row, run = out["per_load"][0], out["runs"][0]
    assert row["errors"] == 0, run["errors"]
    assert row["compared"] == 60
    assert row["agree"] == row["same_hops"] == 60, run["agreement"]["first_disagreements"]
    live, simulated = out["results"][0], out["simulation"][0]
    for metric in ("network_blocking", "global_blocking", "avg_hops"):
        assert live[metric]["mean"] == pytest.approx(simulated[metric]["mean"])
    assert live["network_blocking"]["mean"] > 0
    assert live["global_blocking"]["mean"] > live["network_blocking"]["mean"]
    assert live["load_balance_factor"]["mean"] == pytest.approx(
        simulated["load_balance_factor"]["mean"], rel=0.2)
    # Clean: no request active at the AC, no lightpath or wavelength held at the SC.
    active = ac.request("GET", "/uai/v1/requests?status=active", token=MANAGER_TOKEN).json
    assert active["requests"] == []
    assert sc.request("GET", "/smi/v1/lightpaths").json["lightpaths"] == []
    links = sc.request("GET", "/smi/v1/links").json["links"]
    assert sum(len(link["used"]) for link in links) == 0


def test_a_mismatched_scenario_is_refused_in_one_line(ac, capsys):
    argv = ["--topo", "nsfnet", "--loads", "5", "--requests", "5", "--warmup", "0", "--quiet",
            "--live", ac.url, "--token", MANAGER_TOKEN]
    assert sim.main(argv) == 2
    err = capsys.readouterr().err
    assert "does not match the running AC: server dc1-s0" in err and err.count("\n") == 1
    assert sim.main([*argv[:-1], "wrong-token"]) == 2
    assert "refuses the token" in capsys.readouterr().err
