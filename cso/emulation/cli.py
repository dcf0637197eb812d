"""``cso net``: emulate a topology file in Mininet with OVS userspace switches (root).

    cso net [--topo NAME|FILE] [--controller HOST:PORT | --controllers D=HOST:PORT,...]
            [--no-cli] [--run-dir DIR]
            [--no-agents] [--agent-port PORT] [--agent-token T]
    cso net exec [--run-dir DIR] HOST -- CMD...
    cso net cleanup [--topo NAME|FILE]

Only one emulation runs per machine (bridge and interface names are global): a lock file
says which process holds it. While the switches are connected, ``DIR/state.json`` tells tools
the hosts' pids and addresses; it is written only once every switch is connected, and removed
on exit.

Topologies with DCs also get the management network (`cso.emulation.network.build_management`)
and, unless ``--no-agents``, a DC agent (`cso agent`, `cso.emulation.agents`) in every DC host,
logging to ``DIR/agent-<dc>.log``; the state file is written once every agent answers over the
management network and lists their URLs (``"agents": {dc id: url}``).
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import sys
import time
import traceback
from typing import Iterator, Optional, Sequence

from cso.emulation import controllers, lifecycle, network
from cso.emulation.agents import AgentOptions
from topologies.loader import TopologyError, load
from topologies.model import Topology

DEFAULT_RUN_DIR = "/run/cso/net"
LOCK_PATH = "/run/cso/net.lock"
DEFAULT_CONTROLLER = "127.0.0.1:6653"


class _Stop(BaseException):
    """SIGINT/SIGTERM: unwinds through Mininet's CLI (which swallows KeyboardInterrupt)."""


def parse_controller(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or just ``HOST``) -> (host, port)."""
    try:
        return controllers.parse_address(text)
    except controllers.ControllerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_controllers(text: str) -> dict[str, tuple[str, int]]:
    """``A=HOST:PORT,B=HOST:PORT`` -> {domain: (host, port)}."""
    try:
        return controllers.parse_controllers(text)
    except controllers.ControllerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cso net", description="Emulate a topology in Mininet (root). "
        "Subcommands: `cso net exec HOST -- CMD...`, `cso net cleanup`.")
    parser.add_argument("--topo", default="nsfnet", help="topology name or file (nsfnet)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--controller", type=parse_controller, default=DEFAULT_CONTROLLER,
                       help=f"the SC's OpenFlow address ({DEFAULT_CONTROLLER})")
    where.add_argument("--controllers", type=parse_controllers, metavar="DOMAIN=HOST:PORT,...",
                       help="one SC per domain: each domain's switches connect to its own "
                       "(every domain of the topology named once)")
    parser.add_argument("--no-cli", action="store_true",
                        help="no Mininet CLI: run until SIGINT/SIGTERM, then clean up")
    parser.add_argument("--run-dir", default=DEFAULT_RUN_DIR,
                        help=f"where the state file is written ({DEFAULT_RUN_DIR})")
    parser.add_argument("--connect-timeout", type=float, default=30.0,
                        help="seconds to wait for every switch to reach the controller (30)")
    parser.add_argument("--agents", action=argparse.BooleanOptionalAction, default=True,
                        help="start a DC agent in every DC host (default: yes)")
    parser.add_argument("--agent-port", type=int, default=network.AGENT_PORT,
                        help=f"the agents' management API port ({network.AGENT_PORT})")
    parser.add_argument("--agent-token", default=os.environ.get("CSO_AGENT_TOKEN"),
                        help="bearer token the agents require ($CSO_AGENT_TOKEN; none: open)")
    parser.add_argument("--agent-timeout", type=float, default=30.0,
                        help="seconds to wait for every agent to answer (30)")
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "output", "warning", "error"),
                        help="Mininet's log level (info)")
    return parser


def _exec_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cso net exec",
                                     description="Run a command inside an emulated host.")
    parser.add_argument("--run-dir", default=DEFAULT_RUN_DIR)
    parser.add_argument("host", help="host name, e.g. u0 or dc1")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    return parser


def _cleanup_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cso net cleanup",
        description="Remove a topology's leftover bridges, interfaces and host shells.")
    parser.add_argument("--topo", default="nsfnet", help="topology name or file (nsfnet)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cso net``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["exec"]:
        return exec_in_host(_exec_parser().parse_args(args[1:]))
    if args[:1] == ["cleanup"]:
        return _with_plan(_cleanup_parser().parse_args(args[1:]), _cleanup)
    return _with_plan(_parser().parse_args(args), run)


def _with_plan(args: argparse.Namespace, action) -> int:
    if os.geteuid() != 0:
        print("cso net: must run as root (Mininet creates namespaces and interfaces)",
              file=sys.stderr)
        return 1
    try:
        topology = load(args.topo)
        the_plan = network.plan(topology)
    except (TopologyError, network.EmulationError) as exc:
        print(f"cso net: {exc}", file=sys.stderr)
        return 1
    try:
        args.switch_controllers = switch_controllers(args, topology, the_plan)
    except network.EmulationError as exc:
        print(f"cso net: {exc}", file=sys.stderr)
        return 2
    return action(args, the_plan)


def switch_controllers(args: argparse.Namespace, topology: Topology, the_plan: network.Plan
                       ) -> Optional[dict[str, tuple[str, int]]]:
    """Switch name -> its domain's controller with ``--controllers``, else None (one for all);
    `EmulationError` when the map and the topology's domains differ."""
    if getattr(args, "controllers", None) is None:
        return None
    return controllers.assign(topology, the_plan, args.controllers)


def _cleanup(_args: argparse.Namespace, the_plan: network.Plan) -> int:
    with _exclusive_lock():
        lifecycle.cleanup(the_plan, log=_say)
    return 0


def run(args: argparse.Namespace, the_plan: network.Plan) -> int:
    """Build, connect, serve (CLI or until a signal), and always clean up."""
    from mininet.log import setLogLevel

    setLogLevel(args.log_level)
    state_path = os.path.join(args.run_dir, lifecycle.STATE_FILE)
    with _exclusive_lock():
        # Leftovers of a crashed run would make Mininet fail on "File exists".
        lifecycle.cleanup(the_plan, log=_say)
        options = AgentOptions(os.path.abspath(args.run_dir), args.agent_port,
                               args.agent_token, args.agent_timeout) if args.agents else None
        net = lifecycle.Emulation(the_plan, args.controller, options, args.switch_controllers)
        _raise_on_signals(sigint=args.no_cli)
        try:
            net.start(args.connect_timeout)
            lifecycle.write_state(args.run_dir, net.state())
            _say(f"{the_plan.topology}: {len(the_plan.switches)} switches connected to "
                 f"{net.where()}, {len(the_plan.hosts)} hosts; "
                 f"state in {state_path}")
            if net.agents is not None:
                _say(f"{len(the_plan.agents)} DC agents answer on the management network "
                     f"({network.MGMT_ROOT_IP}/{network.MGMT_PREFIX_LEN} here): " + ", ".join(
                         f"{dc} {url}" for dc, url in net.agents.urls().items()))
            _serve(net, cli=not args.no_cli)
            return 0
        except _Stop:
            return 0
        except network.EmulationError as exc:
            _say(str(exc))
            return 1
        except Exception:  # Mininet raises bare Exceptions; report them, then clean up
            traceback.print_exc()
            return 1
        finally:
            _ignore_signals()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(state_path)
            _stop_quietly(net)
            lifecycle.cleanup(the_plan, log=_say)
            _say("stopped and cleaned up")


def _serve(net: lifecycle.Emulation, cli: bool) -> None:
    if cli:
        from mininet.cli import CLI

        CLI(net.net)
        return
    while True:
        time.sleep(3600)


def _stop_quietly(net: lifecycle.Emulation) -> None:
    try:
        net.stop()
    except Exception:  # cleanup() below removes what a failed stop leaves
        traceback.print_exc()


def exec_in_host(args: argparse.Namespace) -> int:
    """Replace this process by CMD running in HOST's network namespace."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("cso net exec: no command (usage: cso net exec HOST -- CMD...)", file=sys.stderr)
        return 2
    try:
        state = lifecycle.read_state(args.run_dir)
    except network.EmulationError as exc:
        print(f"cso net exec: {exc}", file=sys.stderr)
        return 1
    host = state["hosts"].get(args.host)
    if host is None:
        print(f"cso net exec: no host {args.host!r} (hosts: {', '.join(sorted(state['hosts']))})",
              file=sys.stderr)
        return 1
    if not os.path.exists(f"/proc/{host['pid']}"):
        print(f"cso net exec: host {args.host} (pid {host['pid']}) is gone: stale state file",
              file=sys.stderr)
        return 1
    os.execvp("mnexec", ["mnexec", "-a", str(host["pid"]), *command])
    return 1  # not reached


@contextlib.contextmanager
def _exclusive_lock() -> Iterator[None]:
    """One emulation per machine: bridge and interface names are global."""
    os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
    with open(LOCK_PATH, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise SystemExit(f"cso net: another emulation is running (pid {holder}, "
                             f"lock {LOCK_PATH})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def _raise_on_signals(sigint: bool) -> None:
    """SIGTERM (and SIGINT without the CLI, whose Ctrl-C interrupts the host command) stop us."""
    def stop(_signum, _frame):
        raise _Stop()

    signal.signal(signal.SIGTERM, stop)
    if sigint:
        signal.signal(signal.SIGINT, stop)


def _ignore_signals() -> None:
    # A second Ctrl-C must not interrupt the cleanup it would otherwise skip.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _say(message: str) -> None:
    print(f"cso net: {message}", file=sys.stderr, flush=True)
