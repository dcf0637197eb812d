"""Shared fixtures for the SC's unit tests: the core on fake switches, REST through Ryu's router.

- `SwitchTransport` gives the installer switches backed by a `FakeNetwork`: every message is
  applied to the fake flow tables, and barrier replies and OFPT_ERRORs come back through the
  installer's handlers from another green thread, as Ryu delivers them. A switch can be absent
  (no datapath), silent (never answers) or refuse flow entries with an error.
- `make_sc` builds a `ScCore` with its state in a temporary directory, connects every switch
  through the core's OpenFlow event methods as the Ryu app does (`ScCore.switch_connected`:
  base entries, reconciliation; `link_discovered`) and registers the REST controllers
  on a `WSGIApplication` the way ``sc_app.app`` does, so `Client` requests go through Ryu's
  router with WebOb (``Request.blank(...).get_response(wsgi)``).
- `Sc` answers behavioural questions: does IPv4 from one host reach another, what do the TED,
  the DBM and the flow tables hold (to check that a refused request changed nothing).
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import eventlet
import pytest
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser
from webob import Request

from sc_app.cli_sc import ensure_eventlet_compat

ensure_eventlet_compat()  # ryu.app.wsgi imports eventlet.wsgi.ALREADY_HANDLED

from ryu.app.wsgi import WSGIApplication  # noqa: E402

from fake_of13 import FakeNetwork, OFError, Packet, Trace, ipv4  # noqa: E402
from sc_app.alto_api import AltoController, alto_data  # noqa: E402
from sc_app.asi import AsiController  # noqa: E402
from sc_app.core import ScCore  # noqa: E402
from sc_app.lightpath import resolve_endpoint  # noqa: E402
from sc_app.reconcile import Reconciler  # noqa: E402
from sc_app.sci import FlowInstaller, SwitchUnreachable  # noqa: E402
from sc_app.smi import NotFoundController, SmiController  # noqa: E402
from topologies.loader import load  # noqa: E402
from topologies.model import DC_PORT, USER_PORT, Topology  # noqa: E402

#: Two ACs and their ASI bearer tokens.
TOKENS = {"ac1": "token-ac1", "ac2": "token-ac2"}
#: A refusal a switch may answer to a flow ADD (OpenFlow 1.3: table full).
TABLE_FULL = OFError(ofp.OFPET_FLOW_MOD_FAILED, ofp.OFPFMFC_TABLE_FULL, "table full")

_DEFAULT = object()
SHM = "/dev/shm"


def _is_add(msg: Any) -> bool:
    return isinstance(msg, parser.OFPFlowMod) and msg.command == ofp.OFPFC_ADD


class SwitchTransport:
    """The installer's `Transport` over a `FakeNetwork`, answering like real switches."""

    def __init__(self, net: FakeNetwork):
        self.net = net
        self.installer: Optional[FlowInstaller] = None
        #: Where flow stats replies go (the core's `Reconciler`).
        self.reconciler: Optional[Reconciler] = None
        #: dpids without a datapath: `send` raises SwitchUnreachable.
        self.absent: set[int] = set()
        #: dpids that take messages but never answer (not even a barrier).
        self.silent: set[int] = set()
        #: dpid -> the error answered to every flow ADD (the entry is not added).
        self.refuse: dict[int, OFError] = {}
        #: (dpid, msg) -> the error answered to that message, or None (as for ``refuse``).
        self.refuse_when: Optional[Callable[[int, Any], Optional[OFError]]] = None
        self.sent: list[tuple[int, Any]] = []
        #: Exceptions the installer's reply handlers raised (Ryu would log them and go on).
        self.reply_errors: list[BaseException] = []
        self._xids = itertools.count(1)

    def send(self, dpid: int, msg: Any) -> int:
        """Apply ``msg`` to switch ``dpid``'s table and schedule its reply; the xid."""
        if dpid in self.absent:
            raise SwitchUnreachable(f"switch {dpid} is not connected")
        xid = next(self._xids)
        self.sent.append((dpid, msg))
        if dpid in self.silent:
            return xid
        if isinstance(msg, parser.OFPFlowStatsRequest):
            if self.reconciler is not None:
                self._reply(self.reconciler.on_stats_reply, dpid, xid,
                            self.net.table(dpid).flow_stats(msg), False)
            return xid
        if isinstance(msg, parser.OFPGroupDescStatsRequest):
            if self.reconciler is not None:
                self._reply(self.reconciler.on_stats_reply, dpid, xid,
                            self.net.table(dpid).group_desc(), False)
            return xid
        error = self.refuse.get(dpid) if _is_add(msg) else None
        if error is None and self.refuse_when is not None:
            error = self.refuse_when(dpid, msg)
        if error is None:
            error = self.net.send(dpid, msg)
        if self.installer is not None:
            if error is not None:
                self._reply(self.installer.on_error, dpid, xid, error)
            elif isinstance(msg, parser.OFPBarrierRequest):
                self._reply(self.installer.on_barrier_reply, dpid, xid)
        return xid

    def _reply(self, handler: Any, *args: Any) -> None:
        """Call ``handler`` from another green thread: replies never arrive inside send()."""
        def deliver() -> None:
            try:
                handler(*args)
            except Exception as exc:  # noqa: BLE001 - recorded for the test to see
                self.reply_errors.append(exc)

        eventlet.spawn(deliver)


@dataclass
class Reply:
    """One REST exchange: what was asked (``route`` is the matched path template) and answered."""

    method: str
    path: str
    route: Optional[str]
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body as JSON (fails the test if it is not)."""
        return json.loads(self.body.decode("utf-8"))

    @property
    def content_type(self) -> str:
        """The media type without parameters."""
        return self.headers.get("Content-Type", "").split(";")[0].strip()


class Client:
    """Sends WebOb requests through Ryu's WSGI application, as one AC (or operator) would."""

    def __init__(self, app: Any, token: Optional[str] = None,
                 exchanges: Optional[list[Reply]] = None):
        self.app = app
        self.token = token
        #: Every exchange so far (the OpenAPI tests validate them against the spec).
        self.exchanges: list[Reply] = [] if exchanges is None else exchanges

    def request(self, method: str, path: str, body: Any = None, *, raw: Optional[bytes] = None,
                token: Any = _DEFAULT, headers: Optional[dict[str, str]] = None,
                content_type: Optional[str] = "application/json") -> Reply:
        """Send a request; ``body`` is JSON-encoded (None: no body), ``raw`` sent as is."""
        req = Request.blank(path, method=method)
        token = self.token if token is _DEFAULT else token
        if token is not None:
            req.headers["Authorization"] = f"Bearer {token}"
        for name, value in (headers or {}).items():
            req.headers[name] = value
        if body is not None:
            raw = json.dumps(body).encode("utf-8")
        if raw is not None:
            req.body = raw
            if content_type is not None:
                req.content_type = content_type
        route = self.route(req)
        resp = req.get_response(self.app)
        reply = Reply(method, path, route, resp.status_int, dict(resp.headers), resp.body)
        self.exchanges.append(reply)
        return reply

    def route(self, req: Request) -> Optional[str]:
        """The path template of the route ``req`` takes (None: the JSON 404/405 catch-all)."""
        matched = self.app.mapper.routematch(environ=req.environ)
        return None if matched is None or matched[0].get("action") == "not_found" \
            else matched[1].routepath

    def get(self, path: str, **kwargs: Any) -> Reply:
        """GET ``path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        """POST ``body`` (JSON) to ``path``."""
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        """PUT ``body`` (JSON) to ``path``."""
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        """DELETE ``path``."""
        return self.request("DELETE", path, **kwargs)


def fibre_ports(topology: Topology, node_id: str) -> list[int]:
    """The fibre ports of a node's switch."""
    ports = [link.a_port for link in topology.links if link.a == node_id]
    return sorted(ports + [link.b_port for link in topology.links if link.b == node_id])


def all_ports(topology: Topology, node_id: str) -> list[int]:
    """Every port of a node's switch: user, DC and fibre ports (all live in the emulation)."""
    return [USER_PORT, DC_PORT] + fibre_ports(topology, node_id)


def register_controllers(wsgi: WSGIApplication, core: ScCore,
                         smi_tokens: Optional[dict[str, str]] = None,
                         alto_auth: str = "ac-tokens") -> None:
    """Register the REST controllers as ``ServiceController.__init__`` does (same order, data).

    test_sc_app checks that the app's own mapper ends up with the same routes.
    """
    data = {"core": core, "smi_tokens": smi_tokens or {}, **alto_data(core, alto_auth)}
    wsgi.register(AsiController, data)
    wsgi.register(SmiController, data)
    wsgi.register(AltoController, data)
    wsgi.register(NotFoundController, data)


@dataclass
class Sc:
    """An SC core on fake switches, with its REST application."""

    core: ScCore
    net: FakeNetwork
    transport: SwitchTransport
    wsgi: WSGIApplication
    clients: list[Client] = field(default_factory=list)

    @property
    def topology(self) -> Topology:
        """The SC's topology."""
        return self.core.topology

    def dpid(self, node_id: str) -> int:
        """The dpid of a node."""
        return self.topology.nodes[node_id].dpid

    # -- switches ---------------------------------------------------------------------------

    def connect(self, node_id: str, ports: Optional[list[int]] = None,
                discover: bool = True) -> list[Any]:
        """Switch ``node_id`` connects (all ports live unless given), as the Ryu app has the
        core handle it; returns when its reconciliation is over. The base messages sent."""
        dpid = self.dpid(node_id)
        self.transport.absent.discard(dpid)
        live = all_ports(self.topology, node_id) if ports is None else ports
        msgs = self.core.switch_connected(dpid, live)
        if msgs:
            self.core.reconciliations[dpid].wait()
        if discover:
            self.discover_links()
        return msgs

    def connect_all(self) -> None:
        """Every switch connects and LLDP confirms every fibre."""
        for node_id in self.topology.nodes:
            self.connect(node_id, discover=False)
        self.discover_links()

    def discover_links(self) -> None:
        """LLDP sees every fibre whose switches are both connected (both directions)."""
        for link in self.topology.links:
            a = (self.dpid(link.a), link.a_port)
            b = (self.dpid(link.b), link.b_port)
            if a[0] in self.core.pa.connected and b[0] in self.core.pa.connected:
                self.core.link_discovered(a, b)
                self.core.link_discovered(b, a)

    def disconnect(self, node_id: str) -> None:
        """Switch ``node_id``'s connection drops, as the Ryu app handles DEAD_DISPATCHER."""
        dpid = self.dpid(node_id)
        self.transport.absent.add(dpid)
        self.core.switch_disconnected(dpid)

    # -- REST -------------------------------------------------------------------------------

    def client(self, ac: Optional[str] = "ac1", token: Any = _DEFAULT) -> Client:
        """A REST client with AC ``ac``'s token (or ``token``; None: no Authorization)."""
        if token is _DEFAULT:
            token = None if ac is None else self.core.ac_tokens[ac]
        client = Client(self.wsgi, token)
        self.clients.append(client)
        return client

    @property
    def exchanges(self) -> list[Reply]:
        """Every REST exchange of every client of this SC."""
        return [reply for client in self.clients for reply in client.exchanges]

    # -- behaviour and state ----------------------------------------------------------------

    def forward(self, src_ip: str, dst_ip: str, packet: Optional[Packet] = None) -> Trace:
        """Inject IPv4 from host ``src_ip`` on its access port; where it goes."""
        src = resolve_endpoint(self.topology, src_ip)
        return self.net.forward(self.topology, self.dpid(src.node), src.attachments[0].port,
                                packet or ipv4(src_ip, dst_ip))

    def delivered_to(self, src_ip: str, dst_ip: str) -> list[tuple[str, int, Packet]]:
        """(node, port, packet) where IPv4 from ``src_ip`` to ``dst_ip`` leaves the network."""
        by_dpid = {n.dpid: n.id for n in self.topology.nodes.values()}
        return [(by_dpid[dpid], port, pkt)
                for dpid, port, pkt in self.forward(src_ip, dst_ip).delivered]

    def ted_state(self) -> dict[str, Any]:
        """What the TED holds: occupancy, owners, node and link states, TE weights."""
        snapshot = self.core.ted.snapshot()
        # ``seq`` counts occupancy operations: a reservation given back moves it on.
        del snapshot["seq"]
        return snapshot

    def db_state(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The DBM's lightpaths and alarms (all, cleared included)."""
        return ([lp.to_json() for lp in self.core.db.list_lightpaths()],
                [a.to_json() for a in self.core.db.list_alarms(active=None)])

    def flow_state(self) -> dict[int, list[tuple]]:
        """Every flow entry of every switch, comparable."""
        return {dpid: sorted((e.table_id, e.priority, e.cookie, sorted(e.fields.items()),
                              str(e.actions)) for e in table.entries)
                for dpid, table in sorted(self.net.tables.items())}

    def state(self) -> tuple:
        """TED, DBM, SA's lightpaths and flow tables together (nothing else may change them)."""
        return (self.ted_state(), self.db_state(), sorted(self.core.service.lightpaths),
                self.flow_state())

    def entries_with(self, cookie: int) -> dict[int, int]:
        """dpid -> number of entries carrying ``cookie`` (switches with none left out)."""
        counts = {dpid: sum(1 for e in t.entries if e.cookie == cookie)
                  for dpid, t in self.net.tables.items()}
        return {dpid: n for dpid, n in counts.items() if n}

    def close(self) -> None:
        """Close the DBM."""
        self.core.close()


def make_sc(state_dir: str, topology: str = "ring", tokens: Optional[dict[str, str]] = None,
            smi_tokens: Optional[dict[str, str]] = None, connect: bool = True,
            barrier_timeout: float = 0.5, alto_auth: str = "ac-tokens",
            **core_kwargs: Any) -> Sc:
    """An SC on ``topology`` with its state in ``state_dir``; every switch connected."""
    net = FakeNetwork()
    transport = SwitchTransport(net)
    core = ScCore(load(topology), state_dir, TOKENS if tokens is None else tokens, transport,
                  barrier_timeout=barrier_timeout, **core_kwargs)
    transport.installer = core.installer
    transport.reconciler = core.reconciler
    sc = Sc(core, net, transport, WSGIApplication())
    register_controllers(sc.wsgi, core, smi_tokens, alto_auth)
    if connect:
        sc.connect_all()
    return sc


@pytest.fixture
def state_dir(tmp_path: Any) -> Iterator[str]:
    """A fresh state directory, in memory (tmpfs) where there is one.

    SQLite's syncs on opening and closing a database cost ~30 ms per SC on disk, which
    hundreds of tests would pay.
    """
    if os.path.isdir(SHM) and os.access(SHM, os.W_OK):
        path = tempfile.mkdtemp(prefix="cso-sc-test-", dir=SHM)
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield str(tmp_path / "state")


@pytest.fixture
def sc(state_dir: str) -> Iterator[Sc]:
    """An SC on the six-node ring (W=4, DCs at nodes 0 and 3), every switch connected."""
    instance = make_sc(state_dir)
    yield instance
    instance.close()


def settle(sc: Sc, timeout: float = 5.0) -> None:
    """Let the restorer's green thread finish its queue."""
    deadline = eventlet.hubs.get_hub().clock() + timeout
    eventlet.sleep(0)
    while not sc.core.restorer.idle:
        assert eventlet.hubs.get_hub().clock() < deadline, "restoration did not finish"
        eventlet.sleep(0.005)


def stream_events(body: bytes) -> list[dict[str, Any]]:
    """The events of a text/event-stream body: ``{"id", "event", "data"}`` (comments skipped)."""
    events = []
    for block in body.decode("utf-8").split("\n\n"):
        event: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[name] = json.loads(value) if name == "data" else value
        if "data" in event:
            events.append(event)
    return events
