"""The ASI event stream: visibility, history replay, overflow, text/event-stream framing."""
import json

from sc_app import events
from sc_app.events import EventBus, event_stream


def parse(chunk: bytes) -> dict:
    fields = dict(line.split(": ", 1) for line in chunk.decode().strip().split("\n"))
    return {"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])}


def test_owner_sees_own_and_global_events_only():
    bus = EventBus()
    a, b = bus.subscribe("ac-a"), bus.subscribe("ac-b")
    bus.publish("lightpath", {"id": "lp-1", "state": "up"}, owner="ac-a")
    bus.publish("alarm", {"kind": "link-down"})
    assert [e.type for e in (a.get(0), a.get(0))] == ["lightpath", "alarm"]
    assert b.get(0).type == "alarm" and b.get(0) is None


def test_replay_after_last_event_id():
    bus = EventBus()
    for n in range(5):
        bus.publish("alarm", {"n": n})
    sub = bus.subscribe("x", last_event_id=3)
    assert [sub.get(0).data["n"] for _ in range(2)] == [3, 4]
    assert [e.data["n"] for e in bus.recent("x", limit=2)] == [3, 4]


def test_overflow_asks_client_to_resync(monkeypatch):
    monkeypatch.setattr(events, "QUEUE_LIMIT", 2)
    bus = EventBus()
    sub = bus.subscribe("x")
    for n in range(3):
        bus.publish("alarm", {"n": n})
    stream = event_stream(sub, heartbeat=0.01)
    assert next(stream).startswith(b": cso")
    assert next(stream).startswith(b"event: resync")


def test_event_stream_framing_and_unsubscribe_on_close():
    bus = EventBus()
    sub = bus.subscribe("x")
    stream = event_stream(sub, heartbeat=0.01)
    next(stream)
    assert next(stream) == b": keep-alive\n\n"
    bus.publish("lightpath", {"id": "lp-9"}, owner="x")
    event = parse(next(stream))
    assert event["event"] == "lightpath" and event["data"]["id"] == "lp-9"
    assert bus.subscribers == 1
    stream.close()
    assert bus.subscribers == 0


def test_stream_ends_after_max_seconds():
    bus = EventBus()
    chunks = list(event_stream(bus.subscribe("x"), heartbeat=0.01, max_seconds=0.05))
    assert chunks[0].startswith(b": cso") and bus.subscribers == 0
