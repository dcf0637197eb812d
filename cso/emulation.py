"""Mininet emulation of a topology file: the addressing plan, the Topo builder and its lifecycle.

The plan (names, addresses, MACs, ports) is pure data computed from the topology alone, so the SC
can answer ARP and map hosts to switch ports without asking the emulation; Mininet itself is
imported only when a network is built.

Addressing (DESIGN §8), with *i* the node's index (its id when every id is a decimal number,
else its position in the file) and ``HH:LL`` the index as two hex octets:

- user host ``u<i>`` at every node: ``10.1.<i>.1/8``, MAC ``02:01:00:00:HH:LL``, switch port 1;
- DC host ``dc<i>`` at each DC node: ``10.2.<i>.1/8``, MAC ``02:02:00:00:HH:LL``, switch port 2.

Switch ``s<i>`` has the node's dpid (*i*+1 unless the file says otherwise); fibres use the ports
the topology file gives. VM aliases ``10.2.<i>.<n>`` on ``dc<i>`` share its MAC.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

from topologies.model import DC_PORT, USER_PORT, Topology

USER_NET, DC_NET = 1, 2
PREFIX_LEN = 8
STATE_FILE = "state.json"
MAX_INDEX = 255  # the index is one octet of the host's address
REQUIRED_TOOLS = ("ovs-vsctl", "mnexec", "ethtool", "ip", "ss", "sysctl")


class EmulationError(RuntimeError):
    """The emulation could not be planned, built or connected; the message says why."""


@dataclass(frozen=True)
class HostPlan:
    """One emulated host: where it is attached and how it is addressed."""

    name: str
    node: str
    kind: str  # "user" or "dc"
    ip: str
    mac: str
    switch: str
    port: int


@dataclass(frozen=True)
class SwitchPlan:
    """One emulated optical node: an OVS bridge."""

    name: str
    node: str
    dpid: int


@dataclass(frozen=True)
class FibrePlan:
    """One fibre: a veth pair between two switch ports."""

    link: str
    a: str
    a_port: int
    b: str
    b_port: int


@dataclass(frozen=True)
class Plan:
    """Everything the emulation creates for a topology, derived from the file alone."""

    topology: str
    source: str
    switches: tuple[SwitchPlan, ...]
    hosts: tuple[HostPlan, ...]
    fibres: tuple[FibrePlan, ...]

    def host(self, name: str) -> HostPlan:
        """The host called ``name``."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def interfaces(self) -> list[str]:
        """Names of the switch-side interfaces (Mininet's ``<switch>-eth<port>``)."""
        ports = [(h.switch, h.port) for h in self.hosts]
        ports += [(f.a, f.a_port) for f in self.fibres] + [(f.b, f.b_port) for f in self.fibres]
        return [f"{switch}-eth{port}" for switch, port in sorted(ports)]


def node_indices(topology: Topology) -> dict[str, int]:
    """Node id -> index used in names and addresses (see the module docstring)."""
    ids = list(topology.nodes)
    if all(re.fullmatch(r"\d+", node) for node in ids):
        indices = {node: int(node) for node in ids}
    else:
        indices = {node: position for position, node in enumerate(ids)}
    too_big = [node for node, index in indices.items() if index > MAX_INDEX]
    if too_big:
        raise EmulationError(f"{topology.source}: node index above {MAX_INDEX} for "
                             f"{too_big[:5]}: the emulation's addresses have one octet for it")
    return indices


def host_ip(net: int, index: int) -> str:
    """Address of the user (net 1) or DC (net 2) host of node ``index``."""
    return f"10.{net}.{index}.1"


def host_mac(net: int, index: int) -> str:
    """Locally administered MAC of the user (net 1) or DC (net 2) host of node ``index``."""
    return f"02:{net:02x}:00:00:{index >> 8:02x}:{index & 0xff:02x}"


def plan(topology: Topology) -> Plan:
    """The emulation's switches, hosts and fibres for ``topology``."""
    indices = node_indices(topology)
    switches, hosts = [], []
    for node in topology.nodes.values():
        i = indices[node.id]
        switches.append(SwitchPlan(f"s{i}", node.id, node.dpid))
        hosts.append(HostPlan(f"u{i}", node.id, "user", host_ip(USER_NET, i),
                              host_mac(USER_NET, i), f"s{i}", USER_PORT))
        if node.dc is not None:
            hosts.append(HostPlan(f"dc{i}", node.id, "dc", host_ip(DC_NET, i),
                                  host_mac(DC_NET, i), f"s{i}", DC_PORT))
    fibres = [FibrePlan(link.id, f"s{indices[link.a]}", link.a_port,
                        f"s{indices[link.b]}", link.b_port) for link in topology.links]
    return Plan(topology.name, topology.source, tuple(switches), tuple(hosts), tuple(fibres))


def build_topo(the_plan: Plan) -> Any:
    """A Mininet ``Topo`` with exactly the plan's names, dpids, addresses and port numbers."""
    from mininet.topo import Topo

    topo = Topo()
    for switch in the_plan.switches:
        topo.addSwitch(switch.name, dpid=f"{switch.dpid:016x}")
    for host in the_plan.hosts:
        topo.addHost(host.name, ip=f"{host.ip}/{PREFIX_LEN}", mac=host.mac)
        topo.addLink(host.name, host.switch, port2=host.port)
    for fibre in the_plan.fibres:
        topo.addLink(fibre.a, fibre.b, port1=fibre.a_port, port2=fibre.b_port)
    return topo


class Emulation:
    """A running Mininet network built from a plan, connected to a remote controller."""

    def __init__(self, the_plan: Plan, controller: tuple[str, int]):
        self.plan = the_plan
        self.controller = controller
        self.net: Any = None

    def start(self, connect_timeout: float) -> None:
        """Build the network, start the switches and wait until all reach the controller."""
        from functools import partial

        from mininet.net import Mininet
        from mininet.node import OVSSwitch, RemoteController

        missing_tools = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
        if missing_tools:
            raise EmulationError(f"missing {', '.join(missing_tools)} (Debian packages "
                                 "openvswitch-switch, mininet, ethtool, iproute2)")
        # failMode secure: nothing is forwarded until the SC programs it (the topology has loops).
        switch = partial(OVSSwitch, datapath="user", protocols="OpenFlow13", failMode="secure")
        self.net = Mininet(topo=build_topo(self.plan), switch=switch, controller=None,
                           autoSetMacs=False, build=False, waitConnected=False)
        host, port = self.controller
        self.net.addController(RemoteController("c0", ip=host, port=port))
        self.net.build()
        self._prepare_interfaces()
        self.net.start()
        missing = self._wait_connected(connect_timeout)
        if missing:
            raise EmulationError(
                f"{len(missing)} of {len(self.plan.switches)} switches not connected to the "
                f"controller at {host}:{port} after {connect_timeout:g} s: "
                f"{', '.join(missing)} (is `cso sc` running and listening there?)")

    def _prepare_interfaces(self) -> None:
        """Host settings the userspace datapath and the SC need; raises if one fails.

        TX checksum offload off: a veth hands OVS's userspace datapath TCP segments whose
        checksum the kernel has not filled in, and OVS forwards them as they are, so TCP would
        fail while ping works. IPv6 off (hosts and switch ports): no router solicitations or
        MLD reports for the SC to see.
        """
        for host in self.net.hosts:
            offload = "; ".join(f"ethtool -K {intf} tx off >/dev/null || echo FAILED {intf}"
                                for intf in host.intfNames() if intf != "lo")
            out = host.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                           "net.ipv6.conf.default.disable_ipv6=1 "
                           f"net.ipv6.conf.lo.disable_ipv6=1; {offload}")
            if "FAILED" in out:
                raise EmulationError(f"{host.name}: cannot turn TX checksum offload off: "
                                     f"{' '.join(out.split())}")
        keys = [f"net.ipv6.conf.{name}.disable_ipv6=1" for name in self.plan.interfaces()]
        subprocess.run(["sysctl", "-qw", *keys], check=False, stdout=subprocess.DEVNULL)

    def _wait_connected(self, timeout: float) -> list[str]:
        """Names of the switches still not connected after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        remaining = list(self.net.switches)
        while remaining:
            # OVSDB's is_connected lags the real connection by up to ~5 s (ovs-vswitchd
            # refreshes controller status periodically), so first count the sessions
            # ovs-vswitchd has open to the controller: one per switch means all are up.
            if self._controller_sessions() >= len(self.net.switches):
                return []
            remaining = [s for s in remaining if not s.connected()]
            if not remaining or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return [s.name for s in remaining]

    def _controller_sessions(self) -> int:
        """Established TCP sessions from ovs-vswitchd to the controller's port."""
        out = subprocess.run(["ss", "-Htnp", "state", "established",
                              f"( dport = :{self.controller[1]} )"],
                             capture_output=True, text=True, check=False).stdout
        return sum('"ovs-vswitchd"' in line for line in out.splitlines())

    def state(self) -> dict[str, Any]:
        """What tools need to reach the emulation: host pids and addresses, switch dpids."""
        hosts = {}
        for host in self.plan.hosts:
            hosts[host.name] = dict(asdict(host), pid=self.net.get(host.name).pid)
        return {
            "topology": self.plan.topology,
            "source": self.plan.source,
            "controller": "%s:%d" % self.controller,
            "pid": os.getpid(),
            "hosts": hosts,
            "switches": {s.name: {"dpid": s.dpid, "node": s.node} for s in self.plan.switches},
            "fibres": [asdict(f) for f in self.plan.fibres],
        }

    def stop(self) -> None:
        """Stop Mininet's nodes and links (`cleanup` removes whatever this leaves behind)."""
        if self.net is not None:
            net, self.net = self.net, None
            net.stop()


def write_state(run_dir: str, state: dict[str, Any]) -> str:
    """Write the state file atomically (readers never see half a file); returns its path."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, STATE_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return path


def read_state(run_dir: str) -> dict[str, Any]:
    """The state file of a running emulation; EmulationError when there is none."""
    path = os.path.join(run_dir, STATE_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise EmulationError(f"{path}: no emulation state (is `cso net` running with "
                             f"--run-dir {run_dir}?)") from None


def cleanup(the_plan: Plan, log: Optional[Callable[[str], None]] = None) -> None:
    """Remove this plan's bridges, interfaces and node shells, and nothing else (unlike mn -c)."""
    say = log or (lambda _message: None)
    bridges = [s.name for s in the_plan.switches]
    command = ["ovs-vsctl", "--timeout=10"]
    for bridge in bridges:
        command += ["--", "--if-exists", "del-br", bridge]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    present = set(_links())
    for name in the_plan.interfaces() + bridges:
        if name in present:
            say(f"deleting leftover interface {name}")
            subprocess.run(["ip", "link", "del", name], check=False, stderr=subprocess.DEVNULL)
    names = bridges + [h.name for h in the_plan.hosts]
    for pid in _node_shells(names):
        say(f"killing leftover node shell {pid}")
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def _links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=False).stdout
    # "7: s1-eth3@if8: <...>" -> "s1-eth3"
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def _node_shells(names: list[str]) -> list[int]:
    """Pids of Mininet node shells (``bash ... mininet:<name>``) for the given node names."""
    wanted = {f"mininet:{name}".encode() for name in names}
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().split(b"\0")
        except OSError:
            continue
        if wanted.intersection(args):
            pids.append(int(entry))
    return pids
