"""The base of the SC's Ryu WSGI controllers: a path ending in a newline is refused.

Ryu routes with the Routes mapper, whose regexes end in ``$``; ``$`` also matches before a
final newline, so ``GET /asi/v1/lightpaths%0A`` would be served as ``/asi/v1/lightpaths``
(fuzz finding 4, docs/reliability.md). No resource of the SC has a path ending in a
newline: such a request gets a JSON 404 before any handler runs (what ``\\Z`` in the route
regexes would give: no route, so the catch-all's 404).

Also what the shells share: `answers`, the decorator that turns a domain error into its
HTTP answer, and the query parameter of the event streams (``max_seconds``).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

from ryu.app.wsgi import ControllerBase
from webob import Request, Response

from cso_base import rest
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


def answers(error: type[Exception], answer: Callable[[Any], Response]
            ) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Decorator for handlers: `handles_errors`, plus ``error`` -> ``answer(err)``.

    `cso_base.rest.answers` inside `handles_errors`: Ryu has no dispatcher that answers the
    other errors as JSON.
    """
    answer_error = rest.answers(error, answer)

    def decorate(func: Callable[..., Response]) -> Callable[..., Response]:
        return handles_errors(answer_error(func))

    return decorate


def max_seconds_param(req: Any) -> Optional[float]:
    """``?max_seconds=S`` of a stream request: close it after S seconds (tests, polling clients).

    Raises `cso_base.rest.ApiError` 400 unless S is a finite number >= 0.
    """
    raw = req.GET.get("max_seconds")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ApiError(400, "invalid-parameter", "max_seconds must be a number >= 0",
                       field="max_seconds")
    return value
