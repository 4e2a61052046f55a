"""The audit trail: every config change, acknowledgement and comment, with who and when.

Append-only by construction: SQLite triggers refuse UPDATE and DELETE, so not even a bug in
the hub can rewrite history (21 CFR 11.10(e): old values stay visible; GSP: records cannot be
edited or deleted).

:meth:`AuditLog.record` commits each record on its own. :meth:`AuditLog.row` encodes one
record and :meth:`AuditLog.insert_rows` writes such rows through another connection to the same
database, inside that connection's transaction: the alert store queues the records of one
evaluation that way and writes them together just before it commits, so an alert's change and
its audit record commit together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_core import to_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,          -- UTC ms
    actor TEXT NOT NULL,          -- a user, or 'hub' for what the hub does itself
    action TEXT NOT NULL,         -- e.g. config.load, alert.ack, comment
    object TEXT NOT NULL,         -- what it is about, e.g. a file, an alert id, a series
    before TEXT,                  -- JSON: the old value, where one was replaced
    after TEXT,                   -- JSON: the new value
    comment TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records cannot be edited'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records cannot be deleted'); END;
"""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    ts_ms: int
    actor: str
    action: str
    object: str
    before: Any
    after: Any
    comment: str | None


class AuditLog:
    """The hub's audit table (in the hub database)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def record(
        self,
        *,
        actor: str,
        action: str,
        obj: str,
        before: Any = None,
        after: Any = None,
        comment: str | None = None,
    ) -> int:
        """Append one record, committed on its own; its id."""
        row = self.row(
            actor=actor, action=action, obj=obj, before=before, after=after, comment=comment
        )
        with self._lock:
            return int(self._db.execute(INSERT, row).lastrowid or 0)

    def row(
        self,
        *,
        actor: str,
        action: str,
        obj: str,
        before: Any = None,
        after: Any = None,
        comment: str | None = None,
    ) -> AuditRow:
        """One record, encoded (stamped now) for :meth:`insert_rows`."""
        now = time.time_ns() // 1_000_000
        return (now, actor, action, obj, _json(before), _json(after), comment)

    @staticmethod
    def insert_rows(db: sqlite3.Connection, rows: list[AuditRow]) -> None:
        """Append ``rows`` through ``db``, a connection to this log's database, as part of the
        transaction open on it (they commit or roll back with the caller's changes)."""
        db.executemany(INSERT, rows)

    def last(self, action: str, obj: str) -> AuditRecord | None:
        rows = self._select(
            "WHERE action = ? AND object = ? ORDER BY id DESC LIMIT 1", (action, obj)
        )
        return rows[0] if rows else None

    def page(
        self, limit: int, offset: int, *, action: str | None = None
    ) -> tuple[list[AuditRecord], int]:
        """Newest first; ``action`` keeps records whose action starts with it (``alert.``)."""
        like = (action or "") + "%"
        with self._lock:
            (total,) = self._db.execute(
                "SELECT count(*) FROM audit WHERE action LIKE ?", (like,)
            ).fetchone()
        rows = self._select(
            "WHERE action LIKE ? ORDER BY id DESC LIMIT ? OFFSET ?", (like, limit, offset)
        )
        return rows, int(total)

    def _select(self, tail: str, args: tuple[Any, ...]) -> list[AuditRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, ts, actor, action, object, before, after, comment FROM audit "  # noqa: S608 - tails are ours
                + tail,
                args,
            ).fetchall()
        return [
            AuditRecord(
                i,
                ts,
                actor,
                action,
                obj,
                None if b is None else json.loads(b),
                None if a is None else json.loads(a),
                c,
            )
            for i, ts, actor, action, obj, b, a, c in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()


INSERT = (
    "INSERT INTO audit (ts, actor, action, object, before, after, comment) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# ts, actor, action, object, before, after, comment: a record as inserted
AuditRow = tuple[int, str, str, str, str | None, str | None, str | None]


def _json(value: Any) -> str | None:
    """JSON text of a before or after value (UTF-8, not ASCII-escaped; compact). Encoded by
    pydantic-core: ~0.5 µs for an alert's record where ``json.dumps`` took ~3 µs (three
    records per alert in a storm)."""
    return None if value is None else to_json(value).decode()
