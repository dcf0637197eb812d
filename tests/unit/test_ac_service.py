"""The AC's wiring: strategies from the settings, the real ARAE over real agents on HTTP, the
housekeeping green thread, and the ``cso ac`` command (check-config, and a real start/stop)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from ac_app import cli_ac, service as service_mod
from ac_app.dc_agent.agent import Agent, VmStore
from ac_app.dc_agent.api import management_app
from ac_app.arae import Arae
from ac_app.asi_client import AsiClient
from ac_app.config import parse_string
from ac_app.service import AcService, build_sse
from ac_app.sse import (ApplicationBalancing, GlobalLoadBalancing, NetworkBalancing,
                        RandomBalancing)
from ac_harness import AC_TOKEN, USERS, FakeAliases, Lab, UaiClient, WsgiTransport, config_text
from cso import main as cso_main
from cso_base.wsgi import Server
from sc_harness import make_sc, state_dir  # noqa: F401 (fixture)

import eventlet  # noqa: E402,I100 - after cso_base.wsgi, which silences eventlet's notice

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
REQS = "/uai/v1/requests"
VOD = {"type": "vod", "src": "10.1.0.1", "content": "movie"}


@pytest.mark.parametrize("name, cls, params", [
    ("GLB", GlobalLoadBalancing, {"a": 0.25, "b": 0.75, "k": 3}),
    ("AB", ApplicationBalancing, {"a": 0.25}),
    ("NB", NetworkBalancing, {"a": 0.25}),
])
def test_build_sse_passes_the_parameters_each_strategy_takes(name, cls, params):
    settings = parse_string(config_text(name, glb_a=0.25, glb_b=0.75, glb_k=3))
    sse = build_sse(settings)
    assert type(sse.strategy) is cls and vars(sse.strategy) == params and sse.name == name


def test_build_sse_seeds_rb():
    settings = parse_string(config_text("RB", random_seed=7))
    first, second = build_sse(settings).strategy, build_sse(settings).strategy
    assert type(first) is RandomBalancing
    assert [first.rng.random() for _ in range(3)] == [second.rng.random() for _ in range(3)]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AgentLab:
    """Real agents (REST on eventlet, port 0) for some DCs of NSFNET."""

    def __init__(self, tmp_path, topology, dcs):
        self.agents, self.servers = {}, {}
        for node in topology.nodes.values():
            if node.dc is None or node.dc.id not in dcs:
                continue
            data_ip = f"10.2.{node.id}.1"
            agent = Agent(node.dc, data_ip, FakeAliases(data_ip),
                          VmStore(str(tmp_path / node.dc.id / "agent.db")))
            self.agents[node.dc.id] = agent
            self.servers[node.dc.id] = Server(management_app(agent), "127.0.0.1", 0).start()

    def urls(self):
        return ", ".join(f"{dc}:{server.url}" for dc, server in self.servers.items())

    def close(self):
        for dc, server in self.servers.items():
            server.stop()
            self.agents[dc].store.close()


def test_the_real_arae_over_http_feeds_the_procedure(tmp_path, state_dir):
    sc = make_sc(state_dir, topology="nsfnet", tokens={"ac": AC_TOKEN})
    agents = AgentLab(tmp_path, sc.topology, ("dc4", "dc7"))
    settings = parse_string(config_text("GLB", agents=agents.urls(),
                                        state_dir=str(tmp_path / "ac")))
    asi = AsiClient("http://sc.test", AC_TOKEN, send=WsgiTransport(sc.wsgi))
    service = AcService(settings, asi=asi)
    try:
        assert isinstance(service.arae, Arae)
        service.arae.poll_all()
        alice = UaiClient(service.app, USERS["alice"], [])
        reply = alice.post(REQS, VOD)
        assert reply.status == 201, reply.json
        body = reply.json
        assert body["dc"] == "dc7"  # Seattle-Urbana is one hop; Boulder three
        assert agents.agents["dc7"].vm(body["id"]).ip == body["vm_ip"]
        # The procedure asked the agent for its new state: the ARAE sees the VM already.
        assert service.arae.state("dc7").vms == 1
        mgr = UaiClient(service.app, USERS["mgr"], [])
        dcs = {d["dc"]: d for d in mgr.get("/uai/v1/dcs").json["dcs"]}
        assert dcs["dc7"]["used"]["cpu"] == 1 and dcs["dc4"]["used"]["cpu"] == 0
        assert alice.delete(f"{REQS}/{body['id']}").json["leftovers"] == []
        assert agents.agents["dc7"].vms() == [] and sc.core.service.lightpaths == {}
        # An agent that stops answering: its DC is left out, the other one serves.
        agents.servers["dc7"].stop()
        for _ in range(settings.agent_failures):
            service.arae.poll("dc7")
        body = alice.post(REQS, VOD).json
        assert (body["status"], body["dc"]) == ("active", "dc4")
    finally:
        service.close()
        agents.close()
        sc.close()


def test_housekeeping_runs_in_a_green_thread(state_dir, monkeypatch):
    monkeypatch.setattr(service_mod, "HOUSEKEEPING_INTERVAL", 0.01)
    lab = Lab(state_dir)
    try:
        lab.service.start()
        assert lab.arae.running
        body = lab.user("alice").post(REQS, {**VOD, "duration_s": 5}).json
        lab.clock.advance(5)
        eventlet.sleep(0.05)
        assert lab.user("alice").get(f"{REQS}/{body['id']}").json["end_reason"] == "expired"
        assert lab.held() == ({}, [], 0)
        lab.service.stop()
        assert not lab.arae.running
    finally:
        lab.close()


# -- the command -------------------------------------------------------------------------------

def write_config(tmp_path, text):
    path = tmp_path / "ac.conf"
    path.write_text(text)
    return str(path)


def test_check_config_accepts_the_shipped_demo_config(capsys):
    assert cso_main.main(["ac", "check-config", os.path.join(ROOT, "etc", "ac.conf")]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "strategy GLB" in out and "5 agent(s)" in out


def test_check_config_lists_every_problem(tmp_path, capsys):
    path = write_config(tmp_path, "[ac]\nstrategy = best\nusers = x:admin:t\nsc_token =\n"
                                  "colour = red\n")
    assert cli_ac.main(["check-config", path]) == 1
    err = capsys.readouterr().err
    for word in ("strategy", "users", "sc_token", "colour"):
        assert word in err


@pytest.mark.parametrize("flag", ["--config", "--config-file"])
def test_ac_refuses_to_start_on_a_bad_config(tmp_path, flag):
    # In a process of its own: `cso ac` monkey-patches the process it runs in. --config-file is
    # the flag `cso sc` takes, accepted here too.
    path = write_config(tmp_path, "[ac]\nlisten_port = 99999\n")
    done = subprocess.run([sys.executable, "-m", "cso.main", "ac", flag, path], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "invalid configuration" in done.stderr and "listen_port" in done.stderr


def test_cso_ac_serves_uai_and_stops_on_sigterm(tmp_path):
    port, dead = free_port(), free_port()
    path = write_config(tmp_path, config_text(
        "GLB", listen_host="127.0.0.1", listen_port=port, state_dir=str(tmp_path / "state"),
        sc_url=f"http://127.0.0.1:{dead}", agent_timeout=0.2,
        agents=f"dc1:http://127.0.0.1:{dead}"))
    proc = subprocess.Popen([sys.executable, "-m", "cso.main", "ac", "--config", path,
                             "--log-level", "warning"], cwd=ROOT, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}/uai/v1"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1) as answer:
                    assert json.load(answer)["status"] == "ok"
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "cso ac did not start"
                time.sleep(0.1)
        # No agent answers: no server is known, the application stratum refuses.
        req = urllib.request.Request(f"{base}/requests", data=json.dumps(VOD).encode(),
                                     method="POST", headers={
                                         "Authorization": f"Bearer {USERS['alice']}",
                                         "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(req, timeout=5)
        body = json.loads(answer.value.read())
        assert (answer.value.code, body["stratum"], body["reason"]) == (
            409, "application", "no-server-fits")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
        assert os.path.exists(tmp_path / "state" / "ac.db")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
