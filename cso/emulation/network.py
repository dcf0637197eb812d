"""Mininet emulation of a topology file: the addressing plan, the Topo builder and its lifecycle.

The plan (names, addresses, MACs, ports) is pure data computed from the topology alone, so the SC
can answer ARP and map hosts to switch ports without asking the emulation; Mininet itself is
imported only when a network is built.

Addresses and MACs come from the address plan (`topologies.addressing`), with *i* the node's
site index: user host ``u<i>`` at every node on switch port 1, DC host ``dc<i>`` at each DC
node on switch port 2, both with /8 data interfaces. Switch ``s<i>`` has the node's dpid (*i*+1
unless the file says otherwise); fibres use the ports the topology file gives.

Management network (DC agents; never through the SC or the optical data plane): the OVS bridge
``cso-mgmt`` (userspace datapath, fail mode standalone, i.e. a plain learning switch, no
controller) joins ``dc<i>-eth1`` = ``10.255.0.<i+1>/16`` on every DC host and ``cso-mgmt0`` =
``10.255.255.254/16`` in the root namespace, where the AC runs. The agent of ``dc<i>`` listens
on ``10.255.0.<i+1>:8100``.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

from topologies.addressing import (DC_NET, HOST_PREFIX_LEN, MAX_INDEX, USER_NET, host_ip,
                                   host_mac, mgmt_ip)
from topologies.model import DC_PORT, USER_PORT, Topology

STATE_FILE = "state.json"
REQUIRED_TOOLS = ("ovs-vsctl", "mnexec", "ethtool", "ip", "ss", "sysctl")

MGMT_BRIDGE = "cso-mgmt"
MGMT_ROOT_IF = "cso-mgmt0"  # the root namespace's address on the management network
MGMT_ROOT_PEER = "cso-mgmt-root"  # its peer, a port of the bridge
MGMT_ROOT_IP = "10.255.255.254"
MGMT_PREFIX_LEN = 16
MGMT_HOST_IF = "eth1"  # dc<i>-eth1; eth0 is the data interface
AGENT_PORT = 8100
AGENTS_DIR = "agents"  # under the run dir: one state dir per agent


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
class AgentPlan:
    """The management side of one DC host: its address, interfaces and agent."""

    dc: str  # the data centre's id in the topology file
    host: str
    mgmt_ip: str

    @property
    def host_if(self) -> str:
        """The host's management interface."""
        return f"{self.host}-{MGMT_HOST_IF}"

    @property
    def bridge_port(self) -> str:
        """The root-namespace end of the host's veth, a port of the management bridge."""
        return f"{MGMT_BRIDGE}-{self.host}"

    @property
    def data_if(self) -> str:
        """The host's data interface (VM aliases go there)."""
        return f"{self.host}-eth0"

    def url(self, port: int = AGENT_PORT) -> str:
        """Base URL of the agent's management API."""
        return f"http://{self.mgmt_ip}:{port}"


@dataclass(frozen=True)
class Plan:
    """Everything the emulation creates for a topology, derived from the file alone."""

    topology: str
    source: str
    switches: tuple[SwitchPlan, ...]
    hosts: tuple[HostPlan, ...]
    fibres: tuple[FibrePlan, ...]
    agents: tuple[AgentPlan, ...] = ()

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

    def management_interfaces(self) -> list[str]:
        """Names of the management network's interfaces in the root namespace."""
        if not self.agents:
            return []
        return [MGMT_ROOT_IF, MGMT_ROOT_PEER] + [agent.bridge_port for agent in self.agents]


def plan(topology: Topology) -> Plan:
    """The emulation's switches, hosts and fibres for ``topology``."""
    addresses = topology.addresses
    if addresses.uncovered:
        raise EmulationError(f"{topology.source}: node index above {MAX_INDEX} for "
                             f"{list(addresses.uncovered[:5])}: the emulation's addresses have "
                             "one octet for it")
    indices = addresses.indices
    switches, hosts, agents = [], [], []
    for node in topology.nodes.values():
        i = indices[node.id]
        switches.append(SwitchPlan(f"s{i}", node.id, node.dpid))
        hosts.append(HostPlan(f"u{i}", node.id, "user", host_ip(USER_NET, i),
                              host_mac(USER_NET, i), f"s{i}", USER_PORT))
        if node.dc is not None:
            hosts.append(HostPlan(f"dc{i}", node.id, "dc", host_ip(DC_NET, i),
                                  host_mac(DC_NET, i), f"s{i}", DC_PORT))
            agents.append(AgentPlan(node.dc.id, f"dc{i}", mgmt_ip(i)))
    fibres = [FibrePlan(link.id, f"s{indices[link.a]}", link.a_port,
                        f"s{indices[link.b]}", link.b_port) for link in topology.links]
    return Plan(topology.name, topology.source, tuple(switches), tuple(hosts), tuple(fibres),
                tuple(agents))


def build_topo(the_plan: Plan) -> Any:
    """A Mininet ``Topo`` with exactly the plan's names, dpids, addresses and port numbers."""
    from mininet.topo import Topo

    topo = Topo()
    for switch in the_plan.switches:
        topo.addSwitch(switch.name, dpid=f"{switch.dpid:016x}")
    for host in the_plan.hosts:
        topo.addHost(host.name, ip=f"{host.ip}/{HOST_PREFIX_LEN}", mac=host.mac)
        topo.addLink(host.name, host.switch, port2=host.port)
    for fibre in the_plan.fibres:
        topo.addLink(fibre.a, fibre.b, port1=fibre.a_port, port2=fibre.b_port)
    return topo


@dataclass(frozen=True)
class AgentOptions:
    """How the emulation runs the DC agents (`cso agent`, one per DC host)."""

    run_dir: str  # logs agent-<dc>.log and state dirs agents/<dc>/ go here
    port: int = AGENT_PORT
    token: Optional[str] = None
    timeout: float = 30.0  # seconds for every agent to answer


class Emulation:
    """A running Mininet network built from a plan, connected to a remote controller."""

    def __init__(self, the_plan: Plan, controller: tuple[str, int],
                 agents: Optional[AgentOptions] = None):
        self.plan = the_plan
        self.controller = controller
        self.agent_options = agents if the_plan.agents else None
        self.net: Any = None
        self.agents: Optional[Agents] = None

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

        class QuietRemoteController(RemoteController):
            """Mininet's RemoteController without its probe of the controller's port.

            The probe (``echo A | telnet``) decodes whatever the controller sends as UTF-8:
            an OpenFlow HELLO whose random xid is not UTF-8 crashed ``cso net`` now and
            then. Whether the switches reach the controller is `_wait_connected`'s check.
            """

            def checkListening(self) -> None:  # noqa: N802 - Mininet's name
                """Nothing: see the class docstring."""

        self.net.addController(QuietRemoteController("c0", ip=host, port=port))
        self.net.build()
        self._prepare_interfaces()
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
                f"controller at {host}:{port} after {connect_timeout:g} s: "
                f"{', '.join(missing)} (is `cso sc` running and listening there?)")
        if self.agents is not None:
            self.agents.wait_ready()

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


def build_management(the_plan: Plan, pids: dict[str, int]) -> None:
    """The management network: bridge, a veth into each DC host, one into the root namespace.

    ``pids``: DC host name -> pid of a process in its network namespace.
    """
    if not the_plan.agents:
        return
    vsctl = ["ovs-vsctl", "--timeout=10", "--", "--may-exist", "add-br", MGMT_BRIDGE,
             "--", "set", "Bridge", MGMT_BRIDGE, "datapath_type=netdev", "fail_mode=standalone",
             "other_config:disable-in-band=true"]
    _must(["ip", "link", "add", MGMT_ROOT_PEER, "type", "veth", "peer", "name", MGMT_ROOT_IF])
    for agent in the_plan.agents:
        _must(["ip", "link", "add", agent.bridge_port, "type", "veth", "peer", "name",
               agent.host_if, "netns", str(pids[agent.host])])
    for port in [MGMT_ROOT_PEER] + [agent.bridge_port for agent in the_plan.agents]:
        vsctl += ["--", "add-port", MGMT_BRIDGE, port]
    _must(vsctl)
    root_side = the_plan.management_interfaces()
    subprocess.run(["sysctl", "-qw", *(f"net.ipv6.conf.{name}.disable_ipv6=1"
                                       for name in root_side)],
                   check=False, stdout=subprocess.DEVNULL)
    for name in root_side:
        _must(["ip", "link", "set", name, "up"])
    _must(["ip", "addr", "add", f"{MGMT_ROOT_IP}/{MGMT_PREFIX_LEN}", "dev", MGMT_ROOT_IF])
    # TX checksum offload off where the kernel sends into the userspace datapath (see
    # Emulation._prepare_interfaces): the root end here, each host end below.
    _must(["ethtool", "-K", MGMT_ROOT_IF, "tx", "off"])
    for agent in the_plan.agents:
        inside = ["mnexec", "-a", str(pids[agent.host])]
        _must([*inside, "ip", "addr", "add", f"{agent.mgmt_ip}/{MGMT_PREFIX_LEN}", "dev",
               agent.host_if])
        _must([*inside, "ip", "link", "set", agent.host_if, "up"])
        _must([*inside, "ethtool", "-K", agent.host_if, "tx", "off"])


def remove_management(the_plan: Plan) -> None:
    """Delete the management bridge and the root namespace's interface (the hosts' ends go
    with their namespaces)."""
    if the_plan.agents:
        subprocess.run(["ovs-vsctl", "--timeout=10", "--", "--if-exists", "del-br", MGMT_BRIDGE],
                       check=False, stdout=subprocess.DEVNULL)
        for name in the_plan.management_interfaces():
            subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def _must(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise EmulationError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout}")


_PR_SET_PDEATHSIG = 1


def _death_signal(sig: int) -> Callable[[], None]:
    """A preexec_fn: the child gets ``sig`` when `cso net` dies, however it dies."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, only called after

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, sig)

    return arm


class Agents:
    """The DC agents (`cso agent`) of an emulation, one per DC host, in the hosts' namespaces."""

    def __init__(self, the_plan: Plan, pids: dict[str, int], options: AgentOptions):
        self.plan = the_plan
        self.pids = pids
        self.options = options
        self.processes: dict[str, subprocess.Popen] = {}

    def urls(self) -> dict[str, str]:
        """DC id -> base URL of its agent's management API."""
        return {agent.dc: agent.url(self.options.port) for agent in self.plan.agents}

    def log_path(self, dc: str) -> str:
        """The agent's log file."""
        return os.path.join(self.options.run_dir, f"agent-{dc}.log")

    def start(self) -> None:
        """Start every agent with an empty state dir: a new emulation has new DCs."""
        env = {key: value for key, value in os.environ.items() if key != "CSO_AGENT_TOKEN"}
        if self.options.token:
            env["CSO_AGENT_TOKEN"] = self.options.token  # not in argv: ps shows argv
        die_with_us = _death_signal(signal.SIGTERM)
        for agent in self.plan.agents:
            state_dir = os.path.join(self.options.run_dir, AGENTS_DIR, agent.dc)
            shutil.rmtree(state_dir, ignore_errors=True)
            os.makedirs(state_dir)
            argv = ["mnexec", "-a", str(self.pids[agent.host]), sys.executable, "-m", "cso",
                    "agent", "--dc", agent.dc, "--topo", os.path.abspath(self.plan.source),
                    "--listen", f"{agent.mgmt_ip}:{self.options.port}",
                    "--data-if", agent.data_if, "--state-dir", state_dir]
            with open(self.log_path(agent.dc), "ab") as log:
                self.processes[agent.dc] = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, start_new_session=True, preexec_fn=die_with_us)

    def wait_ready(self) -> None:
        """Wait until every agent answers from the root namespace; EmulationError if not."""
        deadline = time.monotonic() + self.options.timeout
        pending = {agent.dc: agent.url(self.options.port) for agent in self.plan.agents}
        last_error: dict[str, str] = {}
        while pending:
            for dc, url in list(pending.items()):
                process = self.processes[dc]
                if process.poll() is not None:
                    raise EmulationError(f"the agent of {dc} exited (code {process.returncode})"
                                         f"; log {self.log_path(dc)}:\n{_tail(self.log_path(dc))}")
                error = self._health(url)
                if error is None:
                    del pending[dc]
                else:
                    last_error[dc] = error
            if not pending:
                return
            if time.monotonic() > deadline:
                raise EmulationError(
                    f"agents not answering over the management network after "
                    f"{self.options.timeout:g} s: " + "; ".join(
                        f"{dc} at {url}: {last_error.get(dc, '?')}"
                        for dc, url in pending.items()))
            time.sleep(0.2)

    def _health(self, url: str) -> Optional[str]:
        """None when the agent answers its health check, else why not."""
        headers = {"Authorization": f"Bearer {self.options.token}"} if self.options.token \
            else {}
        req = urllib.request.Request(f"{url}/agent/v1/health", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=1.0) as answer:
                answer.read()
                return None
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            return str(getattr(exc, "reason", None) or exc)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM every agent, then SIGKILL those still running after ``grace`` seconds."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


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
