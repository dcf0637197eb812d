"""UAI (CSO draft §7.1): the users' REST interface of the AC, under ``/uai/v1``.

A thin shell around the UA (`ac_app.ua.Ua`): each handler authenticates the bearer token
(one per user, `[ac] users`), reads the JSON body or query, calls the UA and answers JSON.
Users and provider managers use the same interface; managers see every user's requests and
accounting and may ask for VM migration (recorded as requests of type migration, with the
moved request and its old and new DC). Another user's request answers 404, as if it did not
exist. See docs/openapi-ac.yaml.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from webob import Request, Response

from ac_app.dc_agent.agent import CONTENT_PORT
from ac_app.config import User
from ac_app.db import ACTIVE, Record, iso, migration_json
from ac_app.requests import MIGRATION, VOD, Kind, RequestError
from ac_app.ua import Ua
from cso_base.rest import (ApiError, answers, authenticate, error_response, json_body,
                           json_response, query_params)
from cso_base.wsgi import WsgiApp, route

PREFIX = "/uai/v1"

#: The HTTP status that answers each kind of `RequestError`.
STATUS = {Kind.INVALID: 400, Kind.FORBIDDEN: 403, Kind.NOT_FOUND: 404, Kind.CONFLICT: 409,
          Kind.REFUSED: 409, Kind.INAPPLICABLE: 422, Kind.INTERNAL: 500, Kind.BAD_ANSWER: 502,
          Kind.UNAVAILABLE: 503}


def api_error(err: RequestError) -> ApiError:
    """The UAI's answer to ``err``: its kind's status; its code, reason, stratum and detail (when
    a stratum failed) and facts in the JSON body."""
    extra = {} if err.stratum is None else {"stratum": err.stratum, "detail": err.detail}
    return ApiError(STATUS[err.kind], err.code, err.reason, **extra, **err.facts)


#: Handler decorator: a `RequestError` is answered as its `api_error`.
answers_request_errors = answers(RequestError, lambda err: error_response(api_error(err)))


def request_json(record: Record) -> dict[str, Any]:
    """A request as UAI shows it: what was asked, where it stands, what it holds."""
    content = record.spec.get("content")
    active = record.status == ACTIVE
    body: dict[str, Any] = {
        "id": record.id, "type": record.type, "owner": record.owner, "status": record.status,
        "stage": record.stage, "src": record.src, "src_node": record.src_node,
        "strategy": record.strategy, "created": iso(record.created),
        "started": iso(record.started), "ends_at": iso(record.ends_at),
        "ended": iso(record.ended), "duration_s": record.duration_s,
        "resources": {"cpu": record.cpu, "memory_gb": record.memory_gb,
                      "disk_gb": record.disk_gb},
        "constraints": dict(record.spec.get("constraints", {})),
        "dc": record.dc, "node": record.node, "server": record.server, "vm_ip": record.vm_ip,
        "lightpath": record.lightpath, "selection": record.choice, "stratum": record.stratum,
        "reason": record.reason, "detail": record.detail, "end_reason": record.end_reason,
        "rating": record.rating, "leftovers": record.leftovers,
        "leftover_retries": leftover_json(record),
    }
    if record.type == MIGRATION:
        body["migration"] = migration_json(record)
    if record.type == VOD:
        body["content"] = content
        body["content_url"] = (f"http://{record.vm_ip}:{CONTENT_PORT}/content/{content}"
                               if active and record.vm_ip else None)
    return body


def leftover_json(record: Record) -> Optional[dict[str, Any]]:
    """Retries of a release a peer did not confirm: since, attempts, last error, alarm."""
    if record.leftover_since is None:
        return None
    return {"since": iso(record.leftover_since), "attempts": record.leftover_attempts,
            "last_error": record.leftover_error, "alarm": iso(record.leftover_alarm)}


def alarm_json(record: Record) -> dict[str, Any]:
    """A leftover alarm: the request, what it still holds, where, since when."""
    return {"type": "leftover", "request": record.id, "owner": record.owner,
            "held": record.leftovers, "dc": record.dc, "lightpath": record.lightpath_id,
            "raised": iso(record.leftover_alarm), "since": iso(record.leftover_since),
            "attempts": record.leftover_attempts, "last_error": record.leftover_error}


class UaiApi:
    """The UAI's resources: requests, accounting, and the DCs' state for managers."""

    def __init__(self, ua: Ua, users: Mapping[str, User],
                 dcs: Optional[Callable[[], Mapping[str, Any]]] = None):
        self.ua = ua
        self.users = dict(users)
        self._tokens = {name: user.token for name, user in self.users.items()}
        self._dcs = dcs

    def _user(self, req: Request) -> User:
        return self.users[authenticate(req, self._tokens)]

    @route(PREFIX + "/health", "GET")
    def health(self, req: Request) -> Response:
        """The AC answers (no token needed: for supervisors and start-up scripts)."""
        query_params(req, ())
        return json_response({"status": "ok", "strategy": self.ua.procedure.sse.name})

    @route(PREFIX + "/requests", "POST")
    @answers_request_errors
    def create(self, req: Request) -> Response:
        """Run the CSO procedure for a vod, vm or migration request."""
        user = self._user(req)
        query_params(req, ())
        record = self.ua.submit(user, json_body(req))
        return json_response(request_json(record), 201,
                             {"Location": f"{PREFIX}/requests/{record.id}"})

    @route(PREFIX + "/requests", "GET")
    @answers_request_errors
    def list(self, req: Request) -> Response:
        """The user's requests (a manager's: everyone's), oldest first."""
        user = self._user(req)
        params = query_params(req, ("status", "type", "owner"))
        records = self.ua.list(user, params.get("status"), params.get("type"),
                               params.get("owner"))
        return json_response({"requests": [request_json(record) for record in records]})

    @route(PREFIX + "/requests/{req_id}", "GET")
    @answers_request_errors
    def get(self, req: Request, req_id: str) -> Response:
        """One request: its status can be polled."""
        user = self._user(req)
        query_params(req, ())
        return json_response(request_json(self.ua.get(user, req_id)))

    @route(PREFIX + "/requests/{req_id}", "DELETE")
    @answers_request_errors
    def delete(self, req: Request, req_id: str) -> Response:
        """Release an active request: its lightpath, then its VM."""
        user = self._user(req)
        query_params(req, ())
        return json_response(request_json(self.ua.delete(user, req_id)))

    @route(PREFIX + "/accounting", "GET")
    @answers_request_errors
    def accounting(self, req: Request) -> Response:
        """Per request and per type: resources held, time, QoE rating (own; managers: all)."""
        user = self._user(req)
        params = query_params(req, ("owner",))
        return json_response(self.ua.accounting(user, params.get("owner")))

    @route(PREFIX + "/alarms", "GET")
    @answers_request_errors
    def alarms(self, req: Request) -> Response:
        """Releases retried for longer than ``leftover_alarm_after_s``, and what the orphan
        sweep released (managers only)."""
        user = self._user(req)
        query_params(req, ())
        alarms, orphans = self.ua.alarms(user)
        return json_response({"alarms": [alarm_json(r) for r in alarms], "orphans": orphans})

    @route(PREFIX + "/dcs", "GET")
    @answers_request_errors
    def dcs(self, req: Request) -> Response:
        """The ARAE's abstraction of each DC (provider managers only)."""
        user = self._user(req)
        query_params(req, ())
        self.ua.manager_only(user, "the DCs")
        return json_response({"dcs": list((self._dcs() if self._dcs else {}).values())})


def make_app(ua: Ua, users: Mapping[str, User],
             dcs: Optional[Callable[[], Mapping[str, Any]]] = None) -> WsgiApp:
    """The UAI WSGI application."""
    app = WsgiApp("uai")
    app.mount(UaiApi(ua, users, dcs))
    return app
