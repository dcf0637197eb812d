"""SMI: the management interface for operators (``/smi/v1``) and ``/metrics``.

State (switches, links with wavelength occupancy, lightpaths, alarms) and
OAM commands (link admin down/up, TE weight, switch resync). Operator tokens
come from ``[sc] smi_tokens``; an empty list leaves SMI open (a lab default,
said so in the log at start).
"""
from __future__ import annotations

from typing import Any

from ryu.app.wsgi import route
from webob import Request, Response

from sc_app.rest_base import JsonController
from sc_app.ted import TedError
from cso_base.rest import (ApiError, Field, authenticate, handles_errors, json_body, json_response,
                           query_params, validate)

PREFIX = "/smi/v1"
LINK = {"link_id": r"[A-Za-z0-9._:-]{1,64}"}
DPID = {"dpid": r"[0-9]{1,20}"}


class SmiController(JsonController):
    """Operator state and OAM commands."""

    def __init__(self, req: Request, link: Any, data: dict[str, Any], **config: Any):
        super().__init__(req, link, data, **config)
        self.core = data["core"]
        self.tokens = data.get("smi_tokens") or {}

    def on_handler_failure(self, name: str) -> None:
        """Count unexpected failures."""
        self.core.on_handler_failure(name)

    def _auth(self, req: Request) -> None:
        if self.tokens:
            authenticate(req, self.tokens)

    def _link_index(self, link_id: str) -> int:
        try:
            return self.core.ted.index(link_id)
        except Exception:
            raise ApiError(404, "not-found", f"no link {link_id}") from None

    @route("smi-switches", PREFIX + "/switches", methods=["GET"])
    @handles_errors
    def switches(self, req: Request, **_kw: Any) -> Response:
        """GET the switches and whether they are connected."""
        self._auth(req)
        return json_response({"switches": self.core.pa.snapshot()})

    @route("smi-links", PREFIX + "/links", methods=["GET"])
    @handles_errors
    def links(self, req: Request, **_kw: Any) -> Response:
        """GET every fibre with its state and wavelength occupancy."""
        self._auth(req)
        ted = self.core.ted
        return json_response({"links": [
            {**ted.link_snapshot(i), "used": list(ted.used(link_id)),
             "discovered": link_id in self.core.pa.discovered}
            for i, link_id in enumerate(ted.link_ids)]})

    @route("smi-link", PREFIX + "/links/{link_id}", methods=["GET"], requirements=LINK)
    @handles_errors
    def get_link(self, req: Request, link_id: str, **_kw: Any) -> Response:
        """GET one fibre."""
        self._auth(req)
        i = self._link_index(link_id)
        return json_response(self.core.ted.link_snapshot(i))

    @route("smi-link-admin", PREFIX + "/links/{link_id}/admin", methods=["PUT"],
           requirements=LINK)
    @handles_errors
    def link_admin(self, req: Request, link_id: str, **_kw: Any) -> Response:
        """PUT {"state": "up"|"down"}: administrative state of a fibre."""
        self._auth(req)
        i = self._link_index(link_id)
        body = validate(json_body(req), {"state": Field("str", required=True,
                                                        choices=("up", "down"))})
        self.core.set_link_admin(self.core.ted.link_ids[i], body["state"] == "up")
        return json_response(self.core.ted.link_snapshot(i))

    @route("smi-link-te", PREFIX + "/links/{link_id}/te-weight", methods=["PUT"],
           requirements=LINK)
    @handles_errors
    def link_te(self, req: Request, link_id: str, **_kw: Any) -> Response:
        """PUT {"te_weight": w}: base TE weight of a fibre (null: back to the default)."""
        self._auth(req)
        i = self._link_index(link_id)
        raw = json_body(req)
        body = validate(raw, {"te_weight": Field("number", minimum=0, maximum=1e9)})
        if "te_weight" not in raw:
            raise ApiError(400, "missing-field", "te_weight is required", field="te_weight")
        try:
            self.core.ted.set_te_weight(self.core.ted.link_ids[i], body.get("te_weight"))
        except TedError as exc:
            raise ApiError(400, "invalid-field", str(exc), field="te_weight") from None
        return json_response(self.core.ted.link_snapshot(i))

    @route("smi-resync", PREFIX + "/switches/{dpid}/resync", methods=["POST"], requirements=DPID)
    @handles_errors
    def resync(self, req: Request, dpid: str, **_kw: Any) -> Response:
        """POST: re-send a switch its base and lightpath entries."""
        self._auth(req)
        number = int(dpid)
        if number not in self.core.pa.nodes_by_dpid:
            raise ApiError(404, "not-found", f"no switch with dpid {dpid}")
        if number not in self.core.pa.connected:
            raise ApiError(409, "switch-unreachable", f"switch {dpid} is not connected")
        sent = self.core.resync(number)
        return json_response({"dpid": number, "messages": sent})

    @route("smi-lightpaths", PREFIX + "/lightpaths", methods=["GET"])
    @handles_errors
    def lightpaths(self, req: Request, **_kw: Any) -> Response:
        """GET every lightpath of every AC."""
        self._auth(req)
        return json_response({"lightpaths": [lp.to_json() for lp in self.core.service.list()]})

    @route("smi-alarms", PREFIX + "/alarms", methods=["GET"])
    @handles_errors
    def alarms(self, req: Request, **_kw: Any) -> Response:
        """GET alarms: ?state=active (default)|all."""
        self._auth(req)
        state = query_params(req, ("state",)).get("state", "active")
        if state not in ("active", "all"):
            raise ApiError(400, "invalid-parameter", "state must be active or all", field="state")
        alarms = self.core.db.list_alarms(active=True if state == "active" else None)
        return json_response({"alarms": [a.to_json() for a in alarms]})

    @route("metrics", "/metrics", methods=["GET"])
    @handles_errors
    def metrics(self, req: Request, **_kw: Any) -> Response:
        """GET Prometheus metrics."""
        resp = Response(body=self.core.metrics.render())
        resp.headers["Content-Type"] = self.core.metrics.content_type
        return resp


class NotFoundController(JsonController):
    """Registered last: any other path or method gets a JSON 404/405, not an HTML page."""

    # [\s\S]: '.' would not match a newline inside the path, leaving it to WebOb's HTML 404.
    @route("not-found", r"/{path:[\s\S]*}")
    @handles_errors
    def not_found(self, req: Request, **_kw: Any) -> Response:
        """Answer unknown paths and methods."""
        mapper = self.parent.mapper if getattr(self, "parent", None) else None
        if mapper is not None:
            for method in ("GET", "POST", "PUT", "DELETE"):
                if method == req.method:
                    continue
                environ = dict(req.environ, REQUEST_METHOD=method)
                match = mapper.match(environ=environ)
                if match and match.get("action") != "not_found":
                    raise ApiError(405, "method-not-allowed",
                                   f"{req.method} is not allowed on {req.path}")
        raise ApiError(404, "not-found", f"no resource at {req.path}")
