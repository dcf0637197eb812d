"""cso.simulation.stack: the live controllers' objects in one process, and the second driver
serving the fast engine's requests alike, request by request, with the same metrics."""
import json
from collections import Counter
from itertools import islice

import pytest

from ac_app.arae import AgentRefused
from ac_app.asi_client import AsiError
from ac_app.requests import Kind, RequestError
from ac_app.resources import Demand
from ac_app.sse import APPLICATION, NETWORK, get
from cso.simulation import cli as sim_cli
from cso.simulation.engine import Point, Scenario, Series, iter_requests
from cso.simulation.outcomes import OK, Served, TracedSimulator, compare
from cso.simulation.stack import AC_NAME, CsoStack, LocalAgent, LocalAsi, StackSimulator
from sc_app.lightpath import UP
from test_simulation import line_topology
from topologies.loader import load

#: NSFNET with W=3 and small servers: at 30 Erlang both strata refuse requests.
SCENARIO = Scenario(topo="nsfnet-small", requests=250, warmup=50)
LOAD = 30.0


class Clock:
    """The simulator's clock, settable."""

    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now


def both_drivers(point):
    """(engine result, its outcomes, stack result, its outcomes, the stack driver)."""
    fast = TracedSimulator(point)
    engine = fast.run()
    slow = StackSimulator(point)
    try:
        stack = slow.run()
    finally:
        slow.close()
    return engine, fast.served, stack, slow.served, slow


@pytest.mark.parametrize("strategy,policy", [("GLB", "first-fit"), ("NB", "first-fit"),
                                             ("RB", "first-fit"), ("AB", "first-fit"),
                                             ("GLB", "random-fit")])
def test_both_drivers_serve_every_request_alike(strategy, policy):
    point = Point(SCENARIO, Series(strategy, k=3, policy=policy), LOAD, 1)
    engine, fast, stack, slow, _ = both_drivers(point)
    agreement = compare(fast, slow)
    assert agreement["lengths"] == [300, 300]
    assert agreement["agree"] == 300, agreement["first_disagreements"]
    # Every kind of outcome happened: the comparison covers both strata's refusals.
    kinds = Counter(served.outcome for served in fast)
    assert kinds[OK] and kinds[NETWORK] and kinds[APPLICATION], kinds
    assert any(served.hops for served in fast) and any(
        served.outcome == OK and not served.hops for served in fast)   # remote and local
    assert stack["metrics"] == engine["metrics"]
    for key in ("requests", "accepted", "network_blocked", "application_blocked"):
        assert stack[key] == engine[key]


def test_the_stack_runs_on_the_simulators_clock():
    scenario = Scenario(topo="nsfnet-small", requests=40, warmup=0)
    point = Point(scenario, Series("GLB"), LOAD, 3)
    sim = StackSimulator(point)
    try:
        sim.run()
        trace = list(islice(iter_requests(3, scenario, sim.nodes, LOAD), 40))
        records = sim.stack.db.list()
        assert [r.created for r in records] == [t for t, *_ in trace]
        for record, (t, holding, *_rest) in zip(records, trace):
            if record.status == "released":      # departed before the last arrival
                assert record.ended == pytest.approx(t + holding, abs=1e-12)
            else:
                assert record.status in ("active", "refused")
    finally:
        sim.close()


def test_a_request_goes_through_every_part_and_its_release_gives_everything_back():
    clock = Clock(100.0)
    with CsoStack(load("nsfnet"), get("NB"), clock) as stack:
        record = stack.submit("2", Demand(2, 4, 10))       # no DC at node 2: a lightpath
        assert (record.status, record.created, record.strategy) == ("active", 100.0, "NB")
        lp = stack.sc.service.lightpaths[record.lightpath_id]
        assert lp.state == UP and lp.owner == AC_NAME and lp.hops >= 1
        assert list(lp.route) == record.lightpath["route"]
        assert lp.wavelength == record.lightpath["wavelength"]
        # The SA's install path ran: entries and a barrier to every switch on the route.
        assert stack.sci.barriers >= len(lp.route) and stack.sci.messages > stack.sci.barriers
        vm = stack.agents[record.dc].vm(record.id)
        assert (vm.server, vm.ip, vm.created) == (record.server, record.vm_ip, 100.0)
        assert stack.server(record.server).cpu_used == 2
        assert sum(len(stack.sc.ted.used(link.id)) for link in stack.topology.links) == lp.hops
        clock.now = 105.5
        released = stack.delete(record)
        assert (released.status, released.ended) == ("released", 105.5)
        assert not stack.sc.service.lightpaths and not stack.sc.db.list_lightpaths()
        assert not any(agent.vms() for agent in stack.agents.values())
        assert not any(stack.sc.ted.used(link.id) for link in stack.topology.links)
        assert stack.server(record.server).cpu_used == 0


def test_refusals_are_the_procedures_and_give_back_what_was_taken(tmp_path):
    topology = load(line_topology(tmp_path, [(2, 10)]))      # 0-1-2, W=1, a DC at node 2
    with CsoStack(topology, get("AB"), Clock()) as stack:
        first = stack.submit("0", Demand(1, 1, 1))
        assert first.lightpath["route"] == ["0", "1", "2"]
        # AB does not ask the network: the SA refuses the lightpath, the VM is given back.
        with pytest.raises(RequestError) as refused:
            stack.submit("1", Demand(1, 1, 1))
        err = refused.value
        assert (err.kind, err.stratum, err.reason) == (Kind.REFUSED, NETWORK, "no-wavelength")
        assert [vm.id for vm in stack.agents["dc"].vms()] == [first.id]
        assert stack.db.find(err.facts["id"]).status == "refused"
        with pytest.raises(RequestError) as full:
            stack.submit("2", Demand(2, 1, 1))
        assert (full.value.stratum, full.value.reason) == (APPLICATION, "no-server-fits")
        local = stack.submit("2", Demand(1, 1, 1))          # the user's own node: no fibre
        assert (local.lightpath["route"], local.lightpath["wavelength"]) == (["2"], None)


def test_the_network_port_speaks_for_the_sa_as_asi_would():
    with CsoStack(load("nsfnet"), get("GLB"), Clock()) as stack:
        asi = LocalAsi(stack.sc.service, "other-ac")
        answer = asi.evaluate("2", ["4", "no-such-node"])
        by_dst = {entry["dst"]: entry for entry in answer["results"]}
        assert by_dst["4"]["feasible"] and not by_dst["no-such-node"]["feasible"]
        with pytest.raises(AsiError) as bad:
            asi.establish("10.9.9.9", "10.2.4.2", "vm")
        assert (bad.value.status, bad.value.code) == (422, "unknown-endpoint")
        user = stack.topology.addresses.user_ip("2")
        with pytest.raises(AsiError) as constraint:
            asi.establish(user, "10.2.4.2", "vm", constraints={"max_hops": -1})
        assert (constraint.value.status, constraint.value.code) == (422, "invalid-constraint")
        with pytest.raises(AsiError) as no_path:
            asi.establish(user, "10.2.4.2", "vm", constraints={"max_hops": 0})
        assert (no_path.value.status, no_path.value.code, no_path.value.reason) == (
            409, "no-path", "hops-exceeded")
        lp = asi.establish(user, "10.2.4.2", "vm", constraints={"max_hops": 5})
        assert [x["id"] for x in asi.call("GET", "/asi/v1/lightpaths")["lightpaths"]] == [
            lp["id"]]
        assert LocalAsi(stack.sc.service, AC_NAME).call("GET", "/asi/v1/lightpaths") == {
            "lightpaths": []}                              # another AC's are not listed
        assert asi.teardown(lp["id"])["id"] == lp["id"]
        assert asi.teardown(lp["id"]) is None              # already gone, as over ASI
        with pytest.raises(AsiError) as unknown:
            asi.call("GET", "/asi/v1/topology")
        assert unknown.value.status == 404


def test_the_agent_port_refuses_as_the_agents_rest_api_would():
    with CsoStack(load("nsfnet"), get("GLB"), Clock(7.0)) as stack:
        agent = LocalAgent(stack.agents["dc4"])
        vm = agent.create_vm("vm-1", Demand(1, 1, 1), server="dc4-s1")
        assert (vm["server"], vm["created"]) == ("dc4-s1", 7.0)
        assert [v["id"] for v in agent.vms()] == ["vm-1"]
        assert agent.state()["vms"][0]["id"] == "vm-1"
        for call, status, code in ((lambda: agent.create_vm("vm-1", Demand(1)), 409,
                                    "vm-exists"),
                                   (lambda: agent.create_vm("vm-2", Demand(99)), 409,
                                    "no-capacity"),
                                   (lambda: agent.delete_vm("vm-9"), 404, "unknown-vm")):
            with pytest.raises(AgentRefused) as refused:
                call()
            assert (refused.value.status, refused.value.code) == (status, code)
        assert agent.delete_vm("vm-1")["id"] == "vm-1" and agent.vms() == []


def test_served_and_compare():
    a = [Served(OK, server="s1", route=("1", "2"), wavelength=0), Served(NETWORK, "x")]
    b = [Served(OK, server="s1", route=("1", "2"), wavelength=1), Served(NETWORK, "x")]
    assert a[0].hops == 1 and Served(OK, server="s", route=("1",)).hops == 0
    result = compare(a, b)
    assert (result["compared"], result["agree"]) == (2, 1)
    assert result["first_disagreements"][0]["request"] == 0
    assert result["first_disagreements"][0]["stack"]["wavelength"] == 1


FAST = ["--topo", "nsfnet-small", "--strategies", "GLB", "--loads", "30", "--requests", "60",
        "--warmup", "10", "--seeds", "2", "--quiet", "--json"]


def test_cso_sim_driver_stack_gives_the_engines_figures(capsys):
    assert sim_cli.main(FAST) == 0
    engine = json.loads(capsys.readouterr().out)
    assert sim_cli.main([*FAST, "--driver", "stack"]) == 0
    stack = json.loads(capsys.readouterr().out)
    assert (engine["parameters"]["driver"], stack["parameters"]["driver"]) == ("engine", "stack")

    def strip(rows):
        return [{k: v for k, v in row.items() if k != "requests_per_s"} for row in rows]

    assert strip(stack["results"]) == strip(engine["results"])


def test_cso_sim_driver_compare_reports_agreement_and_speeds(capsys):
    assert sim_cli.main([*FAST, "--driver", "compare"]) == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["rows"]
    assert (row["series"], row["seeds"], row["compared"], row["agree"]) == ("GLB", 2, 140, 140)
    assert row["same_metrics"] and row["engine_requests_per_s"] > row["stack_requests_per_s"] > 0
    assert out["parameters"]["driver"] == "compare" and len(out["runs"]) == 2
    assert sim_cli.main([*FAST[:-1], "--driver", "compare"]) == 0
    assert "140/140" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--driver", "stack", "--traffic", "rwa"],
                                  ["--driver", "compare", "--traffic", "rwa"],
                                  ["--driver", "stack", "--live", "http://ac", "--token", "t"]])
def test_cso_sim_driver_refuses_what_it_cannot_do(argv, capsys):
    assert sim_cli.main([*argv, "--requests", "10", "--quiet"]) == 2
    assert "cso sim" in capsys.readouterr().err
