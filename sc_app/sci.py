"""SCI: the Service-Control plane Interface (CSO draft §7.3), with OpenFlow 1.3 in place of
GMPLS signalling: a lightpath's entries installed on all its switches in parallel,
barrier-confirmed.

Where the draft's SC sets a path up with RSVP messages over the SCI, this SC sends the
path's flow entries (`sc_app.flows`) to each switch and waits for its barrier reply;
reconciliation (`sc_app.reconcile`) reads the entries back over the same interface.
The `FlowInstaller` is a plain class around an abstract `Transport`; the Ryu app
provides one (bind the message to the datapath, assign an xid, send), and `ScCore`
forwards the replies to it: ``on_barrier_reply(dpid, xid)``, ``on_error(dpid, xid,
msg)`` and ``on_switch_down(dpid)``.

Every switch gets its messages followed by a barrier, from its own green
thread, so a slow switch never delays the others. The install succeeds when
every barrier is answered with no OFPT_ERROR before it. Otherwise (a switch
missing or disconnected, an error, a barrier timeout) the lightpath's cookie
DELETE goes to every switch of the path and the failure is reported with a
code and the dpid that caused it; switches where even the rollback could not be
confirmed are listed, for the SC to reconcile when they come back.

`install_many` and `remove_many` do the same for several cookies at once (restoration
of every lightpath a fibre cut hits): each switch gets all of their messages and one
barrier, and each cookie succeeds, or is rolled back, on its own: an OFPT_ERROR counts
against the cookie of the message it answers, a switch that fails (unreachable, no
barrier reply) against every cookie with messages there.
"""
from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Protocol, Sequence

import eventlet
from eventlet.event import Event
from ryu.ofproto import ofproto_v1_3 as ofp

from sc_app import flows

LOG = logging.getLogger(__name__)

SWITCH_UNREACHABLE = "switch-unreachable"
SWITCH_ERROR = "switch-error"
BARRIER_TIMEOUT = "barrier-timeout"

#: Replies whose xid is not registered yet are kept this long (in count), since
#: a reply can overtake its registration when ``Transport.send`` yields.
_EARLY_REPLIES = 1024
_ERROR_TYPES = {getattr(ofp, n): n for n in dir(ofp) if n.startswith("OFPET_")}


class SwitchUnreachable(Exception):
    """Raised by a transport when no datapath is connected for the dpid."""


class Transport(Protocol):
    """Sends messages to switches; the Ryu app implements it around its datapaths."""

    def send(self, dpid: int, msg: Any) -> int:
        """Bind ``msg`` to switch ``dpid``, give it an xid, send it and return the xid.

        Raises `SwitchUnreachable` when the switch is not connected.
        """


@dataclass(frozen=True)
class InstallResult:
    """Outcome of an install or a removal; on failure ``code`` and ``dpid`` say what and where."""

    ok: bool
    latency_s: float
    code: Optional[str] = None
    dpid: Optional[int] = None
    reason: str = ""
    unclean: tuple[int, ...] = ()


def describe_error(error: Any) -> str:
    """Readable text for an OFPT_ERROR message (or anything else reported as one)."""
    if hasattr(error, "type") and hasattr(error, "code"):
        return f"{_ERROR_TYPES.get(error.type, error.type)} code {error.code}"
    return str(error)


#: Per switch, the messages to send, each with the index of the cookie it belongs to (None:
#: the batch has one cookie, and an error fails the whole switch).
Tagged = dict[int, list[tuple[Optional[int], Any]]]


def _untagged(messages: dict[int, list]) -> Tagged:
    return {dpid: [(None, msg) for msg in msgs] for dpid, msgs in messages.items()}


def _tagged(batches: Sequence[dict[int, list]]) -> Tagged:
    merged: Tagged = {}
    for index, messages in enumerate(batches):
        for dpid, msgs in messages.items():
            merged.setdefault(dpid, []).extend((index, msg) for msg in msgs)
    return merged


class _Batch:
    """Messages sent to many switches, each switch confirmed by its barrier."""

    def __init__(self, dpids: Iterable[int], fail_fast: bool, clock: Callable[[], float]):
        self.pending = set(dpids)
        self.failures: dict[int, tuple[str, str]] = {}
        #: Tagged messages refused by a switch: cookie index -> (dpid, code, reason), first one.
        self.refused: dict[int, tuple[int, str, str]] = {}
        self.xids: list[tuple[int, int]] = []
        self.fail_fast = fail_fast
        self.done = Event()
        self.clock = clock
        self.finished_at = clock()
        if not self.pending:
            self.done.send()

    def confirm(self, dpid: int) -> None:
        if dpid in self.pending:
            self.pending.discard(dpid)
            self._check()

    def fail(self, dpid: int, code: str, reason: str) -> None:
        if dpid in self.failures or self.done.ready():
            return
        self.failures[dpid] = (code, reason)
        self.pending.discard(dpid)
        self._check()

    def refuse(self, tag: int, dpid: int, code: str, reason: str) -> None:
        """A message of cookie ``tag`` was refused; the switch goes on (its barrier counts)."""
        self.refused.setdefault(tag, (dpid, code, reason))

    def failure_of(self, tag: int, dpids: Iterable[int]) -> Optional[tuple[int, str, str]]:
        """Why cookie ``tag`` (with messages on ``dpids``) failed; None if it did not."""
        if tag in self.refused:
            return self.refused[tag]
        for dpid in dpids:
            if dpid in self.failures:
                return (dpid, *self.failures[dpid])
        return None

    def _check(self) -> None:
        if self.done.ready():
            return  # a late reply after a fail-fast failure: the batch is already over
        if not self.pending or (self.fail_fast and self.failures):
            self.finished_at = self.clock()
            self.done.send()

    def first_failure(self) -> tuple[Optional[int], Optional[str], str]:
        for dpid, (code, reason) in self.failures.items():
            return dpid, code, reason
        return None, None, ""


class FlowInstaller:
    """Installs and removes lightpath entries with barriers, in parallel, with rollback."""

    def __init__(self, transport: Transport, barrier_timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.transport = transport
        self.barrier_timeout = barrier_timeout
        self.clock = clock
        self._xids: dict[tuple[int, int], tuple[_Batch, bool, Optional[int]]] = {}
        self._early: collections.OrderedDict[tuple[int, int], Any] = collections.OrderedDict()
        self._active: set[_Batch] = set()

    def install(self, cookie: int, messages: dict[int, list],
                timeout: Optional[float] = None) -> InstallResult:
        """Send ``{dpid: [msg, ...]}`` (all entries carrying ``cookie``); roll back on failure.

        ``latency_s`` runs from this call to the last barrier reply (or to the
        failure); the caller adds any time it spent before.
        """
        started = self.clock()
        batch = self._run(_untagged(messages), fail_fast=True, timeout=timeout)
        latency = batch.finished_at - started
        if not batch.failures:
            return InstallResult(True, latency)
        dpid, code, reason = batch.first_failure()
        LOG.warning("install of cookie %#x failed on dpid %s (%s: %s): rolling back",
                    cookie, dpid, code, reason)
        rollback = self._run(_untagged(flows.delete_lightpath(cookie, messages)),
                             fail_fast=False, timeout=timeout)
        return InstallResult(False, latency, code, dpid, reason, tuple(sorted(rollback.failures)))

    def install_many(self, batches: Sequence[tuple[int, dict[int, list]]],
                     timeout: Optional[float] = None) -> list[InstallResult]:
        """`install` of several ``(cookie, {dpid: [msg, ...]})`` at once, one result each.

        Every switch gets all their messages and one barrier; a cookie that failed is
        rolled back (its cookie DELETE on its switches, all such DELETEs again in one batch
        per switch) and the others stay.
        """
        started = self.clock()
        batch = self._run(_tagged([msgs for _, msgs in batches]), fail_fast=False,
                          timeout=timeout)
        latency = batch.finished_at - started
        failed = {i: batch.failure_of(i, msgs) for i, (_, msgs) in enumerate(batches)}
        failed = {i: why for i, why in failed.items() if why is not None}
        for i, (dpid, code, reason) in failed.items():
            LOG.warning("install of cookie %#x failed on dpid %s (%s: %s): rolling back",
                        batches[i][0], dpid, code, reason)
        rollback = self._run(_tagged([flows.delete_lightpath(batches[i][0], batches[i][1])
                                      for i in failed]), fail_fast=False, timeout=timeout)
        results = []
        for i, (_, msgs) in enumerate(batches):
            if i not in failed:
                results.append(InstallResult(True, latency))
                continue
            dpid, code, reason = failed[i]
            unclean = tuple(sorted(set(msgs) & set(rollback.failures)))
            results.append(InstallResult(False, latency, code, dpid, reason, unclean))
        return results

    def remove(self, cookie: int, dpids: Iterable[int],
               timeout: Optional[float] = None) -> InstallResult:
        """Delete every entry with ``cookie`` from ``dpids``, confirmed by barriers."""
        return self.remove_many([(cookie, dpids)], timeout)[0]

    def remove_many(self, removals: Sequence[tuple[int, Iterable[int]]],
                    timeout: Optional[float] = None) -> list[InstallResult]:
        """`remove` of several ``(cookie, dpids)`` at once (one barrier per switch), one
        result each."""
        started = self.clock()
        deletes = [flows.delete_lightpath(cookie, dpids) for cookie, dpids in removals]
        batch = self._run(_tagged(deletes), fail_fast=False, timeout=timeout)
        latency = batch.finished_at - started
        results = []
        for i, msgs in enumerate(deletes):
            failure = batch.failure_of(i, msgs)
            if failure is None:
                results.append(InstallResult(True, latency))
                continue
            unclean = tuple(sorted(d for d in msgs if d in batch.failures or (
                i in batch.refused and batch.refused[i][0] == d)))
            results.append(InstallResult(False, latency, failure[1], failure[0], failure[2],
                                         unclean))
        return results

    def on_barrier_reply(self, dpid: int, xid: int) -> bool:
        """A barrier reply arrived; False if it belongs to nothing in flight."""
        return self._deliver((dpid, xid), None)

    def on_error(self, dpid: int, xid: int, error: Any) -> bool:
        """An OFPT_ERROR arrived for ``xid``; False if it belongs to nothing in flight."""
        return self._deliver((dpid, xid), error)

    def on_switch_down(self, dpid: int) -> None:
        """Switch ``dpid`` disconnected: everything waiting on it fails now, not at timeout."""
        for batch in list(self._active):
            if dpid in batch.pending:
                batch.fail(dpid, SWITCH_UNREACHABLE, "switch disconnected")

    def _deliver(self, key: tuple[int, int], error: Any) -> bool:
        registered = self._xids.get(key)
        if registered is None:
            self._early[key] = error
            while len(self._early) > _EARLY_REPLIES:
                self._early.popitem(last=False)
            return False
        batch, is_barrier, tag = registered
        if error is not None and tag is not None:
            batch.refuse(tag, key[0], SWITCH_ERROR, describe_error(error))
        elif error is not None:
            batch.fail(key[0], SWITCH_ERROR, describe_error(error))
        elif is_barrier:
            batch.confirm(key[0])
        return True

    def _register(self, key: tuple[int, int], batch: _Batch, is_barrier: bool,
                  tag: Optional[int] = None) -> None:
        self._xids[key] = (batch, is_barrier, tag)
        batch.xids.append(key)
        if key in self._early:
            self._deliver(key, self._early.pop(key))

    def _send_switch(self, batch: _Batch, dpid: int,
                     msgs: list[tuple[Optional[int], Any]]) -> None:
        try:
            for tag, msg in msgs:
                self._register((dpid, self.transport.send(dpid, msg)), batch, False, tag)
            self._register((dpid, self.transport.send(dpid, flows.barrier())), batch, True)
        except SwitchUnreachable as exc:
            batch.fail(dpid, SWITCH_UNREACHABLE, str(exc) or "switch not connected")
        except Exception as exc:  # a transport bug must not look like a slow switch
            LOG.exception("sending to dpid %s failed", dpid)
            batch.fail(dpid, SWITCH_UNREACHABLE, f"send failed: {exc!r}")

    def _run(self, messages: Tagged, fail_fast: bool, timeout: Optional[float]) -> _Batch:
        timeout = self.barrier_timeout if timeout is None else timeout
        batch = _Batch(messages, fail_fast, self.clock)
        self._active.add(batch)
        senders = [eventlet.spawn(self._send_switch, batch, dpid, msgs)
                   for dpid, msgs in messages.items()]
        try:
            batch.done.wait(timeout)
            for dpid in sorted(batch.pending):
                batch.fail(dpid, BARRIER_TIMEOUT, f"no barrier reply within {timeout:g} s")
        finally:
            # A sender still blocked on a dead switch must not send after a rollback.
            for sender in senders:
                sender.kill()
            self._active.discard(batch)
            for key in batch.xids:
                self._xids.pop(key, None)
        return batch
