"""Mininet's own ``mn --custom mininet/cso_topos.py`` against a real ``cso sc``.

The command of the custom file's docstring, with the SC's port: the switches must reach the
SC, LLDP must confirm every fibre, and bridges, ports, hosts and their settings must be what
`cso net`'s plan says. ``mn`` runs a ``--post`` script that writes its view of the network and
then waits for the test, so the checks run while the network is up. Whatever happens, ``mn``
is stopped by its pid and the topology's names are removed (`lifecycle.cleanup`, not
``mn -c``, which would remove every bridge and kill every ``ping`` on the machine).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
from typing import Any, Iterator

import pytest

from cso.emulation import lab, lifecycle, network
from topologies.loader import load

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CUSTOM = os.path.join(ROOT, "mininet", "cso_topos.py")
PLAN = network.plan(load("nsfnet"))
#: The venv's mn (pip's mininet) and, when installed, Debian's (the system's Python).
RUNNERS = [os.path.join(lab.BIN_DIR, "mn")] + (["/usr/bin/mn"] if os.path.exists("/usr/bin/mn")
                                               else [])

# Evaluated by mn's CLI (`py`): net is the Mininet object; one line, the CLI's syntax.
SNAPSHOT = ("py __import__('json').dump({"
            "'switches': {s.name: s.dpid for s in net.switches}, "
            "'connected': {s.name: s.connected() for s in net.switches}, "
            "'hosts': {h.name: [h.pid, h.IP(), h.MAC(), h.defaultIntf().name] "
            "for h in net.hosts}}, open(PATH, 'w'))")


@contextlib.contextmanager
def emulation_lock() -> Iterator[None]:
    """`cso net`'s machine lock, so no `cso net` starts beside this ``mn``."""
    os.makedirs(os.path.dirname(lab.NET_LOCK), exist_ok=True)
    with open(lab.NET_LOCK, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def host_exec(pid: int, *argv: str) -> str:
    """Output of ``argv`` run in a host's namespaces."""
    return subprocess.run(["mnexec", "-a", str(pid), *argv], capture_output=True, text=True,
                          check=True, timeout=10).stdout


def switch_ports(name: str) -> dict[int, str]:
    """OpenFlow port number -> interface of a switch (its LOCAL port left out)."""
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "show", name], capture_output=True,
                         text=True, check=True).stdout
    return {int(num): intf for num, intf in re.findall(r"^\s*(\d+)\((\S+)\):", out, re.M)}


def bridge(name: str) -> list[str]:
    """Datapath type, fail mode, protocols and dpid of an OVS bridge."""
    return subprocess.run(["ovs-vsctl", "get", "Bridge", name, "datapath_type", "fail_mode",
                           "protocols", "other_config:datapath-id"],
                          capture_output=True, text=True, check=True).stdout.split()


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to mn's process group (never SIGINT: mn answers it with mn -c)."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)


@pytest.fixture(params=RUNNERS, ids=lambda path: path.replace("/", "_").strip("_"))
def mn_network(request: pytest.FixtureRequest, sc: lab.ScRun,
               test_log_dir: str) -> Iterator[dict[str, Any]]:
    """``mn --custom`` running NSFNET on ``sc``; its snapshot, while the test runs."""
    os.makedirs(test_log_dir, exist_ok=True)
    snapshot, release = (os.path.join(test_log_dir, name) for name in ("net.json", "release"))
    script = os.path.join(test_log_dir, "post.mn")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write("py net.waitConnected()\n")  # mn --wait is Debian's, not pip's 2.3.0.dev6
        handle.write(SNAPSHOT.replace("PATH", repr(snapshot)) + "\n")
        handle.write(f"sh while [ ! -e {release} ]; do sleep 0.1; done\n")
    argv = [request.param, "--custom", CUSTOM, "--topo", "nsfnet",
            "--controller", f"remote,ip=127.0.0.1,port={sc.ofp_port}",
            "--switch", "ovs,datapath=user", "--test", "build", "--post", script]
    log_path = os.path.join(test_log_dir, "mn.log")
    with emulation_lock(), open(log_path, "wb") as log:
        lifecycle.cleanup(PLAN)  # a crashed run's leftovers would fail mn on "File exists"
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, cwd="/")
        try:
            def written() -> bool:
                assert process.poll() is None, f"mn exited ({process.returncode}): {log_path}"
                return os.path.exists(snapshot) and os.path.getsize(snapshot) > 0

            lab.wait_for("mn's network and its snapshot", written, timeout=180, step=0.2)
            with open(snapshot, encoding="utf-8") as handle:
                seen = json.load(handle)
            yield seen
            open(release, "w").close()
            process.wait(60)
            assert process.returncode == 0, f"mn exited {process.returncode}: {log_path}"
        finally:
            open(release, "w").close()
            stop(process)
            lifecycle.cleanup(PLAN)
    left = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout
    assert not set(left.split()) & {s.name for s in PLAN.switches}, "bridges left behind"


def test_mn_builds_cso_nets_network_and_it_reaches_the_sc(mn_network, sc):
    assert mn_network["switches"] == {s.name: f"{s.dpid:016x}" for s in PLAN.switches}
    assert all(mn_network["connected"].values())
    # The SC sees every switch and, over LLDP, every fibre of the topology file.
    lab.wait_for("every switch connected at the SC", lambda: all(
        s["connected"] for s in sc.request("GET", "/smi/v1/switches").json["switches"]),
        timeout=30)
    assert len(sc.wait_discovered(timeout=60)) == len(PLAN.fibres)
    for switch in PLAN.switches:
        assert bridge(switch.name) == ["netdev", "secure", "[OpenFlow13]",
                                       f'"{switch.dpid:016x}"'], switch.name
    expected_ports: dict[str, dict[int, str]] = {s.name: {} for s in PLAN.switches}
    ends = [(h.switch, h.port) for h in PLAN.hosts] + [
        end for f in PLAN.fibres for end in ((f.a, f.a_port), (f.b, f.b_port))]
    for name, port in ends:
        expected_ports[name][port] = f"{name}-eth{port}"
    for name, ports in expected_ports.items():
        assert switch_ports(name) == ports, name
    for host in PLAN.hosts:
        pid, ip, mac, intf = mn_network["hosts"][host.name]
        assert (ip, mac, intf) == (host.ip, host.mac, f"{host.name}-eth0"), host.name
        assert "tx-checksumming: off" in host_exec(pid, "ethtool", "-k", intf), host.name
        assert host_exec(pid, "sysctl", "-n", "net.ipv6.conf.all.disable_ipv6").strip() == "1"
