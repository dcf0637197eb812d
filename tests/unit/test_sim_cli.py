"""`cso sim`: arguments, the --json shape, the files of --out; `cso bench sim`'s figures."""
import json

import pytest

from cso import main as cso_main
from cso.bench import cli as bench
from cso.simulation import cli as sim

FAST = ["--requests", "150", "--warmup", "20", "--seeds", "2", "--wavelengths", "4", "--quiet"]


def run_json(capsys, *argv):
    assert sim.main([*argv, *FAST, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_every_metric_with_its_ci_per_strategy_and_load(capsys):
    out = run_json(capsys, "--strategies", "rb,GLB", "--loads", "10,30", "--cpu", "2",
                   "--memory", "1-8", "--server-cpu", "2")
    assert [(r["series"], r["load"]) for r in out["results"]] == [
        ("RB", 10.0), ("RB", 30.0), ("GLB", 10.0), ("GLB", 30.0)]
    for row in out["results"]:
        for metric in ("network_blocking", "global_blocking", "load_balance_factor",
                       "avg_hops"):
            assert set(row[metric]) == {"mean", "ci95", "n"} and row[metric]["n"] == 2
    params = out["parameters"]
    assert (params["cpu"], params["memory"], params["server_cpu"], params["wavelengths"]) == (
        "2", "1-8", 2, 4)
    assert params["seeds"] == [1, 2] and params["traffic"] == "cso"
    # One request fills a server: 20 at most at a time, so the application blocks at 30 E.
    assert out["results"][3]["global_blocking"]["mean"] > out["results"][3][
        "network_blocking"]["mean"]


def test_rwa_series_compare_k_and_policies(capsys):
    out = run_json(capsys, "--traffic", "rwa", "--k", "1,5", "--policy", "first-fit,most-used",
                   "--loads", "20")
    assert [r["series"] for r in out["results"]] == [
        "first-fit K=1", "most-used K=1", "first-fit K=5", "most-used K=5"]
    assert all(r["load_balance_factor"]["mean"] is None for r in out["results"])
    one = run_json(capsys, "--traffic", "rwa", "--loads", "20", "--path-order", "length")
    assert [r["series"] for r in one["results"]] == ["RWA first-fit K=5"]
    assert one["parameters"]["order"] == "length"


def test_out_writes_csv_json_and_plots(tmp_path, capsys):
    assert sim.main(["--strategies", "AB,NB", "--loads", "10,20", *FAST,
                     "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "AB" in table and "load_balance_factor" in table
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0].startswith("series,strategy,k,policy,load,seeds,network_blocking_mean")
    assert len(lines) == 5
    assert json.loads((tmp_path / "results.json").read_text())["results"]
    for metric in ("load_balance_factor", "network_blocking", "global_blocking", "avg_hops"):
        for ext in ("png", "svg"):
            assert (tmp_path / f"{metric}.{ext}").stat().st_size > 1000


# Other tests import eventlet, which warns on any fork; `cso sim` itself never imports it.
@pytest.mark.filterwarnings("ignore:Using fork:DeprecationWarning")
def test_jobs_give_the_same_figures(capsys):
    one = run_json(capsys, "--strategies", "GLB", "--loads", "10,30")
    strip = ("requests_per_s",)
    for jobs in ("2", "0"):  # 0: one per core
        other = run_json(capsys, "--strategies", "GLB", "--loads", "10,30", "--jobs", jobs)
        assert [{k: v for k, v in r.items() if k not in strip} for r in one["results"]] == [
            {k: v for k, v in r.items() if k not in strip} for r in other["results"]]


@pytest.mark.parametrize("argv", [["--strategies", "XB"], ["--loads", "0"], ["--seeds", "0"],
                                  ["--jobs", "-1"], ["--cpu", "4-1"], ["--traffic", "mesh"],
                                  ["--policy", "best"]])
def test_bad_arguments_exit_2(argv, capsys):
    assert sim.main([*argv, "--requests", "10", "--quiet"]) == 2
    assert "cso sim" in capsys.readouterr().err


def test_invalid_topology_exits_1(capsys):
    assert sim.main(["--topo", "no-such-topology", "--requests", "10", "--quiet"]) == 1
    assert "cso sim: error: no-such-topology" in capsys.readouterr().err


def test_progress_goes_to_stderr(capsys):
    assert sim.main(["--strategies", "AB", "--loads", "10", "--requests", "50", "--warmup",
                     "0", "--seeds", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert "2/2 points" in captured.err and json.loads(captured.out)


def test_cso_sim_is_a_command():
    assert cso_main.COMMANDS["sim"][0] == "cso.simulation.cli"


def test_bench_sim_reports_both_cases(capsys):
    assert bench.main(["sim", "--json", "--requests", "300", "--warmup", "50",
                       "--repeat", "1"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures["cases"]) == {"rwa", "glb"}
    for case in figures["cases"].values():
        assert case["requests"] == 350 and case["requests_per_s"] > 0
        assert isinstance(case["meets_target"], bool)
    assert bench.main(["sim", "--requests", "100", "--warmup", "0", "--repeat", "1"]) == 0
    assert "req/s" in capsys.readouterr().out
