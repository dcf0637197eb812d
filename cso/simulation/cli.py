"""``cso sim``: sweep strategies and offered loads in the discrete-event simulator.

The engine, traffic models and metrics are in `cso.simulation.engine`, the figures in
`cso.simulation.plots`. With ``--out DIR`` the summary goes to ``DIR/results.json`` and
``DIR/results.csv`` and one PNG and one SVG per metric; ``--json`` prints the
summary as one JSON object on stdout. Progress goes to stderr. Examples::

    cso sim --strategies RB,AB,NB,GLB --loads 50,100,150 --seeds 5 --out /tmp/sim
    cso sim --traffic rwa --k 1,5 --wavelengths 16 --loads 40,60,80 --json

With ``--driver stack`` every request goes through the live SC's and AC's objects in process
instead (`cso.simulation.stack`: UA, procedure, SSE, DC agents, SA, flow installer), with the
same requests and metrics; ``--driver compare`` runs both drivers on every point, one after the
other, and reports whether each request was served alike, whether the metrics are equal, and
each driver's median requests per second::

    cso sim --driver compare --topo nsfnet-small --strategies RB,NB,GLB --loads 30 --seeds 3

With ``--live AC_URL --token TOKEN`` the same requests are replayed against a running AC
(`cso.simulation.live`), and its metrics are reported next to the simulation's.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import asdict
from typing import Any, Optional, Sequence

from ac_app.sse import STRATEGIES
from cso_base.cli import (COUNT, FRACTION, NEGATIVE, POSITIVE, POSITIVE_INT, USAGE, Parser,
                          dumps, fail, listed, number, parse_args)
from cso.simulation.engine import (CSO, MEAN_HOLDING, METRIC_NOTES, METRICS, RWA, RWA_SERIES,
                                   TRAFFIC, Point, Range, Scenario, Series, run_point,
                                   scenario_json, sweep)
from sc_app.pce import ORDERS, POLICIES
from topologies.loader import TopologyError
from topologies.schema import MAX_WAVELENGTHS

DEFAULT_STRATEGIES = ("RB", "AB", "NB", "GLB")
#: Who serves the requests: the fast engine, the live objects in process, or both.
ENGINE, STACK, COMPARE = "engine", "stack", "compare"
DRIVERS = (ENGINE, STACK, COMPARE)


#: --live's options, refused without it; and their defaults.
LIVE_DEFAULTS = {"token": None, "time_scale": 2.0, "sc_url": None, "timeout": 30.0}
#: Options of cso traffic only (users, DC servers, strategies): ignored, with a warning, for rwa.
CSO_ONLY = ("glb_k", "a", "b", "cpu", "memory", "disk", "server_cpu", "server_memory",
            "server_disk")


def _range(text: str) -> Range:
    try:
        return Range.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, but for options whose help says what happens without them."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def parser() -> argparse.ArgumentParser:
    """The command line of ``cso sim``."""
    p = Parser(prog="cso sim", description=__doc__.splitlines()[0],
               formatter_class=_HelpFormatter)
    p.add_argument("--traffic", choices=TRAFFIC, default=CSO,
                   help="cso: users to DC servers; rwa: lightpaths between random node pairs")
    p.add_argument("--topo", default="nsfnet", help="topology name or file")
    p.add_argument("--wavelengths", type=number(int, low=1, high=MAX_WAVELENGTHS), default=None,
                   help="wavelengths per fibre; none given: the topology file's")
    p.add_argument("--k", type=listed(POSITIVE_INT), default=[5],
                   help="candidate paths of the SA-PCE; a list (1,5) gives one series each")
    p.add_argument("--path-order", choices=ORDERS, default="hops", help="candidate order")
    p.add_argument("--policy", type=listed(str), default=["first-fit"],
                   help=f"wavelength policy, or a list; of {', '.join(POLICIES)}")
    p.add_argument("--strategies", type=listed(str), default=None,
                   help=f"cso traffic: strategies among {', '.join(STRATEGIES)}; none given: "
                        f"{','.join(DEFAULT_STRATEGIES)} (with --live: the AC's)")
    p.add_argument("--glb-k", type=POSITIVE_INT, default=5,
                   help="GLB: K candidate servers of step 1")
    p.add_argument("--a", type=FRACTION, default=0.5, help="A(s) = a*mem_util + (1-a)*cpu_util")
    p.add_argument("--b", type=FRACTION, default=0.5, help="GLB: x = b*A/A_max + (1-b)*N/N_max")
    p.add_argument("--loads", type=listed(POSITIVE), default=[50.0, 100.0, 150.0],
                   help="offered loads in Erlang (arrival rate x mean holding time 1)")
    p.add_argument("--requests", type=POSITIVE_INT, default=10_000,
                   help="measured requests per point")
    p.add_argument("--warmup", type=COUNT, default=1_000, help="requests discarded first")
    p.add_argument("--seeds", type=POSITIVE_INT, default=5, help="independent runs per point (CI)")
    p.add_argument("--seed", type=int, default=1, help="first seed; runs use seed..seed+S-1")
    p.add_argument("--cpu", type=_range, default=Range(1, 4), help="cpu per request: N or LO-HI")
    p.add_argument("--memory", type=_range, default=Range(4, 16), help="memory GB per request")
    p.add_argument("--disk", type=_range, default=Range(10, 50), help="disk GB per request")
    p.add_argument("--server-cpu", type=POSITIVE_INT, default=None,
                   help="override every DC server's cpu cores; none given: the topology's")
    p.add_argument("--server-memory", type=POSITIVE, default=None, help="override memory GB")
    p.add_argument("--server-disk", type=POSITIVE, default=None, help="override disk GB")
    p.add_argument("--driver", choices=DRIVERS, default=ENGINE,
                   help="engine: the fast simulator; stack: the live SC's and AC's objects in "
                        "process (cso traffic; much slower); compare: both, request by request, "
                        "with their speeds (one process)")
    p.add_argument("--jobs", type=COUNT, default=1,
                   help="worker processes; 0: one per core (results do not depend on it)")
    p.add_argument("--out", default=None, help="directory for CSV, JSON and plots")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    live = p.add_argument_group("live cross-check (cso.simulation.live)")
    live.add_argument("--live", metavar="AC_URL", default=None,
                      help="replay the requests against the AC at AC_URL over UAI")
    live.add_argument("--token", default=None, help="--live: a provider manager's UAI token")
    live.add_argument("--time-scale", type=POSITIVE, default=None, metavar="SECONDS",
                      help="--live: real seconds per simulated time unit (mean holding time; "
                           f"default {LIVE_DEFAULTS['time_scale']:g})")
    live.add_argument("--sc-url", default=None,
                      help="--live: the SC's REST URL, to check its wavelengths (SMI)")
    live.add_argument("--timeout", type=POSITIVE, default=None,
                      help=f"--live: seconds per call (default {LIVE_DEFAULTS['timeout']:g})")
    return p


def build(args: argparse.Namespace) -> tuple[Scenario, list[Series]]:
    """The scenario and the series the arguments ask for; ValueError on bad values."""
    scenario = Scenario(traffic=args.traffic, topo=args.topo, wavelengths=args.wavelengths,
                        order=args.path_order, cpu=args.cpu, memory=args.memory,
                        disk=args.disk, server_cpu=args.server_cpu,
                        server_memory=args.server_memory, server_disk=args.server_disk,
                        a=args.a, b=args.b, glb_k=args.glb_k, requests=args.requests,
                        warmup=args.warmup)
    names = [RWA_SERIES] if args.traffic == RWA else [
        name.upper() for name in args.strategies or DEFAULT_STRATEGIES]
    for name in names:
        if name != RWA_SERIES and name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
        if names.count(name) > 1:
            raise ValueError(f"--strategies: {name} given more than once")
    many_k, many_policy = len(args.k) > 1, len(args.policy) > 1
    series = []
    for name in names:
        for k in args.k:
            for policy in args.policy:
                parts = [] if (args.traffic == RWA and (many_k or many_policy)) else [name]
                if many_policy or args.traffic == RWA:
                    parts.append(policy)
                if many_k or args.traffic == RWA:
                    parts.append(f"K={k}")
                series.append(Series(name, k, policy, " ".join(parts)))
    return scenario, series


class Progress:
    """Points done, elapsed and estimated time left, on stderr."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.start = time.monotonic()

    def __call__(self, done: int, total: int, point: Point) -> None:
        """Report that ``done`` of ``total`` points are finished."""
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        left = elapsed / done * (total - done)
        print(f"cso sim: {done}/{total} points ({point.series.label}, {point.load:g} E, "
              f"seed {point.seed}), {elapsed:.0f} s elapsed, ~{left:.0f} s left",
              file=sys.stderr, flush=True)


def write_csv(path: str, rows: Sequence[dict[str, Any]]) -> None:
    """One line per (series, load): every metric's mean and 95% CI half-width."""
    head = ["series", "strategy", "k", "policy", "load", "seeds"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(head + [f"{m}_{part}" for m in METRICS for part in ("mean", "ci95")])
        for row in rows:
            values = [row[m][part] for m in METRICS for part in ("mean", "ci95")]
            writer.writerow([row[key] for key in head]
                            + ["" if v is None else f"{v:.6g}" for v in values])


def table(summary: dict[str, Any]) -> str:
    """A human-readable table of the four metrics of the draft."""
    shown = METRICS[:4]
    lines = [f"{'series':<18}{'load':>8}" + "".join(f"{m:>26}" for m in shown)]
    for row in summary["results"]:
        cells = []
        for metric in shown:
            value = row[metric]
            if value["mean"] is None:
                cells.append(f"{'-':>26}")
            else:
                ci = f" ± {value['ci95']:.4f}" if value["ci95"] is not None else ""
                cells.append(f"{value['mean']:.4f}{ci}".rjust(26))
        lines.append(f"{row['series']:<18}{row['load']:>8g}" + "".join(cells))
    lines.append(f"({summary['wall_s']:.1f} s)")
    return "\n".join(lines)


def _inapplicable(args: argparse.Namespace) -> Optional[str]:
    """Why an option given does not apply to the others; None when they all do."""
    if args.traffic == RWA and args.strategies is not None:
        return "--strategies applies to cso traffic (rwa traffic has no strategies)"
    if args.live:
        if args.driver != ENGINE:
            return "--live compares the running AC with the engine (no --driver)"
        return None
    given = [name for name in LIVE_DEFAULTS if getattr(args, name) is not None]
    if given:
        return f"--{given[0].replace('_', '-')} applies only with --live"
    return None


def _warn_ignored(args: argparse.Namespace) -> None:
    """Warn on stderr about options given that rwa traffic ignores."""
    if args.traffic != RWA:
        return
    defaults = parser().parse_args([])
    for name in CSO_ONLY:
        if getattr(args, name) != getattr(defaults, name):
            print(f"cso sim: warning: --{name.replace('_', '-')} applies to cso traffic; "
                  f"ignored with --traffic rwa", file=sys.stderr)


def _out_dir(path: str) -> None:
    """Create --out (OSError when it cannot be a directory): before, not after, the work."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise OSError(f"--out {path}: exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise OSError(f"--out {path}: cannot create the directory: "
                      f"{err.strerror or err}") from None
    if not os.access(path, os.W_OK):
        raise OSError(f"--out {path}: not writable")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cso sim``; returns the exit code."""
    args = parse_args(parser(), argv)
    if isinstance(args, int):
        return args
    try:
        problem = _inapplicable(args)
        if problem:
            raise ValueError(problem)
        _warn_ignored(args)
        for name, default in LIVE_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
    except ValueError as err:
        return fail("cso sim", str(err), USAGE, args.json)
    if args.live:
        return live_main(args)
    try:
        scenario, series = build(args)
        if args.driver != ENGINE and scenario.traffic != CSO:
            raise ValueError(f"--driver {args.driver} serves cso traffic (users' requests "
                             f"through the AC); rwa traffic has no AC")
        if args.out:
            _out_dir(args.out)
        jobs = args.jobs or os.cpu_count() or 1
        seeds = list(range(args.seed, args.seed + args.seeds))
        if args.driver == COMPARE:
            return compare_main(args, scenario, series, seeds)
        run = run_point
        if args.driver == STACK:
            from cso.simulation import stack              # the live objects: only when asked
            run = stack.run_point
        summary = sweep(scenario, series, args.loads, seeds, jobs, Progress(args.quiet), run)
        summary["parameters"]["driver"] = args.driver
    except TopologyError as err:
        return fail("cso sim", str(err), NEGATIVE, args.json, "invalid-topology")
    except OSError as err:
        return fail("cso sim", str(err), NEGATIVE, args.json, "cannot-write")
    except ValueError as err:
        return fail("cso sim", str(err), USAGE, args.json)
    if args.out:
        _write_json(os.path.join(args.out, "results.json"), summary)
        write_csv(os.path.join(args.out, "results.csv"), summary["results"])
        from cso.simulation.plots import plot_all  # matplotlib is slow to import: only when needed
        written = plot_all(summary, args.out)
        if not args.quiet:
            print(f"cso sim: wrote results.json, results.csv and {len(written)} plot files "
                  f"to {args.out}", file=sys.stderr)
    print(dumps(summary) if args.json else table(summary))
    return 0


def _write_json(path: str, summary: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(dumps(summary, indent=1))


def compare_main(args: argparse.Namespace, scenario: Scenario, series: Sequence[Series],
                 seeds: Sequence[int]) -> int:
    """``cso sim --driver compare``: both drivers on every point, agreement and speeds."""
    from cso.simulation import stack                      # the live objects: only when asked
    summary = stack.compare_sweep(scenario, series, args.loads, seeds, Progress(args.quiet))
    summary["parameters"] = {**scenario_json(scenario), "series": [asdict(s) for s in series],
                             "loads": list(args.loads), "seeds": list(seeds),
                             "mean_holding_time": MEAN_HOLDING, "driver": COMPARE}
    if args.out:
        _write_json(os.path.join(args.out, "compare.json"), summary)
    print(dumps(summary) if args.json else stack.compare_text(summary))
    agree = all(row["agree"] == row["compared"] and row["same_metrics"]
                for row in summary["rows"])
    return 0 if agree else 1


def live_main(args: argparse.Namespace) -> int:
    """``cso sim --live``: check the running system, replay, print live next to simulated."""
    from cso.simulation import live as sim_live           # only the live run needs it
    try:
        if not args.token:
            raise ValueError("--live needs --token, a provider manager's UAI token")
        if len(args.k) > 1 or len(args.policy) > 1:
            raise ValueError("--live compares one series: give one --k and one --policy")
        uai = sim_live.Uai(args.live, args.token, args.timeout)
        if args.strategies is None and args.traffic == CSO:
            args.strategies = [str(uai.get("/uai/v1/health").get("strategy"))]
        scenario, series = build(args)
        if len(series) != 1:
            raise ValueError("--live compares one strategy: the AC's (--strategies NAME)")
        if args.out:
            _out_dir(args.out)
        seeds = list(range(args.seed, args.seed + args.seeds))
        summary = sim_live.live_sweep(scenario, series[0], args.loads, seeds, uai,
                                      args.time_scale, args.sc_url, not args.quiet)
    except (TopologyError, OSError) as err:
        return fail("cso sim", str(err), NEGATIVE, args.json,
                    "invalid-topology" if isinstance(err, TopologyError) else "cannot-write")
    except (ValueError, sim_live.LiveError) as err:
        return fail("cso sim", str(err), USAGE, args.json)
    summary["parameters"].update(scenario_json(scenario), series=[asdict(series[0])],
                                 loads=list(args.loads), seeds=seeds,
                                 mean_holding_time=MEAN_HOLDING)
    summary["metric_definitions"] = METRIC_NOTES
    if args.out:
        _write_json(os.path.join(args.out, "results.json"), summary)
    print(dumps(summary) if args.json else sim_live.summary_text(summary, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
