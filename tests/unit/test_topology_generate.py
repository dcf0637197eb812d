"""Synthetic topologies: valid, connected, backbone-like degrees, deterministic per seed."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from topologies.generate import MAX_DEGREE, MEAN_DEGREE, MIN_DEGREE, generate
from topologies.loader import from_dict
from topologies.model import Topology


def _parts(topo: Topology, members=None) -> int:
    """Number of connected parts of the subgraph on `members` (default: all nodes)."""
    members = set(topo.nodes if members is None else members)
    parent = {node: node for node in members}

    def root(node):
        while parent[node] != node:
            node = parent[node]
        return node
    for link in topo.links:
        if link.a in members and link.b in members:
            parent[root(link.a)] = root(link.b)
    return len({root(node) for node in members})


def _degrees(topo: Topology) -> Counter:
    degree = Counter({node: 0 for node in topo.nodes})
    for link in topo.links:
        degree[link.a] += 1
        degree[link.b] += 1
    return degree


@pytest.fixture(scope="module")
def big() -> Topology:
    return from_dict(generate(400, seed=11), source="<generated>")


def test_loads_through_from_dict_with_numeric_ids_and_dpids(big):
    assert list(big.nodes) == [str(i) for i in range(400)]
    assert all(node.dpid == int(node.id) + 1 for node in big.nodes.values())
    assert big.name == "synthetic-n400-s11"


def test_connected_with_backbone_degrees(big):
    assert _parts(big) == 1
    degree = _degrees(big)
    assert min(degree.values()) >= MIN_DEGREE and max(degree.values()) <= MAX_DEGREE
    assert abs(2 * len(big.links) / len(big.nodes) - MEAN_DEGREE) < 0.1


def test_lengths_are_plausible_and_fibres_do_not_cross(big):
    assert all(1 <= link.length_km <= 4000 for link in big.links)
    points = {n.id: (n.lon, n.lat) for n in big.nodes.values()}
    segments = [(points[link.a], points[link.b], {link.a, link.b}) for link in big.links]
    crossings = [(s, t) for i, s in enumerate(segments) for t in segments[i + 1:]
                 if not s[2] & t[2] and _cross(s[0], s[1], t[0], t[1])]
    assert crossings == []


def _cross(p, q, r, s) -> bool:
    def turn(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return turn(p, q, r) * turn(p, q, s) < 0 and turn(r, s, p) * turn(r, s, q) < 0


def test_same_seed_same_topology_other_seed_other_topology():
    assert generate(150, seed=5) == generate(150, seed=5)
    assert generate(150, seed=5)["links"] != generate(150, seed=6)["links"]


def test_parameters_reach_the_file():
    data = generate(60, seed=1, wavelengths=80, capacity_gbps=100, dc_fraction=0.25)
    topo = from_dict(data)
    assert {(link.wavelengths, link.capacity_gbps) for link in topo.links} == {(80, 100.0)}
    assert len(topo.dc_nodes()) == 15
    assert all(len(topo.nodes[n].dc.servers) == 4 for n in topo.dc_nodes())
    assert from_dict(generate(60, seed=1, dc_fraction=0)).dc_nodes() == []


def test_domains_are_each_connected_and_joined_and_have_a_dc():
    topo = from_dict(generate(300, seed=3, domains=4))
    assert topo.domains == ("A", "B", "C", "D")
    for domain in topo.domains:
        members = [n.id for n in topo.nodes.values() if n.domain == domain]
        assert len(members) == 75 and _parts(topo, members) == 1
        assert any(topo.nodes[n].domain == domain for n in topo.dc_nodes())
    assert _parts(topo) == 1
    assert sum(topo.is_inter_domain(link) for link in topo.links) >= 3


def test_many_domains_get_spreadsheet_names():
    topo = from_dict(generate(90, seed=2, domains=30))
    assert topo.domains[0] == "A" and "Z" in topo.domains and "AD" in topo.domains
    assert _parts(topo) == 1


@pytest.mark.parametrize("nodes", [3, 4, 5, 14])
def test_tiny_topologies(nodes):
    topo = from_dict(generate(nodes, seed=0))
    assert _parts(topo) == 1 and min(_degrees(topo).values()) >= 2


@pytest.mark.parametrize("kwargs, message", [
    ({"nodes": 2}, "nodes must be at least 3"),
    ({"wavelengths": 0}, "wavelengths must be 1..3094"),
    ({"wavelengths": 3095}, "wavelengths"),
    ({"capacity_gbps": 0}, "capacity_gbps"),
    ({"dc_fraction": 1.5}, "dc_fraction"),
    ({"domains": 0}, "domains must be 1..10"),
    ({"domains": 11}, "domains"),
])
def test_bad_arguments(kwargs, message):
    args = {"nodes": 10, "seed": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(**args)


def test_a_thousand_nodes_in_well_under_a_second():
    start = time.perf_counter()
    data = generate(1000, seed=42, domains=3)
    elapsed = time.perf_counter() - start
    assert len(data["nodes"]) == 1000 and _parts(from_dict(data)) == 1
    assert elapsed < 1.0   # about 0.1 s on the 2-core build machine
