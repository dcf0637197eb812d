"""CSO's topologies for Mininet's own ``mn``: a ``--custom`` file.

    sudo .venv/bin/mn --custom mininet/cso_topos.py --topo nsfnet \\
        --controller remote,port=6653 --switch ovs,datapath=user

builds the network ``cso net --topo nsfnet`` builds, from the same code
(`cso.emulation.network.plan` and `build_topo`): switches ``s<i>`` with the node's dpid,
speaking OpenFlow 1.3 only; hosts ``u<i>`` (user, switch port 1) and ``dc<i>`` (DC, port 2)
with the plan's addresses and MACs and TX checksum offload and IPv6 off
(`cso.emulation.nodes.EmulatedHost`); fibres on the ports the topology file gives. Start the
SC first (``sudo .venv/bin/cso sc``, OpenFlow on 6653).

Topologies: every file of ``topologies/`` by name (``--topo nsfnet``, ``ring``,
``three-domain``, ``nsfnet-small``) and any topology file by path
(``--topo cso,path/to/file.json``).

``--controller remote`` is `cso.emulation.nodes.QuietRemoteController` here: Mininet's, without
the telnet probe of the controller's port that crashed now and then on the SC's OpenFlow
HELLO. ``py net.waitConnected()`` at the ``mininet>`` prompt waits until every switch has
reached it (Debian's ``mn`` also has ``--wait``; pip's mininet 2.3.0.dev6 has not).

What ``mn`` does not get: the management network, the DC agents and the state file that
``cso net exec``, ``cso ac`` and ``cso demo`` use; run ``cso net`` for those.

Which ``mn``: ``mn`` runs this file with its own Python. ``.venv/bin/mn`` (installed by the
pip ``mininet`` package of the project's venv) works; so does Debian's ``/usr/bin/mn`` (what
``sudo mn`` finds) with the system's Python, since this file puts its checkout first on
``sys.path`` and the plan needs nothing beyond the standard library. After a crash,
``sudo .venv/bin/cso net cleanup --topo nsfnet`` removes this topology's bridges, interfaces
and host shells and nothing else; ``sudo mn -c`` removes every bridge on the machine and kills
every process Mininet might have started (also ``ping`` and ``ryu-manager``).

Every global of this file but ``topos`` and ``controllers`` starts with ``_``: ``mn`` copies
the file's globals into its own.
"""
import os as _os
import sys as _sys
from functools import partial as _partial

from mininet.topo import Topo as _Topo


def _checkout() -> str:
    """The checkout this file is in (``mn`` exec()s it without ``__file__``)."""
    return _os.path.dirname(_os.path.dirname(_os.path.abspath(_checkout.__code__.co_filename)))


# First: this checkout's cso builds its own topology files, whatever else is installed. (A
# folder without __init__.py, like this one, never shadows the real mininet package.)
if _checkout() not in _sys.path:
    _sys.path.insert(0, _checkout())

from cso.emulation.network import EmulationError as _EmulationError  # noqa: E402
from cso.emulation.network import build_topo as _build_topo  # noqa: E402
from cso.emulation.network import plan as _plan  # noqa: E402
from cso.emulation.nodes import QuietRemoteController as _QuietRemoteController  # noqa: E402
from topologies.loader import TopologyError as _TopologyError  # noqa: E402
from topologies.loader import load as _load  # noqa: E402
from topologies.loader import names as _names  # noqa: E402


def _topo(topology: str = "nsfnet") -> _Topo:
    """The Mininet Topo of a topology name or file, as `cso net` builds it.

    A bad topology exits at once: an exception would make ``mn`` run its machine-wide cleanup.
    """
    try:
        return _build_topo(_plan(_load(topology)))
    except (_TopologyError, _EmulationError) as exc:
        print(f"cso_topos: {exc}", file=_sys.stderr)
        raise SystemExit(1) from None


topos = {"cso": _topo, **{name: _partial(_topo, name) for name in _names()}}
controllers = {"remote": _QuietRemoteController}
