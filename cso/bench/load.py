"""``cso bench load``: many concurrent ASI and UAI clients for a bounded time, then invariants.

Starts its own ``cso sc``, NSFNET emulation (``cso net``, with a DC agent per DC host) and
``cso ac`` through `cso.emulation.lab`, then runs for ``--duration`` seconds:

- ``--uai-clients`` threads acting as UAI users (``demo-user`` and ``other-user`` in turn):
  vm and vod requests from the emulation's user hosts (1 to 8 s, so many expire during the
  run; one vm request in 20 fits no server and is refused), deletes of their own requests,
  GETs of one request, lists (every request the client was given must be listed: none
  lost), accounting reads (own, or everyone's as the provider manager);
- ``--asi-clients`` threads acting as ACs on the SC's ASI (``demo-ac-token``, the AC's own
  token, and ``other-ac-token`` in turn): lightpaths set up, read and torn down between
  user-side addresses no UAI user has (``10.1.<i>.<200+k>``) and the DC hosts.

Closed loop: each client sends its next request when the previous one is answered. Every
answer is recorded (kind, status, latency); a 5xx, a timeout or a broken connection is a
failure, listed with what was asked; 409 refusals (no room, no path, an expired request) are
normal and counted. Afterwards the whole system is checked (`cso.emulation.invariants`), then
everything still held is released (UAI DELETE as the manager, ASI teardowns) and the system is
checked to hold nothing. Everything is stopped at the end, also on errors.

`Load` is the reusable part (the integration tests run it against their own lab, and kill
the AC under it).
"""
from __future__ import annotations

import argparse
import collections
import ipaddress
import random
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional, Sequence

from ac_app.asi_client import LIGHTPATHS
from cso.bench.cli import register
from cso.bench.common import at_least, interrupt, latency_summary, machine
from cso.emulation import invariants
from cso.emulation import lab
from cso.emulation import network as emulation
from cso.emulation.invariants import DELETED, HELD, REFUSED, UNSURE, Ledger
from cso_base.http import Answer, Connection
from topologies.loader import load

REQUESTS = "/uai/v1/requests"
MANAGER = lab.DEMO_USERS["demo-manager"][1]
USERS = [lab.DEMO_USERS[name][1] for name in ("demo-user", "other-user")]
ASI_ACS = list(lab.DEMO_TOKENS.items())  # (AC name, token); demo-ac is the AC's own
#: Answers that are normal (anything else is a failure), per kind of request.
EXPECTED = {"uai-post-vm": (201, 409), "uai-post-vod": (201, 409), "uai-delete": (200, 409),
            "uai-get": (200,), "uai-list": (200,), "uai-accounting": (200,),
            "asi-post": (201, 409), "asi-get": (200,), "asi-delete": (200,)}
#: Lowest host number of the ASI clients' user-side addresses (UAI users use .1).
ASI_HOST_BASE = 200


# -- what the clients saw ---------------------------------------------------------------------

@dataclass
class Recorder:
    """Every answer the clients got: latency per kind and status, and the failures."""

    samples: dict[str, list[tuple[int, float]]] = field(
        default_factory=lambda: collections.defaultdict(list))
    failures: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, what: str, answer: Answer) -> None:
        """Record one answer; a 5xx, no answer or an unexpected status is a failure."""
        with self.lock:
            self.samples[kind].append((answer.status, answer.seconds))
            if answer.status not in EXPECTED[kind]:
                self.failures.append({"kind": kind, "request": what, "status": answer.status,
                                      "answer": answer.why(), "at": time.time()})

    def fail(self, kind: str, what: str, why: str) -> None:
        """A failure an answer's status does not show (e.g. a request missing from a list)."""
        with self.lock:
            self.failures.append({"kind": kind, "request": what, "status": None,
                                  "answer": why, "at": time.time()})

    def figures(self, wall: float) -> dict[str, Any]:
        """Per kind: requests, per second, statuses and latency (ms)."""
        return {kind: {"requests": len(samples),
                       "per_s": round(len(samples) / wall, 1) if wall else None,
                       "statuses": dict(collections.Counter(str(s) for s, _ in samples)),
                       "latency": latency_summary(sec for _, sec in samples)}
                for kind, samples in sorted(self.samples.items())}


def not_sent(answer: Answer) -> bool:
    """True when the request never reached the server (the connection was refused)."""
    return answer.status == 0 and answer.text.startswith("ConnectionRefusedError")


class _Worker(threading.Thread):
    """One client thread: its own connection, random generator and ledger."""

    def __init__(self, name: str, port: int, token: str, rng: random.Random,
                 recorder: Recorder, timeout: float):
        super().__init__(name=name, daemon=True)
        self.client = Connection(f"http://127.0.0.1:{port}", token, timeout)
        self.rng = rng
        self.recorder = recorder
        self.ledger = Ledger()
        self.deadline = 0.0
        self.stopping = threading.Event()
        self.error: Optional[BaseException] = None

    def call(self, kind: str, method: str, path: str, body: Any = None,
             token: Optional[str] = None) -> Answer:
        """One request (with the client's token unless given), recorded (a refused connection
        is retried by the next step, a little later: the server is down, e.g. being
        restarted)."""
        answer = self.client.request(method, path, body, token=token)
        self.recorder.add(kind, f"{method} {path} {body or ''}".strip(), answer)
        if not_sent(answer):
            time.sleep(0.05)
        return answer

    def run(self) -> None:
        try:
            while time.monotonic() < self.deadline and not self.stopping.is_set():
                self.step()
        except BaseException as exc:  # noqa: BLE001 - reported by `Load.wait`
            self.error = exc
        finally:
            self.client.close()

    def step(self) -> None:
        """One request of this client's mix."""
        raise NotImplementedError


class UaiUser(_Worker):
    """A UAI user: vm and vod requests, deletes, GETs, lists and accounting reads."""

    def __init__(self, name: str, port: int, token: str, rng: random.Random,
                 recorder: Recorder, timeout: float, sources: Sequence[str], max_held: int):
        super().__init__(name, port, token, rng, recorder, timeout)
        self.sources = list(sources)
        self.max_held = max_held
        self.held: list[str] = []

    def step(self) -> None:
        roll = self.rng.random()
        if not self.held or (len(self.held) < self.max_held and roll < 0.45):
            self.submit()
        elif roll < 0.65:
            self.delete(self.held.pop(self.rng.randrange(len(self.held))))
        elif roll < 0.80:
            self.get(self.rng.choice(self.held))
        elif roll < 0.90:
            self.list()
        else:
            self.accounting()

    def submit(self) -> None:
        """A vm or vod request from a random user host, for 1 to 8 s (many expire)."""
        body: dict[str, Any] = {"src": self.rng.choice(self.sources),
                                "duration_s": round(self.rng.uniform(1, 8), 1)}
        if self.rng.random() < 0.55:
            # One vm request in 20 fits no server (16 cores each): refused by the AC.
            body.update(type="vm", cpu=self.rng.choice((1, 2, 3, 4) * 5 + (64,)),
                        memory_gb=self.rng.choice((1, 2, 4, 8)), disk_gb=self.rng.randint(5, 50))
        else:
            body.update(type="vod", content=f"movie-{self.rng.randint(1, 9)}")
        answer = self.call(f"uai-post-{body['type']}", "POST", REQUESTS, body)
        rid = answer.json.get("id") if isinstance(answer.json, dict) else None
        if answer.status == 201:
            self.ledger.uai[rid] = HELD
            self.held.append(rid)
        elif rid is not None:
            self.ledger.uai[rid] = REFUSED
        elif answer.status == 0 and not not_sent(answer):
            self.ledger.unanswered_posts += 1

    def delete(self, rid: str) -> None:
        """Release one of its requests (409 when it expired meanwhile: still ``HELD``)."""
        answer = self.call("uai-delete", "DELETE", f"{REQUESTS}/{rid}")
        if answer.status == 200:
            self.ledger.uai[rid] = DELETED
        elif not_sent(answer):
            self.held.append(rid)
        elif answer.status != 409:
            self.ledger.uai[rid] = UNSURE

    def get(self, rid: str) -> None:
        """Read one of its requests."""
        self.call("uai-get", "GET", f"{REQUESTS}/{rid}")

    def list(self) -> None:
        """List its user's requests: every one this client was given must be there."""
        answer = self.call("uai-list", "GET", REQUESTS)
        if answer.status == 200:
            listed = {r["id"] for r in answer.json["requests"]}
            lost = sorted(set(self.ledger.uai) - listed)
            if lost:
                self.recorder.fail("uai-list", f"GET {REQUESTS}", f"missing: {lost}")

    def accounting(self) -> None:
        """Read the accounting: its user's, or everyone's as the provider manager."""
        manager = self.rng.random() < 0.5
        self.call("uai-accounting", "GET", "/uai/v1/accounting",
                  token=MANAGER if manager else None)


class AsiAc(_Worker):
    """An AC on ASI: lightpaths set up, read and torn down between its own endpoints."""

    def __init__(self, name: str, port: int, ac: str, token: str, rng: random.Random,
                 recorder: Recorder, timeout: float, pairs: Sequence[tuple[str, str]],
                 max_held: int):
        super().__init__(name, port, token, rng, recorder, timeout)
        self.ac = ac
        self.pairs = list(pairs)
        self.max_held = max_held
        self.held: dict[str, tuple[str, str]] = {}
        self.ledger.asi_held[ac] = set()

    def step(self) -> None:
        roll = self.rng.random()
        if not self.held or (len(self.held) < self.max_held and roll < 0.5):
            self.establish()
        elif roll < 0.8:
            self.teardown(self.rng.choice(sorted(self.held)))
        else:
            self.call("asi-get", "GET", f"{LIGHTPATHS}/{self.rng.choice(sorted(self.held))}")

    def establish(self) -> None:
        """A lightpath between a pair this client does not hold yet."""
        free = [pair for pair in self.pairs if pair not in self.held.values()]
        src, dst = self.rng.choice(free)
        answer = self.call("asi-post", "POST", LIGHTPATHS,
                           {"src": src, "dst": dst, "service_type": "vod"})
        if answer.status == 201:
            self.held[answer.json["id"]] = (src, dst)
            self.ledger.asi_held[self.ac].add(answer.json["id"])

    def teardown(self, lp_id: str) -> None:
        """Tear one of its lightpaths down (kept as held unless the SC confirms)."""
        if self.call("asi-delete", "DELETE", f"{LIGHTPATHS}/{lp_id}").status == 200:
            del self.held[lp_id]
            self.ledger.asi_held[self.ac].discard(lp_id)


# -- the load ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """Where the clients send from and to: the emulation's user and DC host addresses."""

    users: tuple[str, ...]       # user hosts' addresses (10.1.<i>.1)
    dcs: tuple[str, ...]         # DC hosts' addresses (10.2.<i>.1)

    @classmethod
    def of(cls, topology: str = "nsfnet") -> "Plan":
        """The plan of a topology's emulation."""
        hosts = emulation.plan(load(topology)).hosts
        return cls(tuple(h.ip for h in hosts if h.kind == "user"),
                   tuple(h.ip for h in hosts if h.kind == "dc"))

    def asi_pairs(self, client: int) -> list[tuple[str, str]]:
        """ASI client ``client``'s endpoints: ``10.1.<i>.<200+client>`` to every DC host."""
        return [(_host(user, ASI_HOST_BASE + client), dc) for user in self.users
                for dc in self.dcs]


def _host(address: str, number: int) -> str:
    """``address`` with its last octet replaced by ``number``."""
    return str(ipaddress.IPv4Address(int(ipaddress.IPv4Address(address)) & ~0xFF | number))


class Load:
    """Concurrent UAI users and ASI clients for a bounded time (`start`, then `wait`)."""

    def __init__(self, sc_port: int, ac_port: int, plan: Plan, uai_clients: int = 6,
                 asi_clients: int = 4, seed: int = 1, timeout: float = 15.0,
                 max_held: int = 4):
        rng = random.Random(seed)
        self.recorder = Recorder()
        self.workers: list[_Worker] = [
            UaiUser(f"uai{i}", ac_port, USERS[i % len(USERS)], random.Random(rng.random()),
                    self.recorder, timeout, plan.users, max_held)
            for i in range(uai_clients)]
        for i in range(asi_clients):
            ac, token = ASI_ACS[i % len(ASI_ACS)]
            self.workers.append(AsiAc(f"asi{i}", sc_port, ac, token,
                                      random.Random(rng.random()), self.recorder, timeout,
                                      plan.asi_pairs(i), max_held))
        self.began = self.ended = 0.0

    def start(self, duration: float) -> "Load":
        """Start every client; they stop sending ``duration`` s from now."""
        self.began = time.monotonic()
        for worker in self.workers:
            worker.deadline = self.began + duration
            worker.start()
        return self

    def stop(self) -> None:
        """Ask every client to stop after its current request."""
        for worker in self.workers:
            worker.stopping.set()

    def wait(self) -> Ledger:
        """Wait for every client to finish; their merged ledger (a client's error re-raised)."""
        for worker in self.workers:
            worker.join()
        self.ended = time.monotonic()
        for worker in self.workers:
            if worker.error is not None:
                raise worker.error
        ledger = Ledger()
        for worker in self.workers:
            ledger.merge(worker.ledger)
        return ledger

    @property
    def wall(self) -> float:
        """Seconds from start to the last client's end."""
        return max(0.0, self.ended - self.began)


def release_all(sc: lab.ScRun, ac: lab.AcRun, ledger: Ledger) -> list[str]:
    """Release what the load left: active UAI requests (as the manager), the ASI clients'
    lightpaths; the ledger updated. What could not be released, as sentences."""
    problems = []
    active = ac.request("GET", f"{REQUESTS}?status=active", token=MANAGER).json["requests"]
    for record in active:
        gone = ac.request("DELETE", f"{REQUESTS}/{record['id']}", token=MANAGER)
        if gone.status == 200:
            ledger.uai[record["id"]] = DELETED
        elif gone.status != 409:  # 409: expired meanwhile
            problems.append(f"DELETE {record['id']}: {gone.status} {gone.body[:200]!r}")
    tokens = dict(ASI_ACS)
    for name, ids in ledger.asi_held.items():
        for lp_id in sorted(ids):
            gone = sc.request("DELETE", f"{LIGHTPATHS}/{lp_id}", token=tokens[name])
            if gone.status == 200:
                ids.discard(lp_id)
            else:
                problems.append(f"DELETE {lp_id} ({name}): {gone.status} {gone.body[:200]!r}")
    return problems


def reader(sc: lab.ScRun, ac: lab.AcRun, net: lab.NetRun) -> Callable[[], invariants.Snapshot]:
    """A function reading the lab's `invariants.Snapshot`."""
    return lambda: invariants.collect(
        sc.url, ac.url, MANAGER, lab.DEMO_TOKENS, net.state["agents"],
        lambda: {switch: net.dump_flows(switch) for switch in net.switches})


def wait_dcs(ac: lab.AcRun, count: int, timeout: float = 30.0) -> None:
    """Wait until the AC sees ``count`` DCs, all available."""
    deadline = time.monotonic() + timeout
    while True:
        dcs = ac.request("GET", "/uai/v1/dcs", token=MANAGER).json["dcs"]
        if len(dcs) == count and all(dc["available"] for dc in dcs):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"DCs not all available after {timeout:g} s: {dcs}")
        time.sleep(0.3)


def loadavg() -> str:
    """The machine's 1, 5 and 15 minute load averages (``/proc/loadavg``)."""
    with open("/proc/loadavg", encoding="ascii") as handle:
        return " ".join(handle.read().split()[:3])


def run(sc: lab.ScRun, ac: lab.AcRun, net: lab.NetRun, load_: Load, duration: float,
        settle_s: float = 15.0) -> dict[str, Any]:
    """Run ``load_`` on a started lab, check, release everything, check again; figures."""
    before = loadavg()
    ledger = load_.start(duration).wait()
    after = loadavg()
    read = reader(sc, ac, net)
    violations, snap = invariants.settle(read, ledger, settle_s)
    held = {"requests": len(invariants.active_requests(snap)),
            "lightpaths": len(snap.lightpaths),
            "vms": sum(len(state["vms"]) for state in snap.agents.values())}
    outcomes = {"uai_requests": len(ledger.uai), "unanswered_posts": ledger.unanswered_posts,
                "uai_by_final_status": dict(collections.Counter(
                    r["status"] for r in snap.requests if r["id"] in ledger.uai)),
                "expired": sum(r["end_reason"] == "expired" for r in snap.requests)}
    unreleased = release_all(sc, ac, ledger)
    after_release, final = invariants.settle(read, ledger, settle_s)
    left = invariants.check_released(final)
    failures = load_.recorder.failures
    return {"duration_s": duration, "wall_s": round(load_.wall, 2),
            "loadavg_before": before, "loadavg_after": after,
            "requests": sum(len(s) for s in load_.recorder.samples.values()),
            "kinds": load_.recorder.figures(load_.wall), "failures": len(failures),
            "failure_samples": failures[:20], "ledger": outcomes,
            "held_after_load": held, "violations": violations,
            "release_problems": unreleased, "violations_after_release": after_release,
            "left_after_release": left,
            "ok": not (failures or violations or unreleased or after_release or left)}


# -- the command ------------------------------------------------------------------------------

def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=at_least(float, 1.0), default=30.0,
                   help="seconds of load (default 30)")
    p.add_argument("--uai-clients", type=at_least(int, 0), default=6,
                   help="UAI user threads (default 6)")
    p.add_argument("--asi-clients", type=at_least(int, 0), default=4,
                   help="ASI client threads, demo-ac and other-ac in turn (default 4)")
    p.add_argument("--max-held", type=at_least(int, 1), default=4,
                   help="requests or lightpaths one client holds at most (default 4)")
    p.add_argument("--seed", type=int, default=1, help="seed of the clients' choices")
    p.add_argument("--timeout", type=at_least(float, 0.0, strict=True), default=15.0,
                   help="seconds a client waits for one answer (default 15)")
    p.add_argument("--log-dir", help="where the processes' logs go (default: a new "
                                     "temporary directory)")


@register("load", "concurrent UAI + ASI clients on the live SC, AC and agents, then "
          "invariants (root)", _options, lambda figures: report(figures))
def bench_load(args: argparse.Namespace) -> dict[str, Any]:
    """Start SC, emulation and AC; run the load; check; release; check; stop everything."""
    problem = lab.missing_requirements()
    if problem:
        print(f"cso bench load: {problem}", file=sys.stderr)
        raise SystemExit(2)
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="cso-bench-load-")
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    plan = Plan.of("nsfnet")
    lab.ensure_ovs()
    sc = lab.ScRun(log_dir)
    net: Optional[lab.NetRun] = None
    ac: Optional[lab.AcRun] = None
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        sc.start()
        net = lab.start_net(log_dir, sc.ofp_port)
        sc.wait_discovered()
        ac = lab.AcRun(log_dir, sc, net.state["agents"]).start()
        wait_dcs(ac, len(net.state["agents"]))
        load_ = Load(sc.rest_port, ac.port, plan, args.uai_clients, args.asi_clients,
                     args.seed, args.timeout, args.max_held)
        figures = run(sc, ac, net, load_, args.duration)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the cleanup must not be cut short
        try:
            for process in (ac, net):
                if process is not None:
                    process.stop()
            sc.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
    return {"benchmark": "load", "topology": "nsfnet", "date": date, "seed": args.seed,
            "clients": {"uai": args.uai_clients, "asi": args.asi_clients},
            "max_held": args.max_held, **figures, "machine": machine(), "log_dir": log_dir}


def report(figures: Mapping[str, Any]) -> str:
    """The figures as a readable table."""
    clients = figures["clients"]
    lines = [f"Load on {figures['topology']}: {clients['uai']} UAI users + {clients['asi']} "
             f"ASI clients for {figures['duration_s']:g} s (wall {figures['wall_s']} s), seed "
             f"{figures['seed']}, {figures['date']}; loadavg {figures['loadavg_before']} -> "
             f"{figures['loadavg_after']}", "",
             f"  {'kind':<16}{'requests':>9}{'per s':>8}{'median':>10}{'p99':>10}{'max':>10}"
             "  statuses"]
    for kind, fig in figures["kinds"].items():
        lat = fig["latency"]
        lines.append(f"  {kind:<16}{fig['requests']:>9}{fig['per_s']:>8}"
                     f"{lat['median_ms']:>8}ms{lat['p99_ms']:>8}ms{lat['max_ms']:>8}ms  "
                     + ", ".join(f"{s}: {n}" for s, n in sorted(fig["statuses"].items())))
    lines += ["", f"  {figures['requests']} requests, {figures['failures']} failures "
              "(5xx, timeouts, broken connections, unexpected answers)"]
    lines += [f"    {f['kind']} {f['request']}: {f['answer']}"
              for f in figures["failure_samples"]]
    lines.append(f"  held after the load: {figures['held_after_load']}; UAI requests "
                 f"{figures['ledger']}")
    for what in ("violations", "release_problems", "violations_after_release",
                 "left_after_release"):
        lines.append(f"  {what.replace('_', ' ')}: {len(figures[what])}")
        lines += [f"    {item}" for item in figures[what][:20]]
    lines.append(f"  {'OK' if figures['ok'] else 'NOT OK'}; logs in {figures['log_dir']}")
    return "\n".join(lines)
