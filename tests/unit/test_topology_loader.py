"""The validating topology loader: accepted and rejected files, shipped topologies."""
from __future__ import annotations

import copy
import json
import os
import re

import pytest

from topologies import schema
from topologies.loader import (TOPOLOGY_DIR, TopologyError, dumps, from_dict, load, loads,
                               names, resolve)
from topologies.model import DC_PORT, USER_PORT

# Three nodes, two fibres: every rejected case below is this with one thing wrong.
BASE = """{
  "name": "tiny",
  "defaults": {"wavelengths": 8, "capacity_gbps": 100},
  "nodes": [
    {"id": "0", "name": "Alpha"},
    {"id": "1", "dc": {"servers": [{"id": "s0", "cpu": 4, "memory_gb": 16, "disk_gb": 100}]}},
    {"id": "2"}
  ],
  "links": [
    {"a": "0", "b": "1", "length_km": 100},
    {"a": "1", "b": "2", "length_km": 50.5, "wavelengths": 4}
  ]
}"""


def base() -> dict:
    return json.loads(BASE)


def changed(edit) -> dict:
    data = base()
    edit(data)
    return data


def rejected(data, source: str = "<memory>") -> TopologyError:
    with pytest.raises(TopologyError) as info:
        if isinstance(data, str):
            loads(data, source=source)
        else:
            from_dict(data, source=source)
    return info.value


# --- accepted -----------------------------------------------------------------------------

def test_base_loads_with_defaults_filled_in():
    topo = loads(BASE, source="tiny.json")
    assert topo.name == "tiny" and topo.source == "tiny.json"
    assert list(topo.nodes) == ["0", "1", "2"]
    assert topo.nodes["0"].name == "Alpha" and topo.nodes["2"].name == "2"
    assert topo.nodes["0"].domain == "default" and topo.domains == ("default",)
    first, second = topo.links
    assert (first.id, first.wavelengths, first.capacity_gbps) == ("0-1", 8, 100.0)
    assert (second.wavelengths, second.length_km) == (4, 50.5)
    assert first.te_weight is None and first.jitter_ms == 0.0 and first.srlg == ()
    dc = topo.nodes["1"].dc
    assert (dc.id, dc.node, dc.kind) == ("dc1", "1", "dc")
    assert dc.servers[0].cpu == 4 and dc.servers[0].memory_gb == 16.0


def test_defaults_section_is_optional():
    data = changed(lambda d: d.pop("defaults"))
    link = from_dict(data).links[0]
    assert (link.wavelengths, link.capacity_gbps, link.jitter_ms) == (40, 10.0, 0.0)


def test_defaults_te_weight_and_jitter_apply_to_links_that_do_not_give_them():
    def edit(d):
        d["defaults"].update(te_weight=2.5, jitter_ms=0.1)
        d["links"][1].update(te_weight=0, jitter_ms=0)
    first, second = from_dict(changed(edit)).links
    assert (first.te_weight, first.jitter_ms) == (2.5, 0.1)
    assert (second.te_weight, second.jitter_ms) == (0, 0)


def test_dpid_is_id_plus_one_for_numeric_ids_else_position_plus_one():
    def edit(d):
        d["nodes"] = [{"id": "7"}, {"id": "x"}, {"id": "y", "dpid": 100}, {"id": "²"}]
        d["links"] = []
    topo = from_dict(changed(edit))
    assert [n.dpid for n in topo.nodes.values()] == [8, 2, 100, 4]


def test_fibre_ports_count_from_3_in_file_order_unless_named():
    def edit(d):
        d["links"] = [{"a": "0", "b": "1", "length_km": 1},
                      {"a": "0", "b": "2", "length_km": 1, "ports": {"0": 10}},
                      {"a": "2", "b": "1", "length_km": 1}]
    links = from_dict(changed(edit)).links
    assert [(link.a_port, link.b_port) for link in links] == [(3, 3), (10, 3), (4, 4)]
    assert links[1].port("0") == 10 and links[1].port("2") == 3
    assert {USER_PORT, DC_PORT} == {1, 2}


def test_largest_wavelength_count_keeps_vlan_vid_valid():
    data = changed(lambda d: d["defaults"].update(wavelengths=schema.MAX_WAVELENGTHS))
    link = from_dict(data).links[0]
    assert link.wavelengths == 3094 and schema.VID_BASE + link.wavelengths <= 4094


def test_unicode_names_and_ids_are_fine():
    def edit(d):
        d["nodes"][0].update(id="Zürich", name="Zürich Hauptbahnhof ✓")
        d["links"][0]["a"] = "Zürich"
    topo = from_dict(changed(edit))
    assert topo.nodes["Zürich"].name.startswith("Zürich") and topo.nodes["Zürich"].dpid == 1


def test_name_defaults_to_the_file_name(tmp_path):
    path = tmp_path / "mynet.json"
    path.write_text(json.dumps(changed(lambda d: d.pop("name"))), encoding="utf-8")
    assert load(str(path)).name == "mynet"
    assert from_dict(changed(lambda d: d.pop("name"))).name == "unnamed"


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_text("\ufeff" + BASE, encoding="utf-8")
    assert load(str(path)).name == "tiny"


def test_disconnected_topologies_load():
    data = changed(lambda d: d["links"].pop())
    assert len(from_dict(data).links) == 1


def test_srlg_and_explicit_ids_and_edge_clusters():
    def edit(d):
        d["links"][0].update(id="f1", srlg=["duct-7", "bridge"])
        d["nodes"][1]["dc"].update(id="edge-1", kind="edge")
    topo = from_dict(changed(edit))
    assert topo.link("f1").srlg == ("duct-7", "bridge")
    assert topo.nodes["1"].dc.kind == "edge" and topo.nodes["1"].dc.id == "edge-1"


# --- rejected -----------------------------------------------------------------------------

def _set(path, value):
    """An edit that sets data[path[0]][path[1]]... = value."""
    def edit(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return edit


def _drop(path):
    def edit(d):
        for key in path[:-1]:
            d = d[key]
        del d[path[-1]]
    return edit


SERVER = {"id": "s1", "cpu": 1, "memory_gb": 1, "disk_gb": 1}

REJECTED = [
    # (edit, JSON path, reason pattern)
    (_drop(["nodes"]), "$.nodes", "required field is missing"),
    (_drop(["links"]), "$.links", "required field is missing"),
    (_drop(["links", 1, "length_km"]), "$.links[1].length_km", "required field is missing"),
    (_drop(["nodes", 0, "id"]), "$.nodes[0].id", "required field is missing"),
    (_drop(["nodes", 1, "dc", "servers", 0, "cpu"]), "$.nodes[1].dc.servers[0].cpu",
     "required field is missing"),
    (_set(["nodez"], []), "$.nodez", 'unknown field "nodez" \\(allowed: name, '),
    (_set(["nodes", 2, "colour"], "red"), "$.nodes[2].colour", 'unknown field "colour"'),
    (_set(["links", 0, "lenght_km"], 1), "$.links[0].lenght_km", 'unknown field "lenght_km"'),
    (_set(["defaults", "w"], 1), "$.defaults.w", 'unknown field "w"'),
    (_set(["nodes"], {}), "$.nodes", "expected an array, got an object"),
    (_set(["nodes"], []), "$.nodes", "at least 1 item"),
    (_set(["nodes", 0], "0"), "$.nodes[0]", 'expected an object, got string "0"'),
    (_set(["nodes", 0, "id"], 0), "$.nodes[0].id", "expected an id .*, got integer 0"),
    (_set(["nodes", 0, "id"], ""), "$.nodes[0].id", "must be a non-empty string"),
    (_set(["nodes", 0, "id"], " 0"), "$.nodes[0].id", "leading/trailing spaces"),
    (_set(["nodes", 0, "id"], "a\tb"), "$.nodes[0].id", "control characters"),
    (_set(["nodes", 0, "id"], "x" * 65), "$.nodes[0].id", "longer than 64"),
    (_set(["nodes", 0, "name"], 5), "$.nodes[0].name", "expected a string, got integer 5"),
    (_set(["nodes", 2, "id"], "0"), "$.nodes[2].id",
     r'duplicate node id "0": already at \$.nodes\[0\].id'),
    (_set(["nodes", 2, "dpid"], 2), "$.nodes[2].dpid",
     r"duplicate dpid 2: already at \$.nodes\[1\].dpid"),
    (_set(["nodes", 0, "dpid"], 0), "$.nodes[0].dpid", "must be at least 1, got integer 0"),
    (_set(["nodes", 0, "dpid"], 2 ** 64), "$.nodes[0].dpid", "must be at most 1844"),
    (_set(["nodes", 0, "dpid"], True), "$.nodes[0].dpid", "expected an integer, got true"),
    (_set(["nodes", 0, "dpid"], 1.0), "$.nodes[0].dpid", "expected an integer, got number 1.0"),
    (_set(["nodes", 0, "lat"], 10), "$.nodes[0].lon", "lat and lon go together"),
    (_set(["nodes", 0, "lat"], 91), "$.nodes[0].lat", "must be at most 90"),
    (_set(["nodes", 0, "domain"], ""), "$.nodes[0].domain", "non-empty"),
    (_set(["nodes", 1, "dc", "kind"], "cloud"), "$.nodes[1].dc.kind",
     'must be one of dc, edge, got "cloud"'),
    (_set(["nodes", 1, "dc", "servers"], []), "$.nodes[1].dc.servers", "at least 1 item"),
    (_set(["nodes", 2, "dc"], {"servers": [SERVER, SERVER]}), "$.nodes[2].dc.servers[1].id",
     r'duplicate server id "s1": already at \$.nodes\[2\].dc.servers\[0\].id'),
    (_set(["nodes", 2, "dc"], {"servers": [dict(SERVER, id="s0")]}),
     "$.nodes[2].dc.servers[0].id", 'duplicate server id "s0"'),
    (_set(["nodes", 2, "dc"], {"id": "dc1", "servers": [SERVER]}), "$.nodes[2].dc.id",
     'duplicate data centre id "dc1"'),
    (_set(["nodes", 1, "dc", "servers", 0, "cpu"], 0), "$.nodes[1].dc.servers[0].cpu",
     "must be at least 1"),
    (_set(["nodes", 1, "dc", "servers", 0, "cpu"], True), "$.nodes[1].dc.servers[0].cpu",
     "expected an integer, got true"),
    (_set(["nodes", 1, "dc", "servers", 0, "memory_gb"], 0),
     "$.nodes[1].dc.servers[0].memory_gb", "must be greater than 0"),
    (_set(["nodes", 1, "dc", "servers", 0, "disk_gb"], -1), "$.nodes[1].dc.servers[0].disk_gb",
     "must be greater than 0, got integer -1"),
    (_set(["links", 0, "b"], "9"), "$.links[0].b", 'unknown node "9"'),
    (_set(["links", 0, "a"], 0), "$.links[0].a", "expected an id"),
    (_set(["links", 0, "b"], "0"), "$.links[0].b", 'self-loop: both ends are node "0"'),
    (_set(["links", 1], {"a": "1", "b": "0", "length_km": 5}), "$.links[1]",
     r'duplicate link between "1" and "0": already at \$.links\[0\]'),
    (_set(["links", 1, "id"], "0-1"), "$.links[1].id", 'duplicate link id "0-1"'),
    (_set(["links", 0, "length_km"], 0), "$.links[0].length_km", "must be greater than 0"),
    (_set(["links", 0, "length_km"], -3.5), "$.links[0].length_km", "greater than 0"),
    (_set(["links", 0, "length_km"], 50000), "$.links[0].length_km",
     "at most 40075, got integer 50000 .*circumference"),
    (_set(["links", 0, "length_km"], "100"), "$.links[0].length_km",
     'expected a number, got string "100"'),
    (_set(["links", 0, "length_km"], True), "$.links[0].length_km", "expected a number, got true"),
    (_set(["links", 0, "length_km"], None), "$.links[0].length_km", "expected a number, got null"),
    (_set(["links", 0, "length_km"], float("nan")), "$.links[0].length_km",
     "must be a finite number, got number NaN"),
    (_set(["links", 0, "length_km"], float("inf")), "$.links[0].length_km", "finite"),
    (_set(["links", 0, "capacity_gbps"], 10 ** 400), "$.links[0].capacity_gbps",
     "number too large"),
    (_set(["links", 0, "wavelengths"], 0), "$.links[0].wavelengths", "at least 1"),
    (_set(["links", 0, "wavelengths"], 3095), "$.links[0].wavelengths",
     "at most 3094, got integer 3095 .*VLAN VID 1000"),
    (_set(["links", 0, "wavelengths"], 10 ** 30), "$.links[0].wavelengths", "very large"),
    (_set(["defaults", "wavelengths"], 0), "$.defaults.wavelengths", "at least 1"),
    (_set(["defaults", "capacity_gbps"], 0), "$.defaults.capacity_gbps", "greater than 0"),
    (_set(["links", 0, "capacity_gbps"], -10), "$.links[0].capacity_gbps", "greater than 0"),
    (_set(["links", 0, "te_weight"], -1), "$.links[0].te_weight", "at least 0"),
    (_set(["defaults", "te_weight"], -1), "$.defaults.te_weight", "at least 0"),
    (_set(["links", 0, "jitter_ms"], -0.5), "$.links[0].jitter_ms", "at least 0"),
    (_set(["links", 0, "srlg"], "duct"), "$.links[0].srlg", "expected an array"),
    (_set(["links", 0, "srlg"], ["d", "d"]), "$.links[0].srlg[1]", 'duplicate SRLG "d"'),
    (_set(["links", 0, "ports"], {"0": 1}), '$.links[0].ports["0"]',
     "at least 3, got integer 1 .*reserved for the user and DC hosts"),
    (_set(["links", 0, "ports"], {"1": 2}), '$.links[0].ports["1"]', "at least 3"),
    (_set(["links", 0, "ports"], {"0": "3"}), '$.links[0].ports["0"]', "expected an integer"),
    (_set(["links", 0, "ports"], {"2": 5}), '$.links[0].ports["2"]',
     'node "2" is not an end of this link'),
    (_set(["links", 1, "ports"], {"1": 3}), '$.links[1].ports["1"]',
     r'duplicate port 3 on node "1": already at \$.links\[0\]'),
    (_set(["links", 0, "ports"], {"0": 0xFFFFFF01}), '$.links[0].ports["0"]', "at most"),
]


@pytest.mark.parametrize("edit, path, reason", REJECTED,
                         ids=[f"{p} {r[:30]}" for _, p, r in REJECTED])
def test_rejected(edit, path, reason):
    err = rejected(changed(edit), source="tiny.json")
    assert (err.source, err.path) == ("tiny.json", path)
    assert re.search(reason, err.reason), err.reason
    assert str(err) == f"tiny.json: {path}: {err.reason}"


def test_default_dpid_clashing_with_an_explicit_one():
    def edit(d):
        d["nodes"] = [{"id": "a", "dpid": 5}, {"id": "4"}]
        d["links"] = []
    err = rejected(changed(edit))
    assert err.path == "$.nodes[1].dpid" and "duplicate dpid 5" in err.reason


def test_default_dpid_of_a_huge_numeric_id():
    data = changed(lambda d: d["nodes"].append({"id": "9" * 30}))
    assert "give a dpid" in rejected(data).reason


def _first_length(text: str) -> str:
    """BASE with the first link's length_km written as `text`."""
    return BASE.replace('"length_km": 100}', f'"length_km": {text}}}')


REJECTED_TEXT = [
    ('{"nodes": [}', "$", "invalid JSON at line 1, column 12"),
    (BASE.replace('"b": "2"', '"b" "2"'), "$", "invalid JSON at line 11, column 20"),
    ("", "$", "invalid JSON at line 1, column 1"),
    ("[]", "$", "expected an object, got an array"),
    ("null", "$", "expected an object, got null"),
    ('"topology"', "$", 'expected an object, got string "topology"'),
    ("3.5", "$", "expected an object, got number 3.5"),
    (BASE.replace('"name": "tiny",', '"name": "tiny", "name": "again",'), "$.name",
     "given more than once"),
    (_first_length("NaN"), "$.links[0].length_km", "got number NaN"),
    (_first_length("1e400"), "$.links[0].length_km", "got number Infinity"),
    (_first_length("-Infinity"), "$.links[0].length_km", "finite"),
    (_first_length("1" * 5000), "$", "invalid JSON: .*digits"),
    (BASE.replace('"wavelengths": 4}', '"ports": {"2": 5, "2": 6}}'), '$.links[1].ports["2"]',
     "given more than once"),
    (BASE.replace('"Alpha"', r'"\ud800"'), "$.nodes[0].name", "not valid Unicode"),
    ("[" * 100000, "$", "invalid JSON"),
]


@pytest.mark.parametrize("text, path, reason", REJECTED_TEXT,
                         ids=[f"{p} {r[:30]}" for _, p, r in REJECTED_TEXT])
def test_rejected_text(text, path, reason):
    err = rejected(text, source="t.json")
    assert err.path == path
    assert re.search(reason, err.reason), err.reason


@pytest.mark.parametrize("value, shown", [({1: 2}, "object keys must be strings"),
                                          ({"nodes": {3}, "links": []}, "a Python set")])
def test_python_values_that_are_not_json(value, shown):
    assert shown in rejected(value).reason


def test_errors_are_value_errors_with_source_path_reason():
    err = TopologyError("f.json", "$.links[3].length_km", "must be greater than 0")
    assert isinstance(err, ValueError)
    assert str(err) == "f.json: $.links[3].length_km: must be greater than 0"


# --- files and names -----------------------------------------------------------------------

def test_resolve_names_and_paths(tmp_path):
    nsfnet = os.path.join(TOPOLOGY_DIR, "nsfnet.json")
    assert resolve("nsfnet") == nsfnet and resolve("nsfnet.json") == nsfnet
    assert resolve(nsfnet) == nsfnet
    with pytest.raises(TopologyError) as info:
        resolve(str(tmp_path / "missing.json"))
    assert "shipped: nsfnet, nsfnet-small, ring, three-domain" in info.value.reason
    with pytest.raises(TopologyError):
        load(str(tmp_path))   # a directory is not a topology file


def test_unreadable_file(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"name": "\xe9"}')
    err = rejected_load(str(path))
    assert err.path == "$" and "cannot read the file" in err.reason


def rejected_load(path: str) -> TopologyError:
    with pytest.raises(TopologyError) as info:
        load(path)
    return info.value


def test_names_lists_the_shipped_topologies():
    assert {"nsfnet", "ring", "three-domain"} <= set(names())


@pytest.mark.parametrize("name", ["nsfnet", "ring", "three-domain"])
def test_shipped_files_load_and_use_the_canonical_layout(name):
    topo = load(name)
    assert topo.name == name
    with open(resolve(name), encoding="utf-8") as handle:
        text = handle.read()
    assert text == dumps(json.loads(text))
    assert all(node.dpid == int(node.id) + 1 for node in topo.nodes.values())
    assert _connected(topo)


NSFNET_KM = ("0-1 1100  0-2 1600  0-7 2800  1-2 600   1-3 1000  2-5 2000  3-4 600   3-10 2400 "
             "4-5 1100 4-6 800 5-9 1200  5-13 2000 6-7 700   7-8 700   8-9 900   8-11 500  "
             "8-12 500  10-11 800 10-12 800 11-13 300 12-13 300")


def test_nsfnet_is_the_reference_network():
    topo = load("nsfnet")
    pairs = NSFNET_KM.split()
    expected = {pairs[i]: float(pairs[i + 1]) for i in range(0, len(pairs), 2)}
    assert {link.id: link.length_km for link in topo.links} == expected
    assert list(topo.nodes) == [str(i) for i in range(14)]
    assert topo.nodes["7"].name == "UrbanaChampaign" and topo.nodes["13"].name == "CollegePark"
    assert topo.dc_nodes() == ["1", "4", "7", "9", "12"]
    assert {(link.wavelengths, link.capacity_gbps) for link in topo.links} == {(40, 10.0)}


def test_ring_is_small_and_single_domain():
    topo = load("ring")
    assert list(topo.nodes) == [str(i) for i in range(6)] and len(topo.links) == 6
    assert {link.wavelengths for link in topo.links} == {4}
    assert len(topo.domains) == 1 and 1 <= len(topo.dc_nodes()) <= 2
    assert all(topo.link_between(str(i), str((i + 1) % 6)) for i in range(6))


def test_three_domain_is_a_chain_of_a_b_c():
    topo = load("three-domain")
    assert topo.domains == ("A", "B", "C")
    between = {}
    for link in topo.links:
        if topo.is_inter_domain(link):
            pair = "".join(sorted(topo.nodes[link.a].domain + topo.nodes[link.b].domain))
            between[pair] = between.get(pair, 0) + 1
    assert between["AB"] >= 2 and between["BC"] >= 2
    for domain in topo.domains:
        members = [n.id for n in topo.nodes.values() if n.domain == domain]
        assert 4 <= len(members) <= 5
        assert _connected(topo, members)
    assert len({topo.nodes[n].domain for n in topo.dc_nodes()}) >= 2


def _connected(topo, members=None) -> bool:
    members = set(topo.nodes if members is None else members)
    start = next(iter(members))
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for link in topo.links:
            if node in (link.a, link.b) and link.other(node) in members - seen:
                seen.add(link.other(node))
                todo.append(link.other(node))
    return seen == members


def test_dumps_round_trips():
    data = base()
    assert json.loads(dumps(data)) == data
    assert all(len(line) <= 100 for line in dumps(data).splitlines())


def _doc() -> str:
    doc_path = os.path.join(os.path.dirname(TOPOLOGY_DIR), "docs", "topology-format.md")
    with open(doc_path, encoding="utf-8") as handle:
        return handle.read()


def test_every_schema_field_is_documented():
    doc = _doc()
    for section, fields in schema.SECTIONS.items():
        for field in fields:
            assert f"`{field.name}`" in doc, (section, field.name)


def test_from_dict_does_not_change_its_input():
    data = base()
    kept = copy.deepcopy(data)
    from_dict(data)
    assert data == kept


def test_the_documented_example_loads_as_described():
    example = _doc().split("```json")[1].split("```")[0]
    topo = loads(example)
    to_beta, to_gamma = topo.links
    assert (to_beta.port("1"), to_gamma.port("1"), to_gamma.port("2")) == (3, 4, 10)
    assert topo.domains == ("A", "B")
