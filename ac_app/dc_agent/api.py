"""The DC agent's REST shells: management API (``/agent/v1``) and the ``vod`` content service.

Thin: each handler validates with `cso_base.rest`, calls `ac_app.dc_agent.agent.Agent` and
answers JSON.
An `AgentError` becomes a 4xx (or, for a failed ``ip`` command or database, a 500) with its
code and reason; see docs/agent.md for the API.
"""
from __future__ import annotations

import re
from typing import Optional

from webob import Request, Response

from ac_app.dc_agent.agent import Agent, AgentError, check_content_request, content_chunks
from ac_app.resources import Demand
from cso_base.rest import (ApiError, Field, answers, authenticate, error_response, json_body,
                           json_response, query_params, validate)
from cso_base.wsgi import WsgiApp, route

#: AgentError code -> HTTP status.
STATUS = {
    "unknown-vm": 404,
    "vm-exists": 409,
    "unknown-server": 422,
    "server-full": 409,
    "no-capacity": 409,
    "bad-address": 422,
    "address-in-use": 409,
    "no-address": 409,
    "bad-content": 400,
    "alias-failed": 500,
    "store-failed": 500,
}

#: VM ids appear in URLs: keep them to characters that need no quoting.
VM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

VM_SCHEMA = {
    "id": Field("str", required=True, max_length=64),
    "cpu": Field("number", required=True, minimum=0, maximum=1e6),
    "memory_gb": Field("number", required=True, minimum=0, maximum=1e9),
    "disk_gb": Field("number", minimum=0, maximum=1e12),
    "server": Field("str", max_length=128),
    "ip": Field("str", max_length=15),
}


def api_error(exc: AgentError) -> ApiError:
    """The REST error of an agent refusal."""
    return ApiError(STATUS.get(exc.code, 500), exc.code, exc.reason)


#: Handler decorator: an `AgentError` is answered as its `api_error`.
answers_agent_errors = answers(AgentError, lambda exc: error_response(api_error(exc)))


class AgentApi:
    """Management REST API of one DC agent: state, servers, VM allocate/release."""

    def __init__(self, agent: Agent, token: Optional[str] = None):
        self.agent = agent
        self._tokens = {"ac": token} if token else None

    def _auth(self, req: Request) -> None:
        if self._tokens is not None:
            authenticate(req, self._tokens)

    @route("/agent/v1/health", "GET")
    def health(self, req: Request) -> Response:
        """The agent answers: its DC and how many VMs it runs."""
        self._auth(req)
        query_params(req, ())
        return json_response({"status": "ok", "dc": self.agent.dc.id,
                              "vms": len(self.agent.vms())})

    @route("/agent/v1/state", "GET")
    def state(self, req: Request) -> Response:
        """Capacity, use and VMs of the DC and each server."""
        self._auth(req)
        query_params(req, ())
        return json_response(self.agent.report())

    @route("/agent/v1/servers", "GET")
    def servers(self, req: Request) -> Response:
        """The servers with capacity, use and idle resources."""
        self._auth(req)
        query_params(req, ())
        return json_response({"servers": self.agent.report()["servers"]})

    @route("/agent/v1/vms", "GET")
    def list_vms(self, req: Request) -> Response:
        """Every VM."""
        self._auth(req)
        query_params(req, ())
        return json_response({"vms": [vm.to_json() for vm in self.agent.vms()]})

    @route("/agent/v1/vms", "POST")
    @answers_agent_errors
    def create_vm(self, req: Request) -> Response:
        """Allocate a VM: place it, give it an address and add the alias."""
        self._auth(req)
        body = validate(json_body(req), VM_SCHEMA)
        if not VM_ID.fullmatch(body["id"]):
            raise ApiError(400, "invalid-field", "id must have 1 to 64 letters, digits, '.', "
                           "'_', ':' or '-' and start with a letter or digit", field="id")
        demand = Demand(body["cpu"], body["memory_gb"], body.get("disk_gb", 0.0))
        vm = self.agent.allocate(body["id"], demand, body.get("server"), body.get("ip"))
        return json_response(vm.to_json(), 201,
                             {"Location": f"/agent/v1/vms/{vm.id}"})

    @route("/agent/v1/vms/{vm_id}", "GET")
    @answers_agent_errors
    def get_vm(self, req: Request, vm_id: str) -> Response:
        """One VM."""
        self._auth(req)
        query_params(req, ())
        return json_response(self.agent.vm(vm_id).to_json())

    @route("/agent/v1/vms/{vm_id}", "DELETE")
    @answers_agent_errors
    def delete_vm(self, req: Request, vm_id: str) -> Response:
        """Release a VM: remove its alias and free its resources; answers the VM released."""
        self._auth(req)
        query_params(req, ())
        return json_response(self.agent.release(vm_id).to_json())


class ContentApi:
    """The ``vod`` content service: ``GET /content/<name>?bytes=N`` streams N fixed bytes."""

    def __init__(self, agent: Agent):
        self.agent = agent

    @route("/content/{name}", "GET")
    @answers_agent_errors
    def content(self, req: Request, name: str) -> Response:
        """Stream the content; says which VM (by the address asked) served it."""
        params = query_params(req, ("bytes",))
        nbytes = check_content_request(name, _int_param(params, "bytes"))
        resp = Response(status=200, content_type="application/octet-stream",
                        app_iter=content_chunks(name, nbytes))
        resp.content_length = nbytes
        resp.headers["X-CSO-DC"] = self.agent.dc.id
        vm = self.agent.vm_by_ip(req.host.rsplit(":", 1)[0]) if req.host else None
        if vm is not None:
            resp.headers["X-CSO-VM"] = vm.id
        return resp


def _int_param(params: dict[str, str], name: str) -> Optional[int]:
    if name not in params:
        return None
    text = params[name]
    if not re.fullmatch(r"[0-9]{1,12}", text):
        raise ApiError(400, "invalid-parameter", f"{name} must be a non-negative integer",
                       field=name)
    return int(text)


def management_app(agent: Agent, token: Optional[str] = None) -> WsgiApp:
    """The WSGI application of the management API."""
    app = WsgiApp("agent")
    app.mount(AgentApi(agent, token))
    return app


def content_app(agent: Agent) -> WsgiApp:
    """The WSGI application of the content service."""
    app = WsgiApp("content")
    app.mount(ContentApi(agent))
    return app
