"""The audit trail: every config change, acknowledgement and comment, with who and when.

Append-only by construction: triggers refuse UPDATE and DELETE (on PostgreSQL TRUNCATE too),
so not even a bug in the hub can rewrite history (21 CFR 11.10(e): old values stay visible;
GSP: records cannot be edited or deleted).

Tamper-evident too, for whoever holds the file and drops the triggers: each record is chained
(``audit_chain``: SHA-256 of the previous record's link and this record's canonical encoding,
:func:`canonical`), written in the same transaction as the record. Changing, removing or
slipping in a record breaks the chain there, and ``coldchain records verify`` names the record
(:mod:`hub.records`). A trail from before the chain existed is chained once, when the hub first
opens it with this code, and that is itself audited (``audit.chain.start``). Cutting records
off the end leaves a shorter chain that still holds: the chain's head, printed on the daily
log, anchors it outside the system.

:meth:`AuditLog.record` commits each record on its own. :meth:`AuditLog.row` encodes one
record and :meth:`AuditLog.insert_rows` writes such rows through another connection to the same
database, inside that connection's transaction: the alert store queues the records of one
evaluation that way and writes them together just before it commits, so an alert's change and
its audit record commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_json

from coldchain.statedb import Schema, StateConn, StateTarget, open_state, postgres_ddl

_AUDIT_TABLE = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,          -- UTC ms
    actor TEXT NOT NULL,          -- a user, or 'hub' for what the hub does itself
    action TEXT NOT NULL,         -- e.g. config.load, alert.ack, comment
    object TEXT NOT NULL,         -- what it is about, e.g. a file, an alert id, a series
    before TEXT,                  -- JSON: the old value, where one was replaced
    after TEXT,                   -- JSON: the new value
    comment TEXT
)"""
_CHAIN_TABLE = """CREATE TABLE audit_chain (
    id INTEGER PRIMARY KEY,   -- the audit record's id
    link BLOB NOT NULL        -- SHA-256 of the previous record's link and this record
)"""


def _sqlite_triggers(table: str) -> str:
    return f"""
CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'audit records cannot be edited'); END;
CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, 'audit records cannot be deleted'); END;
"""


_PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION coldchain_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records cannot be %',
        CASE TG_OP WHEN 'UPDATE' THEN 'edited' ELSE 'deleted' END;
END $$;
"""


def _pg_triggers(table: str) -> str:
    each = "FOR EACH ROW EXECUTE FUNCTION coldchain_append_only()"
    return f"""
CREATE OR REPLACE TRIGGER {table}_no_update BEFORE UPDATE ON {table} {each};
CREATE OR REPLACE TRIGGER {table}_no_delete BEFORE DELETE ON {table} {each};
CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION coldchain_append_only();
"""


def triggers(kind: str, *tables: str) -> str:
    """The append-only triggers of ``tables`` in ``kind``'s dialect (made if missing)."""
    if kind == "sqlite":
        return "".join(_sqlite_triggers(t) for t in tables)
    return _PG_APPEND_ONLY + "".join(_pg_triggers(t) for t in tables)


SCHEMA = Schema(
    "audit",
    (
        {
            "sqlite": _AUDIT_TABLE + ";" + triggers("sqlite", "audit"),
            "postgres": postgres_ddl(_AUDIT_TABLE) + ";" + triggers("postgres", "audit"),
        },
    ),
)
"""The audit table; its chain (``audit_chain``) is made by :meth:`AuditLog._start_chain`,
which links the records already there, and both tables' triggers are made again whenever
the trail is opened."""
TRIGGERS = ("audit_no_update", "audit_no_delete", "audit_chain_no_update", "audit_chain_no_delete")
PG_TRIGGERS = (*TRIGGERS, "audit_no_truncate", "audit_chain_no_truncate")
"""PostgreSQL's: TRUNCATE passes the row triggers by, so it has its own."""
GENESIS = bytes(32)
"""The link before the first record."""
COLUMNS = "id, ts, actor, action, object, before, after, comment"


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

    def __init__(self, path: StateTarget) -> None:
        self._db = open_state(path, SCHEMA)
        self._lock = threading.Lock()
        self._start_chain()

    def _start_chain(self) -> None:
        """Create the chain if this trail has none yet, linking the records already in it
        (audited as ``audit.chain.start``). Once the chain exists nothing is linked after the
        fact: a record written around the hub stays unlinked, and verification names it."""
        with self._lock:
            self._db.begin()
            try:
                have = "audit_chain" in self._db.tables()
                if not have:
                    ddl = _CHAIN_TABLE if self._db.kind == "sqlite" else postgres_ddl(_CHAIN_TABLE)
                    self._db.execute(ddl)
                self._db.script(triggers(self._db.kind, "audit", "audit_chain"))
                if not have:
                    rows = self._db.execute(f"SELECT {COLUMNS} FROM audit ORDER BY id").fetchall()  # noqa: S608 - constants
                    link = GENESIS
                    for row in rows:
                        link = next_link(link, row)
                        self._db.execute(CHAIN_INSERT, (row[0], link))
                    if rows:
                        self._append(
                            self._db,
                            [
                                self.row(
                                    actor="hub",
                                    action="audit.chain.start",
                                    obj="audit",
                                    after={"records_linked": len(rows)},
                                )
                            ],
                        )
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()

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
            self._db.begin()
            try:
                (rid,) = self._append(self._db, [row])
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()
            return rid

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

    def insert_rows(self, db: StateConn, rows: list[AuditRow]) -> None:
        """Append ``rows`` through ``db``, a connection to this log's database, as part of the
        write transaction open on it (they commit or roll back with the caller's changes)."""
        self._append(db, rows)

    @staticmethod
    def _append(db: StateConn, rows: list[AuditRow]) -> list[int]:
        """Insert ``rows`` and their links, inside a write transaction open on ``db``: ids
        given here (the next after the last, as SQLite would), both tables in one
        ``executemany`` each."""
        last = db.execute("SELECT link FROM audit_chain ORDER BY id DESC LIMIT 1").fetchone()
        link = GENESIS if last is None else bytes(last[0])
        (top,) = db.execute("SELECT max(id) FROM audit").fetchone()
        rid = int(top or 0)
        records, links = [], []
        for row in rows:
            rid += 1
            record = (rid, *row)
            link = next_link(link, record)
            records.append(record)
            links.append((rid, link))
        db.executemany(INSERT_WITH_ID, records)
        db.executemany(CHAIN_INSERT, links)
        return [r[0] for r in records]

    def head(self) -> tuple[int, str] | None:
        """The last record's id and link (hex): what the daily log prints to anchor the trail."""
        with self._lock:
            last = self._db.execute(
                "SELECT id, link FROM audit_chain ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if last is None else (int(last[0]), bytes(last[1]).hex())

    def last(self, action: str, obj: str) -> AuditRecord | None:
        rows = self._select(
            "WHERE action = ? AND object = ? ORDER BY id DESC LIMIT 1", (action, obj)
        )
        return rows[0] if rows else None

    def about(self, action: str, objects: Sequence[str]) -> list[AuditRecord]:
        """The records of ``action`` about any of ``objects`` (at most 500), oldest first."""
        if len(objects) > 500:
            raise ValueError(f"{len(objects)} objects asked; at most 500 a query")
        marks = ", ".join("?" * len(objects))
        return self._select(
            f"WHERE action = ? AND object IN ({marks}) ORDER BY id",
            (action, *objects),
        )

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
CHAIN_INSERT = "INSERT INTO audit_chain (id, link) VALUES (?, ?)"
INSERT_WITH_ID = f"INSERT INTO audit ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608 - constants


def canonical(record: tuple[Any, ...]) -> bytes:
    """The bytes a record is linked by: its id, time, actor, action, object, before and after
    (as stored: JSON text) and comment, as a compact JSON array in UTF-8 (pydantic-core's
    encoder: 0.3 µs a record where ``json.dumps`` takes 2.3)."""
    return to_json(record)


def next_link(previous: bytes, record: tuple[Any, ...]) -> bytes:
    """The link of ``record`` (id first, the columns of :data:`COLUMNS`) after ``previous``."""
    return hashlib.sha256(previous + canonical(record)).digest()


def _json(value: Any) -> str | None:
    """JSON text of a before or after value (UTF-8, not ASCII-escaped; compact). Encoded by
    pydantic-core: ~0.5 µs for an alert's record where ``json.dumps`` took ~3 µs (three
    records per alert in a storm)."""
    return None if value is None else to_json(value).decode()
