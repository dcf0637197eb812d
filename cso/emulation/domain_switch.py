"""The switch class of ``cso net --controllers``: each switch reaches its own domain's SC.

Apart from `cso.emulation.nodes` because ``mn --custom mininet/cso_topos.py`` imports that
module with only Mininet's host and controller classes at hand.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from mininet.node import OVSSwitch


class ControllerSwitch(OVSSwitch):
    """An OVS switch that connects only to its own controller (``controller_of``: switch
    name -> Mininet controller name) instead of every controller of the network, as Mininet
    would."""

    def __init__(self, name: str, controller_of: Optional[Mapping[str, str]] = None,
                 **params: Any):
        super().__init__(name, **params)
        self.own_controller = (controller_of or {}).get(name)

    def start(self, controllers: list[Any]) -> None:
        """Mininet's start, with this switch's controller only (all when it has none)."""
        mine = [c for c in controllers if c.name == self.own_controller]
        super().start(mine or controllers)
