"""``cso path``: JSON contract, human output, exit codes."""
import json

import pytest

from cso.main import main as cso_main
from sc_app.cli_path import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_answer_follows_the_contract(capsys):
    code, out, _ = run(capsys, "--topo", "nsfnet", "--src", "0", "--dst", "13", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["route"] == ["0", "2", "5", "13"] and data["wavelength"] == 0
    assert data["hops"] == 3 and data["length_km"] == 5600 and data["delay_ms"] == 28


def test_human_output_names_the_nodes(capsys):
    code, out, _ = run(capsys, "--topo", "nsfnet", "--src", "0", "--dst", "13")
    assert code == 0
    assert "0 -> 2 -> 5 -> 13" in out and "Seattle" in out and "VLAN 1000" in out


def test_options_reach_the_pce(capsys):
    code, out, _ = run(capsys, "--topo", "nsfnet", "--src", "0", "--dst", "13", "--json",
                       "--order", "length", "--k", "3", "--policy", "most-used",
                       "--max-delay", "25", "--exclude-nodes", "12", "--include-nodes", "8")
    data = json.loads(out)
    assert code == 0 and data["route"] == ["0", "7", "8", "11", "13"]
    code, out, _ = run(capsys, "--topo", "nsfnet", "--src", "0", "--dst", "13", "--json",
                       "--exclude-links", "2-0,0-1")
    assert json.loads(out)["route"][1] == "7"


def test_no_path_exits_1_with_the_reason(capsys):
    code, out, _ = run(capsys, "--topo", "nsfnet", "--src", "0", "--dst", "13", "--json",
                       "--max-hops", "2")
    data = json.loads(out)
    assert code == 1 and data["error"] == "no-path" and data["reason"] == "hops-exceeded"
    code, out, _ = run(capsys, "--topo", "nsfnet", "--src", "0", "--dst", "99")
    assert code == 1 and "unknown-node" in out


def test_invalid_topology_exits_1(capsys):
    code, out, err = run(capsys, "--topo", "nope", "--src", "0", "--dst", "1")
    assert code == 1 and out == "" and "cso path: error: nope" in err


@pytest.mark.parametrize("argv", [
    ["--topo", "nsfnet", "--src", "0"],
    ["--topo", "nsfnet", "--src", "0", "--dst", "1", "--max-hops", "x"],
    ["--topo", "nsfnet", "--src", "0", "--dst", "1", "--bandwidth", "-1"],
    ["--topo", "nsfnet", "--src", "0", "--dst", "1", "--exclude-links", "0-13"],
    ["--topo", "nsfnet", "--src", "0", "--dst", "1", "--k", "0"],
    ["--topo", "nsfnet", "--src", "0", "--dst", "1", "--order", "cost"],
])
def test_bad_arguments_exit_2_with_a_message(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.strip()


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "--exclude-srlgs" in out


def test_disjoint_pair(capsys):
    code, out, _ = run(capsys, "--topo", "nsfnet", "--src", "0", "--dst", "13", "--json",
                       "--disjoint", "link")
    data = json.loads(out)
    assert code == 0 and not set(data["links"]) & set(data["protection"]["links"])
    code, out, _ = run(capsys, "--topo", "nsfnet", "--src", "0", "--dst", "13",
                       "--disjoint", "srlg")
    assert code == 0 and "protection path" in out


def test_topology_file_and_cso_dispatch(tmp_path, capsys):
    path = tmp_path / "line.json"
    path.write_text(json.dumps({"nodes": [{"id": "a"}, {"id": "b"}],
                                "links": [{"a": "a", "b": "b", "length_km": 10}]}))
    assert cso_main(["path", "--topo", str(path), "--src", "b", "--dst", "a", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["route"] == ["b", "a"]
