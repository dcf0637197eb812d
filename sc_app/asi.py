"""ASI: the REST interface between Application Controllers and the SC (``/asi/v1``).

Thin Ryu WSGI controllers: authentication (a bearer token per AC), the JSON body
checked against the schemas of `cso_base.wire` and turned into the SA's typed
request, then the Service Agent; every answer is JSON, every failure a 4xx/5xx JSON
error (the SA's domain errors mapped to statuses here).
"""
from __future__ import annotations

from typing import Any, Mapping

from ryu.app.wsgi import route
from webob import Request, Response

from cso_base.rest import (ApiError, authenticate, error_response, handles_errors, json_body,
                           json_response, query_params, validate)
from cso_base.wire import (CONSTRAINT_FIELDS, ESTABLISH_SCHEMA, EVALUATE_SCHEMA,
                           INVALID_CONSTRAINT, SAME_NODE, UNKNOWN_NODE)
from sc_app.events import event_stream
from sc_app.nrae import VIEWS
from sc_app.pce import ConstraintError, Constraints
from sc_app.rest_base import JsonController, answers, max_seconds_param
from sc_app.sa import ErrorKind, EvaluateRequest, LightpathRequest, SaError

PREFIX = "/asi/v1"
ID = {"lp_id": r"[A-Za-z0-9._-]{1,64}"}

#: HTTP status of each kind of SA refusal.
KIND_STATUS = {ErrorKind.INVALID: 422, ErrorKind.NOT_FOUND: 404, ErrorKind.CONFLICT: 409,
               ErrorKind.NO_PATH: 409, ErrorKind.UNAVAILABLE: 503}
#: HTTP status of the no-path reasons that are not 409: the request is well formed but
#: the network cannot serve it now (409) or it names things that do not exist (422).
NO_PATH_STATUS = {UNKNOWN_NODE: 422, SAME_NODE: 422}


def http_error(err: SaError) -> ApiError:
    """The ASI answer to an SA refusal: its status, ``{"error": code, "reason": ...}``."""
    status = KIND_STATUS[err.kind]
    if err.kind is ErrorKind.NO_PATH:
        status = NO_PATH_STATUS.get(err.reason, status)
    return ApiError(status, err.code, err.reason, **err.details)


#: `handles_errors`, plus an SA refusal -> its HTTP error.
sa_errors = answers(SaError, lambda err: error_response(http_error(err)))


def _constraints(fields: Mapping[str, Any]) -> Constraints:
    try:
        return Constraints(**{k: fields[k] for k in CONSTRAINT_FIELDS if k in fields})
    except ConstraintError as exc:
        raise ApiError(422, INVALID_CONSTRAINT, str(exc)) from None


def lightpath_request(body: Mapping[str, Any]) -> LightpathRequest:
    """An establish body as the SA's request; ApiError 400/422 when it is not one."""
    fields = validate(body, ESTABLISH_SCHEMA)
    return LightpathRequest(
        src=fields["src"], dst=fields["dst"], src_node=fields.get("src_node"),
        dst_node=fields.get("dst_node"), service_type=fields.get("service_type", "generic"),
        label=fields.get("label"), protection=fields.get("protection", "none"),
        constraints=_constraints(fields))


def evaluate_request(body: Mapping[str, Any]) -> EvaluateRequest:
    """An evaluate body as the SA's request; ApiError 400/422 when it is not one."""
    fields = validate(body, EVALUATE_SCHEMA)
    return EvaluateRequest(src=fields["src"], dsts=tuple(fields["dsts"]),
                           constraints=_constraints(fields))


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
    @sa_errors
    def create_lightpath(self, req: Request, **_kw: Any) -> Response:
        """POST: establish a lightpath (201) or say why not."""
        owner = self._owner(req)
        lp = self.core.service.establish(owner, lightpath_request(json_body(req)))
        return json_response(lp.to_json(), 201,
                             {"Location": f"{PREFIX}/lightpaths/{lp.id}"})

    @route("asi-get", PREFIX + "/lightpaths/{lp_id}", methods=["GET"], requirements=ID)
    @sa_errors
    def get_lightpath(self, req: Request, lp_id: str, **_kw: Any) -> Response:
        """GET one of the caller's lightpaths."""
        return json_response(self.core.service.get(self._owner(req), lp_id).to_json())

    @route("asi-delete", PREFIX + "/lightpaths/{lp_id}", methods=["DELETE"], requirements=ID)
    @sa_errors
    def delete_lightpath(self, req: Request, lp_id: str, **_kw: Any) -> Response:
        """DELETE: tear a lightpath down."""
        lp = self.core.service.teardown(self._owner(req), lp_id)
        return json_response({**lp.to_json(), "state": "deleted"})

    @route("asi-evaluate", PREFIX + "/evaluate", methods=["POST"])
    @sa_errors
    def evaluate(self, req: Request, **_kw: Any) -> Response:
        """POST: evaluate one source against many destinations, reserving nothing."""
        self._owner(req)
        return json_response(self.core.service.evaluate(evaluate_request(json_body(req))))

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
        """GET: the event stream (alarms, lightpath state) for the caller."""
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
        resp.app_iter = event_stream(sub, self.core.event_keepalive, max_seconds)
        return resp
