"""The DBM: lightpaths, alarms and snapshots survive restarts and crashes; ids are never reused."""
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import eventlet
import pytest

from sc_app.dbm import Database, DatabaseError
from sc_app.lightpath import Lightpath, resolve_endpoint
from topologies.loader import load

TOPO = load("nsfnet")
HERE = os.path.dirname(os.path.abspath(__file__))


def make_lp(db, owner="ac-a", src="10.1.0.1", dst="10.2.7.1", route=("0", "7")):
    lp_id, cookie = db.next_ids()
    links = tuple(TOPO.link_between(a, b).id for a, b in zip(route, route[1:]))
    return Lightpath(lp_id, owner, "vod", src, dst, resolve_endpoint(TOPO, src),
                     resolve_endpoint(TOPO, dst), route, links, 2, cookie,
                     constraints={"bandwidth_gbps": 1.5, "exclude_nodes": ["3"]},
                     created_at=1_700_000_000.25)


def saved_lp(db):
    """`make_lp`, saved in ``db``."""
    lp = make_lp(db)
    db.save_lightpath(lp)
    return lp


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "sc.db")


def test_lightpath_round_trip_and_reopen(path):
    db = Database(path)
    lp = saved_lp(db)
    assert db.get_lightpath(lp.id) == lp
    db.close()
    again = Database(path)
    assert again.get_lightpath(lp.id) == lp and again.list_lightpaths() == [lp]
    assert again.get_lightpath("lp-404") is None


def test_state_updates_follow_the_state_machine(path):
    db = Database(path)
    lp = saved_lp(db)
    up = lp.with_state("up", now=lp.created_at + 2)
    db.write_state(up)
    assert db.get_lightpath(lp.id) == up and up.updated_at == lp.created_at + 2
    with pytest.raises(ValueError):
        up.with_state("installing")
    assert db.get_lightpath(lp.id).state == "up"
    down = up.with_state("down", reason="fibre 0-7 cut")
    db.write_state(down)
    assert db.get_lightpath(lp.id).reason == "fibre 0-7 cut" == down.reason
    with pytest.raises(KeyError):
        db.write_state(dataclasses.replace(up, id="lp-404"))


def test_write_state_records_a_record_moved_by_the_caller(path):
    db = Database(path)
    lp = saved_lp(db)
    up = lp.with_state("up", now=lp.created_at + 2)
    db.write_state(up)
    assert db.get_lightpath(lp.id) == up
    down = up.with_state("down", "fibre 0-7 cut")
    db.write_state(down)
    assert db.get_lightpath(lp.id) == down
    with pytest.raises(KeyError):
        db.write_state(dataclasses.replace(down, id="lp-404"))
    assert db.next_ids()[0] != lp.id  # ids still never handed out twice


def test_list_by_owner_and_delete(path):
    db = Database(path)
    a1, b1, a2 = make_lp(db), make_lp(db, owner="ac-b"), make_lp(db, dst="10.2.4.1",
                                                                 route=("0", "1", "3", "4"))
    for lp in (a1, b1, a2):
        db.save_lightpath(lp)
    assert [lp.id for lp in db.list_lightpaths("ac-a")] == [a1.id, a2.id]
    assert [lp.id for lp in db.list_lightpaths("ac-b")] == [b1.id]
    assert db.delete_lightpath(a1.id) and not db.delete_lightpath(a1.id)
    assert [lp.id for lp in db.list_lightpaths()] == [b1.id, a2.id]


def test_ids_and_cookies_are_never_reused_even_after_restart(path):
    db = Database(path)
    first = [db.next_ids() for _ in range(3)]
    saved_lp(db)       # lp-4 saved, lp-1..3 were never saved (failed)
    db.delete_lightpath("lp-4")
    db.close()
    db = Database(path)
    later = db.next_ids()
    assert later[0] == "lp-5"
    ids = [i for i, _ in first] + ["lp-4", later[0]]
    cookies = [c for _, c in first] + [later[1]]
    assert len(set(ids)) == 5 and len(set(cookies)) == 4


def test_next_ids_from_many_green_threads_are_unique(path):
    db = Database(path)
    pool = eventlet.GreenPool(16)
    ids = list(pool.imap(lambda _: db.next_ids(), range(200)))
    assert len({i for i, _ in ids}) == 200 and len({c for _, c in ids}) == 200


def test_alarm_lifecycle(path):
    db = Database(path)
    cut = db.raise_alarm("link-missing", "major", "0-7", "LLDP never saw 0-7", now=10.0)
    assert db.raise_alarm("link-missing", "major", "0-7", now=11.0) == cut  # not doubled
    other = db.raise_alarm("switch-down", "critical", "dpid 3", now=12.0)
    assert [a.id for a in db.list_alarms()] == [other.id, cut.id]
    cleared = db.clear_alarm("link-missing", "0-7", now=20.0)
    assert cleared.id == cut.id and cleared.cleared_at == 20.0 and not cleared.active
    assert db.clear_alarm("link-missing", "0-7") is None
    assert [a.id for a in db.list_alarms()] == [other.id]
    assert [a.id for a in db.list_alarms(active=False)] == [cut.id]
    again = db.raise_alarm("link-missing", "major", "0-7", now=30.0)
    assert again.id not in (cut.id, other.id)
    db.close()
    history = Database(path).list_alarms(active=None)
    assert [a.id for a in history] == [again.id, other.id, cut.id]
    assert history[2].to_json()["active"] is False and history[2].detail == "LLDP never saw 0-7"
    with pytest.raises(ValueError):
        Database(path).raise_alarm("x", "catastrophic", "y")


def test_config_snapshots(path):
    db = Database(path)
    first = db.snapshot_config({"sc": {"k": 3}}, now=1.0)
    second = db.snapshot_config("[sc]\nk = 4\n", now=2.0)
    db.close()
    assert Database(path).config_snapshots() == [(second, 2.0, "[sc]\nk = 4\n"),
                                                 (first, 1.0, '{"sc": {"k": 3}}')]


def test_wal_mode_and_schema_version(path):
    Database(path).close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.execute("PRAGMA user_version=99")
    raw.close()
    with pytest.raises(DatabaseError):
        Database(path)


def run_child(code, path):
    """Run ``code`` in another interpreter that can import this module as ``test_dbm``."""
    script = f"import sys; sys.path.insert(0, {HERE!r})\n" + textwrap.dedent(code).format(
        path=path)
    return subprocess.Popen([sys.executable, "-c", script])


def test_a_crash_inside_a_transaction_leaves_the_last_commit(path):
    child = run_child("""
        import os
        from test_dbm import saved_lp
        from sc_app.dbm import Database
        db = Database({path!r})
        saved_lp(db)
        with db._write() as raw:
            raw.execute("UPDATE lightpaths SET state = 'up'")
            raw.execute("DELETE FROM counters")
            os._exit(9)
        """, path)
    assert child.wait(timeout=30) == 9
    db = Database(path)
    (lp,) = db.list_lightpaths()
    assert lp.state == "installing" and db.next_ids()[0] == "lp-2"


def committed(path, count):
    """Whether another process has committed at least ``count`` lightpaths yet."""
    if not os.path.exists(path):  # connect() would create it
        return False
    try:
        raw = sqlite3.connect(path, timeout=1)
        try:
            return raw.execute("SELECT count(*) FROM lightpaths").fetchone()[0] >= count
        finally:
            raw.close()
    except sqlite3.OperationalError:  # schema not created yet
        return False


def test_killed_while_writing_the_database_stays_consistent(path):
    child = run_child("""
        from test_dbm import saved_lp
        from sc_app.dbm import Database
        db = Database({path!r})
        while True:
            saved_lp(db)
        """, path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and child.poll() is None and not committed(path, 50):
        time.sleep(0.05)
    assert child.poll() is None, "the writer died on its own"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()
    db = Database(path)
    saved = db.list_lightpaths()
    assert saved, "the child saved nothing before it was killed"
    # Every committed lightpath is whole, and the counter is ahead of all of them.
    assert all(lp.route == ("0", "7") for lp in saved)
    assert int(db.next_ids()[0][3:]) > max(int(lp.id[3:]) for lp in saved)
