"""The event stream to Application Controllers (ASI ``/asi/v1/events``, text/event-stream).

Alarms and lightpath state changes are published here; each AC subscribes
and sees its own lightpaths' events plus network-wide alarms. A short history
lets a reconnecting client resume with ``Last-Event-ID``; a slow client whose
queue overflows is told to resynchronise instead of stalling the controller.
"""
from __future__ import annotations

import collections
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import eventlet
from eventlet.queue import Empty, LightQueue

#: Events kept for clients that reconnect with Last-Event-ID.
HISTORY = 1024
#: Events queued per subscriber before it is considered too slow.
QUEUE_LIMIT = 1024


@dataclass(frozen=True)
class Event:
    """One published event: ``owner`` None means every AC may see it."""

    id: int
    type: str
    data: dict[str, Any]
    owner: Optional[str] = None
    time: float = field(default_factory=time.time)

    def visible_to(self, principal: str) -> bool:
        """Whether ``principal`` may receive this event."""
        return self.owner is None or self.owner == principal

    def encode(self) -> bytes:
        """The event in the text/event-stream wire format."""
        return stream_event(self.type, {"type": self.type, "time": self.time, **self.data},
                            self.id)


def stream_event(event: str, data: Any, event_id: Optional[int] = None) -> bytes:
    """One event in the text/event-stream wire format (JSON data on one line)."""
    payload = json.dumps(data, separators=(",", ":"))
    head = "" if event_id is None else f"id: {event_id}\n"
    return f"{head}event: {event}\ndata: {payload}\n\n".encode("utf-8")


class Subscription:
    """One client's queue of events."""

    def __init__(self, bus: "EventBus", principal: str):
        self.bus = bus
        self.principal = principal
        self.queue: LightQueue = LightQueue()
        self.overflowed = False

    def offer(self, event: Event) -> None:
        """Queue ``event`` if this subscriber may see it."""
        if not event.visible_to(self.principal):
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.overflowed = True
            return
        self.queue.put(event)

    def get(self, timeout: float) -> Optional[Event]:
        """The next event, or None after ``timeout`` seconds."""
        try:
            return self.queue.get(timeout=timeout)
        except Empty:
            return None

    def close(self) -> None:
        """Stop receiving events."""
        self.bus.unsubscribe(self)


class EventBus:
    """Publishes events to subscribers and keeps a short history."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._history: collections.deque[Event] = collections.deque(maxlen=HISTORY)
        self._subscribers: set[Subscription] = set()
        self.published = 0

    def publish(self, type_: str, data: dict[str, Any], owner: Optional[str] = None) -> Event:
        """Publish an event; ``owner`` restricts it to one AC."""
        event = Event(next(self._ids), type_, data, owner)
        self._history.append(event)
        self.published += 1
        for sub in list(self._subscribers):
            sub.offer(event)
        return event

    def subscribe(self, principal: str, last_event_id: Optional[int] = None) -> Subscription:
        """A new subscription, replaying history after ``last_event_id`` when given."""
        sub = Subscription(self, principal)
        if last_event_id is not None:
            for event in self._history:
                if event.id > last_event_id:
                    sub.offer(event)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription."""
        self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        """How many clients are listening."""
        return len(self._subscribers)

    def recent(self, principal: str, limit: int = 100) -> list[Event]:
        """The most recent events ``principal`` may see, oldest first."""
        visible = [e for e in self._history if e.visible_to(principal)]
        return visible[-limit:]


def event_stream(sub: Subscription, heartbeat: float = 15.0,
                 max_seconds: Optional[float] = None) -> Iterator[bytes]:
    """Yield a subscription as text/event-stream chunks, with comment heartbeats.

    Closes the subscription when the client goes away (the WSGI server closes
    the iterator) or after ``max_seconds``.
    """
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    try:
        yield b": cso event stream\nretry: 2000\n\n"
        while deadline is None or time.monotonic() < deadline:
            wait = heartbeat if deadline is None else min(heartbeat, deadline - time.monotonic())
            event = sub.get(timeout=max(wait, 0.0))
            if sub.overflowed:
                sub.overflowed = False
                yield b"event: resync\ndata: {\"type\":\"resync\"}\n\n"
            if event is None:
                yield b": keep-alive\n\n"
            else:
                yield event.encode()
            eventlet.sleep(0)
    finally:
        sub.close()
