"""The DC agent's logic: one data centre's servers, its VMs and their IP aliases, and content.

Plain classes, no HTTP (`ac_app.dc_agent.api` is the REST shell, `ac_app.dc_agent.cli` the command):

- `Agent` keeps the servers of one DC (from the topology file) and the VMs placed on them,
  decides where a VM goes and which address it gets, and reports capacity and use;
- `AliasManager` puts a VM's address on the DC host's data interface so traffic really reaches
  it (`IpAliases` runs ``ip addr``; tests use a fake);
- `VmStore` keeps the VMs in SQLite (WAL), so a restarted agent has them again and re-adds their
  aliases;
- `content_chunks` is the deterministic content the ``vod`` service streams.

Addresses: the DC host's data address is ``10.2.<i>.1``; a VM gets the next free
``10.2.<i>.<n>`` (n from 2 to 254) unless the caller gives one. A migrated VM keeps its address,
so any ``10.2.<j>.<n>`` is accepted when given (`topologies.addressing`).
"""
from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import os
import re
import sqlite3
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Mapping, Optional, Protocol, Sequence

from ac_app.resources import Demand, ServerState
from topologies.addressing import DC_PREFIX
from topologies.model import DataCentre

LOG = logging.getLogger(__name__)

AGENT_PORT = 8100
CONTENT_PORT = 8080
#: Where VM addresses live (`topologies.addressing`): 10.2.<i>.<n>; host interfaces use /8.
VM_NET = DC_PREFIX
ALIAS_PREFIX_LEN = 8
FIRST_ALIAS, LAST_ALIAS = 2, 254
DB_FILE = "agent.db"

#: Content: at most this many bytes per request, this many when the request does not say.
MAX_CONTENT_BYTES = 1 << 30
DEFAULT_CONTENT_BYTES = 1 << 20
CONTENT_BLOCK = 1 << 16
CONTENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class AgentError(Exception):
    """A refused agent operation; ``code`` is machine-readable, ``reason`` says why."""

    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Vm:
    """One VM: where it runs, its address and the resources it holds."""

    id: str
    server: str
    ip: str
    cpu: float
    memory_gb: float
    disk_gb: float
    created: float

    @property
    def demand(self) -> Demand:
        """The resources it holds on its server."""
        return Demand(self.cpu, self.memory_gb, self.disk_gb)

    def to_json(self) -> dict[str, Any]:
        """The VM as the REST API shows it."""
        return asdict(self)


class AliasError(RuntimeError):
    """An address could not be added to or removed from the data interface."""


class AliasManager(Protocol):
    """Puts VM addresses on the DC host's data interface and takes them off."""

    def add(self, ip: str) -> None:
        """Make ``ip`` an address of the interface (no error when it already is)."""

    def remove(self, ip: str) -> None:
        """Take ``ip`` off the interface (no error when it is not there)."""

    def addresses(self) -> set[str]:
        """The interface's IPv4 addresses."""


class IpAliases:
    """VM addresses as secondary addresses of a Linux interface, managed with ``ip addr``."""

    def __init__(self, interface: str, prefix_len: int = ALIAS_PREFIX_LEN,
                 run: Callable[..., subprocess.CompletedProcess] = subprocess.run):
        self.interface = interface
        self.prefix_len = prefix_len
        self._run = run

    def _ip(self, *args: str) -> subprocess.CompletedProcess:
        try:
            return self._run(["ip", *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AliasError(f"ip {' '.join(args)}: {exc}") from None

    def add(self, ip: str) -> None:
        """``ip addr replace IP/8 dev IFACE``: ``add`` that tolerates an address already there."""
        done = self._ip("addr", "replace", f"{ip}/{self.prefix_len}", "dev", self.interface)
        if done.returncode != 0:
            raise AliasError(f"cannot add {ip} to {self.interface}: {done.stderr.strip()}")

    def remove(self, ip: str) -> None:
        """``ip addr del IP/8 dev IFACE``; an address already gone is not an error."""
        done = self._ip("addr", "del", f"{ip}/{self.prefix_len}", "dev", self.interface)
        if done.returncode != 0 and ip in self.addresses():
            raise AliasError(f"cannot remove {ip} from {self.interface}: {done.stderr.strip()}")

    def addresses(self) -> set[str]:
        """The interface's IPv4 addresses (``ip -o -4 addr show dev IFACE``)."""
        done = self._ip("-o", "-4", "addr", "show", "dev", self.interface)
        if done.returncode != 0:
            raise AliasError(f"cannot list the addresses of {self.interface}: "
                             f"{done.stderr.strip()}")
        return set(re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", done.stdout))


class VmStore:
    """The agent's VMs in a SQLite file (WAL), so a restarted agent keeps them."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vms (id TEXT PRIMARY KEY, server TEXT NOT "
                         "NULL, ip TEXT NOT NULL UNIQUE, cpu REAL NOT NULL, memory_gb REAL NOT "
                         "NULL, disk_gb REAL NOT NULL, created REAL NOT NULL)")

    def load(self) -> list[Vm]:
        """Every stored VM, oldest first."""
        rows = self._db.execute("SELECT id, server, ip, cpu, memory_gb, disk_gb, created "
                                "FROM vms ORDER BY created, id").fetchall()
        return [Vm(*row) for row in rows]

    def add(self, vm: Vm) -> None:
        """Store a new VM."""
        self._db.execute("INSERT INTO vms VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (vm.id, vm.server, vm.ip, vm.cpu, vm.memory_gb, vm.disk_gb, vm.created))

    def remove(self, vm_id: str) -> None:
        """Forget a VM."""
        self._db.execute("DELETE FROM vms WHERE id = ?", (vm_id,))

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _resources(cpu: float, memory_gb: float, disk_gb: float) -> dict[str, float]:
    return {"cpu": cpu, "memory_gb": memory_gb, "disk_gb": disk_gb}


def server_json(state: ServerState, vms: Sequence[str]) -> dict[str, Any]:
    """A server's capacity, use, idle resources and VMs as the REST API shows them."""
    return {
        "id": state.server,
        "capacity": _resources(state.cpu_total, state.memory_total, state.disk_total),
        "used": _resources(state.cpu_used, state.memory_used, state.disk_used),
        "idle": _resources(state.cpu_total - state.cpu_used,
                           state.memory_total - state.memory_used,
                           state.disk_total - state.disk_used),
        "vms": list(vms),
    }


def server_state(dc: str, node: str, obj: Mapping[str, Any], up: bool = True) -> ServerState:
    """The `ServerState` of one entry of a report's ``servers`` (inverse of `server_json`)."""
    capacity, used = obj["capacity"], obj["used"]
    return ServerState(str(obj["id"]), dc, node, float(capacity["cpu"]), float(used["cpu"]),
                       float(capacity["memory_gb"]), float(used["memory_gb"]),
                       float(capacity["disk_gb"]), float(used["disk_gb"]), up)


class Agent:
    """One data centre's servers and VMs: placement, addresses, aliases, persistence, reports."""

    def __init__(self, dc: DataCentre, data_ip: str, aliases: AliasManager, store: VmStore,
                 clock: Callable[[], float] = time.time):
        self.dc = dc
        self.data_ip = data_ip
        self.aliases = aliases
        self.store = store
        self.clock = clock
        network = ipaddress.IPv4Network(f"{data_ip}/24", strict=False)
        self._own_prefix = str(network.network_address).rsplit(".", 1)[0]
        self._servers = {server.id: server for server in dc.servers}
        self._vms: dict[str, Vm] = {}
        self._lock = threading.Lock()  # placement decisions; never held across a command

    # -- queries -------------------------------------------------------------------------------

    def vms(self) -> list[Vm]:
        """Every VM, in creation order."""
        return list(self._vms.values())

    def vm(self, vm_id: str) -> Vm:
        """The VM ``vm_id``; AgentError ``unknown-vm`` when there is none."""
        vm = self._vms.get(vm_id)
        if vm is None:
            raise AgentError("unknown-vm", f"no VM {vm_id!r} in {self.dc.id}")
        return vm

    def vm_by_ip(self, ip: str) -> Optional[Vm]:
        """The VM with address ``ip``, if any."""
        return next((vm for vm in self._vms.values() if vm.ip == ip), None)

    def server_states(self) -> list[ServerState]:
        """Every server's capacity and use, in the topology file's order."""
        return [self._state(server_id) for server_id in self._servers]

    def _state(self, server_id: str) -> ServerState:
        server = self._servers[server_id]
        state = ServerState(server.id, self.dc.id, self.dc.node, server.cpu, 0.0,
                            server.memory_gb, 0.0, server.disk_gb, 0.0)
        for vm in self._vms.values():
            if vm.server == server_id:
                state = state.allocate(vm.demand) if state.fits(vm.demand) else _overcommit(
                    state, vm)
        return state

    def report(self) -> dict[str, Any]:
        """Capacity, use and VMs of the DC and of each server (``GET /agent/v1/state``)."""
        states = self.server_states()
        servers = [server_json(state, [vm.id for vm in self._vms.values()
                                       if vm.server == state.server]) for state in states]
        totals = {key: _resources(*(sum(s[key][r] for s in servers)
                                    for r in ("cpu", "memory_gb", "disk_gb")))
                  for key in ("capacity", "used", "idle")}
        return {"dc": self.dc.id, "node": self.dc.node, "kind": self.dc.kind,
                "data_ip": self.data_ip, "time": self.clock(), "servers": servers,
                "totals": totals, "vms": [vm.to_json() for vm in self._vms.values()]}

    # -- changes -------------------------------------------------------------------------------

    def restore(self) -> list[Vm]:
        """Load the stored VMs and make the interface's aliases match them; the VMs restored.

        A stored VM on a server the topology no longer has is dropped (logged); an alias in
        10.2.0.0/16 that no VM owns (left by a crash between alias and database) is removed.
        """
        for vm in self.store.load():
            if vm.server not in self._servers:
                LOG.warning("dropping stored VM %s: %s has no server %s", vm.id, self.dc.id,
                            vm.server)
                self.store.remove(vm.id)
                continue
            self._vms[vm.id] = vm
        for vm in self._vms.values():
            self.aliases.add(vm.ip)
        owned = {vm.ip for vm in self._vms.values()} | {self.data_ip}
        for ip in sorted(self.aliases.addresses()):
            if ipaddress.IPv4Address(ip) in VM_NET and ip not in owned:
                LOG.warning("removing stray alias %s", ip)
                self.aliases.remove(ip)
        return self.vms()

    def allocate(self, vm_id: str, demand: Demand, server: Optional[str] = None,
                 ip: Optional[str] = None) -> Vm:
        """Place a VM (on ``server``, else the first that fits), give it an address, add it."""
        with self._lock:
            if vm_id in self._vms:
                raise AgentError("vm-exists", f"{self.dc.id} already has a VM {vm_id!r}")
            chosen = self._place(demand, server)
            address = self._check_ip(ip) if ip is not None else self._next_ip()
            vm = Vm(vm_id, chosen, address, demand.cpu, demand.memory_gb, demand.disk_gb,
                    self.clock())
            self._vms[vm_id] = vm  # held from now on, so a concurrent request sees it taken
        try:
            self.aliases.add(vm.ip)
        except AliasError as exc:
            self._vms.pop(vm_id, None)
            raise AgentError("alias-failed", str(exc)) from None
        try:
            self.store.add(vm)
        except sqlite3.Error as exc:
            self._vms.pop(vm_id, None)
            self.aliases.remove(vm.ip)
            raise AgentError("store-failed", f"cannot store VM {vm_id}: {exc}") from None
        LOG.info("VM %s on %s at %s (%s)", vm.id, vm.server, vm.ip, demand_text(demand))
        return vm

    def release(self, vm_id: str) -> Vm:
        """Remove a VM: its alias first, then its record; the VM released."""
        vm = self.vm(vm_id)
        try:
            self.aliases.remove(vm.ip)
        except AliasError as exc:
            raise AgentError("alias-failed", str(exc)) from None
        self.store.remove(vm_id)
        self._vms.pop(vm_id, None)
        LOG.info("VM %s released from %s (%s)", vm.id, vm.server, vm.ip)
        return vm

    def _place(self, demand: Demand, server: Optional[str]) -> str:
        if server is not None:
            if server not in self._servers:
                raise AgentError("unknown-server", f"{self.dc.id} has no server {server!r}")
            if not self._state(server).fits(demand):
                raise AgentError("server-full", f"{demand_text(demand)} does not fit on "
                                 f"{server} ({_idle_text(self._state(server))})")
            return server
        for state in self.server_states():
            if state.fits(demand):
                return state.server
        raise AgentError("no-capacity", f"no server of {self.dc.id} has room for "
                         f"{demand_text(demand)}")

    def _check_ip(self, ip: str) -> str:
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError:
            raise AgentError("bad-address", f"{ip!r} is not an IPv4 address") from None
        last = int(address) & 0xff
        if address not in VM_NET or not FIRST_ALIAS <= last <= LAST_ALIAS:
            raise AgentError("bad-address", f"{ip} is not a VM address (10.2.<i>.<n>, n from "
                             f"{FIRST_ALIAS} to {LAST_ALIAS})")
        owner = self.vm_by_ip(str(address))
        if owner is not None:
            raise AgentError("address-in-use", f"{address} is VM {owner.id}'s")
        return str(address)

    def _next_ip(self) -> str:
        used = {vm.ip for vm in self._vms.values()}
        for n in range(FIRST_ALIAS, LAST_ALIAS + 1):
            candidate = f"{self._own_prefix}.{n}"
            if candidate not in used:
                return candidate
        raise AgentError("no-address", f"every address of {self._own_prefix}.0/24 is in use")


def _overcommit(state: ServerState, vm: Vm) -> ServerState:
    # Only after a topology edit shrank a server under its stored VMs: report the truth.
    LOG.warning("server %s is over its capacity with VM %s", state.server, vm.id)
    return ServerState(state.server, state.dc, state.node, state.cpu_total,
                       state.cpu_used + vm.cpu, state.memory_total,
                       state.memory_used + vm.memory_gb, state.disk_total,
                       state.disk_used + vm.disk_gb)


def demand_text(demand: Demand) -> str:
    """``2 cpu, 4 GB memory, 10 GB disk``."""
    return f"{demand.cpu:g} cpu, {demand.memory_gb:g} GB memory, {demand.disk_gb:g} GB disk"


def _idle_text(state: ServerState) -> str:
    return (f"idle {state.cpu_total - state.cpu_used:g} cpu, "
            f"{state.memory_total - state.memory_used:g} GB memory, "
            f"{state.disk_total - state.disk_used:g} GB disk")


# -- content ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _content_block(name: str) -> bytes:
    seed = name.encode("utf-8")
    return b"".join(hashlib.sha256(seed + b":" + str(k).encode()).digest()
                    for k in range(CONTENT_BLOCK // 32))


def check_content_request(name: str, nbytes: Optional[int]) -> int:
    """The byte count to send for content ``name``; AgentError ``bad-content`` when invalid."""
    if not CONTENT_NAME.fullmatch(name):
        raise AgentError("bad-content", "content names have 1 to 128 letters, digits, '.', "
                         "'_' or '-' and start with a letter or digit")
    if nbytes is None:
        return DEFAULT_CONTENT_BYTES
    if not 0 <= nbytes <= MAX_CONTENT_BYTES:
        raise AgentError("bad-content", f"bytes must be from 0 to {MAX_CONTENT_BYTES}")
    return nbytes


def content_chunks(name: str, nbytes: int) -> Iterator[bytes]:
    """The first ``nbytes`` of content ``name``: the same bytes on every agent, every time."""
    block = _content_block(name)
    while nbytes > 0:
        chunk = block[:min(nbytes, len(block))]
        nbytes -= len(chunk)
        yield chunk


def content_digest(name: str, nbytes: int) -> str:
    """SHA-256 (hex) of the first ``nbytes`` of content ``name`` (to check a download)."""
    digest = hashlib.sha256()
    for chunk in content_chunks(name, nbytes):
        digest.update(chunk)
    return digest.hexdigest()
