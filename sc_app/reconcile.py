"""Flow reconciliation: a (re)connecting switch's lightpath entries made to match the DBM.

When a switch connects (after its own restart, a lost connection or an SC
restart) or an operator asks for a resync over SMI, the SC reads the switch's
lightpath entries (a flow stats request filtered by the lightpath cookie tag)
and compares them with the entries the recorded lightpaths need there
(`sc_app.flows.lightpath_flows`), by cookie, table, priority, match and
instructions as OpenFlow reports them. Then, in this order:

1. an expected entry whose match and priority are held by a stale entry is
   added without the overlap check, replacing it in one step (no gap: e.g. an
   ingress entry a crashed re-route had already swapped to its new cookie);
2. stale entries go: a cookie no recorded lightpath has is deleted whole, a
   recorded lightpath's entry that differs from what it needs is deleted
   strictly (its cookie, priority and match);
3. missing entries are added (with the groups of their lightpath first).

Entries already correct are never touched: their counters keep counting.
Cookies an install, re-route or teardown is working on right now (`CookieTracker`)
and lightpaths that are not settled (``up`` or ``down``) are left to that work.
A plain class: the Ryu app forwards the flow stats replies, tests use a fake
transport.
"""
from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from eventlet.event import Event
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from sc_app import flows
from sc_app.installer import InstallResult, SwitchUnreachable, Transport
from sc_app.lightpath import LIGHTPATH_COOKIE_TAG, LIGHTPATH_COOKIE_TAG_MASK

LOG = logging.getLogger(__name__)

#: Replies that overtook their request's registration, kept (in count).
_EARLY_REPLIES = 256

EntryKey = tuple[Any, ...]


def flow_stats_request() -> parser.OFPFlowStatsRequest:
    """A flow stats request for every lightpath entry (cookie tag) in every table."""
    return parser.OFPFlowStatsRequest(None, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                      LIGHTPATH_COOKIE_TAG, LIGHTPATH_COOKIE_TAG_MASK,
                                      parser.OFPMatch())


def _canonical_match(match: parser.OFPMatch) -> tuple:
    """A match as sorted OXM (field, value bytes, mask bytes or None), masks applied.

    A mask of all ones is no mask, and bits outside a mask do not count, as a switch
    normalises them.
    """
    out = []
    for name, raw in match.items():
        num, value, mask = ofp.oxm_from_user(name, raw)
        if mask is not None:
            if all(b == 0xFF for b in mask):
                mask = None
            else:
                value = bytes(v & m for v, m in zip(value, mask))
        out.append((num, bytes(value), None if mask is None else bytes(mask)))
    return tuple(sorted(out))


def _canonical_action(action: Any) -> tuple:
    if isinstance(action, parser.OFPActionOutput):
        # max_len only means something towards the controller.
        max_len = action.max_len if action.port == ofp.OFPP_CONTROLLER else None
        return ("output", action.port, max_len)
    if isinstance(action, parser.OFPActionSetField):
        num, value, mask = ofp.oxm_from_user(action.key, action.value)
        return ("set_field", num, bytes(value), None if mask is None else bytes(mask))
    buf = bytearray()
    action.serialize(buf, 0)
    return (type(action).__name__, bytes(buf))


def _canonical_instructions(instructions: Iterable[Any]) -> tuple:
    out = []
    for inst in instructions:
        if isinstance(inst, parser.OFPInstructionActions):
            actions = tuple(_canonical_action(a) for a in inst.actions)
            if inst.type == ofp.OFPIT_APPLY_ACTIONS and not actions:
                continue  # an empty apply-actions is no instruction (drop)
            out.append((inst.type, actions))
        else:
            buf = bytearray()
            inst.serialize(buf, 0)
            out.append((type(inst).__name__, bytes(buf)))
    return tuple(out)


def slot_key(entry: Any) -> EntryKey:
    """Where an entry sits: (table, priority, match); ADD replaces an entry in the same slot."""
    return (entry.table_id, entry.priority, _canonical_match(entry.match))


def entry_key(entry: Any) -> EntryKey:
    """An entry (flow mod or flow stats) as comparable: cookie, slot and instructions."""
    return (entry.cookie, *slot_key(entry), _canonical_instructions(entry.instructions))


def _is_flow_add(msg: Any) -> bool:
    return isinstance(msg, parser.OFPFlowMod) and msg.command == ofp.OFPFC_ADD


@dataclass
class FlowPlan:
    """What a switch needs: entries replaced in place, deletions, additions."""

    replace: list[Any] = field(default_factory=list)
    delete: list[Any] = field(default_factory=list)
    add: list[Any] = field(default_factory=list)
    kept: int = 0
    stale_cookies: set[int] = field(default_factory=set)
    added_cookies: set[int] = field(default_factory=set)

    def messages(self) -> list[Any]:
        """The messages in the order they must go: replacements, deletions, additions."""
        return [*self.replace, *self.delete, *self.add]


def _delete_strict(stats: Any) -> parser.OFPFlowMod:
    """A DELETE_STRICT of exactly one reported entry (its cookie, priority and match)."""
    return parser.OFPFlowMod(None, cookie=stats.cookie, cookie_mask=flows.ALL_ONES,
                             table_id=stats.table_id, command=ofp.OFPFC_DELETE_STRICT,
                             priority=stats.priority, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, match=stats.match)


def _stale_cookie_messages(cookie: int) -> list[Any]:
    msgs: list[Any] = [flows.delete_by_cookie(cookie)]
    group_id = getattr(flows, "protection_group_id", None)
    delete_group = getattr(flows, "delete_group", None)
    if group_id is not None and delete_group is not None:
        # A protected lightpath's fast-failover groups are named after its cookie.
        for reverse in (False, True):
            try:
                msgs.append(delete_group(group_id(cookie, reverse)))
            except ValueError:
                pass
    return msgs


def plan(expected: dict[int, list[Any]], actual: Iterable[Any],
         leave: Callable[[int], bool]) -> FlowPlan:
    """Compare a switch's lightpath entries with the expected ones.

    ``expected``: cookie -> the messages the recorded lightpath needs on this switch
    (flow ADDs, groups); ``actual``: the flow stats the switch reported; ``leave(cookie)``:
    whether a cookie is someone else's business right now (neither deleted nor added).
    """
    result = FlowPlan()
    wanted: dict[EntryKey, Any] = {}
    for cookie, msgs in expected.items():
        if leave(cookie):
            continue
        for msg in msgs:
            if _is_flow_add(msg):
                wanted[entry_key(msg)] = msg
    present: set[EntryKey] = set()
    stale: list[Any] = []
    for stats in actual:
        if leave(stats.cookie):
            continue
        key = entry_key(stats)
        if key in wanted and key not in present:
            present.add(key)
            result.kept += 1
        else:
            stale.append(stats)
    missing = [msg for key, msg in wanted.items() if key not in present]
    stale_slots = {slot_key(s): s for s in stale}
    replaced: set[int] = set()
    later: list[Any] = []
    for msg in missing:
        twin = stale_slots.get(slot_key(msg))
        if twin is not None and id(twin) not in replaced:
            replaced.add(id(twin))
            msg.flags &= ~ofp.OFPFF_CHECK_OVERLAP  # replace the twin, cookie included
            result.replace.append(msg)
            result.added_cookies.add(msg.cookie)
        else:
            later.append(msg)
    for stats in stale:
        if stats.cookie not in expected:
            if stats.cookie not in result.stale_cookies:
                result.stale_cookies.add(stats.cookie)
                result.delete.extend(_stale_cookie_messages(stats.cookie))
        elif id(stats) not in replaced:
            result.delete.append(_delete_strict(stats))
    groups_sent: set[int] = set()
    for msg in later:
        if msg.cookie not in groups_sent:
            groups_sent.add(msg.cookie)
            result.add.extend(m for m in expected[msg.cookie] if not _is_flow_add(m))
        result.add.append(msg)
        result.added_cookies.add(msg.cookie)
    return result


@dataclass(frozen=True)
class ReconcileResult:
    """Outcome of one switch's reconciliation."""

    ok: bool
    dpid: int
    kept: int = 0
    replaced: int = 0
    deleted: int = 0
    added: int = 0
    messages: int = 0
    reason: str = ""


class _StatsRequest:
    """A flow stats request waiting for its (multipart) reply."""

    def __init__(self) -> None:
        self.body: list[Any] = []
        self.done = Event()
        self.failure: Optional[str] = None

    def finish(self, failure: Optional[str] = None) -> None:
        if not self.done.ready():
            self.failure = failure
            self.done.send()


class Reconciler:
    """Reads a switch's lightpath entries and fixes only what differs from the DBM."""

    def __init__(self, transport: Transport, expected: Callable[[int], dict[int, list[Any]]],
                 leave: Callable[[int], bool], timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.transport = transport
        self.expected = expected
        self.leave = leave
        self.timeout = timeout
        self.clock = clock
        self._pending: dict[tuple[int, int], _StatsRequest] = {}
        self._early: collections.OrderedDict[tuple[int, int], list[tuple[list, bool]]] = \
            collections.OrderedDict()

    # -- replies from the transport ---------------------------------------------------------

    def on_flow_stats(self, dpid: int, xid: int, body: list[Any], more: bool) -> bool:
        """A flow stats reply (one part of it when ``more``); False if nothing waits for it."""
        request = self._pending.get((dpid, xid))
        if request is None:
            self._early.setdefault((dpid, xid), []).append((list(body), more))
            while len(self._early) > _EARLY_REPLIES:
                self._early.popitem(last=False)
            return False
        request.body.extend(body)
        if not more:
            request.finish()
        return True

    def on_error(self, dpid: int, xid: int, error: Any) -> bool:
        """An OFPT_ERROR for a stats request; False if it is not one of ours."""
        request = self._pending.get((dpid, xid))
        if request is None:
            return False
        request.finish(f"switch error: {getattr(error, 'type', '?')}/"
                       f"{getattr(error, 'code', '?')}")
        return True

    def on_switch_down(self, dpid: int) -> None:
        """The switch went away: its reconciliation stops now."""
        for (d, _xid), request in list(self._pending.items()):
            if d == dpid:
                request.finish("switch disconnected")

    # -- reconciliation ---------------------------------------------------------------------

    def read(self, dpid: int, timeout: Optional[float] = None) -> list[Any]:
        """The switch's lightpath entries (flow stats); raises SwitchUnreachable on failure."""
        request = _StatsRequest()
        xid = self.transport.send(dpid, flow_stats_request())
        key = (dpid, xid)
        self._pending[key] = request
        try:
            for body, more in self._early.pop(key, []):
                self.on_flow_stats(dpid, xid, body, more)
            if not request.done.wait(self.timeout if timeout is None else timeout):
                request.finish("no flow stats reply in time")
        finally:
            self._pending.pop(key, None)
        if request.failure is not None:
            raise SwitchUnreachable(request.failure)
        return request.body

    def reconcile(self, dpid: int, timeout: Optional[float] = None) -> ReconcileResult:
        """Read switch ``dpid``'s lightpath entries and send what makes them right."""
        try:
            actual = self.read(dpid, timeout)
        except SwitchUnreachable as exc:
            LOG.warning("cannot reconcile switch %s: %s", dpid, exc)
            return ReconcileResult(False, dpid, reason=str(exc))
        expected = self.expected(dpid)
        todo = plan(expected, actual, self.leave)
        msgs = todo.messages()
        try:
            for msg in msgs:
                self.transport.send(dpid, msg)
            # A lightpath torn down (or being re-routed) while its entries were being
            # re-added: make sure nothing of it stays behind (the same connection keeps
            # the order, so this DELETE comes after the ADDs).
            now = self.expected(dpid) if todo.added_cookies else {}
            for cookie in sorted(todo.added_cookies):
                if cookie not in now or self.leave(cookie):
                    msgs.append(flows.delete_by_cookie(cookie))
                    self.transport.send(dpid, msgs[-1])
        except SwitchUnreachable as exc:
            LOG.warning("switch %s went away while being reconciled: %s", dpid, exc)
            return ReconcileResult(False, dpid, reason=str(exc))
        result = ReconcileResult(True, dpid, kept=todo.kept, replaced=len(todo.replace),
                                 deleted=len(todo.delete), added=len(todo.add),
                                 messages=len(msgs))
        if todo.replace or todo.delete or todo.add:
            LOG.info("switch %s reconciled: %d entries kept, %d replaced, %d deletions, "
                     "%d additions (stale cookies %s)", dpid, result.kept, result.replaced,
                     result.deleted, result.added,
                     ", ".join(f"{c:#x}" for c in sorted(todo.stale_cookies)) or "none")
        return result


class CookieTracker:
    """The SA's installer, noting which cookies an install or removal is working on.

    Reconciliation leaves those cookies alone: their entries are in flux, and the
    operation in flight decides what stays.
    """

    def __init__(self, installer: Any):
        self.installer = installer
        self._busy: collections.Counter[int] = collections.Counter()

    def busy(self, cookie: int) -> bool:
        """Whether an install or removal of ``cookie`` is in flight."""
        return self._busy[cookie] > 0

    def install(self, cookie: int, messages: dict[int, list],
                timeout: Optional[float] = None) -> InstallResult:
        """`FlowInstaller.install`, with ``cookie`` busy meanwhile."""
        self._busy[cookie] += 1
        try:
            return self.installer.install(cookie, messages, timeout=timeout)
        finally:
            self._release(cookie)

    def remove(self, cookie: int, dpids: Any, timeout: Optional[float] = None) -> InstallResult:
        """`FlowInstaller.remove`, with ``cookie`` busy meanwhile."""
        self._busy[cookie] += 1
        try:
            return self.installer.remove(cookie, dpids, timeout=timeout)
        finally:
            self._release(cookie)

    def _release(self, cookie: int) -> None:
        self._busy[cookie] -= 1
        if self._busy[cookie] <= 0:
            del self._busy[cookie]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.installer, name)
