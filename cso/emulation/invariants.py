"""Invariants of a running CSO system seen from outside: AC, SC, DC agents and switches agree.

Used by ``cso bench load`` and the integration tests (load, AC ``kill -9``). A `Snapshot` is
read over the public interfaces (UAI as a provider manager, ASI per AC token, SMI, the agents'
state, the switches' flow tables); `check` compares it with a `Ledger`, what the clients were
told (ids they got a 201 for, what they deleted), and returns the violations as sentences
(an empty list: everything holds):

- requests: every request a client was given is in the AC exactly once, in a status that
  agrees with what the client saw; none pending or releasing; none with leftovers; no
  request the clients never heard of beyond the POSTs that got no answer;
- lightpaths: per AC token, the SC's lightpaths are exactly the AC's active requests'
  (for the AC's own token) plus those the ASI clients still hold; SMI lists their union;
  an active request's lightpath joins its source and its VM;
- wavelengths: per fibre, the wavelengths SMI shows in use are exactly the hops of the
  lightpaths (and protection backups) on it, none held twice;
- flows: no lightpath-tagged flow entry without its lightpath, every lightpath has entries;
- VMs: the agents' VMs are exactly those of the AC's active vm/vod requests, at their
  addresses; each server's used capacity is the sum of its VMs' demands;
- accounting: the totals per type (and ``all``) are the sums over the per-request entries,
  and the entries are the requests.

`check_released` says what is still held anywhere once everything was released.
"""
from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

from cso_base import http
from sc_app.lightpath import LIGHTPATH_COOKIE_TAG, LIGHTPATH_COOKIE_TAG_MASK

#: What a client knows of a UAI request it submitted.
HELD = "held"            # got 201, never released it: active, or released at expiry
DELETED = "deleted"      # its DELETE answered 200: released
REFUSED = "refused"      # the POST answered an error with the request's id: refused or failed
UNSURE = "unsure"        # an answer was lost (timeout, AC killed): any settled status
_ALLOWED = {HELD: {"active", "released"}, DELETED: {"released"},
            REFUSED: {"refused", "failed"},
            UNSURE: {"active", "released", "refused", "failed"}}
_IN_FLIGHT = ("pending", "releasing")
#: How a request its client never deleted may end: at expiry, or an expiry the AC was doing
#: when it stopped (settled at its restart).
_UNASKED_ENDS = ("expired", "released after an AC restart")
_COOKIE = re.compile(r"cookie=(0x[0-9a-fA-F]+)")
_RESOURCES = ("cpu", "memory_gb", "disk_gb")
#: Accounting total -> the per-entry weight it integrates over ``duration_s``.
_INTEGRALS = {"duration_s": lambda e: 1.0, "cpu_s": lambda e: e["resources"]["cpu"],
              "memory_gb_s": lambda e: e["resources"]["memory_gb"],
              "disk_gb_s": lambda e: e["resources"]["disk_gb"],
              "wavelength_link_s": lambda e: e["resources"]["hops"] or 0}


@dataclass
class Snapshot:
    """The whole system's state as its interfaces show it."""

    requests: list[dict[str, Any]]            # UAI GET /uai/v1/requests, as a manager
    accounting: dict[str, Any]                # UAI GET /uai/v1/accounting, as a manager
    asi: dict[str, list[dict[str, Any]]]      # AC name -> ASI GET /asi/v1/lightpaths
    lightpaths: list[dict[str, Any]]          # SMI GET /smi/v1/lightpaths
    links: list[dict[str, Any]]               # SMI GET /smi/v1/links
    agents: dict[str, dict[str, Any]]         # DC -> GET /agent/v1/state
    flows: dict[str, list[str]]               # switch -> ovs-ofctl dump-flows lines


@dataclass
class Ledger:
    """What the clients were told: the truth a `Snapshot` is checked against."""

    ac_name: str = "demo-ac"                  # the SC's name of the AC under test
    uai: dict[str, str] = field(default_factory=dict)          # request id -> HELD, ...
    unanswered_posts: int = 0                 # POSTs that got no answer (maybe recorded)
    asi_held: dict[str, set[str]] = field(default_factory=dict)  # AC name -> lightpath ids
    before: set[str] = field(default_factory=set)  # request ids that existed before: ignored

    def merge(self, other: "Ledger") -> None:
        """Add another client's ledger to this one."""
        self.uai.update(other.uai)
        self.unanswered_posts += other.unanswered_posts
        for name, ids in other.asi_held.items():
            self.asi_held.setdefault(name, set()).update(ids)


def collect(sc_url: str, ac_url: str, manager_token: str, ac_tokens: Mapping[str, str],
            agents: Mapping[str, str], flows: Callable[[], dict[str, list[str]]],
            timeout: float = 10.0) -> Snapshot:
    """Read a `Snapshot` (``ac_tokens``: AC name -> ASI token; ``agents``: DC -> URL)."""
    def get(url: str, token: Optional[str] = None) -> Any:
        answer = http.request("GET", url, token=token, timeout=timeout)
        if answer.status != 200:
            raise RuntimeError(f"GET {url}: {answer.status} {answer.body[:200]!r}")
        return answer.json

    return Snapshot(
        requests=get(f"{ac_url}/uai/v1/requests", manager_token)["requests"],
        accounting=get(f"{ac_url}/uai/v1/accounting", manager_token),
        asi={name: get(f"{sc_url}/asi/v1/lightpaths", token)["lightpaths"]
             for name, token in ac_tokens.items()},
        lightpaths=get(f"{sc_url}/smi/v1/lightpaths")["lightpaths"],
        links=get(f"{sc_url}/smi/v1/links")["links"],
        agents={dc: get(f"{url}/agent/v1/state") for dc, url in agents.items()},
        flows=flows())


def check(snap: Snapshot, ledger: Ledger) -> list[str]:
    """Every violated invariant (module docstring), as sentences; [] when all hold."""
    return (check_requests(snap, ledger) + check_lightpaths(snap, ledger)
            + check_wavelengths(snap) + check_flows(snap) + check_vms(snap)
            + check_capacity(snap) + check_accounting(snap))


def settle(read: Callable[[], Snapshot], ledger: Ledger, timeout: float,
           step: float = 0.5) -> tuple[list[str], Snapshot]:
    """`check` until nothing is violated or ``timeout`` s passed (housekeeping may still be
    giving back); the last violations and snapshot."""
    deadline = time.monotonic() + timeout
    while True:
        snap = read()
        problems = check(snap, ledger)
        if not problems or time.monotonic() > deadline:
            return problems, snap
        time.sleep(step)


# -- requests ---------------------------------------------------------------------------------

def active_requests(snap: Snapshot) -> list[dict[str, Any]]:
    """The AC's active requests."""
    return [r for r in snap.requests if r["status"] == "active"]


def check_requests(snap: Snapshot, ledger: Ledger) -> list[str]:
    """Each request given to a client is there once, in a status that agrees; none in flight."""
    problems = []
    counts = Counter(r["id"] for r in snap.requests)
    problems += [f"request {rid} listed {n} times" for rid, n in counts.items() if n > 1]
    by_id = {r["id"]: r for r in snap.requests}
    for rid, known in sorted(ledger.uai.items()):
        record = by_id.get(rid)
        if record is None:
            problems.append(f"request {rid} ({known} by its client) is lost")
        elif record["status"] not in _ALLOWED[known]:
            problems.append(f"request {rid} is {record['status']} but its client saw it "
                            f"{known}")
        elif known == HELD and record["status"] == "released" \
                and record["end_reason"] not in _UNASKED_ENDS:
            problems.append(f"request {rid} released ({record['end_reason']}) but its client "
                            "never deleted it")
    for record in snap.requests:
        if record["status"] in _IN_FLIGHT:
            problems.append(f"request {record['id']} still {record['status']} "
                            f"({record['stage']})")
        if record["leftovers"]:
            problems.append(f"request {record['id']} still holds {record['leftovers']}")
    ghosts = sorted(set(by_id) - set(ledger.uai) - ledger.before)
    if len(ghosts) > ledger.unanswered_posts:
        problems.append(f"{len(ghosts)} requests no client heard of ({', '.join(ghosts[:5])})"
                        f" but only {ledger.unanswered_posts} POSTs went unanswered")
    return problems


# -- lightpaths, wavelengths, flows -----------------------------------------------------------

def check_lightpaths(snap: Snapshot, ledger: Ledger) -> list[str]:
    """Per AC token: the AC's active requests' lightpaths plus the ASI clients' held ones."""
    problems = []
    active = active_requests(snap)
    for name, listed in snap.asi.items():
        expected = set(ledger.asi_held.get(name, set()))
        if name == ledger.ac_name:
            expected |= {r["lightpath"]["id"] for r in active}
        problems += _compare_ids(f"SC lightpaths of {name}", [lp["id"] for lp in listed],
                                 expected)
    every = {lp["id"] for listed in snap.asi.values() for lp in listed}
    problems += _compare_ids("SMI lightpaths", [lp["id"] for lp in snap.lightpaths], every)
    by_id = {lp["id"]: lp for lp in snap.lightpaths}
    for record in active:
        lp = by_id.get(record["lightpath"]["id"])
        if lp is not None and (lp["src"], lp["dst"]) != (record["src"], record["vm_ip"]):
            problems.append(f"request {record['id']}: lightpath {lp['id']} joins {lp['src']} "
                            f"-> {lp['dst']}, not {record['src']} -> {record['vm_ip']}")
    return problems


def _compare_ids(what: str, listed: list[str], expected: set[str]) -> list[str]:
    problems = [f"{what}: {lp} listed twice" for lp, n in Counter(listed).items() if n > 1]
    extra, missing = sorted(set(listed) - expected), sorted(expected - set(listed))
    if extra:
        problems.append(f"{what}: not held by anyone: {extra}")
    if missing:
        problems.append(f"{what}: missing: {missing}")
    return problems


Holders = dict[tuple[str, int], list[str]]


def wavelength_holders(lightpaths: Iterable[Mapping[str, Any]]) -> Holders:
    """(fibre, wavelength) -> the lightpaths whose route (or protection backup) holds it."""
    holders: dict[tuple[str, int], list[str]] = {}
    for lp in lightpaths:
        for part in (lp, lp.get("protection")):
            if part and part.get("wavelength") is not None:
                for link in part["links"]:
                    holders.setdefault((link, part["wavelength"]), []).append(lp["id"])
    return holders


def check_wavelengths(snap: Snapshot) -> list[str]:
    """SMI's occupancy per fibre is exactly the lightpaths' hops; no wavelength held twice."""
    holders = wavelength_holders(snap.lightpaths)
    problems = [f"λ{lam} on {link} held by {ids}" for (link, lam), ids in holders.items()
                if len(ids) > 1]
    for link in snap.links:
        owners = {int(lam): lp for lam, lp in link["owners"].items()}
        expected = {lam: ids[0] for (fibre, lam), ids in holders.items() if fibre == link["id"]}
        if owners != expected:
            problems.append(f"fibre {link['id']}: owners {owners}, lightpaths say {expected}")
        if sorted(link["used"]) != sorted(owners):
            problems.append(f"fibre {link['id']}: used {link['used']} but owners "
                            f"{sorted(owners)}")
    return problems


def tagged_cookies(flows: Mapping[str, list[str]]) -> dict[str, set[int]]:
    """Switch -> the lightpath cookies (tag 0x4C50 in the top bits) of its flow entries."""
    found: dict[str, set[int]] = {}
    for switch, lines in flows.items():
        for line in lines:
            match = _COOKIE.search(line)
            cookie = int(match.group(1), 16) if match else 0
            if cookie & LIGHTPATH_COOKIE_TAG_MASK == LIGHTPATH_COOKIE_TAG:
                found.setdefault(switch, set()).add(cookie)
    return found


def check_flows(snap: Snapshot) -> list[str]:
    """No lightpath entry without its lightpath; every lightpath has entries somewhere."""
    cookies = {int(lp["cookie"], 16): lp["id"] for lp in snap.lightpaths}
    seen = tagged_cookies(snap.flows)
    problems = [f"switch {switch}: entries of no lightpath, cookies "
                f"{sorted(hex(c) for c in found - set(cookies))}"
                for switch, found in sorted(seen.items()) if found - set(cookies)]
    anywhere = set().union(*seen.values()) if seen else set()
    problems += [f"lightpath {lp_id} ({cookie:#x}) has no flow entry"
                 for cookie, lp_id in sorted(cookies.items()) if cookie not in anywhere]
    return problems


# -- VMs and servers --------------------------------------------------------------------------

def check_vms(snap: Snapshot) -> list[str]:
    """The agents' VMs are exactly the active vm/vod requests', at their addresses."""
    held = {(dc, vm["id"]): vm["ip"] for dc, state in snap.agents.items()
            for vm in state["vms"]}
    expected = {(r["dc"], r["id"]): r["vm_ip"] for r in active_requests(snap)
                if r["type"] in ("vm", "vod")}
    problems = []
    extra, missing = sorted(set(held) - set(expected)), sorted(set(expected) - set(held))
    if extra:
        problems.append(f"VMs no active request holds: {extra}")
    if missing:
        problems.append(f"active requests without their VM: {missing}")
    problems += [f"VM {key} at {held[key]}, its request says {ip}"
                 for key, ip in sorted(expected.items()) if key in held and held[key] != ip]
    return problems


def check_capacity(snap: Snapshot) -> list[str]:
    """Each server's used capacity is the sum of its VMs' demands."""
    problems = []
    for dc, state in sorted(snap.agents.items()):
        for server in state["servers"]:
            vms = [vm for vm in state["vms"] if vm["server"] == server["id"]]
            if sorted(server["vms"]) != sorted(vm["id"] for vm in vms):
                problems.append(f"{dc}/{server['id']}: lists VMs {server['vms']}, "
                                f"holds {[vm['id'] for vm in vms]}")
            for res in _RESOURCES:
                total = sum(vm[res] for vm in vms)
                if not math.isclose(server["used"][res], total, abs_tol=1e-6):
                    problems.append(f"{dc}/{server['id']}: {res} used {server['used'][res]}, "
                                    f"its VMs hold {total}")
    return problems


# -- accounting -------------------------------------------------------------------------------

def check_accounting(snap: Snapshot) -> list[str]:
    """Entries are the requests; totals (per type and ``all``) are the sums over entries."""
    entries = snap.accounting["requests"]
    problems = []
    statuses = {r["id"]: r["status"] for r in snap.requests}
    if {e["id"]: e["status"] for e in entries} != statuses:
        problems.append("accounting entries are not the requests (ids or statuses differ)")
    totals = snap.accounting["totals"]
    kinds = sorted(set(totals) - {"all"})
    for kind in kinds + ["all"]:
        mine = [e for e in entries if kind in ("all", e["type"])]
        problems += [f"accounting {kind}: {key} {totals[kind][key]} != {value} summed"
                     for key, (value, tol) in _expected_totals(mine).items()
                     if not _close(totals[kind][key], value, tol)]
    return problems


def _expected_totals(entries: list[dict[str, Any]]) -> dict[str, tuple[Any, float]]:
    """Total -> (the sum over ``entries``, how far rounding may put the reported one)."""
    sums: dict[str, tuple[Any, float]] = {
        "requests": (len(entries), 0.0),
        "served": (sum(e["start"] is not None for e in entries), 0.0),
        "active": (sum(e["status"] in ("active", "releasing") for e in entries), 0.0),
        "refused": (sum(e["status"] == "refused" for e in entries), 0.0),
        "failed": (sum(e["status"] == "failed" for e in entries), 0.0)}
    for key, weight in _INTEGRALS.items():
        # Each entry's duration_s is rounded to 3 decimals, and so is the total.
        sums[key] = (sum(weight(e) * e["duration_s"] for e in entries),
                     0.0005 * sum(weight(e) for e in entries) + 0.001)
    ratings = [e["rating"] for e in entries if e["rating"] is not None]
    sums["mean_rating"] = (sum(ratings) / len(ratings) if ratings else None, 0.001)
    return sums


def _close(reported: Any, summed: Any, tolerance: float) -> bool:
    """Equal within ``tolerance`` (None only equals None)."""
    if reported is None or summed is None:
        return reported is summed
    return math.isclose(reported, summed, rel_tol=1e-9, abs_tol=tolerance + 1e-9)


# -- after release ----------------------------------------------------------------------------

def check_released(snap: Snapshot) -> list[str]:
    """What is still held anywhere (nothing should be, once every request was released)."""
    problems = [f"active request {r['id']}" for r in active_requests(snap)]
    problems += [f"lightpath {lp['id']} ({lp['owner']})" for lp in snap.lightpaths]
    problems += [f"fibre {link['id']} holds λ{link['used']}" for link in snap.links
                 if link["used"]]
    problems += [f"switch {switch}: {len(found)} lightpath cookies"
                 for switch, found in sorted(tagged_cookies(snap.flows).items())]
    problems += [f"{dc}: VM {vm['id']}" for dc, state in sorted(snap.agents.items())
                 for vm in state["vms"]]
    problems += [f"{dc}/{server['id']}: {server['used']} used"
                 for dc, state in sorted(snap.agents.items()) for server in state["servers"]
                 if any(server["used"][res] for res in _RESOURCES)]
    return problems
