"""``cso agent``: the DC agent, run inside a DC host.

    cso agent --dc ID --topo NAME|FILE --data-if IFACE --state-dir DIR
              [--listen HOST:PORT] [--content-listen HOST:PORT] [--token T]

Serves the management API (`ac_app.dc_agent.api.AgentApi`) on ``--listen`` (the management
interface) and the ``vod`` content service on ``--content-listen`` (all addresses, so users
reach it over their lightpath at the DC's or a VM's address). Stored VMs get their aliases
back at start. Runs until SIGINT/SIGTERM.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Optional, Sequence

from ac_app.dc_agent.agent import (AGENT_PORT, CONTENT_PORT, DB_FILE, Agent, AliasError, IpAliases,
                                   VmStore)
from ac_app.dc_agent.api import content_app, management_app
from topologies.addressing import AddressError
from cso_base.wsgi import Server
from topologies.loader import TopologyError, load
from topologies.model import DataCentre, Topology

LOG = logging.getLogger("cso.agent")
TOKEN_ENV = "CSO_AGENT_TOKEN"


def listen_address(default_port: int):
    """An argparse type: ``HOST:PORT``, ``HOST`` or ``:PORT`` -> (host, port)."""
    def parse(text: str) -> tuple[str, int]:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = text, str(default_port)
        host = host or "0.0.0.0"
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
        return host, int(port)
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cso agent",
                                     description="Run the agent of one DC (inside its host).")
    parser.add_argument("--dc", required=True, help="DC id (e.g. dc7) or the id of its node")
    parser.add_argument("--topo", default="nsfnet", help="topology name or file (nsfnet)")
    parser.add_argument("--listen", type=listen_address(AGENT_PORT),
                        default=("0.0.0.0", AGENT_PORT),
                        help=f"management API address (0.0.0.0:{AGENT_PORT})")
    parser.add_argument("--content-listen", type=listen_address(CONTENT_PORT),
                        default=("0.0.0.0", CONTENT_PORT),
                        help=f"content service address (0.0.0.0:{CONTENT_PORT})")
    parser.add_argument("--data-if", required=True,
                        help="the data interface VM aliases go on (e.g. dc7-eth0)")
    parser.add_argument("--state-dir", required=True, help=f"where {DB_FILE} is kept")
    parser.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                        help=f"bearer token the management API requires (${TOKEN_ENV}; "
                        "none: open)")
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error"))
    return parser


def find_dc(topology: Topology, wanted: str) -> DataCentre:
    """The DC with id ``wanted``, or the DC of node ``wanted``; LookupError otherwise."""
    for node in topology.nodes.values():
        if node.dc is not None and wanted in (node.dc.id, node.id):
            return node.dc
    known = sorted(node.dc.id for node in topology.nodes.values() if node.dc is not None)
    raise LookupError(f"{topology.name} has no DC {wanted!r} (DCs: {', '.join(known)})")


class _Stop(BaseException):
    """SIGINT/SIGTERM."""


def _raise_stop(_signum: int, _frame: object) -> None:
    raise _Stop()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cso agent``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        topology = load(args.topo)
        dc = find_dc(topology, args.dc)
        data_ip = topology.addresses.dc_ip(dc.node)
    except (TopologyError, AddressError, LookupError) as exc:
        print(f"cso agent: {exc}", file=sys.stderr)
        return 1
    store = VmStore(os.path.join(args.state_dir, DB_FILE))
    agent = Agent(dc, data_ip, IpAliases(args.data_if), store)
    servers: list[Server] = []
    try:
        restored = agent.restore()
        servers.append(Server(management_app(agent, args.token), *args.listen, name="agent",
                              access_log=True).start())
        servers.append(Server(content_app(agent), *args.content_listen, name="content").start())
    except (AliasError, OSError) as exc:
        print(f"cso agent: {exc}", file=sys.stderr)
        _stop(servers, store)
        return 1
    LOG.info("agent of %s (node %s, %d servers, %d VMs restored, data %s on %s) on %s:%d, "
             "content on %s:%d, %s", dc.id, dc.node, len(dc.servers), len(restored), data_ip,
             args.data_if, *args.listen, *args.content_listen,
             "token required" if args.token else "no token")
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        servers[0].wait()
    except _Stop:
        LOG.info("stopping")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop(servers, store)
    return 0


def _stop(servers: list[Server], store: VmStore) -> None:
    for server in servers:
        server.stop()
    store.close()
