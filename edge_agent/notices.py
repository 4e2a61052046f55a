"""The edge fallback's notices on disk: every alert the agent texted about while its uplink
was down, with each text sent and what became of it, until the hub has acknowledged the
newest revision of the notice and the alert is over (see :mod:`edge_agent.fallback` and
:mod:`coldchain.protocol.edge`).

SQLite, WAL, ``synchronous=FULL``: a text sent is a text remembered, across kill -9 and power
loss, so an agent restarted during an outage does not text the same alert again. Each change
of a notice (a text, a delivery report, the alert clearing) raises its revision; the hub
acknowledges revisions, so an ack of an older one does not settle a newer change.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldchain.alerting.evaluator import Transition
from coldchain.protocol.edge import Notice, Sent
from coldchain.sms.types import DeliveryStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notices (
    n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    rev INTEGER NOT NULL, acked_rev INTEGER NOT NULL DEFAULT 0,
    key TEXT NOT NULL, rule TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
    site TEXT NOT NULL, room TEXT, series TEXT, since_ms INTEGER NOT NULL,
    fired_ms INTEGER NOT NULL, value REAL, lim REAL, peak REAL, resolved_ms INTEGER);
CREATE TABLE IF NOT EXISTS sent (
    notice INTEGER NOT NULL, contact TEXT NOT NULL, phone TEXT NOT NULL,
    message TEXT NOT NULL, ts_ms INTEGER NOT NULL, status TEXT NOT NULL, ref TEXT,
    error TEXT, sms TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sent_notice ON sent (notice);
CREATE INDEX IF NOT EXISTS sent_sms ON sent (sms);
"""


@dataclass(frozen=True, slots=True)
class OpenNotice:
    """A notice whose alert has not cleared (resumed as firing after a restart)."""

    n: int
    key: str
    since_ms: int
    fired_ms: int
    value: float | None
    limit: float | None
    peak: float | None


class NoticeStore:
    """The notices on disk: SQLite, WAL, ``synchronous=FULL`` (a text sent is a text
    remembered, even across a power cut). Writes are rare (alerts, sends, acks) and small, so
    they run on the event loop."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- the uplink's state -------------------------------------------------------------

    def down_since(self) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'down_since'").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def set_down_since(self, ms: int | None) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('down_since', ?)", (ms,))

    # --- notices ------------------------------------------------------------------------

    def open_notices(self) -> list[OpenNotice]:
        rows = self._db.execute(
            "SELECT n, key, since_ms, fired_ms, value, lim, peak FROM notices "
            "WHERE resolved_ms IS NULL ORDER BY n"
        )
        return [OpenNotice(*row) for row in rows]

    def create(self, t: Transition, value: float | None) -> int:
        """A new notice for the alert that fired in ``t``; its row number."""
        w = t.watch
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO notices (id, rev, key, rule, kind, severity, site, room, series,"
                " since_ms, fired_ms, value, lim, peak) VALUES (?,1,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    uuid.uuid4().hex,
                    w.key,
                    w.rule.id,
                    w.rule.kind,
                    w.severity,
                    w.site,
                    w.room,
                    w.series,
                    t.since_ms,
                    t.ts_ms,
                    value,
                    t.limit if t.limit is not None else w.limit,
                    t.peak,
                ),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def add_sent(self, notices: Sequence[int], sent: Sent, *, sms: str) -> None:
        """Record one text about ``notices`` (several for a grouped message)."""
        with self._tx() as db:
            for n in notices:
                s = sent
                db.execute(
                    "INSERT INTO sent VALUES (?,?,?,?,?,?,?,?,?)",
                    (n, s.contact, s.phone, s.message, s.ts_ms, s.status, s.ref, s.error, sms),
                )
                db.execute("UPDATE notices SET rev = rev + 1 WHERE n = ?", (n,))

    def told(self, n: int) -> list[str]:
        """Contacts whose alarm text about notice ``n`` went out (not failed)."""
        rows = self._db.execute(
            "SELECT DISTINCT contact FROM sent WHERE notice = ? AND message != 'resolved' "
            "AND status != 'failed' ORDER BY rowid",
            (n,),
        )
        return [str(c) for (c,) in rows]

    def resolve(self, n: int, ts_ms: int) -> None:
        self._db.execute(
            "UPDATE notices SET resolved_ms = ?, rev = rev + 1 WHERE n = ?", (ts_ms, n)
        )

    def delivered(self, sms: str, status: DeliveryStatus) -> bool:
        """A delivery report for the text ``sms``; True when it changed something."""
        with self._tx() as db:
            notices = [n for (n,) in db.execute("SELECT notice FROM sent WHERE sms = ?", (sms,))]
            db.execute("UPDATE sent SET status = ? WHERE sms = ?", (status, sms))
            for n in set(notices):
                db.execute("UPDATE notices SET rev = rev + 1 WHERE n = ?", (n,))
        return bool(notices)

    def unacked(self) -> list[Notice]:
        """Every notice whose newest revision the hub has not acknowledged, oldest first."""
        rows = self._db.execute(
            "SELECT n, id, rev, key, rule, kind, severity, site, room, series, since_ms,"
            " fired_ms, value, lim, resolved_ms FROM notices WHERE rev > acked_rev ORDER BY n"
        ).fetchall()
        return [self._notice(row) for row in rows]

    def _notice(self, row: tuple[Any, ...]) -> Notice:
        n, nid, rev, key, rule, kind, severity, site, room, series = row[:10]
        since, fired, value, limit, resolved = row[10:]
        sent = self._db.execute(
            "SELECT contact, phone, message, ts_ms, status, ref, error FROM sent "
            "WHERE notice = ? ORDER BY rowid",
            (n,),
        )
        return Notice(
            id=nid,
            rev=rev,
            key=key,
            rule=rule,
            kind=kind,
            severity=severity,
            site=site,
            room=room,
            series=series,
            since_ms=since,
            fired_ms=fired,
            value=value,
            limit=limit,
            resolved_ms=resolved,
            sent=tuple(Sent(*r) for r in sent),
        )

    def ack(self, stored: Iterable[tuple[str, int]]) -> int:
        """The hub stored these revisions; delete notices it has whole and that are over.
        Returns how many notices the ack settled."""
        settled = 0
        with self._tx() as db:
            for nid, rev in stored:
                cur = db.execute(
                    "UPDATE notices SET acked_rev = ? WHERE id = ? AND rev = ? AND acked_rev < ?",
                    (rev, nid, rev, rev),
                )
                settled += cur.rowcount
            done = "SELECT n FROM notices WHERE acked_rev = rev AND resolved_ms IS NOT NULL"
            db.execute(f"DELETE FROM sent WHERE notice IN ({done})")  # noqa: S608 - constant
            db.execute("DELETE FROM notices WHERE acked_rev = rev AND resolved_ms IS NOT NULL")
        return settled

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM notices").fetchone()[0])
