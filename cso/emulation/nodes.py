"""Mininet node classes of the emulation, the same for `cso net` and for Mininet's own ``mn``.

`EmulatedHost` is the class of every host of a plan's Topo (`cso.emulation.network.build_topo`
names it), so ``mn --custom mininet/cso_topos.py`` gets the hosts `cso net` gets;
`QuietRemoteController` is how both reach the SC.
"""
from __future__ import annotations

from typing import Any

from mininet.node import Host, RemoteController

from cso.emulation.network import EmulationError

#: The port Mininet's RemoteController settles on when it is given none (OpenFlow's IANA port).
DEFAULT_CONTROLLER_PORT = 6653


class EmulatedHost(Host):
    """A Mininet host set up for OVS's userspace datapath and the SC.

    TX checksum offload off: a veth hands OVS's userspace datapath TCP segments whose checksum
    the kernel has not filled in, and OVS forwards them as they are, so TCP would fail while
    ping works. IPv6 off: no router solicitations or MLD reports for the SC to see.
    """

    def config(self, **params: Any) -> dict[str, Any]:
        """Mininet's configuration, then the settings above; `EmulationError` if one fails."""
        done = super().config(**params)
        offload = "; ".join(f"ethtool -K {intf} tx off >/dev/null || echo FAILED {intf}"
                            for intf in self.intfNames() if intf != "lo")
        out = self.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                       "net.ipv6.conf.default.disable_ipv6=1 "
                       f"net.ipv6.conf.lo.disable_ipv6=1; {offload}")
        if "FAILED" in out:
            raise EmulationError(f"{self.name}: cannot turn TX checksum offload off: "
                                 f"{' '.join(out.split())}")
        return done


class QuietRemoteController(RemoteController):
    """Mininet's RemoteController without its probe of the controller's port.

    The probe (``echo A | telnet``) decodes whatever the controller sends as UTF-8: an
    OpenFlow HELLO whose random xid is not UTF-8 crashed the emulation now and then (and
    ``mn`` then runs its machine-wide cleanup). Whether the switches reach the controller is
    for the caller to check (`cso net` waits for them; in ``mn``, ``net.waitConnected()``).
    """

    def checkListening(self) -> None:  # noqa: N802 - Mininet's name
        """No probe; without a port, the one Mininet would have fallen back to."""
        if self.port is None:
            self.port = DEFAULT_CONTROLLER_PORT
