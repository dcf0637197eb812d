"""The emulation's network: the plan of a topology file, its Mininet Topo and the management
network.

The plan (names, addresses, MACs, ports) is pure data computed from the topology alone, so the SC
can answer ARP and map hosts to switch ports without asking the emulation; Mininet itself is
imported only when a network is built. What runs on the network (the Mininet lifecycle, the
state file, the DC agents) is in `cso.emulation.lifecycle` and `cso.emulation.agents`.

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

import subprocess
from dataclasses import dataclass
from typing import Any

from topologies.addressing import (DC_NET, HOST_PREFIX_LEN, MAX_INDEX, USER_NET, host_ip,
                                   host_mac, mgmt_ip)
from topologies.model import DC_PORT, USER_PORT, Topology

MGMT_BRIDGE = "cso-mgmt"
MGMT_ROOT_IF = "cso-mgmt0"  # the root namespace's address on the management network
MGMT_ROOT_PEER = "cso-mgmt-root"  # its peer, a port of the bridge
MGMT_ROOT_IP = "10.255.255.254"
MGMT_PREFIX_LEN = 16
MGMT_HOST_IF = "eth1"  # dc<i>-eth1; eth0 is the data interface
AGENT_PORT = 8100
OPENFLOW_VERSION = "OpenFlow13"  # OVS's name of the only version the SC speaks


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
    """A Mininet ``Topo`` with exactly the plan's names, dpids, addresses and port numbers.

    Switches speak OpenFlow 1.3 only (the SC's version); hosts are of class
    `cso.emulation.nodes.EmulatedHost`. The one builder of `cso net` and of
    ``mn --custom mininet/cso_topos.py``.
    """
    from mininet.topo import Topo

    from cso.emulation.nodes import EmulatedHost

    topo = Topo()
    for switch in the_plan.switches:
        topo.addSwitch(switch.name, dpid=f"{switch.dpid:016x}", protocols=OPENFLOW_VERSION)
    for host in the_plan.hosts:
        topo.addHost(host.name, cls=EmulatedHost, ip=f"{host.ip}/{HOST_PREFIX_LEN}",
                     mac=host.mac)
        topo.addLink(host.name, host.switch, port2=host.port)
    for fibre in the_plan.fibres:
        topo.addLink(fibre.a, fibre.b, port1=fibre.a_port, port2=fibre.b_port)
    return topo


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
    # nodes.EmulatedHost): the root end here, each host end below.
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
