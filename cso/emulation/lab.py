"""The lab: the real ``cso sc`` and ``cso net`` as subprocesses, and helpers to reach into
the emulation (run commands in hosts, ping, TCP transfers, flow tables).

Used by the integration tests (through the fixtures of ``tests/integration/conftest.py``),
by ``cso demo`` and by the live benchmarks.
Every process's output goes to a log file in its test's log directory; `running()` lists the
live ones so a failing test's report can show their tails.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from cso_base import http

BIN_DIR = os.path.dirname(sys.executable)
CSO = os.path.join(BIN_DIR, "cso")
REQUIRED_TOOLS = ("ovs-vsctl", "ovs-ofctl", "mnexec", "mn", "ethtool", "ip", "ss", "ping")
OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
#: cso.emulation.cli.LOCK_PATH; not imported so that a broken cso cannot hide
NET_LOCK = "/run/cso/net.lock"
DEMO_TOKENS = {"demo-ac": "demo-ac-token", "other-ac": "other-ac-token"}
#: UAI users of the demo (etc/ac.conf): name -> (role, token).
DEMO_USERS = {"demo-user": ("user", "demo-user-token"),
              "demo-manager": ("provider-manager", "demo-manager-token"),
              "other-user": ("user", "other-user-token")}

#: The summary ``ping`` prints when it ends.
PING_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")

_RUNNING: list["Process"] = []


def missing_requirements() -> Optional[str]:
    """Why integration tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "integration tests need root (Mininet, Open vSwitch)"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (run scripts/setup.sh)"
    if not os.access(CSO, os.X_OK):
        return f"{CSO} not found: run the tests with the project venv's python"
    return None


def ensure_ovs() -> None:
    """Start Open vSwitch (userspace datapath, no kernel module needed) unless it runs."""
    if _run(["ovs-vsctl", "--timeout=2", "show"]).returncode == 0:
        return
    result = _run([OVS_CTL, "start"])
    if result.returncode != 0 or _run(["ovs-vsctl", "--timeout=5", "show"]).returncode != 0:
        raise RuntimeError(f"cannot start Open vSwitch: {result.stdout}{result.stderr}")


def free_port() -> int:
    """A TCP port nothing listens on right now (for the SC's OpenFlow and REST listeners)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, predicate: Any, timeout: float = 10.0, step: float = 0.05) -> Any:
    """Poll ``predicate()`` until it gives something true, and return that; an
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)


def running() -> list["Process"]:
    """The harness's processes that are still registered (started and not stopped)."""
    return list(_RUNNING)


class Process:
    """A subprocess whose stdout and stderr go to ``log_dir/<name>.log``."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: str):
        self.name = name
        self.argv = list(argv)
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.popen: Optional[subprocess.Popen] = None

    def start(self) -> None:
        """Start it (in its own session, so a Ctrl-C of pytest does not reach it first)."""
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        _RUNNING.append(self)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self) -> None:
        """Raise with the log's tail when the process has exited."""
        if not self.alive():
            code = None if self.popen is None else self.popen.returncode
            raise RuntimeError(f"{self.name} exited (code {code}); log {self.log_path}:\n"
                               f"{self.tail()}")

    def stop(self, first: int = signal.SIGINT, grace: float = 10.0) -> Optional[int]:
        """Signal it (``first``, then SIGTERM, then SIGKILL) until it exits; its exit code."""
        if self in _RUNNING:
            _RUNNING.remove(self)
        if self.popen is None:
            return None
        for sig, wait in ((first, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if self.popen.poll() is not None:
                break
            self.popen.send_signal(sig)
            try:
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return self.popen.returncode

    def wait_listening(self, ports: Sequence[int], timeout: float) -> None:
        """Wait until every one of ``ports`` on 127.0.0.1 accepts connections (it has exited,
        or ``timeout`` passed: raise with the log's tail)."""
        deadline = time.monotonic() + timeout
        while not all(_listening(port) for port in ports):
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"cso {self.name} not listening on {list(ports)} after "
                                   f"{timeout:g} s; log {self.log_path}:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"


def ping_summary(output: str) -> Optional[tuple[int, int]]:
    """(sent, received) from ping's summary in ``output``; None when there is none."""
    found = PING_SUMMARY.search(output)
    return None if found is None else (int(found.group(1)), int(found.group(2)))


def wait_ping(ping: Process, timeout: float) -> tuple[int, int]:
    """Wait until a background ``ping`` (`NetRun.popen`) ends; (sent, received)."""
    if ping.popen is None:
        raise RuntimeError(f"{ping.name} was never started")
    ping.popen.wait(timeout)
    counts = ping_summary(ping.tail(5))
    if counts is None:
        raise RuntimeError(f"no ping summary in {ping.log_path}:\n{ping.tail(5)}")
    return counts


class ScRun:
    """``cso sc --config-file <generated>`` with its own ports, state dir and log."""

    def __init__(self, log_dir: str, apps: Sequence[str] = (), topology: str = "nsfnet",
                 options: Optional[Mapping[str, Any]] = None,
                 tokens: Mapping[str, str] = DEMO_TOKENS, extra_args: Sequence[str] = ()):
        self.log_dir = log_dir
        self.rest_port = free_port()
        self.ofp_port = free_port()
        self.state_dir = os.path.join(log_dir, "sc-state")
        self.config_path = os.path.join(log_dir, "sc.conf")
        sc_options = {"topology": topology, "state_dir": self.state_dir,
                      "ac_tokens": ", ".join(f"{ac}:{tok}" for ac, tok in tokens.items()),
                      **(options or {})}
        self.config_text = (
            "[DEFAULT]\nwsapi_host = 127.0.0.1\n"
            f"wsapi_port = {self.rest_port}\nofp_listen_host = 127.0.0.1\n"
            f"ofp_tcp_listen_port = {self.ofp_port}\n\n[sc]\n"
            + "".join(f"{key} = {value}\n" for key, value in sc_options.items()))
        self.process = Process("sc", [CSO, "sc", "--config-file", self.config_path,
                                      *extra_args, *apps], log_dir)

    @property
    def url(self) -> str:
        """Base URL of the SC's REST API."""
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self, timeout: float = 30.0, wait_rest: bool = True) -> "ScRun":
        """Start and wait until the OpenFlow port (and the REST port) accept connections."""
        _write(self.config_path, self.config_text)
        self.process.start()
        self.process.wait_listening([self.ofp_port] + ([self.rest_port] if wait_rest else []),
                                    timeout)
        return self

    def request(self, method: str, path: str, body: Any = None, token: Optional[str] = None,
                headers: Optional[Mapping[str, str]] = None,
                timeout: float = 10.0) -> http.Answer:
        """One HTTP request to the SC; ``body`` is sent as JSON unless it is bytes/str."""
        return http.request(method, self.url + path, body, token=token, headers=headers,
                            timeout=timeout)

    def wait_discovered(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until every fibre is usable and confirmed by LLDP; the SMI links."""
        deadline = time.monotonic() + timeout
        while True:
            links = self.request("GET", "/smi/v1/links").json["links"]
            if links and all(link["usable"] and link["discovered"] for link in links):
                return links
            if time.monotonic() > deadline:
                missing = [link["id"] for link in links if not link["discovered"]]
                raise TimeoutError(f"fibres not discovered after {timeout:g} s: {missing}")
            time.sleep(0.25)

    def stop(self) -> Optional[int]:
        """Stop the SC (SIGINT first: Ryu closes its apps on KeyboardInterrupt)."""
        return self.process.stop(signal.SIGINT)


class AcRun:
    """``cso ac --config <generated>`` against an SC and the emulation's agents."""

    def __init__(self, log_dir: str, sc: ScRun, agents: Mapping[str, str],
                 topology: str = "nsfnet", options: Optional[Mapping[str, Any]] = None,
                 users: Mapping[str, tuple[str, str]] = DEMO_USERS):
        self.log_dir = log_dir
        self.port = free_port()
        self.config_path = os.path.join(log_dir, "ac.conf")
        ac_options = {
            "topology": topology, "state_dir": os.path.join(log_dir, "ac-state"),
            "listen_host": "127.0.0.1", "listen_port": self.port, "sc_url": sc.url,
            "sc_token": DEMO_TOKENS["demo-ac"],
            "users": ", ".join(f"{name}:{role}:{token}"
                               for name, (role, token) in users.items()),
            "agents": ", ".join(f"{dc}:{url}" for dc, url in agents.items()),
            **(options or {})}
        self.config_text = "[ac]\n" + "".join(f"{k} = {v}\n" for k, v in ac_options.items())
        self.process = Process("ac", [CSO, "ac", "--config", self.config_path], log_dir)

    @property
    def url(self) -> str:
        """Base URL of the AC's UAI."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "AcRun":
        """Start and wait until UAI answers."""
        _write(self.config_path, self.config_text)
        self.process.start()
        self.process.wait_listening([self.port], timeout)
        return self

    def request(self, method: str, path: str, body: Any = None, token: Optional[str] = None,
                timeout: float = 30.0) -> http.Answer:
        """One HTTP request to the AC."""
        return http.request(method, self.url + path, body, token=token, timeout=timeout)

    def stop(self) -> Optional[int]:
        """Stop the AC."""
        return self.process.stop(signal.SIGTERM)


class NetRun:
    """``cso net --no-cli`` on a topology, and helpers to act inside its hosts and switches."""

    def __init__(self, log_dir: str, controller_port: int, topology: str = "nsfnet",
                 controller_host: str = "127.0.0.1"):
        self.topology = topology
        self.run_dir = os.path.join(log_dir, "net-run")
        self.state_path = os.path.join(self.run_dir, "state.json")
        self.process = Process("net", [CSO, "net", "--topo", topology, "--no-cli",
                                       "--controller", f"{controller_host}:{controller_port}",
                                       "--run-dir", self.run_dir], log_dir)
        self.log_dir = log_dir
        self.state: dict[str, Any] = {}

    def start(self, timeout: float = 90.0, lock_wait: float = 180.0) -> "NetRun":
        """Start and wait for the state file (written once every switch is connected).

        Another emulation on this machine (another test run) holds a lock: wait for it
        rather than fail, up to ``lock_wait`` seconds.
        """
        _wait_for_lock(NET_LOCK, lock_wait)
        self.process.start()
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.state_path):
            self.process.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"cso net not ready after {timeout:g} s; "
                                   f"log {self.process.log_path}:\n{self.process.tail()}")
            time.sleep(0.1)
        with open(self.state_path, encoding="utf-8") as handle:
            self.state = json.load(handle)
        return self

    def stop(self) -> None:
        """Stop the emulation and remove whatever it left (its own names only)."""
        try:
            self.process.stop(signal.SIGTERM, grace=30.0)
        finally:
            cleanup = _run([CSO, "net", "cleanup", "--topo", self.topology], timeout=60)
            with open(os.path.join(self.log_dir, "net-cleanup.log"), "w",
                      encoding="utf-8") as log:
                log.write(cleanup.stdout + cleanup.stderr)

    @property
    def hosts(self) -> dict[str, dict[str, Any]]:
        """Host name -> {pid, ip, mac, node, port, switch, kind, name} from the state file."""
        return self.state["hosts"]

    @property
    def switches(self) -> dict[str, dict[str, Any]]:
        """Switch name -> {dpid, node} from the state file."""
        return self.state["switches"]

    def ip(self, host: str) -> str:
        """IPv4 address of ``host`` (no prefix length)."""
        return self.hosts[host]["ip"]

    def exec(self, host: str, *argv: str, timeout: float = 20.0,
             check: bool = False) -> subprocess.CompletedProcess:
        """Run ``argv`` in ``host``'s namespaces (``mnexec -a PID``); text output captured."""
        self.process.check_alive()
        return _run(["mnexec", "-a", str(self.hosts[host]["pid"]), *argv], timeout=timeout,
                    check=check)

    def popen(self, host: str, *argv: str, log_name: str) -> Process:
        """Start ``argv`` in ``host`` in the background, logging to ``log_name``.log."""
        process = Process(log_name, ["mnexec", "-a", str(self.hosts[host]["pid"]), *argv],
                          self.log_dir)
        process.start()
        return process

    def ping(self, src: str, dst: str, count: int = 1, timeout: float = 1.0) -> bool:
        """True when every one of ``count`` pings from host ``src`` to ``dst`` (host or IP)
        is answered within ``timeout`` seconds."""
        target = self.ip(dst) if dst in self.hosts else dst
        result = self.exec(src, "ping", "-n", "-q", "-c", str(count), "-i", "0.2",
                           "-W", f"{timeout:g}", target, timeout=count * (timeout + 0.5) + 5)
        return result.returncode == 0

    def tcp_transfer(self, src: str, dst: str, nbytes: int = 1_000_000, port: int = 5001,
                     timeout: float = 15.0) -> "Transfer":
        """Send exactly ``nbytes`` over one TCP connection from host ``src`` to host ``dst``.

        A small Python receiver counts bytes until the sender's EOF, so the result is exact
        (iperf3's receiver totals can miss the last segments still in flight).
        """
        server = self.popen(dst, sys.executable, "-c", _TCP_SINK, str(port), str(timeout),
                            log_name=f"tcp-sink-{dst}-{port}")
        try:
            try:
                sent = self.exec(src, sys.executable, "-c", _TCP_SOURCE, self.ip(dst), str(port),
                                 str(nbytes), str(timeout), timeout=timeout + 5)
            except subprocess.TimeoutExpired:
                return Transfer(False, 0, 0.0, f"sender stuck for {timeout:g} s")
            if sent.returncode != 0:
                lines = sent.stderr.strip().splitlines()
                return Transfer(False, 0, 0.0, lines[-1] if lines else f"exit {sent.returncode}")
            server.popen.wait(timeout)
            received = int(server.tail(1).split()[-1])
            seconds = float(sent.stdout.split()[-1])
            return Transfer(received == nbytes, received, nbytes * 8 / max(seconds, 1e-9),
                            "" if received == nbytes else f"sent {nbytes}, received {received}")
        finally:
            server.stop(signal.SIGTERM, grace=2.0)

    def dump_flows(self, switch: str) -> list[str]:
        """``ovs-ofctl -O OpenFlow13 dump-flows SWITCH``, one string per flow entry."""
        out = _run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch], check=True).stdout
        return [line.strip() for line in out.splitlines() if line.strip().startswith("cookie=")]

    def switch_ports(self, switch: str) -> dict[int, str]:
        """OpenFlow port number -> interface name of ``switch`` (its LOCAL port left out)."""
        out = _run(["ovs-ofctl", "-O", "OpenFlow13", "show", switch], check=True).stdout
        return {int(num): name for num, name in re.findall(r"^\s*(\d+)\((\S+)\):", out, re.M)}


@dataclass
class Transfer:
    """Outcome of `NetRun.tcp_transfer`."""

    ok: bool
    received_bytes: int
    bits_per_second: float
    error: str = ""


# argv: PORT TIMEOUT. Prints the number of bytes received before the sender's EOF.
_TCP_SINK = """
import socket, sys
port, timeout = int(sys.argv[1]), float(sys.argv[2])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", port))
server.listen(1)
server.settimeout(timeout)
conn, _ = server.accept()
conn.settimeout(timeout)
total = 0
while True:
    data = conn.recv(1 << 16)
    if not data:
        break
    total += len(data)
print(total, flush=True)
conn.close()
"""

# argv: IP PORT NBYTES TIMEOUT. Retries while refused (the sink may not listen yet); prints
# the seconds from connect until the sink closed, i.e. had every byte.
_TCP_SOURCE = """
import socket, sys, time
ip, port, left, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + timeout
while True:
    try:
        conn = socket.create_connection((ip, port), timeout=min(timeout, 3.0))
        break
    except ConnectionRefusedError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
conn.settimeout(timeout)
start = time.monotonic()
chunk = bytes(1 << 16)
while left:
    left -= conn.send(chunk[:min(left, len(chunk))])
conn.shutdown(socket.SHUT_WR)
conn.recv(1)
print(time.monotonic() - start)
"""


def _run(argv: Sequence[str], timeout: float = 30.0,
         check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=check)


def _write(path: str, text: str) -> None:
    """Write ``text`` to the file ``path``, making its directory first."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_lock(path: str, timeout: float) -> None:
    """Wait until nobody holds the emulation lock (checked by taking and releasing it)."""
    if not os.path.exists(path):
        return
    deadline = time.monotonic() + timeout
    with open(path, encoding="utf-8") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another emulation holds {path} after {timeout:g} s")
                time.sleep(0.5)
                continue
            fcntl.flock(handle, fcntl.LOCK_UN)
            return


def start_net(log_dir: str, controller_port: int, topology: str = "nsfnet",
              attempts: int = 5) -> NetRun:
    """A started emulation; retried when another run took the machine's lock first.

    NetRun waits until the lock is free, but two runs waiting at once both see it free and
    only one gets it; the other's ``cso net`` exits at once saying so.
    """
    for attempt in range(1, attempts + 1):
        run = NetRun(os.path.join(log_dir, f"try{attempt}") if attempt > 1 else log_dir,
                     controller_port, topology=topology)
        try:
            return run.start()
        except RuntimeError as exc:
            run.process.stop()
            if "another emulation is running" not in str(exc) or attempt == attempts:
                raise
            time.sleep(1.0)
    raise AssertionError("not reached")
