"""The SC's fast flow-mod building sends exactly the bytes Ryu's own `OFPMatch(**kwargs)` gives.

`sc_app.flows` builds lightpath matches from a cache of Ryu's normalised fields instead of
normalising the keyword form each time; every message of many random lightpaths (routes,
wavelengths, host/site/moved endpoints, protection) is serialised both ways and compared.
"""
import ipaddress
import random

import pytest
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser
from ryu.ofproto.ofproto_protocol import ProtocolDesc

from sc_app import flows
from sc_app.lightpath import Lightpath, Protection, lightpath_cookie, resolve_endpoint
from topologies.loader import load

TOPO = load("nsfnet")
ADJ: dict[str, list[str]] = {n: [] for n in TOPO.nodes}
for _link in TOPO.links:
    ADJ[_link.a].append(_link.b)
    ADJ[_link.b].append(_link.a)


def _links(route):
    return tuple(TOPO.link_between(a, b).id for a, b in zip(route, route[1:]))


def _walk(rng, src, dst, avoid=frozenset()):
    """A random simple path src -> dst not using the links in ``avoid`` (None if stuck)."""
    route = [src]
    while route[-1] != dst:
        nxt = [n for n in ADJ[route[-1]] if n not in route
               and TOPO.link_between(route[-1], n).id not in avoid]
        if not nxt:
            return None
        route.append(dst if dst in nxt else rng.choice(nxt))
    return tuple(route)


def _endpoint_text(rng, node):
    kind = rng.random()
    if kind < 0.4:
        return f"10.1.{node}.1"  # user host
    if kind < 0.7 and node in TOPO.dc_nodes():
        return f"10.2.{node}.{rng.randint(1, 9)}"  # a DC host
    return node  # the whole site


def _random_lightpaths(seed, count):
    rng = random.Random(seed)
    nodes = sorted(TOPO.nodes)
    dcs = TOPO.dc_nodes()
    out = []
    serial = 0
    while len(out) < count:
        serial += 1
        a, b = rng.sample(nodes, 2)
        src_text, dst_text = _endpoint_text(rng, a), _endpoint_text(rng, b)
        dst_node = None
        if rng.random() < 0.2 and dst_text.startswith("10.2."):
            dst_node = rng.choice(dcs)  # a VM attached away from its home node
        if rng.random() < 0.1:
            b = a  # a local connection (no fibre) between a user and a site/host
            dst_text, dst_node = f"10.2.{a}.1" if a in dcs else a, None
            if dst_text == src_text:
                continue
        src = resolve_endpoint(TOPO, src_text)
        dst = resolve_endpoint(TOPO, dst_text, node=dst_node)
        if dst.node == src.node:
            route = (src.node,)
        else:
            route = _walk(rng, src.node, dst.node)
            if route is None:
                continue  # the random walk ran into a dead end
        wavelength = None if len(route) == 1 else rng.randrange(40)
        protection = None
        if len(route) > 1 and rng.random() < 0.3:
            backup = _walk(rng, src.node, dst.node, avoid=frozenset(_links(route)))
            if backup is not None:
                protection = Protection("link", backup, _links(backup), rng.randrange(40))
        out.append(Lightpath(f"lp-{serial}", "ac", "vod", src_text, dst_text, src, dst,
                             route, _links(route), wavelength, lightpath_cookie(serial),
                             protection=protection))
    return out


def _serialised(messages):
    out = []
    for dpid, msgs in sorted(messages.items()):
        for msg in msgs:
            msg.datapath = ProtocolDesc(ofp.OFP_VERSION)
            msg.set_xid(len(out) + 1)
            msg.serialize()
            out.append((dpid, bytes(msg.buf)))
    return out


def _ryu_match(**fields):
    return parser.OFPMatch(**fields)


LIGHTPATHS = _random_lightpaths(seed=7, count=600)


def test_the_sample_covers_every_shape():
    assert any(lp.protection is not None for lp in LIGHTPATHS)
    assert any(len(lp.route) == 1 for lp in LIGHTPATHS)
    assert any(len(lp.route) > 4 for lp in LIGHTPATHS)
    assert any(a.mac is not None for lp in LIGHTPATHS for a in lp.dst_endpoint.attachments)
    assert any(len(lp.src_endpoint.attachments) > 1 for lp in LIGHTPATHS)


@pytest.mark.parametrize("chunk", range(6))
def test_lightpath_messages_are_byte_identical_to_ryus_own_serialisation(chunk, monkeypatch):
    lps = LIGHTPATHS[chunk * 100:(chunk + 1) * 100]
    fast = [_serialised(flows.lightpath_flows(TOPO, lp)) for lp in lps]
    turned = [_serialised(flows.lightpath_flows(TOPO, lp, [True]))
              for lp in lps if lp.protection is not None]
    monkeypatch.setattr(flows, "_match", _ryu_match)
    assert [_serialised(flows.lightpath_flows(TOPO, lp)) for lp in lps] == fast
    assert [_serialised(flows.lightpath_flows(TOPO, lp, [True]))
            for lp in lps if lp.protection is not None] == turned


def test_matches_are_equal_to_ryus_and_never_shared():
    lp = next(lp for lp in LIGHTPATHS if len(lp.route) > 2)
    first = [m for ms in flows.lightpath_flows(TOPO, lp).values() for m in ms]
    again = [m for ms in flows.lightpath_flows(TOPO, lp).values() for m in ms]
    for a, b in zip(first, again):
        assert a.match is not b.match and a.match._fields2 is not b.match._fields2
        assert a.match.to_jsondict() == b.match.to_jsondict()
        ref = _ryu_match(**dict(a.match.items()))
        assert a.match.to_jsondict() == ref.to_jsondict() and str(a.match) == str(ref)
        buf, ref_buf = bytearray(b"x" * 8), bytearray(b"x" * 8)
        assert a.match.serialize(buf, 8) == ref.serialize(ref_buf, 8)
        assert buf == ref_buf and a.match.length == ref.length
        assert a.match.to_jsondict() == ref.to_jsondict()  # the length written back too


def test_cached_prefix_text_is_the_networks_own():
    net = ipaddress.ip_network("10.2.7.0/24")
    assert flows._net(net) == ("10.2.7.0", "255.255.255.0")
