"""An SC that owns one domain (``[sc] domain``): the domain sub-topology, the configuration,
refusals of other domains' endpoints and switches, and the example configs.
"""
import os

import pytest
from sc_harness import Sc, SwitchTransport, all_ports, register_controllers, state_dir  # noqa: F401

from fake_of13 import FakeNetwork
from ryu.app.wsgi import WSGIApplication
from sc_app import cli_sc, config
from sc_app.core import ScCore
from sc_app.lightpath import EndpointError, resolve_endpoint
from topologies.domain import DomainError, domain_of, foreign, restrict
from topologies.loader import load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THREE = load("three-domain")
DOMAIN_NODES = {"A": {"0", "1", "2", "3", "4"}, "B": {"5", "6", "7", "8", "9"},
                "C": {"10", "11", "12", "13", "14"}}


@pytest.mark.parametrize("domain", ["A", "B", "C"])
def test_a_domain_holds_its_nodes_and_the_fibres_between_them(domain):
    sub = restrict(THREE, domain)
    assert set(sub.nodes) == DOMAIN_NODES[domain]
    assert sub.domain == domain and sub.domains == (domain,) and sub.whole is THREE
    assert all({link.a, link.b} <= DOMAIN_NODES[domain] for link in sub.links)
    inside = [link for link in THREE.links if {link.a, link.b} <= DOMAIN_NODES[domain]]
    assert sub.links == tuple(inside)
    crossing = [link for link in THREE.links
                if len({link.a, link.b} & DOMAIN_NODES[domain]) == 1]
    assert sub.inter_domain_links == tuple(crossing)
    assert {link for links in sub.borders.values() for link in links} == set(crossing)
    for node, links in sub.borders.items():
        assert node in sub.nodes and all(node in (link.a, link.b) for link in links)


def test_the_borders_of_the_chain_a_b_c():
    assert {n: [(k.a, k.b) for k in ks] for n, ks in restrict(THREE, "A").borders.items()} \
        == {"4": [("4", "5")], "2": [("2", "8")]}
    assert set(restrict(THREE, "B").borders) == {"5", "8", "6", "9"}
    assert set(restrict(THREE, "C").borders) == {"10", "12"}


def test_a_domain_keeps_the_addresses_of_the_whole_topology():
    sub = restrict(THREE, "C")
    for node in sub.nodes:
        assert sub.addresses.user_ip(node) == THREE.addresses.user_ip(node)
        assert sub.addresses.mac(node, "user") == THREE.addresses.mac(node, "user")
    assert set(sub.addresses.indices) == DOMAIN_NODES["C"]


def test_named_ids_keep_their_whole_topology_index(tmp_path):
    text = (ROOT + "/topologies/three-domain.json")
    raw = open(text).read()
    for i in range(15):
        raw = raw.replace(f'"{i}"', f'"n{i}x"')
    path = tmp_path / "named.json"
    path.write_text(raw)
    whole = load(str(path))
    sub = restrict(whole, "B")
    assert sub.addresses.user_ip("n7x") == whole.addresses.user_ip("n7x")


def test_an_unknown_domain_is_refused_naming_the_known_ones():
    with pytest.raises(DomainError, match="no domain 'D'.*A, B, C"):
        restrict(THREE, "D")


def test_domain_of_a_node_or_host_and_what_is_foreign():
    sub = restrict(THREE, "A")
    assert domain_of(sub, "12") == "C" and domain_of(THREE, "12") == "C"
    assert domain_of(sub, "10.2.7.1") == "B" and domain_of(sub, "10.1.3.1") == "A"
    assert domain_of(sub, "99") is None and domain_of(sub, "nonsense") is None
    assert foreign(sub, "3") is None and foreign(sub, "99") is None
    assert foreign(THREE, "12") is None
    assert foreign(sub, "12") == "12 is in domain C; this SC serves domain A"


def test_endpoints_of_other_domains_are_not_in_domain():
    sub = restrict(THREE, "A")
    assert resolve_endpoint(sub, "10.1.4.1").node == "4"
    for endpoint in ("7", "10.1.12.1", "10.2.8.1"):
        with pytest.raises(EndpointError) as info:
            resolve_endpoint(sub, endpoint)
        assert info.value.code == "not-in-domain"
    with pytest.raises(EndpointError) as info:
        resolve_endpoint(sub, "10.2.1.1", node="12")
    assert info.value.code == "not-in-domain"


# -- configuration ------------------------------------------------------------------------


def test_config_domain_restricts_the_topology():
    settings = config.parse_string("[sc]\ntopology = three-domain\ndomain = B\n")
    assert settings.domain == "B" and set(settings.topology.nodes) == DOMAIN_NODES["B"]


def test_config_without_domain_keeps_the_whole_topology():
    settings = config.parse_string("[sc]\ntopology = three-domain\n")
    assert settings.domain is None and settings.topology.whole is None
    assert len(settings.topology.nodes) == 15 and settings.topology.domain is None


def test_config_unknown_domain_names_file_and_field(tmp_path):
    path = tmp_path / "sc.conf"
    path.write_text("[sc]\ntopology = three-domain\ndomain = Z\n")
    with pytest.raises(config.ConfigError) as info:
        config.check_file(str(path))
    (error,) = info.value.errors
    assert error.startswith(f"{path}: [sc] domain: no domain 'Z'")
    assert "three-domain.json" in error and "A, B, C" in error


@pytest.mark.parametrize("domain, rest, ofp", [("A", 8080, 6653), ("B", 8081, 6654),
                                               ("C", 8082, 6655)])
def test_example_configs_check(domain, rest, ofp, capsys, monkeypatch):
    monkeypatch.setattr(cli_sc, "run_ryu", lambda argv: pytest.fail("Ryu started"))
    path = os.path.join(ROOT, "etc", f"sc-{domain}.conf")
    assert cli_sc.main(["check-config", path]) == 0
    assert f"REST port {rest}, OpenFlow port {ofp}" in capsys.readouterr().out
    settings = config.check_file(path)
    assert settings.domain == domain and set(settings.topology.nodes) == DOMAIN_NODES[domain]
    assert settings.state_dir == f"./state/sc-{domain}"


def test_example_configs_do_not_clash():
    settings = [config.check_file(os.path.join(ROOT, "etc", f"sc-{d}.conf")) for d in "ABC"]
    for attr in ("rest_port", "ofp_port", "state_dir", "domain"):
        assert len({getattr(s, attr) for s in settings}) == 3, attr


# -- the SC of one domain -----------------------------------------------------------------


@pytest.fixture
def sc_a(state_dir):
    """The SC of domain A of three-domain on fake switches, its own switches connected."""
    net = FakeNetwork()
    transport = SwitchTransport(net)
    core = ScCore(restrict(THREE, "A"), state_dir, {"ac1": "token-ac1"}, transport,
                  barrier_timeout=0.5)
    transport.installer, transport.reconciler = core.installer, core.reconciler
    sc = Sc(core, net, transport, WSGIApplication())
    register_controllers(sc.wsgi, core)
    sc.connect_all()
    yield sc
    sc.close()


def active(sc):
    return sorted((a.kind, a.subject) for a in sc.core.db.list_alarms(active=True))


def test_the_ted_and_pce_hold_the_domain_only(sc_a):
    assert set(sc_a.core.ted.node_index) == DOMAIN_NODES["A"]
    assert set(sc_a.core.ted.link_ids) == {link.id for link in restrict(THREE, "A").links}


def test_an_intra_domain_lightpath_carries_traffic(sc_a):
    reply = sc_a.client("ac1").post("/asi/v1/lightpaths", {"src": "10.1.4.1", "dst": "10.2.1.1"})
    assert reply.status == 201, reply.json
    assert set(reply.json["route"]) <= DOMAIN_NODES["A"]
    assert sc_a.delivered_to("10.1.4.1", "10.2.1.1")


@pytest.mark.parametrize("dst, field", [("12", "dst"), ("10.2.8.1", "dst")])
def test_an_endpoint_of_another_domain_is_422_not_in_domain(sc_a, dst, field):
    before = sc_a.state()
    reply = sc_a.client("ac1").post("/asi/v1/lightpaths", {"src": "0", "dst": dst})
    assert reply.status == 422
    assert reply.json["error"] == "not-in-domain" and reply.json["field"] == field
    assert "domain A" in reply.json["reason"] and "is in domain" in reply.json["reason"]
    assert sc_a.state() == before


def test_evaluate_marks_other_domains_destinations(sc_a):
    reply = sc_a.client("ac1").post("/asi/v1/evaluate", {"src": "0", "dsts": ["4", "13"]})
    assert reply.status == 200
    first, second = reply.json["results"]
    assert first["feasible"] and second == {
        "dst": "13", "feasible": False, "reason": "not-in-domain",
        "detail": "13 is in domain C; this SC serves domain A"}


def test_a_switch_of_another_domain_is_an_alarm_and_gets_nothing(sc_a):
    node = THREE.nodes["7"]
    sent = len(sc_a.transport.sent)
    assert sc_a.core.switch_connected(node.dpid, all_ports(THREE, "7")) == []
    assert sc_a.core.port_description(node.dpid, {1: True, 3: True}) == []
    assert len(sc_a.transport.sent) == sent
    assert active(sc_a) == [("foreign-switch", "7")]
    assert node.dpid not in sc_a.core.pa.connected
    (alarm,) = sc_a.core.db.list_alarms(active=True)
    assert "domain B" in alarm.detail and "domain A" in alarm.detail
    assert sc_a.core.switch_connected(4242, [1]) == []
    assert active(sc_a) == [("foreign-switch", "7"), ("unknown-switch", "dpid 4242")]


def test_inter_domain_lldp_and_ports_change_nothing(sc_a):
    before = sc_a.ted_state()
    a4, b5 = THREE.nodes["4"], THREE.nodes["5"]
    link = THREE.link_between("4", "5")
    sc_a.core.link_discovered((a4.dpid, link.port("4")), (b5.dpid, link.port("5")))
    sc_a.core.port_status(a4.dpid, link.port("4"), False)
    sc_a.core.port_status(a4.dpid, link.port("4"), True)
    sc_a.core.link_lost((b5.dpid, link.port("5")), (a4.dpid, link.port("4")))
    assert sc_a.ted_state() == before and active(sc_a) == []
    assert sc_a.core.discovery_check() == []
    # A link that is neither intra- nor inter-domain is still unexpected.
    sc_a.core.link_discovered((a4.dpid, 9), (b5.dpid, 9))
    assert [kind for kind, _ in active(sc_a)] == ["unexpected-link"]
