"""``cso topo``: check, generate, list; exit codes and output."""
from __future__ import annotations

import json

from cso.main import main as cso
from cso.topo import main
from topologies.generate import generate
from topologies.loader import dumps, load

RING_JSON = json.dumps({"nodes": [{"id": "0"}, {"id": "1"}, {"id": "2"}, {"id": "3"}],
                        "links": [{"a": "0", "b": "1", "length_km": 10},
                                  {"a": "2", "b": "3", "length_km": 20}]})


def test_check_a_shipped_topology_by_name(capsys):
    assert main(["check", "nsfnet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nsfnet (")
    for text in ("nodes        14 in 1 domain(s): nsfnet", "links        21 (0 inter-domain), "
                 "22700 km", "wavelengths  40 per fibre", "DCs          5 with 20 servers, at "
                 "nodes 1, 4, 7, 9, 12", "degree       min 2, avg 3.00, max 4", "connected    yes"):
        assert text in out


def test_check_json_summary(capsys):
    assert main(["check", "three-domain", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "three-domain" and info["domains"] == ["A", "B", "C"]
    assert info["nodes"] == 15 and info["inter_domain_links"] == 4 and info["connected"]
    assert info["wavelengths"] == {"min": 40, "max": 40}
    assert info["degree"]["min"] >= 2 and info["servers"] == 14


def test_check_invalid_file_exits_1_with_the_error_on_stderr(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(RING_JSON.replace("20", "-20"), encoding="utf-8")
    assert main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}: $.links[1].length_km: must be greater than 0" in captured.err


def test_check_invalid_file_json_error_object(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text("{", encoding="utf-8")
    assert main(["check", str(path), "--json"]) == 1
    error = json.loads(capsys.readouterr().out)
    assert error["error"] == "invalid-topology" and error["path"] == "$"
    assert error["reason"].startswith("invalid JSON at line 1, column 2")


def test_check_unknown_name(capsys):
    assert main(["check", "no-such-topology"]) == 1
    assert "no such topology file or name" in capsys.readouterr().err


def test_check_disconnected(tmp_path, capsys):
    path = tmp_path / "split.json"
    path.write_text(RING_JSON, encoding="utf-8")
    assert main(["check", str(path)]) == 0
    assert "connected    NO (2 components)" in capsys.readouterr().out
    assert main(["check", str(path), "--require-connected"]) == 1
    assert "not connected" in capsys.readouterr().err


def test_generate_writes_a_valid_file(tmp_path, capsys):
    path = tmp_path / "big.json"
    argv = ["generate", "--nodes", "120", "--seed", "9", "-o", str(path), "--wavelengths", "16",
            "--domains", "2"]
    assert main(argv) == 0
    assert f"wrote {path}: 120 nodes, 180 links, 2 domain(s)" in capsys.readouterr().out
    assert path.read_text(encoding="utf-8") == dumps(generate(120, 9, wavelengths=16, domains=2))
    topo = load(str(path))
    assert topo.domains == ("A", "B") and topo.links[0].wavelengths == 16


def test_generate_to_stdout(capsys):
    assert main(["generate", "--nodes", "10", "--seed", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)["nodes"]) == 10


def test_generate_bad_arguments(tmp_path, capsys):
    assert main(["generate", "--nodes", "2", "--seed", "1", "-o", str(tmp_path / "x")]) == 2
    assert "nodes must be at least 3" in capsys.readouterr().err
    assert main(["generate", "--nodes", "10"]) == 2          # --seed is required
    assert main(["generate", "--nodes", "10", "--seed", "1", "-o",
                 str(tmp_path / "no" / "dir.json")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_list(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert {"nsfnet", "ring", "three-domain"} <= {line.split()[0] for line in lines}
    assert main(["list", "--json"]) == 0
    nodes = {row["name"]: row["nodes"] for row in json.loads(capsys.readouterr().out)}
    assert (nodes["nsfnet"], nodes["ring"], nodes["three-domain"]) == (14, 6, 15)


def test_usage_and_help(capsys):
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "check" in capsys.readouterr().out


def test_reached_through_the_cso_command(capsys):
    assert cso(["topo", "check", "ring"]) == 0
    assert "ring (" in capsys.readouterr().out
