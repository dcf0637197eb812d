"""The SCI: parallel, barrier-confirmed installs with rollback, against fake switches under
eventlet."""
import itertools

import eventlet
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from fake_of13 import FakeNetwork, ipv4
from sc_app import flows
from sc_app.lightpath import Lightpath, lightpath_cookie, resolve_endpoint
from sc_app.sci import (BARRIER_TIMEOUT, SWITCH_ERROR, SWITCH_UNREACHABLE, FlowInstaller,
                        SwitchUnreachable)
from topologies.loader import load

TOPO = load("nsfnet")
ROUTE = ("0", "1", "3", "4", "6", "7")
DPIDS = [TOPO.nodes[n].dpid for n in ROUTE]


def make_lp(serial, src="10.1.0.1", dst="10.2.7.1", route=ROUTE, wavelength=3):
    links = tuple(TOPO.link_between(a, b).id for a, b in zip(route, route[1:]))
    return Lightpath(f"lp-{serial}", "ac", "vod", src, dst, resolve_endpoint(TOPO, src),
                     resolve_endpoint(TOPO, dst), route, links, wavelength,
                     lightpath_cookie(serial))


class FakeTransport:
    """Switches backed by a FakeNetwork that answer after ``delay`` (or never, or not at all)."""

    def __init__(self, delay=0.0, silent=(), down=(), sync=False):
        self.net = FakeNetwork()
        self.delay, self.silent, self.down, self.sync = delay, set(silent), set(down), sync
        self.xids = itertools.count(1)
        self.sent = []
        self.installer = None

    def send(self, dpid, msg):
        if dpid in self.down:
            raise SwitchUnreachable(f"dpid {dpid} not connected")
        xid = next(self.xids)
        self.sent.append((dpid, msg))
        error = self.net.send(dpid, msg)
        if dpid not in self.silent:
            if error is not None:
                self._reply(self.installer.on_error, dpid, xid, error)
            elif isinstance(msg, parser.OFPBarrierRequest):
                self._reply(self.installer.on_barrier_reply, dpid, xid)
        return xid

    def _reply(self, handler, *args):
        if self.sync:  # the reply overtakes send()'s return: the installer must cope
            handler(*args)
        else:
            eventlet.spawn_after(self.delay, handler, *args)


def setup(**kwargs):
    transport = FakeTransport(**kwargs)
    installer = FlowInstaller(transport, barrier_timeout=0.2)
    transport.installer = installer
    return transport, installer


def lp_entries(net, cookie):
    return sum(1 for t in net.tables.values() for e in t.entries if e.cookie == cookie)


def delivered(net, src="10.1.0.1", dst="10.2.7.1", node="0"):
    return net.forward(TOPO, TOPO.nodes[node].dpid, 1, ipv4(src, dst)).delivered


def test_install_confirms_every_switch_and_carries_traffic():
    transport, installer = setup()
    lp = make_lp(1)
    result = installer.install(lp.cookie, flows.lightpath_flows(TOPO, lp))
    assert result.ok and result.code is None and result.unclean == ()
    barriers = [d for d, m in transport.sent if isinstance(m, parser.OFPBarrierRequest)]
    assert sorted(barriers) == sorted(DPIDS)
    assert delivered(transport.net) == [(TOPO.nodes["7"].dpid, 2, ipv4("10.1.0.1", "10.2.7.1"))]
    assert installer._xids == {}


def test_switches_are_confirmed_in_parallel_and_latency_is_measured():
    transport, installer = setup(delay=0.05)
    lp = make_lp(1)
    result = installer.install(lp.cookie, flows.lightpath_flows(TOPO, lp))
    # Six switches answering after 50 ms each: one round, not six.
    assert result.ok and 0.05 <= result.latency_s < 0.15


def test_replies_that_overtake_send_are_not_lost():
    transport, installer = setup(sync=True)
    lp = make_lp(1)
    assert installer.install(lp.cookie, flows.lightpath_flows(TOPO, lp)).ok


def test_switch_error_rolls_back_every_switch_and_names_the_culprit():
    transport, installer = setup()
    first, clash = make_lp(1), make_lp(2, src="10.1.1.1", dst="10.2.4.1",
                                       route=("1", "3", "4"))  # same wavelength on 1-3, 3-4
    assert installer.install(first.cookie, flows.lightpath_flows(TOPO, first)).ok
    result = installer.install(clash.cookie, flows.lightpath_flows(TOPO, clash))
    assert not result.ok and result.code == SWITCH_ERROR
    assert result.dpid in (TOPO.nodes["3"].dpid, TOPO.nodes["4"].dpid)
    assert "OFPET_FLOW_MOD_FAILED" in result.reason and result.unclean == ()
    assert lp_entries(transport.net, clash.cookie) == 0
    assert delivered(transport.net)  # the first lightpath is untouched


def test_missing_switch_fails_fast_and_the_others_are_cleaned():
    transport, installer = setup(down={DPIDS[2]})
    lp = make_lp(1)
    result = installer.install(lp.cookie, flows.lightpath_flows(TOPO, lp))
    assert (result.ok, result.code, result.dpid) == (False, SWITCH_UNREACHABLE, DPIDS[2])
    assert result.latency_s < 0.1 and result.unclean == (DPIDS[2],)
    assert lp_entries(transport.net, lp.cookie) == 0


def test_silent_switch_times_out_and_is_reported_unclean():
    transport, installer = setup(silent={DPIDS[4]})
    lp = make_lp(1)
    result = installer.install(lp.cookie, flows.lightpath_flows(TOPO, lp), timeout=0.1)
    assert (result.ok, result.code, result.dpid) == (False, BARRIER_TIMEOUT, DPIDS[4])
    assert 0.1 <= result.latency_s < 0.2
    # The silent switch applied the DELETE too, but never confirmed it.
    assert result.unclean == (DPIDS[4],) and lp_entries(transport.net, lp.cookie) == 0


def test_disconnect_during_install_fails_before_the_timeout():
    transport, installer = setup(silent={DPIDS[1]})

    def disconnect():
        transport.down.add(DPIDS[1])
        installer.on_switch_down(DPIDS[1])

    eventlet.spawn_after(0.02, disconnect)
    lp = make_lp(1)
    result = installer.install(lp.cookie, flows.lightpath_flows(TOPO, lp), timeout=5)
    assert (result.code, result.dpid) == (SWITCH_UNREACHABLE, DPIDS[1])
    assert result.latency_s < 1 and result.unclean == (DPIDS[1],)


def test_concurrent_installs_do_not_mix_their_replies():
    transport, installer = setup(delay=0.01)
    lps = [make_lp(1),
           make_lp(2, src="10.1.1.1", dst="10.2.4.1", route=("1", "3", "4"), wavelength=0),
           make_lp(3, src="10.1.9.1", dst="10.2.12.1", route=("9", "8", "12"), wavelength=0)]
    pool = eventlet.GreenPool()
    results = list(pool.imap(lambda lp: installer.install(
        lp.cookie, flows.lightpath_flows(TOPO, lp)), lps))
    assert all(r.ok for r in results)
    assert delivered(transport.net, "10.1.9.1", "10.2.12.1", node="9")
    assert delivered(transport.net, "10.1.1.1", "10.2.4.1", node="1")
    assert delivered(transport.net)


def test_remove_deletes_the_cookie_everywhere_with_barriers():
    transport, installer = setup()
    lp = make_lp(1)
    installer.install(lp.cookie, flows.lightpath_flows(TOPO, lp))
    result = installer.remove(lp.cookie, flows.lightpath_dpids(TOPO, lp))
    assert result.ok and lp_entries(transport.net, lp.cookie) == 0
    assert not delivered(transport.net)


def test_remove_reports_every_switch_it_could_not_reach():
    transport, installer = setup(down={DPIDS[0], DPIDS[5]})
    result = installer.remove(lightpath_cookie(1), DPIDS)
    assert not result.ok and result.code == SWITCH_UNREACHABLE
    assert result.unclean == tuple(sorted((DPIDS[0], DPIDS[5])))


def test_unknown_replies_are_ignored():
    transport, installer = setup()
    assert installer.on_barrier_reply(1, 999) is False
    assert installer.on_error(1, 998, "whatever") is False


# -- several cookies at once (parallel restoration) -------------------------------------------

def three_lightpaths():
    """Three lightpaths sharing switches 1, 3 and 4 (the third clashes with the first)."""
    return [make_lp(1),
            make_lp(2, src="10.1.1.1", dst="10.2.4.1", route=("1", "3", "4"), wavelength=0),
            make_lp(3, src="10.1.1.1", dst="10.1.4.1", route=("1", "3", "4"))]  # λ3 too


def test_install_many_sends_one_barrier_per_switch_and_fails_only_the_refused_cookie():
    transport, installer = setup()
    lps = three_lightpaths()
    results = installer.install_many([(lp.cookie, flows.lightpath_flows(TOPO, lp))
                                      for lp in lps])
    assert [r.ok for r in results][:2] == [True, True]
    # The third clashes (same wavelength as the first on 1-3 and 3-4): the switch refuses it.
    assert (results[2].ok, results[2].code) == (False, SWITCH_ERROR)
    assert results[2].dpid in (TOPO.nodes["3"].dpid, TOPO.nodes["4"].dpid)
    first_round = transport.sent[:next(i for i, (_, m) in enumerate(transport.sent)
                                       if isinstance(m, parser.OFPFlowMod)
                                       and m.command == ofp.OFPFC_DELETE)]
    barriers = [d for d, m in first_round if isinstance(m, parser.OFPBarrierRequest)]
    assert sorted(barriers) == sorted(DPIDS)  # 1, 3 and 4 once each, not once per cookie
    assert lp_entries(transport.net, lps[2].cookie) == 0
    assert lp_entries(transport.net, lps[0].cookie) and lp_entries(transport.net, lps[1].cookie)
    assert delivered(transport.net) and delivered(transport.net, "10.1.1.1", "10.2.4.1", "1")
    assert installer._xids == {}


def test_install_many_fails_every_cookie_on_a_missing_switch_and_no_other():
    transport, installer = setup(down={TOPO.nodes["9"].dpid})
    lps = [make_lp(1),
           make_lp(2, src="10.1.9.1", dst="10.2.12.1", route=("9", "8", "12"), wavelength=0)]
    results = installer.install_many([(lp.cookie, flows.lightpath_flows(TOPO, lp))
                                      for lp in lps])
    assert results[0].ok
    assert (results[1].ok, results[1].code, results[1].dpid) == (
        False, SWITCH_UNREACHABLE, TOPO.nodes["9"].dpid)
    assert results[1].unclean == (TOPO.nodes["9"].dpid,)
    assert lp_entries(transport.net, lps[1].cookie) == 0 and delivered(transport.net)


def test_install_many_of_nothing_and_remove_many():
    transport, installer = setup(down={DPIDS[5]})
    assert installer.install_many([]) == [] and transport.sent == []
    lps = three_lightpaths()[:2]
    for lp in lps:
        transport.net.send_all(flows.lightpath_flows(TOPO, lp))
    results = installer.remove_many([(lp.cookie, flows.lightpath_dpids(TOPO, lp))
                                     for lp in lps])
    assert (results[0].ok, results[0].unclean) == (False, (DPIDS[5],))
    assert results[1].ok
    assert not any(lp_entries(transport.net, lp.cookie) for lp in lps[1:])
    barriers = [d for d, m in transport.sent if isinstance(m, parser.OFPBarrierRequest)]
    assert sorted(barriers) == sorted(set(DPIDS) - {DPIDS[5]})
