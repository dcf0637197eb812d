"""ALTO over HTTP (``/alto``): thin Ryu WSGI controllers around `sc_app.alto.AltoServer`.

Each route authenticates (``[sc] alto_auth``: ``ac-tokens``, the default, asks for an AC's
ASI bearer token; ``none`` leaves ALTO open, since its maps are read-only), checks that the
``Accept`` header allows the resource's media type (406 otherwise) and that a POST body is
sent as the resource's ``accepts`` type or ``application/json`` (415 otherwise), then answers
with the exact media type in ``Content-Type``. Request errors are RFC 7285 error resources
(``application/alto-error+json``, 400); failures outside ALTO's error codes (401, 404, 405,
406, 413, 415, 500) are the project's JSON errors. Unknown JSON fields are ignored.
"""
from __future__ import annotations

from typing import Any

from ryu.app.wsgi import route
from webob import Request, Response

from cso_base.rest import ApiError, authenticate, json_body, json_response
from cso_base.wire import (DIRECTORY, E_SYNTAX, ERROR, EVENT_STREAM, UPDATE_STREAM_PARAMS)
from sc_app.alto import (COST_TYPES, NETWORK_MAP_ID, PREFIX, AltoError, AltoServer)
from sc_app.alto_updates import UpdateStreams
from sc_app.rest_base import JsonController, answers, max_seconds_param

AUTH_MODES = ("ac-tokens", "none")
#: Principal of every request when ALTO is open.
ANONYMOUS = "anonymous"
COST_MAP = {"map_id": "(?:" + "|".join(ct.name for ct in COST_TYPES) + ")"}
STREAM = {"stream_id": r"[A-Za-z0-9_-]{1,64}"}
STREAMS = PREFIX + "/updates/streams/"


def alto_data(core: Any, auth: str = "ac-tokens") -> dict[str, Any]:
    """What `AltoController` needs in the data it is registered with."""
    if auth not in AUTH_MODES:
        raise ValueError(f"alto_auth must be one of {AUTH_MODES}, not {auth!r}")
    server = AltoServer(core.pce)
    return {"alto": server, "alto_streams": UpdateStreams(server), "alto_auth": auth}


#: `handles_errors`, plus AltoError -> its RFC 7285 error resource.
alto_errors = answers(AltoError,
                      lambda err: json_response(err.body(), err.status, content_type=ERROR))


def check_accept(req: Request, media_type: str) -> None:
    """406 unless the Accept header (if any) allows ``media_type``."""
    if not req.accept.acceptable_offers([media_type]):
        raise ApiError(406, "not-acceptable",
                       f"this resource is {media_type}, which the Accept header excludes")


def alto_body(req: Request, accepts: str) -> dict[str, Any]:
    """A POST body of media type ``accepts``: bad JSON is E_SYNTAX, other types 415."""
    ctype = (req.content_type or "").lower()
    if ctype and ctype not in (accepts, "application/json"):
        raise ApiError(415, "unsupported-media-type", f"Content-Type must be {accepts}")
    try:
        return json_body(req)
    except ApiError as err:
        if err.status != 400:
            raise
        raise AltoError(E_SYNTAX, syntax_error=err.reason) from None


class AltoController(JsonController):
    """ALTO information resources, update streams and their control."""

    def __init__(self, req: Request, link: Any, data: dict[str, Any], **config: Any):
        super().__init__(req, link, data, **config)
        self.core = data["core"]
        self.alto: AltoServer = data["alto"]
        self.streams: UpdateStreams = data["alto_streams"]
        self.auth: str = data["alto_auth"]

    def on_handler_failure(self, name: str) -> None:
        """Count unexpected failures."""
        self.core.on_handler_failure(name)

    def _principal(self, req: Request) -> str:
        if self.auth == "none":
            return ANONYMOUS
        return authenticate(req, self.core.ac_tokens)

    def _serve(self, req: Request, resource_id: str) -> Response:
        self._principal(req)
        resource = self.alto.resources[resource_id]
        check_accept(req, resource.media_type)
        params = None if resource.accepts is None else alto_body(req, resource.accepts)
        media_type, body = self.alto.render(resource_id, params, req.remote_addr)
        return json_response(body, content_type=media_type)

    @route("alto-directory", PREFIX + "/directory", methods=["GET"])
    @alto_errors
    def directory(self, req: Request, **_kw: Any) -> Response:
        """GET the Information Resource Directory."""
        self._principal(req)
        check_accept(req, DIRECTORY)
        return json_response(self.alto.directory(), content_type=DIRECTORY)

    @route("alto-networkmap", PREFIX + "/networkmap", methods=["GET"])
    @alto_errors
    def network_map(self, req: Request, **_kw: Any) -> Response:
        """GET the network map."""
        return self._serve(req, NETWORK_MAP_ID)

    @route("alto-networkmap-filtered", PREFIX + "/networkmap/filtered", methods=["POST"])
    @alto_errors
    def filtered_network_map(self, req: Request, **_kw: Any) -> Response:
        """POST: the network map restricted to some PIDs and address types."""
        return self._serve(req, "networkmap-filtered")

    @route("alto-costmap", PREFIX + "/costmap/{map_id}", methods=["GET"], requirements=COST_MAP)
    @alto_errors
    def cost_map(self, req: Request, map_id: str, **_kw: Any) -> Response:
        """GET a full cost map of one cost type."""
        return self._serve(req, f"costmap-{map_id}")

    @route("alto-costmap-filtered", PREFIX + "/costmap/filtered", methods=["POST"])
    @alto_errors
    def filtered_cost_map(self, req: Request, **_kw: Any) -> Response:
        """POST: costs between some PIDs, of one or more cost types, under constraints."""
        return self._serve(req, "costmap-filtered")

    @route("alto-endpointcost", PREFIX + "/endpointcost", methods=["POST"])
    @alto_errors
    def endpoint_cost(self, req: Request, **_kw: Any) -> Response:
        """POST: costs between endpoint addresses."""
        return self._serve(req, "endpointcost")

    @route("alto-endpointprop", PREFIX + "/endpointprop", methods=["POST"])
    @alto_errors
    def endpoint_properties(self, req: Request, **_kw: Any) -> Response:
        """POST: the PID of endpoint addresses."""
        return self._serve(req, "endpointprop")

    @route("alto-propmap", PREFIX + "/propmap", methods=["GET"])
    @alto_errors
    def property_map(self, req: Request, **_kw: Any) -> Response:
        """GET the property map of every PID and prefix."""
        return self._serve(req, "propmap")

    @route("alto-propmap-filtered", PREFIX + "/propmap/filtered", methods=["POST"])
    @alto_errors
    def filtered_property_map(self, req: Request, **_kw: Any) -> Response:
        """POST: some properties of some entities."""
        return self._serve(req, "propmap-filtered")

    @route("alto-updates", PREFIX + "/updates", methods=["POST"])
    @alto_errors
    def updates(self, req: Request, **_kw: Any) -> Response:
        """POST an update stream request: the answer is the stream (text/event-stream)."""
        owner = self._principal(req)
        check_accept(req, EVENT_STREAM)
        max_seconds = max_seconds_param(req)
        body = alto_body(req, UPDATE_STREAM_PARAMS)
        stream = self.streams.open(owner, body, req.remote_addr, req.host_url + STREAMS)
        resp = Response(status=200)
        resp.headers["Content-Type"] = EVENT_STREAM
        resp.headers["Cache-Control"] = "no-cache"
        resp.app_iter = stream.events(self.core.event_keepalive, max_seconds)
        return resp

    @route("alto-update-control", STREAMS + "{stream_id}", methods=["POST"],
           requirements=STREAM)
    @alto_errors
    def control(self, req: Request, stream_id: str, **_kw: Any) -> Response:
        """POST a stream control request (add/remove substreams): 204."""
        owner = self._principal(req)
        stream = self.streams.get(stream_id, owner)
        if stream is None:
            raise ApiError(404, "not-found", f"no open update stream {stream_id} of yours")
        stream.control(alto_body(req, UPDATE_STREAM_PARAMS))
        return Response(status=204)
