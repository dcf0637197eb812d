"""RFC 8895 update streams of the ALTO server: event streams, merge patches, stream control.

A client POSTs an update stream request naming substreams (client id -> ``resource-id``, with
``input`` for POST resources) and keeps the answer open. The stream (text/event-stream) sends:

1. a control event (``event: application/alto-updatestreamcontrol+json``) with the
   ``control-uri`` of this stream;
2. each substream's full data (``event: <media type>,<client id>``), unless the request's
   ``tag`` is already the resource's current vtag;
3. after every TED change that changes a substream's content, a JSON merge patch (RFC 7396,
   ``event: application/merge-patch+json,<client id>``) from the data last sent, or the full
   data again when the client asked for ``"incremental-changes": false``.

POSTing ``add`` / ``remove`` to the control URI (answered 204) starts or stops substreams; the
stream says so with ``started`` / ``stopped`` control events and ends when none is left.
Comment lines keep an idle connection alive.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Optional

import eventlet
from eventlet.queue import Empty, LightQueue

from cso_base.wire import (E_INVALID_FIELD_TYPE, E_INVALID_FIELD_VALUE, E_MISSING_FIELD,
                           MERGE_PATCH, UPDATE_STREAM_CONTROL)
from sc_app.alto import RESOURCE_ID, AltoError, AltoServer, get_field, get_strings, merge_patch
from sc_app.events import stream_event

_CHANGED, _ADD, _REMOVE = "changed", "add", "remove"


@dataclass
class Substream:
    """One resource carried by a stream, and the data its client holds."""

    client_id: str
    resource_id: str
    params: Optional[dict[str, Any]]
    incremental: bool
    tag: Optional[str]
    data: Optional[dict[str, Any]] = None


class UpdateStream:
    """One client's update stream: its substreams and a queue of changes and control requests."""

    def __init__(self, streams: "UpdateStreams", stream_id: str, owner: str,
                 control_uri: str, client: Optional[str], initial: list[Substream]):
        self.streams = streams
        self.server = streams.server
        self.id = stream_id
        self.owner = owner
        self.control_uri = control_uri
        self.client = client
        #: Client ids in use, as control requests see them (the generator catches up).
        self.ids = {sub.client_id for sub in initial}
        self._initial = initial
        self._active: dict[str, Substream] = {}
        self._queue: LightQueue = LightQueue()
        self._dirty = False

    def wake(self) -> None:
        """The TED changed: recompute the substreams (once per burst of changes)."""
        if not self._dirty:
            self._dirty = True
            self._queue.put((_CHANGED, None))

    def control(self, body: Mapping[str, Any]) -> None:
        """A stream control request: validate it (AltoError), then queue it for the stream."""
        remove = get_strings(body, "remove", "remove") or []
        for client_id in remove:
            if client_id not in self.ids:
                raise AltoError(E_INVALID_FIELD_VALUE, "remove", client_id)
        taken = self.ids - set(remove)
        add = parse_add(self.server, body, taken, self.client, required=False)
        if remove:
            self.ids -= set(remove)
            self._queue.put((_REMOVE, remove))
        if add:
            self.ids |= {sub.client_id for sub in add}
            self._queue.put((_ADD, add))

    def events(self, heartbeat: float = 15.0,
               max_seconds: Optional[float] = None) -> Iterator[bytes]:
        """The stream as text/event-stream chunks; ends when no substream is left."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        # Registered here, not when made: a generator never started never runs its finally.
        self.streams.register(self)
        stop_watching = self.server.watch(self.wake)
        try:
            yield stream_event(UPDATE_STREAM_CONTROL, {"control-uri": self.control_uri})
            yield from self._start(self._initial, announce=False)
            while self._active and (deadline is None or time.monotonic() < deadline):
                wait = heartbeat if deadline is None else min(heartbeat,
                                                              deadline - time.monotonic())
                try:
                    items = [self._queue.get(timeout=max(wait, 0.0))]
                except Empty:
                    yield b": keep-alive\n\n"
                    continue
                while not self._queue.empty():
                    items.append(self._queue.get_nowait())
                for kind, arg in items:
                    if kind == _ADD:
                        yield from self._start(arg, announce=True)
                    elif kind == _REMOVE:
                        yield from self._stop(arg)
                if any(kind == _CHANGED for kind, _arg in items):
                    self._dirty = False
                    yield from self._updates()
                eventlet.sleep(0)
        finally:
            stop_watching()
            self.streams.close(self)

    def _render(self, sub: Substream) -> tuple[str, dict[str, Any]]:
        return self.server.render(sub.resource_id, sub.params, self.client)

    def _start(self, subs: list[Substream], announce: bool) -> Iterator[bytes]:
        if announce:
            yield stream_event(UPDATE_STREAM_CONTROL, {"started": [s.client_id for s in subs]})
        for sub in subs:
            media_type, body = self._render(sub)
            self._active[sub.client_id] = sub
            vtag = body.get("meta", {}).get("vtag", {}).get("tag")
            known = sub.tag is not None and sub.tag == vtag
            sub.data = body
            if not known:
                yield stream_event(f"{media_type},{sub.client_id}", body)

    def _stop(self, client_ids: list[str]) -> Iterator[bytes]:
        for client_id in client_ids:
            self._active.pop(client_id, None)
        yield stream_event(UPDATE_STREAM_CONTROL, {"stopped": client_ids})

    def _updates(self) -> Iterator[bytes]:
        for sub in list(self._active.values()):
            media_type, body = self._render(sub)
            if body == sub.data:
                continue
            if sub.incremental:
                yield stream_event(f"{MERGE_PATCH},{sub.client_id}", merge_patch(sub.data, body))
            else:
                yield stream_event(f"{media_type},{sub.client_id}", body)
            sub.data = body


def parse_add(server: AltoServer, body: Mapping[str, Any], taken: Iterable[str],
              client: Optional[str], required: bool = True) -> list[Substream]:
    """The ``add`` part of an update stream request, each input checked by rendering it once."""
    add = get_field(body, "add", "object", "add", required)
    if add is None:
        return []
    if required and not add:
        raise AltoError(E_INVALID_FIELD_VALUE, "add", add)
    taken = set(taken)
    subs = []
    for client_id, spec in add.items():
        path = f"add/{client_id}"
        if not RESOURCE_ID.fullmatch(client_id) or client_id in taken:
            raise AltoError(E_INVALID_FIELD_VALUE, "add", client_id)
        if not isinstance(spec, dict):
            raise AltoError(E_INVALID_FIELD_TYPE, path)
        resource_id = get_field(spec, "resource-id", "string", f"{path}/resource-id", True)
        if resource_id not in server.streamable:
            raise AltoError(E_INVALID_FIELD_VALUE, f"{path}/resource-id", resource_id)
        tag = get_field(spec, "tag", "string", f"{path}/tag")
        incremental = get_field(spec, "incremental-changes", "boolean",
                                f"{path}/incremental-changes")
        needs_input = server.resources[resource_id].accepts is not None
        params = get_field(spec, "input", "object", f"{path}/input", needs_input)
        try:
            server.render(resource_id, params if needs_input else None, client)
        except AltoError as err:
            if err.code == E_MISSING_FIELD or err.field:
                err.field = f"{path}/input" + (f"/{err.field}" if err.field else "")
            raise
        subs.append(Substream(client_id, resource_id, params if needs_input else None,
                              incremental is not False, tag))
    return subs


class UpdateStreams:
    """The open update streams of one ALTO server, by stream id."""

    def __init__(self, server: AltoServer):
        self.server = server
        self._streams: dict[str, UpdateStream] = {}

    def open(self, owner: str, body: Mapping[str, Any], client: Optional[str],
             control_base: str) -> UpdateStream:
        """A new stream for an update stream request (AltoError if it is invalid).

        It is registered (its control URI answers) once its events are being sent.
        """
        initial = parse_add(self.server, body, (), client)
        stream_id = secrets.token_urlsafe(12)
        return UpdateStream(self, stream_id, owner, control_base + stream_id, client, initial)

    def register(self, stream: UpdateStream) -> None:
        """A stream starts sending."""
        self._streams[stream.id] = stream

    def get(self, stream_id: str, owner: str) -> Optional[UpdateStream]:
        """The open stream ``stream_id`` if ``owner`` opened it."""
        stream = self._streams.get(stream_id)
        return stream if stream is not None and stream.owner == owner else None

    def ids(self) -> list[str]:
        """The ids of the open streams."""
        return list(self._streams)

    def close(self, stream: UpdateStream) -> None:
        """Forget a stream that ended."""
        self._streams.pop(stream.id, None)

    def __len__(self) -> int:
        return len(self._streams)
