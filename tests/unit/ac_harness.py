"""Shared pieces of the AC's unit tests: fake agents and ARAE, the real SC behind ASI, a UAI client.

- `FakeArae` stands where `ac_app.arae.Arae` does: one real `ac_app.dc_agent.agent.Agent` per DC of
  the topology (fake interface aliases, VMs in memory) behind `FakeAgentClient`s that answer
  like the agents' REST API would (`AgentRefused` with its status and code) and can be made
  unreachable, refusing or answer-losing; a DC can be marked down.
- The SC is the real one (`sc_harness.make_sc`: SA, SA-PCE, PA on fake OpenFlow switches) on
  NSFNET; `WsgiTransport` carries the `AsiClient`'s requests to its WSGI application in process
  and can make the SC unreachable or lose an answer after the SC acted on it.
- `Lab` assembles an `AcService` from an ``[ac]`` config over those fakes, with a settable
  clock, and a `UaiClient` per user.
- Fixtures (import them with `sc_harness.state_dir`): ``lab``, a `Lab` with the default
  configuration; ``sc``, the SC the AC talks to (`make_sc_for_ac`), for tests of its clients.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable, Iterator, Optional
from urllib.parse import urlsplit

import pytest
from webob import Request

from ac_app.dc_agent.agent import Agent, AgentError, VmStore
from ac_app.dc_agent.api import STATUS
from ac_app.arae import AgentRefused, AgentUnreachable, DcState
from ac_app.asi_client import AsiClient
from ac_app.config import parse_string
from ac_app.resources import AppView
from ac_app.service import AcService
from cso_base import http
from sc_harness import Client, Reply, Sc, make_sc  # noqa: F401 - Reply: for the OpenAPI test
from topologies.model import Topology

AC_TOKEN = "test-ac-token"
USERS = {"alice": "alice-token", "bob": "bob-token", "mgr": "mgr-token"}
NSFNET_DCS = ("dc1", "dc4", "dc7", "dc9", "dc12")
#: The UAI's requests resource.
REQS = "/uai/v1/requests"
#: What `Lab.held` answers when nothing is held: no VM, no lightpath, no wavelength used.
NOTHING = ({}, [], 0)


def config_text(strategy: str = "GLB", **extra: Any) -> str:
    """An ``[ac]`` section for NSFNET: users alice and bob, manager mgr, every DC's agent."""
    values = {"topology": "nsfnet", "sc_token": AC_TOKEN, "strategy": strategy,
              "users": "alice:user:alice-token, bob:user:bob-token, "
                       "mgr:provider-manager:mgr-token",
              "agents": ", ".join(f"{dc}:http://192.0.2.{i + 1}:8100"
                                  for i, dc in enumerate(NSFNET_DCS)),
              **extra}
    return "[ac]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())


class FakeAliases:
    """An interface's addresses, in memory."""

    def __init__(self, data_ip: str):
        self.set = {data_ip}

    def add(self, ip: str) -> None:
        self.set.add(ip)

    def remove(self, ip: str) -> None:
        self.set.discard(ip)

    def addresses(self) -> set[str]:
        return set(self.set)


class FakeAgentClient:
    """`AgentClient`'s VM calls on a real `Agent`, with the REST API's statuses and failures.

    ``down``: every call raises AgentUnreachable. ``refuse``: (status, code) answered to the
    next create. ``lose_create``: the VM is created, then the answer is lost (a timeout).
    ``fail_delete``: deletes raise AgentUnreachable (the VM stays). ``pause``: "create" or
    "delete" -> a function of the VM id called once, while the agent is at work (the VM
    created but not yet answered; the VM not yet deleted): the procedure paused there.
    """

    def __init__(self, agent: Agent):
        self.agent = agent
        self.down = False
        self.refuse: Optional[tuple[int, str]] = None
        self.lose_create = False
        self.fail_delete = False
        self.pause: dict[str, Callable[[str], None]] = {}
        self.calls: list[tuple[str, str]] = []
        self.lists = 0

    def _check(self, what: str) -> None:
        if self.down:
            raise AgentUnreachable(f"{what} {self.agent.dc.id}: connection refused")

    def create_vm(self, vm_id: str, demand: Any, server: Optional[str] = None,
                  ip: Optional[str] = None) -> dict[str, Any]:
        self.calls.append(("create", vm_id))
        self._check("POST")
        if self.refuse is not None:
            (status, code), self.refuse = self.refuse, None
            raise AgentRefused(status, code, f"refused by the test ({code})")
        try:
            vm = self.agent.allocate(vm_id, demand, server, ip)
        except AgentError as exc:
            raise AgentRefused(STATUS.get(exc.code, 500), exc.code, exc.reason) from None
        self._paused("create", vm_id)
        if self.lose_create:
            raise AgentUnreachable(f"POST {self.agent.dc.id}: timed out")
        return vm.to_json()

    def delete_vm(self, vm_id: str) -> dict[str, Any]:
        self.calls.append(("delete", vm_id))
        self._check("DELETE")
        if self.fail_delete:
            raise AgentUnreachable(f"DELETE {self.agent.dc.id}: timed out")
        self._paused("delete", vm_id)
        try:
            return self.agent.release(vm_id).to_json()
        except AgentError as exc:
            raise AgentRefused(STATUS.get(exc.code, 500), exc.code, exc.reason) from None

    def vms(self) -> list[dict[str, Any]]:
        self.lists += 1  # not in ``calls``: those are the procedure's VM operations
        self._check("GET")
        return [vm.to_json() for vm in self.agent.vms()]

    def _paused(self, what: str, vm_id: str) -> None:
        hook = self.pause.pop(what, None)
        if hook is not None:
            hook(vm_id)


class FakeArae:
    """The ARAE's procedure-facing API over one real `Agent` per DC of the topology."""

    def __init__(self, topology: Topology):
        self.agents: dict[str, Agent] = {}
        self.clients: dict[str, FakeAgentClient] = {}
        self.unavailable: set[str] = set()
        self.polls: list[str] = []
        self.running = False
        self.listeners: list[Any] = []
        for node in topology.nodes.values():
            if node.dc is None:
                continue
            data_ip = topology.addresses.dc_ip(node.id)
            agent = Agent(node.dc, data_ip, FakeAliases(data_ip), VmStore(":memory:"),
                          clock=lambda: 1000.0)
            self.agents[node.dc.id] = agent
            self.clients[node.dc.id] = FakeAgentClient(agent)

    def app_view(self) -> AppView:
        return AppView(state if dc not in self.unavailable else replace(state, up=False)
                       for dc, agent in self.agents.items() for state in agent.server_states())

    def client(self, dc: str) -> FakeAgentClient:
        return self.clients[dc]

    def available(self) -> list[str]:
        return [dc for dc in self.agents if dc not in self.unavailable]

    def poll(self, dc: str) -> DcState:
        self.polls.append(dc)
        return self.states()[dc]

    def states(self) -> dict[str, DcState]:
        return {dc: DcState(dc, f"fake://{dc}", dc not in self.unavailable, agent.dc.node,
                            tuple(agent.server_states()), len(agent.vms()))
                for dc, agent in self.agents.items()}

    def subscribe(self, listener: Any) -> None:
        self.listeners.append(listener)

    def fail(self, dc: str) -> None:
        """The DC's agent stops answering: unavailable, and the listeners are told."""
        self.unavailable.add(dc)
        self.clients[dc].down = True
        for listener in self.listeners:
            listener(self.states()[dc])

    def start(self) -> "FakeArae":
        self.running = True
        return self

    def stop(self) -> None:
        self.running = False

    def vms(self) -> dict[str, list[str]]:
        """DC -> ids of the VMs it runs (DCs without any left out)."""
        return {dc: [vm.id for vm in agent.vms()] for dc, agent in self.agents.items()
                if agent.vms()}


class WsgiTransport:
    """`cso_base.http.request` into a WSGI application, in process.

    ``down``: raise `http.Unreachable` without asking. ``lose``: a set of (method, path
    prefix); a matching request is served, then its answer is lost (Unreachable). ``pause``:
    (method, path prefix) -> a function called once when a matching request was served, before
    its answer returns: the caller paused there.
    """

    def __init__(self, app: Any):
        self.app = app
        self.down = False
        self.lose: set[tuple[str, str]] = set()
        self.pause: dict[tuple[str, str], Callable[[], None]] = {}
        self.calls: list[tuple[str, str, Any]] = []

    def __call__(self, method: str, url: str, body: Any = None, token: Optional[str] = None,
                 headers: Optional[dict[str, str]] = None, timeout: float = 10.0) -> http.Answer:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.calls.append((method, parts.path, body))
        if self.down:
            raise http.Unreachable(f"{method} {url}: [Errno 111] Connection refused")
        req = Request.blank(path, method=method)
        if token:
            req.headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = "application/json"
        resp = req.get_response(self.app)
        for key in [(m, p) for m, p in self.pause if method == m and parts.path.startswith(p)]:
            self.pause.pop(key)()
        if any(method == m and parts.path.startswith(p) for m, p in self.lose):
            raise http.Unreachable(f"{method} {url}: timed out")
        return http.Answer(resp.status_int, dict(resp.headers), resp.body)


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class UaiClient(Client):
    """Requests to the UAI application (a `cso_base.wsgi.WsgiApp`) as one user."""

    def route(self, req: Request) -> Optional[str]:
        """The route template ``req`` matches (the OpenAPI test looks answers up by it)."""
        match = self.app._mapper.match(req.path_info)  # cso_base.wsgi keeps the template there
        return None if match is None else match["_cso_path"]


def make_sc_for_ac(state_dir: str) -> Sc:
    """The SC the AC works with here: the real one on NSFNET, knowing the AC's token."""
    return make_sc(state_dir, topology="nsfnet", tokens={"ac": AC_TOKEN})


class Lab:
    """An AC service over a `FakeArae` and the real SC on NSFNET, with a settable clock."""

    def __init__(self, state_dir: str, strategy: str = "GLB", **config: Any):
        self.sc = make_sc_for_ac(state_dir)
        self.settings = parse_string(config_text(strategy, state_dir=state_dir, **config))
        self.arae = FakeArae(self.settings.topology)
        self.transport = WsgiTransport(self.sc.wsgi)
        self.asi = AsiClient("http://sc.test:8080", AC_TOKEN, 5.0, send=self.transport)
        self.clock = Clock()
        self.service = AcService(self.settings, arae=self.arae, asi=self.asi,
                                 db_path=f"{state_dir}/ac.db", clock=self.clock)
        self.procedure = self.service.procedure
        self.exchanges: list[Reply] = []

    def user(self, name: Optional[str]) -> UaiClient:
        """A UAI client with ``name``'s token (None: no token)."""
        return UaiClient(self.service.app, USERS[name] if name else None, self.exchanges)

    def lightpaths(self) -> list[dict[str, Any]]:
        """The SC's lightpaths (of every AC)."""
        return [lp.to_json() for lp in self.sc.core.service.list()]

    def held(self) -> tuple[dict[str, list[str]], list[dict[str, Any]], int]:
        """VMs per DC, the SC's lightpaths and the wavelengths used: all empty when idle."""
        used = sum(bin(full & ~free).count("1")
                   for full, free in zip(self.sc.core.ted.full, self.sc.core.ted.free))
        return self.arae.vms(), self.lightpaths(), used

    def close(self) -> None:
        self.service.close()
        self.sc.close()


@pytest.fixture
def lab(state_dir: str) -> Iterator[Lab]:
    """A `Lab` with the default configuration (GLB)."""
    the_lab = Lab(state_dir)
    yield the_lab
    the_lab.close()


@pytest.fixture
def sc(state_dir: str) -> Iterator[Sc]:
    """The SC the AC works with (`make_sc_for_ac`), for the tests of the AC's clients."""
    instance = make_sc_for_ac(state_dir)
    yield instance
    instance.close()
