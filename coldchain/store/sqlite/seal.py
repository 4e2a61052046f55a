"""Sealed readings: each hour of the SQLite store sealed by a digest, the seals chained.

GSP and 21 CFR Part 11 want the temperature record to be evidence: not alterable, and if
altered, visibly so. The readings' table is not append-only by itself (a clock correction
moves readings, prune deletes old ones), so the store seals them instead:

* **Part 0 of an hour.** Once an hour is over (plus :data:`SEAL_GRACE_MS` for readings still
  on their way), the store first moves its *late horizon* past it (from then on a reading
  stamped in that hour is a late one, see below), then reads the hour's readings on their own
  connection and seals them: per series, how many and a digest of their canonical encoding
  (:func:`series_digest`), in ``seal_series``; over all of those and the series' names, one
  digest in ``seal``. An hour without readings is sealed too (0 readings), so readings slipped
  into it later show.
* **Addenda.** A reading newly stored for an hour behind the late horizon (a gateway's backlog
  after an outage) is noted in ``seal_late`` in the write's own transaction; the store seals
  such readings in an addendum of their hour (part 1, 2, ...), and ``seal_late`` names the
  addendum that holds each. A sealed part is never rewritten.
* **Clock corrections.** A reading moved out of a sealed hour by :meth:`Writer.retime` leaves
  its row as it was in ``seal_moved`` (same transaction), so its hour still verifies; where it
  lands in a sealed hour, it is a late reading there.
* **The chain.** Each seal's ``link`` is SHA-256 of the previous seal's link and this seal's
  fields (:func:`seal_link`), like the audit trail's (:mod:`hub.audit`); the last link, the
  seal head, is printed on the daily log. Triggers make the seal tables append-only (a late
  reading's addendum is set once).

:mod:`coldchain.store.sqlite.verify` recomputes every sealed hour from the readings as they
are now and names the hour, the series and the part that differ, and how many readings more
or fewer (``coldchain records verify``; with ``--against`` a backup, the readings
themselves: :func:`hub.records.name_readings`). From the seals alone it cannot name the one
reading changed inside a series' hour: that needs the readings as sealed (a backup).

What the seal does not catch: readings slipped into an hour before it is sealed, and a store
rewritten wholesale with its seals recomputed (the chain has no secret; a printed seal head
catches that). Hours older than the prune floor are not checked: their readings are gone by
design (retention).
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from coldchain.store.sqlite.meta import read_meta, transaction, write_meta

HOUR_MS = 3_600_000
SEAL_GRACE_MS = 15 * 60_000
"""How long after an hour ends before it is sealed: readings a few minutes late (a batch, a
slow 4G link) join the hour's own seal instead of an addendum."""
GENESIS = bytes(32)
"""The link before the first seal."""

SEAL_DDL = """
-- one row per sealed part of an hour: part 0 when the hour is sealed, 1.. for addenda
CREATE TABLE IF NOT EXISTS seal (
    id INTEGER PRIMARY KEY, hour INTEGER NOT NULL, part INTEGER NOT NULL,
    readings INTEGER NOT NULL, digest BLOB NOT NULL, sealed_ms INTEGER NOT NULL,
    link BLOB NOT NULL, UNIQUE (hour, part));
-- per seal and series: how many readings and a digest of them (16 bytes)
CREATE TABLE IF NOT EXISTS seal_series (
    seal INTEGER NOT NULL, series INTEGER NOT NULL, readings INTEGER NOT NULL,
    digest BLOB NOT NULL, PRIMARY KEY (seal, series)) WITHOUT ROWID;
-- readings stored after their hour's late horizon; seal: the addendum that holds them
CREATE TABLE IF NOT EXISTS seal_late (
    series INTEGER NOT NULL, ts INTEGER NOT NULL, seal INTEGER,
    PRIMARY KEY (series, ts)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seal_late_ts ON seal_late (ts);
CREATE INDEX IF NOT EXISTS seal_late_pending ON seal_late (ts) WHERE seal IS NULL;
-- readings a clock correction moved out of a sealed hour, as they were
CREATE TABLE IF NOT EXISTS seal_moved (
    series INTEGER NOT NULL, ts INTEGER NOT NULL, to_ts INTEGER NOT NULL,
    value REAL, q INTEGER NOT NULL, reason TEXT, cal REAL, extra TEXT,
    PRIMARY KEY (series, ts)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seal_moved_ts ON seal_moved (ts);
"""
_APPEND_ONLY = ("seal", "seal_series", "seal_moved")
TRIGGERS = (
    *(f"{t}_no_{op}" for t in _APPEND_ONLY for op in ("update", "delete")),
    "seal_late_no_delete",
    "seal_late_once",
)
TRIGGER_DDL = "".join(
    f"""CREATE TRIGGER IF NOT EXISTS {t}_no_{op} BEFORE {op.upper()} ON {t}
    BEGIN SELECT RAISE(ABORT, 'sealed readings cannot be changed'); END;"""
    for t in _APPEND_ONLY
    for op in ("update", "delete")
) + (
    """CREATE TRIGGER IF NOT EXISTS seal_late_no_delete BEFORE DELETE ON seal_late
    BEGIN SELECT RAISE(ABORT, 'sealed readings cannot be changed'); END;
    CREATE TRIGGER IF NOT EXISTS seal_late_once BEFORE UPDATE ON seal_late
    WHEN OLD.seal IS NOT NULL OR NEW.series <> OLD.series OR NEW.ts <> OLD.ts
    BEGIN SELECT RAISE(ABORT, 'sealed readings cannot be changed'); END;"""
)

Row = tuple[int, float | None, int, str | None, float | None, str | None]
"""A reading as stored: ts, value, q, reason, cal, extra."""
Names = tuple[str, str, str, str]
Entry = tuple[int, bytes]
"""A series' part of a seal: readings, digest."""
PENDING = -1
"""The part of late readings not sealed yet, in :func:`hour_parts`."""


def series_digest(rows: list[Row]) -> Entry:
    """(count, digest) of one series' readings in one part of an hour, oldest first. The
    encoding: every timestamp as a little-endian int64, then every value as a float64 (0.0
    for none), then, for the readings that carry anything else (no value, a quality other
    than good, a reason, a calibration, other meta), the ``repr`` of a list of (index, value
    is none, q, reason, cal, extra) — exact for floats, ``None`` distinct from ``'None'``."""
    n = len(rows)
    h = hashlib.sha256(
        struct.pack(
            f"<{n}q{n}d", *[r[0] for r in rows], *[0.0 if r[1] is None else r[1] for r in rows]
        )
    )
    odd = [
        (i, r[1] is None, *r[2:])
        for i, r in enumerate(rows)
        if r[2] or r[1] is None or r[3] is not None or r[4] is not None or r[5] is not None
    ]
    if odd:
        h.update(repr(odd).encode())
    return n, h.digest()[:16]


def part_digest(entries: dict[int, Entry], names: dict[int, Names]) -> bytes:
    """The digest of one sealed part: every series' names, count and digest, by series id."""
    h = hashlib.sha256()
    for sid in sorted(entries):
        n, d = entries[sid]
        h.update(repr((names.get(sid), n, d.hex())).encode())
        h.update(b"\n")
    return h.digest()


SealFields = tuple[int, int, int, int, bytes, int]
"""A seal as chained: id, hour, part, readings, digest, sealed_ms."""


def seal_link(prev: bytes, fields: SealFields) -> bytes:
    """A seal's link: SHA-256 of the previous link and this seal's fields."""
    *head, digest, at = fields
    return hashlib.sha256(prev + repr((*head, digest.hex(), at)).encode()).digest()


def series_names(db: sqlite3.Connection) -> dict[int, Names]:
    return {
        sid: (a, b, c, d)
        for sid, a, b, c, d in db.execute("SELECT id, site, gateway, device, point FROM series")
    }


def hour_parts(
    db: sqlite3.Connection, hour: int, only: Iterable[int] | None = None
) -> dict[int, dict[int, Entry]]:
    """The readings of the hour starting at ``hour`` as they are now, split into the parts
    they belong to: 0 (not late), a late reading's addendum (its seal id), or
    :data:`PENDING`; per part, per series id: (count, digest). Readings moved out of the hour
    count where they were. ``only``: these series ids (default: all). Call inside one read
    transaction for a consistent answer."""
    end = hour + HOUR_MS
    span = (hour, end)
    late: dict[int, dict[int, int]] = {}
    for sid, ts, seal in db.execute(
        "SELECT series, ts, seal FROM seal_late WHERE ts >= ? AND ts < ?", span
    ):
        late.setdefault(sid, {})[ts] = PENDING if seal is None else seal
    moved: dict[int, list[Row]] = {}
    for sid, *row in db.execute(
        "SELECT series, ts, value, q, reason, cal, extra FROM seal_moved WHERE ts >= ? AND ts < ?",
        span,
    ):
        moved.setdefault(sid, []).append(tuple(row))
    sids = sorted(only) if only is not None else [r[0] for r in db.execute("SELECT id FROM series")]
    parts: dict[int, dict[int, Entry]] = {}
    for sid in sids:
        rows: list[Row] = db.execute(
            "SELECT ts, value, q, reason, cal, extra FROM reading "
            "WHERE series = ? AND ts >= ? AND ts < ? ORDER BY ts",
            (sid, hour, end),
        ).fetchall()
        if sid in moved:
            rows = sorted([*rows, *moved[sid]], key=lambda r: r[0])
        if not rows:
            continue
        marks = late.get(sid)
        if not marks:
            parts.setdefault(0, {})[sid] = series_digest(rows)
            continue
        split: dict[int, list[Row]] = {}
        for row in rows:
            split.setdefault(marks.get(row[0], 0), []).append(row)
        for part, part_rows in split.items():
            parts.setdefault(part, {})[sid] = series_digest(part_rows)
    return parts


def record_seal(
    db: sqlite3.Connection,
    hour: int,
    part: int,
    entries: dict[int, Entry],
    sealed_ms: int,
) -> int:
    """Write one sealed part (in the caller's transaction); its seal id."""
    last = db.execute("SELECT id, link FROM seal ORDER BY id DESC LIMIT 1").fetchone()
    seal_id, prev = (1, GENESIS) if last is None else (last[0] + 1, bytes(last[1]))
    digest = part_digest(entries, series_names(db))
    n = sum(e[0] for e in entries.values())
    link = seal_link(prev, (seal_id, hour, part, n, digest, sealed_ms))
    db.execute(
        "INSERT INTO seal VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seal_id, hour, part, n, digest, sealed_ms, link),
    )
    db.executemany(
        "INSERT INTO seal_series VALUES (?, ?, ?, ?)",
        [(seal_id, sid, c, d) for sid, (c, d) in sorted(entries.items())],
    )
    return seal_id


@dataclass(frozen=True, slots=True)
class SealHead:
    """The newest seal: its id, the hour it seals (UTC ms) and its link (hex)."""

    id: int
    hour_ms: int
    link: str


def seal_head(db: sqlite3.Connection) -> SealHead | None:
    row = db.execute("SELECT id, hour, link FROM seal ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else SealHead(row[0], row[1], bytes(row[2]).hex())


class Sealing:
    """The writer's side of sealing, on the writer's connection and thread: which readings
    are late, noting them (and readings a clock correction moves), and the steps
    :meth:`coldchain.store.sqlite.store.SqliteStore.seal` takes, each its own transaction.
    Readings stamped in [``seal_from``, ``late_from``) are late; ``sealed_through`` is the
    last hour whose part 0 is written (all three kept in ``meta``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.seal_from = read_meta(db, "seal_from")
        self.late_from = read_meta(db, "seal_late_from")
        self.sealed_through = read_meta(db, "sealed_through")
        self._note_late()

    def is_late(self, ts: int) -> bool:
        return (
            self.late_from is not None
            and self.seal_from is not None
            and self.seal_from <= ts < self.late_from
        )

    def _note_late(self) -> None:
        """(Re)create the TEMP trigger that notes each reading newly stored behind the late
        horizon in ``seal_late``, in the insert's own transaction: INSERT OR IGNORE fires it
        only for a row really inserted, so a resend of a sealed reading notes nothing. TEMP:
        it lives on this (the writer's) connection only; a row written into the file around
        the store fires nothing and stays out of every seal."""
        self.db.execute("DROP TRIGGER IF EXISTS temp.seal_late_note")
        if self.seal_from is None or self.late_from is None:
            return
        self.db.execute(
            "CREATE TEMP TRIGGER seal_late_note AFTER INSERT ON main.reading "  # noqa: S608 - ints
            f"WHEN NEW.ts >= {int(self.seal_from)} AND NEW.ts < {int(self.late_from)} "
            "BEGIN INSERT INTO seal_late (series, ts) VALUES (NEW.series, NEW.ts) "
            "ON CONFLICT DO NOTHING; END"
        )

    def moved(self, sid: int, to: int, was: Row) -> None:
        """A clock correction moved series ``sid``'s reading ``was`` (its row as it was) to
        ``to``: out of a sealed hour, its row is kept so that the hour still verifies (into
        one, the trigger of :meth:`_note_late` made it a late reading there). In the
        correction's transaction."""
        if self.is_late(was[0]):
            self.db.execute(
                "INSERT OR IGNORE INTO seal_moved VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, was[0], to, *was[1:]),
            )

    def advance_late(self, hour: int) -> None:
        """Make readings stamped before ``hour`` + 1 h late ones (before its part 0 is read);
        the first hour ever sealed is where sealing begins."""
        end = hour + HOUR_MS
        if self.late_from is not None and self.late_from >= end:
            return
        with transaction(self.db):
            if self.seal_from is None:
                write_meta(self.db, "seal_from", hour)
            write_meta(self.db, "seal_late_from", end)
        if self.seal_from is None:
            self.seal_from = hour
        self.late_from = end
        self._note_late()

    def seal_hour(self, hour: int, entries: dict[int, Entry], now_ms: int) -> None:
        """Write part 0 of ``hour`` (read on another connection after :meth:`advance_late`)."""
        with transaction(self.db):
            exists = self.db.execute(
                "SELECT 1 FROM seal WHERE hour = ? AND part = 0", (hour,)
            ).fetchone()
            if exists is None:
                record_seal(self.db, hour, 0, entries, now_ms)
            write_meta(self.db, "sealed_through", hour)
        self.sealed_through = hour

    def late_hours(self) -> list[int]:
        """Hours with late readings waiting for an addendum, whose part 0 is written."""
        if self.sealed_through is None:
            return []
        rows = self.db.execute(
            "SELECT DISTINCT ts - ((ts % :h) + :h) % :h FROM seal_late "
            "WHERE seal IS NULL AND ts < :end ORDER BY 1",
            {"h": HOUR_MS, "end": self.sealed_through + HOUR_MS},
        )
        return [r[0] for r in rows]

    def seal_addendum(self, hour: int, now_ms: int) -> int:
        """Seal the late readings of ``hour`` waiting for it in the next part; how many."""
        end = hour + HOUR_MS
        with transaction(self.db):
            sids = [
                r[0]
                for r in self.db.execute(
                    "SELECT DISTINCT series FROM seal_late WHERE seal IS NULL AND ts >= ? "
                    "AND ts < ?",
                    (hour, end),
                )
            ]
            entries = hour_parts(self.db, hour, sids).get(PENDING, {})
            if not entries:
                return 0
            (part,) = self.db.execute(
                "SELECT coalesce(max(part), 0) + 1 FROM seal WHERE hour = ?", (hour,)
            ).fetchone()
            seal_id = record_seal(self.db, hour, part, entries, now_ms)
            self.db.execute(
                "UPDATE seal_late SET seal = ? WHERE seal IS NULL AND ts >= ? AND ts < ?",
                (seal_id, hour, end),
            )
        return sum(n for n, _ in entries.values())

    def head(self) -> SealHead | None:
        return seal_head(self.db)
