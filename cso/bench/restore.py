"""``cso bench restore``: restoration and protection switch-over times on the live SC (root).

Starts its own ``cso sc`` and NSFNET emulation through `cso.emulation.lab`, waits for discovery,
then for each N in ``--counts`` (default 1, 10, 40) and each of ``--repeats`` rounds:

1. establishes N user->DC lightpaths whose routes all cross one fibre (``--fibre``, forced
   with ``include_nodes``; pairs whose route misses the fibre are torn down and skipped);
2. opens the ASI event stream and starts a ping at ``--interval`` inside the user host of
   the first lightpath and of the last (restored first and last);
3. cuts the fibre (``ip link set <switch interface> down`` in the root namespace);
4. collects ``restoration_ms`` of every ``rerouted`` event (the SC's clock, port status ->
   new route installed, queueing behind the other lightpaths included) and, from the ping,
   the outage (port down -> traffic flowing again) as the longest gap between two replies
   (``ping -D``) and as lost pings x interval;
5. brings the fibre back, waits for it to be usable, tears every lightpath down.

Protection: a ``"protection": "link"`` lightpath u0 -> dc7 (working route the fibre 0-7 next
to the ingress), ping, cut the working fibre: switch-over = the reply gap (and lost pings x
interval). Control: the same, but the fibre cut is one no node of either route touches
(`control_fibre`): the reply gap it causes is what any link change costs the traffic in
``ovs-vswitchd`` (one process forwards for every switch in the userspace datapath), with
no switch-over at all.
Everything is stopped at the end, also on errors.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Optional, Sequence

from ac_app.asi_client import LIGHTPATHS
from cso.bench.cli import register
from cso.bench.common import TOKEN, at_least, machine, workload
from cso.emulation import lab
from cso.emulation import network as emulation
from topologies.loader import load

#: Targets of issue 5.
TARGET_ONE_MS = 50.0
TARGET_FORTY_MS = 200.0
TARGET_PROTECTION_MS = 10.0
PROTECTED = ("u0", "dc7", "0-7")
#: Unanswered pings allowed in flight (``ping -l``): 200 ms at 1 ms.
PRELOAD = 200


# -- arguments ----------------------------------------------------------------------------

def counts_arg(text: str) -> list[int]:
    """argparse type: comma-separated positive lightpath counts, e.g. ``1,10,40``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"counts must be positive integers: {text!r}")
    return values


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repeats", type=at_least(int, 1), default=3,
                   help="rounds per count and for protection (default 3)")
    p.add_argument("--counts", type=counts_arg, default=[1, 10, 40],
                   help="affected lightpaths per round, comma-separated (default 1,10,40)")
    p.add_argument("--fibre", default="7-8", help="the fibre to cut (default 7-8)")
    p.add_argument("--interval", type=at_least(float, 0.0005), default=0.001,
                   help="ping interval in seconds (default 0.001)")
    p.add_argument("--topology", default="nsfnet", help=argparse.SUPPRESS)


# -- figures ------------------------------------------------------------------------------

def stats(values: Iterable[float]) -> dict[str, Any]:
    """Count, median and max (ms, rounded to 0.01) of ``values``; None when empty."""
    values = sorted(values)
    if not values:
        return {"count": 0, "median_ms": None, "max_ms": None}
    return {"count": len(values), "median_ms": round(statistics.median(values), 2),
            "max_ms": round(values[-1], 2)}


def ping_outage_ms(output: str, interval: float) -> Optional[float]:
    """Lost pings x interval (ms) from ping's summary line; None when there is none."""
    counts = lab.ping_summary(output)
    if counts is None:
        return None
    sent, received = counts
    return round((sent - received) * interval * 1e3, 2)


REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)", re.MULTILINE)
REPLY_RTT = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+) .*time=([\d.]+) ms",
                       re.MULTILINE)


def reply_gap_ms(output: str) -> Optional[float]:
    """The longest time between two consecutive replies (``ping -D``), ms; the outage as
    seen by traffic, to within the ping interval plus RTT jitter. None without 2 replies."""
    times = sorted(float(found.group(1)) for found in REPLY.finditer(output))
    if len(times) < 2:
        return None
    return round(max(b - a for a, b in zip(times, times[1:])) * 1e3, 2)


def loss_window_ms(output: str) -> Optional[float]:
    """The longest time between sending two answered pings with every ping sent in between
    lost (send time = reply timestamp - its RTT), ms: the outage as packets saw it, without
    the time replies were only late (a slower path, a busy switch). 0.0 when none was lost,
    None without 2 replies."""
    sent = sorted((int(seq), float(stamp) - float(rtt) / 1e3)
                  for stamp, seq, rtt in REPLY_RTT.findall(output))
    if len(sent) < 2:
        return None
    windows = [b - a for (i, a), (j, b) in zip(sent, sent[1:]) if j - i > 1]
    return round(max(windows, default=0.0) * 1e3, 2)


def sse_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON data of each event in a text/event-stream given line by line."""
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                try:
                    yield json.loads("\n".join(data))
                except ValueError:
                    pass
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def control_fibre(topology: Any, nodes: Iterable[str]) -> str:
    """A fibre with neither end at any of ``nodes`` (the control round's cut)."""
    busy = set(nodes)
    for link in topology.links:
        if link.a not in busy and link.b not in busy:
            return link.id
    raise ValueError("every fibre touches the lightpath's routes")


def fibre_pairs(pairs: Sequence[tuple[str, str]], nodes: dict[str, str],
                fibre: tuple[str, str]) -> list[tuple[str, str]]:
    """Candidate pairs, those with an end at the fibre's nodes first (shorter forced routes)."""
    return sorted(pairs, key=lambda p: (nodes[p[0]] not in fibre, nodes[p[1]] not in fibre))


# -- live run -----------------------------------------------------------------------------

class EventCollector(threading.Thread):
    """Reads the ASI event stream for ``seconds`` and keeps the ``rerouted`` events."""

    def __init__(self, url: str, seconds: float):
        super().__init__(daemon=True)
        self.url = f"{url}/asi/v1/events?max_seconds={seconds:g}"
        self.rerouted: dict[str, float] = {}
        self.down: set[str] = set()
        self.ready = threading.Event()

    def run(self) -> None:
        req = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                self.ready.set()
                lines = (raw.decode("utf-8") for raw in resp)
                for event in sse_events(lines):
                    lp = event.get("lightpath") or {}
                    if event.get("event") == "rerouted":
                        self.rerouted[lp.get("id", "")] = float(event["restoration_ms"])
                    elif lp.get("state") == "down":
                        self.down.add(lp.get("id", ""))
        finally:
            self.ready.set()


def _set_link(intf: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", intf, state], check=True, timeout=10)


def _wait(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def _teardown(sc: lab.ScRun, ids: Iterable[str]) -> None:
    for lp_id in ids:
        sc.request("DELETE", f"{LIGHTPATHS}/{lp_id}", token=TOKEN)


def _establish_across(sc: lab.ScRun, ip: dict[str, str], candidates: Sequence[tuple[str, str]],
                      fibre: str, a: str, b: str, n: int) -> list[dict[str, Any]]:
    """Up to ``n`` lightpaths from ``candidates`` whose route crosses ``fibre``."""
    held: list[dict[str, Any]] = []
    for src, dst in candidates:
        if len(held) == n:
            break
        reply = sc.request("POST", LIGHTPATHS, {"src": ip[src], "dst": ip[dst],
                                                "include_nodes": [a, b]}, token=TOKEN)
        if reply.status != 201:
            continue
        lp = reply.json
        if fibre in lp["links"]:
            held.append({**lp, "src_host": src, "dst_host": dst})
        else:
            _teardown(sc, [lp["id"]])
    return held


def _ping(net: lab.NetRun, src: str, dst: str, interval: float, seconds: float,
          name: str) -> lab.Process:
    # -D: a timestamp per reply (for the gap); -l: up to PRELOAD pings unanswered before
    # ping slows down, so it keeps sending every interval through an outage of that length.
    return net.popen(src, "ping", "-n", "-D", "-l", str(PRELOAD), "-i", f"{interval:g}",
                     "-c", str(int(seconds / interval)), "-W", "1", net.ip(dst), log_name=name)


def _finish_ping(ping: lab.Process, interval: float, seconds: float) -> dict[str, Any]:
    ping.popen.wait(seconds * 3 + 10)
    with open(ping.log_path, encoding="utf-8", errors="replace") as handle:
        output = handle.read()
    return {"lost_ms": ping_outage_ms(output, interval), "gap_ms": reply_gap_ms(output),
            "window_ms": loss_window_ms(output)}


def _round(sc: lab.ScRun, net: lab.NetRun, ip: dict[str, str],
           candidates: Sequence[tuple[str, str]], args: argparse.Namespace, n: int,
           tag: str) -> dict[str, Any]:
    topology = load(args.topology)
    link = topology.link(args.fibre)
    intf = net.switch_ports(f"s{link.a}")[link.a_port]
    held = _establish_across(sc, ip, candidates, args.fibre, link.a, link.b, n)
    result: dict[str, Any] = {"n": len(held)}
    if not held:
        return result
    seconds = 3.0
    collector = EventCollector(sc.url, seconds + 12)
    collector.start()
    collector.ready.wait(5)
    # Traffic on the first lightpath (restored first) and on the last (restored last).
    watched = {"": held[0], "last_": held[-1]} if len(held) > 1 else {"": held[0]}
    pings: dict[str, lab.Process] = {}
    try:
        for key, lp in watched.items():
            net.ping(lp["src_host"], lp["dst_host"], count=2)
            pings[key] = _ping(net, lp["src_host"], lp["dst_host"], args.interval, seconds,
                               f"restore-ping-{tag}{key.rstrip('_')}")
        time.sleep(0.5)
        _set_link(intf, "down")
        ids = {lp["id"] for lp in held}
        _wait(lambda: ids <= set(collector.rerouted) | collector.down, 10)
        for key in list(pings):
            figures = _finish_ping(pings.pop(key), args.interval, seconds)
            if watched[key]["id"] in collector.down:  # not restored: no gap to measure
                figures = {**figures, "gap_ms": None, "watched_down": True}
            result.update({key + name: value for name, value in figures.items()})
        result["restoration_ms"] = [collector.rerouted[i] for i in ids
                                    if i in collector.rerouted]
        result["down"] = len(ids & collector.down)
    finally:
        for ping in pings.values():
            ping.stop()
        _set_link(intf, "up")
        _wait(lambda: all(lk["usable"] for lk in sc.request("GET", "/smi/v1/links").json[
            "links"] if lk["id"] == args.fibre), 15)
        _teardown(sc, [lp["id"] for lp in held])
    return result


def _protection_round(sc: lab.ScRun, net: lab.NetRun, args: argparse.Namespace,
                      tag: str, control: bool = False) -> Optional[dict[str, Any]]:
    """Ping over the protected lightpath and cut its working fibre (``control``: a fibre far
    from both its routes instead); the ping's figures."""
    src, dst, fibre = PROTECTED
    topology = load(args.topology)
    reply = sc.request("POST", LIGHTPATHS, {"src": net.ip(src), "dst": net.ip(dst),
                                            "protection": "link"}, token=TOKEN)
    if reply.status != 201:
        return None
    lp = reply.json
    if control:
        fibre = control_fibre(topology, [*lp["route"], *lp["protection"]["route"]])
    link = topology.link(fibre)
    intf = net.switch_ports(f"s{link.a}")[link.a_port]
    seconds = 2.0
    try:
        net.ping(src, dst, count=2)
        name = f"{'control' if control else 'protect'}-ping-{tag}"
        ping = _ping(net, src, dst, args.interval, seconds, name)
        time.sleep(0.5)
        _set_link(intf, "down")
        try:
            return _finish_ping(ping, args.interval, seconds)
        finally:
            _set_link(intf, "up")
            _wait(lambda: all(lk["usable"] for lk in sc.request("GET", "/smi/v1/links").json[
                "links"] if lk["id"] == fibre), 15)
    finally:
        _teardown(sc, [lp["id"]])


def summarise(rounds: dict[int, list[dict[str, Any]]],
              protection: Sequence[Optional[dict[str, Any]]],
              control: Sequence[Optional[dict[str, Any]]] = ()) -> dict[str, Any]:
    """Medians and maxima per count, and the targets."""
    per_count = {}
    for n, results in rounds.items():
        sc_ms = [v for r in results for v in r.get("restoration_ms", [])]
        lost = [r["lost_ms"] for r in results if r.get("lost_ms") is not None]
        gap = [r["gap_ms"] for r in results if r.get("gap_ms") is not None]
        gap_last = [r["last_gap_ms"] for r in results if r.get("last_gap_ms") is not None]
        per_count[str(n)] = {"reached": min((r["n"] for r in results), default=0),
                             "sc": stats(sc_ms), "ping_lost": stats(lost),
                             "ping_gap": stats(gap), "ping_gap_last": stats(gap_last),
                             "down": sum(r.get("down", 0) for r in results), "rounds": results}
    prot = {"ping_lost": stats(p["lost_ms"] for p in protection
                               if p is not None and p["lost_ms"] is not None),
            "ping_gap": stats(p["gap_ms"] for p in protection
                              if p is not None and p["gap_ms"] is not None),
            "ping_window": stats(p["window_ms"] for p in protection
                                 if p is not None and p.get("window_ms") is not None),
            "control_gap": stats(p["gap_ms"] for p in control
                                 if p is not None and p["gap_ms"] is not None)}
    targets = {}
    if "1" in per_count:
        median = per_count["1"]["ping_gap"]["median_ms"]
        targets["one_median_under_50ms"] = median is not None and median < TARGET_ONE_MS
    if "40" in per_count:
        median = per_count["40"]["sc"]["median_ms"]
        targets["forty_median_under_200ms"] = (per_count["40"]["reached"] == 40
                                               and median is not None
                                               and median < TARGET_FORTY_MS)
    if prot["ping_gap"]["median_ms"] is not None:
        targets["protection_under_10ms"] = prot["ping_gap"]["median_ms"] < TARGET_PROTECTION_MS
    return {"counts": per_count,
            "protection": {**prot, "rounds": protection, "control_rounds": list(control)},
            "targets": targets}


@register("restore", "restoration and protection switch-over times on NSFNET (root)", _options,
          lambda figures: report(figures))
def bench_restore(args: argparse.Namespace) -> dict[str, Any]:
    """Run the restoration benchmark (needs root, OVS and Mininet)."""
    missing = lab.missing_requirements()
    if missing:
        raise SystemExit(f"cso bench restore: {missing}")
    pairs, ip = workload(args.topology)
    nodes = {host.name: host.node for host in emulation.plan(load(args.topology)).hosts}
    a, _, b = args.fibre.partition("-")
    candidates = fibre_pairs(pairs, nodes, (a, b))
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    log_dir = tempfile.mkdtemp(prefix="cso-bench-restore-")
    sc = lab.ScRun(log_dir, topology=args.topology)
    net = None
    rounds: dict[int, list[dict[str, Any]]] = {n: [] for n in args.counts}
    protection: list[Optional[dict[str, Any]]] = []
    control: list[Optional[dict[str, Any]]] = []
    try:
        lab.ensure_ovs()
        sc.start()
        net = lab.start_net(log_dir, sc.ofp_port, topology=args.topology)
        sc.wait_discovered(timeout=90)
        for repeat in range(args.repeats):
            for n in args.counts:
                rounds[n].append(_round(sc, net, ip, candidates, args, n, f"{n}-{repeat}"))
            protection.append(_protection_round(sc, net, args, str(repeat)))
            control.append(_protection_round(sc, net, args, str(repeat), control=True))
    finally:
        if net is not None:
            net.stop()
        sc.stop()
    return {"benchmark": "restore", "date": started, "fibre": args.fibre,
            "interval_ms": args.interval * 1e3, "repeats": args.repeats,
            "log_dir": log_dir, **summarise(rounds, protection, control), "machine": machine()}


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(figures: dict[str, Any]) -> str:
    """Human-readable table of a run."""
    lines = [f"Restoration on fibre {figures['fibre']} ({figures['date']}, "
             f"{figures['repeats']} rounds, ping every {figures['interval_ms']:g} ms), ms",
             f"  {'N':>4}{'reached':>8}{'SC med':>9}{'SC max':>9}{'gap med':>9}"
             f"{'gap max':>9}{'last gap med':>14}{'last gap max':>14}{'lost med':>10}"
             f"{'lost max':>10}{'down':>6}"]
    for n, c in figures["counts"].items():
        lines.append(f"  {n:>4}{c['reached']:>8}{_fmt(c['sc']['median_ms']):>9}"
                     f"{_fmt(c['sc']['max_ms']):>9}{_fmt(c['ping_gap']['median_ms']):>9}"
                     f"{_fmt(c['ping_gap']['max_ms']):>9}"
                     f"{_fmt(c.get('ping_gap_last', {}).get('median_ms')):>14}"
                     f"{_fmt(c.get('ping_gap_last', {}).get('max_ms')):>14}"
                     f"{_fmt(c['ping_lost']['median_ms']):>10}"
                     f"{_fmt(c['ping_lost']['max_ms']):>10}{c['down']:>6}")
    p = figures["protection"]
    lines.append(f"Protection switch-over: reply gap median {_fmt(p['ping_gap']['median_ms'])}"
                 f", max {_fmt(p['ping_gap']['max_ms'])}; lost x interval median "
                 f"{_fmt(p['ping_lost']['median_ms'])}, max {_fmt(p['ping_lost']['max_ms'])}")
    window = p.get("ping_window", {})
    lines.append(f"  loss window (send times, lost pings only) median "
                 f"{_fmt(window.get('median_ms'))}, max {_fmt(window.get('max_ms'))}")
    control = p.get("control_gap", {})
    lines.append(f"Control (a fibre far from the lightpath cut, no switch-over): reply gap "
                 f"median {_fmt(control.get('median_ms'))}, max {_fmt(control.get('max_ms'))}")
    lines.append("Targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}"
                                         for k, v in figures["targets"].items()))
    return "\n".join(lines)
