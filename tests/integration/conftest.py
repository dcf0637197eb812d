"""Fixtures for integration tests: the real ``cso sc`` and ``cso net`` on Open vSwitch.

Every test here is marked ``integration`` and skipped, with the reason, unless it runs as root
with the tools of `harness.REQUIRED_TOOLS`. Logs go to ``$CSO_TEST_LOGS`` (default
``/tmp/cso-itest-logs``), one directory per run (the last 10 are kept), one per module or
test below it; a failing test's report shows the tail of each harness process still running.

Module-scoped (one SC and one emulation per test module; override ``sc_apps``,
``sc_options`` or ``net_topology`` in a module to change them):

- ``sc``: a started `harness.ScRun`; ``net``: a started `harness.NetRun` connected to it;
  ``ac``: a started `harness.AcRun` against both (the demo users and tokens; override
  ``ac_options`` in a module for more ``[ac]`` options).

Function-scoped, for tests that need their own processes:

- ``sc_factory(apps=(), options=None, wait_rest=True, **kwargs)`` -> started `ScRun`;
- ``net_factory(sc, topology="nsfnet")`` -> started `NetRun`; both stopped after the test.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from typing import Any, Callable, Iterator, Optional

import pytest

from cso.emulation import lab as harness

_HERE = os.path.dirname(os.path.abspath(__file__))
_SKIP_REASON = harness.missing_requirements()
LOG_BASE = os.environ.get("CSO_TEST_LOGS", "/tmp/cso-itest-logs")
KEEP_RUNS = 10
_LOG_ROOT: list[str] = []  # this run's log directory, once made


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark (and, when the machine cannot run them, skip) every test of this folder."""
    for item in items:
        if str(item.fspath).startswith(_HERE + os.sep):
            item.add_marker(pytest.mark.integration)
            if _SKIP_REASON:
                item.add_marker(pytest.mark.skip(reason=_SKIP_REASON))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On failure, add each running harness process's log path and tail to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and str(item.fspath).startswith(_HERE + os.sep):
        report.sections.append(("cso logs", f"logs of this run: {''.join(_LOG_ROOT)}"))
        for process in harness.running():
            report.sections.append((f"{process.name} log: {process.log_path}", process.tail()))


@pytest.fixture(scope="session")
def ovs() -> None:
    """Open vSwitch is running."""
    harness.ensure_ovs()


@pytest.fixture(scope="session")
def log_root() -> str:
    """This run's log directory under ``$CSO_TEST_LOGS``; the last ``KEEP_RUNS`` runs are kept.

    Not pytest's tmp_path: pytest keeps only its last three base directories per user, so
    other test runs on the same machine would delete a failed run's logs within minutes.
    """
    os.makedirs(LOG_BASE, exist_ok=True)
    runs = sorted(entry for entry in os.listdir(LOG_BASE) if entry.startswith("run-"))
    for old in runs[:-(KEEP_RUNS - 1)]:
        shutil.rmtree(os.path.join(LOG_BASE, old), ignore_errors=True)
    root = os.path.join(LOG_BASE, time.strftime("run-%Y%m%d-%H%M%S-") + str(os.getpid()))
    os.makedirs(root)
    _LOG_ROOT.append(root)
    return root


@pytest.fixture(scope="module")
def module_log_dir(log_root: str, request: pytest.FixtureRequest) -> str:
    """Log directory of the module's shared processes."""
    return os.path.join(log_root, request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture
def test_log_dir(log_root: str, request: pytest.FixtureRequest) -> str:
    """Log directory of one test's own processes."""
    return os.path.join(log_root, re.sub(r"[^\w.-]+", "_", request.node.nodeid))


@pytest.fixture(scope="module")
def sc_apps() -> list[str]:
    """Ryu apps the module's SC loads (none named: ``cso sc`` loads sc_app.app)."""
    return []


@pytest.fixture(scope="module")
def sc_options() -> dict[str, Any]:
    """Extra ``[sc]`` options for the module's SC."""
    return {}


@pytest.fixture(scope="module")
def sc_wait_rest() -> bool:
    """Whether the module's SC serves REST (wait for its port before the tests)."""
    return True


@pytest.fixture(scope="module")
def net_topology() -> str:
    """Topology the module's emulation and SC use."""
    return "nsfnet"


@pytest.fixture(scope="module")
def sc(ovs: None, module_log_dir: str, sc_apps: list[str], sc_options: dict[str, Any],
       sc_wait_rest: bool, net_topology: str) -> Iterator[harness.ScRun]:
    """The module's running SC."""
    run = harness.ScRun(module_log_dir, apps=sc_apps, topology=net_topology, options=sc_options)
    try:
        yield run.start(wait_rest=sc_wait_rest)
    finally:
        run.stop()


@pytest.fixture(scope="module")
def net(sc: harness.ScRun, module_log_dir: str, net_topology: str) -> Iterator[harness.NetRun]:
    """The module's emulation, every switch connected to ``sc``."""
    run = harness.start_net(module_log_dir, sc.ofp_port, net_topology)
    try:
        yield run
    finally:
        run.stop()


@pytest.fixture
def sc_factory(ovs: None, test_log_dir: str) -> Iterator[Callable[..., harness.ScRun]]:
    """Start SCs of the test's own (logs in ``test_log_dir``); stopped after the test."""
    started: list[harness.ScRun] = []

    def start(apps: tuple[str, ...] = (), options: dict[str, Any] | None = None,
              wait_rest: bool = True, **kwargs: Any) -> harness.ScRun:
        run = harness.ScRun(os.path.join(test_log_dir, f"sc{len(started)}"), apps=apps,
                            options=options, **kwargs)
        started.append(run)
        return run.start(wait_rest=wait_rest)

    try:
        yield start
    finally:
        for run in reversed(started):
            run.stop()


@pytest.fixture
def net_factory(test_log_dir: str) -> Iterator[Callable[..., harness.NetRun]]:
    """Start an emulation of the test's own, connected to a given SC; stopped after the test."""
    started: list[harness.NetRun] = []

    def start(sc: harness.ScRun, topology: str = "nsfnet") -> harness.NetRun:
        run = harness.start_net(os.path.join(test_log_dir, f"net{len(started)}"), sc.ofp_port,
                                topology)
        started.append(run)
        return run

    try:
        yield start
    finally:
        for run in reversed(started):
            run.stop()


@pytest.fixture(scope="module")
def ac_options() -> Optional[dict[str, Any]]:
    """``[ac]`` options of the module's AC beyond the lab's (override in a module)."""
    return None


@pytest.fixture(scope="module")
def ac(sc: harness.ScRun, net: harness.NetRun, module_log_dir: str,
       ac_options: Optional[dict[str, Any]]) -> Iterator[harness.AcRun]:
    """The module's AC (the demo users), once every fibre is up and every agent answers."""
    sc.wait_discovered()
    agents = net.state["agents"]
    assert len(agents) == 5
    run = harness.AcRun(module_log_dir, sc, agents, options=ac_options).start()
    try:
        deadline = time.monotonic() + 30
        while True:
            dcs = run.request("GET", "/uai/v1/dcs", token="demo-manager-token").json["dcs"]
            if len(dcs) == 5 and all(dc["available"] for dc in dcs):
                break
            assert time.monotonic() < deadline, f"DCs not all available: {dcs}"
            time.sleep(0.5)
        yield run
    finally:
        run.stop()
