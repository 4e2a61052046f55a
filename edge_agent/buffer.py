"""The outbox: every reading on disk (SQLite, WAL, synchronous=FULL) until the hub has
acknowledged the batch that carried it.

* ``append`` writes one commit window's readings in one transaction, already cut into
  numbered batches (``seq``, at most ``max_batch`` readings each), one row per batch with its
  readings packed (series ids, timestamps as deltas, values in tenths where that is exact):
  after it returns they survive kill -9 and power loss, and the caller knows which batches to
  send without asking the database again. Numbers are never reused (AUTOINCREMENT), so a late
  duplicate ack of an old batch can never delete a newer one.
* ``load_batch`` reads a batch to send (or resend after a restart, identically).
* ``ack`` forgets acknowledged batches: only the hub's end-to-end acknowledgement removes
  anything, never a broker's PUBACK. The rows are deleted in the next transaction (the next
  commit window's, or :meth:`Outbox.flush_acks`): an ack lost to a power cut only means the
  batch is sent again, and the hub's writes are idempotent.
* When the file passes its size bound, the explicit policy runs and is counted: readings older
  than ``keep_recent`` are thinned to one per ``thin_interval`` per series (the GSP record
  interval, 30 min), and only if that is not enough are the oldest batches dropped. Batches in
  flight are left alone (the hub may be committing them).

Why ``synchronous=FULL`` and not NORMAL: in WAL mode NORMAL skips the fsync at commit, which
survives kill -9 (the WAL is in the page cache) but not a power cut, which can roll back the
transactions since the last checkpoint, readings the agent already counted as safe. With one
commit per window FULL costs one fsync a window, so it stays.

An outbox of the first layout (a row per reading) is converted on opening, in one
transaction, keeping every batch's number and content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgpack

from coldchain.protocol.messages import Batch
from coldchain.reading import Quality, Reading, SeriesId

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_Q = {Quality.GOOD: 0, Quality.BAD: 1, Quality.UNCERTAIN: 2}
_Q_BACK = {v: k for k, v in _Q.items()}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, device TEXT NOT NULL, point TEXT NOT NULL, cal REAL NOT NULL,
    UNIQUE (device, point, cal));
-- AUTOINCREMENT: a sequence number is never reused, so a late duplicate ack of an old batch
-- can never delete a newer one that took its number.
-- A batch is one row; ``data`` packs its readings (see Outbox._row).
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER NOT NULL,
    n INTEGER NOT NULL DEFAULT 0, t0 INTEGER, t1 INTEGER, data BLOB);
"""
# what the first layout's batches table lacks (it held readings in a table of their own)
_COLUMNS = {"n": "INTEGER NOT NULL DEFAULT 0", "t0": "INTEGER", "t1": "INTEGER", "data": "BLOB"}
MAX_BATCH = 500  # readings per batch unless the caller says otherwise
_Row = tuple[int, int, float | None, int, str | None]  # series id, ts, value, quality, reason


@dataclass(frozen=True, slots=True)
class Policy:
    """What the outbox does when it passes its size bound."""

    max_bytes: int = 256 * 1024 * 1024
    keep_recent_s: float = 24 * 3600.0  # every reading of the newest day is kept
    thin_interval_s: float = 30 * 60.0  # older ones: one per 30 min per series (GSP)


@dataclass(frozen=True, slots=True)
class Stats:
    """What the health report says about the outbox."""

    pending: int  # readings stored, not yet acknowledged
    batches: int  # batches stored, not yet acknowledged
    batches_in_flight: int  # of those, sent and awaiting their ack
    oldest_ts_ms: int | None
    used_bytes: int
    thinned_total: int
    dropped_total: int


def _tenths(value: float) -> int | None:
    """``value`` as a whole number of tenths if that is exact (most points are int16 x 0.1),
    else None."""
    k = round(value * 10)
    return k if k / 10 == value else None


def _unpacked(t0: int, data: bytes) -> list[_Row]:
    """The readings of a batch row (:meth:`Outbox._row`)."""
    out = []
    ts = t0
    for row in msgpack.unpackb(data, raw=False):
        sid, dts, v = row[0], row[1], row[2]
        ts += dts
        value = v / 10 if type(v) is int else v
        q, reason = (row[3], row[4]) if len(row) > 3 else (0, None)
        out.append((sid, ts, value, q, reason))
    return out


def snapshot(path: str | Path) -> list[tuple[str, str, int]]:
    """(device, point, ts) of every reading an outbox file holds, read-only (another process
    may be writing it; what it committed is read, WAL included)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = {
            sid: (dev, point)
            for sid, dev, point in db.execute("SELECT id, device, point FROM series")
        }
        return [
            (*names[sid], ts)
            for t0, data in db.execute("SELECT t0, data FROM batches WHERE data IS NOT NULL")
            for sid, ts, *_ in _unpacked(t0, data)
        ]
    finally:
        db.close()


class Outbox:
    """The on-disk store-and-forward buffer of one gateway. Thread-safe; blocking (the agent
    calls it from one worker thread)."""

    def __init__(
        self,
        path: str | Path,
        *,
        site: str,
        gateway: str,
        policy: Policy | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.site, self.gateway = site, gateway
        self.policy = policy or Policy()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        # a new file's pages: 1 KiB, not 4. A commit writes every page it touches to the
        # WAL (the batch's leaf, the acked one's, the sequence, the header) and a checkpoint
        # writes them again: smaller pages halve the bytes the card sees per reading. (Only
        # a new file takes it; WAL mode fixes the size of an existing one.)
        self._db.execute("PRAGMA page_size=1024")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a power cut loses nothing committed
        self._db.executescript(SCHEMA)
        self._clock_ms = clock_ms
        self._series: dict[tuple[str, str, float], int] = {}
        self._series_back: dict[int, tuple[str, str, float]] = {}
        for sid, dev, point, cal in self._db.execute("SELECT id, device, point, cal FROM series"):
            self._series[(dev, point, cal)] = sid
            self._series_back[sid] = (dev, point, cal)
        self.epoch = self._meta("epoch") or self._init_epoch()
        self._acked: dict[int, int] = {}  # acknowledged, not yet deleted: seq -> readings
        self._in_flight: set[int] = set()  # loaded to send since the last reset_in_flight
        self._upgrade()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: committed if the block ends, rolled back if it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _init_epoch(self) -> str:
        epoch = os.urandom(8).hex()
        self._db.execute("INSERT INTO meta VALUES ('epoch', ?)", (epoch,))
        return epoch

    def _count(self, key: str) -> int:
        return int(self._meta(key) or 0)

    def _bump(self, key: str, n: int) -> None:
        self._db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = value + ?",
            (key, n, n),
        )

    # -- layout -------------------------------------------------------------------------
    def _upgrade(self) -> None:
        """Bring an outbox of the first layout (a row per reading, ``readings``) to this one:
        its batches keep their numbers and readings, its unbatched readings become new
        batches; one transaction, so a crash half way leaves the first layout intact."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(batches)")}
        old = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'readings'"
        ).fetchone()
        if set(_COLUMNS) <= have and old is None:
            return
        with self._transaction():
            for name, decl in _COLUMNS.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE batches ADD COLUMN {name} {decl}")
            if old is not None:
                self._convert_first_layout()

    def _convert_first_layout(self) -> None:
        rows = self._db.execute(
            "SELECT batch, series, ts, value, q, reason FROM readings ORDER BY id"
        ).fetchall()
        batched: dict[int, list[_Row]] = {}
        loose: list[_Row] = []
        for batch, *reading in rows:
            (loose if batch is None else batched.setdefault(batch, [])).append(tuple(reading))
        for seq, readings in batched.items():
            self._db.execute(
                "UPDATE batches SET n = ?, t0 = ?, t1 = ?, data = ? WHERE seq = ?",
                (*self._row(readings), seq),
            )
        self._db.execute("DELETE FROM batches WHERE data IS NULL")  # numbered, never filled
        for i in range(0, len(loose), MAX_BATCH):
            self._insert(loose[i : i + MAX_BATCH])
        self._db.execute("DROP TABLE readings")
        log.info(
            "outbox converted to one row per batch: %d batches kept, %d readings rebatched",
            len(batched),
            len(loose),
        )

    # -- writing ------------------------------------------------------------------------
    def _series_id(self, device: str, point: str, cal: float) -> int:
        key = (device, point, cal)
        sid = self._series.get(key)
        if sid is None:
            cur = self._db.execute("INSERT INTO series (device, point, cal) VALUES (?, ?, ?)", key)
            sid = int(cur.lastrowid or 0)
            self._series[key] = sid
            self._series_back[sid] = key
        return sid

    @staticmethod
    def _row(
        readings: Sequence[_Row],
    ) -> tuple[int, int, int, bytes]:
        """(n, t0, t1, data) of a batch row. ``data``: a MessagePack array of [series,
        ts - previous ts (the first: - t0), value] or [..., quality, reason]; a value is an
        integer of tenths where that is exact, else the float (or nil)."""
        t0 = min(r[1] for r in readings)
        prev, packed = t0, []
        for sid, ts, value, q, reason in readings:
            v: float | int | None = value
            if value is not None:
                k = _tenths(value)
                v = value if k is None else k
            row: list[Any] = [sid, ts - prev, v]
            if q:
                row += [q, reason]
            packed.append(row)
            prev = ts
        data: bytes = msgpack.packb(packed, use_bin_type=True)
        return len(readings), t0, max(r[1] for r in readings), data

    def _insert(self, readings: Sequence[_Row]) -> int:
        cur = self._db.execute(
            "INSERT INTO batches (created, n, t0, t1, data) VALUES (?, ?, ?, ?, ?)",
            (self._now_ms(), *self._row(readings)),
        )
        return int(cur.lastrowid or 0)

    def append(self, readings: Sequence[Reading], *, max_batch: int = MAX_BATCH) -> list[int]:
        """Store readings durably as batches of at most ``max_batch`` (one transaction, in
        which the deletes of acknowledged batches are made too); returns their numbers,
        oldest first. Then enforce the size bound."""
        if not readings:
            return []
        with self._lock:
            with self._transaction():
                rows = [
                    (
                        self._series_id(
                            r.series.device, r.series.point, r.meta.get("calibration", 0.0)
                        ),
                        r.ts_ms,
                        r.value,
                        _Q[r.quality],
                        r.reason,
                    )
                    for r in readings
                ]
                seqs = [
                    self._insert(rows[i : i + max_batch]) for i in range(0, len(rows), max_batch)
                ]
                self._delete_acked()
            if self.used_bytes() > self.policy.max_bytes:
                self._enforce_bound()
            return seqs

    # -- batches ------------------------------------------------------------------------
    def load_batch(self, seq: int) -> Batch:
        """Batch ``seq`` as first stored, to send or resend (``KeyError``: acknowledged or
        dropped since); it is in flight until acknowledged or :meth:`reset_in_flight`."""
        with self._lock:
            row = None if seq in self._acked else self._load_row(seq)
            if row is None:
                raise KeyError(f"no batch {seq} in the outbox")
            self._in_flight.add(seq)
            return Batch(self.gateway, self.site, self.epoch, seq, self._readings(*row))

    def _load_row(self, seq: int) -> tuple[int, bytes] | None:
        row = self._db.execute("SELECT t0, data FROM batches WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def _readings(self, t0: int, data: bytes) -> list[Reading]:
        readings = []
        for sid, ts, value, q, reason in _unpacked(t0, data):
            dev, point, cal = self._series_back[sid]
            meta = {"calibration": cal} if cal else {}
            series = SeriesId(self.site, self.gateway, dev, point)
            readings.append(Reading(series, ts, value, _Q_BACK[q], reason, meta))
        return readings

    def unacked(self) -> list[int]:
        """Sequence numbers of the batches stored and not acknowledged, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT seq FROM batches ORDER BY seq")
            return [r[0] for r in rows if r[0] not in self._acked]

    def reset_in_flight(self) -> None:
        """A new connection: nothing is in flight any more (all is sent again)."""
        with self._lock:
            self._in_flight.clear()

    def ack(self, epoch: str, seqs: Sequence[int]) -> int:
        """Forget acknowledged batches; returns how many readings left the buffer. Acks for
        another epoch (a wiped buffer) or unknown batches (a duplicate ack) change nothing.
        The rows go in the next transaction (:meth:`append` or :meth:`flush_acks`)."""
        if epoch != self.epoch or not seqs:
            return 0
        with self._lock:
            fresh = sorted({s for s in seqs if s not in self._acked})
            n = 0
            for seq, count in self._select("SELECT seq, n FROM batches WHERE seq IN", fresh):
                self._acked[seq] = count
                self._in_flight.discard(seq)
                n += count
            return n

    def _select(self, sql: str, seqs: Sequence[int]) -> Iterable[tuple[Any, ...]]:
        for i in range(0, len(seqs), 500):  # SQLite's bound on parameters is 999 and up
            chunk = seqs[i : i + 500]
            yield from self._db.execute(f"{sql} ({','.join('?' * len(chunk))})", chunk)

    def flush_acks(self) -> None:
        """Delete the acknowledged batches now (when no commit window is coming)."""
        with self._lock:
            if self._acked:
                with self._transaction():
                    self._delete_acked()

    def _delete_acked(self) -> None:
        """Inside a transaction: the rows of acknowledged batches deleted."""
        if self._acked:
            self._db.executemany(
                "DELETE FROM batches WHERE seq = ?", [(seq,) for seq in sorted(self._acked)]
            )
            self._acked.clear()

    # -- the size bound ----------------------------------------------------------------
    def used_bytes(self) -> int:
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def _enforce_bound(self) -> None:
        """Thin old readings to one per interval per series; drop the oldest if still full.
        Batches in flight are left alone (the hub may be committing them)."""
        with self._transaction():
            thinned = self._thin()
        dropped = 0
        while self.used_bytes() > self.policy.max_bytes * 0.9:
            with self._transaction():
                victims = [
                    (seq, n)
                    for seq, n in self._db.execute(
                        "SELECT seq, n FROM batches ORDER BY seq LIMIT 50"
                    )
                    if seq not in self._in_flight
                ]
                for seq, _ in victims:
                    self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                n = sum(count for _, count in victims)
                self._bump("dropped", n)
            dropped += n
            if not victims:
                break
        log.warning(
            "outbox over %d bytes: thinned %d readings older than %.0f h to one per %.0f min "
            "per series, dropped %d oldest",
            self.policy.max_bytes,
            thinned,
            self.policy.keep_recent_s / 3600,
            self.policy.thin_interval_s / 60,
            dropped,
        )

    def _thin(self) -> int:
        """Inside a transaction: readings older than keep_recent thinned to one per series
        per thin_interval (batches in flight left whole); how many went."""
        self._delete_acked()
        newest = self._db.execute("SELECT max(t1) FROM batches").fetchone()[0] or 0
        cutoff = newest - int(self.policy.keep_recent_s * 1000)
        bucket = int(self.policy.thin_interval_s * 1000)
        seen: set[tuple[int, int]] = set()
        thinned = 0
        old = self._db.execute(
            "SELECT seq, t0, data FROM batches WHERE t0 < ? ORDER BY seq", (cutoff,)
        ).fetchall()
        for seq, t0, data in old:
            readings = _unpacked(t0, data)
            kept = []
            for r in readings:
                key = (r[0], r[1] // bucket)
                if r[1] >= cutoff or key not in seen:
                    seen.add(key)
                    kept.append(r)
            if seq in self._in_flight or len(kept) == len(readings):
                continue
            thinned += len(readings) - len(kept)
            if kept:
                self._db.execute(
                    "UPDATE batches SET n = ?, t0 = ?, t1 = ?, data = ? WHERE seq = ?",
                    (*self._row(kept), seq),
                )
            else:
                self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
        self._bump("thinned", thinned)
        return thinned

    # -- reporting ---------------------------------------------------------------------
    def stats(self) -> Stats:
        with self._lock:
            batches, pending, oldest = 0, 0, None
            for seq, n, t0 in self._db.execute("SELECT seq, n, t0 FROM batches"):
                if seq not in self._acked:
                    batches, pending = batches + 1, pending + n
                    oldest = t0 if oldest is None else min(oldest, t0)
            return Stats(
                pending=pending,
                batches=batches,
                batches_in_flight=len(self._in_flight),
                oldest_ts_ms=oldest,
                used_bytes=self.used_bytes(),
                thinned_total=self._count("thinned"),
                dropped_total=self._count("dropped"),
            )

    def _now_ms(self) -> int:
        return self._clock_ms() if self._clock_ms is not None else time.time_ns() // 1_000_000

    def close(self) -> None:
        self.flush_acks()
        with self._lock:
            self._db.close()


class AsyncOutbox:
    """The outbox for coroutines: every call runs on one worker thread, so a slow SD card
    never blocks the event loop and calls stay in order."""

    def __init__(self, outbox: Outbox) -> None:
        self.sync = outbox
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def append(self, readings: Sequence[Reading], max_batch: int = MAX_BATCH) -> list[int]:
        return await self._run(lambda: self.sync.append(readings, max_batch=max_batch))

    async def load_batch(self, seq: int) -> Batch:
        return await self._run(self.sync.load_batch, seq)

    async def unacked(self) -> list[int]:
        return await self._run(self.sync.unacked)

    async def reset_in_flight(self) -> None:
        await self._run(self.sync.reset_in_flight)

    async def ack(self, epoch: str, seqs: Sequence[int]) -> int:
        return await self._run(self.sync.ack, epoch, seqs)

    async def flush_acks(self) -> None:
        await self._run(self.sync.flush_acks)

    async def stats(self) -> Stats:
        return await self._run(self.sync.stats)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.sync.close()
