"""Which controller each emulated switch connects to: one for all, or one per domain.

``cso net --controller HOST:PORT`` points every switch at one SC; ``--controllers
A=HOST:PORT,B=HOST:PORT,...`` points each domain's switches at that domain's SC (one SC per
domain, docs/multi-domain.md). `assign` turns either into a switch -> controller map, checked
against the topology's domains, and `cso.emulation.domain_switch.ControllerSwitch` makes Mininet
honour it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from cso.emulation.network import EmulationError, Plan
from topologies.model import Topology

Address = tuple[str, int]
DEFAULT_PORT = 6653


class ControllerError(ValueError):
    """A controller argument that cannot be used (the message says why)."""


def parse_address(text: str) -> Address:
    """``HOST:PORT`` (or just ``HOST``, port 6653) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(DEFAULT_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ControllerError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def parse_controllers(text: str) -> dict[str, Address]:
    """``A=HOST:PORT,B=HOST:PORT`` -> {domain: (host, port)}, in the order given."""
    out: dict[str, Address] = {}
    for item in text.split(","):
        domain, sep, address = item.strip().partition("=")
        domain = domain.strip()
        if not sep or not domain:
            raise ControllerError(f"{item.strip()!r} is not DOMAIN=HOST:PORT")
        if domain in out:
            raise ControllerError(f"domain {domain} is given twice")
        out[domain] = parse_address(address.strip())
    return out


def assign(topology: Topology, the_plan: Plan, controllers: Mapping[str, Address]
           ) -> dict[str, Address]:
    """Switch name -> the controller of its node's domain; `EmulationError` when a domain of
    the topology has no controller or a controller names no domain of it."""
    unknown = [d for d in controllers if d not in topology.domains]
    missing = [d for d in topology.domains if d not in controllers]
    problems = []
    if unknown:
        problems.append(f"no domain {', '.join(unknown)} in {topology.name}")
    if missing:
        problems.append(f"no controller for domain {', '.join(missing)}")
    if problems:
        raise EmulationError(f"--controllers: {'; '.join(problems)} (its domains: "
                             f"{', '.join(topology.domains)})")
    return {s.name: controllers[topology.nodes[s.node].domain] for s in the_plan.switches}


def distinct(addresses: Sequence[Address]) -> list[Address]:
    """The controllers of a switch -> controller map, each once, in first-use order."""
    return list(dict.fromkeys(addresses))


def controller_name(address: Address, addresses: Sequence[Address]) -> str:
    """Mininet's name of a controller: c0, c1, ... in `distinct` order."""
    return f"c{distinct(addresses).index(address)}"
