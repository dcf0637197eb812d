"""``cso ac``: the Application Controller, a plain WSGI service (no Ryu).

    cso ac --config F [--config F2 ...] [--log-level L]
    cso ac check-config F [F2 ...]

Validates the ``[ac]`` section (later files override earlier ones), monkey-patches the process
for eventlet (so the HTTP clients of the SC and the agents are green: a slow peer never holds
up the other requests), settles what a previous run left, starts the ARAE's polling and the
housekeeping (expiry), and serves UAI on ``listen_host:listen_port`` until SIGINT/SIGTERM.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings
from typing import TYPE_CHECKING, Optional, Sequence

if TYPE_CHECKING:  # imported late at run time: after eventlet's monkey-patching
    from ac_app.config import AcSettings

PROG = "cso ac"


def _settings(paths: Sequence[str]) -> "AcSettings":
    from ac_app import config

    return config.check_files(paths)


def check_config(argv: Sequence[str]) -> int:
    """``cso ac check-config FILE...``: validate offline; 0 when valid, 1 otherwise."""
    from cso_base.config import check_config_command

    return check_config_command(argv, PROG, "AC", "INI files with an [ac] section, later ones "
                                "overriding earlier ones", _settings, _summary)


def _summary(settings: "AcSettings") -> str:
    managers = sum(1 for user in settings.users.values() if user.manager)
    return (f"topology {settings.topology.name}; {len(settings.users)} user(s), {managers} "
            f"manager(s); {len(settings.agents)} agent(s); strategy {settings.strategy}; SC "
            f"{settings.sc_url}; UAI on {settings.listen_host}:{settings.listen_port}")


def serve(argv: Sequence[str]) -> int:
    """``cso ac --config F``: run the AC until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog=PROG, description="Run the Application Controller.")
    parser.add_argument("--config", "--config-file", dest="config", action="append",
                        required=True, metavar="FILE",
                        help="INI file with an [ac] section (repeatable; later ones override)")
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error"))
    args = parser.parse_args(list(argv))
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The notice is printed on every start and says nothing an operator can act on.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    # Before anything opens a socket: urllib (the SC's client), sleeps and locks turn green.
    eventlet.monkey_patch()

    from ac_app.service import AcService
    from cso_base.config import ConfigError
    from cso_base.wsgi import Server
    # Plain (no Ryu): delivers SIGINT/SIGTERM to the main green thread whichever one runs.
    from cso_base.signals import graceful_signals

    log = logging.getLogger("cso.ac")
    try:
        settings = _settings(args.config)
    except ConfigError as exc:
        print(f"{PROG}: invalid configuration, not starting:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    service = AcService(settings)
    try:
        server = Server(service.app, settings.listen_host, settings.listen_port, name="uai",
                        access_log=True).start()
    except OSError as exc:
        print(f"{PROG}: cannot listen on {settings.listen_host}:{settings.listen_port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        service.close()
        return 1
    service.start()
    log.info("AC on %s:%d: strategy %r, %d agent(s), SC %s", settings.listen_host, server.port,
             service.sse.strategy, len(settings.agents), settings.sc_url)
    graceful_signals()
    try:
        server.wait()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.stop()
        service.close()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``cso ac``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["check-config"]:
        return check_config(args[1:])
    return serve(args)
