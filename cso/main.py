"""``cso`` console command: dispatches to the subcommand's own module.

Subcommands are imported lazily so that, e.g., ``cso ac`` never imports Ryu
and ``cso path`` starts quickly. Each module exposes ``main(argv) -> int``.
An exception a subcommand does not handle becomes one ``cso COMMAND: error: ...``
line and exit code 3 (`cso_base.cli.EXIT_CODES`); ``cso --debug COMMAND`` shows its traceback.
"""
from __future__ import annotations

import importlib
import sys
import traceback
from importlib import metadata
from typing import Optional, Sequence

from cso_base.cli import EXIT_CODES, INTERNAL, NEGATIVE, USAGE, fail

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sc": ("sc_app.cli_sc", "run the Service Controller (Ryu's ryu-manager with sc_app); "
           "`cso sc check-config FILE` validates its config"),
    "ac": ("ac_app.cli_ac", "run the Application Controller (UAI, SSE, ARAE; no Ryu); "
           "`cso ac check-config FILE` validates its config"),
    "net": ("cso.emulation.cli", "emulate a topology in Mininet with OVS switches (root)"),
    "path": ("sc_app.cli_path", "compute a lightpath offline on a topology file"),
    "topo": ("cso.topo", "check, generate or list topology files "
             "(`cso topo list`: the shipped ones)"),
    "bench": ("cso.bench.cli", "benchmarks (results under docs/)"),
    "sim": ("cso.simulation.cli", "discrete-event simulation of strategies and RWA"),
    "demo": ("cso.demo", "run the NSFNET demonstration"),
    "agent": ("ac_app.dc_agent.cli", "run a DC agent inside a DC host"),
}
#: The distribution whose version `cso --version` prints.
DISTRIBUTION = "cso-oaas"


def usage() -> str:
    """The top-level help text."""
    lines = ["usage: cso [--debug] COMMAND [ARGS...]", "       cso --version",
             "       cso help COMMAND", "", "commands:"]
    for name, (_module, text) in COMMANDS.items():
        lines.append(f"  {name:<8} {text}")
    lines += ["", "options:", "  --debug   show the traceback of an unexpected error",
              "  --version print the version and exit", "",
              "Run `cso COMMAND --help` (or `cso help COMMAND`) for a command's options.",
              "", EXIT_CODES]
    return "\n".join(lines)


def version() -> str:
    """The installed package's version (from its metadata)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``cso`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = False
    while args and args[0] == "--debug":
        debug, args = True, args[1:]
    if args[:1] == ["--version"]:
        print(f"cso {version()}")
        return 0
    if args[:1] == ["help"] and len(args) > 1:
        args = [args[1], "--help"]
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"{usage()}\n", file=sys.stderr)
        return fail("cso", f"unknown command {name!r}", USAGE)
    return run(name, rest, debug)


def run(name: str, rest: list[str], debug: bool = False) -> int:
    """``cso NAME REST...``, with unexpected exceptions turned into one line and exit code 3."""
    prog, as_json = f"cso {name}", "--json" in rest
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.main(rest) or 0)
    except SystemExit as stop:                # a subcommand that exits instead of returning
        code = stop.code
        if code is None or isinstance(code, int):
            return int(code or 0)
        print(code, file=sys.stderr)
        return NEGATIVE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                   # e.g. `cso topo list | head -1`
        return 0
    except Exception as exc:                  # the top-level handler: anything unexpected
        if debug:
            traceback.print_exc()
        hint = "" if debug else f" (run `cso --debug {name} ...` for the traceback)"
        if isinstance(exc, OSError):
            return fail(prog, f"{exc}", NEGATIVE, as_json, "os-error")
        return fail(prog, f"internal error: {type(exc).__name__}: {exc}{hint}", INTERNAL,
                    as_json, "internal-error")


if __name__ == "__main__":
    sys.exit(main())
