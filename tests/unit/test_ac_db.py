"""The AC's DB: records survive a reopen, conditional status changes, due/leftover queries,
request ids, and the accounting sums."""
import sqlite3

import pytest

from ac_app.db import (ACTIVE, FAILED, PENDING, REFUSED, RELEASED, RELEASING, RequestStore,
                       StatusChanged, accounting_entry, accounting_totals, iso, parse_id)

T0 = 1_700_000_000.0


def new(store, **changes):
    values = dict(owner="alice", type="vod", status=PENDING, created=T0, src="10.1.0.1",
                  src_node="0", duration_s=60.0, strategy="GLB",
                  spec={"constraints": {}, "content": "movie"}, cpu=1.0, memory_gb=2.0,
                  disk_gb=3.0)
    values.update(changes)
    return store.create(**values)


@pytest.fixture
def store(tmp_path):
    the_store = RequestStore(str(tmp_path / "state" / "ac.db"))
    yield the_store
    the_store.close()


def test_records_are_numbered_and_survive_a_reopen(tmp_path):
    path = str(tmp_path / "ac.db")
    store = RequestStore(path)
    first, second = new(store), new(store, owner="bob", type="vm")
    assert (first.id, second.id) == ("req-1", "req-2")
    store.update(first, status=ACTIVE, started=T0, ends_at=T0 + 60,
                 lightpath={"id": "lp-1", "hops": 2, "wavelength": 3}, vm_id="req-1")
    store.close()
    store = RequestStore(path)
    again = store.get(1)
    assert (again.status, again.lightpath["hops"], again.spec["content"]) == (ACTIVE, 2, "movie")
    assert [r.id for r in store.list(owner="bob")] == ["req-2"]
    assert [r.id for r in store.list(status=ACTIVE, type_="vod")] == ["req-1"]
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_conditional_update_loses_to_a_status_changed_first(store):
    record = new(store, status=ACTIVE)
    store.update(record, expect=ACTIVE, status=RELEASING)
    with pytest.raises(StatusChanged):
        store.update(record, expect=ACTIVE, status=RELEASING)
    with pytest.raises(ValueError):
        store.update(record, seq=5)
    with pytest.raises(ValueError):
        store.update(record, colour="red")


def test_due_next_end_leftovers_and_unfinished(store):
    a = new(store, status=ACTIVE, started=T0, ends_at=T0 + 10)
    b = new(store, status=ACTIVE, started=T0, ends_at=T0 + 5)
    new(store, status=RELEASED, started=T0, ends_at=T0 + 1, ended=T0 + 1)
    c = new(store, status=REFUSED, vm_id="req-4")
    d = new(store, status=RELEASING)
    assert store.next_end() == T0 + 5
    assert [r.id for r in store.due(T0 + 4)] == []
    assert [r.id for r in store.due(T0 + 10)] == [b.id, a.id]
    assert [r.id for r in store.leftovers()] == [c.id]
    assert store.get(c.seq).leftovers == ["vm"] and store.get(a.seq).leftovers == []
    assert [r.id for r in store.unfinished()] == [d.id]


@pytest.mark.parametrize("text, seq", [
    ("req-1", 1), ("req-42", 42), ("req-0", None), ("req-01", None), ("req-", None),
    ("req-1a", None), ("lp-1", None), ("req-١", None), ("req-" + "9" * 19, None), ("", None),
])
def test_parse_id(text, seq):
    assert parse_id(text) == seq


def test_iso():
    assert iso(None) is None
    assert iso(T0) == "2023-11-14T22:13:20.000+00:00"


def test_accounting_entry_of_served_and_refused_requests(store):
    served = new(store, status=ACTIVE, started=T0, ends_at=T0 + 60, dc="dc1", server="s",
                 lightpath={"id": "lp-1", "hops": 3, "wavelength": 7}, rating=4)
    entry = accounting_entry(served, T0 + 20)
    assert entry["duration_s"] == 20 and entry["end"] is None
    assert entry["resources"] == {"cpu": 1.0, "memory_gb": 2.0, "disk_gb": 3.0,
                                  "wavelength": 7, "hops": 3}
    refused = new(store, status=REFUSED, ended=T0, stratum="network", reason="no-wavelength")
    entry = accounting_entry(refused, T0 + 20)
    assert entry["resources"] == {"cpu": 0.0, "memory_gb": 0.0, "disk_gb": 0.0,
                                  "wavelength": None, "hops": 0}
    assert (entry["duration_s"], entry["start"], entry["end"], entry["reason"]) == (
        0, None, None, "no-wavelength")


def test_accounting_totals_integrate_resources_over_time_held(store):
    records = [
        new(store, status=RELEASED, started=T0, ended=T0 + 10, rating=5,
            lightpath={"hops": 2}),
        new(store, status=ACTIVE, started=T0 + 5, rating=2, cpu=4.0, lightpath={"hops": 1}),
        new(store, type="vm", status=FAILED, ended=T0),
        new(store, type="vm", status=RELEASING, started=T0, cpu=2.0, memory_gb=8.0,
            disk_gb=0.0),
    ]
    totals = accounting_totals(records, T0 + 20)
    assert totals["vod"] == {"requests": 2, "served": 2, "active": 1, "refused": 0,
                             "failed": 0, "duration_s": 25.0, "cpu_s": 70.0,
                             "memory_gb_s": 50.0, "disk_gb_s": 75.0,
                             "wavelength_link_s": 35.0, "mean_rating": 3.5}
    assert totals["vm"] == {"requests": 2, "served": 1, "active": 1, "refused": 0,
                            "failed": 1, "duration_s": 20.0, "cpu_s": 40.0,
                            "memory_gb_s": 160.0, "disk_gb_s": 0.0, "wavelength_link_s": 0.0,
                            "mean_rating": None}
    assert totals["all"]["requests"] == 4 and totals["all"]["cpu_s"] == 110.0
    assert accounting_totals([], T0)["all"]["requests"] == 0
