"""Bad input to every offline ``cso`` command: no traceback, the documented exit code, one error
line naming the bad option or field, and strict JSON (no NaN) under ``--json``.

The commands run in process through `cso.main.main`, as the console script runs them.
"""
from __future__ import annotations

import json
from typing import Any

import pytest

from cso.main import COMMANDS, main as cso_main
from cso_base.cli import INTERNAL, NEGATIVE, OK, USAGE, dumps

#: A fast `cso sim` point, to which each case adds its bad option.
SIM = ["sim", "--strategies", "RB", "--loads", "5", "--seeds", "1", "--requests", "50",
       "--warmup", "0", "--quiet"]
#: A fast `cso bench sim`.
BENCH_SIM = ["bench", "sim", "--requests", "50", "--warmup", "0", "--repeat", "1"]
#: A fast `cso bench pce`.
BENCH_PCE = ["bench", "pce", "--requests", "5", "--large-requests", "5", "--nodes", "20"]
PATH = ["path", "--topo", "nsfnet", "--src", "0", "--dst", "13"]


def strict_json(text: str) -> Any:
    """Parse JSON refusing NaN and ±Infinity, as strict parsers do."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} in JSON output")
    return json.loads(text, parse_constant=refuse)


#: (argv, exit code, text the one error line must contain)
CASES = [
    # cso sim
    (SIM + ["--out", "/etc/passwd"], NEGATIVE, "--out"),
    (SIM + ["--out", "/proc/no/such/dir"], NEGATIVE, "--out"),
    (SIM + ["--loads", "nan", "--json"], USAGE, "--loads"),
    (SIM + ["--loads", "5,inf"], USAGE, "--loads"),
    (SIM + ["--server-cpu", "0"], USAGE, "--server-cpu"),
    (SIM + ["--server-memory", "-4", "--json"], USAGE, "--server-memory"),
    (SIM + ["--server-disk", "nan"], USAGE, "--server-disk"),
    (SIM + ["--a", "1.5"], USAGE, "--a"),
    (SIM + ["--a", "-0.1", "--strategies", "GLB"], USAGE, "--a"),
    (SIM + ["--b", "nan"], USAGE, "--b"),
    (SIM + ["--traffic", "rwa", "--strategies", "GLB"], USAGE, "--strategies"),
    (SIM + ["--token", "secret"], USAGE, "--token"),
    (SIM + ["--time-scale", "1", "--json"], USAGE, "--time-scale"),
    (SIM + ["--requests", "0"], USAGE, "--requests"),
    (SIM + ["--warmup", "-1"], USAGE, "--warmup"),
    (SIM + ["--k", "0"], USAGE, "--k"),
    (SIM + ["--wavelengths", "0"], USAGE, "--wavelengths"),
    (SIM + ["--topo", "no-such-topology", "--json"], NEGATIVE, "no-such-topology"),
    (SIM + ["--live", "http://127.0.0.1:9", "--driver", "stack"], USAGE, "--live"),
    (SIM + ["--strategies", "RB,rb"], USAGE, "--strategies"),
    (SIM + ["--k", "5,5", "--json"], USAGE, "--k"),
    (SIM + ["--policy", "first-fit,first-fit"], USAGE, "--policy"),
    (SIM + ["--wavelengths", "99999"], USAGE, "--wavelengths"),
    (SIM + ["--topo", "/etc/passwd"], NEGATIVE, "/etc/passwd"),
    # cso bench pce
    (BENCH_PCE + ["--k", "0"], USAGE, "--k"),
    (BENCH_PCE + ["--nodes", "2"], USAGE, "--nodes"),
    (BENCH_PCE + ["--load", "nan", "--json"], USAGE, "--load"),
    (BENCH_PCE + ["--load", "1.5"], USAGE, "--load"),
    (BENCH_PCE + ["--requests", "0"], USAGE, "--requests"),
    (BENCH_PCE + ["--large-requests", "-3", "--json"], USAGE, "--large-requests"),
    # cso bench sim
    (BENCH_SIM + ["--requests", "0"], USAGE, "--requests"),
    (BENCH_SIM + ["--repeat", "0"], USAGE, "--repeat"),
    (BENCH_SIM + ["--rwa-load", "nan", "--json"], USAGE, "--rwa-load"),
    (BENCH_SIM + ["--glb-load", "-inf"], USAGE, "--glb-load"),
    (BENCH_SIM + ["--warmup", "-1"], USAGE, "--warmup"),
    (BENCH_SIM + ["--k", "x", "--json"], USAGE, "--k"),
    (["bench", "nope"], USAGE, "nope"),
    # cso path
    (PATH + ["--exclude-nodes", "99"], USAGE, "unknown node '99' in --exclude-nodes"),
    (PATH + ["--include-nodes", "99", "--json"], USAGE, "unknown node '99' in --include-nodes"),
    (PATH + ["--max-delay", "nan", "--json"], USAGE, "--max-delay"),
    (PATH + ["--max-jitter", "inf"], USAGE, "--max-jitter"),
    (PATH + ["--bandwidth", "-1"], USAGE, "--bandwidth"),
    (PATH + ["--k", "0", "--json"], USAGE, "--k"),
    (PATH + ["--max-hops", "0"], USAGE, "--max-hops"),
    (["path", "--topo", "no-such-topology", "--src", "0", "--dst", "1", "--json"], NEGATIVE,
     "no-such-topology"),
    (PATH + ["--exclude-links", "0-13"], USAGE, "0-13"),
    # cso topo
    (["topo", "check", "no-such-topology", "--json"], NEGATIVE, "no-such-topology"),
    (["topo", "check", "--json"], USAGE, "FILE|NAME"),
    (["topo", "generate", "--nodes", "2", "--seed", "1"], USAGE, "nodes"),
    (["topo", "generate", "--nodes", "5", "--seed", "1", "--capacity-gbps", "inf"], USAGE,
     "capacity_gbps"),
    (["topo", "generate", "--nodes", "5", "--seed", "1", "--capacity-gbps", "nan"], USAGE,
     "capacity_gbps"),
    (["topo", "generate", "--nodes", "5", "--seed", "1", "--dc-fraction", "2"], USAGE,
     "dc_fraction"),
    (["topo", "generate", "--nodes", "5", "--seed", "1", "-o", "/proc/no/such"], NEGATIVE,
     "cannot write"),
    (["topo", "list", "--json", "extra"], USAGE, "extra"),
    # the top level
    (["nope"], USAGE, "unknown command 'nope'"),
]


def _id(case: tuple[list[str], int, str]) -> str:
    return " ".join(case[0])[:80]


@pytest.mark.parametrize("argv,code,named", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_is_refused_in_one_line(argv, code, named, capsys):
    assert cso_main(argv) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    prog = f"cso {argv[0]}" if argv[0] in COMMANDS else "cso"
    assert errors[0].startswith(prog) and named in errors[0]
    if "--json" in argv:
        data = strict_json(out)
        assert isinstance(data, dict) and data["error"] and data["reason"]


@pytest.mark.parametrize("command", ["sc", "ac"])
@pytest.mark.parametrize("argv,code,named", [
    (["/no/such/file.conf"], NEGATIVE, "/no/such/file.conf: cannot read"),
    ([], USAGE, "FILE"),
    (["--nope", "x.conf"], USAGE, "--nope"),
])
def test_check_config_refusals(command, argv, code, named, capsys):
    assert cso_main([command, "check-config", *argv]) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and named in err


@pytest.mark.parametrize("command", ["sc", "ac"])
@pytest.mark.parametrize("text", ["", "[DEFAULT]\nverbose = true\n", "[other]\nk = 5\n"])
def test_check_config_refuses_a_file_without_the_section(command, text, tmp_path, capsys):
    path = tmp_path / "x.conf"
    path.write_text(text)
    assert cso_main([command, "check-config", str(path)]) == NEGATIVE
    out, err = capsys.readouterr()
    assert f"{path}: no [{command}] section" in err and "OK" not in out


def test_every_offline_command_has_five_bad_inputs():
    commands = [" ".join(argv[:2]) if argv[0] in ("bench", "sc", "ac") else argv[0]
                for argv, _code, _named in CASES]
    for command in ("sim", "bench pce", "bench sim", "path", "topo"):
        assert commands.count(command) >= 5, command


@pytest.mark.parametrize("argv", [
    SIM + ["--json"], SIM + ["--json", "--server-cpu", "1"],
    ["sim", "--traffic", "rwa", "--loads", "5", "--seeds", "1", "--requests", "50", "--quiet",
     "--json"],
    BENCH_SIM + ["--json"], PATH + ["--json", "--max-hops", "1"],
    ["topo", "check", "nsfnet", "--json"], ["topo", "list", "--json"]])
def test_json_output_is_strict(argv, capsys):
    assert cso_main(argv) in (OK, NEGATIVE)
    strict_json(capsys.readouterr().out)


def test_options_rwa_traffic_ignores_are_warned_about(capsys):
    argv = ["sim", "--traffic", "rwa", "--loads", "5", "--seeds", "1", "--requests", "50",
            "--quiet", "--glb-k", "3", "--server-cpu", "4"]
    assert cso_main(argv) == OK
    err = capsys.readouterr().err
    assert "--glb-k applies to cso traffic" in err and "--server-cpu applies" in err


def test_dumps_turns_non_finite_numbers_into_null():
    text = dumps({"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": (2,)})
    assert strict_json(text) == {"a": None, "b": [None, None, 1.5], "c": [2]}


def test_unexpected_errors_are_one_line_and_exit_3(monkeypatch, capsys):
    import sc_app.cli_path

    def boom(_argv: Any) -> int:
        raise RuntimeError("something broke")
    monkeypatch.setattr(sc_app.cli_path, "main", boom)
    assert cso_main(["path", "--json"]) == INTERNAL
    out, err = capsys.readouterr()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("cso path: error: internal error: RuntimeError: something broke")
    assert "--debug" in err and strict_json(out)["error"] == "internal-error"
    assert cso_main(["--debug", "path"]) == INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_version_help_and_exit_codes_in_the_top_level_help(capsys):
    assert cso_main(["--version"]) == OK
    assert capsys.readouterr().out.startswith("cso ")
    assert cso_main(["--help"]) == OK
    text = capsys.readouterr().out
    assert "check-config" in text and "topo list" in text and "exit codes" in text
    assert "--debug" in text and "--version" in text
    assert cso_main(["help", "path"]) == OK
    assert "--exclude-srlgs" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["sim"], ["path"], ["bench", "pce"], ["bench", "sim"],
                                  ["sc", "check-config"]])
def test_each_command_help_ends_with_the_exit_codes(argv, capsys):
    assert cso_main([*argv, "--help"]) == OK
    assert "exit codes: 0 ok" in capsys.readouterr().out
