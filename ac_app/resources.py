"""What the SSE decides on: the application stratum's servers and the network's answers.

Two views feed every strategy (`ac_app.sse`), whoever drives it:

- `AppView`: every DC server's capacity, use and state. The live AC builds it
  from the ARAE's agent reports; the simulator from the topology file
  (`AppView.from_topology`) and updates it as requests come and go. It is a
  mutable pool of frozen `ServerState` snapshots: replacing one entry of a list
  is what a simulator making thousands of decisions per second can afford, and
  a frozen state can be handed to a `Choice` without being changed under it.
- `NetworkView`: answers "how would src reach each of these nodes?" without
  reserving anything. `cso.simulation.network.PceNetworkView` asks an in-process
  SA-PCE (simulator, offline tools); the live AC asks the SC's ASI ``POST /asi/v1/evaluate`` and
  turns each result with `path_info_from_asi`. Both give the same `PathInfo`
  for the same network state (a test holds them to it), so the simulator and
  the live AC choose alike.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Optional, Protocol, Sequence

from topologies.model import Topology, natural_key

#: Tolerance of capacity comparisons: memory and disk are floats summed and subtracted.
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Demand:
    """Resources one request needs on a server: cpu cores, memory and disk in GB."""

    cpu: float
    memory_gb: float = 0.0
    disk_gb: float = 0.0

    def __post_init__(self) -> None:
        if min(self.cpu, self.memory_gb, self.disk_gb) < 0:
            raise ValueError(f"a demand cannot be negative: {self}")


def _util(used: float, total: float) -> float:
    # A server without any of a resource counts as full of it: it can host nothing needing it.
    return used / total if total > 0 else 1.0


def _snap(used: float) -> float:
    # Float sums leave residues like 1e-15 after a release: an idle server must read exactly 0.
    return 0.0 if used < _EPS else used


@dataclass(frozen=True, slots=True)
class ServerState:
    """One DC server at one moment: where it is, its capacity and use, and whether it is up."""

    server: str
    dc: str
    node: str
    cpu_total: float
    cpu_used: float
    memory_total: float
    memory_used: float
    disk_total: float
    disk_used: float
    up: bool = True

    @property
    def cpu_util(self) -> float:
        """Fraction of the cpu cores in use."""
        return _util(self.cpu_used, self.cpu_total)

    @property
    def memory_util(self) -> float:
        """Fraction of the memory in use."""
        return _util(self.memory_used, self.memory_total)

    @property
    def disk_util(self) -> float:
        """Fraction of the disk in use."""
        return _util(self.disk_used, self.disk_total)

    def app_utilisation(self, a: float = 0.5) -> float:
        """A(s) = a·mem_util + (1−a)·cpu_util (CSO draft §8, docs/strategies.md)."""
        # Inlined `_util`: this runs for every server on every decision of the simulator.
        memory = self.memory_used / self.memory_total if self.memory_total > 0 else 1.0
        cpu = self.cpu_used / self.cpu_total if self.cpu_total > 0 else 1.0
        return a * memory + (1.0 - a) * cpu

    def fits(self, demand: Demand) -> bool:
        """True when the server is up and has room for ``demand``."""
        return (self.up and self.cpu_used + demand.cpu <= self.cpu_total + _EPS
                and self.memory_used + demand.memory_gb <= self.memory_total + _EPS
                and self.disk_used + demand.disk_gb <= self.disk_total + _EPS)

    def allocate(self, demand: Demand) -> "ServerState":
        """The state after taking ``demand``; ValueError when it does not fit."""
        if not self.fits(demand):
            raise ValueError(f"{demand} does not fit on server {self.server}")
        return replace(self, cpu_used=self.cpu_used + demand.cpu,
                       memory_used=self.memory_used + demand.memory_gb,
                       disk_used=self.disk_used + demand.disk_gb)

    def release(self, demand: Demand) -> "ServerState":
        """The state after giving ``demand`` back; ValueError when more than is used."""
        cpu = self.cpu_used - demand.cpu
        memory = self.memory_used - demand.memory_gb
        disk = self.disk_used - demand.disk_gb
        if min(cpu, memory, disk) < -_EPS:
            raise ValueError(f"server {self.server} does not hold {demand}")
        return replace(self, cpu_used=_snap(cpu), memory_used=_snap(memory),
                       disk_used=_snap(disk))


def _position(state: ServerState) -> tuple:
    return natural_key(state.node), state.dc, state.server


class AppView:
    """The application stratum as the SSE sees it: every server, in node/DC/server order.

    The order is the strategies' final tie-break, so it is fixed here: nodes in
    natural id order ("2" before "10"), then DC id, then server id.
    """

    def __init__(self, servers: Iterable[ServerState]):
        self._servers: list[ServerState] = sorted(servers, key=_position)
        self._index: dict[str, int] = {}
        for i, state in enumerate(self._servers):
            if state.server in self._index:
                raise ValueError(f"duplicate server id {state.server!r}")
            self._index[state.server] = i

    @classmethod
    def from_topology(cls, topo: Topology) -> "AppView":
        """Every server of the topology's DCs, idle and up."""
        return cls(ServerState(server.id, node.dc.id, node.id, server.cpu, 0, server.memory_gb,
                               0.0, server.disk_gb, 0.0)
                   for node in topo.nodes.values() if node.dc is not None
                   for server in node.dc.servers)

    @property
    def servers(self) -> Sequence[ServerState]:
        """Current states in order (the pool's own list, for speed: do not modify it)."""
        return self._servers

    def __len__(self) -> int:
        return len(self._servers)

    def __contains__(self, server_id: object) -> bool:
        return server_id in self._index

    def get(self, server_id: str) -> ServerState:
        """The current state of ``server_id`` (KeyError when unknown)."""
        return self._servers[self._index[server_id]]

    def fitting(self, demand: Demand) -> list[ServerState]:
        """The servers that are up and have room for ``demand``, in order."""
        return [state for state in self._servers if state.fits(demand)]

    def update(self, state: ServerState) -> None:
        """Replace a known server's state (e.g. from a DC agent's report)."""
        self._servers[self._index[state.server]] = state

    def allocate(self, server_id: str, demand: Demand) -> ServerState:
        """Take ``demand`` on ``server_id`` and return its new state; ValueError if no room."""
        i = self._index[server_id]
        state = self._servers[i] = self._servers[i].allocate(demand)
        return state

    def release(self, server_id: str, demand: Demand) -> ServerState:
        """Give ``demand`` back on ``server_id`` and return its new state."""
        i = self._index[server_id]
        state = self._servers[i] = self._servers[i].release(demand)
        return state

    def set_up(self, server_id: str, up: bool) -> ServerState:
        """Mark a server up or down (its DC's agent answers or not); returns the new state."""
        i = self._index[server_id]
        state = self._servers[i] = replace(self._servers[i], up=up)
        return state

    def utilisations(self, a: float = 0.5) -> list[float]:
        """A(s) of every server, in order (the load balance factor is their dispersion)."""
        return [state.app_utilisation(a) for state in self._servers]

    def copy(self) -> "AppView":
        """An independent pool with the same states (they are immutable, so shared)."""
        clone = AppView.__new__(AppView)
        clone._servers, clone._index = list(self._servers), self._index
        return clone


@dataclass(frozen=True, slots=True)
class PathInfo:
    """How the network would carry a lightpath to one destination, or why it cannot.

    ``te_cost`` is Σ of the links' load-dependent TE weights (`sc_app.ted`);
    ``free_wavelengths`` counts the wavelengths free on every link of the path.
    For an infeasible destination only ``reason`` (a PCE or ASI reason code) and
    ``detail`` are set.
    """

    feasible: bool
    hops: Optional[int] = None
    te_cost: Optional[float] = None
    delay_ms: Optional[float] = None
    free_wavelengths: Optional[int] = None
    reason: Optional[str] = None
    detail: str = ""


#: The "path" to a server at the user's own node: no lightpath, nothing to pay.
LOCAL_PATH = PathInfo(True, hops=0, te_cost=0.0, delay_ms=0.0)


class NetworkView(Protocol):
    """Evaluates lightpaths from one source to many destinations without reserving any."""

    def evaluate(self, src: str, dsts: Sequence[str]) -> Mapping[str, PathInfo]:
        """A `PathInfo` for every node of ``dsts``."""
        ...


def path_info_from_asi(result: Mapping[str, Any]) -> PathInfo:
    """The `PathInfo` of one entry of an ASI ``POST /asi/v1/evaluate`` answer's ``results``."""
    if not result.get("feasible"):
        return PathInfo(False, reason=result.get("reason") or "infeasible",
                        detail=result.get("detail") or "")
    return PathInfo(True, int(result["hops"]), float(result["te_cost"]),
                    float(result["delay_ms"]), int(result["free_wavelengths"]))


def path_infos_from_asi(answer: Mapping[str, Any]) -> dict[str, PathInfo]:
    """A whole ASI evaluate answer as ``{dst as asked: PathInfo}`` (a `NetworkView` result)."""
    return {entry["dst"]: path_info_from_asi(entry) for entry in answer["results"]}
