"""Protection on the fake network: a disjoint backup behind OpenFlow fast-failover groups.

The SC runs on the six-node ring with every switch connected. A protected lightpath
0 -> 2 works on 0-1-2 and is protected by 0-5-4-3-2; each end's ingress has a
fast-failover group. The tests cut fibres in the fake switches (port liveness) and,
where the SC would hear of it, report the port status too.
"""
import os

from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

import openapi_check
from sc_app import flows
from sc_app.lightpath import DOWN, UP
from sc_harness import TABLE_FULL, make_sc, state_dir, sc, settle  # noqa: F401 (fixtures)

SPEC_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi-sc.yaml")
LP = {"src": "10.1.0.1", "dst": "10.1.2.1", "protection": "link"}
SRC, DST = LP["src"], LP["dst"]


def establish(sc, body=LP, ac="ac1"):
    reply = sc.client(ac).post("/asi/v1/lightpaths", body)
    assert reply.status == 201, reply.json
    return reply.json


def links_crossed(sc, src, dst):
    return [hop.link for hop in sc.forward(src, dst).fibres]


def vlans_crossed(sc, src, dst):
    return {hop.packet.vlans for hop in sc.forward(src, dst).fibres}


def delivered(sc, src, dst):
    return [n for n, _, _ in sc.delivered_to(src, dst)]


def cut(sc, link_id, report=False):
    """The fibre's ports go down in the switches; ``report``: the SC hears of it (port status)."""
    sc.net.cut(sc.topology, link_id)
    if report:
        link = sc.topology.link(link_id)
        sc.core.pa.port_changed(sc.dpid(link.a), link.a_port, False)
        sc.core.pa.port_changed(sc.dpid(link.b), link.b_port, False)
        settle(sc)


def held(sc, owner):
    return {w: sorted(links) for w, links in sc.core.ted.held(owner).items()}


def group_mods(sc):
    return [(dpid, msg) for dpid, msg in sc.transport.sent
            if isinstance(msg, (parser.OFPFlowMod, parser.OFPGroupMod))]


def test_a_protected_lightpath_holds_two_disjoint_routes_and_two_wavelengths(sc):
    lp = establish(sc)
    prot = lp["protection"]
    assert lp["route"] == ["0", "1", "2"] and prot["route"] == ["0", "5", "4", "3", "2"]
    assert prot["mode"] == "link" and not set(lp["links"]) & set(prot["links"])
    assert prot["vlan_vid"] == 1000 + prot["wavelength"]
    assert held(sc, lp["id"]) == (
        {lp["wavelength"]: sorted(lp["links"] + prot["links"])}
        if lp["wavelength"] == prot["wavelength"]
        else {lp["wavelength"]: sorted(lp["links"]), prot["wavelength"]: sorted(prot["links"])})
    # Persisted: the DBM gives the same record back.
    assert sc.core.db.get_lightpath(lp["id"]) == sc.core.service.lightpaths[lp["id"]]
    assert sc.client().get(f"/asi/v1/lightpaths/{lp['id']}").json["protection"] == prot
    openapi_check.validator(openapi_check.load_spec(SPEC_FILE),
                            "/components/schemas/Lightpath").validate(lp)
    # One fast-failover group per direction, at each end's ingress, working bucket first.
    cookie = int(lp["cookie"], 16)
    for node, reverse, first_w, first_p in (
            ("0", False, lp["links"][0], prot["links"][0]),
            ("2", True, lp["links"][-1], prot["links"][-1])):
        groups = sc.net.groups(sc.dpid(node))
        (group_id,) = groups
        assert group_id == flows.protection_group_id(cookie, reverse)
        group = groups[group_id]
        assert group.type == ofp.OFPGT_FF
        ports = [sc.topology.link(first_w).port(node), sc.topology.link(first_p).port(node)]
        assert [watch for watch, _ in group.buckets] == ports


def test_traffic_takes_the_working_route_both_ways(sc):
    lp = establish(sc)
    assert links_crossed(sc, SRC, DST) == lp["links"]
    assert links_crossed(sc, DST, SRC) == lp["links"][::-1]
    assert vlans_crossed(sc, SRC, DST) == {(lp["vlan_vid"],)}
    assert delivered(sc, SRC, DST) == ["2"] and delivered(sc, DST, SRC) == ["0"]


def test_a_cut_next_to_the_ingress_fails_over_with_no_message_from_the_sc(sc):
    lp = establish(sc)
    prot = lp["protection"]
    before = len(sc.transport.sent)
    cut(sc, "0-1")  # the switches see it; the SC is not even told
    assert links_crossed(sc, SRC, DST) == prot["links"]
    assert vlans_crossed(sc, SRC, DST) == {(prot["vlan_vid"],)}
    assert delivered(sc, SRC, DST) == ["2"]
    assert len(sc.transport.sent) == before  # no flow mod, no group mod
    # The other way the cut is at the egress: node 1 cannot pass it on (the SC's part).
    assert delivered(sc, DST, SRC) == []


def test_the_sc_turns_the_far_end_with_one_group_mod_and_no_flow_mod(sc):
    lp = establish(sc)
    prot = lp["protection"]
    before = len(sc.transport.sent)
    cut(sc, "0-1", report=True)
    sent = [(dpid, msg) for dpid, msg in sc.transport.sent[before:]
            if not isinstance(msg, parser.OFPBarrierRequest)]
    assert [(dpid, type(msg), msg.command) for dpid, msg in sent] == [
        (sc.dpid("2"), parser.OFPGroupMod, ofp.OFPGC_MODIFY)]
    assert links_crossed(sc, SRC, DST) == prot["links"]
    assert links_crossed(sc, DST, SRC) == prot["links"][::-1]
    assert delivered(sc, DST, SRC) == ["0"] and delivered(sc, SRC, DST) == ["2"]
    # Not re-routed: same routes, same cookie, still up; the fibre's alarm only.
    now = sc.core.service.lightpaths[lp["id"]]
    assert now.state == UP and list(now.route) == lp["route"]
    assert f"{now.cookie:#018x}" == lp["cookie"]


def test_a_break_in_the_middle_is_turned_by_the_sc_at_both_ends(sc):
    lp = establish(sc, {"src": "10.1.0.1", "dst": "10.1.3.1", "protection": "link"})
    assert len(lp["route"]) == 4 and len(lp["protection"]["route"]) == 4
    middle = lp["links"][1]
    cut(sc, middle)
    assert delivered(sc, "10.1.0.1", "10.1.3.1") == []  # the ingress cannot see it
    cut(sc, middle, report=True)
    assert links_crossed(sc, "10.1.0.1", "10.1.3.1") == lp["protection"]["links"]
    assert delivered(sc, "10.1.0.1", "10.1.3.1") == ["3"]
    assert delivered(sc, "10.1.3.1", "10.1.0.1") == ["0"]


def test_both_routes_broken_is_down_and_a_repair_brings_it_up_untouched(sc):
    lp = establish(sc)
    cut(sc, "0-1", report=True)
    cut(sc, lp["protection"]["links"][1], report=True)
    assert sc.core.service.lightpaths[lp["id"]].state == DOWN
    link = sc.topology.link(lp["protection"]["links"][1])
    sc.net.cut(sc.topology, link.id, up=True)
    sc.core.pa.port_changed(sc.dpid(link.a), link.a_port, True)
    sc.core.pa.port_changed(sc.dpid(link.b), link.b_port, True)
    settle(sc)
    assert sc.core.service.lightpaths[lp["id"]].state == UP
    assert delivered(sc, SRC, DST) == ["2"] and delivered(sc, DST, SRC) == ["0"]


def test_teardown_leaves_no_entry_no_group_and_no_wavelength(sc):
    lp = establish(sc)
    reply = sc.client().delete(f"/asi/v1/lightpaths/{lp['id']}")
    assert reply.status in (200, 204), reply.json
    for node in sc.topology.nodes:
        assert sc.net.table(sc.dpid(node)).entries == [] or all(
            e.cookie == flows.BASE_COOKIE for e in sc.net.table(sc.dpid(node)).entries)
        assert sc.net.groups(sc.dpid(node)) == {}
    assert held(sc, lp["id"]) == {}
    assert sc.core.db.get_lightpath(lp["id"]) is None
    # Everything was sent after the entries' deletion: groups last.
    kinds = [type(msg) for _, msg in group_mods(sc)]
    assert kinds[-2:] == [parser.OFPGroupMod, parser.OFPGroupMod]


def test_srlg_protection_and_refusals(sc):
    lp = establish(sc, {**LP, "protection": "srlg"})
    assert lp["protection"]["mode"] == "srlg"
    local = sc.client().post("/asi/v1/lightpaths",
                             {"src": "10.1.2.1", "dst": "2", "protection": "link"})
    assert local.status == 422, local.json
    bad = sc.client().post("/asi/v1/lightpaths", {**LP, "protection": "1+1"})
    assert bad.status == 400, bad.json


def test_an_unprotected_lightpath_is_unchanged(sc):
    reply = sc.client().post("/asi/v1/lightpaths", {"src": SRC, "dst": DST})
    assert reply.status == 201 and reply.json["protection"] is None
    assert all(sc.net.groups(sc.dpid(n)) == {} for n in sc.topology.nodes)


def test_a_refused_install_leaves_no_group_no_entry_and_no_wavelength(sc):
    sc.transport.refuse[sc.dpid("4")] = TABLE_FULL  # a transit switch of the protection route
    reply = sc.client().post("/asi/v1/lightpaths", LP)
    assert reply.status == 503, reply.json
    for node in sc.topology.nodes:
        assert sc.net.groups(sc.dpid(node)) == {}
        assert all(e.cookie == flows.BASE_COOKIE for e in sc.net.table(sc.dpid(node)).entries)
    assert sc.core.ted.held("lp-1") == {}
    assert sc.core.service.lightpaths == {}


def test_a_database_without_the_protection_column_gets_it(tmp_path):
    import sqlite3

    from sc_app.dbm import Database
    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE lightpaths (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                "service_type TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, "
                "src_endpoint TEXT NOT NULL, dst_endpoint TEXT NOT NULL, route TEXT NOT NULL, "
                "links TEXT NOT NULL, wavelength INTEGER, cookie INTEGER NOT NULL UNIQUE, "
                "state TEXT NOT NULL, constraints TEXT NOT NULL, created_at REAL NOT NULL, "
                "updated_at REAL NOT NULL, reason TEXT)")
    old.commit()
    old.close()
    db = Database(path)
    try:
        assert db.list_lightpaths() == []
        columns = {row[1] for row in db._read("PRAGMA table_info(lightpaths)")}
        assert "protection" in columns
    finally:
        db.close()


def test_a_restarted_sc_holds_both_wavelengths_again(state_dir):
    first = make_sc(state_dir)
    lp = establish(first)
    held = first.ted_state()["links"]
    first.close()
    second = make_sc(state_dir)
    try:
        assert second.ted_state()["links"] == held
        backup = lp["protection"]
        for link in backup["links"]:
            assert second.core.ted.owner(link, backup["wavelength"]) == lp["id"]
    finally:
        second.close()


# -- groups read back during reconciliation ---------------------------------------------------

def first_ports(sc, dpid, group_id):
    """The watch ports of a group's buckets on switch ``dpid``, in order."""
    return [port for port, _ in sc.net.groups(dpid)[group_id].buckets]


def group_messages(sc, since):
    return [(dpid, msg.command, msg.group_id) for dpid, msg in sc.transport.sent[since:]
            if isinstance(msg, parser.OFPGroupMod)]


def ingress(sc, lp):
    cookie = int(lp["cookie"], 16)
    return sc.dpid(lp["route"][0]), flows.protection_group_id(cookie, False), cookie


def test_correct_groups_are_read_back_and_left_alone(sc):
    lp = establish(sc)
    dpid, group_id, _ = ingress(sc, lp)
    group = sc.net.groups(dpid)[group_id]
    before = len(sc.transport.sent)
    result = sc.core.reconciler.reconcile(dpid)
    assert result.ok and result.groups_kept == 1 and result.messages == 0
    assert group_messages(sc, before) == [] and sc.net.groups(dpid)[group_id] is group
    sent = [type(m) for _, m in sc.transport.sent[before:]]
    assert sent == [parser.OFPFlowStatsRequest, parser.OFPGroupDescStatsRequest]


def test_a_deleted_group_is_added_again_with_its_entries_and_traffic_flows(sc):
    """`ovs-ofctl del-groups`: the group goes, and with it the ingress entries using it."""
    lp = establish(sc)
    dpid, group_id, cookie = ingress(sc, lp)
    others = [e for e in sc.net.table(dpid).entries if e.cookie == cookie
              and not e.uses_group(group_id)]
    sc.net.send(dpid, flows.delete_group(ofp.OFPG_ALL))
    assert delivered(sc, SRC, DST) == []
    before = len(sc.transport.sent)
    result = sc.core.reconciler.reconcile(dpid)
    assert result.ok and result.groups_fixed == 1 and result.added >= 1
    assert group_messages(sc, before)[0] == (dpid, ofp.OFPGC_ADD, group_id)
    assert delivered(sc, SRC, DST) == ["2"] and delivered(sc, DST, SRC) == ["0"]
    # The entries that stayed were not touched.
    assert all(any(e is o for e in sc.net.table(dpid).entries) for o in others)


def test_a_group_with_wrong_buckets_is_modified_and_a_stale_group_deleted(sc):
    lp = establish(sc)
    dpid, group_id, _ = ingress(sc, lp)
    good = first_ports(sc, dpid, group_id)
    wrong = parser.OFPGroupMod(None, ofp.OFPGC_MODIFY, ofp.OFPGT_FF, group_id, [
        parser.OFPBucket(watch_port=good[0], actions=[parser.OFPActionOutput(good[0])])])
    stale_id = flows.protection_group_id(int(lp["cookie"], 16) + 7, False)
    stale = parser.OFPGroupMod(None, ofp.OFPGC_ADD, ofp.OFPGT_FF, stale_id, [
        parser.OFPBucket(watch_port=good[0], actions=[parser.OFPActionOutput(good[0])])])
    assert sc.net.send(dpid, wrong) is None and sc.net.send(dpid, stale) is None
    entries = list(sc.net.table(dpid).entries)
    before = len(sc.transport.sent)
    result = sc.core.reconciler.reconcile(dpid)
    assert (result.groups_fixed, result.groups_deleted, result.messages) == (1, 1, 2)
    assert group_messages(sc, before) == [(dpid, ofp.OFPGC_MODIFY, group_id),
                                          (dpid, ofp.OFPGC_DELETE, stale_id)]
    assert first_ports(sc, dpid, group_id) == good and stale_id not in sc.net.groups(dpid)
    assert all(a is b for a, b in zip(sc.net.table(dpid).entries, entries))  # untouched
    assert delivered(sc, SRC, DST) == ["2"]


def test_a_group_the_sc_turned_stays_turned_across_a_restart_and_a_lost_group(state_dir):
    first = make_sc(state_dir)
    lp = establish(first)
    cut(first, "0-1", report=True)  # the SC turns the far end (s2) protection-first
    far = first.dpid(lp["route"][-1])
    group_id = flows.protection_group_id(int(lp["cookie"], 16), True)
    turned = first_ports(first, far, group_id)
    assert first.core.service.switched == {lp["id"]: {True}}
    tables = first.net.tables
    first.close()
    second = make_sc(state_dir, connect=False)
    try:
        second.net.tables = tables
        assert second.core.service.switched == {lp["id"]: {True}}  # from the DBM
        before = len(second.transport.sent)
        second.connect_all()
        assert group_messages(second, before) == []  # read back as it should be: kept
        # The switch loses the group: it comes back turned, not working-first.
        second.net.send(far, flows.delete_group(group_id))
        second.core.reconciler.reconcile(far)
        assert first_ports(second, far, group_id) == turned
        assert delivered(second, DST, SRC) == ["0"]
        # Torn down: nothing of it stays in the DBM.
        assert second.client().delete(f"/asi/v1/lightpaths/{lp['id']}").status in (200, 204)
        assert second.core.db.list_switched() == {}
    finally:
        second.close()
