"""ARAE: the application-resource abstraction of the AC (CSO draft §3.1).

Collects every DC agent's report over the management network, periodically and on demand,
and keeps one abstraction per DC: its servers (as `ac_app.resources.ServerState`), idle
resources, utilisation, whether it is available and when its agent last answered. A DC is
unavailable until its agent first answers, after ``max_failures`` polls in a row fail (an
error, a refusal or a timeout), and when no poll has succeeded for ``stale_after`` seconds.

`AgentClient` is the HTTP client of one agent, also what the AC allocates and releases VMs
with. It uses eventlet's green urllib, so a slow or dead agent never blocks the AC's other
green threads, and every call is bounded by a timeout.
"""
from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional

from ac_app.dc_agent.agent import server_state
from ac_app.resources import AppView, Demand, ServerState
from cso_base.errors import CodedError

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402 - after the filter
from eventlet.green.urllib import error as green_error  # noqa: E402
from eventlet.green.urllib import request as green_request  # noqa: E402

LOG = logging.getLogger(__name__)


class AgentUnreachable(Exception):
    """The agent did not answer in time, or not with JSON."""


class AgentRefused(CodedError):
    """The agent answered with an error status; ``code`` and ``reason`` are its own."""

    def __init__(self, status: int, code: str, reason: str):
        super().__init__(status, code, reason)
        self.status = status


class AgentClient:
    """HTTP client of one DC agent's management API (``/agent/v1``), green and time-bounded."""

    def __init__(self, base_url: str, token: Optional[str] = None, timeout: float = 2.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One call; the answer's JSON, AgentRefused on an error status, else AgentUnreachable."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = green_request.Request(self.base_url + path, data=data, method=method,
                                    headers=headers)
        what = f"{method} {self.base_url}{path}"
        try:
            with eventlet.Timeout(self.timeout, AgentUnreachable(f"{what}: no answer in "
                                                                 f"{self.timeout:g} s")):
                try:
                    with green_request.urlopen(req, timeout=self.timeout) as answer:
                        raw = answer.read()
                except green_error.HTTPError as answer:
                    raise _refused(answer.code, answer.read()) from None
        except (OSError, ValueError) as exc:  # URLError, refused, reset, socket timeout
            raise AgentUnreachable(f"{what}: {getattr(exc, 'reason', None) or exc}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise AgentUnreachable(f"{what}: the answer is not JSON") from None

    def health(self) -> dict[str, Any]:
        """``GET /agent/v1/health``."""
        return self.request("GET", "/agent/v1/health")

    def state(self) -> dict[str, Any]:
        """``GET /agent/v1/state``: the agent's report."""
        return self.request("GET", "/agent/v1/state")

    def vms(self) -> list[dict[str, Any]]:
        """``GET /agent/v1/vms``."""
        return self.request("GET", "/agent/v1/vms")["vms"]

    def create_vm(self, vm_id: str, demand: Demand, server: Optional[str] = None,
                  ip: Optional[str] = None) -> dict[str, Any]:
        """``POST /agent/v1/vms``: the VM created (its ``server`` and ``ip``)."""
        body: dict[str, Any] = {"id": vm_id, "cpu": demand.cpu, "memory_gb": demand.memory_gb,
                                "disk_gb": demand.disk_gb}
        if server is not None:
            body["server"] = server
        if ip is not None:
            body["ip"] = ip
        return self.request("POST", "/agent/v1/vms", body)

    def delete_vm(self, vm_id: str) -> dict[str, Any]:
        """``DELETE /agent/v1/vms/{id}``: the VM released."""
        return self.request("DELETE", f"/agent/v1/vms/{vm_id}")


def _refused(status: int, raw: bytes) -> AgentRefused:
    try:
        body = json.loads(raw)
        return AgentRefused(status, str(body["error"]), str(body.get("reason", "")))
    except (ValueError, KeyError, TypeError):
        return AgentRefused(status, "http-error", raw[:200].decode("utf-8", "replace"))


def _resources(cpu: float, memory_gb: float, disk_gb: float) -> dict[str, float]:
    return {"cpu": cpu, "memory_gb": memory_gb, "disk_gb": disk_gb}


@dataclass(frozen=True)
class DcState:
    """One DC as the ARAE last saw it: servers, availability and when its agent answered."""

    dc: str
    url: str
    available: bool = False
    node: Optional[str] = None
    servers: tuple[ServerState, ...] = ()
    vms: int = 0
    last_seen: Optional[float] = None  # wall-clock time of the last good answer
    failures: int = 0  # polls failed in a row
    error: str = ""  # why the last poll failed
    _seen_at: Optional[float] = field(default=None, repr=False, compare=False)  # monotonic

    @property
    def capacity(self) -> dict[str, float]:
        """Total cpu cores, memory and disk (GB) of the DC's servers."""
        return _resources(sum(s.cpu_total for s in self.servers),
                          sum(s.memory_total for s in self.servers),
                          sum(s.disk_total for s in self.servers))

    @property
    def used(self) -> dict[str, float]:
        """Cpu cores, memory and disk (GB) held by VMs."""
        return _resources(sum(s.cpu_used for s in self.servers),
                          sum(s.memory_used for s in self.servers),
                          sum(s.disk_used for s in self.servers))

    @property
    def idle(self) -> dict[str, float]:
        """Cpu cores, memory and disk (GB) free; all zero while the DC is unavailable."""
        if not self.available:
            return _resources(0.0, 0.0, 0.0)
        capacity, used = self.capacity, self.used
        return {key: capacity[key] - used[key] for key in capacity}

    @property
    def utilisation(self) -> dict[str, float]:
        """Fraction of the DC's cpu, memory and disk in use."""
        capacity, used = self.capacity, self.used
        return {key.removesuffix("_gb"): used[key] / capacity[key] if capacity[key] else 1.0
                for key in capacity}

    def to_json(self) -> dict[str, Any]:
        """The abstraction as JSON (e.g. for the AC's REST API or logs)."""
        return {"dc": self.dc, "node": self.node, "url": self.url, "available": self.available,
                "last_seen": self.last_seen, "failures": self.failures, "error": self.error,
                "vms": self.vms, "capacity": self.capacity, "used": self.used,
                "idle": self.idle, "utilisation": self.utilisation,
                "servers": [{"server": s.server, "cpu_total": s.cpu_total,
                             "cpu_used": s.cpu_used, "memory_total": s.memory_total,
                             "memory_used": s.memory_used, "disk_total": s.disk_total,
                             "disk_used": s.disk_used, "up": s.up} for s in self.servers]}


Listener = Callable[[DcState], None]


class Arae:
    """Per-DC abstraction of the DC agents' reports, refreshed periodically and on demand."""

    def __init__(self, agents: Mapping[str, str], token: Optional[str] = None,
                 interval: float = 5.0, timeout: float = 2.0, max_failures: int = 2,
                 stale_after: Optional[float] = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 clients: Optional[Mapping[str, AgentClient]] = None):
        """``clients``: each DC's agent client instead of an `AgentClient` of its URL (agents
        in process: the simulation's `cso.simulation.stack`)."""
        if max_failures < 1 or interval <= 0 or timeout <= 0:
            raise ValueError("max_failures >= 1, interval > 0 and timeout > 0 are required")
        self.interval = interval
        self.max_failures = max_failures
        self.stale_after = stale_after if stale_after is not None else (
            max_failures * interval + timeout)
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._clients = {dc: AgentClient(url, token, timeout) if clients is None else clients[dc]
                         for dc, url in agents.items()}
        self._states = {dc: DcState(dc, url) for dc, url in agents.items()}
        self._listeners: list[Listener] = []
        self._thread: Optional[eventlet.greenthread.GreenThread] = None

    # -- reading -------------------------------------------------------------------------------

    @property
    def dcs(self) -> list[str]:
        """The DC ids the ARAE watches."""
        return list(self._states)

    def client(self, dc: str) -> AgentClient:
        """The HTTP client of ``dc``'s agent (to allocate and release VMs)."""
        return self._clients[dc]

    def state(self, dc: str) -> DcState:
        """``dc`` as last seen; unavailable once no poll has succeeded for ``stale_after``."""
        state = self._states[dc]
        if state.available and self._stale(state):
            state = self._set(replace(state, available=False,
                                      error=f"no answer for {self.stale_after:g} s"))
        return state

    def states(self) -> dict[str, DcState]:
        """Every DC as last seen."""
        return {dc: self.state(dc) for dc in self._states}

    def available(self) -> list[str]:
        """The DCs whose agents answer."""
        return [dc for dc, state in self.states().items() if state.available]

    def server_states(self) -> list[ServerState]:
        """Every known server; those of unavailable DCs are marked down."""
        return [server if state.available else replace(server, up=False)
                for state in self.states().values() for server in state.servers]

    def app_view(self) -> AppView:
        """The application stratum as the SSE sees it (`ac_app.resources.AppView`)."""
        return AppView(self.server_states())

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(state)`` whenever a DC becomes available or unavailable."""
        self._listeners.append(listener)

    # -- polling -------------------------------------------------------------------------------

    def poll(self, dc: str) -> DcState:
        """Ask ``dc``'s agent for its report now; the DC's new state."""
        old = self._states[dc]
        try:
            report = self._clients[dc].state()
            node = str(report["node"])
            servers = tuple(server_state(dc, node, entry) for entry in report["servers"])
            vms = len(report["vms"])
        except (AgentUnreachable, AgentRefused) as exc:
            return self._failed(old, str(exc))
        except (KeyError, TypeError, ValueError) as exc:
            return self._failed(old, f"malformed report: {exc!r}")
        return self._set(replace(old, available=True, node=node, servers=servers, vms=vms,
                                 last_seen=self._wall_clock(), failures=0, error="",
                                 _seen_at=self._monotonic()))

    def poll_all(self) -> dict[str, DcState]:
        """Poll every agent at once; every DC's new state."""
        pool = eventlet.GreenPool(max(1, len(self._states)))
        return dict(zip(self._states, pool.imap(self.poll, list(self._states))))

    def start(self) -> "Arae":
        """Poll every ``interval`` seconds in a green thread (the first round at once)."""
        if self._thread is None:
            self._thread = eventlet.spawn(self._run)
        return self

    def stop(self) -> None:
        """Stop polling."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.kill()

    def _run(self) -> None:
        while True:
            started = self._monotonic()
            try:
                self.poll_all()
            except Exception:  # noqa: BLE001 - keep polling; a bug here must not stop the ARAE
                LOG.exception("ARAE poll round failed")
            eventlet.sleep(max(0.0, self.interval - (self._monotonic() - started)))

    # -- internals -----------------------------------------------------------------------------

    def _stale(self, state: DcState) -> bool:
        return state._seen_at is None or self._monotonic() - state._seen_at > self.stale_after

    def _failed(self, old: DcState, error: str) -> DcState:
        failures = old.failures + 1
        available = old.available and failures < self.max_failures and not self._stale(old)
        if old.available and not available:
            LOG.warning("DC %s unavailable: %s", old.dc, error)
        return self._set(replace(old, available=available, failures=failures, error=error))

    def _set(self, state: DcState) -> DcState:
        old = self._states[state.dc]
        self._states[state.dc] = state
        if old.available != state.available:
            if state.available:
                LOG.info("DC %s available (%s)", state.dc, state.url)
            for listener in list(self._listeners):
                try:
                    listener(state)
                except Exception:  # noqa: BLE001 - one listener must not break the others
                    LOG.exception("ARAE listener %r failed on %s", listener, state.dc)
        return state
