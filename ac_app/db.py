"""The AC's DB (CSO draft §3.1): every UAI request, its resources and its accounting, in SQLite.

One row per request, whatever became of it: refused and failed requests stay for accounting
(blocking probabilities) next to the ones served. A row holds the user's request (type, source,
specifics), what the procedure reached (stage, status), what was taken (DC, server, VM,
lightpath) and what is still held (``vm_id`` and ``lightpath_id`` are cleared only once the
agent or the SC has confirmed the release), so a restarted AC knows what to give back.

Times are Unix seconds (wall clock): accounting outlives restarts.
"""
from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional, Sequence

DB_FILE = "ac.db"
ID_PREFIX = "req-"

PENDING = "pending"
ACTIVE = "active"
RELEASING = "releasing"
RELEASED = "released"
REFUSED = "refused"
FAILED = "failed"
STATUSES = (PENDING, ACTIVE, RELEASING, RELEASED, REFUSED, FAILED)
#: Statuses a request never leaves.
FINAL = (RELEASED, REFUSED, FAILED)
#: ``lightpath_id`` of a request whose establish answer was lost (or not yet received): the
#: lightpath may exist all the same, found by the request's endpoints (``src``, ``vm_ip``).
UNKNOWN_LIGHTPATH = "?"

_JSON_COLUMNS = ("spec", "lightpath", "choice")


#: A request still holds a VM or a lightpath (a release to retry once it is over).
_HOLDS = "(vm_id IS NOT NULL OR lightpath_id IS NOT NULL)"


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


@dataclass(frozen=True)
class Record:
    """One UAI request as the DB holds it (immutable: `RequestStore.update` gives a new one)."""

    seq: int
    owner: str
    type: str
    status: str
    created: float
    src: str
    src_node: str
    duration_s: float
    strategy: str
    spec: Mapping[str, Any]
    cpu: float = 0.0
    memory_gb: float = 0.0
    disk_gb: float = 0.0
    stage: Optional[str] = None
    started: Optional[float] = None
    ends_at: Optional[float] = None
    ended: Optional[float] = None
    dc: Optional[str] = None
    node: Optional[str] = None
    server: Optional[str] = None
    vm_id: Optional[str] = None
    vm_ip: Optional[str] = None
    lightpath_id: Optional[str] = None
    lightpath: Optional[Mapping[str, Any]] = None
    choice: Optional[Mapping[str, Any]] = None
    stratum: Optional[str] = None
    reason: Optional[str] = None
    detail: Optional[str] = None
    end_reason: Optional[str] = None
    rating: Optional[int] = None
    #: Releases not confirmed yet (`leftovers`): since when, attempts, the last error, and
    #: when the alarm was raised (None: not yet).
    leftover_since: Optional[float] = None
    leftover_attempts: int = 0
    leftover_error: Optional[str] = None
    leftover_alarm: Optional[float] = None

    @property
    def id(self) -> str:
        """The request's id on UAI (``req-<n>``); also its VM's id on the agent."""
        return f"{ID_PREFIX}{self.seq}"

    @property
    def leftovers(self) -> list[str]:
        """What a request that is over still holds (a release the peer did not confirm)."""
        if self.status not in FINAL:
            return []
        return [what for what, held in (("vm", self.vm_id), ("lightpath", self.lightpath_id))
                if held]

    def held_seconds(self, now: float) -> float:
        """How long the request has held its resources (until now while it holds them)."""
        if self.started is None:
            return 0.0
        return max(0.0, (self.ended if self.ended is not None else now) - self.started)


def parse_id(request_id: str) -> Optional[int]:
    """The sequence number of ``req-<n>``, or None when it is not a request id."""
    if not request_id.startswith(ID_PREFIX):
        return None
    digits = request_id[len(ID_PREFIX):]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18 or digits[0] == "0":
        return None
    return int(digits)


def iso(timestamp: Optional[float]) -> Optional[str]:
    """A Unix time as ISO 8601 UTC with milliseconds (None stays None)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds")


_COLUMNS = tuple(f.name for f in fields(Record))
_TYPES = {"seq": "INTEGER PRIMARY KEY AUTOINCREMENT", "created": "REAL NOT NULL",
          "duration_s": "REAL NOT NULL", "cpu": "REAL NOT NULL", "memory_gb": "REAL NOT NULL",
          "disk_gb": "REAL NOT NULL", "started": "REAL", "ends_at": "REAL", "ended": "REAL",
          "rating": "INTEGER", "leftover_since": "REAL",
          "leftover_attempts": "INTEGER NOT NULL DEFAULT 0", "leftover_alarm": "REAL"}
_SCHEMA = ("CREATE TABLE IF NOT EXISTS requests ("
           + ", ".join(f"{name} {_TYPES.get(name, 'TEXT')}" for name in _COLUMNS) + ")")


def _to_row(name: str, value: Any) -> Any:
    return json.dumps(value) if name in _JSON_COLUMNS and value is not None else value


def _from_row(row: Iterable[Any]) -> Record:
    values = dict(zip(_COLUMNS, row))
    for name in _JSON_COLUMNS:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    return Record(**values)


class RequestStore:
    """Requests in a SQLite file (WAL); every change is one committed statement."""

    def __init__(self, path: str):
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._add_missing_columns()
        self._db.execute("CREATE INDEX IF NOT EXISTS requests_status ON requests (status)")

    def _add_missing_columns(self) -> None:
        """Columns added since the file was made (an older AC's DB) are added, empty."""
        present = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
        for name in _COLUMNS:
            if name not in present:
                self._db.execute(f"ALTER TABLE requests ADD COLUMN {name} "
                                 f"{_TYPES.get(name, 'TEXT')}")

    def create(self, **values: Any) -> Record:
        """Record a new request (``seq`` is assigned); the record."""
        record = Record(seq=0, **values)
        names = [name for name in _COLUMNS if name != "seq"]
        cursor = self._db.execute(
            f"INSERT INTO requests ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [_to_row(name, getattr(record, name)) for name in names])
        return replace(record, seq=cursor.lastrowid)

    def update(self, record: Record, expect: Optional[str] = None, **changes: Any) -> Record:
        """Change fields of ``record``; the new record.

        With ``expect``, only while the stored status is still ``expect``: a status change
        that another green thread made first wins, and this one raises `StatusChanged`.
        """
        unknown = (set(changes) - set(_COLUMNS)) | ({"seq"} & set(changes))
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        sets = ", ".join(f"{name} = ?" for name in changes)
        args = [_to_row(name, value) for name, value in changes.items()]
        sql = f"UPDATE requests SET {sets} WHERE seq = ?"
        args.append(record.seq)
        if expect is not None:
            sql += " AND status = ?"
            args.append(expect)
        if self._db.execute(sql, args).rowcount != 1:
            raise StatusChanged(record.id, expect)
        return replace(record, **changes)

    def get(self, seq: int) -> Optional[Record]:
        """The request with sequence number ``seq``, or None."""
        found = self._select("seq = ?", (seq,))
        return found[0] if found else None

    def find(self, request_id: str) -> Optional[Record]:
        """The request named ``request_id`` (``req-<n>``), or None (also for a malformed id)."""
        seq = parse_id(request_id)
        return self.get(seq) if seq is not None else None

    def list(self, owner: Optional[str] = None, status: Optional[str] = None,
             type_: Optional[str] = None) -> list[Record]:
        """Requests, oldest first, optionally of one owner, status and type."""
        where, args = [], []
        for column, value in (("owner", owner), ("status", status), ("type", type_)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        return self._select(" AND ".join(where) or "1", args)

    def due(self, now: float) -> list[Record]:
        """Active requests whose time is up at ``now``, soonest first."""
        return self._select("status = ? AND ends_at <= ?", (ACTIVE, now), "ends_at, seq")

    def next_end(self) -> Optional[float]:
        """When the next active request expires (None: none is active)."""
        return self._db.execute("SELECT MIN(ends_at) FROM requests WHERE status = ?",
                                (ACTIVE,)).fetchone()[0]

    def leftovers(self) -> list[Record]:
        """Requests that are over but still hold a VM or a lightpath (releases to retry)."""
        return self._select(f"status IN ({_marks(FINAL)}) AND {_HOLDS}", FINAL)

    def holding(self) -> list[Record]:
        """Requests that hold or may hold something: not over yet, or over with leftovers."""
        return self._select(f"status NOT IN ({_marks(FINAL)}) OR {_HOLDS}", FINAL)

    def connected(self, src: str, vm_ip: str) -> bool:
        """True when some request, whatever became of it, joined ``src`` to ``vm_ip``."""
        return self._db.execute("SELECT 1 FROM requests WHERE src = ? AND vm_ip = ? LIMIT 1",
                                (src, vm_ip)).fetchone() is not None

    def unfinished(self) -> list[Record]:
        """Requests a stopped AC left pending or releasing (to settle at start-up)."""
        return self._select("status IN (?, ?)", (PENDING, RELEASING))

    def _select(self, where: str, args: Sequence[Any], order: str = "seq") -> list[Record]:
        rows = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM requests WHERE {where} ORDER BY {order}", args)
        return [_from_row(row) for row in rows]

    def close(self) -> None:
        """Close the database."""
        self._db.close()


class StatusChanged(Exception):
    """A conditional update found the request in another status than expected."""

    def __init__(self, request_id: str, expected: Optional[str]):
        super().__init__(f"{request_id} is no longer {expected}")
        self.request_id = request_id


# -- accounting -------------------------------------------------------------------------------

#: Request types accounted separately.
ACCOUNTED_TYPES = ("vod", "vm", "migration")


def migration_json(record: Record) -> Optional[dict[str, Any]]:
    """What a migration request moved: the ``request`` and its old and new DC (None otherwise)."""
    if record.type != "migration":
        return None
    return {key: record.spec.get(key) for key in ("request", "from_dc", "to_dc")}


def accounting_entry(record: Record, now: float) -> dict[str, Any]:
    """One request's accounting: type, resources held, start/end, time held, QoE rating.

    A request never served held nothing (all zero); ``end`` is null while it still holds.
    """
    served = record.started is not None
    lightpath = record.lightpath or {}
    return {
        "id": record.id, "owner": record.owner, "type": record.type, "status": record.status,
        "start": iso(record.started), "end": iso(record.ended) if served else None,
        "duration_s": round(record.held_seconds(now), 3),
        "resources": {
            "cpu": record.cpu if served else 0.0,
            "memory_gb": record.memory_gb if served else 0.0,
            "disk_gb": record.disk_gb if served else 0.0,
            "wavelength": lightpath.get("wavelength"),
            "hops": lightpath.get("hops", 0) if served else 0,
        },
        "dc": record.dc if served else None, "server": record.server if served else None,
        "rating": record.rating, "stratum": record.stratum, "reason": record.reason,
        **({"migration": migration_json(record)} if record.type == "migration" else {}),
    }


def accounting_totals(records: Iterable[Record], now: float) -> dict[str, dict[str, Any]]:
    """Sums per request type and over all: requests by outcome, time and resources held.

    Resources are integrated over the time held: ``cpu_s`` core-seconds, ``memory_gb_s``,
    ``disk_gb_s`` GB-seconds, ``wavelength_link_s`` one wavelength on one fibre for a second
    (a lightpath of h hops held t seconds counts h·t). ``mean_rating`` is over rated requests.
    """
    totals = {kind: _zero() for kind in (*ACCOUNTED_TYPES, "all")}
    for record in records:
        held = record.held_seconds(now)
        hops = (record.lightpath or {}).get("hops") or 0
        for key in (record.type, "all"):
            total = totals.setdefault(key, _zero())
            total["requests"] += 1
            total["served"] += record.started is not None
            total["active"] += record.status in (ACTIVE, RELEASING)
            total["refused"] += record.status == REFUSED
            total["failed"] += record.status == FAILED
            total["duration_s"] += held
            total["cpu_s"] += record.cpu * held
            total["memory_gb_s"] += record.memory_gb * held
            total["disk_gb_s"] += record.disk_gb * held
            total["wavelength_link_s"] += hops * held
            if record.rating is not None:
                total["_ratings"].append(record.rating)
    for total in totals.values():
        ratings = total.pop("_ratings")
        total["mean_rating"] = round(sum(ratings) / len(ratings), 3) if ratings else None
        for key in ("duration_s", "cpu_s", "memory_gb_s", "disk_gb_s", "wavelength_link_s"):
            total[key] = round(total[key], 3)
    return totals


def _zero() -> dict[str, Any]:
    return {"requests": 0, "served": 0, "active": 0, "refused": 0, "failed": 0,
            "duration_s": 0.0, "cpu_s": 0.0, "memory_gb_s": 0.0, "disk_gb_s": 0.0,
            "wavelength_link_s": 0.0, "_ratings": []}
