"""``mininet/cso_topos.py``, loaded as ``mn --custom`` loads it: the Topo of `cso net`'s plan.

Mininet's Topo is plain data, so no root or network is needed; the real ``mn`` runs the file
in tests/integration/test_mininet_custom.py.
"""
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from cso.emulation import network
from cso.emulation.nodes import DEFAULT_CONTROLLER_PORT, EmulatedHost, QuietRemoteController
from topologies.loader import TOPOLOGY_DIR, load, names

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CUSTOM = os.path.join(ROOT, "mininet", "cso_topos.py")
#: The globals ``mn`` merges into its dictionaries (mininet's bin/mn, ``setCustom``).
MN_DICTIONARIES = {"topos", "switches", "hosts", "controllers", "links", "tests"}


def load_custom(path: str = CUSTOM) -> dict[str, Any]:
    """The file's globals after ``exec``, exactly as ``mn --custom`` runs it (no __file__)."""
    customs: dict[str, Any] = {}
    with open(path, encoding="utf-8") as handle:
        exec(compile(handle.read(), path, "exec"), customs, customs)  # noqa: S102 - mn's way
    return customs


def described(topo: Any) -> dict[str, Any]:
    """What a Topo says about its nodes and links, in the plan's terms."""
    switches = {name: topo.nodeInfo(name) for name in topo.switches()}
    hosts = {name: topo.nodeInfo(name) for name in topo.hosts()}
    links = set()
    for a, b, info in topo.links(withInfo=True):
        ends = ((a, info["port1"]), (b, info["port2"]))
        links.add(tuple(sorted(ends)))
    return {"switches": {name: (info["dpid"], info["protocols"])
                         for name, info in switches.items()},
            "hosts": {name: (info["ip"], info["mac"], info["cls"])
                      for name, info in hosts.items()},
            "links": links}


def expected(the_plan: network.Plan) -> dict[str, Any]:
    """The same description, from `cso net`'s plan alone."""
    host_ends = {tuple(sorted(((h.name, 0), (h.switch, h.port)))) for h in the_plan.hosts}
    fibre_ends = {tuple(sorted(((f.a, f.a_port), (f.b, f.b_port)))) for f in the_plan.fibres}
    return {"switches": {s.name: (f"{s.dpid:016x}", "OpenFlow13") for s in the_plan.switches},
            "hosts": {h.name: (f"{h.ip}/8", h.mac, EmulatedHost) for h in the_plan.hosts},
            "links": host_ends | fibre_ends}


def test_every_shipped_topology_is_a_topo_by_name():
    assert set(load_custom()["topos"]) == set(names()) | {"cso"}
    assert {"nsfnet", "ring", "three-domain", "nsfnet-small"} <= set(names())


@pytest.mark.parametrize("name", names())
def test_a_topo_by_name_is_cso_nets_network(name):
    topo = load_custom()["topos"][name]()
    assert described(topo) == expected(network.plan(load(name)))


def test_nsfnet_names_and_addresses_spelled_out():
    topo = load_custom()["topos"]["nsfnet"]()
    assert len(topo.switches()) == 14 and len(topo.hosts()) == 14 + 5
    assert topo.nodeInfo("s13")["dpid"] == "000000000000000e"
    assert (topo.nodeInfo("dc4")["ip"], topo.nodeInfo("dc4")["mac"]) == (
        "10.2.4.1/8", "02:02:00:00:00:04")


def test_a_topology_file_by_path(tmp_path):
    path = tmp_path / "my ring.json"
    shutil.copy(os.path.join(TOPOLOGY_DIR, "ring.json"), path)
    topo = load_custom()["topos"]["cso"](str(path))  # what mn makes of --topo cso,PATH
    assert described(topo) == expected(network.plan(load(str(path))))


def test_a_bad_topology_exits_before_mn_can_clean_the_machine(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:  # not an Exception: mn would run `mn -c` on it
        load_custom()["topos"]["cso"](str(tmp_path / "missing.json"))
    assert stop.value.code == 1
    assert "cso_topos:" in capsys.readouterr().err


def test_only_mns_own_names_are_public():
    customs = load_custom()
    public = {name for name in customs if not name.startswith("_")}
    assert public <= MN_DICTIONARIES, "mn copies every other global into its own"
    assert customs["controllers"] == {"remote": QuietRemoteController}


def test_the_remote_controller_does_not_probe_the_port():
    given = SimpleNamespace(port=6700)
    QuietRemoteController.checkListening(given)
    assert given.port == 6700
    unset = SimpleNamespace(port=None)
    QuietRemoteController.checkListening(unset)
    assert unset.port == DEFAULT_CONTROLLER_PORT == 6653


def test_the_file_finds_its_checkout_from_anywhere(tmp_path):
    # A Python without the project on its path (no site-packages: no editable install), as
    # Debian's /usr/bin/mn runs it; Mininet's Topo is faked, the plan needs only the stdlib.
    fake = tmp_path / "mininet"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "topo.py").write_text("class Topo:\n    pass\n")
    (fake / "node.py").write_text("class Host:\n    pass\n\nclass RemoteController:\n    pass\n")
    probe = ("import sys; customs = {}; exec(compile(open(sys.argv[1]).read(), sys.argv[1], "
             "'exec'), customs, customs); print(sorted(customs['topos']))")
    done = subprocess.run([sys.executable, "-S", "-c", probe, CUSTOM], cwd=tmp_path,
                          capture_output=True, text=True, check=False,
                          env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "'nsfnet'" in done.stdout
