"""``cso`` console command: dispatches to the subcommand's own module.

Subcommands are imported lazily so that, e.g., ``cso ac`` never imports Ryu
and ``cso path`` starts quickly. Each module exposes ``main(argv) -> int``.
"""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sc": ("sc_app.cli_sc", "run the Service Controller (Ryu's ryu-manager with sc_app)"),
    "ac": ("ac_app.cli_ac", "run the Application Controller (UAI, SSE, ARAE; no Ryu)"),
    "net": ("cso.emulation.cli", "emulate a topology in Mininet with OVS switches (root)"),
    "path": ("sc_app.cli_path", "compute a lightpath offline on a topology file"),
    "topo": ("topologies.cli", "check or generate topology files"),
    "bench": ("cso.bench.cli", "benchmarks (results under docs/)"),
    "sim": ("cso.simulation.cli", "discrete-event simulation of strategies and RWA"),
    "demo": ("cso.demo", "run the NSFNET demonstration"),
    "agent": ("ac_app.dc_agent.cli", "run a DC agent inside a DC host"),
}


def usage() -> str:
    """The top-level help text."""
    lines = ["usage: cso COMMAND [ARGS...]", "", "commands:"]
    for name, (_module, text) in COMMANDS.items():
        lines.append(f"  {name:<8} {text}")
    lines.append("")
    lines.append("Run `cso COMMAND --help` for a command's options.")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``cso`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"cso: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
