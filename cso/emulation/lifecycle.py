"""The emulation's lifecycle: Mininet started on a plan and connected to the SC, the state file
tools read, and the cleanup of whatever a run left.

`Emulation` builds the plan's Topo (`cso.emulation.network`), starts the switches, the
management network and the DC agents (`cso.emulation.agents`), and waits until every switch
reaches the controller; `cleanup` removes a plan's bridges, interfaces and node shells, and
nothing else (unlike ``mn -c``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict
from typing import Any, Callable, Iterator, Mapping, Optional

from cso.emulation.agents import AgentOptions, Agents
from cso.emulation.controllers import controller_name, distinct
from cso.emulation.network import (MGMT_BRIDGE, MGMT_PREFIX_LEN, MGMT_ROOT_IF, MGMT_ROOT_IP,
                                   MGMT_ROOT_PEER, EmulationError, Plan, build_management,
                                   build_topo, remove_management)

STATE_FILE = "state.json"
REQUIRED_TOOLS = ("ovs-vsctl", "mnexec", "ethtool", "ip", "ss", "sysctl")


class Emulation:
    """A running Mininet network built from a plan, connected to a remote controller."""

    def __init__(self, the_plan: Plan, controller: tuple[str, int],
                 agents: Optional[AgentOptions] = None,
                 switch_controllers: Optional[Mapping[str, tuple[str, int]]] = None):
        self.plan = the_plan
        self.controller = controller
        #: Switch name -> its own controller (one SC per domain); None: ``controller`` for all.
        self.switch_controllers = dict(switch_controllers) if switch_controllers else None
        #: Every controller the switches connect to.
        self.controllers = distinct(list(self.switch_controllers.values())) \
            if self.switch_controllers else [controller]
        self.agent_options = agents if the_plan.agents else None
        self.net: Any = None
        self.agents: Optional[Agents] = None

    def start(self, connect_timeout: float) -> None:
        """Build the network, start the switches and wait until all reach the controller."""
        from functools import partial

        from mininet.net import Mininet
        from mininet.node import OVSSwitch

        from cso.emulation.domain_switch import ControllerSwitch
        from cso.emulation.nodes import QuietRemoteController

        missing_tools = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
        if missing_tools:
            raise EmulationError(f"missing {', '.join(missing_tools)} (Debian packages "
                                 "openvswitch-switch, mininet, ethtool, iproute2)")
        # failMode secure: nothing is forwarded until the SC programs it (the topology has loops).
        # (The OpenFlow version is the Topo's.)
        switch = partial(OVSSwitch, datapath="user", failMode="secure")
        if self.switch_controllers:
            addresses = list(self.switch_controllers.values())
            switch = partial(ControllerSwitch, datapath="user", failMode="secure",
                             controller_of={name: controller_name(address, addresses)
                                            for name, address in self.switch_controllers.items()})
        self.net = Mininet(topo=build_topo(self.plan), switch=switch, controller=None,
                           autoSetMacs=False, build=False, waitConnected=False)
        # Whether the switches reach the controller is _wait_connected's check, not a probe.
        for index, (host, port) in enumerate(self.controllers):
            self.net.addController(QuietRemoteController(f"c{index}", ip=host, port=port))
        self.net.build()  # the hosts set themselves up (EmulatedHost.config)
        self._quiet_switch_ports()
        self.net.start()
        pids = {agent.host: self.net.get(agent.host).pid for agent in self.plan.agents}
        build_management(self.plan, pids)
        if self.agent_options is not None:
            # Started before waiting for the controller: both take a few seconds.
            self.agents = Agents(self.plan, pids, self.agent_options)
            self.agents.start()
        missing = self._wait_connected(connect_timeout)
        if missing:
            raise EmulationError(
                f"{len(missing)} of {len(self.plan.switches)} switches not connected to the "
                f"controller at {self.where()} after {connect_timeout:g} s: "
                f"{', '.join(missing)} (is `cso sc` running and listening there?)")
        if self.agents is not None:
            self.agents.wait_ready()

    def _quiet_switch_ports(self) -> None:
        """IPv6 off on the switches' ports too: no router solicitations or MLD reports for the
        SC to see (the hosts' side is `EmulatedHost`'s)."""
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

    def where(self) -> str:
        """The controller(s) as HOST:PORT, comma-separated."""
        return ",".join("%s:%d" % address for address in self.controllers)

    def _controller_sessions(self) -> int:
        """Established TCP sessions from ovs-vswitchd to the controllers' ports."""
        ports = " or ".join(f"dport = :{port}"
                            for port in sorted({port for _host, port in self.controllers}))
        out = subprocess.run(["ss", "-Htnp", "state", "established", f"( {ports} )"],
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
            "controller": self.where(),
            "pid": os.getpid(),
            "hosts": hosts,
            "switches": {s.name: {"dpid": s.dpid, "node": s.node,
                                  "controller": "%s:%d" % (self.switch_controllers or {}).get(
                                      s.name, self.controller)}
                         for s in self.plan.switches},
            "fibres": [asdict(f) for f in self.plan.fibres],
            "management": {
                "bridge": MGMT_BRIDGE if self.plan.agents else None,
                "root": f"{MGMT_ROOT_IP}/{MGMT_PREFIX_LEN}" if self.plan.agents else None,
                "hosts": {a.host: f"{a.mgmt_ip}/{MGMT_PREFIX_LEN}" for a in self.plan.agents},
            },
            "agents": {} if self.agents is None else self.agents.urls(),
        }

    def stop(self) -> None:
        """Stop the agents, then Mininet's nodes and links (`cleanup` removes what is left)."""
        if self.agents is not None:
            agents, self.agents = self.agents, None
            agents.stop()
        remove_management(self.plan)
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
    bridges = [s.name for s in the_plan.switches] + [MGMT_BRIDGE]
    command = ["ovs-vsctl", "--timeout=10"]
    for bridge in bridges:
        command += ["--", "--if-exists", "del-br", bridge]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    present = set(_links())
    # The management names are fixed, so they go whatever the plan (another topology's run).
    management = [MGMT_ROOT_IF, MGMT_ROOT_PEER] + [
        name for name in present if name.startswith(f"{MGMT_BRIDGE}-")]
    for name in the_plan.interfaces() + sorted(set(management)) + bridges:
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
    return [pid for pid, argv in command_lines() if wanted.intersection(argv)]


def command_lines() -> Iterator[tuple[int, list[bytes]]]:
    """(pid, argv) of every process (argv as the kernel keeps it: bytes, one per argument)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        yield int(entry), argv
