"""The AC's ALTO client against the real SC (SA-PCE, ALTO server) on NSFNET, in process.

The ALTO view answers what ASI evaluation answers, for every source, before and after
wavelengths are taken; GLB and NB choose alike on both; constraints ALTO cannot settle go to
ASI; the IRD and the network map are fetched once and again only when the network map's vtag
changes; the service wires ``network_view = alto``.
"""
import json
from dataclasses import replace

import pytest

from ac_app.alto_client import (NO_PATH, AltoClient, AltoError, AltoEvaluation, AltoNetworkView,
                                AltoUnreachable, NetworkMap)
from ac_app.asi_client import AsiClient, AsiNetworkView
from ac_app.config import parse_string
from cso_base.config import ConfigError
from ac_app.resources import AppView, Demand, path_infos_from_asi
from ac_app.sse import GlobalLoadBalancing, NetworkBalancing
from ac_harness import AC_TOKEN, Lab, WsgiTransport, config_text, sc  # noqa: F401 (fixture)
from cso_base import http
from sc_harness import state_dir  # noqa: F401 (fixture)

IRD = "http://sc.test:8080/alto/directory"
DEMAND = Demand(2, 4.0, 10.0)


@pytest.fixture
def transport(sc):
    return WsgiTransport(sc.wsgi)


@pytest.fixture
def asi(transport):
    return AsiClient("http://sc.test:8080", AC_TOKEN, 5.0, send=transport)


@pytest.fixture
def alto(transport):
    return AltoClient(IRD, AC_TOKEN, 5.0, send=transport)


def dc_nodes(sc):
    return [node for node, spec in sc.topology.nodes.items() if spec.dc is not None]


def same_answers(alto_view, asi_view, sc):
    """Both views on every source to every other DC node: equal where feasible."""
    for src in sc.topology.nodes:
        dsts = [node for node in dc_nodes(sc) if node != src]
        got, want = alto_view.evaluate(src, dsts), asi_view.evaluate(src, dsts)
        assert set(got) == set(want) == set(dsts)
        for dst in dsts:
            if want[dst].feasible:
                assert got[dst] == want[dst], (src, dst)
            else:
                assert not got[dst].feasible and got[dst].reason == NO_PATH, (src, dst)


def load_network(asi, routes):
    """Lightpaths user host -> DC host, ``count`` of each: wavelengths occupied."""
    for (src, dst), count in routes.items():
        for n in range(count):
            asi.establish(f"10.1.{src}.1", f"10.2.{dst}.{n + 2}", "vod")


def loaded_app_view(sc):
    """Every DC server busy, each DC's first the least (by a little more per DC)."""
    app = AppView.from_topology(sc.topology)
    dcs = sorted({state.dc for state in app.servers})
    for state in app.servers:
        number = int(state.server.rsplit("s", 1)[1])
        app.allocate(state.server, Demand(1 + 4 * number, 1.0 + dcs.index(state.dc), 1.0))
    return app


def test_the_alto_view_answers_what_asi_evaluation_answers(sc, asi, alto):
    alto_view, asi_view = AltoNetworkView(alto, sc.topology), AsiNetworkView(asi)
    same_answers(alto_view, asi_view, sc)
    # 40 wavelengths on 0-7 and more elsewhere: routingcost grows, 0-7 fills, paths move.
    load_network(asi, {("0", "7"): 40, ("13", "12"): 25, ("5", "9"): 10})
    same_answers(alto_view, asi_view, sc)
    info = alto_view.evaluate("0", ["7"])["7"]
    assert info.feasible and info.hops > 1  # 0-7 is full: another route
    assert alto_view.evaluate("13", ["12"])["12"].free_wavelengths == 15


def test_a_node_cut_off_is_infeasible_on_alto_as_on_asi(sc, asi, alto):
    for link in sc.topology.links:
        if "12" in (link.a, link.b):
            sc.core.ted.set_admin(link.id, False)
    alto_view, asi_view = AltoNetworkView(alto, sc.topology), AsiNetworkView(asi)
    same_answers(alto_view, asi_view, sc)


@pytest.mark.parametrize("strategy", [GlobalLoadBalancing(k=5), GlobalLoadBalancing(b=0.2, k=3),
                                      NetworkBalancing()])
def test_glb_and_nb_choose_alike_on_alto_and_on_asi(sc, asi, alto, strategy):
    alto_view, asi_view = AltoNetworkView(alto, sc.topology), AsiNetworkView(asi)

    def choices():
        app = loaded_app_view(sc)
        result = {}
        for src in sc.topology.nodes:
            on_alto = strategy.choose(src, DEMAND, app, alto_view)
            on_asi = strategy.choose(src, DEMAND, app, asi_view)
            assert on_alto.ok and on_asi.ok
            assert (on_alto.server, on_alto.details) == (on_asi.server, on_asi.details), src
            result[src] = on_alto.server.server
        return result

    before = choices()
    load_network(asi, {("0", "1"): 40, ("13", "12"): 38, ("10", "12"): 30, ("5", "4"): 36})
    after = choices()
    assert before != after  # the load changed some choices, and ALTO followed


def test_constraints_alto_cannot_settle_go_to_asi(sc, asi, alto, transport):
    network = AltoEvaluation(asi, alto, sc.topology)
    dsts = [node for node in dc_nodes(sc) if node != "0"]
    for constraints in ({}, {"max_hops": 2}, {"max_delay_ms": 12.0}, {"max_jitter_ms": 1.0},
                        {"bandwidth_gbps": 10}, {"bandwidth_gbps": 100}):
        transport.calls.clear()
        got = path_infos_from_asi(network.evaluate("0", dsts, constraints))
        asked = [body["dsts"] for _method, path, body in transport.calls
                 if path == "/asi/v1/evaluate"]
        want = AsiNetworkView(asi, constraints).evaluate("0", dsts)
        for dst in dsts:
            assert got[dst].feasible == want[dst].feasible, (constraints, dst)
            if want[dst].feasible:
                assert got[dst] == want[dst], (constraints, dst)
        if constraints in ({}, {"bandwidth_gbps": 10}):
            assert asked == []  # ALTO settled every destination
        elif "max_hops" in constraints:
            assert asked and len(asked[0]) < len(dsts)  # only those beyond 2 hops
        else:
            assert asked, constraints


def test_without_a_fallback_an_unmet_constraint_is_a_refusal(sc, alto):
    view = AltoNetworkView(alto, sc.topology, {"max_hops": 1, "max_jitter_ms": 5})
    answers = view.evaluate("0", ["1", "7", "12"])
    assert answers["12"].reason == "hops-exceeded"
    assert answers["1"].reason == "jitter-exceeded"  # 1 hop: only jitter is left untested


def test_the_ird_and_network_map_are_fetched_once_while_their_vtag_holds(sc, asi, alto):
    view = AltoNetworkView(alto, sc.topology)
    for src in ("0", "5", "13"):
        view.evaluate(src, dc_nodes(sc))
    load_network(asi, {("0", "7"): 3})
    view.evaluate("0", dc_nodes(sc))
    assert alto.fetches == {"directory": 1, "networkmap": 1, "costmap-filtered": 4}


def test_a_new_network_map_vtag_makes_the_client_fetch_the_map_again(sc, asi, transport):
    served = []

    def send(method, url, **kwargs):
        answer = transport(method, url, **kwargs)
        if url.endswith("/alto/networkmap"):
            body = answer.json
            if not served:  # the first map the client gets is an older version
                body["meta"]["vtag"]["tag"] = "0" * 40
            served.append(body["meta"]["vtag"]["tag"])
            return http.Answer(200, answer.headers, json.dumps(body).encode())
        return answer

    alto = AltoClient(IRD, AC_TOKEN, send=send)
    got = AltoNetworkView(alto, sc.topology).evaluate("0", dc_nodes(sc))
    assert got == AsiNetworkView(asi).evaluate("0", dc_nodes(sc))
    assert len(served) == 2 and alto.network_map().tag == served[-1] != "0" * 40
    assert alto.fetches["costmap-filtered"] == 2  # asked again with the new map's PIDs


def test_one_filtered_map_per_metric_when_multi_cost_is_not_offered(sc, asi, transport):
    def send(method, url, **kwargs):
        answer = transport(method, url, **kwargs)
        if url.endswith("/alto/directory"):
            body = answer.json
            body["resources"]["costmap-filtered"]["capabilities"]["max-cost-types"] = 1
            return http.Answer(200, answer.headers, json.dumps(body).encode())
        return answer

    alto = AltoClient(IRD, AC_TOKEN, send=send)
    load_network(asi, {("0", "7"): 5})
    dsts = [node for node in dc_nodes(sc) if node != "3"]
    assert AltoNetworkView(alto, sc.topology).evaluate("3", dsts) == \
        AsiNetworkView(asi).evaluate("3", dsts)
    assert alto.fetches["costmap-filtered"] == 4


def test_failures_are_network_errors(sc, transport):
    transport.down = True
    with pytest.raises(AltoUnreachable):
        AltoClient(IRD, AC_TOKEN, send=transport).directory()
    transport.down = False
    with pytest.raises(AltoError) as bad_token:
        AltoClient(IRD, "wrong", send=transport).directory()
    assert bad_token.value.status == 401
    with pytest.raises(AltoError) as not_found:
        AltoClient("http://sc.test:8080/alto/nothing", AC_TOKEN, send=transport).directory()
    assert not_found.value.status == 404


def test_a_cost_map_gone_makes_the_client_read_the_ird_again(sc, asi, transport):
    gone = []

    def send(method, url, **kwargs):
        if url.endswith("/alto/costmap/filtered") and not gone:
            gone.append(url)
            return http.Answer(404, {}, b'{"error": "not-found", "reason": "moved"}')
        return transport(method, url, **kwargs)

    alto = AltoClient(IRD, AC_TOKEN, send=send)
    view = AltoNetworkView(alto, sc.topology)
    with pytest.raises(AltoError) as not_found:
        view.evaluate("0", ["7"])
    assert not_found.value.status == 404
    assert view.evaluate("0", ["7"]) == AsiNetworkView(asi).evaluate("0", ["7"])
    assert alto.fetches["directory"] == 2


def test_network_map_longest_prefix_match():
    nmap = NetworkMap.from_json({"meta": {"vtag": {"resource-id": "nm", "tag": "t"}},
                                 "network-map": {"a": {"ipv4": ["10.0.0.0/8"]},
                                                 "b": {"ipv4": ["10.2.3.0/24"]},
                                                 "c": {"ipv6": ["::/0"]}}})
    assert (nmap.pid_of("10.2.3.1"), nmap.pid_of("10.9.9.9"), nmap.pid_of("192.0.2.1")) == \
        ("b", "a", None)


def test_the_service_wires_network_view_alto(state_dir):
    settings = parse_string(config_text(network_view="alto", state_dir=state_dir))
    assert settings.alto_directory_url == "http://127.0.0.1:8080/alto/directory"
    assert parse_string(config_text(alto_url="http://alto.example/ird")).alto_directory_url == \
        "http://alto.example/ird"
    lab = Lab(state_dir, network_view="alto")
    try:
        network = lab.procedure.asi
        assert isinstance(network, AltoEvaluation) and network.asi is lab.asi
        network.alto = AltoClient(IRD, AC_TOKEN, send=lab.transport)
        reply = lab.user("alice").post("/uai/v1/requests",
                                       {"type": "vod", "src": "10.1.13.1", "content": "film"})
        assert reply.status == 201 and reply.json["status"] == "active", reply.json
        assert network.alto.fetches["costmap-filtered"] == 1
        assert not [call for call in lab.transport.calls if call[1] == "/asi/v1/evaluate"]
    finally:
        lab.close()


def test_a_bad_alto_url_is_a_config_error():
    with pytest.raises(ConfigError, match="alto_url"):
        parse_string(config_text(alto_url="ftp://x"))


def test_glb_on_the_live_procedure_chooses_like_asi(state_dir, tmp_path):
    chosen = {}
    for view in ("asi", "alto"):
        lab = Lab(f"{state_dir}", network_view=view) if view == "asi" else \
            Lab(str(tmp_path), network_view=view)
        try:
            if view == "alto":
                lab.procedure.asi.alto = AltoClient(IRD, AC_TOKEN, send=lab.transport)
            for src in ("10.1.0.1", "10.1.13.1", "10.1.5.1", "10.1.0.1"):
                reply = lab.user("alice").post("/uai/v1/requests",
                                               {"type": "vod", "src": src, "content": "film"})
                assert reply.status == 201, reply.json
                body = reply.json
                chosen.setdefault(view, []).append((body["dc"], body["server"],
                                                    body["lightpath"]["route"]))
        finally:
            lab.close()
    assert chosen["alto"] == chosen["asi"]


def test_free_wavelengths_use_the_topologys_wavelength_capacity(sc, alto):
    topo = sc.topology
    doubled = replace(topo, links=tuple(replace(link, capacity_gbps=link.capacity_gbps * 2)
                                        for link in topo.links))
    base = AltoNetworkView(alto, topo).evaluate("0", ["7"])["7"]
    assert AltoNetworkView(alto, doubled).evaluate("0", ["7"])["7"].free_wavelengths == \
        base.free_wavelengths // 2
