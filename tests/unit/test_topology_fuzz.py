"""Fuzzing the loader: whatever the input, it builds a sound Topology or raises TopologyError."""
from __future__ import annotations

import copy
import json
import os

from hypothesis import HealthCheck, given, settings, strategies as st

from topologies import schema
from topologies.loader import TopologyError, from_dict, loads, resolve
from topologies.model import FIRST_FIBRE_PORT, Topology

# Bounded so that the file runs in a couple of seconds (CSO_FUZZ_EXAMPLES=5000 for a deep run);
# no example database in the tree.
FUZZ = settings(max_examples=int(os.environ.get("CSO_FUZZ_EXAMPLES", "100")), deadline=None,
                database=None, suppress_health_check=[HealthCheck.too_slow])

with open(resolve("nsfnet"), encoding="utf-8") as _handle:
    NSFNET_TEXT = _handle.read()
NSFNET = json.loads(NSFNET_TEXT)

FIELD_NAMES = sorted({f.name for fields in schema.SECTIONS.values() for f in fields})
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-5, 5000)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=6) | st.sampled_from(["0", "1", "2", "dc", "edge", "", " "]))
KEYS = st.sampled_from(FIELD_NAMES) | st.text(max_size=6)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS, inner, max_size=5), max_leaves=15)


def mostly(good):
    """`good` values but one time in 20 anything: most examples reach the cross-checks."""
    return st.integers(0, 19).flatmap(lambda roll: SCALARS if roll == 7 else good)


ID = mostly(st.sampled_from(["0", "1", "2", "3", "a", "00"]))
NUMBER = mostly(st.integers(1, 100) | st.floats(0.5, 1000))
SERVER = st.fixed_dictionaries({"id": ID, "cpu": NUMBER, "memory_gb": NUMBER, "disk_gb": NUMBER})
DC = st.fixed_dictionaries({"servers": st.lists(SERVER, min_size=1, max_size=2)},
                           optional={"id": ID, "kind": mostly(st.sampled_from(["dc", "edge"]))})
NODE = st.fixed_dictionaries({"id": ID}, optional={
    "name": mostly(st.text(max_size=5)), "domain": ID, "dpid": mostly(st.integers(1, 6)),
    "lat": mostly(st.floats(-90, 90)), "lon": mostly(st.floats(-180, 180)), "dc": DC})
LINK = st.fixed_dictionaries({"a": ID, "b": ID, "length_km": NUMBER}, optional={
    "id": ID, "wavelengths": mostly(st.integers(0, 3100)), "capacity_gbps": NUMBER,
    "te_weight": NUMBER, "jitter_ms": NUMBER, "srlg": st.lists(ID, max_size=3),
    "ports": st.dictionaries(ID, mostly(st.integers(1, 6)), max_size=2)})
SHAPED = st.fixed_dictionaries({"nodes": st.lists(NODE, min_size=1, max_size=5),
                                "links": st.lists(LINK, max_size=6)},
                               optional={"defaults": st.dictionaries(KEYS, NUMBER, max_size=3),
                                         "name": SCALARS})


def _accept_or_reject(data, parse=from_dict) -> None:
    """Load `data`: success must give a sound topology, failure a printable TopologyError."""
    try:
        topo = parse(data, source="<fuzz>")
    except TopologyError as err:
        assert err.source == "<fuzz>" and err.path.startswith("$") and err.reason
        str(err).encode("utf-8")   # the message can always be printed
        return
    _sound(topo)


def _sound(topo: Topology) -> None:
    dpids = [node.dpid for node in topo.nodes.values()]
    assert len(set(dpids)) == len(dpids)
    ports, pairs = set(), set()
    for link in topo.links:
        assert link.a in topo.nodes and link.b in topo.nodes and link.a != link.b
        assert frozenset((link.a, link.b)) not in pairs
        pairs.add(frozenset((link.a, link.b)))
        assert 0 < link.length_km <= schema.MAX_LENGTH_KM
        assert 1 <= link.wavelengths <= schema.MAX_WAVELENGTHS and link.capacity_gbps > 0
        for node in (link.a, link.b):
            assert link.port(node) >= FIRST_FIBRE_PORT and (node, link.port(node)) not in ports
            ports.add((node, link.port(node)))


@FUZZ
@given(JSON)
def test_any_json_value(data):
    _accept_or_reject(data)


@FUZZ
@given(SHAPED)
def test_topology_shaped_values(data):
    _accept_or_reject(data)


def _paths(value, prefix=()):
    """Every place in a JSON value, as the keys that lead to it."""
    yield prefix
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, prefix + (key,))


def _leaves(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


NSFNET_PATHS = list(_paths(NSFNET))[1:]
# Values already in the file (ids, lengths...) make mutations that still parse as a topology.
LEAVES = sorted(set(_leaves(NSFNET)), key=repr)


def _mutate(draw, data):
    """Replace, delete, duplicate or add one thing somewhere in `data` (changed in place)."""
    *keys, last = draw(st.sampled_from(NSFNET_PATHS))
    parent = data
    for key in keys:   # earlier mutations may have changed the way down: stop where it ends
        if not isinstance(parent, (dict, list)) or key not in _keys(parent):
            return
        parent = parent[key]
    if not isinstance(parent, (dict, list)) or last not in _keys(parent):
        return
    action = draw(st.sampled_from(["replace", "delete", "duplicate", "add"]))
    if action == "replace":
        parent[last] = draw(JSON | st.sampled_from(LEAVES))
    elif action == "delete":
        del parent[last]
    elif action == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))   # a node, link or server twice
    elif isinstance(parent, dict):
        parent[draw(KEYS)] = draw(JSON | st.sampled_from(LEAVES))


def _keys(container):
    return container.keys() if isinstance(container, dict) else range(len(container))


@FUZZ
@given(st.data())
def test_mutations_of_nsfnet(data):
    topology = copy.deepcopy(NSFNET)
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(data.draw, topology)
    _accept_or_reject(topology)


@FUZZ
@given(st.integers(0, len(NSFNET_TEXT)), st.integers(0, 12), st.text(max_size=4))
def test_edits_of_the_nsfnet_text(at, cut, insert):
    _accept_or_reject(NSFNET_TEXT[:at] + insert + NSFNET_TEXT[at + cut:], parse=loads)


@FUZZ
@given(st.text(max_size=30))
def test_any_text(text):
    _accept_or_reject(text, parse=loads)
