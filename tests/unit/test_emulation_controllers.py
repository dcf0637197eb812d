"""``cso net --controllers``: parsing, the switch -> controller plan, and the switch class that
connects each switch to its own domain's controller only."""
import argparse

import pytest

from cso.emulation import cli, controllers, network
from cso.emulation.controllers import ControllerError, assign, parse_address, parse_controllers
from cso.emulation.domain_switch import ControllerSwitch
from topologies.loader import load

THREE = load("three-domain")
PLAN = network.plan(THREE)
MAP = {"A": ("127.0.0.1", 6653), "B": ("127.0.0.1", 6654), "C": ("10.0.0.9", 6655)}


def test_parse_controllers_in_order():
    assert parse_controllers("A=127.0.0.1:6653, B=127.0.0.1:6654,C=10.0.0.9:6655") == MAP
    assert list(parse_controllers("C=h,A=h:1")) == ["C", "A"]
    assert parse_controllers("C=h") == {"C": ("h", 6653)}
    assert parse_address("::1:6653") == ("::1", 6653)


@pytest.mark.parametrize("text, message", [
    ("A", "'A' is not DOMAIN=HOST:PORT"),
    ("=h:1", "is not DOMAIN=HOST:PORT"),
    ("A=h:1,A=h:2", "domain A is given twice"),
    ("A=h:0", "'h:0' is not HOST:PORT"),
    ("A=h:x", "is not HOST:PORT"),
    ("A=", "is not HOST:PORT"),
])
def test_parse_controllers_refuses(text, message):
    with pytest.raises(ControllerError, match=message):
        parse_controllers(text)


def test_every_switch_gets_its_domains_controller():
    plan = assign(THREE, PLAN, MAP)
    assert set(plan) == {s.name for s in PLAN.switches}
    for switch in PLAN.switches:
        assert plan[switch.name] == MAP[THREE.nodes[switch.node].domain]
    assert sum(address == MAP["B"] for address in plan.values()) == 5


@pytest.mark.parametrize("given, message", [
    ({"A": MAP["A"], "B": MAP["B"]}, "no controller for domain C"),
    ({**MAP, "D": ("h", 1)}, "no domain D in three-domain"),
    ({"A": MAP["A"], "X": ("h", 1)}, "no domain X in three-domain; no controller for domain B, C"),
])
def test_a_map_that_does_not_match_the_domains_is_refused(given, message):
    with pytest.raises(network.EmulationError, match=message) as info:
        assign(THREE, PLAN, given)
    assert "its domains: A, B, C" in str(info.value)


def test_the_command_line_takes_one_or_the_other():
    args = cli._parser().parse_args(["--topo", "three-domain", "--controllers",
                                     "A=127.0.0.1:6653,B=127.0.0.1:6654,C=10.0.0.9:6655"])
    assert args.controllers == MAP
    assert cli.switch_controllers(args, THREE, PLAN) == assign(THREE, PLAN, MAP)
    single = cli._parser().parse_args(["--controller", "10.0.0.1:7000"])
    assert single.controller == ("10.0.0.1", 7000) and single.controllers is None
    assert cli.switch_controllers(single, THREE, PLAN) is None
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["--controller", "h:1", "--controllers", "A=h:1"])
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["--controllers", "A"])


def test_a_missing_domain_stops_cso_net_with_a_usage_error(capsys, monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli, "run", lambda args, plan: pytest.fail("started"))
    code = cli.main(["--topo", "three-domain", "--controllers", "A=h:1,B=h:2"])
    assert code == 2
    assert "cso net: --controllers: no controller for domain C" in capsys.readouterr().err


def test_one_controller_for_a_topology_with_domains_is_still_fine():
    args = cli._parser().parse_args(["--topo", "three-domain"])
    assert args.controller == ("127.0.0.1", 6653)
    assert cli.switch_controllers(args, THREE, PLAN) is None


def test_controller_names_follow_first_use():
    addresses = list(assign(THREE, PLAN, MAP).values())
    assert controllers.distinct(addresses) == [MAP["A"], MAP["B"], MAP["C"]]
    assert controllers.controller_name(MAP["C"], addresses) == "c2"


class _Ctl:
    def __init__(self, name):
        self.name = name


def test_a_controller_switch_starts_with_its_own_controller_only(monkeypatch):
    started = []
    monkeypatch.setattr(ControllerSwitch.__mro__[1], "start",
                        lambda self, ctls: started.append([c.name for c in ctls]))
    switch = object.__new__(ControllerSwitch)
    all_three = [_Ctl("c0"), _Ctl("c1"), _Ctl("c2")]
    switch.own_controller = "c1"
    switch.start(all_three)
    switch.own_controller = None
    switch.start(all_three)
    assert started == [["c1"], ["c0", "c1", "c2"]]


def test_argparse_type_errors_are_argparse_errors():
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_controllers("nonsense")
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_controller("h:99999")
