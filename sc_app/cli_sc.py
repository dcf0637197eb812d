"""``cso sc``: the Service Controller, i.e. Ryu's own ``ryu-manager`` with the SC's defaults.

Every ryu-manager flag passes through unchanged. On top of ryu-manager this launcher:

- restores ``eventlet.wsgi.ALREADY_HANDLED`` (gone from the eventlets that run on Python 3.11,
  still imported by ``ryu.app.wsgi``) before Ryu is imported;
- loads ``sc_app.app`` when no application is named;
- turns LLDP link discovery (``--observe-links``) on by default (``--noobserve-links``: off);
- validates the ``[sc]`` section of every ``--config-file`` before starting, and offers
  ``cso sc check-config FILE...`` to do only that;
- exits 1 when its OpenFlow or REST port is taken, instead of sharing it (SO_REUSEPORT) or
  running on without it;
- stops cleanly (apps closed, exit 0) on SIGINT or SIGTERM, which plain ryu-manager does not
  reliably do; a second signal kills at once.
"""
from __future__ import annotations

import argparse
import socket
import sys
import textwrap
import warnings
from typing import Optional, Sequence

from cso_base.config import check_config_command
from cso_base.signals import graceful_signals
from sc_app import config

DEFAULT_APPS = ("sc_app.app",)
PROG = "cso sc"


def ensure_eventlet_compat() -> None:
    """Give ``eventlet.wsgi`` the ``ALREADY_HANDLED`` marker Ryu imports, if it lacks one."""
    # The notice is printed on every start and says nothing an operator can act on.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet.wsgi

    if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
        # Only identity matters: Ryu returns it from a handler that has written the
        # response itself (websockets); any unique object does.
        eventlet.wsgi.ALREADY_HANDLED = object()


class ListenError(OSError):
    """One of Ryu's listeners (OpenFlow, REST) could not bind its address."""


def exclusive_listeners() -> None:
    """Make Ryu's listeners refuse a port already in use, and the SC stop when one does.

    ``eventlet.listen`` sets SO_REUSEPORT by default, so a second ``cso sc`` on the same ports
    would start and take half of the switch connections and REST requests. And Ryu opens its
    OpenFlow listener in a green thread that only logs a failure: the SC would go on without
    OpenFlow. So the failure is also thrown into the main green thread, where Ryu's manager
    closes its apps and `run_ryu` reports it.
    """
    import eventlet
    import eventlet.hubs
    import greenlet

    if getattr(eventlet.listen, "cso_exclusive", False):
        return
    shared_listen = eventlet.listen
    main = greenlet.getcurrent()

    def listen(addr, family=socket.AF_INET, backlog=50, reuse_addr=True, reuse_port=False):
        try:
            return shared_listen(addr, family, backlog, reuse_addr, reuse_port)
        except OSError as exc:
            error = ListenError(exc.errno, f"cannot listen on {addr}: {exc.strerror or exc}")
            if greenlet.getcurrent() is not main:
                # How eventlet's own GreenThread.kill delivers an exception to a green thread.
                eventlet.hubs.get_hub().schedule_call_global(0, main.throw, error)
            raise error from exc

    listen.cso_exclusive = True
    eventlet.listen = listen


def switches_stop_wakes_its_threads() -> None:
    """Let Ryu's topology app (``ryu.topology.switches``) stop when no switch has ports.

    Its ``stop()`` joins the LLDP thread before anything wakes it, and with no ports that
    thread waits with no timeout, so the SC would hang on exit once the network is gone.
    ``close()``, which wakes it, only runs after ``stop()``; do its waking first.
    """
    from ryu.topology import switches

    if getattr(switches.Switches.stop, "cso_wakes", False):
        return
    ryu_stop = switches.Switches.stop

    def stop(self) -> None:
        self.is_active = False
        self.lldp_event.set()
        self.link_event.set()
        ryu_stop(self)

    stop.cso_wakes = True
    switches.Switches.stop = stop


def config_files(argv: Sequence[str]) -> list[str]:
    """The ``--config-file`` values of a ryu-manager command line, in order."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--config-file", action="append", default=[])
    known, _rest = parser.parse_known_args(list(argv))
    return known.config_file


def names_app_list(argv: Sequence[str]) -> bool:
    """True when ``--app-lists`` is given (positional app names are left to oslo.config)."""
    return any(arg.split("=", 1)[0] in ("--app-lists", "--app_lists") for arg in argv)


def check_config(argv: Sequence[str]) -> int:
    """``cso sc check-config FILE...``: validate offline; 0 when valid, 1 otherwise."""
    return check_config_command(argv, PROG, "SC",
                                "oslo.config files, later ones overriding earlier ones",
                                config.check_files, _summary)


def _summary(settings: config.Settings) -> str:
    topology = settings.topology
    return (f"topology {topology.name}: {len(topology.nodes)} nodes, {len(topology.links)} "
            f"links; {len(settings.ac_tokens)} AC token(s); REST port {settings.rest_port}, "
            f"OpenFlow port {settings.ofp_port}")


def run_ryu(argv: Sequence[str]) -> int:
    """Run ryu-manager's main with the SC's defaults; returns when Ryu stops."""
    ensure_eventlet_compat()
    exclusive_listeners()
    # Importing the manager registers Ryu's options (and monkey-patches via ryu.lib.hub).
    from ryu import cfg
    from ryu.cmd import manager

    config.register_opts(cfg.CONF)
    switches_stop_wakes_its_threads()
    cfg.CONF.set_default("observe_links", True)
    if not names_app_list(argv):
        # A default, not an argument: positional app names given by the user replace it.
        cfg.CONF.set_default("app", list(DEFAULT_APPS))
    graceful_signals()
    try:
        manager.main(args=list(argv), prog=PROG)
    except ListenError as exc:
        print(f"{PROG}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def config_aliases(argv: Sequence[str]) -> list[str]:
    """``--config FILE`` (the flag ``cso ac`` takes) as ryu-manager's ``--config-file FILE``."""
    args = []
    for arg in argv:
        if arg == "--config":
            arg = "--config-file"
        elif arg.startswith("--config="):
            arg = "--config-file=" + arg.split("=", 1)[1]
        args.append(arg)
    return args


def help_text() -> str:
    """``cso sc --help``: the SC's own usage and options; Ryu's flags are behind --help-ryu."""
    lines = [f"usage: {PROG} [--config-file FILE]... [RYU-MANAGER FLAGS] [APP...]",
             f"       {PROG} check-config FILE...", "",
             "Run the Service Controller: Ryu's ryu-manager loading sc_app.app (or APPs named).",
             "", "options:",
             "  --config-file FILE, --config FILE",
             "                        an INI file (repeatable; later ones override)",
             "  --help-ryu            every ryu-manager flag (all of them work here)",
             "  -h, --help            this help", ""]
    for section, fields in ((config.SECTION, config.SC_FIELDS), ("DEFAULT", config.RYU_FIELDS)):
        lines.append(f"[{section}] options of the config file (default in brackets):")
        for field in fields:
            default = field.default if field.default not in ("", [], None) else "none"
            lines.append(textwrap.fill(f"{field.help} [{default}]", width=100,
                                       initial_indent=f"  {field.name:<22}",
                                       subsequent_indent=" " * 24))
        lines.append("")
    lines.append("exit codes: 0 stopped cleanly, 1 invalid configuration or a port taken, 2 usage")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cso sc``."""
    args = config_aliases(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["check-config"]:
        return check_config(args[1:])
    if "--help-ryu" in args:
        return run_ryu([arg if arg != "--help-ryu" else "--help" for arg in args])
    if {"-h", "--help"} & set(args):
        print(help_text())
        return 0
    if "--version" not in args:
        try:
            config.check_files(config_files(args))
        except config.ConfigError as exc:
            print(f"{PROG}: invalid configuration, not starting:", file=sys.stderr)
            for error in exc.errors:
                print(f"  {error}", file=sys.stderr)
            return 1
    return run_ryu(args)
