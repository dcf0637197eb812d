"""``cso bench provision --json``, tiny: real SC + NSFNET, every lightpath torn down after."""
from __future__ import annotations

import json
import subprocess

import pytest

from cso.emulation import lab

pytestmark = pytest.mark.integration

PHASES = ("sequential", "concurrent", "paced")


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One small run: 32 requests per phase, 16 clients, 200/s offered in the paced phase."""
    log_dir = tmp_path_factory.mktemp("bench-provision")
    result = subprocess.run(
        [lab.CSO, "bench", "provision", "--json", "--requests", "32", "--concurrency", "16",
         "--warmup", "2", "--rate", "200", "--log-dir", str(log_dir)],
        capture_output=True, text=True, timeout=300)  # the emulation lock may be held a while
    assert result.returncode == 0, f"{result.stderr}\n(logs in {log_dir})"
    return json.loads(result.stdout)


def test_one_json_object_with_every_figure(figures):
    assert figures["benchmark"] == "provision" and figures["topology"] == "nsfnet"
    assert figures["fibres"] == 21 and figures["pairs"] == 65
    assert figures["requests"] == 32 and figures["concurrency"] == 16
    assert {"cpus", "python", "platform"} <= set(figures["machine"]) and figures["date"]
    for name in PHASES:
        phase = figures[name]
        assert phase["requests"] == 32, name
        assert phase["clients"] == (1 if name == "sequential" else 16)
        for key in ("median_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms"):
            assert phase["client"][key] > 0, (name, key)
        server = phase["server"]
        # The SC's own histogram saw exactly the phase's successful establishes, and its
        # figure (handler only) is below the client's (which adds HTTP).
        assert server["count"] == phase["established"], name
        assert 0 < server["mean_ms"] <= phase["client"]["mean_ms"], name
        assert 0 <= server["within_20ms"] <= server["within_100ms"] <= 1
        assert phase["lightpaths_per_s"] > 0 and phase["wall_s"] > 0
        assert phase["sc_cpu_ms_per_lightpath"] > 0 and "sc" in phase["cpu_busy"]
    assert set(figures["targets"]) == set(PHASES)
    assert set(figures["targets"]["concurrent"]) == {"median_under_20ms", "p99_under_100ms",
                                                     "at_least_100_per_s"}


def test_nothing_refused_and_every_lightpath_torn_down(figures):
    for name in PHASES:
        phase = figures[name]
        assert phase["refusals"] == {} and phase["teardown_failures"] == {}, name
        assert phase["established"] == phase["torn_down"] == 32, name
    assert figures["warmup"] == {"requests": 2, "established": 2}
    assert figures["leftovers"] == {"lightpaths": 0, "wavelengths_in_use": 0,
                                    "flow_entries": 0}
    assert figures["swept_at_end"] == 0


def test_processes_are_gone(figures):
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert figures["log_dir"] not in ps  # neither the SC nor the emulation of that run
