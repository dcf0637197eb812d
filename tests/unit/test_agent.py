"""The DC agent: placement, addresses, aliases, persistence, content, its REST API and command."""
import json
import os
import subprocess

import pytest
from webob import Request

from ac_app.dc_agent import cli as cli_agent
from ac_app.dc_agent.agent import (DB_FILE, MAX_CONTENT_BYTES, Agent, AgentError, AliasError,
                                   IpAliases, VmStore, check_content_request, content_chunks,
                                   content_digest, server_state)
from ac_app.dc_agent.api import content_app, management_app
from ac_app.resources import Demand
from cso.emulation import network as emulation
from topologies.loader import load
from topologies.model import DataCentre, Server

DC = DataCentre("dc3", "3", (Server("dc3-s0", 4, 8.0, 100.0), Server("dc3-s1", 8, 16.0, 200.0)))
DATA_IP = "10.2.3.1"


class FakeAliases:
    """An interface's address set; ``fail`` makes the next add/remove raise."""

    def __init__(self, *addresses: str):
        self.set = {DATA_IP, *addresses}
        self.fail = False
        self.calls: list[tuple[str, str]] = []

    def add(self, ip):
        self.calls.append(("add", ip))
        if self.fail:
            raise AliasError(f"cannot add {ip}")
        self.set.add(ip)

    def remove(self, ip):
        self.calls.append(("remove", ip))
        if self.fail:
            raise AliasError(f"cannot remove {ip}")
        self.set.discard(ip)

    def addresses(self):
        return set(self.set)


@pytest.fixture
def store(tmp_path):
    the_store = VmStore(str(tmp_path / DB_FILE))
    yield the_store
    the_store.close()


@pytest.fixture
def aliases():
    return FakeAliases()


@pytest.fixture
def agent(store, aliases):
    return Agent(DC, DATA_IP, aliases, store, clock=lambda: 1000.0)


def refused(func, *args, **kwargs) -> str:
    with pytest.raises(AgentError) as info:
        func(*args, **kwargs)
    return info.value.code


# -- placement and addresses -----------------------------------------------------------------


def test_allocate_places_first_fit_and_adds_the_next_alias(agent, aliases):
    vm = agent.allocate("a", Demand(2, 4, 10))
    assert (vm.server, vm.ip, vm.created) == ("dc3-s0", "10.2.3.2", 1000.0)
    assert "10.2.3.2" in aliases.set
    big = agent.allocate("b", Demand(4, 8, 0))  # does not fit what is left on s0
    assert (big.server, big.ip) == ("dc3-s1", "10.2.3.3")
    s0, s1 = agent.server_states()
    assert (s0.cpu_used, s0.memory_used, s0.disk_used) == (2, 4, 10)
    assert (s1.cpu_used, s1.memory_used, s1.disk_used) == (4, 8, 0)


def test_report_gives_capacity_use_idle_and_vms(agent):
    agent.allocate("a", Demand(2, 4, 10))
    report = agent.report()
    assert (report["dc"], report["node"], report["data_ip"]) == ("dc3", "3", DATA_IP)
    s0 = report["servers"][0]
    assert s0["capacity"] == {"cpu": 4, "memory_gb": 8, "disk_gb": 100}
    assert s0["used"] == {"cpu": 2, "memory_gb": 4, "disk_gb": 10}
    assert s0["idle"] == {"cpu": 2, "memory_gb": 4, "disk_gb": 90}
    assert s0["vms"] == ["a"]
    assert report["totals"]["idle"] == {"cpu": 10, "memory_gb": 20, "disk_gb": 290}
    assert [vm["id"] for vm in report["vms"]] == ["a"]
    assert server_state("dc3", "3", s0) == agent.server_states()[0]


def test_release_frees_resources_and_address_for_reuse(agent, aliases):
    agent.allocate("a", Demand(2, 4))
    agent.allocate("b", Demand(1, 1))
    released = agent.release("a")
    assert released.ip == "10.2.3.2"
    assert "10.2.3.2" not in aliases.set
    assert agent.server_states()[0].cpu_used == 1
    assert agent.allocate("c", Demand(1, 1)).ip == "10.2.3.2"
    assert refused(agent.release, "a") == "unknown-vm"
    assert refused(agent.vm, "a") == "unknown-vm"


def test_given_server_must_exist_and_fit(agent):
    assert agent.allocate("a", Demand(1, 1), server="dc3-s1").server == "dc3-s1"
    assert refused(agent.allocate, "b", Demand(1, 1), server="nope") == "unknown-server"
    assert refused(agent.allocate, "b", Demand(5, 1), server="dc3-s0") == "server-full"
    assert refused(agent.allocate, "b", Demand(1, 1, 101), server="dc3-s0") == "server-full"


def test_refusals_leave_nothing_taken(agent, aliases):
    assert refused(agent.allocate, "a", Demand(9, 1)) == "no-capacity"
    assert refused(agent.allocate, "a", Demand(1, 17)) == "no-capacity"
    agent.allocate("a", Demand(1, 1))
    assert refused(agent.allocate, "a", Demand(1, 1)) == "vm-exists"
    assert [vm.id for vm in agent.vms()] == ["a"]
    assert aliases.set == {DATA_IP, "10.2.3.2"}


def test_exact_fit_is_accepted(agent):
    agent.allocate("a", Demand(4, 8, 100))
    assert agent.server_states()[0].cpu_used == 4
    assert agent.allocate("b", Demand(0.1, 0.1)).server == "dc3-s1"


def test_given_address_for_a_migrated_vm(agent, aliases):
    vm = agent.allocate("m", Demand(1, 1), ip="10.2.9.7")  # it came from dc9: keeps its address
    assert vm.ip == "10.2.9.7" and "10.2.9.7" in aliases.set
    assert agent.allocate("n", Demand(1, 1)).ip == "10.2.3.2"
    assert refused(agent.allocate, "x", Demand(1, 1), ip="10.2.9.7") == "address-in-use"


@pytest.mark.parametrize("ip", ["10.1.0.5", "10.2.3.1", "10.2.3.255", "10.2.3.0", "10.3.3.3",
                                "x", "10.2.3", "10.2.3.300"])
def test_bad_given_address_is_refused(agent, ip):
    assert refused(agent.allocate, "a", Demand(1, 1), ip=ip) == "bad-address"
    assert agent.vms() == []


def test_addresses_run_out(agent):
    for n in range(253):
        agent.allocate(f"v{n}", Demand(0, 0))
    assert refused(agent.allocate, "last", Demand(0, 0)) == "no-address"


def test_failed_alias_rolls_back(agent, aliases, store):
    aliases.fail = True
    assert refused(agent.allocate, "a", Demand(1, 1)) == "alias-failed"
    assert agent.vms() == [] and store.load() == []
    assert agent.server_states()[0].cpu_used == 0
    aliases.fail = False
    agent.allocate("a", Demand(1, 1))
    aliases.fail = True
    assert refused(agent.release, "a") == "alias-failed"
    assert [vm.id for vm in agent.vms()] == ["a"]  # still there: its address still is


# -- persistence -----------------------------------------------------------------------------


def test_restart_keeps_vms_and_re_adds_aliases(tmp_path):
    path = str(tmp_path / DB_FILE)
    first_store = VmStore(path)
    first = Agent(DC, DATA_IP, FakeAliases(), first_store)
    first.allocate("a", Demand(2, 4, 10))
    first.allocate("b", Demand(1, 1), server="dc3-s1", ip="10.2.9.9")
    first.allocate("c", Demand(1, 1))
    first.release("c")
    first_store.close()
    assert os.path.exists(path)

    # The host lost a's alias and has a stray one (a crash between alias and database).
    fresh = FakeAliases("10.2.9.9", "10.2.3.40", "10.1.3.1")
    second = Agent(DC, DATA_IP, fresh, VmStore(path))
    restored = second.restore()
    assert [(vm.id, vm.server, vm.ip) for vm in restored] == [
        ("a", "dc3-s0", "10.2.3.2"), ("b", "dc3-s1", "10.2.9.9")]
    assert fresh.set == {DATA_IP, "10.2.3.2", "10.2.9.9", "10.1.3.1"}
    assert second.server_states()[0].cpu_used == 2
    assert second.allocate("d", Demand(1, 1)).ip == "10.2.3.3"


def test_restore_drops_vms_of_servers_gone_from_the_topology(tmp_path):
    path = str(tmp_path / DB_FILE)
    store = VmStore(path)
    Agent(DC, DATA_IP, FakeAliases(), store).allocate("a", Demand(1, 1), server="dc3-s1")
    smaller = DataCentre("dc3", "3", DC.servers[:1])
    agent = Agent(smaller, DATA_IP, FakeAliases(), store)
    assert agent.restore() == []
    assert store.load() == []


def test_store_is_sqlite_in_wal_mode(store):
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- ip aliases ------------------------------------------------------------------------------


class FakeIp:
    """Records ``ip`` commands; answers from a script."""

    def __init__(self, answers=None):
        self.commands = []
        self.answers = answers or {}

    def __call__(self, argv, **_kwargs):
        self.commands.append(argv)
        code, out, err = self.answers.get(argv[1], (0, "", ""))
        return subprocess.CompletedProcess(argv, code, out, err)


def test_ip_aliases_commands():
    listing = ("3: dc3-eth0    inet 10.2.3.1/8 scope global dc3-eth0\\ ...\n"
               "3: dc3-eth0    inet 10.2.3.2/8 scope global secondary dc3-eth0\n")
    run = FakeIp({"-o": (0, listing, "")})
    aliases = IpAliases("dc3-eth0", run=run)
    aliases.add("10.2.3.2")
    aliases.remove("10.2.3.2")
    assert aliases.addresses() == {"10.2.3.1", "10.2.3.2"}
    assert run.commands == [
        ["ip", "addr", "replace", "10.2.3.2/8", "dev", "dc3-eth0"],
        ["ip", "addr", "del", "10.2.3.2/8", "dev", "dc3-eth0"],
        ["ip", "-o", "-4", "addr", "show", "dev", "dc3-eth0"]]


def test_ip_aliases_failures():
    run = FakeIp({"addr": (2, "", "RTNETLINK answers: Operation not permitted")})
    aliases = IpAliases("dc3-eth0", run=run)
    with pytest.raises(AliasError, match="not permitted"):
        aliases.add("10.2.3.2")
    with pytest.raises(AliasError, match="not permitted"):  # still listed: really failed
        IpAliases("dc3-eth0", run=FakeIp({
            "addr": (2, "", "not permitted"),
            "-o": (0, "inet 10.2.3.2/8 scope", "")})).remove("10.2.3.2")
    IpAliases("dc3-eth0", run=FakeIp({
        "addr": (2, "", "Cannot assign requested address")})).remove("10.2.3.2")  # gone: fine


# -- content ---------------------------------------------------------------------------------


def test_content_is_deterministic_and_exact_in_length():
    data = b"".join(content_chunks("movie", 200_000))
    assert len(data) == 200_000
    assert data == b"".join(content_chunks("movie", 200_000))
    assert data[:1000] != b"".join(content_chunks("other", 1000))
    assert b"".join(content_chunks("movie", 0)) == b""
    import hashlib
    assert content_digest("movie", 200_000) == hashlib.sha256(data).hexdigest()


def test_content_requests_are_bounded():
    assert check_content_request("movie.mp4", None) > 0
    assert check_content_request("m", MAX_CONTENT_BYTES) == MAX_CONTENT_BYTES
    for name, nbytes in (("movie", MAX_CONTENT_BYTES + 1), ("movie", -1), ("../x", 1),
                         ("", 1), ("a" * 200, 1), ("a b", 1)):
        with pytest.raises(AgentError):
            check_content_request(name, nbytes)


# -- REST API --------------------------------------------------------------------------------


def call(app, method, path, body=None, token=None, raw=None, ctype="application/json",
         host=None):
    req = Request.blank(path, method=method)
    if host:
        req.host = host
    if raw is not None or body is not None:
        req.body = raw if raw is not None else json.dumps(body).encode()
        req.content_type = ctype
    if token:
        req.authorization = f"Bearer {token}"
    resp = req.get_response(app)
    return resp


def test_api_allocate_get_list_release(agent, aliases):
    app = management_app(agent)
    resp = call(app, "POST", "/agent/v1/vms", {"id": "vm-1", "cpu": 2, "memory_gb": 4,
                                               "disk_gb": 10})
    assert resp.status_int == 201, resp.body
    assert resp.headers["Location"].endswith("/agent/v1/vms/vm-1")
    assert resp.json["ip"] == "10.2.3.2" and resp.json["server"] == "dc3-s0"
    assert call(app, "GET", "/agent/v1/vms/vm-1").json["ip"] == "10.2.3.2"
    assert [vm["id"] for vm in call(app, "GET", "/agent/v1/vms").json["vms"]] == ["vm-1"]
    assert call(app, "GET", "/agent/v1/state").json["totals"]["used"]["cpu"] == 2
    assert len(call(app, "GET", "/agent/v1/servers").json["servers"]) == 2
    assert call(app, "GET", "/agent/v1/health").json == {"status": "ok", "dc": "dc3", "vms": 1}
    resp = call(app, "DELETE", "/agent/v1/vms/vm-1")
    assert resp.status_int == 200 and resp.json["id"] == "vm-1"
    assert "10.2.3.2" not in aliases.set
    assert call(app, "DELETE", "/agent/v1/vms/vm-1").status_int == 404


@pytest.mark.parametrize("body, status, code", [
    ({"id": "a", "cpu": 99, "memory_gb": 1}, 409, "no-capacity"),
    ({"id": "a", "cpu": 1, "memory_gb": 1, "server": "x"}, 422, "unknown-server"),
    ({"id": "a", "cpu": 5, "memory_gb": 1, "server": "dc3-s0"}, 409, "server-full"),
    ({"id": "a", "cpu": 1, "memory_gb": 1, "ip": "10.9.9.9"}, 422, "bad-address"),
    ({"id": "a", "cpu": 1, "memory_gb": 1, "ip": "nope"}, 422, "bad-address"),
    ({"id": "a", "cpu": 1}, 400, "missing-field"),
    ({"cpu": 1, "memory_gb": 1}, 400, "missing-field"),
    ({"id": "a", "cpu": -1, "memory_gb": 1}, 400, "invalid-field"),
    ({"id": "a", "cpu": True, "memory_gb": 1}, 400, "invalid-field"),
    ({"id": "a", "cpu": "2", "memory_gb": 1}, 400, "invalid-field"),
    ({"id": "a", "cpu": 1e300, "memory_gb": 1}, 400, "invalid-field"),
    ({"id": "a", "cpu": 1, "memory_gb": 1, "disk_gb": -0.5}, 400, "invalid-field"),
    ({"id": 5, "cpu": 1, "memory_gb": 1}, 400, "invalid-field"),
    ({"id": "a/b", "cpu": 1, "memory_gb": 1}, 400, "invalid-field"),
    ({"id": "", "cpu": 1, "memory_gb": 1}, 400, "invalid-field"),
    ({"id": "x" * 65, "cpu": 1, "memory_gb": 1}, 400, "invalid-field"),
    ({"id": "a", "cpu": 1, "memory_gb": 1, "ip": 7}, 400, "invalid-field"),
    ({"id": "a", "cpu": 1, "memory_gb": 1, "colour": "red"}, 400, "unknown-field"),
])
def test_api_bad_vm_requests_are_4xx_json(agent, body, status, code):
    resp = call(management_app(agent), "POST", "/agent/v1/vms", body)
    assert (resp.status_int, resp.json["error"]) == (status, code), resp.body
    assert resp.json["reason"]
    assert agent.vms() == []


@pytest.mark.parametrize("raw, ctype, status", [
    (b"", "application/json", 400), (b"{", "application/json", 400),
    (b"[1, 2]", "application/json", 400), (b'{"id": NaN}', "application/json", 400),
    (b'{"id": "a", "cpu": 1, "memory_gb": 1}', "text/plain", 415),
    (b"\xff", "application/json", 400), (b" " * 70000, "application/json", 413),
])
def test_api_bad_bodies_are_4xx_json(agent, raw, ctype, status):
    resp = call(management_app(agent), "POST", "/agent/v1/vms", raw=raw, ctype=ctype)
    assert resp.status_int == status
    assert resp.content_type == "application/json" and resp.json["error"]


def test_api_paths_methods_and_queries(agent):
    app = management_app(agent)
    assert call(app, "GET", "/agent/v1/vms/nope").status_int == 404
    assert call(app, "PUT", "/agent/v1/vms").status_int == 405
    assert call(app, "GET", "/agent/v2/state").status_int == 404
    assert call(app, "GET", "/agent/v1/state?x=1").json["error"] == "unknown-parameter"


def test_api_alias_failure_is_a_json_500_that_says_why(agent, aliases):
    aliases.fail = True
    resp = call(management_app(agent), "POST", "/agent/v1/vms",
                {"id": "a", "cpu": 1, "memory_gb": 1})
    assert (resp.status_int, resp.json["error"]) == (500, "alias-failed")
    assert "cannot add" in resp.json["reason"]


def test_api_token_when_configured(agent):
    app = management_app(agent, token="s3cret")
    for path in ("/agent/v1/health", "/agent/v1/state", "/agent/v1/vms"):
        assert call(app, "GET", path).status_int == 401
        assert call(app, "GET", path, token="wrong").status_int == 401
        assert call(app, "GET", path, token="s3cret").status_int == 200
    resp = call(app, "POST", "/agent/v1/vms", {"id": "a", "cpu": 1, "memory_gb": 1})
    assert resp.status_int == 401 and agent.vms() == []


def test_content_api(agent):
    agent.allocate("vm-1", Demand(1, 1))
    app = content_app(agent)
    resp = call(app, "GET", "/content/movie?bytes=100000", host="10.2.3.2:8080")
    assert resp.status_int == 200 and len(resp.body) == 100000
    assert resp.body == b"".join(content_chunks("movie", 100000))
    assert (resp.headers["X-CSO-DC"], resp.headers["X-CSO-VM"]) == ("dc3", "vm-1")
    assert "X-CSO-VM" not in call(app, "GET", "/content/movie?bytes=1",
                                  host="10.2.3.1:8080").headers
    for query, status in (("bytes=-1", 400), ("bytes=x", 400), ("bytes=1&bytes=2", 400),
                          (f"bytes={MAX_CONTENT_BYTES + 1}", 400), ("bytes=%D9%A1", 400),
                          ("other=1", 400)):
        resp = call(app, "GET", f"/content/movie?{query}")
        assert resp.status_int == status and resp.json["error"], query
    assert call(app, "GET", "/content/a%20b").status_int == 400
    assert call(app, "POST", "/content/movie").status_int == 405
    assert len(call(app, "GET", "/content/movie").body) == check_content_request("m", None)


# -- command ---------------------------------------------------------------------------------


def test_cli_finds_dc_by_id_or_node():
    nsfnet = load("nsfnet")
    assert cli_agent.find_dc(nsfnet, "dc7").id == "dc7"
    assert cli_agent.find_dc(nsfnet, "7").id == "dc7"
    with pytest.raises(LookupError, match="dc1, dc12"):
        cli_agent.find_dc(nsfnet, "3")


def test_cli_listen_addresses():
    parse = cli_agent.listen_address(8100)
    assert parse("10.255.0.8:9000") == ("10.255.0.8", 9000)
    assert parse("10.255.0.8") == ("10.255.0.8", 8100)
    assert parse(":9000") == ("0.0.0.0", 9000)
    for bad in ("x:y", "h:0", "h:70000"):
        with pytest.raises(Exception):
            parse(bad)


def test_cli_refuses_unknown_dc_or_topology(tmp_path, capsys):
    base = ["--data-if", "lo", "--state-dir", str(tmp_path)]
    assert cli_agent.main(["--dc", "dc99", *base]) == 1
    assert "no DC 'dc99'" in capsys.readouterr().err
    assert cli_agent.main(["--dc", "dc7", "--topo", str(tmp_path / "none.json"), *base]) == 1


# -- the emulation's plan for the agents -----------------------------------------------------


def test_emulation_plans_an_agent_per_dc_on_the_management_network():
    the_plan = emulation.plan(load("nsfnet"))
    assert [(a.dc, a.host, a.mgmt_ip, a.host_if, a.data_if, a.bridge_port, a.url())
            for a in the_plan.agents][2] == (
        "dc7", "dc7", "10.255.0.8", "dc7-eth1", "dc7-eth0", "cso-mgmt-dc7",
        "http://10.255.0.8:8100")
    assert [a.dc for a in the_plan.agents] == ["dc1", "dc4", "dc7", "dc9", "dc12"]
    names = the_plan.management_interfaces()
    assert names[:2] == ["cso-mgmt0", "cso-mgmt-root"] and len(names) == 7
    assert max(len(name) for name in names + ["cso-mgmt-dc255"]) <= 15  # IFNAMSIZ - 1
    assert (emulation.mgmt_ip(0), emulation.mgmt_ip(254), emulation.mgmt_ip(255)) == (
        "10.255.0.1", "10.255.0.255", "10.255.1.0")
    assert not set(names) & set(the_plan.interfaces())
