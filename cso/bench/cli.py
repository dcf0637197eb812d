"""``cso bench WHAT``: benchmarks, each printing its figures (one JSON object with --json).

Benchmarks register themselves in `BENCHMARKS` with `register`; each has its
own options and returns a JSON-able dict. They are the `PLUGINS` (`cso.bench.pce`,
`provision`, `sim`, `restore`, `load`), sharing `cso.bench.common`. Results and how to
reproduce them are kept in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from cso_base.cli import Parser, dumps, parse_args


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: its options, its run and its human-readable report."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], dict[str, Any]]
    report: Callable[[dict[str, Any]], str]


BENCHMARKS: dict[str, Benchmark] = {}


def register(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None],
             report: Callable[[dict[str, Any]], str]
             ) -> Callable[[Callable[[argparse.Namespace], dict[str, Any]]],
                           Callable[[argparse.Namespace], dict[str, Any]]]:
    """Decorator adding a run function to `BENCHMARKS` under ``name``."""
    def wrap(run: Callable[[argparse.Namespace], dict[str, Any]]
             ) -> Callable[[argparse.Namespace], dict[str, Any]]:
        BENCHMARKS[name] = Benchmark(name, help, configure, run, report)
        return run
    return wrap


#: Modules registering the benchmarks; imported by `benchmarks`, not at import time, so
#: that each of them may be imported first (they import this module).
PLUGINS = ("cso.bench.pce", "cso.bench.provision", "cso.bench.sim", "cso.bench.restore",
           "cso.bench.load")


def benchmarks() -> dict[str, Benchmark]:
    """Every benchmark, by name: those the `PLUGINS` register."""
    for module in PLUGINS:
        importlib.import_module(module)
    return BENCHMARKS


# -- command ------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    """The command line of ``cso bench``: one subcommand per registered benchmark."""
    p = Parser(prog="cso bench", description="Run a benchmark.")
    sub = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    for bench in benchmarks().values():
        sp = sub.add_parser(bench.name, help=bench.help, description=bench.help)
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        bench.configure(sp)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cso bench``; returns the exit code."""
    args = parse_args(parser(), argv)
    if isinstance(args, int):                # --help or a usage error, already reported
        return args
    bench = BENCHMARKS[args.what]
    figures = bench.run(args)
    print(dumps(figures) if args.json else bench.report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
