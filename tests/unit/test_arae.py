"""ARAE against real agents served in-process (eventlet.wsgi on 127.0.0.1), and AgentClient."""
import time

import pytest

from ac_app.dc_agent.agent import DB_FILE, Agent, VmStore
from ac_app.dc_agent.api import management_app
from ac_app.arae import AgentClient, AgentRefused, AgentUnreachable, Arae
from ac_app.resources import AppView, Demand
from cso_base.rest import json_response
from cso_base.wsgi import Server, WsgiApp  # first: it silences eventlet's import notice
from topologies.model import DataCentre, Server as Machine

import eventlet  # noqa: E402,I100

from test_agent import FakeAliases  # noqa: E402


def datacentre(i: int) -> DataCentre:
    return DataCentre(f"dc{i}", str(i), (Machine(f"dc{i}-s0", 4, 8.0, 100.0),
                                         Machine(f"dc{i}-s1", 8, 16.0, 200.0)))


class Lab:
    """Agents of DCs 1 and 2 served on free ports; stop/start one to play a failure."""

    def __init__(self, tmp_path, token=None):
        self.token = token
        self.agents = {}
        self.servers = {}
        for i in (1, 2):
            dc = datacentre(i)
            store = VmStore(str(tmp_path / dc.id / DB_FILE))
            self.agents[dc.id] = Agent(dc, f"10.2.{i}.1", FakeAliases(), store)
            self.start(dc.id)

    def start(self, dc: str, port: int = 0) -> None:
        self.servers[dc] = Server(management_app(self.agents[dc], self.token), "127.0.0.1",
                                  port).start()

    def stop(self, dc: str) -> None:
        self.servers[dc].stop()
        eventlet.sleep(0)

    def urls(self) -> dict[str, str]:
        return {dc: server.url for dc, server in self.servers.items()}

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        for agent in self.agents.values():
            agent.store.close()


@pytest.fixture
def lab(tmp_path):
    the_lab = Lab(tmp_path)
    yield the_lab
    the_lab.close()


def test_poll_all_abstracts_every_dc(lab):
    arae = Arae(lab.urls(), timeout=2.0)
    assert arae.available() == []  # nothing heard yet
    lab.agents["dc1"].allocate("a", Demand(2, 4, 50))
    before = time.time()
    states = arae.poll_all()
    assert sorted(states) == ["dc1", "dc2"] and arae.available() == ["dc1", "dc2"]
    dc1 = states["dc1"]
    assert (dc1.node, dc1.vms, dc1.failures, dc1.error) == ("1", 1, 0, "")
    assert dc1.last_seen >= before
    assert dc1.capacity == {"cpu": 12, "memory_gb": 24, "disk_gb": 300}
    assert dc1.idle == {"cpu": 10, "memory_gb": 20, "disk_gb": 250}
    assert dc1.utilisation == {"cpu": 2 / 12, "memory": 4 / 24, "disk": 50 / 300}
    s0 = dc1.servers[0]
    assert (s0.server, s0.dc, s0.node, s0.cpu_used, s0.cpu_total, s0.up) == (
        "dc1-s0", "dc1", "1", 2, 4, True)
    json_view = dc1.to_json()
    assert json_view["available"] and json_view["servers"][0]["memory_used"] == 4


def test_app_view_feeds_the_strategies(lab):
    arae = Arae(lab.urls())
    arae.poll_all()
    view = arae.app_view()
    assert isinstance(view, AppView) and len(view) == 4
    assert [s.server for s in view.fitting(Demand(6, 1))] == ["dc1-s1", "dc2-s1"]


def test_vm_allocation_through_the_client_then_poll_on_demand(lab):
    arae = Arae(lab.urls())
    client = arae.client("dc2")
    vm = client.create_vm("v1", Demand(3, 6, 10), server="dc2-s1")
    assert (vm["server"], vm["ip"]) == ("dc2-s1", "10.2.2.2")
    moved = client.create_vm("v2", Demand(1, 1), ip="10.2.1.9")
    assert moved["ip"] == "10.2.1.9"
    assert arae.poll("dc2").used == {"cpu": 4, "memory_gb": 7, "disk_gb": 10}
    assert [v["id"] for v in client.vms()] == ["v1", "v2"]
    assert client.delete_vm("v1")["id"] == "v1"
    assert arae.poll("dc2").used["cpu"] == 1


def test_client_reports_refusals_with_the_agents_code(lab):
    client = AgentClient(lab.urls()["dc1"])
    with pytest.raises(AgentRefused) as info:
        client.create_vm("big", Demand(99, 1))
    assert (info.value.status, info.value.code) == (409, "no-capacity")
    with pytest.raises(AgentRefused) as info:
        client.delete_vm("nope")
    assert (info.value.status, info.value.code) == (404, "unknown-vm")
    with pytest.raises(AgentRefused) as info:
        client.request("GET", "/nope")
    assert info.value.code == "not-found"


def test_stopped_agent_makes_its_dc_unavailable_then_available_again(lab):
    arae = Arae(lab.urls(), timeout=1.0, max_failures=2)
    changes = []
    arae.subscribe(lambda state: changes.append((state.dc, state.available)))
    arae.poll_all()
    assert sorted(changes) == [("dc1", True), ("dc2", True)]  # polled at once: any order
    port = lab.servers["dc1"].port
    lab.stop("dc1")

    first = arae.poll("dc1")
    assert first.available and first.failures == 1 and first.error  # one miss is tolerated
    second = arae.poll("dc1")
    assert not second.available and second.failures == 2
    assert arae.available() == ["dc2"]
    assert changes[-1] == ("dc1", False)
    assert second.idle == {"cpu": 0, "memory_gb": 0, "disk_gb": 0}
    assert {s.server: s.up for s in arae.server_states()} == {
        "dc1-s0": False, "dc1-s1": False, "dc2-s0": True, "dc2-s1": True}
    assert arae.app_view().fitting(Demand(1, 1))[0].dc == "dc2"

    lab.start("dc1", port)
    assert arae.poll("dc1").available
    assert changes[-1] == ("dc1", True)


def test_agent_never_heard_is_unavailable_with_the_reason(lab):
    urls = lab.urls()
    lab.stop("dc2")
    arae = Arae(urls, timeout=1.0)
    states = arae.poll_all()
    assert states["dc1"].available and not states["dc2"].available
    assert "refused" in states["dc2"].error.lower()


def test_a_hanging_agent_times_out_without_blocking_the_others(lab):
    hang = WsgiApp("hang")
    hang.add("/agent/v1/state", "GET", lambda req: eventlet.sleep(30) or json_response({}))
    hanging = Server(hang, "127.0.0.1", 0).start()
    try:
        arae = Arae({**lab.urls(), "dc9": hanging.url}, timeout=0.3, max_failures=1)
        started = time.monotonic()
        states = arae.poll_all()
        assert time.monotonic() - started < 2.0
        assert states["dc1"].available and states["dc2"].available
        assert not states["dc9"].available and "0.3" in states["dc9"].error
        with pytest.raises(AgentUnreachable):
            AgentClient(hanging.url, timeout=0.2).state()
    finally:
        hanging.stop()


def test_malformed_reports_count_as_failures():
    odd = WsgiApp("odd")
    odd.add("/agent/v1/state", "GET", lambda req: json_response({"servers": "many"}))
    server = Server(odd, "127.0.0.1", 0).start()
    try:
        state = Arae({"dc5": server.url}, max_failures=1).poll("dc5")
        assert not state.available and "malformed" in state.error
    finally:
        server.stop()


def test_no_poll_success_for_stale_after_makes_a_dc_unavailable(lab):
    now = [100.0]
    arae = Arae(lab.urls(), interval=1.0, timeout=1.0, max_failures=3, stale_after=5.0,
                monotonic=lambda: now[0])
    arae.poll_all()
    now[0] += 4.0
    assert arae.state("dc1").available
    now[0] += 2.0
    state = arae.state("dc1")
    assert not state.available and "no answer for 5 s" in state.error
    assert arae.poll("dc1").available  # the agent answers again


def test_token_is_sent_and_a_wrong_one_is_refused(tmp_path):
    lab = Lab(tmp_path, token="agent-secret")
    try:
        assert Arae(lab.urls(), token="agent-secret").poll("dc1").available
        state = Arae(lab.urls(), token="wrong", max_failures=1).poll("dc1")
        assert not state.available and "unauthorized" in state.error
    finally:
        lab.close()


def test_periodic_polling_in_a_green_thread(lab):
    arae = Arae(lab.urls(), interval=0.05, timeout=1.0).start()
    try:
        eventlet.sleep(0.2)
        assert arae.available() == ["dc1", "dc2"]
        lab.agents["dc1"].allocate("a", Demand(1, 1))
        eventlet.sleep(0.2)
        assert arae.state("dc1").vms == 1
    finally:
        arae.stop()


def test_bad_settings_are_refused():
    for kwargs in ({"max_failures": 0}, {"interval": 0}, {"timeout": -1}):
        with pytest.raises(ValueError):
            Arae({}, **kwargs)
