"""The DC agents of an emulation: one `cso agent` per DC host, started in the host's namespaces.

Each agent listens on its host's management address (`cso.emulation.network.AgentPlan`), keeps
its state under ``<run dir>/agents/<dc>/`` and logs to ``<run dir>/agent-<dc>.log``; an agent
gets SIGTERM when `cso net` dies, however it dies.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable, Optional

from cso.emulation.network import AGENT_PORT, EmulationError, Plan

AGENTS_DIR = "agents"  # under the run dir: one state dir per agent


@dataclass(frozen=True)
class AgentOptions:
    """How the emulation runs the DC agents (`cso agent`, one per DC host)."""

    run_dir: str  # logs agent-<dc>.log and state dirs agents/<dc>/ go here
    port: int = AGENT_PORT
    token: Optional[str] = None
    timeout: float = 30.0  # seconds for every agent to answer


_PR_SET_PDEATHSIG = 1


def _death_signal(sig: int) -> Callable[[], None]:
    """A preexec_fn: the child gets ``sig`` when `cso net` dies, however it dies."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, only called after

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, sig)

    return arm


class Agents:
    """The DC agents (`cso agent`) of an emulation, one per DC host, in the hosts' namespaces."""

    def __init__(self, the_plan: Plan, pids: dict[str, int], options: AgentOptions):
        self.plan = the_plan
        self.pids = pids
        self.options = options
        self.processes: dict[str, subprocess.Popen] = {}

    def urls(self) -> dict[str, str]:
        """DC id -> base URL of its agent's management API."""
        return {agent.dc: agent.url(self.options.port) for agent in self.plan.agents}

    def log_path(self, dc: str) -> str:
        """The agent's log file."""
        return os.path.join(self.options.run_dir, f"agent-{dc}.log")

    def start(self) -> None:
        """Start every agent with an empty state dir: a new emulation has new DCs."""
        env = {key: value for key, value in os.environ.items() if key != "CSO_AGENT_TOKEN"}
        if self.options.token:
            env["CSO_AGENT_TOKEN"] = self.options.token  # not in argv: ps shows argv
        die_with_us = _death_signal(signal.SIGTERM)
        for agent in self.plan.agents:
            state_dir = os.path.join(self.options.run_dir, AGENTS_DIR, agent.dc)
            shutil.rmtree(state_dir, ignore_errors=True)
            os.makedirs(state_dir)
            argv = ["mnexec", "-a", str(self.pids[agent.host]), sys.executable, "-m", "cso",
                    "agent", "--dc", agent.dc, "--topo", os.path.abspath(self.plan.source),
                    "--listen", f"{agent.mgmt_ip}:{self.options.port}",
                    "--data-if", agent.data_if, "--state-dir", state_dir]
            with open(self.log_path(agent.dc), "ab") as log:
                self.processes[agent.dc] = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, start_new_session=True, preexec_fn=die_with_us)

    def wait_ready(self) -> None:
        """Wait until every agent answers from the root namespace; EmulationError if not."""
        deadline = time.monotonic() + self.options.timeout
        pending = {agent.dc: agent.url(self.options.port) for agent in self.plan.agents}
        last_error: dict[str, str] = {}
        while pending:
            for dc, url in list(pending.items()):
                process = self.processes[dc]
                if process.poll() is not None:
                    raise EmulationError(f"the agent of {dc} exited (code {process.returncode})"
                                         f"; log {self.log_path(dc)}:\n{_tail(self.log_path(dc))}")
                error = self._health(url)
                if error is None:
                    del pending[dc]
                else:
                    last_error[dc] = error
            if not pending:
                return
            if time.monotonic() > deadline:
                raise EmulationError(
                    f"agents not answering over the management network after "
                    f"{self.options.timeout:g} s: " + "; ".join(
                        f"{dc} at {url}: {last_error.get(dc, '?')}"
                        for dc, url in pending.items()))
            time.sleep(0.2)

    def _health(self, url: str) -> Optional[str]:
        """None when the agent answers its health check, else why not."""
        headers = {"Authorization": f"Bearer {self.options.token}"} if self.options.token \
            else {}
        req = urllib.request.Request(f"{url}/agent/v1/health", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=1.0) as answer:
                answer.read()
                return None
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            return str(getattr(exc, "reason", None) or exc)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM every agent, then SIGKILL those still running after ``grace`` seconds."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"
