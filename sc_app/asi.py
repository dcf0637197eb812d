"""ASI: the REST interface between Application Controllers and the SC (``/asi/v1``).

Thin Ryu WSGI controllers: authentication (a bearer token per AC), then the
Service Agent; every answer is JSON, every failure a 4xx/5xx JSON error.
"""
from __future__ import annotations

from typing import Any

from ryu.app.wsgi import route
from webob import Request, Response

from cso_base.rest import (ApiError, authenticate, handles_errors, json_body, json_response,
                           query_params)
from sc_app.events import max_seconds_param, sse_stream
from sc_app.nrae import VIEWS
from sc_app.rest_base import JsonController

PREFIX = "/asi/v1"
ID = {"lp_id": r"[A-Za-z0-9._-]{1,64}"}


class AsiController(JsonController):
    """Lightpaths, candidate evaluation, abstract topology and events for an AC."""

    def __init__(self, req: Request, link: Any, data: dict[str, Any], **config: Any):
        super().__init__(req, link, data, **config)
        self.core = data["core"]

    def on_handler_failure(self, name: str) -> None:
        """Count unexpected failures."""
        self.core.on_handler_failure(name)

    def _owner(self, req: Request) -> str:
        return authenticate(req, self.core.ac_tokens)

    @route("asi-list", PREFIX + "/lightpaths", methods=["GET"])
    @handles_errors
    def list_lightpaths(self, req: Request, **_kw: Any) -> Response:
        """GET: the caller's lightpaths."""
        owner = self._owner(req)
        query_params(req, ())
        return json_response({"lightpaths": [lp.to_json()
                                             for lp in self.core.service.list(owner)]})

    @route("asi-create", PREFIX + "/lightpaths", methods=["POST"])
    @handles_errors
    def create_lightpath(self, req: Request, **_kw: Any) -> Response:
        """POST: establish a lightpath (201) or say why not."""
        owner = self._owner(req)
        lp = self.core.service.establish(owner, json_body(req))
        return json_response(lp.to_json(), 201,
                             {"Location": f"{PREFIX}/lightpaths/{lp.id}"})

    @route("asi-get", PREFIX + "/lightpaths/{lp_id}", methods=["GET"], requirements=ID)
    @handles_errors
    def get_lightpath(self, req: Request, lp_id: str, **_kw: Any) -> Response:
        """GET one of the caller's lightpaths."""
        return json_response(self.core.service.get(self._owner(req), lp_id).to_json())

    @route("asi-delete", PREFIX + "/lightpaths/{lp_id}", methods=["DELETE"], requirements=ID)
    @handles_errors
    def delete_lightpath(self, req: Request, lp_id: str, **_kw: Any) -> Response:
        """DELETE: tear a lightpath down."""
        lp = self.core.service.teardown(self._owner(req), lp_id)
        return json_response({**lp.to_json(), "state": "deleted"})

    @route("asi-evaluate", PREFIX + "/evaluate", methods=["POST"])
    @handles_errors
    def evaluate(self, req: Request, **_kw: Any) -> Response:
        """POST: evaluate one source against many destinations, reserving nothing."""
        self._owner(req)
        return json_response(self.core.service.evaluate(json_body(req)))

    @route("asi-topology", PREFIX + "/topology", methods=["GET"])
    @handles_errors
    def topology(self, req: Request, **_kw: Any) -> Response:
        """GET an abstract topology: ?view=full|virtual-node|dc-mesh."""
        self._owner(req)
        view = query_params(req, ("view",)).get("view", "full")
        if view not in VIEWS:
            raise ApiError(400, "invalid-parameter", f"view must be one of {', '.join(VIEWS)}",
                           field="view")
        return json_response(self.core.view(view))

    @route("asi-events", PREFIX + "/events", methods=["GET"])
    @handles_errors
    def events(self, req: Request, **_kw: Any) -> Response:
        """GET: Server-Sent Events (alarms, lightpath state) for the caller."""
        owner = self._owner(req)
        query_params(req, ("max_seconds",))
        max_seconds = max_seconds_param(req)
        last = req.headers.get("Last-Event-ID")
        try:
            last_id = int(last) if last is not None else None
        except ValueError:
            raise ApiError(400, "invalid-parameter", "Last-Event-ID must be an integer") from None
        sub = self.core.bus.subscribe(owner, last_id)
        resp = Response(status=200)
        resp.headers["Content-Type"] = "text/event-stream"
        resp.headers["Cache-Control"] = "no-cache"
        resp.app_iter = sse_stream(sub, self.core.event_keepalive, max_seconds)
        return resp
