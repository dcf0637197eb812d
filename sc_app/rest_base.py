"""The base of the SC's Ryu WSGI controllers: a path ending in a newline is refused.

Ryu routes with the Routes mapper, whose regexes end in ``$``; ``$`` also matches before a
final newline, so ``GET /asi/v1/lightpaths%0A`` would be served as ``/asi/v1/lightpaths``
(fuzz finding 4, docs/reliability.md). No resource of the SC has a path ending in a
newline: such a request gets a JSON 404 before any handler runs (what ``\\Z`` in the route
regexes would give: no route, so the catch-all's 404).
"""
from __future__ import annotations

from typing import Any

from ryu.app.wsgi import ControllerBase
from webob import Request, Response

from cso_base.rest import ApiError, handles_errors
from cso_base.wsgi import has_trailing_newline


class JsonController(ControllerBase):
    """A Ryu controller that answers a path ending in a newline with a JSON 404."""

    def __call__(self, req: Request) -> Response:
        if has_trailing_newline(req.path_info):
            return self._no_such_path(req)
        return super().__call__(req)

    @handles_errors
    def _no_such_path(self, req: Request, **_kw: Any) -> Response:
        raise ApiError(404, "not-found", f"no resource at {req.path}")
