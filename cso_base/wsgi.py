"""A small WSGI service base: Routes dispatch to handlers, JSON errors, an eventlet.wsgi server.

Shared by the DC agent and the AC (no Ryu here). Handlers are plain methods marked with
`route`; `WsgiApp.mount` collects them from a controller object, so a REST interface is a thin
class around the logic it exposes::

    class VmsApi:
        @route("/agent/v1/vms/{vm_id}", "GET")
        def get_vm(self, req, vm_id):
            return json_response(...)

    app = WsgiApp("agent")
    app.mount(VmsApi())
    server = Server(app, "0.0.0.0", 8100).start()

Every failure is answered as JSON by `cso_base.rest`: an unknown path is a 404, a known path with
another method a 405 (with ``Allow``), an `ApiError` its own status, anything else a logged 500.
A path ending in a newline (``%0A``) is a 404 before any routing: Routes' regexes end in
``$``, which also matches before a final newline, so ``/x%0A`` would be served as ``/x``
(fuzz finding 4, docs/reliability.md). That is the only difference between ``$`` and
``\\Z``, and no resource's path ends in a newline; other control characters are left to the
routes and handlers as before.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Callable, Iterable, Optional

# The notice is printed on every import and says nothing an operator can act on.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402 - after the filter
import eventlet.wsgi  # noqa: E402
import routes  # noqa: E402
from webob import Request, Response  # noqa: E402

from cso_base.rest import ApiError, handles_errors  # noqa: E402

LOG = logging.getLogger(__name__)

Handler = Callable[..., Response]
_ROUTES_ATTR = "_cso_routes"
_KEY = "_cso_path"


def has_trailing_newline(path: str) -> bool:
    """Whether a (decoded) URL path ends in a newline, which a Routes regex (``...$``) would
    match as if it were not there; no resource has such a path."""
    return path.endswith("\n")


def route(path: str, *methods: str) -> Callable[[Handler], Handler]:
    """Mark a controller method as the handler of ``methods`` on ``path`` (Routes syntax)."""
    if not methods:
        raise ValueError(f"route {path}: no method given")

    def mark(func: Handler) -> Handler:
        func.__dict__.setdefault(_ROUTES_ATTR, []).append((path, tuple(m.upper() for m in methods)))
        return func

    return mark


class WsgiApp:
    """A WSGI application that dispatches by path and method and answers every error as JSON."""

    def __init__(self, name: str = "cso"):
        self.name = name
        self.failures = 0  # handler exceptions answered as 500
        self._mapper = routes.Mapper()
        self._handlers: dict[str, dict[str, Handler]] = {}

    def add(self, path: str, method: str, handler: Handler) -> None:
        """Serve ``method`` on ``path`` with ``handler(req, **path_variables) -> Response``."""
        method = method.upper()
        methods = self._handlers.get(path)
        if methods is None:
            methods = self._handlers[path] = {}
            self._mapper.connect(path, **{_KEY: path})
        if method in methods:
            raise ValueError(f"{self.name}: {method} {path} is routed twice")
        methods[method] = handler

    def mount(self, controller: Any) -> None:
        """Add every method of ``controller`` marked with `route`."""
        for attr in sorted(dir(type(controller))):
            func = getattr(type(controller), attr)
            for path, methods in getattr(func, _ROUTES_ATTR, ()):
                for method in methods:
                    self.add(path, method, getattr(controller, attr))

    def paths(self) -> dict[str, tuple[str, ...]]:
        """Every routed path and its methods (for docs and tests)."""
        return {path: tuple(sorted(methods)) for path, methods in self._handlers.items()}

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        return self.dispatch(Request(environ))(environ, start_response)

    @handles_errors
    def dispatch(self, req: Request) -> Response:
        """The response of the handler routed for ``req``, or a JSON error."""
        match = None if has_trailing_newline(req.path_info) else \
            self._mapper.match(req.path_info)
        if match is None:
            raise ApiError(404, "not-found", f"no resource {req.path_info}")
        path = match.pop(_KEY)
        methods = self._handlers[path]
        handler = methods.get(req.method)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            raise ApiError(405, "method-not-allowed",
                           f"{req.method} is not allowed on {req.path_info} (allowed: {allowed})",
                           allowed=sorted(methods))
        return handler(req, **match)

    def on_handler_failure(self, _name: str) -> None:
        """Count handler exceptions (called by `cso_base.rest.handles_errors`)."""
        self.failures += 1


class Server:
    """An eventlet.wsgi server of one WSGI application on one address, in a green thread."""

    def __init__(self, app: Callable, host: str, port: int, name: Optional[str] = None,
                 access_log: bool = False, max_clients: int = 256,
                 socket_timeout: float = 60.0):
        self.app = app
        self.host = host
        self.port = port
        self.name = name or getattr(app, "name", "wsgi")
        self.access_log = access_log
        self.max_clients = max_clients
        self.socket_timeout = socket_timeout
        self._sock: Any = None
        self._pool: Optional[eventlet.GreenPool] = None
        self._thread: Optional[eventlet.greenthread.GreenThread] = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the listener (its real port once started on port 0)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> "Server":
        """Listen (port 0: any free port, then in ``self.port``) and serve in a green thread."""
        self._sock = eventlet.listen((self.host, self.port))
        self.port = self._sock.getsockname()[1]
        self._pool = eventlet.GreenPool(self.max_clients)
        logger = logging.getLogger(f"cso_base.wsgi.{self.name}")
        self._thread = eventlet.spawn(
            eventlet.wsgi.server, self._sock, self.app, log=logger, custom_pool=self._pool,
            log_output=self.access_log, debug=False, socket_timeout=self.socket_timeout)
        LOG.info("%s listening on %s:%d", self.name, self.host, self.port)
        return self

    def wait(self) -> None:
        """Block (cooperatively) until the server stops."""
        if self._thread is not None:
            self._thread.wait()

    def stop(self) -> None:
        """Stop accepting, drop the connections in progress and close the listener."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        # The server waits for its connections on exit: end them first.
        for client in list(self._pool.coroutines_running):
            client.kill()
        thread.kill()
        self._sock.close()
        LOG.info("%s on %s:%d stopped", self.name, self.host, self.port)
