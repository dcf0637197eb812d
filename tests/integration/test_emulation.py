"""The NSFNET emulation (``cso net``) against a real ``cso sc`` running a stock Ryu app.

Expectations come from the topology file and the address table of docs/operator-guide.md
directly, not from `cso.emulation.network`, so the emulation's own plan is checked too. The
stock app is ``ryu.app.ofctl_rest``: it installs no flows (so the switches' fail-secure mode is
what decides forwarding) and its REST API lists the datapaths the controller sees.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from topologies.loader import load

pytestmark = pytest.mark.integration

TOPOLOGY = load("nsfnet")
COOKIE = "0x7e57"


@pytest.fixture(scope="module")
def sc_apps() -> list[str]:
    return ["ryu.app.ofctl_rest"]


def expected_hosts() -> dict[str, tuple[str, str, str, int]]:
    """Host name -> (node, ip, mac, switch port), from the operator guide and the topology file."""
    hosts = {}
    for node in TOPOLOGY.nodes.values():
        i = int(node.id)
        hosts[f"u{i}"] = (node.id, f"10.1.{i}.1", f"02:01:00:00:00:{i:02x}", 1)
        if node.dc is not None:
            hosts[f"dc{i}"] = (node.id, f"10.2.{i}.1", f"02:02:00:00:00:{i:02x}", 2)
    return hosts


def expected_ports() -> dict[str, dict[int, str]]:
    """Switch -> {OpenFlow port: interface}, host ports 1 and 2 plus the file's fibre ports."""
    ports: dict[str, dict[int, str]] = {f"s{n}": {} for n in TOPOLOGY.nodes}
    for name, (node, _ip, _mac, port) in expected_hosts().items():
        ports[f"s{node}"][port] = f"s{node}-eth{port}"
    for link in TOPOLOGY.links:
        for node in (link.a, link.b):
            ports[f"s{node}"][link.port(node)] = f"s{node}-eth{link.port(node)}"
    return ports


def test_every_switch_connects_with_its_dpid(net, sc):
    assert {name: s["dpid"] for name, s in net.switches.items()} == {
        f"s{n.id}": int(n.id) + 1 for n in TOPOLOGY.nodes.values()}
    assert sorted(sc.request("GET", "/stats/switches").json) == list(range(1, 15))


def test_bridges_are_userspace_fail_secure_openflow13(net):
    for name, switch in net.switches.items():
        out = subprocess.run(
            ["ovs-vsctl", "get", "Bridge", name, "datapath_type", "fail_mode", "protocols",
             "other_config:datapath-id"], capture_output=True, text=True, check=True).stdout
        assert out.split() == ["netdev", "secure", "[OpenFlow13]",
                               f'"{switch["dpid"]:016x}"'], name


def test_switch_ports_match_the_topology_file(net):
    for switch, ports in expected_ports().items():
        assert net.switch_ports(switch) == ports, switch


def test_fibres_join_the_ports_the_file_names(net):
    for link in TOPOLOGY.links:
        a = f"s{link.a}-eth{link.a_port}"
        b = f"s{link.b}-eth{link.b_port}"
        out = subprocess.run(["ip", "-o", "link", "show", a], capture_output=True, text=True,
                             check=True).stdout
        assert f"{a}@{b}:" in out, link.id  # a veth pair: "N: a@b: <...>"


def test_hosts_have_the_documented_addresses_and_macs(net):
    hosts = expected_hosts()
    assert sorted(net.hosts) == sorted(hosts)
    for name, (node, ip, mac, port) in hosts.items():
        state = net.hosts[name]
        assert (state["node"], state["ip"], state["mac"], state["port"]) == (node, ip, mac, port)
        intf = f"{name}-eth0"
        addr = net.exec(name, "ip", "-o", "-4", "addr", "show", intf, check=True).stdout
        assert f"inet {ip}/8 " in addr, name
        link = net.exec(name, "ip", "-o", "link", "show", intf, check=True).stdout
        assert f"link/ether {mac} " in link, name


def test_hosts_have_no_ipv6_and_no_tx_checksum_offload(net):
    for name in net.hosts:
        ipv6 = net.exec(name, "sysctl", "-n", "net.ipv6.conf.all.disable_ipv6").stdout
        assert ipv6.strip() == "1", name
        features = net.exec(name, "ethtool", "-k", f"{name}-eth0", check=True).stdout
        assert re.search(r"^tx-checksumming: off", features, re.M), name


def test_nothing_is_forwarded_without_flows(net):
    for switch in net.switches:
        assert net.dump_flows(switch) == [], switch
    assert not net.ping("u0", "u1")      # neighbours over one fibre
    assert not net.ping("u1", "dc1")     # two hosts on the same switch


def test_flows_by_hand_carry_ping_and_tcp_then_nothing_once_removed(net):
    # u3 (s3 port 1) <-> fibre 3-4 <-> u4 (s4 port 1): what a lightpath does, minus the VLAN.
    link = TOPOLOGY.link_between("3", "4")
    hops = [("s3", 1, link.port("3")), ("s4", link.port("4"), 1)]
    try:
        for switch, a, b in hops:
            for in_port, out_port in ((a, b), (b, a)):
                subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flow", switch,
                                f"cookie={COOKIE},in_port={in_port},actions=output:{out_port}"],
                               check=True)
        assert net.ping("u3", "u4", count=2)
        transfer = net.tcp_transfer("u3", "u4", nbytes=2_000_000)
        assert transfer.ok, transfer.error
        assert transfer.received_bytes == 2_000_000
    finally:
        for switch, _a, _b in hops:
            subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", switch,
                            f"cookie={COOKIE}/-1"], check=True)
    assert net.dump_flows("s3") == []
    assert not net.ping("u3", "u4")


def test_cso_net_exec_runs_in_the_host(net):
    cso = [net.process.argv[0], "net", "exec", "--run-dir", net.run_dir]
    out = subprocess.run([*cso, "dc4", "--", "ip", "-o", "-4", "addr"], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert "inet 10.2.4.1/8" in out.stdout
    unknown = subprocess.run([*cso, "u99", "--", "true"], capture_output=True, text=True,
                             timeout=20)
    assert unknown.returncode == 1
    assert "no host 'u99'" in unknown.stderr
