"""``cso bench restore``: arguments, statistics and parsing (no root, no emulation)."""
from __future__ import annotations

import argparse

import pytest

from cso.bench import restore as br
from cso.bench.cli import benchmarks, main, parser


def test_restore_is_registered_with_its_defaults():
    assert "restore" in benchmarks()
    args = parser().parse_args(["restore"])
    assert args.repeats == 3 and args.counts == [1, 10, 40]
    assert args.fibre == "7-8" and args.interval == pytest.approx(0.001)
    args = parser().parse_args(["restore", "--json", "--repeats", "5", "--counts", "2,4"])
    assert args.json and args.repeats == 5 and args.counts == [2, 4]


@pytest.mark.parametrize("argv", [
    ["restore", "--repeats", "0"], ["restore", "--repeats", "x"],
    ["restore", "--counts", "1,x"], ["restore", "--counts", "0"], ["restore", "--counts", ""],
    ["restore", "--interval", "0"],
])
def test_bad_arguments_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_counts_arg():
    assert br.counts_arg("1, 10,40") == [1, 10, 40]
    with pytest.raises(argparse.ArgumentTypeError):
        br.counts_arg("-1")


def test_stats_median_and_max():
    assert br.stats([3.0, 1.0, 2.0]) == {"count": 3, "median_ms": 2.0, "max_ms": 3.0}
    assert br.stats([1.0, 2.0, 3.0, 10.0])["median_ms"] == 2.5
    assert br.stats([]) == {"count": 0, "median_ms": None, "max_ms": None}


def test_ping_outage_is_lost_times_interval():
    out = "--- 10.2.7.1 ping statistics ---\n3000 packets transmitted, 2980 received, 0.6% loss"
    assert br.ping_outage_ms(out, 0.001) == 20.0
    assert br.ping_outage_ms("no summary", 0.001) is None


def test_sse_events_parses_data_lines_and_skips_comments():
    stream = [": cso event stream\n", "retry: 2000\n", "\n",
              "id: 4\n", "event: lightpath\n",
              'data: {"event":"rerouted","lightpath":{"id":"lp1"},"restoration_ms":4.5}\n',
              "\n", ": keep-alive\n", "\n", "data: not json\n", "\n"]
    assert list(br.sse_events(stream)) == [
        {"event": "rerouted", "lightpath": {"id": "lp1"}, "restoration_ms": 4.5}]


def test_fibre_pairs_puts_pairs_at_the_fibre_first():
    nodes = {"u0": "0", "u7": "7", "dc8": "8", "dc1": "1"}
    pairs = [("u0", "dc1"), ("u0", "dc8"), ("u7", "dc1")]
    ordered = br.fibre_pairs(pairs, nodes, ("7", "8"))
    assert ordered[-1] == ("u0", "dc1") and set(ordered) == set(pairs)


def test_reply_gap_is_the_longest_silence_between_replies():
    out = ("PING 10.2.7.1 (10.2.7.1) 56(84) bytes of data.\n"
           "[1700000000.001000] 64 bytes from 10.2.7.1: icmp_seq=1 ttl=64 time=0.3 ms\n"
           "[1700000000.002000] 64 bytes from 10.2.7.1: icmp_seq=2 ttl=64 time=0.3 ms\n"
           "[1700000000.014500] 64 bytes from 10.2.7.1: icmp_seq=14 ttl=64 time=0.3 ms\n"
           "[1700000000.015500] 64 bytes from 10.2.7.1: icmp_seq=15 ttl=64 time=0.3 ms\n")
    assert br.reply_gap_ms(out) == pytest.approx(12.5)
    assert br.reply_gap_ms(out.splitlines()[1]) is None


def test_loss_window_counts_send_times_of_lost_pings_only():
    out = ("[1700000000.001300] 64 bytes from 10.2.7.1: icmp_seq=1 ttl=64 time=0.3 ms\n"
           "[1700000000.002300] 64 bytes from 10.2.7.1: icmp_seq=2 ttl=64 time=0.3 ms\n"
           # 3 and 4 lost; 5 sent at .005 comes back 9 ms late (a slower path)
           "[1700000000.014000] 64 bytes from 10.2.7.1: icmp_seq=5 ttl=64 time=9.0 ms\n"
           "[1700000000.015000] 64 bytes from 10.2.7.1: icmp_seq=6 ttl=64 time=9.0 ms\n")
    assert br.loss_window_ms(out) == pytest.approx(3.0)
    late = out.replace("icmp_seq=5", "icmp_seq=3").replace("icmp_seq=6", "icmp_seq=4")
    assert br.loss_window_ms(late) == 0.0  # only delayed, nothing lost
    assert br.loss_window_ms(out.splitlines()[0]) is None


def test_summarise_and_report_judge_the_targets():
    rounds = {1: [{"n": 1, "restoration_ms": [5.0], "lost_ms": 3.0, "gap_ms": 30.0,
                   "down": 0}],
              40: [{"n": 38, "restoration_ms": [10.0, 150.0], "lost_ms": 6.0, "gap_ms": 60.0,
                    "down": 2}]}
    figures = br.summarise(rounds, [{"lost_ms": 1.0, "gap_ms": 4.0, "window_ms": 2.0}, None,
                                    {"lost_ms": 2.0, "gap_ms": 12.0, "window_ms": 3.0}],
                           [{"lost_ms": 0.0, "gap_ms": 11.0}])
    assert figures["counts"]["1"]["ping_gap"]["median_ms"] == 30.0
    assert figures["counts"]["40"]["reached"] == 38 and figures["counts"]["40"]["down"] == 2
    assert figures["protection"]["ping_gap"] == {"count": 2, "median_ms": 8.0, "max_ms": 12.0}
    assert figures["protection"]["ping_window"]["median_ms"] == 2.5
    assert figures["protection"]["control_gap"] == {"count": 1, "median_ms": 11.0,
                                                    "max_ms": 11.0}
    assert figures["targets"] == {"one_median_under_50ms": True,
                                  "forty_median_under_200ms": False,  # only 38 reached
                                  "protection_under_10ms": True}
    text = br.report({"date": "d", "fibre": "7-8", "repeats": 1, "interval_ms": 1.0,
                      **figures})
    assert "NOT met" in text and "Protection" in text and "Control" in text


def test_control_fibre_touches_neither_route():
    from topologies.loader import load
    topology = load("nsfnet")
    fibre = topology.link(br.control_fibre(topology, ["0", "7", "1", "3", "4", "6"]))
    assert not {fibre.a, fibre.b} & {"0", "7", "1", "3", "4", "6"}
    with pytest.raises(ValueError):
        br.control_fibre(topology, topology.nodes)
