"""Flow reconciliation on switch (re)connect, SMI resync and SC restart (sc_app.reconcile).

The SC runs on fake switches (sc_harness); a test spoils a switch's table the way a crash,
a lost connection or a switch restart would, lets the switch reconnect, and checks that
only what was wrong changed: correct entries are the very same objects afterwards (their
packet counters keep counting), stale ones are gone, missing ones are back.
"""
import dataclasses

import eventlet
import pytest
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from fake_of13 import FakeNetwork
from sc_app import flows, reconcile
from sc_app.lightpath import INSTALLING, LIGHTPATH_COOKIE_TAG
from sc_harness import make_sc, sc, state_dir  # noqa: F401 (fixtures)

LP = "/asi/v1/lightpaths"
A = {"src": "10.1.0.1", "dst": "10.1.3.1"}
B = {"src": "10.1.1.1", "dst": "10.1.4.1"}


def setup(sc, body):
    reply = sc.client("ac1").post(LP, body)
    assert reply.status == 201, reply.body
    return reply.json


def lp_entries(sc, dpid):
    return [e for e in sc.net.table(dpid).entries if e.cookie >> 48 == LIGHTPATH_COOKIE_TAG >> 48]


def flow_mods_sent(sc, dpid, since):
    return [m for d, m in sc.transport.sent[since:]
            if d == dpid and isinstance(m, parser.OFPFlowMod) and m.cookie >> 48 == 0x4C50]


def reconnect(sc, node):
    sc.disconnect(node)
    since = len(sc.transport.sent)
    sc.connect(node)
    return since


def test_a_correct_switch_is_left_untouched_and_keeps_counting(sc):
    lp = setup(sc, A)
    setup(sc, B)
    transit = sc.dpid(lp["route"][1])
    assert sc.delivered_to("10.1.0.1", "10.1.3.1")
    before = lp_entries(sc, transit)
    counts = [e.packet_count for e in before]
    assert sum(counts) > 0
    since = reconnect(sc, lp["route"][1])
    assert flow_mods_sent(sc, transit, since) == []  # no lightpath ADD or DELETE at all
    after = lp_entries(sc, transit)
    assert len(after) == len(before) and all(a is b for a, b in zip(after, before))
    assert sc.delivered_to("10.1.0.1", "10.1.3.1")
    assert sum(e.packet_count for e in after) > sum(counts)  # counting on, not reset


def test_entries_of_a_lightpath_the_sc_no_longer_has_are_removed(sc):
    gone = setup(sc, A)
    kept = setup(sc, B)
    cookie = int(gone["cookie"], 16)
    sc.core.service._forget(sc.core.service.lightpaths[gone["id"]])  # e.g. lost in a crash
    shared = set(gone["route"]) & set(kept["route"])
    assert shared
    node = sorted(shared)[0]
    kept_before = [e for e in lp_entries(sc, sc.dpid(node)) if e.cookie != cookie]
    reconnect(sc, node)
    assert sc.dpid(node) not in sc.entries_with(cookie)
    assert lp_entries(sc, sc.dpid(node)) == kept_before
    assert all(a is b for a, b in zip(lp_entries(sc, sc.dpid(node)), kept_before))


def test_only_missing_entries_are_added(sc):
    lp = setup(sc, A)
    node = lp["route"][0]
    dpid = sc.dpid(node)
    entries = lp_entries(sc, dpid)
    assert len(entries) >= 2
    lost, survivor = entries[0], entries[1:]
    sc.net.table(dpid).entries.remove(lost)
    forth = sc.delivered_to("10.1.0.1", "10.1.3.1")
    back = sc.delivered_to("10.1.3.1", "10.1.0.1")
    assert not (forth and back)
    since = reconnect(sc, node)
    sent = flow_mods_sent(sc, dpid, since)
    assert [m.command for m in sent] == [ofp.OFPFC_ADD]
    assert all(any(e is s for e in lp_entries(sc, dpid)) for s in survivor)
    assert sc.delivered_to("10.1.0.1", "10.1.3.1") and sc.delivered_to("10.1.3.1", "10.1.0.1")


def test_an_entry_that_differs_is_replaced_and_the_others_stay(sc):
    lp = setup(sc, A)
    node = lp["route"][1]
    dpid = sc.dpid(node)
    entries = lp_entries(sc, dpid)
    wrong = entries[0]
    wrong.actions = (parser.OFPActionOutput(99),)  # e.g. an operator's edit
    others = entries[1:]
    reconnect(sc, node)
    now = lp_entries(sc, dpid)
    assert len(now) == len(entries)
    assert all(any(e is o for e in now) for o in others)
    assert not any(e is wrong for e in now)
    assert sc.delivered_to("10.1.0.1", "10.1.3.1") and sc.delivered_to("10.1.3.1", "10.1.0.1")


def test_an_entry_held_by_a_stale_cookie_is_replaced_in_place(sc):
    """A crashed re-route swapped an ingress entry to its new (never recorded) cookie."""
    lp = setup(sc, A)
    dpid = sc.dpid(lp["route"][0])
    ingress = [e for e in lp_entries(sc, dpid)
               if flows.PRIO_INGRESS <= e.priority < flows.PRIO_TRANSIT][0]
    ingress.cookie = LIGHTPATH_COOKIE_TAG | 999
    since = reconnect(sc, lp["route"][0])
    sent = flow_mods_sent(sc, dpid, since)
    # The ADD replacing the twin comes first, without the overlap check: no gap.
    assert sent[0].command == ofp.OFPFC_ADD and not sent[0].flags & ofp.OFPFF_CHECK_OVERLAP
    assert sc.dpid(lp["route"][0]) not in sc.entries_with(LIGHTPATH_COOKIE_TAG | 999)
    assert sc.delivered_to("10.1.0.1", "10.1.3.1")


def test_smi_resync_reconciles_without_disturbing_correct_entries(sc):
    lp = setup(sc, A)
    dpid = sc.dpid(lp["route"][1])
    before = lp_entries(sc, dpid)
    reply = sc.client(None).post(f"/smi/v1/switches/{dpid}/resync")
    assert reply.status == 200 and reply.json["messages"] > 0
    assert all(a is b for a, b in zip(lp_entries(sc, dpid), before))


def test_after_a_restart_a_lightpath_cut_short_is_fully_gone_and_the_others_untouched(
        state_dir):
    first = make_sc(state_dir)
    up = setup(first, A)
    cut = setup(first, B)
    record = first.core.service.lightpaths[cut["id"]]
    # The SC died after installing part of B: its record still says installing.
    first.core.db.save_lightpath(dataclasses.replace(record, state=INSTALLING))
    tables = first.net.tables
    kept = {dpid: list(lp_entries(first, dpid)) for dpid in tables}
    first.close()

    second = make_sc(state_dir, connect=False)
    try:
        second.net.tables = tables  # the switches kept their entries (fail-secure)
        assert set(second.core.service.lightpaths) == {up["id"]}
        second.connect_all()
        assert second.entries_with(int(cut["cookie"], 16)) == {}
        up_cookie = int(up["cookie"], 16)
        for dpid, entries in kept.items():
            still = [e for e in entries if e.cookie == up_cookie]
            assert [e for e in lp_entries(second, dpid)] == still
            assert all(a is b for a, b in zip(lp_entries(second, dpid), still))
        assert second.delivered_to("10.1.0.1", "10.1.3.1")
        assert not second.delivered_to("10.1.1.1", "10.1.4.1")
        # B's wavelength is free again, A's is held: B can be set up once more.
        assert second.client("ac1").post(LP, B).status == 201
    finally:
        second.close()


def test_cookies_in_flight_are_left_alone():
    net = FakeNetwork()
    msgs = [m for m in flows.base_flows()]
    stale = parser.OFPFlowMod(None, cookie=LIGHTPATH_COOKIE_TAG | 7, priority=30000,
                              match=parser.OFPMatch(in_port=3),
                              instructions=[parser.OFPInstructionActions(
                                  ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(4)])])
    net.send_all({1: msgs + [stale]})
    stats = [e.stats() for e in net.table(1).entries if e.cookie == stale.cookie]
    assert reconcile.plan({}, stats, lambda cookie: True).messages() == []
    todo = reconcile.plan({}, stats, lambda cookie: False)
    assert todo.stale_cookies == {stale.cookie}


def test_the_tracker_marks_cookies_busy_while_the_installer_works():
    seen = []

    class Installer:
        def install(self, cookie, messages, timeout=None):
            seen.append(tracker.busy(cookie))
            return "done"

        def remove(self, cookie, dpids, timeout=None):
            seen.append(tracker.busy(cookie))
            return "gone"

    tracker = reconcile.CookieTracker(Installer())
    assert tracker.install(5, {}) == "done" and tracker.remove(5, []) == "gone"
    assert seen == [True, True] and not tracker.busy(5)


def test_the_tracker_marks_every_cookie_of_a_batch_busy():
    seen = []

    class Installer:
        def install_many(self, batches, timeout=None):
            seen.append([tracker.busy(cookie) for cookie, _ in batches])
            return ["done"]

        def remove_many(self, removals, timeout=None):
            seen.append([tracker.busy(cookie) for cookie, _ in removals])
            raise RuntimeError("boom")

    tracker = reconcile.CookieTracker(Installer())
    assert tracker.install_many([(5, {}), (6, {})]) == ["done"]
    with pytest.raises(RuntimeError):
        tracker.remove_many([(7, [])])
    assert seen == [[True, True], [True]]
    assert not any(tracker.busy(c) for c in (5, 6, 7))


def test_multipart_replies_add_up_and_a_silent_switch_times_out(sc):
    lp = setup(sc, A)
    dpid = sc.dpid(lp["route"][0])
    rec = sc.core.reconciler
    stats = [e.stats() for e in lp_entries(sc, dpid)]
    assert len(stats) >= 2
    sc.transport.silent.add(dpid)  # the test plays the replies
    reader = eventlet.spawn(rec.read, dpid, 5.0)
    eventlet.sleep(0.01)
    xid = len(sc.transport.sent)  # the harness's xids count the messages sent
    assert isinstance(sc.transport.sent[-1][1], parser.OFPFlowStatsRequest)
    assert rec.on_flow_stats(dpid, xid, stats[:1], True)
    assert rec.on_flow_stats(dpid, xid, stats[1:], False)
    assert reader.wait() == stats
    assert rec.on_flow_stats(dpid, xid, [], False) is False  # nothing waits any more
    result = rec.reconcile(dpid, timeout=0.05)
    assert not result.ok and "no flow stats reply" in result.reason
    sc.transport.silent.discard(dpid)
    assert rec.reconcile(dpid).ok


def test_a_switch_going_away_stops_its_reconciliation(sc):
    dpid = sc.dpid("1")
    sc.transport.silent.add(dpid)
    waiter = eventlet.spawn(sc.core.reconciler.reconcile, dpid, 5.0)
    eventlet.sleep(0.01)
    sc.core.reconciler.on_switch_down(dpid)
    result = waiter.wait()
    assert not result.ok and result.reason == "switch disconnected"


def test_a_lightpath_torn_down_while_being_readded_leaves_nothing_behind():
    cookie = LIGHTPATH_COOKIE_TAG | 8
    entry = parser.OFPFlowMod(None, cookie=cookie, priority=30000,
                              match=parser.OFPMatch(in_port=3),
                              instructions=[parser.OFPInstructionActions(
                                  ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(4)])])
    answers = [{cookie: [entry]}, {}]  # recorded when planned, gone right after

    class Transport:
        def __init__(self):
            self.sent = []

        def send(self, dpid, msg):
            self.sent.append(msg)
            if isinstance(msg, (parser.OFPFlowStatsRequest, parser.OFPGroupDescStatsRequest)):
                eventlet.spawn(rec.on_stats_reply, dpid, len(self.sent), [], False)
            return len(self.sent)

    transport = Transport()
    rec = reconcile.Reconciler(transport, lambda dpid: answers.pop(0), lambda cookie: False)
    result = rec.reconcile(1)
    assert result.ok and result.added == 1
    flow_mods = [m for m in transport.sent if isinstance(m, parser.OFPFlowMod)]
    assert [(m.command, m.cookie) for m in flow_mods] == [
        (ofp.OFPFC_ADD, cookie), (ofp.OFPFC_DELETE, cookie)]
