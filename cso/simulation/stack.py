"""The CSO stack in one process: the live SC's and AC's objects, driven by the simulator.

`CsoStack` wires for one topology what ``cso sc`` and ``cso ac`` run, without a process, a
socket or a switch, and with the simulator's clock:

- the SC: `sc_app.core.ScCore` (TED, SA-PCE, DBM in a temporary directory, PA, the flow
  installer, the SA) over `SimulatedSci`, an SCI transport without switches that takes every
  message and answers every barrier at once: an establish builds its flow entries, sends them
  and waits for its barriers through the SA's real install path. At start every switch
  connects and LLDP sees every fibre, through the core's OpenFlow event methods, as the Ryu
  application has them handled;
- the application stratum: one real DC `Agent` per DC (IP aliases that do nothing, VMs in an
  in-memory SQLite store) behind a `LocalAgent` each, read by the real ARAE
  (`ac_app.arae.Arae`);
- the AC: the `RequestStore` in memory, the `Sse` with the strategy given, the `Procedure`,
  the `Migration` and the `Ua`. The procedure's `Network` port is `LocalAsi`: the SA's
  establish, teardown and evaluate in process, with the SA's typed requests, its domain errors
  turned into the `AsiError` the ASI shell and client would give.

`CsoStack.submit` is what a UAI ``POST /uai/v1/requests`` of type vm does past HTTP
(`Ua.submit` with the body `cso.simulation.live` sends), `CsoStack.delete` what its
``DELETE`` does (`Ua.delete`). Nothing of the procedure, the SSE, the agents or the SA is
re-implemented here: this module only connects them. The clock given is the procedure's, the
agents' and the ARAE's; the SC takes none, so its lightpaths' timestamps and its provisioning
latency stay on the wall clock (no decision reads them).

`StackSimulator` is the second simulation driver: the fast engine's request trace
(`cso.simulation.engine.iter_requests`), clock and metrics (`Counters`), each arrival
submitted to a `CsoStack` and each departure of an accepted request deleted from it, every
request's `Served` kept. `run_point` is its entry for ``cso sim --driver stack``;
`compare_point` and `compare_sweep` run both drivers side by side (``--driver compare``).
"""
from __future__ import annotations

import heapq
import itertools
import math
import os
import shutil
import statistics
import tempfile
from typing import Any, Callable, Mapping, Optional, Sequence

from ryu.ofproto import ofproto_v1_3_parser as ofp_parser

from ac_app.arae import AgentRefused, Arae
from ac_app.asi_client import CONSTRAINTS, AsiError
from ac_app.config import User
from ac_app.db import RequestStore, Record
from ac_app.dc_agent.agent import Agent, AgentError, VmStore
from ac_app.dc_agent.api import api_error
from ac_app.migration import Migration
from ac_app.procedure import Procedure
from ac_app.requests import Kind, RequestError
from ac_app.resources import Demand, ServerState
from ac_app.sse import Sse, Strategy
from ac_app.ua import Ua
from cso.simulation.engine import CSO, Point, Scenario, Series, Simulator, make_strategy, points
from cso.simulation.engine import run_point as engine_run_point
from cso.simulation.live import Hops, vm_request_body
from cso.simulation.outcomes import OK, Served, TracedSimulator, compare
from cso_base import wire
from sc_app.cli_sc import ensure_eventlet_compat
from sc_app.core import ScCore
from sc_app.pce import ConstraintError, Constraints
from sc_app.sa import ErrorKind, EvaluateRequest, LightpathRequest, SaError, ServiceAgent
from topologies.model import DC_PORT, USER_PORT, Topology

ensure_eventlet_compat()  # sc_app.asi imports ryu.app.wsgi, which needs it

from sc_app.asi import http_error  # noqa: E402 - after the compatibility shim

#: The AC's name at the SC (its ASI token's owner) and the user who asks.
AC_NAME = "sim-ac"
USER = User("sim-user", "user", "")
#: Requests are deleted when they depart: the AC's own expiry must never come first.
NEVER_S = 1e12
#: Where the SC's DBM goes when no directory is given: tmpfs where there is one.
SHM = "/dev/shm"

Clock = Callable[[], float]


class StackError(RuntimeError):
    """The stack failed a request in a way no stratum refuses (a bug: nothing is remote)."""


# -- the SC's southbound, without switches ---------------------------------------------------

class SimulatedSci:
    """The SCI with no switches: every message is taken, every barrier answered at once.

    The flow installer (PA) sends a lightpath's entries and a barrier per switch and waits
    for the barrier replies; here the reply is handed to the core (`ScCore.barrier_reply`)
    as soon as the barrier is sent. A flow stats or group description request (the
    reconciliation of a switch that connects) is answered with an empty table: the
    simulated switches start empty, and only start-up reconciles them.
    """

    def __init__(self) -> None:
        self.core: Optional[ScCore] = None
        self.messages = 0
        self.barriers = 0
        self._xids = itertools.count(1)

    def send(self, dpid: int, msg: Any) -> int:
        """Take ``msg`` for switch ``dpid``; its xid (a barrier's reply is delivered now)."""
        assert self.core is not None, "the SCI is bound to its core before any message"
        xid = next(self._xids)
        self.messages += 1
        if isinstance(msg, ofp_parser.OFPBarrierRequest):
            self.barriers += 1
            self.core.barrier_reply(dpid, xid)
        elif isinstance(msg, (ofp_parser.OFPFlowStatsRequest,
                              ofp_parser.OFPGroupDescStatsRequest)):
            self.core.stats_reply(dpid, xid, [], False)
        return xid


def live_ports(topology: Topology, node_id: str) -> list[int]:
    """Every port of a node's switch: its user and DC host ports and its fibres' ports."""
    return [USER_PORT, DC_PORT] + sorted(link.port(node_id) for link in topology.links
                                         if node_id in (link.a, link.b))


def bring_up(core: ScCore) -> None:
    """Every switch connects with all its ports live and LLDP sees every fibre both ways,
    as the Ryu application has the core handle these events; returns once reconciled."""
    topology = core.topology
    for node_id, node in topology.nodes.items():
        core.switch_connected(node.dpid, live_ports(topology, node_id))
    for reconciliation in list(core.reconciliations.values()):
        reconciliation.wait()
    for link in topology.links:
        a = (topology.nodes[link.a].dpid, link.a_port)
        b = (topology.nodes[link.b].dpid, link.b_port)
        core.link_discovered(a, b)
        core.link_discovered(b, a)
    down = [link.id for link in topology.links if not core.ted.usable(link.id)]
    if down:
        raise StackError(f"fibres still down after every switch connected: {down}")


# -- the procedure's ports, in process -------------------------------------------------------

class NoAliases:
    """A DC host's data interface that holds nothing: a simulated VM needs no address."""

    def add(self, ip: str) -> None:
        """Nothing to add."""

    def remove(self, ip: str) -> None:
        """Nothing to remove."""

    def addresses(self) -> set[str]:
        """None."""
        return set()


class LocalAgent:
    """A DC agent's management API in process: `AgentClient`'s calls on a real `Agent`.

    Refusals are the `AgentRefused` the agent's REST shell and the client would give (the
    shell's status for each `AgentError` code).
    """

    def __init__(self, agent: Agent):
        self.agent = agent

    def state(self) -> dict[str, Any]:
        """``GET /agent/v1/state``: the agent's report."""
        return self.agent.report()

    def vms(self) -> list[dict[str, Any]]:
        """``GET /agent/v1/vms``."""
        return [vm.to_json() for vm in self.agent.vms()]

    def create_vm(self, vm_id: str, demand: Demand, server: Optional[str] = None,
                  ip: Optional[str] = None) -> dict[str, Any]:
        """``POST /agent/v1/vms``: the VM created."""
        try:
            return self.agent.allocate(vm_id, demand, server, ip).to_json()
        except AgentError as exc:
            raise _refused(exc) from None

    def delete_vm(self, vm_id: str) -> dict[str, Any]:
        """``DELETE /agent/v1/vms/{id}``: the VM released."""
        try:
            return self.agent.release(vm_id).to_json()
        except AgentError as exc:
            raise _refused(exc) from None


def _refused(exc: AgentError) -> AgentRefused:
    answer = api_error(exc)                     # the agent's REST shell: the same status
    return AgentRefused(answer.status, answer.code, answer.reason)


class LocalAsi:
    """The procedure's `Network` port on an in-process SA: ASI's calls for one AC, no HTTP.

    Each call is the SA's typed request; an `SaError` becomes the `AsiError` the ASI shell
    (`sc_app.asi.http_error`: the same status) and the AC's client would make of it.
    """

    def __init__(self, sa: ServiceAgent, owner: str):
        self.sa = sa
        self.owner = owner

    def establish(self, src: str, dst: str, service_type: str, label: Optional[str] = None,
                  constraints: Optional[Mapping[str, Any]] = None,
                  dst_node: Optional[str] = None) -> dict[str, Any]:
        """``POST /asi/v1/lightpaths``: the lightpath set up."""
        request = LightpathRequest(src=src, dst=dst, dst_node=dst_node,
                                   service_type=service_type, label=label,
                                   constraints=_constraints(constraints))
        try:
            return self.sa.establish(self.owner, request).to_json()
        except SaError as err:
            raise asi_error(err) from None

    def teardown(self, lp_id: str) -> Optional[dict[str, Any]]:
        """``DELETE /asi/v1/lightpaths/{id}``: the lightpath removed, None when already gone."""
        try:
            return self.sa.teardown(self.owner, lp_id).to_json()
        except SaError as err:
            if err.kind is ErrorKind.NOT_FOUND:
                return None
            raise asi_error(err) from None

    def evaluate(self, src: str, dsts: Sequence[str],
                 constraints: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        """``POST /asi/v1/evaluate``: per destination, feasible or why not."""
        try:
            return self.sa.evaluate(EvaluateRequest(src, tuple(dsts),
                                                    _constraints(constraints)))
        except SaError as err:
            raise asi_error(err) from None

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """The one other ASI call the AC makes: ``GET /asi/v1/lightpaths`` (its own)."""
        if (method, path.split("?")[0]) == ("GET", "/asi/v1/lightpaths"):
            return {"lightpaths": [lp.to_json() for lp in self.sa.list(self.owner)]}
        raise AsiError(404, wire.NOT_FOUND, f"{method} {path} is not served in process")


def _constraints(given: Optional[Mapping[str, Any]]) -> Constraints:
    """The SA-PCE constraints of the fields the AC's client would send."""
    fields = {key: given[key] for key in CONSTRAINTS if given and given.get(key) is not None}
    try:
        return Constraints(**fields)
    except ConstraintError as exc:
        raise AsiError(422, wire.INVALID_CONSTRAINT, str(exc)) from None


def asi_error(err: SaError) -> AsiError:
    """The `AsiError` the AC's client raises for the ASI shell's answer to ``err``."""
    answer = http_error(err)
    return AsiError(answer.status, answer.code, answer.reason,
                    str(answer.extra.get("detail") or ""))


# -- the stack -------------------------------------------------------------------------------

class CsoStack:
    """The SC and the AC of one simulation in process, wired as the live controllers are."""

    def __init__(self, topology: Topology, strategy: Strategy, clock: Clock, k: int = 5,
                 order: str = "hops", policy: str = "first-fit", seed: Optional[int] = 0,
                 state_dir: Optional[str] = None):
        self.topology = topology
        self.clock = clock
        self._own_dir = state_dir is None
        self.state_dir = state_dir if state_dir is not None else tempfile.mkdtemp(
            prefix="cso-sim-stack-", dir=SHM if os.access(SHM, os.W_OK) else None)
        # The network stratum: the SC's core on switches that confirm everything.
        self.sci = SimulatedSci()
        self.sc = ScCore(topology, self.state_dir, {AC_NAME: ""}, self.sci, k=k,
                         path_order=order, wavelength_policy=policy, seed=seed)
        self.sci.core = self.sc
        try:
            bring_up(self.sc)
        except Exception:
            self._close_sc()
            raise
        # The application stratum: one agent per DC, read by the ARAE.
        self.agents: dict[str, Agent] = {}
        self._dc_of: dict[str, str] = {}
        plan = topology.addresses
        for node_id, node in topology.nodes.items():
            if node.dc is None:
                continue
            self.agents[node.dc.id] = Agent(node.dc, plan.dc_ip(node_id), NoAliases(),
                                            VmStore(":memory:"), clock=clock)
            self._dc_of.update((server.id, node.dc.id) for server in node.dc.servers)
        # Polled by the procedure after each change only: a DC never goes stale.
        self.arae = Arae({dc: f"inproc://{dc}" for dc in self.agents}, stale_after=math.inf,
                         monotonic=clock, wall_clock=clock,
                         clients={dc: LocalAgent(agent) for dc, agent in self.agents.items()})
        self.arae.poll_all()
        # The AC.
        self.db = RequestStore(":memory:")
        self.sse = Sse(strategy)
        self.procedure = Procedure(self.db, self.arae, LocalAsi(self.sc.service, AC_NAME),
                                   self.sse, topology, clock=clock)
        self.ua = Ua(self.procedure, Migration(self.procedure), topology,
                     Demand(1, 1.0, 1.0), NEVER_S, NEVER_S)  # vod's demand: not simulated
        self._hosts = {node_id: plan.user_ip(node_id) for node_id in topology.nodes}

    def submit(self, src_node: str, demand: Demand) -> Record:
        """A user at ``src_node`` asks for a VM (the UA's path of a UAI request): the active
        record, or the procedure's `RequestError`."""
        return self.ua.submit(USER, vm_request_body(self._hosts[src_node], demand))

    def delete(self, record: Record) -> Record:
        """The user releases the request (the UA's path of a UAI ``DELETE``)."""
        released = self.ua.delete(USER, record.id)
        if released.leftovers:
            raise StackError(f"{record.id}: still held after its release: {released.leftovers}")
        return released

    def server(self, server_id: str) -> ServerState:
        """A server's state as its DC agent has it."""
        agent = self.agents[self._dc_of[server_id]]
        return next(state for state in agent.server_states() if state.server == server_id)

    def close(self) -> None:
        """Close the stores; remove the temporary state directory."""
        self.db.close()
        for agent in self.agents.values():
            agent.store.close()
        self._close_sc()

    def _close_sc(self) -> None:
        self.sc.close()
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> "CsoStack":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- the second driver -----------------------------------------------------------------------

class StackSimulator(Simulator):
    """The engine's trace, clock and metrics; every request served by a `CsoStack`.

    An arrival is `CsoStack.submit`, the departure of an accepted request `CsoStack.delete`;
    the time-weighted metrics read each changed server's A(s) from its agent. ``served``
    keeps every request's `Served`, warm-up included.
    """

    def __init__(self, point: Point, state_dir: Optional[str] = None):
        if point.scenario.traffic != CSO:
            raise ValueError("the stack driver serves cso traffic (users' requests through "
                             "the AC); rwa traffic has no AC")
        super().__init__(point)
        sc, series = point.scenario, point.series
        self.stack = CsoStack(self.topology, make_strategy(series.strategy, sc, point.seed),
                              lambda: self.now, k=series.k, order=sc.order,
                              policy=series.policy, seed=point.seed, state_dir=state_dir)
        self.served: list[Served] = []
        self._record: Optional[Record] = None

    def arrive(self, src: str, dst: Optional[str], demand: Demand, holding: float) -> str:
        """Submit the request to the stack; OK or the refusing stratum."""
        try:
            record = self.stack.submit(src, demand)
        except RequestError as err:
            if err.kind is not Kind.REFUSED or err.stratum is None:
                raise StackError(f"request {self.owner}: {err}") from None
            self.served.append(Served(err.stratum, err.reason))
            return err.stratum
        lightpath = record.lightpath or {}
        served = Served(OK, server=record.server, route=tuple(lightpath["route"]),
                        wavelength=lightpath["wavelength"])
        self.served.append(served)
        assert record.server is not None
        self._record = record
        self._server_changed(record.server, self.stack.server(record.server)
                             .app_utilisation(self.a))
        self._accepted(Hops(served.hops) if served.hops else None, record.server,
                       demand, holding)
        return OK

    def _hold(self, until: float, path: Any, server_id: Optional[str], demand: Demand) -> None:
        heapq.heappush(self.departures, (until, self.owner, self._record, server_id,
                                         path.hops if path is not None else 0))

    def _depart_until(self, t: float) -> None:
        heap = self.departures
        while heap and heap[0][0] <= t:
            when, _owner, record, server_id, hops = heapq.heappop(heap)
            self._advance(when)
            self.stack.delete(record)
            self.held_channels -= hops
            self._server_changed(server_id, self.stack.server(server_id).app_utilisation(self.a))

    def close(self) -> None:
        """Close the stack."""
        self.stack.close()


def run_point(point: Point) -> dict[str, Any]:
    """Simulate one point through the stack (picklable entry for worker processes)."""
    sim = StackSimulator(point)
    try:
        return sim.run()
    finally:
        sim.close()


# -- both drivers side by side ---------------------------------------------------------------

def compare_point(point: Point) -> dict[str, Any]:
    """One point through both drivers: each one's result (the engine's timed untraced), and
    whether they served every request alike and measured the same metrics."""
    engine = engine_run_point(point)
    traced = TracedSimulator(point)
    traced.run()
    sim = StackSimulator(point)
    try:
        stack = sim.run()
    finally:
        sim.close()
    return {"series": point.series.label, "load": point.load, "seed": point.seed,
            "engine": engine, "stack": stack, "agreement": compare(traced.served, sim.served),
            "same_metrics": engine["metrics"] == stack["metrics"]}


def compare_sweep(scenario: Scenario, series: Sequence[Series], loads: Sequence[float],
                  seeds: Sequence[int],
                  progress: Optional[Callable[[int, int, Point], None]] = None
                  ) -> dict[str, Any]:
    """Every point through both drivers, one after the other in this process (so their
    speeds compare): per (series, load) the requests that agree, whether every seed gave the
    same metrics, and each driver's median requests per second over the seeds."""
    todo = points(scenario, series, loads, seeds)
    runs = []
    for n, point in enumerate(todo, 1):
        runs.append(compare_point(point))
        if progress:
            progress(n, len(todo), point)
    rows = []
    for s in series:
        for load in loads:
            mine = [r for r in runs if (r["series"], r["load"]) == (s.label, load)]
            engine = statistics.median(r["engine"]["requests_per_s"] for r in mine)
            stack = statistics.median(r["stack"]["requests_per_s"] for r in mine)
            rows.append({"series": s.label, "load": load, "seeds": len(mine),
                         "compared": sum(r["agreement"]["compared"] for r in mine),
                         "agree": sum(r["agreement"]["agree"] for r in mine),
                         "same_metrics": all(r["same_metrics"] for r in mine),
                         "engine_requests_per_s": engine, "stack_requests_per_s": stack,
                         "speed_ratio": engine / stack})
    return {"rows": rows,
            "runs": [{key: run[key] for key in ("series", "load", "seed", "agreement",
                                                "same_metrics")}
                     | {"engine_metrics": run["engine"]["metrics"],
                        "stack_metrics": run["stack"]["metrics"]} for run in runs]}


def compare_text(summary: dict[str, Any]) -> str:
    """A human summary of `compare_sweep`: agreement and speed per (series, load)."""
    lines = [f"{'series':<12}{'load':>7}{'agree':>14}{'metrics':>9}{'engine req/s':>14}"
             f"{'stack req/s':>13}{'ratio':>8}"]
    for row in summary["rows"]:
        lines.append(f"{row['series']:<12}{row['load']:>7g}"
                     f"{row['agree']:>8}/{row['compared']:<5}"
                     f"{'same' if row['same_metrics'] else 'DIFFER':>9}"
                     f"{row['engine_requests_per_s']:>14.0f}{row['stack_requests_per_s']:>13.0f}"
                     f"{row['speed_ratio']:>7.0f}x")
    for run in summary["runs"]:
        for item in run["agreement"]["first_disagreements"][:1]:
            lines.append(f"  first disagreement, {run['series']} load {run['load']:g} seed "
                         f"{run['seed']}: {item}")
    return "\n".join(lines)
