"""The SC's database (DBM): lightpaths, alarms and configuration snapshots in SQLite (WAL).

One connection, used from Ryu's green threads (``check_same_thread=False``):
each method is one short transaction that never yields to another green
thread, so transactions cannot interleave. WAL plus explicit transactions make
a crash mid-write leave the last committed state; ``synchronous=NORMAL`` (the
default here) may lose the latest commits on power loss but never corrupts,
``FULL`` trades provisioning latency for that too.

Lightpath ids and cookies come from a persistent counter, so neither is ever
reused, not even after a restart or for a request that failed.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from sc_app.lightpath import Endpoint, Lightpath, Protection, lightpath_cookie

SCHEMA_VERSION = 1
SEVERITIES = ("critical", "major", "minor", "warning")  # ITU-T X.733

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lightpaths (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    service_type TEXT NOT NULL,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    src_endpoint TEXT NOT NULL,      -- JSON
    dst_endpoint TEXT NOT NULL,      -- JSON
    route TEXT NOT NULL,             -- JSON list of node ids
    links TEXT NOT NULL,             -- JSON list of link ids
    wavelength INTEGER,
    cookie INTEGER NOT NULL UNIQUE,
    state TEXT NOT NULL,
    constraints TEXT NOT NULL,       -- JSON object
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    reason TEXT,
    protection TEXT                  -- JSON object, NULL when unprotected
);
CREATE INDEX IF NOT EXISTS lightpaths_owner ON lightpaths (owner);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    raised_at REAL NOT NULL,
    cleared_at REAL
);
CREATE INDEX IF NOT EXISTS alarms_active ON alarms (kind, subject) WHERE cleared_at IS NULL;
-- Protected lightpaths' directions (reverse: 0 or 1) whose fast-failover group the SC turned
-- protection-first (non-revertive: kept across SC restarts, reconciliation restores it).
CREATE TABLE IF NOT EXISTS switched_groups (
    lp_id TEXT NOT NULL,
    reverse INTEGER NOT NULL,
    PRIMARY KEY (lp_id, reverse)
);
CREATE TABLE IF NOT EXISTS config_snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    taken_at REAL NOT NULL,
    content TEXT NOT NULL
);
"""
_LP_COLUMNS = ("id", "owner", "service_type", "src", "dst", "src_endpoint", "dst_endpoint",
               "route", "links", "wavelength", "cookie", "state", "constraints", "created_at",
               "updated_at", "reason", "protection")


class DatabaseError(RuntimeError):
    """The state database cannot be used (e.g. written by a newer schema)."""


@dataclass(frozen=True)
class Alarm:
    """One alarm; active while ``cleared_at`` is None."""

    id: int
    kind: str
    severity: str
    subject: str
    detail: str
    raised_at: float
    cleared_at: Optional[float] = None

    @property
    def active(self) -> bool:
        """Not cleared yet."""
        return self.cleared_at is None

    def to_json(self) -> dict[str, Any]:
        """The REST representation (SMI, ASI events)."""
        return {"id": self.id, "kind": self.kind, "severity": self.severity,
                "subject": self.subject, "detail": self.detail, "raised_at": self.raised_at,
                "cleared_at": self.cleared_at, "active": self.active}


def _lp_row(lp: Lightpath) -> tuple:
    return (lp.id, lp.owner, lp.service_type, lp.src, lp.dst,
            json.dumps(lp.src_endpoint.to_json()), json.dumps(lp.dst_endpoint.to_json()),
            json.dumps(list(lp.route)), json.dumps(list(lp.links)), lp.wavelength, lp.cookie,
            lp.state, json.dumps(lp.constraints, sort_keys=True), lp.created_at, lp.updated_at,
            lp.reason,
            None if lp.protection is None else json.dumps(lp.protection.to_json()))


def _lp_from(row: sqlite3.Row) -> Lightpath:
    return Lightpath(
        id=row["id"], owner=row["owner"], service_type=row["service_type"], src=row["src"],
        dst=row["dst"], src_endpoint=Endpoint.from_json(json.loads(row["src_endpoint"])),
        dst_endpoint=Endpoint.from_json(json.loads(row["dst_endpoint"])),
        route=tuple(json.loads(row["route"])), links=tuple(json.loads(row["links"])),
        wavelength=row["wavelength"], cookie=row["cookie"], state=row["state"],
        constraints=json.loads(row["constraints"]), created_at=row["created_at"],
        updated_at=row["updated_at"], reason=row["reason"],
        protection=None if row["protection"] is None
        else Protection.from_json(json.loads(row["protection"])))


class Database:
    """The DBM: persistent lightpaths, alarms, configuration snapshots and id counter."""

    def __init__(self, path: str, synchronous: str = "NORMAL"):
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = path
        # Autocommit mode: every transaction is opened explicitly by _write().
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=5.0)
        self._db.row_factory = sqlite3.Row
        # Green threads never interleave inside one call; this covers real threads.
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseError(f"{self.path}: schema version {version} is newer than "
                                f"{SCHEMA_VERSION}: upgrade the SC")
        with self._write() as db:
            # Not executescript(): it would commit, and the schema must land whole or not at all.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR IGNORE INTO counters (name, value) VALUES ('lightpath', 0)")
            # A database made before protection existed: the column is added, NULL for all.
            columns = {row[1] for row in db.execute("PRAGMA table_info(lightpaths)")}
            if "protection" not in columns:
                db.execute("ALTER TABLE lightpaths ADD COLUMN protection TEXT")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the connection (a checkpoint folds the WAL into the file)."""
        with self._lock:
            self._db.close()

    # --- ids ---------------------------------------------------------------------------

    def next_ids(self) -> tuple[str, int]:
        """A fresh lightpath id (``lp-<n>``) and its cookie; never handed out twice."""
        with self._write() as db:
            db.execute("UPDATE counters SET value = value + 1 WHERE name = 'lightpath'")
            serial = db.execute("SELECT value FROM counters WHERE name = 'lightpath'"
                                ).fetchone()[0]
        return f"lp-{serial}", lightpath_cookie(serial)

    # --- lightpaths --------------------------------------------------------------------

    def save_lightpath(self, lp: Lightpath) -> None:
        """Insert or replace the whole record."""
        placeholders = ", ".join("?" * len(_LP_COLUMNS))
        with self._write() as db:
            db.execute(f"INSERT OR REPLACE INTO lightpaths ({', '.join(_LP_COLUMNS)}) "
                       f"VALUES ({placeholders})", _lp_row(lp))

    def write_state(self, lp: Lightpath) -> None:
        """Record the state, reason and time of ``lp``, a record the caller moved itself
        (`Lightpath.with_state` checks the transition); KeyError if it was never saved.

        Nothing is re-read: the SA holds every record it saved.
        """
        with self._write() as db:
            cursor = db.execute("UPDATE lightpaths SET state = ?, reason = ?, updated_at = ? "
                                "WHERE id = ?", (lp.state, lp.reason, lp.updated_at, lp.id))
            if cursor.rowcount == 0:
                raise KeyError(lp.id)

    def delete_lightpath(self, lp_id: str) -> bool:
        """Forget a lightpath (and its switched groups); False if there was none."""
        with self._write() as db:
            db.execute("DELETE FROM switched_groups WHERE lp_id = ?", (lp_id,))
            return db.execute("DELETE FROM lightpaths WHERE id = ?", (lp_id,)).rowcount > 0

    def set_switched(self, lp_id: str, reverse: bool, switched: bool) -> None:
        """Record whether a protected lightpath's group of one direction is turned."""
        with self._write() as db:
            if switched:
                db.execute("INSERT OR IGNORE INTO switched_groups (lp_id, reverse) "
                           "VALUES (?, ?)", (lp_id, int(reverse)))
            else:
                db.execute("DELETE FROM switched_groups WHERE lp_id = ? AND reverse = ?",
                           (lp_id, int(reverse)))

    def list_switched(self) -> dict[str, set[bool]]:
        """Lightpath id -> the directions (reverse?) whose group the SC turned."""
        out: dict[str, set[bool]] = {}
        for row in self._read("SELECT lp_id, reverse FROM switched_groups"):
            out.setdefault(row["lp_id"], set()).add(bool(row["reverse"]))
        return out

    def get_lightpath(self, lp_id: str) -> Optional[Lightpath]:
        """The lightpath ``lp_id``, or None."""
        rows = self._read("SELECT * FROM lightpaths WHERE id = ?", (lp_id,))
        return _lp_from(rows[0]) if rows else None

    def list_lightpaths(self, owner: Optional[str] = None) -> list[Lightpath]:
        """All lightpaths, or one owner's, oldest first."""
        if owner is None:
            rows = self._read("SELECT * FROM lightpaths ORDER BY created_at, cookie")
        else:
            rows = self._read("SELECT * FROM lightpaths WHERE owner = ? "
                              "ORDER BY created_at, cookie", (owner,))
        return [_lp_from(row) for row in rows]

    # --- alarms ------------------------------------------------------------------------

    def raise_alarm(self, kind: str, severity: str, subject: str, detail: str = "",
                    now: Optional[float] = None) -> Alarm:
        """Raise an alarm; an active one of the same kind and subject is returned, not doubled."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        with self._write() as db:
            row = db.execute("SELECT * FROM alarms WHERE kind = ? AND subject = ? "
                             "AND cleared_at IS NULL", (kind, subject)).fetchone()
            if row is None:
                cursor = db.execute("INSERT INTO alarms (kind, severity, subject, detail, "
                                    "raised_at) VALUES (?, ?, ?, ?, ?)",
                                    (kind, severity, subject, detail,
                                     time.time() if now is None else now))
                row = db.execute("SELECT * FROM alarms WHERE id = ?",
                                 (cursor.lastrowid,)).fetchone()
        return Alarm(**dict(row))

    def clear_alarm(self, kind: str, subject: str, now: Optional[float] = None) -> Optional[Alarm]:
        """Clear the active alarm of ``kind`` on ``subject``; the cleared alarm, or None."""
        with self._write() as db:
            row = db.execute("SELECT * FROM alarms WHERE kind = ? AND subject = ? "
                             "AND cleared_at IS NULL", (kind, subject)).fetchone()
            if row is None:
                return None
            cleared = time.time() if now is None else now
            db.execute("UPDATE alarms SET cleared_at = ? WHERE id = ?", (cleared, row["id"]))
        return Alarm(**{**dict(row), "cleared_at": cleared})

    def list_alarms(self, active: Optional[bool] = True, limit: int = 1000) -> list[Alarm]:
        """Active alarms (``active=True``), cleared (False) or all (None), newest first."""
        where = {True: "WHERE cleared_at IS NULL", False: "WHERE cleared_at IS NOT NULL",
                 None: ""}[active]
        rows = self._read(f"SELECT * FROM alarms {where} ORDER BY id DESC LIMIT ?", (limit,))
        return [Alarm(**dict(row)) for row in rows]

    # --- configuration -----------------------------------------------------------------

    def snapshot_config(self, content: Any, now: Optional[float] = None) -> int:
        """Store the running configuration (JSON-serialisable or text); the snapshot id."""
        text = content if isinstance(content, str) else json.dumps(content, sort_keys=True)
        with self._write() as db:
            return db.execute("INSERT INTO config_snapshots (taken_at, content) VALUES (?, ?)",
                              (time.time() if now is None else now, text)).lastrowid

    def config_snapshots(self, limit: int = 10) -> list[tuple[int, float, str]]:
        """(id, taken_at, content) of the latest snapshots, newest first."""
        rows = self._read("SELECT id, taken_at, content FROM config_snapshots "
                          "ORDER BY id DESC LIMIT ?", (limit,))
        return [(row["id"], row["taken_at"], row["content"]) for row in rows]
