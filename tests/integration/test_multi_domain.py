"""Three real SCs, one per domain of ``three-domain`` (the example configs etc/sc-A.conf ..
etc/sc-C.conf, with free ports and state dirs over them), and ``cso net --controllers``.

Each SC sees exactly its own domain's switches, connected, and no switch of another domain;
the inter-domain fibres raise no alarm; an intra-domain lightpath in domain A carries ping;
a request naming another domain's host is refused with 422 ``not-in-domain``.
"""
from __future__ import annotations

import os
import time

import pytest

from cso.emulation import lab as harness
from topologies.loader import load

pytestmark = pytest.mark.integration

TOKEN = "demo-ac-token"
THREE = load("three-domain")
DOMAINS = ("A", "B", "C")
ETC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "etc")


@pytest.fixture(scope="module")
def scs(ovs, module_log_dir):
    """The three SCs: each reads its example config, then a generated one overriding ports."""
    runs = {}
    try:
        for domain in DOMAINS:
            log_dir = os.path.join(module_log_dir, f"sc-{domain}")
            run = harness.ScRun(log_dir, topology="three-domain", options={"domain": domain})
            run.process = harness.Process(
                f"sc-{domain}", [harness.CSO, "sc", "--config-file",
                                 os.path.join(ETC, f"sc-{domain}.conf"),
                                 "--config-file", run.config_path], log_dir)
            runs[domain] = run.start()
        yield runs
    finally:
        for run in runs.values():
            run.stop()


@pytest.fixture(scope="module")
def net(scs, module_log_dir):
    """The three-domain emulation, each domain's switches connected to its own SC."""
    mapping = ",".join(f"{d}=127.0.0.1:{scs[d].ofp_port}" for d in DOMAINS)
    run = harness.NetRun(module_log_dir, scs["A"].ofp_port, topology="three-domain")
    run.process = harness.Process("net", [harness.CSO, "net", "--topo", "three-domain",
                                          "--no-cli", "--controllers", mapping,
                                          "--run-dir", run.run_dir], module_log_dir)
    try:
        yield run.start()
    finally:
        run.stop()


def test_each_sc_sees_exactly_its_own_switches(scs, net):
    for domain, sc in scs.items():
        own = {n.dpid for n in THREE.nodes.values() if n.domain == domain}
        deadline = time.monotonic() + 20
        while True:
            switches = sc.request("GET", "/smi/v1/switches").json["switches"]
            if all(s["connected"] for s in switches) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert {s["dpid"] for s in switches} == own, domain
        assert all(s["connected"] for s in switches), (domain, switches)
        alarms = sc.request("GET", "/smi/v1/alarms?state=all").json["alarms"]
        assert not [a for a in alarms if a["kind"] in ("foreign-switch", "unknown-switch")]
    for switch in net.switches.values():
        node = THREE.nodes[switch["node"]]
        assert switch["controller"] == f"127.0.0.1:{scs[node.domain].ofp_port}"


def test_each_sc_discovers_its_intra_domain_fibres_only(scs, net):
    for domain, sc in scs.items():
        links = sc.wait_discovered(timeout=60)
        assert {link["id"] for link in links} == {
            link.id for link in THREE.links
            if THREE.nodes[link.a].domain == THREE.nodes[link.b].domain == domain}
        alarms = sc.request("GET", "/smi/v1/alarms").json["alarms"]
        assert not [a for a in alarms if a["kind"] == "unexpected-link" and a["active"]]


def test_an_intra_domain_lightpath_in_a_carries_ping(scs, net):
    sc = scs["A"]
    sc.wait_discovered(timeout=60)
    src, dst = net.ip("u4"), net.ip("dc1")
    answer = sc.request("POST", "/asi/v1/lightpaths", {"src": src, "dst": dst}, token=TOKEN)
    assert answer.status == 201, answer.json
    try:
        assert harness.wait_for("ping u4 -> dc1", lambda: net.ping("u4", "dc1"), timeout=15)
    finally:
        gone = sc.request("DELETE", f"/asi/v1/lightpaths/{answer.json['id']}", token=TOKEN)
        assert gone.status == 200


def test_another_domains_host_is_not_in_domain(scs, net):
    answer = scs["A"].request("POST", "/asi/v1/lightpaths",
                              {"src": net.ip("u0"), "dst": net.ip("u12")}, token=TOKEN)
    assert answer.status == 422
    assert answer.json["error"] == "not-in-domain" and "domain C" in answer.json["reason"]
