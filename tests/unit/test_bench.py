"""``cso bench``: the registry and a tiny run of the PCE benchmark."""
import json

from cso.bench.cli import benchmarks, main


def test_pce_is_registered():
    assert "pce" in benchmarks()


def test_small_pce_run_prints_one_json_object(capsys):
    code = main(["pce", "--json", "--requests", "40", "--large-requests", "5",
                 "--nodes", "60", "--seed", "3"])
    figures = json.loads(capsys.readouterr().out)
    assert code == 0 and figures["benchmark"] == "pce"
    assert set(figures["topologies"]) == {"nsfnet", "generated-60"}
    nsf = figures["topologies"]["nsfnet"]
    assert nsf["requests"] == 40 and nsf["wavelengths"] == 40 and nsf["k"] == 5
    for who in ("ours", "baseline", "baseline_lazy"):
        assert {"median_us", "p90_us", "p99_us", "accepted"} <= set(nsf[who])
    assert nsf["speedup"]["median"] > 0


def test_human_report_and_bad_arguments(capsys):
    assert main(["pce", "--requests", "5", "--large-requests", "2", "--nodes", "30"]) == 0
    assert "speedup" in capsys.readouterr().out
    assert main(["nope"]) == 2
    assert main([]) == 2
