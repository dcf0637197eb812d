"""``cso sc``: argument handling, config validation before start, and Ryu's view of the flags.

Ryu's manager monkey-patches the process (eventlet) when imported, so everything that imports
it runs in a subprocess; the rest calls the launcher's functions directly.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from sc_app import cli_sc, config

BIN = os.path.dirname(sys.executable)
GOOD = "[DEFAULT]\nwsapi_port = 9999\n[sc]\nk = 7\nac_tokens = demo-ac:demo-ac-token\n"


@pytest.fixture
def no_ryu(monkeypatch):
    """Record what would be handed to Ryu instead of starting it."""
    calls = []
    monkeypatch.setattr(cli_sc, "run_ryu", lambda argv: calls.append(list(argv)) or 0)
    return calls


@pytest.mark.parametrize("argv, files", [
    ([], []),
    (["--config-file", "a.conf", "--wsapi-port", "1", "app.x"], ["a.conf"]),
    (["--config-file=a.conf", "--config-file", "b.conf"], ["a.conf", "b.conf"]),
    (["--config-dir", "d", "--verbose"], []),
])
def test_config_files_are_found_among_ryu_flags(argv, files):
    assert cli_sc.config_files(argv) == files


def test_app_lists_flag_is_recognised():
    assert cli_sc.names_app_list(["--app-lists", "x"])
    assert cli_sc.names_app_list(["--app-lists=x"])
    assert not cli_sc.names_app_list(["x.y", "--verbose"])


def test_check_config_accepts_a_good_file(tmp_path, capsys, no_ryu):
    path = tmp_path / "sc.conf"
    path.write_text(GOOD)
    assert cli_sc.main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: OK" in out and "REST port 9999" in out and "1 AC token(s)" in out
    assert no_ryu == []


def test_check_config_rejects_a_bad_file_naming_section_and_field(tmp_path, capsys, no_ryu):
    path = tmp_path / "sc.conf"
    path.write_text("[sc]\nk = 0\nwavelength = 3\n")
    assert cli_sc.main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert f"{path}: [sc] wavelength: unknown option" in err[0]
    assert err[1].startswith(f"{path}: [sc] k: ")
    assert no_ryu == []


def test_an_invalid_config_stops_the_launch(tmp_path, capsys, no_ryu):
    path = tmp_path / "sc.conf"
    path.write_text("[sc]\npath_order = random\n")
    assert cli_sc.main(["--config-file", str(path), "--verbose"]) == 1
    err = capsys.readouterr().err
    assert "invalid configuration, not starting" in err and "[sc] path_order" in err
    assert no_ryu == []


def test_a_valid_config_launches_ryu_with_the_flags_unchanged(tmp_path, no_ryu):
    path = tmp_path / "sc.conf"
    path.write_text(GOOD)
    argv = ["--config-file", str(path), "--wsapi-port", "8181", "ryu.app.ofctl_rest"]
    assert cli_sc.main(argv) == 0
    assert no_ryu == [argv]


def test_help_ryu_is_ryus_and_needs_no_config(no_ryu):
    assert cli_sc.main(["--help-ryu", "--config-file", "/nonexistent"]) == 0
    assert no_ryu == [["--help", "--config-file", "/nonexistent"]]


def test_help_lists_the_sc_options_and_needs_no_ryu(no_ryu, capsys):
    assert cli_sc.main(["--help", "--config-file", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    assert no_ryu == [] and out.startswith("usage: cso sc ")
    assert "[sc] options" in out and "--help-ryu" in out
    for field in config.SC_FIELDS + config.RYU_FIELDS:
        assert f"  {field.name} " in out


def test_config_is_an_alias_of_config_file(no_ryu, tmp_path):
    path = tmp_path / "sc.conf"
    path.write_text(GOOD)
    assert cli_sc.main(["--config", str(path), f"--config={path}"]) == 0
    assert no_ryu == [["--config-file", str(path), f"--config-file={path}"]]
    bad = tmp_path / "bad.conf"
    bad.write_text("[sc]\nk = 0\n")
    assert cli_sc.main(["--config", str(bad)]) == 1


# Runs cli_sc.main for each argv with Ryu's manager.main replaced by one that only parses the
# command line and prints what Ryu would run with.
PROBE = r"""
import json, sys
from sc_app import cli_sc
cli_sc.ensure_eventlet_compat()
from ryu import cfg
from ryu.cmd import manager

def parse_only(args=None, prog=None):
    cfg.CONF(args=args, prog=prog, project="ryu")
    print(json.dumps({"apps": cfg.CONF.app_lists + cfg.CONF.app,
                      "observe_links": cfg.CONF.observe_links, "k": cfg.CONF.sc.k,
                      "rest_port": cfg.CONF.wsapi_port}))

manager.main = parse_only
for argv in json.loads(sys.argv[1]):
    cfg.CONF.set_default("app", [])  # undo the previous case's default
    cfg.CONF.set_default("observe_links", False)
    cli_sc.main(argv)
"""


def test_ryu_sees_the_sc_defaults_and_the_users_flags(tmp_path):
    path = tmp_path / "sc.conf"
    path.write_text(GOOD)
    cases = [
        [],
        ["ryu.app.ofctl_rest", "my.app"],
        ["--noobserve-links"],
        ["--app-lists", "ryu.controller.ofp_handler"],
        ["--config-file", str(path)],
        ["--config-file", str(path), "--wsapi-port", "8181"],
    ]
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    seen = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert seen == [
        {"apps": ["sc_app.app"], "observe_links": True, "k": 5, "rest_port": 8080},
        {"apps": ["ryu.app.ofctl_rest", "my.app"], "observe_links": True, "k": 5,
         "rest_port": 8080},
        {"apps": ["sc_app.app"], "observe_links": False, "k": 5, "rest_port": 8080},
        {"apps": ["ryu.controller.ofp_handler"], "observe_links": True, "k": 5,
         "rest_port": 8080},
        {"apps": ["sc_app.app"], "observe_links": True, "k": 7, "rest_port": 9999},
        {"apps": ["sc_app.app"], "observe_links": True, "k": 7, "rest_port": 8181},
    ]


def test_cso_sc_help_imports_ryu_with_the_eventlet_fix():
    result = subprocess.run([os.path.join(BIN, "cso"), "sc", "--help-ryu"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: cso sc ")
    assert "--observe-links" in result.stdout and "--wsapi-port" in result.stdout


def start_sc(port: int, app: str = "ryu.topology.switches") -> subprocess.Popen:
    """``cso sc APP`` on OpenFlow port ``port`` (and no REST), once it listens."""
    argv = [os.path.join(BIN, "cso"), "sc", app, "--ofp-listen-host", "127.0.0.1",
            "--ofp-tcp-listen-port", str(port)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_second_sc_on_the_same_port_fails_instead_of_sharing_it():
    port = free_port()
    first = start_sc(port)
    try:
        second = subprocess.run(first.args, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert "cso sc: cannot listen on ('127.0.0.1', %d): Address already in use" % port \
            in second.stderr
        assert first.poll() is None
    finally:
        first.kill()
        first.communicate()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_sc_cleanly_even_with_no_switch(signum):
    # ryu.topology.switches alone used to hang on stop with no switch connected.
    process = start_sc(free_port())
    process.send_signal(signum)
    try:
        assert process.wait(5) == 0
    finally:
        process.kill()
        process.communicate()
