"""``cso demo``: the NSFNET demonstration that ``make demo`` runs.

Starts the real SC (``cso sc``) and the NSFNET emulation (``cso net``, root, with a
DC agent in every DC host), waits for LLDP to confirm every fibre, then:

1. network stratum: asks the SC over ASI for lightpaths between user hosts and DC
   hosts, shows traffic flowing over them (ping, TCP), the wavelength occupancy over
   SMI, tears them down and shows traffic stopped;
2. cross-stratum optimisation: starts the AC (``cso ac``, GLB); users ask over UAI for
   VoD sessions and a VM; each gets a server and a lightpath chosen together, downloads
   its content over the lightpath; accounting is printed; everything is released.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Optional, Sequence

from ac_app.asi_client import AsiClient
from cso.emulation import lab
from cso_base import http
from sc_app.pce import PCE
from sc_app.ted import TED
from topologies.loader import load

TOKEN = lab.DEMO_TOKENS["demo-ac"]
#: (user host, DC host) pairs served in the demo: users across the US to DCs.
PAIRS = (("u0", "dc1"), ("u2", "dc4"), ("u5", "dc9"), ("u13", "dc12"), ("u10", "dc7"),
         ("u3", "dc7"), ("u11", "dc9"), ("u6", "dc4"))


def say(text: str = "") -> None:
    """Print and flush (the demo is watched live)."""
    print(text, flush=True)


def offline_paths() -> None:
    """SA-PCE on the NSFNET file alone: shortest lightpath from every node to its nearest DC."""
    topo = load("nsfnet")
    pce = PCE(TED(topo))
    say("SA-PCE offline on topologies/nsfnet.json (K=5, hops order, first-fit):")
    say(f"  {'from':<16} {'to DC':<16} {'route':<22} {'λ':>3} {'hops':>4} {'km':>6} "
        f"{'delay ms':>8}")
    for node in topo.nodes.values():
        if node.dc is not None:
            continue
        best = min((pce.compute(node.id, dc) for dc in topo.dc_nodes()),
                   key=lambda p: (p.hops, p.length_km) if p.ok else (99, 0.0))
        say(f"  {node.name:<16} {topo.nodes[best.dst].name:<16} "
            f"{'-'.join(best.route):<22} {best.wavelength:>3} {best.hops:>4} "
            f"{best.length_km:>6.0f} {best.delay_ms:>8.2f}")
    say()


def run(log_dir: str) -> int:
    """The demonstration proper; returns the exit code."""
    offline_paths()
    lab.ensure_ovs()
    say(f"Starting the Service Controller (cso sc) and NSFNET in Mininet; logs in {log_dir}")
    sc = lab.ScRun(log_dir, topology="nsfnet")
    net: Optional[lab.NetRun] = None
    try:
        sc.start()
        net = lab.start_net(log_dir, sc.ofp_port, "nsfnet")
        started = time.monotonic()
        links = sc.wait_discovered()
        say(f"  14 switches connected, {len(links)} fibres up and confirmed by LLDP "
            f"in {time.monotonic() - started:.1f} s; REST at {sc.url}")
        say()
        say("An Application Controller asks over ASI for lightpaths (POST /asi/v1/lightpaths):")
        say(f"  {'id':<6} {'user':<5} {'DC':<5} {'route':<18} {'λ':>3} {'VID':>5} {'hops':>4} "
            f"{'km':>6} {'setup ms':>8}")
        lightpaths = []
        asi = AsiClient(sc.url, TOKEN)
        for user, dc in PAIRS:
            t0 = time.monotonic()
            resp = asi.post_lightpath(net.ip(user), net.ip(dc), "vod")
            ms = (time.monotonic() - t0) * 1000
            if resp.status != 201:
                say(f"  {user}->{dc}: refused {resp.status} {resp.json}")
                continue
            lp = resp.json
            lightpaths.append((user, dc, lp))
            km = sum(load_link_km(link) for link in lp["links"])
            say(f"  {lp['id']:<6} {user:<5} {dc:<5} "
                f"{'-'.join(lp['route']):<18} {lp['wavelength']:>3} {lp['vlan_vid']:>5} "
                f"{lp['hops']:>4} {km:>6.0f} {ms:>8.1f}")
        say()
        say("Traffic over the lightpaths (the switches forward nothing else):")
        for user, dc, lp in lightpaths:
            ok = net.ping(user, dc, count=3, timeout=1.0)
            say(f"  ping {user} -> {dc} ({net.ip(dc)}) over {lp['id']}: "
                f"{'3/3 answered' if ok else 'FAILED'}")
        user, dc, lp = lightpaths[0]
        transfer = net.tcp_transfer(user, dc, nbytes=20_000_000)
        say(f"  TCP {user} -> {dc}: 20 MB {'delivered' if transfer.ok else 'FAILED'} at "
            f"{transfer.bits_per_second / 1e6:.0f} Mb/s")
        say()
        busy = [link for link in sc.request("GET", "/smi/v1/links").json["links"]
                if link["used"]]
        say("Wavelength occupancy reported over SMI (GET /smi/v1/links), fibres in use:")
        for link in busy:
            say(f"  fibre {link['id']:<6} λ in use {link['used']}, {link['free']} of "
                f"{link['wavelengths']} free")
        alarms = sc.request("GET", "/smi/v1/alarms").json["alarms"]
        say(f"  active alarms: {len(alarms)}")
        say()
        say("Tearing the lightpaths down (DELETE /asi/v1/lightpaths/{id}):")
        for user, dc, lp in lightpaths:
            asi.delete_lightpath(lp["id"])
        user, dc, _lp = lightpaths[0]
        stopped = not net.ping(user, dc, count=2, timeout=0.5)
        left = [f for s in net.switches for f in net.dump_flows(s) if "vlan" in f]
        say(f"  {len(lightpaths)} removed; ping {user} -> {dc} now "
            f"{'fails, as it should' if stopped else 'STILL ANSWERS'}; "
            f"lightpath flow entries left on switches: {len(left)}")
        ok = (len(lightpaths) == len(PAIRS) and transfer.ok and stopped and not left
              and not alarms)
        say()
        ok = cso_part(log_dir, sc, net) and ok
        say()
        strategies_in_simulation()
        say()
        say("Demo " + ("finished: every step behaved as expected." if ok else
                       f"finished WITH PROBLEMS: see the logs in {log_dir}"))
        return 0 if ok else 1
    finally:
        if net is not None:
            net.stop()
        sc.stop()


def strategies_in_simulation() -> None:
    """A small `cso sim` point with the same strategy and PCE code, and where the plots are."""
    import contextlib
    import io
    import json

    from cso.simulation import cli as sim

    say("The four strategies in the simulator (same code as the live AC; NSFNET, W=16, "
        "120 Erlang, 3000 requests, one seed):")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        sim.main(["--traffic", "cso", "--wavelengths", "16", "--loads", "120", "--requests",
                  "3000", "--seeds", "1", "--json", "--quiet"])
    say(f"  {'strategy':<8} {'network blocking':>16} {'global blocking':>15} "
        f"{'load balance':>12} {'avg hops':>8}")
    for row in json.loads(out.getvalue())["results"]:
        say(f"  {row['strategy']:<8} {row['network_blocking']['mean']:>16.3f} "
            f"{row['global_blocking']['mean']:>15.3f} "
            f"{row['load_balance_factor']['mean']:>12.3f} {row['avg_hops']['mean']:>8.2f}")
    say("  The full experiment of §9 (9 loads x 5 seeds, confidence intervals) and what it "
        "shows: docs/results.md; plots in docs/plots/.")


#: User hosts that ask the AC for VoD in the demo.
VOD_USERS = ("u0", "u2", "u3", "u6", "u10", "u11", "u13", "u0")
USER_TOKEN = lab.DEMO_USERS["demo-user"][1]
MANAGER_TOKEN = lab.DEMO_USERS["demo-manager"][1]

# Run inside a user host: download URL, print {"bytes", "seconds"} or {"error"}.
_DOWNLOAD = """
import json, sys, time, urllib.request
start = time.monotonic()
try:
    with urllib.request.urlopen(sys.argv[1], timeout=20) as answer:
        size = len(answer.read())
    print(json.dumps({"bytes": size, "seconds": time.monotonic() - start}))
except OSError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def cso_part(log_dir: str, sc: lab.ScRun, net: lab.NetRun) -> bool:
    """Users served by the AC with GLB: a server and a lightpath chosen together."""
    import json

    say("Cross-stratum optimisation: the AC (cso ac, strategy GLB) serves users over UAI.")
    ac = lab.AcRun(log_dir, sc, net.state["agents"]).start()
    try:
        deadline = time.monotonic() + 30
        while not all(dc["available"] for dc in
                      ac.request("GET", "/uai/v1/dcs", token=MANAGER_TOKEN).json["dcs"]):
            if time.monotonic() > deadline:
                raise RuntimeError("the AC does not see every DC agent")
            time.sleep(0.5)
        say(f"  AC at {ac.url}; {len(net.state['agents'])} DC agents on the management network")
        say(f"  {'request':<8} {'user':<5} {'type':<4} {'DC/server':<11} {'VM address':<11} "
            f"{'route':<14} {'λ':>4} {'QoE':>3} {'download':>14}")
        served, ok = [], True
        asks = [("vod", user, {"content": f"film-{n}"}) for n, user in enumerate(VOD_USERS)]
        asks.append(("vm", "u5", {"cpu": 4, "memory_gb": 16, "disk_gb": 100}))
        for kind, user, extra in asks:
            resp = ac.request("POST", "/uai/v1/requests",
                              {"type": kind, "src": net.ip(user), **extra}, token=USER_TOKEN)
            if resp.status != 201:
                say(f"  {user} {kind}: refused {resp.status} {resp.json}")
                ok = False
                continue
            req = resp.json
            served.append(req)
            lp = req["lightpath"]
            if kind == "vod":
                out = net.exec(user, sys.executable, "-c", _DOWNLOAD,
                               req["content_url"] + "?bytes=5000000", timeout=30)
                got = json.loads(out.stdout or '{"error": "no output"}')
                rate = (f"5 MB {got['bytes'] * 8 / got['seconds'] / 1e6:.0f} Mb/s"
                        if got.get("bytes") == 5_000_000 else "FAILED")
                ok = ok and rate != "FAILED"
            else:
                rate = "ping ok" if net.ping(user, req["vm_ip"], count=2) else "ping FAILED"
                ok = ok and "FAILED" not in rate
            lam = "-" if lp.get("wavelength") is None else lp["wavelength"]
            say(f"  {req['id']:<8} {user:<5} {kind:<4} {req['server']:<11} {req['vm_ip']:<11} "
                f"{'-'.join(lp['route']):<14} {lam:>4} {req.get('rating') or '-':>3} "
                f"{rate:>14}")
        totals = ac.request("GET", "/uai/v1/accounting", token=MANAGER_TOKEN).json["totals"]
        say(f"  accounting: {totals['all']['served']} served, {totals['all']['refused']} refused,"
            f" mean QoE {totals['all']['mean_rating']}")
        for req in served:
            ac.request("DELETE", f"/uai/v1/requests/{req['id']}", token=USER_TOKEN)
        left_vms = sum(len(http.request("GET", url + "/agent/v1/state").json["vms"])
                       for url in net.state["agents"].values())
        left_lps = sc.request("GET", "/smi/v1/lightpaths").json["lightpaths"]
        say(f"  released every request: VMs left on agents {left_vms}, lightpaths left "
            f"{len(left_lps)}")
        return ok and left_vms == 0 and not left_lps
    finally:
        ac.stop()


_KM: dict[str, float] = {}


def load_link_km(link_id: str) -> float:
    """Length of an NSFNET fibre (for the table)."""
    if not _KM:
        _KM.update({link.id: link.length_km for link in load("nsfnet").links})
    return _KM[link_id]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cso demo``."""
    parser = argparse.ArgumentParser(prog="cso demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-dir", help="where the processes' logs go (default: a temp dir)")
    args = parser.parse_args(list(argv or []))
    if os.geteuid() != 0:
        print("cso demo: the emulation needs root (run `make demo` as root)", file=sys.stderr)
        return 2
    missing = lab.missing_requirements()
    if missing:
        print(f"cso demo: {missing} (run `make demo`, which installs everything)",
              file=sys.stderr)
        return 2
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="cso-demo-")
    return run(log_dir)
