"""``cso bench provision``: lightpath provisioning latency and rate on the live SC (root).

Starts its own ``cso sc`` and NSFNET emulation (``cso net``) through `cso.emulation.lab`, waits
until LLDP has confirmed every fibre, then measures establishment over ASI
(``POST /asi/v1/lightpaths`` -> 201) in up to three phases of one run, each of
``--requests`` establishes, every lightpath torn down (``DELETE``) by its client right after
its 201, so the network is empty between requests and no wavelength budget is ever reached:

- **sequential**: one client, one request after another;
- **concurrent**: ``--concurrency`` client threads flat out (closed loop), each with its own
  share of the user->DC host pairs, so no two clients ever ask for the same endpoints:
  the SC's capacity, and latency when it is saturated;
- **paced**: the same clients and pairs, but requests arrive as a Poisson process of
  ``--rate`` per second in all (the target rate): latency at that load, lateness included.

Provisioning latency (docs/benchmarks.md) is "ASI request received -> every flow entry confirmed by
barrier". Two figures are reported per phase: the client's (POST sent -> 201 read, over a
kept-alive HTTP/1.1 connection: an upper bound, it adds HTTP and queueing in the SC's
event loop) and the server's own, from the delta of the SC's ``cso_provisioning_seconds``
histogram at ``/metrics`` over the phase (exact count and mean; median/p99 interpolated
within the histogram's buckets; exact fractions under 20 ms and 100 ms, which are bucket
bounds). Lightpaths per second is successful establishes / phase wall time, teardowns
included. Non-201 answers are counted by status, error code and reason; blocking is not
an error but is reported. CPU use of the SC, ovs-vswitchd and the client process is
sampled around each phase. Everything is torn down and both processes are stopped at the
end, also on errors; the figures say what was left (should be nothing).
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, NoReturn, Optional, Sequence

from ac_app.asi_client import LIGHTPATHS, AsiClient
from cso.bench.cli import register
from cso.bench.common import (TOKEN, Pair, at_least, interrupt, latency_summary, machine,
                              parse_histogram, workload)
from cso.emulation import lab
from cso.emulation.network import EmulationError
from cso_base import http
from topologies.loader import TopologyError

HISTOGRAM = "cso_provisioning_seconds"
#: Targets of issue 3 (provisioning latency as docs/benchmarks.md defines it).
TARGET_MEDIAN_MS = 20.0
TARGET_P99_MS = 100.0
TARGET_RATE = 100.0
#: Exact fractions of the SC's histogram reported: its bucket bounds at the two targets.
WITHIN_MS = (TARGET_MEDIAN_MS, TARGET_P99_MS)
PHASES = ("sequential", "concurrent", "paced")


# -- arguments ----------------------------------------------------------------------------

def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--requests", type=at_least(int, 1), default=400,
                   help="establish requests in each phase (default 400)")
    p.add_argument("--concurrency", type=at_least(int, 1), default=16,
                   help="client threads of the concurrent and paced phases (default 16; at "
                        "most the number of user->DC pairs, 65 on NSFNET)")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the order of the pairs, their deal to clients and the "
                        "paced arrivals (default 1)")
    p.add_argument("--warmup", type=at_least(int, 0), default=10,
                   help="establish+teardown rounds before measuring, not counted (default 10)")
    p.add_argument("--rate", type=at_least(float, 0.0), default=TARGET_RATE,
                   help="establishes per second offered in the paced phase: --concurrency "
                        "clients, Poisson arrivals (default 100, the target; 0 skips it)")
    p.add_argument("--topo", default="nsfnet", help="topology name or file (default nsfnet)")
    p.add_argument("--timeout", type=at_least(float, 0.0, strict=True), default=10.0,
                   help="seconds a client waits for one answer (default 10)")
    p.add_argument("--log-dir", help="where the SC's and the emulation's logs go "
                                     "(default: a new temporary directory)")


# -- the workload ---------------------------------------------------------------------------

def deal(pairs: Sequence[Pair], clients: int, rng: random.Random) -> list[list[Pair]]:
    """Shuffle ``pairs`` and deal them round-robin to ``clients``: disjoint, non-empty shares.

    Raises ValueError when there are fewer pairs than clients.
    """
    if clients > len(pairs):
        raise ValueError(f"{clients} clients need at least {clients} distinct pairs; "
                         f"the topology has {len(pairs)}")
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    return [shuffled[i::clients] for i in range(clients)]


def quotas(total: int, clients: int) -> list[int]:
    """Split ``total`` requests over ``clients`` as evenly as possible."""
    return [total // clients + (1 if i < total % clients else 0) for i in range(clients)]


# -- the client -----------------------------------------------------------------------------

def asi_client(base_url: str, timeout: float = 10.0, token: str = TOKEN) -> AsiClient:
    """The AC's ASI client over one kept-alive HTTP/1.1 connection (one per client thread):
    each answer timed, no answer an answer with status 0, never retried."""
    return AsiClient(base_url, token, timeout, send=http.Connection(base_url, token, timeout))


@dataclass
class Tally:
    """What one client (or a whole phase, merged) saw."""

    establish_s: list[float] = field(default_factory=list)
    teardown_s: list[float] = field(default_factory=list)
    requests: int = 0
    refused: collections.Counter = field(default_factory=collections.Counter)
    teardown_failed: collections.Counter = field(default_factory=collections.Counter)

    def merge(self, other: "Tally") -> None:
        """Add another client's tally to this one."""
        self.establish_s += other.establish_s
        self.teardown_s += other.teardown_s
        self.requests += other.requests
        self.refused.update(other.refused)
        self.teardown_failed.update(other.teardown_failed)


def cycle(client: AsiClient, pairs: Sequence[Pair], count: int, ip: Mapping[str, str],
          schedule: Optional[Sequence[float]] = None) -> Tally:
    """``count`` rounds of establish (then teardown when 201) over ``pairs`` in turn.

    Without ``schedule`` each round starts when the previous one ends (closed loop). With
    it, round *i* is due ``schedule[i]`` seconds after the call and waits for that time; a
    round that starts late counts its lateness in its latency (no coordinated omission).
    """
    tally = Tally()
    origin = time.perf_counter()
    for i in range(count):
        user, dc = pairs[i % len(pairs)]
        late = 0.0
        if schedule is not None:
            late = time.perf_counter() - (origin + schedule[i])
            if late < 0:
                time.sleep(-late)
                late = 0.0
        tally.requests += 1
        made = client.post_lightpath(ip[user], ip[dc], "vod")
        if made.status != 201:
            tally.refused[made.why()] += 1
            continue
        tally.establish_s.append(made.seconds + late)
        gone = client.delete_lightpath(made.json["id"])
        if gone.status == 200:
            tally.teardown_s.append(gone.seconds)
        else:
            tally.teardown_failed[gone.why()] += 1
    return tally


def poisson_schedules(rate: float, counts: Sequence[int],
                      rng: random.Random) -> list[list[float]]:
    """Due times (s) of each client's requests: one Poisson process of ``rate`` per second
    whose arrivals are dealt to the clients in turn (client *i* gets ``counts[i]`` of them;
    `quotas` gives counts that make this exact)."""
    clients = len(counts)
    schedules: list[list[float]] = [[] for _ in range(clients)]
    due = 0.0
    for k in range(sum(counts)):
        due += rng.expovariate(rate)
        schedules[k % clients].append(due)
    if [len(times) for times in schedules] != list(counts):
        raise ValueError(f"counts {list(counts)} are not a round-robin deal")
    return schedules


def concurrently(make_client: Any, shares: Sequence[Sequence[Pair]], counts: Sequence[int],
                 ip: Mapping[str, str],
                 schedules: Optional[Sequence[Sequence[float]]] = None) -> tuple[Tally, float]:
    """Run `cycle` in one thread per share, all released together; (merged tally, wall s)."""
    tallies: list[Optional[Tally]] = [None] * len(shares)
    failures: list[BaseException] = []
    start = threading.Barrier(len(shares) + 1)

    def worker(index: int) -> None:
        client = make_client()
        try:
            start.wait()
            tallies[index] = cycle(client, shares[index], counts[index], ip,
                                   None if schedules is None else schedules[index])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failures.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(len(shares))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if failures:
        raise failures[0]
    merged = Tally()
    for tally in tallies:
        merged.merge(tally)  # type: ignore[arg-type]
    return merged, wall


# -- the run --------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads so far (from /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ovs_pid() -> Optional[int]:
    try:
        with open("/var/run/openvswitch/ovs-vswitchd.pid", encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


class _Meter:
    """Snapshots of the SC's histogram and the CPU of the SC and ovs-vswitchd around a phase."""

    def __init__(self, sc: lab.ScRun):
        self.sc = sc
        self.pids = {"sc": sc.process.popen.pid, "ovs": _ovs_pid()}  # type: ignore[union-attr]

    def snapshot(self) -> dict[str, Any]:
        text = self.sc.request("GET", "/metrics").body.decode()
        cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items() if pid is not None}
        own = os.times()
        cpu["client"] = own.user + own.system
        return {"histogram": parse_histogram(text, HISTOGRAM), "cpu": cpu,
                "at": time.perf_counter()}

    @staticmethod
    def between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        wall = after["at"] - before["at"]
        return {"server": (after["histogram"] - before["histogram"]).summary(WITHIN_MS),
                "cpu_busy": {name: round((after["cpu"][name] - before["cpu"][name]) / wall, 3)
                             for name in after["cpu"]},
                "cpu_s": {name: after["cpu"][name] - before["cpu"][name]
                          for name in after["cpu"]}}


def phase_figures(tally: Tally, wall: float, meter: dict[str, Any],
                  **extra: Any) -> dict[str, Any]:
    """The JSON figures of one phase."""
    made = len(tally.establish_s)
    return {
        **extra, "requests": tally.requests, "established": made,
        "refused": sum(tally.refused.values()), "refusals": dict(tally.refused),
        "torn_down": len(tally.teardown_s), "teardown_failures": dict(tally.teardown_failed),
        "wall_s": round(wall, 3), "lightpaths_per_s": round(made / wall, 1) if wall else None,
        "client": latency_summary(tally.establish_s), "server": meter["server"],
        "teardown_client": latency_summary(tally.teardown_s),
        "cpu_busy": meter["cpu_busy"],
        "sc_cpu_ms_per_lightpath": (round(meter["cpu_s"]["sc"] * 1000 / made, 2)
                                    if made and "sc" in meter["cpu_s"] else None),
    }


def targets(phase: Mapping[str, Any], rate: bool) -> dict[str, Any]:
    """Which targets a phase meets, on the client's figures (the upper bound)."""
    client = phase["client"]
    met = {"median_under_20ms": client["median_ms"] is not None
           and client["median_ms"] < TARGET_MEDIAN_MS,
           "p99_under_100ms": client["p99_ms"] is not None
           and client["p99_ms"] < TARGET_P99_MS}
    if rate:
        met["at_least_100_per_s"] = (phase["lightpaths_per_s"] or 0) >= TARGET_RATE
    return met


def leftovers(sc: lab.ScRun, net: lab.NetRun) -> dict[str, Any]:
    """Lightpaths still recorded, wavelengths held and lightpath entries left on switches."""
    listed = sc.request("GET", LIGHTPATHS, token=TOKEN).json["lightpaths"]
    links = sc.request("GET", "/smi/v1/links").json["links"]
    entries = sum(1 for switch in net.switches for flow in net.dump_flows(switch)
                  if "vlan" in flow)
    return {"lightpaths": len(listed),
            "wavelengths_in_use": sum(len(link["used"]) for link in links),
            "flow_entries": entries}


def measure(sc: lab.ScRun, shares: Sequence[Sequence[Pair]], ip: Mapping[str, str],
            args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, then the phases on a running SC and emulation; figures as a dict."""
    order = [pair for share in shares for pair in share]  # the seed's shuffle, whole
    counts = quotas(args.requests, args.concurrency)

    def client() -> AsiClient:
        return asi_client(sc.url, args.timeout)

    def sequential() -> tuple[Tally, float]:
        one = client()
        try:
            began = time.perf_counter()
            tally = cycle(one, order, args.requests, ip)
            return tally, time.perf_counter() - began
        finally:
            one.close()

    phases = {"sequential": (1, sequential),
              "concurrent": (args.concurrency,
                             lambda: concurrently(client, shares, counts, ip))}
    if args.rate > 0:
        schedules = poisson_schedules(args.rate, counts, random.Random(args.seed))
        phases["paced"] = (args.concurrency,
                           lambda: concurrently(client, shares, counts, ip, schedules))
    warm = client()
    try:
        warmup = cycle(warm, order, args.warmup, ip)
    finally:
        warm.close()
    meter = _Meter(sc)
    figures: dict[str, Any] = {"warmup": {"requests": warmup.requests,
                                          "established": len(warmup.establish_s)}}
    for name, (clients, run) in phases.items():
        before = meter.snapshot()
        tally, wall = run()
        figures[name] = phase_figures(tally, wall, meter.between(before, meter.snapshot()),
                                      clients=clients)
    if "paced" in figures:
        figures["paced"]["offered_per_s"] = args.rate
    figures["targets"] = {name: targets(figures[name], rate=name == "concurrent")
                          for name in phases}
    return figures


def _sweep(sc: lab.ScRun) -> int:
    """Tear down whatever the benchmark's AC still holds; how many there were."""
    try:
        held = sc.request("GET", LIGHTPATHS, token=TOKEN).json["lightpaths"]
        for lp in held:
            sc.request("DELETE", f"{LIGHTPATHS}/{lp['id']}", token=TOKEN)
        return len(held)
    except Exception as exc:  # noqa: BLE001 - best effort; the SC is stopped next anyway
        print(f"cso bench provision: cleanup of lightpaths failed: {exc}", file=sys.stderr)
        return -1


def check_runnable() -> Optional[str]:
    """Why this benchmark cannot run here (not root, tools missing), or None."""
    if os.geteuid() != 0:
        return "needs root (it starts the Mininet emulation and Open vSwitch)"
    return lab.missing_requirements()


def _fail(message: str) -> NoReturn:
    print(f"cso bench provision: {message}", file=sys.stderr)
    raise SystemExit(2)


@register("provision", "ASI provisioning latency and rate on the live SC + emulation (root)",
          _options, lambda figures: report(figures))
def bench_provision(args: argparse.Namespace) -> dict[str, Any]:
    """Start SC + emulation, measure the phases, tear everything down and stop both.

    Bad arguments or a machine that cannot run it exit with code 2 before anything starts.
    """
    try:
        pairs, ip = workload(args.topo)
        shares = deal(pairs, args.concurrency, random.Random(args.seed))
    except (ValueError, TopologyError, EmulationError) as exc:
        _fail(str(exc))
    problem = check_runnable()
    if problem:
        _fail(problem)
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="cso-bench-provision-")
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lab.ensure_ovs()
    sc = lab.ScRun(log_dir, topology=args.topo)
    net: Optional[lab.NetRun] = None
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        sc.start()
        began = time.monotonic()
        net = lab.start_net(log_dir, sc.ofp_port, args.topo)
        fibres = len(sc.wait_discovered())
        ready_s = time.monotonic() - began
        try:
            figures = measure(sc, shares, ip, args)
            figures["leftovers"] = leftovers(sc, net)
        finally:
            swept = _sweep(sc)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the cleanup must not be cut short
        try:
            if net is not None:
                net.stop()
            sc.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
    return {"benchmark": "provision", "topology": args.topo, "seed": args.seed,
            "requests": args.requests, "concurrency": args.concurrency, "date": date,
            "fibres": fibres, "pairs": len(pairs), "emulation_ready_s": round(ready_s, 1),
            **figures, "swept_at_end": swept, "machine": machine(), "log_dir": log_dir}


# -- report ---------------------------------------------------------------------------------

def _cell(value: Any, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


def report(figures: Mapping[str, Any]) -> str:
    """The figures as a readable table."""
    lines = [f"Provisioning over ASI on {figures['topology']} ({figures['fibres']} fibres, "
             f"{figures['pairs']} user->DC pairs), {figures['requests']} requests per phase, "
             f"seed {figures['seed']}, {figures['date']}",
             "",
             f"  {'phase':<22}{'median':>9}{'p90':>9}{'p99':>9}{'max':>9}{'LP/s':>8}"
             f"{'ok':>6}{'refused':>8}"]
    for name in PHASES:
        if name not in figures:
            continue
        phase = figures[name]
        label = f"{name} ({phase['clients']} client{'s' if phase['clients'] > 1 else ''})"
        client = phase["client"]
        lines.append(f"  {label:<22}{_cell(client['median_ms'], 'ms'):>9}"
                     f"{_cell(client['p90_ms'], 'ms'):>9}{_cell(client['p99_ms'], 'ms'):>9}"
                     f"{_cell(client['max_ms'], 'ms'):>9}{_cell(phase['lightpaths_per_s']):>8}"
                     f"{phase['established']:>6}{phase['refused']:>8}")
        server = phase["server"]
        lines.append(f"    server histogram: mean {_cell(server['mean_ms'], ' ms')}, median ~"
                     f"{_cell(server['median_ms_est'], ' ms')}, p99 ~"
                     f"{_cell(server['p99_ms_est'], ' ms')}, <=20 ms "
                     f"{_pct(server['within_20ms'])}, <=100 ms {_pct(server['within_100ms'])}")
        lines.append(f"    teardown (client): median {_cell(phase['teardown_client']['median_ms'])}"
                     f" ms; SC CPU {_cell(phase['sc_cpu_ms_per_lightpath'])} ms per lightpath;"
                     f" busy {phase['cpu_busy']}")
        for why, count in {**phase["refusals"], **phase["teardown_failures"]}.items():
            lines.append(f"    {count} x {why}")
    lines.append("")
    for name, met in figures["targets"].items():
        lines.append(f"  targets {name}: " + ", ".join(
            f"{what} {'met' if ok else 'NOT met'}" for what, ok in met.items()))
    left = figures["leftovers"]
    lines.append(f"  left after the run: {left['lightpaths']} lightpaths, "
                 f"{left['wavelengths_in_use']} wavelengths in use, {left['flow_entries']} "
                 f"lightpath flow entries; logs in {figures['log_dir']}")
    return "\n".join(lines)


def _pct(fraction: Optional[float]) -> str:
    return "-" if fraction is None else f"{fraction:.1%}"
