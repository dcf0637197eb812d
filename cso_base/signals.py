"""Signal handling shared by the long-running green-threaded services (``cso sc``, ``cso ac``)."""
from __future__ import annotations

import signal


def graceful_signals() -> None:
    """SIGINT and SIGTERM make the service (Ryu, the AC) close its apps; a second one kills at once.

    Python raises KeyboardInterrupt in whichever green thread runs when the signal arrives,
    and Ryu's green threads log and swallow it, so Ctrl-C would often do nothing. When the
    hub or the main green thread is running (the hub hands exceptions on to the main one),
    it is raised there; otherwise it is thrown into the main green thread, where Ryu's manager
    expects it, as soon as the running green thread yields.
    """
    import eventlet.hubs
    import greenlet

    main = greenlet.getcurrent()

    def stop(_signum: int, _frame) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        hub = eventlet.hubs.get_hub()
        if greenlet.getcurrent() in (main, hub.greenlet):
            raise KeyboardInterrupt()
        hub.schedule_call_global(0, main.throw, KeyboardInterrupt())

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
