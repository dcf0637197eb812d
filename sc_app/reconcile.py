"""Flow reconciliation: a (re)connecting switch's lightpath entries made to match the DBM.

When a switch connects (after its own restart, a lost connection or an SC
restart) or an operator asks for a resync over SMI, the SC reads the switch's
lightpath entries (a flow stats request filtered by the lightpath cookie tag)
and its groups (a group description request, sent at the same time), and
compares them with what the recorded lightpaths need there
(`sc_app.flows.lightpath_flows`): entries by cookie, table, priority, match and
instructions as OpenFlow reports them; fast-failover groups (protected
lightpaths) by id, type and buckets (watch port and actions, in order: a group
the SC turned to the backup, kept in the DBM, must stay turned). Then, in this
order:

0. a missing group is added, a group whose buckets differ is MODIFYed (before
   the entries that use it);
1. an expected entry whose match and priority are held by a stale entry is
   added without the overlap check, replacing it in one step (no gap: e.g. an
   ingress entry a crashed re-route had already swapped to its new cookie);
2. stale entries go: a cookie no recorded lightpath has is deleted whole, a
   recorded lightpath's entry that differs from what it needs is deleted
   strictly (its cookie, priority and match);
3. missing entries are added;
4. stale groups (no recorded lightpath has their id) are deleted.

Entries and groups already correct are never touched: their counters keep counting.
Cookies an install, re-route or teardown is working on right now (`CookieTracker`)
and lightpaths that are not settled (``up`` or ``down``) are left to that work.
A plain class: the Ryu app forwards the flow stats and group description replies,
tests use a fake transport.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from eventlet.event import Event
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from sc_app import flows
from sc_app.lightpath import LIGHTPATH_COOKIE_TAG, LIGHTPATH_COOKIE_TAG_MASK, lightpath_cookie
from sc_app.sci import InstallResult, SwitchUnreachable, Transport

LOG = logging.getLogger(__name__)

#: Requests a reconciliation starts with: flow stats and group description.
READ_REQUESTS = 2
#: Replies that overtook their request's registration, kept (in count).
_EARLY_REPLIES = 256

EntryKey = tuple[Any, ...]


def flow_stats_request() -> parser.OFPFlowStatsRequest:
    """A flow stats request for every lightpath entry (cookie tag) in every table."""
    return parser.OFPFlowStatsRequest(None, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                      LIGHTPATH_COOKIE_TAG, LIGHTPATH_COOKIE_TAG_MASK,
                                      parser.OFPMatch())


def group_desc_request() -> parser.OFPGroupDescStatsRequest:
    """A group description request: every group of the switch."""
    return parser.OFPGroupDescStatsRequest(None, 0)


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


def group_key(group: Any) -> EntryKey:
    """A group (group mod or group description) as comparable: type and ordered buckets."""
    return (group.type, tuple((b.watch_port, tuple(_canonical_action(a) for a in b.actions))
                              for b in group.buckets))


def group_owner(group_id: int) -> Optional[int]:
    """The cookie of the lightpath a protection group id belongs to; None if none can."""
    try:
        return lightpath_cookie(group_id // 2)
    except ValueError:
        return None


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
    """What a switch needs: groups fixed, entries replaced in place, deletions, additions,
    stale groups deleted."""

    replace: list[Any] = field(default_factory=list)
    delete: list[Any] = field(default_factory=list)
    add: list[Any] = field(default_factory=list)
    kept: int = 0
    stale_cookies: set[int] = field(default_factory=set)
    added_cookies: set[int] = field(default_factory=set)
    group_fix: list[Any] = field(default_factory=list)
    group_delete: list[Any] = field(default_factory=list)
    groups_kept: int = 0

    def messages(self) -> list[Any]:
        """The messages in the order they must go: groups added or modified, replacements,
        deletions, additions, stale groups deleted."""
        return [*self.group_fix, *self.replace, *self.delete, *self.add, *self.group_delete]


def _delete_strict(stats: Any) -> parser.OFPFlowMod:
    """A DELETE_STRICT of exactly one reported entry (its cookie, priority and match)."""
    return parser.OFPFlowMod(None, cookie=stats.cookie, cookie_mask=flows.ALL_ONES,
                             table_id=stats.table_id, command=ofp.OFPFC_DELETE_STRICT,
                             priority=stats.priority, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, match=stats.match)


def _stale_cookie_messages(cookie: int) -> list[Any]:
    """Everything of a cookie: its entries, and the fast-failover groups named after it."""
    msgs: list[Any] = [flows.delete_by_cookie(cookie)]
    for reverse in (False, True):
        try:
            msgs.append(flows.delete_group(flows.protection_group_id(cookie, reverse)))
        except ValueError:
            pass
    return msgs


def _plan_groups(result: FlowPlan, expected: dict[int, list[Any]], actual: Iterable[Any],
                 leave: Callable[[int], bool]) -> None:
    """Groups: missing ones added, differing ones MODIFYed, stale ones deleted."""
    wanted = {msg.group_id: msg for cookie, msgs in expected.items() if not leave(cookie)
              for msg in msgs if isinstance(msg, parser.OFPGroupMod)}
    present = {}
    for group in actual:
        owner = group_owner(group.group_id)
        if owner is None or not leave(owner):
            present[group.group_id] = group
    for group_id, group in present.items():
        want = wanted.get(group_id)
        if want is None:
            result.group_delete.append(flows.delete_group(group_id))
        elif group_key(group) == group_key(want):
            result.groups_kept += 1
        else:
            result.group_fix.append(parser.OFPGroupMod(None, ofp.OFPGC_MODIFY, want.type,
                                                       group_id, want.buckets))
    for group_id, want in wanted.items():
        if group_id not in present:
            result.group_fix.append(want)
            owner = group_owner(group_id)
            if owner is not None:
                result.added_cookies.add(owner)


def plan(expected: dict[int, list[Any]], actual: Iterable[Any],
         leave: Callable[[int], bool], groups: Optional[Iterable[Any]] = None) -> FlowPlan:
    """Compare a switch's lightpath entries (and groups) with the expected ones.

    ``expected``: cookie -> the messages the recorded lightpath needs on this switch
    (flow ADDs, groups); ``actual``: the flow stats the switch reported; ``leave(cookie)``:
    whether a cookie is someone else's business right now (neither deleted nor added);
    ``groups``: the group descriptions the switch reported (None: not read, so a cookie's
    groups are only sent with its missing entries, and a stale cookie's groups deleted).
    """
    result = FlowPlan()
    if groups is not None:
        _plan_groups(result, expected, groups, leave)
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
                result.delete.extend(_stale_cookie_messages(stats.cookie) if groups is None
                                     else [flows.delete_by_cookie(stats.cookie)])
        elif id(stats) not in replaced:
            result.delete.append(_delete_strict(stats))
    groups_sent: set[int] = set()
    for msg in later:
        if groups is None and msg.cookie not in groups_sent:
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
    groups_kept: int = 0
    groups_fixed: int = 0
    groups_deleted: int = 0


class _StatsRequest:
    """A flow stats or group description request waiting for its (multipart) reply."""

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

    def on_stats_reply(self, dpid: int, xid: int, body: list[Any], more: bool) -> bool:
        """A flow stats or group description reply (one part of it when ``more``); False if
        nothing waits for it."""
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

    on_flow_stats = on_stats_reply

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
        return self._read(dpid, [(flow_stats_request(), "flow stats")], timeout)[0]

    def read_all(self, dpid: int,
                 timeout: Optional[float] = None) -> tuple[list[Any], list[Any]]:
        """The switch's lightpath entries and its groups, both asked at once."""
        entries, groups = self._read(dpid, [(flow_stats_request(), "flow stats"),
                                            (group_desc_request(), "group description")],
                                     timeout)
        return entries, groups

    def _read(self, dpid: int, requests: list[tuple[Any, str]],
              timeout: Optional[float]) -> list[list[Any]]:
        """Send every request, then wait for all their replies (one deadline)."""
        deadline = self.clock() + (self.timeout if timeout is None else timeout)
        waiting: list[tuple[tuple[int, int], _StatsRequest, str]] = []
        try:
            for msg, what in requests:
                request = _StatsRequest()
                xid = self.transport.send(dpid, msg)
                key = (dpid, xid)
                self._pending[key] = request
                waiting.append((key, request, what))
                for body, more in self._early.pop(key, []):
                    self.on_stats_reply(dpid, xid, body, more)
            for _key, request, what in waiting:
                if not request.done.wait(max(0.0, deadline - self.clock())):
                    request.finish(f"no {what} reply in time")
        finally:
            for key, _request, _what in waiting:
                self._pending.pop(key, None)
        for _key, request, _what in waiting:
            if request.failure is not None:
                raise SwitchUnreachable(request.failure)
        return [request.body for _key, request, _what in waiting]

    def reconcile(self, dpid: int, timeout: Optional[float] = None) -> ReconcileResult:
        """Read switch ``dpid``'s lightpath entries and send what makes them right."""
        try:
            actual, groups = self.read_all(dpid, timeout)
        except SwitchUnreachable as exc:
            LOG.warning("cannot reconcile switch %s: %s", dpid, exc)
            return ReconcileResult(False, dpid, reason=str(exc))
        expected = self.expected(dpid)
        todo = plan(expected, actual, self.leave, groups)
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
                    for msg in _stale_cookie_messages(cookie):
                        msgs.append(msg)
                        self.transport.send(dpid, msg)
        except SwitchUnreachable as exc:
            LOG.warning("switch %s went away while being reconciled: %s", dpid, exc)
            return ReconcileResult(False, dpid, reason=str(exc))
        result = ReconcileResult(True, dpid, kept=todo.kept, replaced=len(todo.replace),
                                 deleted=len(todo.delete), added=len(todo.add),
                                 messages=len(msgs), groups_kept=todo.groups_kept,
                                 groups_fixed=len(todo.group_fix),
                                 groups_deleted=len(todo.group_delete))
        if todo.messages():
            LOG.info("switch %s reconciled: %d entries kept, %d replaced, %d deletions, "
                     "%d additions (stale cookies %s); groups: %d kept, %d added or "
                     "modified, %d deleted", dpid, result.kept, result.replaced,
                     result.deleted, result.added,
                     ", ".join(f"{c:#x}" for c in sorted(todo.stale_cookies)) or "none",
                     result.groups_kept, result.groups_fixed, result.groups_deleted)
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

    def install_many(self, batches: Sequence[tuple[int, dict[int, list]]],
                     timeout: Optional[float] = None) -> list[InstallResult]:
        """`FlowInstaller.install_many`, with every cookie busy meanwhile."""
        with self._holding(cookie for cookie, _ in batches):
            return self.installer.install_many(batches, timeout=timeout)

    def remove_many(self, removals: Sequence[tuple[int, Any]],
                    timeout: Optional[float] = None) -> list[InstallResult]:
        """`FlowInstaller.remove_many`, with every cookie busy meanwhile."""
        with self._holding(cookie for cookie, _ in removals):
            return self.installer.remove_many(removals, timeout=timeout)

    @contextlib.contextmanager
    def _holding(self, cookies: Iterable[int]) -> Iterator[None]:
        held = list(cookies)
        for cookie in held:
            self._busy[cookie] += 1
        try:
            yield
        finally:
            for cookie in held:
                self._release(cookie)

    def _release(self, cookie: int) -> None:
        self._busy[cookie] -= 1
        if self._busy[cookie] <= 0:
            del self._busy[cookie]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.installer, name)
