"""Blocking halves of the SQLite store: the writer (one connection, one thread) and the reader
(a read-only connection on another thread). :class:`coldchain.store.sqlite.store.SqliteStore`
runs each on its own worker thread; nothing here touches the event loop.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from coldchain.reading import (
    CLOCK_SHIFT,
    CLOCK_UNSYNCHRONISED,
    Reading,
    SeriesId,
    clock_corrected,
)
from coldchain.store.base import Agg, Bucket, DoorInterval, StoreError
from coldchain.store.sqlite.meta import read_meta, write_meta
from coldchain.store.sqlite.rollup import (
    HOUR_MS,
    MINUTE_MS,
    ROLL_SERIES,
    ROLL_SQL,
    ROLLED_SQL,
    range_query,
)
from coldchain.store.sqlite.schema import Q_BACK, Q_CODE, connect_reader, connect_writer
from coldchain.store.sqlite.seal import Sealing, hour_parts

log = logging.getLogger(__name__)

_INSERT = "INSERT OR IGNORE INTO reading VALUES (?, ?, ?, ?, ?, ?, ?)"
# a series' readings marked with a reason in a window (clock corrections), ordered by ts +
_MARKED = (
    "SELECT ts, value, cal, extra FROM reading WHERE series = ? AND q = 2 "
    "AND reason = ? AND ts >= ? AND ts < ? ORDER BY ts "
)
# Doors: good readings only. The state just before the window; if open, its real opening
# (the first open reading after the last closed one); then every reading in the window.
_DOOR_BEFORE = """SELECT value FROM reading WHERE series = :sid AND q = 0 AND ts < :a
                  ORDER BY ts DESC LIMIT 1"""
_DOOR_OPENED = """SELECT ts FROM reading WHERE series = :sid AND q = 0 AND ts < :a
                  AND ts > coalesce((SELECT ts FROM reading WHERE series = :sid AND q = 0
                                     AND ts < :a AND value = 0 ORDER BY ts DESC LIMIT 1),
                                    -9223372036854775808)
                  ORDER BY ts LIMIT 1"""
_DOOR_WINDOW = """SELECT ts, value FROM reading WHERE series = :sid AND q = 0
                  AND ts >= :a AND ts < :z ORDER BY ts"""
_Row = tuple[int, float | None, int, str | None, float | None, str | None]
_Row7 = tuple[int, int, float | None, int, str | None, float | None, str | None]
_Moved = tuple[dict[int, int], list[int], int, list[int]]
"""Horizons given, series rolled, the hour they were rolled to, the series still behind it."""


def _split_meta(meta: dict[str, float]) -> tuple[float | None, str | None]:
    """(calibration offset, other meta as JSON): the offset has its own column."""
    cal = meta.get("calibration")
    if len(meta) == (cal is not None):
        return cal, None
    return cal, json.dumps({k: v for k, v in meta.items() if k != "calibration"}, sort_keys=True)


class Writer:
    """The store's only read-write connection. Not thread-safe: one thread calls it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect_writer(path)
        rows = self.db.execute("SELECT id, site, gateway, device, point FROM series")
        self._ids = {SeriesId(*names): sid for sid, *names in rows}
        self.floor_ms = read_meta(self.db, "floor_ms")
        # per series, the hour before which rollup_1h holds all its hours (rollup.py)
        self.horizons: dict[int, int] = dict(
            self.db.execute("SELECT series, horizon FROM rollup_1h_horizon")
        )
        self._due = min(self.horizons.values(), default=0)  # every horizon is at least this
        self._lagging: list[int] = []  # the series whose horizon is before _due, sorted
        self.sealing = Sealing(self.db)  # SqliteStore.seal drives it on this thread
        # clock corrections by gateway: (start_ms, end_ms, shift_ms)
        self._retimes: dict[str, list[tuple[int, int, int]]] = {}
        for gw, a, b, shift in self.db.execute(
            "SELECT gateway, start_ms, end_ms, shift_ms FROM retime ORDER BY id"
        ):
            self._retimes.setdefault(gw, []).append((a, b, shift))

    def write(self, readings: Sequence[Reading]) -> tuple[int, int]:
        """Store new readings in one transaction; (stored, ignored). Ignored: copies of
        stored readings, and readings older than the prune floor (expired on arrival). A
        reading newly stored for an hour already sealed is noted for an addendum."""
        if not readings:
            return 0, 0
        db, ids, floor = self.db, self._ids, self.floor_ms
        new: dict[SeriesId, int] = {}
        rows = []
        retimes = self._retimes
        db.execute("BEGIN IMMEDIATE")
        try:
            for r in readings:
                if retimes and r.reason == CLOCK_UNSYNCHRONISED:  # corrected since it was read
                    r = self._corrected(r)  # noqa: PLW2901
                if floor is not None and r.ts_ms < floor:
                    continue
                sid = ids.get(r.series) or new.get(r.series) or self._intern(r.series, new)
                value = r.value
                if value is not None and not math.isfinite(value):
                    raise StoreError(f"{r.series} at {r.ts_ms}: value {value} is not finite")
                cal, extra = _split_meta(r.meta) if r.meta else (None, None)
                rows.append((sid, r.ts_ms, value, Q_CODE[r.quality], r.reason, cal, extra))
            moved = self._horizons(rows)
            # trigger rows are not counted; a late one is noted by the sealing's trigger
            stored = db.executemany(_INSERT, rows).rowcount
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # some errors (disk full, I/O) have rolled back already
                db.execute("ROLLBACK")
            raise
        self._moved(*moved)
        ids.update(new)
        if (expired := len(readings) - len(rows)) > 0:
            log.warning(
                "sqlite store %s: ignored %d readings older than the prune floor %d",
                self.path,
                expired,
                floor,
            )
        return stored, len(readings) - stored

    def _horizons(self, rows: list[_Row7]) -> _Moved:
        """Inside a write transaction, before ``rows`` are inserted: a horizon for each of
        their series that has none yet (past its last 1-h row, else its first hour in
        ``rows``), then the 1-h rows of up to :data:`ROLL_SERIES` of the series whose horizon
        is two hours or more behind the newest reading (:mod:`coldchain.store.sqlite.rollup`).
        What changed, for :meth:`_moved` to take up once committed."""
        if not rows:
            return {}, [], self._due, self._lagging
        horizons, db = self.horizons, self.db
        first: dict[int, int] = {}  # series without a horizon: their first reading here
        for r in rows:
            if r[0] not in horizons and r[1] < first.get(r[0], r[1] + 1):
                first[r[0]] = r[1]
        new: dict[int, int] = {}
        for sid, ts in first.items():
            (last,) = db.execute(
                "SELECT max(bucket) FROM rollup_1h WHERE series = ?", (sid,)
            ).fetchone()
            new[sid] = last + HOUR_MS if last is not None else ts // HOUR_MS * HOUR_MS
        if new:
            db.executemany("INSERT INTO rollup_1h_horizon VALUES (?, ?)", new.items())
        due = max(self._due, max(r[1] for r in rows) // HOUR_MS * HOUR_MS - HOUR_MS)
        if due > self._due:  # an hour more is over: every series behind it, a chunk a write
            lagging = sorted(sid for sid, h in horizons.items() if h < due)
        else:
            lagging = self._lagging
        behind = [sid for sid, h in new.items() if h < due]
        if behind:
            lagging = sorted({*lagging, *behind})
        part, rest = lagging[:ROLL_SERIES], lagging[ROLL_SERIES:]
        if part:  # every series in part[0]..part[-1] behind due is in part (lagging is sorted)
            args = {"lo": part[0], "hi": part[-1], "z": due}
            db.execute(ROLL_SQL, args)
            db.execute(ROLLED_SQL, args)
        return new, part, due, rest

    def _moved(self, new: dict[int, int], rolled: list[int], due: int, rest: list[int]) -> None:
        """The horizons as committed: the new ones, and those of the series rolled."""
        self.horizons.update(new)
        for sid in rolled:
            self.horizons[sid] = due
        self._due, self._lagging = due, rest

    def roll_through(self, ts_ms: int) -> None:
        """Make the 1-h rows of every series up to ``ts_ms`` (the next whole hour) at
        least, in a transaction of its own: before the 1-min rows older than ``ts_ms`` are
        pruned."""
        due = -(-ts_ms // HOUR_MS) * HOUR_MS
        behind = sorted(sid for sid, h in self.horizons.items() if h < due)
        if not behind:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            args = {"lo": behind[0], "hi": behind[-1], "z": due}
            self.db.execute(ROLL_SQL, args)
            self.db.execute(ROLLED_SQL, args)
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        for sid in behind:
            self.horizons[sid] = due
        self._lagging = [sid for sid in self._lagging if self.horizons[sid] < self._due]

    def _corrected(self, r: Reading) -> Reading:
        for a, b, shift in self._retimes.get(r.series.gateway, ()):
            if a <= r.ts_ms < b:
                meta = {**(r.meta or {}), CLOCK_SHIFT: float(shift)}
                return Reading(
                    r.series, r.ts_ms + shift, r.value, r.quality, clock_corrected(shift), meta
                )
        return r

    def retime(self, gateway: str, start_ms: int, end_ms: int, shift_ms: int) -> tuple[int, int]:
        """Move ``gateway``'s readings marked ``clock unsynchronised`` stamped in
        [start_ms, end_ms) by ``shift_ms``, in one transaction, and keep the correction for
        such readings still to come; (moved, conflicts). A reading whose corrected time is
        taken by another of its series (or falls before the prune floor) stays where it
        was. The rollups follow: a moved reading leaves its old buckets (it counted there as
        "other", never in a good reading's figures) and joins its new ones."""
        db = self.db
        sids = [i for s, i in self._ids.items() if s.gateway == gateway]
        moved = conflicts = 0
        order = "DESC" if shift_ms > 0 else "ASC"  # a moved reading never lands on the next
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO retime (gateway, start_ms, end_ms, shift_ms) VALUES (?, ?, ?, ?)",
                (gateway, start_ms, end_ms, shift_ms),
            )
            for sid in sids:
                rows = db.execute(
                    _MARKED + order, (sid, CLOCK_UNSYNCHRONISED, start_ms, end_ms)
                ).fetchall()
                for row in rows:
                    if self._move(sid, shift_ms, row):
                        moved += 1
                    else:
                        conflicts += 1
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._retimes.setdefault(gateway, []).append((start_ms, end_ms, shift_ms))
        return moved, conflicts

    def _move(self, sid: int, shift_ms: int, row: tuple[Any, ...]) -> bool:
        """Move one uncertain reading ``shift_ms`` later (in the open transaction); False if
        its new place is taken or before the prune floor. ``row``: (ts, value, cal, extra)."""
        ts, value, cal, extra = row
        to = ts + shift_ms
        if self.floor_ms is not None and to < self.floor_ms:
            return False
        meta = {**(json.loads(extra) if extra else {}), CLOCK_SHIFT: float(shift_ms)}
        row = (sid, to, value, 2, clock_corrected(shift_ms), cal, json.dumps(meta, sort_keys=True))
        if self.db.execute(_INSERT, row).rowcount != 1:
            return False
        self.sealing.moved(sid, to, (ts, value, 2, CLOCK_UNSYNCHRONISED, cal, extra))
        self.db.execute("DELETE FROM reading WHERE series = ? AND ts = ?", (sid, ts))
        for table, grain in (("rollup_1m", MINUTE_MS), ("rollup_1h", HOUR_MS)):
            key = (sid, ts - ts % grain)
            self.db.execute(
                f"UPDATE {table} SET other = other - 1 WHERE series = ? AND bucket = ?",  # noqa: S608
                key,
            )
            self.db.execute(
                f"DELETE FROM {table} WHERE series = ? AND bucket = ? AND count = 0 AND other = 0",  # noqa: S608
                key,
            )
        return True

    def _intern(self, series: SeriesId, new: dict[SeriesId, int]) -> int:
        cur = self.db.execute(
            "INSERT INTO series (site, gateway, device, point) VALUES (?, ?, ?, ?)", series
        )
        sid = new[series] = int(cur.lastrowid or 0)
        return sid

    def raise_floor(self, floor_ms: int) -> int:
        """From now on, refuse readings older than ``floor_ms`` (never lowered): their raw
        rows are being pruned, so a resend could not be told from a new reading and would
        count twice in the rollups."""
        if self.floor_ms is None or floor_ms > self.floor_ms:
            write_meta(self.db, "floor_ms", floor_ms)
            self.floor_ms = floor_ms
        return self.floor_ms

    def series_ids(self) -> list[int]:
        return sorted(self._ids.values())

    def prune_step(
        self, table: str, key: str, *, cutoff: int, sids: list[int], pos: int, budget: int
    ) -> tuple[int, int]:
        """Delete up to ``budget`` rows of ``table`` older than ``cutoff`` in one transaction,
        series by series from ``sids[pos]``; returns (deleted, position to resume at)."""
        sql = f"""DELETE FROM {table} WHERE series = :sid AND {key} < :cut AND {key} < coalesce(
                      (SELECT {key} FROM {table} WHERE series = :sid AND {key} < :cut
                       ORDER BY {key} LIMIT 1 OFFSET :n), :cut)"""  # noqa: S608 - our names
        deleted = 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            while pos < len(sids) and deleted < budget:
                args = {"sid": sids[pos], "cut": cutoff, "n": budget - deleted}
                deleted += self.db.execute(sql, args).rowcount
                if deleted < budget:
                    pos += 1  # nothing older left in this series
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return deleted, pos

    def close(self) -> None:
        self.db.execute("PRAGMA optimize")
        self.db.close()  # the last connection to close checkpoints and removes the WAL


class Reader:
    """A read-only connection; each call reads one consistent snapshot."""

    def __init__(self, path: Path) -> None:
        self.db = connect_reader(path)
        self._ids: dict[SeriesId, int] = {}
        self._names: dict[int, SeriesId] = {}

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN")
        try:
            yield self.db
        finally:
            self.db.execute("COMMIT")

    def _id(self, series: SeriesId) -> int | None:
        sid = self._ids.get(series)
        if sid is None:
            row = self.db.execute(
                "SELECT id FROM series WHERE site = ? AND gateway = ? AND device = ? AND point = ?",
                series,
            ).fetchone()
            if row is None:
                return None
            sid = self._ids[series] = row[0]
            self._names[sid] = series
        return sid

    def oldest(self) -> int | None:
        """The oldest reading's time: one seek per series (``ts`` is second in the key, so a
        plain ``min(ts)`` would read the whole table)."""
        with self._snapshot() as db:
            ids = [sid for (sid,) in db.execute("SELECT id FROM series")]
            firsts = [
                row[0]
                for sid in ids
                if (
                    row := db.execute(
                        "SELECT ts FROM reading WHERE series = ? ORDER BY ts LIMIT 1", (sid,)
                    ).fetchone()
                )
                is not None
            ]
        return min(firsts, default=None)

    def hour_sealed_part(self, hour: int) -> dict[int, tuple[int, bytes]]:
        """Part 0 of ``hour``'s seal as the readings stand (one snapshot)."""
        with self._snapshot() as db:
            return hour_parts(db, hour).get(0, {})

    def _name(self, sid: int) -> SeriesId:
        name = self._names.get(sid)
        if name is None:
            row = self.db.execute(
                "SELECT site, gateway, device, point FROM series WHERE id = ?", (sid,)
            ).fetchone()
            name = self._names[sid] = SeriesId(*row)
            self._ids[name] = sid
        return name

    @staticmethod
    def _reading(series: SeriesId, row: _Row) -> Reading:
        ts, value, q, reason, cal, extra = row
        meta = {} if cal is None else {"calibration": cal}
        if extra is not None:
            meta.update(json.loads(extra))
        return Reading(series, ts, value, Q_BACK[q], reason, meta)

    def series(self) -> list[SeriesId]:
        rows = self.db.execute("SELECT site, gateway, device, point FROM series ORDER BY id")
        return [SeriesId(*r) for r in rows]

    def latest(self, series: Sequence[SeriesId] | None) -> dict[SeriesId, Reading]:
        # The newest row of a series is one seek down the (series, ts) primary key, so no
        # "latest" table is kept: it would cost an extra B-tree write per reading.
        sql = """SELECT s.id, r.ts, r.value, r.q, r.reason, r.cal, r.extra
                 FROM series AS s CROSS JOIN reading AS r ON r.series = s.id
                 AND r.ts = (SELECT max(ts) FROM reading WHERE series = s.id)"""
        with self._snapshot() as db:
            if series is None:
                rows = db.execute(sql).fetchall()
            else:
                ids = [i for i in map(self._id, series) if i is not None]
                if not ids:
                    return {}
                where = f" WHERE s.id IN ({', '.join('?' * len(ids))})"
                rows = db.execute(sql + where, ids).fetchall()
            return {(n := self._name(sid)): self._reading(n, row) for sid, *row in rows}

    def raw(self, series: SeriesId, start_ms: int, end_ms: int) -> list[Reading]:
        sid = self._id(series)
        if sid is None:
            return []
        rows = self.db.execute(
            "SELECT ts, value, q, reason, cal, extra FROM reading "
            "WHERE series = ? AND ts >= ? AND ts < ? ORDER BY ts",
            (sid, start_ms, end_ms),
        ).fetchall()
        return [self._reading(series, row) for row in rows]

    def range(
        self,
        series: SeriesId,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        agg: Agg,
        *,
        use_rollups: bool = True,
    ) -> list[Bucket]:
        if step_ms <= 0:
            raise StoreError(f"range of {series}: step must be > 0 ms, not {step_ms}")
        sid = self._id(series)
        if sid is None or start_ms >= end_ms:
            return []
        with self._snapshot() as db:
            buckets = range_query(
                db,
                sid,
                start=start_ms,
                end=end_ms,
                step=step_ms,
                agg=Agg(agg),
                use_rollups=use_rollups,
            )
        # A mean of huge values whose sum overflowed (1e308 + 1e308 = inf, or inf - inf = nan)
        # cannot be told: None, like a step without a good reading, never a non-finite value.
        return [
            b if b.value is None or math.isfinite(b.value) else Bucket(b.ts_ms, None, b.count)
            for b in buckets
        ]

    def door_intervals(self, series: SeriesId, start_ms: int, end_ms: int) -> list[DoorInterval]:
        """Good readings only; a value other than 0 is open. A door open at ``start_ms``
        opened at the first open reading after the last closed one before it."""
        sid = self._id(series)
        if sid is None or start_ms >= end_ms:
            return []
        args = {"sid": sid, "a": start_ms, "z": end_ms}
        with self._snapshot() as db:
            opened: int | None = None
            before = db.execute(_DOOR_BEFORE, args).fetchone()
            if before is not None and before[0] != 0:
                (opened,) = db.execute(_DOOR_OPENED, args).fetchone()
            out = []
            for ts, value in db.execute(_DOOR_WINDOW, args):
                if value != 0 and opened is None:
                    opened = ts
                elif value == 0 and opened is not None:
                    if ts > start_ms:  # closed exactly at the start: no overlap
                        out.append(DoorInterval(series, opened, ts))
                    opened = None
            if opened is not None:
                out.append(DoorInterval(series, opened, None))
            return out

    def close(self) -> None:
        self.db.close()
