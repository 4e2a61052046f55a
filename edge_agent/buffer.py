"""The outbox: every reading on disk (SQLite, WAL, synchronous=FULL) until the hub has
acknowledged the batch that carried it.

* ``append`` writes readings in one transaction: after it returns they survive kill -9 and
  power loss.
* ``next_batch`` numbers the next batch (``seq``) and assigns readings to it: a share of the
  newest ones first (live data is never starved by a backlog), the rest oldest-first (the
  backlog drains in order). Batches are kept, so unacknowledged ones are resent identically
  after a restart.
* ``ack`` deletes a batch and its readings: only the hub's end-to-end acknowledgement removes
  anything, never a broker's PUBACK.
* When the file passes its size bound, the explicit policy runs and is counted: readings older
  than ``keep_recent`` are thinned to one per ``thin_interval`` per series (the GSP record
  interval, 30 min), and only if that is not enough are the oldest readings dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY, series INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL,
    q INTEGER NOT NULL, reason TEXT, batch INTEGER);
CREATE INDEX IF NOT EXISTS readings_batch ON readings (batch) WHERE batch IS NOT NULL;
CREATE INDEX IF NOT EXISTS readings_unbatched ON readings (id) WHERE batch IS NULL;
-- AUTOINCREMENT: a sequence number is never reused, so a late duplicate ack of an old batch
-- can never delete a newer one that took its number.
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Policy:
    """What the outbox does when it passes its size bound."""

    max_bytes: int = 256 * 1024 * 1024
    keep_recent_s: float = 24 * 3600.0  # every reading of the newest day is kept
    thin_interval_s: float = 30 * 60.0  # older ones: one per 30 min per series (GSP)
    live_share: float = 0.25  # part of each batch reserved for the newest readings


@dataclass(frozen=True, slots=True)
class Stats:
    """What the health report says about the outbox."""

    pending: int  # readings not yet acknowledged
    unbatched: int
    batches_in_flight: int
    oldest_ts_ms: int | None
    used_bytes: int
    thinned_total: int
    dropped_total: int


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
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a power cut loses nothing committed
        self._db.executescript(SCHEMA)
        self._series: dict[tuple[str, str, float], int] = {}
        self._series_back: dict[int, tuple[str, str, float]] = {}
        for sid, dev, point, cal in self._db.execute("SELECT id, device, point, cal FROM series"):
            self._series[(dev, point, cal)] = sid
            self._series_back[sid] = (dev, point, cal)
        self.epoch = self._meta("epoch") or self._init_epoch()
        self._clock_ms = clock_ms

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

    def append(self, readings: Sequence[Reading]) -> None:
        """Store readings durably (one transaction), then enforce the size bound."""
        if not readings:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
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
                self._db.executemany(
                    "INSERT INTO readings (series, ts, value, q, reason) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if self.used_bytes() > self.policy.max_bytes:
                self._enforce_bound()

    # -- batches ------------------------------------------------------------------------
    def next_batch(self, max_readings: int) -> Batch | None:
        """Number a new batch of unbatched readings (newest share first, then oldest-first),
        or None if there is nothing to send."""
        with self._lock:
            live = max(1, int(max_readings * self.policy.live_share))
            newest = self._db.execute(
                "SELECT id FROM readings WHERE batch IS NULL ORDER BY id DESC LIMIT ?", (live,)
            ).fetchall()
            if not newest:
                return None
            low = min(r[0] for r in newest)
            oldest = self._db.execute(
                "SELECT id FROM readings WHERE batch IS NULL AND id < ? ORDER BY id LIMIT ?",
                (low, max_readings - len(newest)),
            ).fetchall()
            ids = [r[0] for r in oldest] + [r[0] for r in reversed(newest)]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO batches (created) VALUES (?)", (self._now_ms(),)
                )
                seq = int(cur.lastrowid or 0)
                self._db.executemany(
                    "UPDATE readings SET batch = ? WHERE id = ?", [(seq, i) for i in ids]
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._load(seq)

    def load_batch(self, seq: int) -> Batch:
        """A batch as first numbered (for a resend)."""
        with self._lock:
            return self._load(seq)

    def _load(self, seq: int) -> Batch:
        rows = self._db.execute(
            "SELECT series, ts, value, q, reason FROM readings WHERE batch = ? ORDER BY id",
            (seq,),
        ).fetchall()
        readings = []
        for sid, ts, value, q, reason in rows:
            dev, point, cal = self._series_back[sid]
            meta = {"calibration": cal} if cal else {}
            series = SeriesId(self.site, self.gateway, dev, point)
            readings.append(Reading(series, ts, value, _Q_BACK[q], reason, meta))
        return Batch(self.gateway, self.site, self.epoch, seq, readings)

    def unacked(self) -> list[int]:
        """Sequence numbers of batches sent (or numbered) but not acknowledged, oldest first."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT seq FROM batches ORDER BY seq")]

    def ack(self, epoch: str, seqs: Sequence[int]) -> int:
        """Forget acknowledged batches; returns how many readings left the buffer. Acks for
        another epoch (a wiped buffer) or unknown batches (a duplicate ack) change nothing."""
        if epoch != self.epoch or not seqs:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n = 0
                for seq in seqs:
                    n += self._db.execute("DELETE FROM readings WHERE batch = ?", (seq,)).rowcount
                    self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return n

    # -- the size bound ----------------------------------------------------------------
    def used_bytes(self) -> int:
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def _enforce_bound(self) -> None:
        """Thin old readings to one per interval per series; drop the oldest if still full.
        Readings already in a batch are left alone (the hub may be committing them)."""
        newest = self._db.execute("SELECT max(ts) FROM readings").fetchone()[0] or 0
        cutoff = newest - int(self.policy.keep_recent_s * 1000)
        bucket = int(self.policy.thin_interval_s * 1000)
        self._db.execute("BEGIN IMMEDIATE")
        thinned = self._db.execute(
            """DELETE FROM readings WHERE batch IS NULL AND ts < ? AND id NOT IN (
                   SELECT min(id) FROM readings WHERE batch IS NULL AND ts < ?
                   GROUP BY series, ts / ?)""",
            (cutoff, cutoff, bucket),
        ).rowcount
        self._bump("thinned", thinned)
        self._db.execute("COMMIT")
        dropped = 0
        while self.used_bytes() > self.policy.max_bytes * 0.9:
            self._db.execute("BEGIN IMMEDIATE")
            n = self._db.execute(
                """DELETE FROM readings WHERE id IN (
                       SELECT id FROM readings WHERE batch IS NULL ORDER BY id LIMIT 1000)"""
            ).rowcount
            self._bump("dropped", n)
            self._db.execute("COMMIT")
            dropped += n
            if n == 0:
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

    def batch_due(self, batch_size: int, max_wait_s: float) -> bool:
        """Is a batch worth numbering now: a full one waits, or the oldest unbatched reading
        is older than ``max_wait_s``? Costs O(batch_size), not O(backlog)."""
        with self._lock:
            (n,) = self._db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM readings WHERE batch IS NULL LIMIT ?)",
                (batch_size,),
            ).fetchone()
            if n >= batch_size:
                return True
            if n == 0:
                return False
            (ts,) = self._db.execute(
                "SELECT ts FROM readings WHERE batch IS NULL ORDER BY id LIMIT 1"
            ).fetchone()
            return bool(self._now_ms() - ts >= max_wait_s * 1000)

    # -- reporting ---------------------------------------------------------------------
    def stats(self) -> Stats:
        with self._lock:
            pending, unbatched, oldest = self._db.execute(
                "SELECT count(*), count(*) - count(batch), min(ts) FROM readings"
            ).fetchone()
            in_flight = self._db.execute("SELECT count(*) FROM batches").fetchone()[0]
            return Stats(
                pending=pending,
                unbatched=unbatched,
                batches_in_flight=in_flight,
                oldest_ts_ms=oldest,
                used_bytes=self.used_bytes(),
                thinned_total=self._count("thinned"),
                dropped_total=self._count("dropped"),
            )

    def _now_ms(self) -> int:
        return self._clock_ms() if self._clock_ms is not None else time.time_ns() // 1_000_000

    def close(self) -> None:
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

    async def append(self, readings: Sequence[Reading]) -> None:
        await self._run(self.sync.append, readings)

    async def next_batch(self, max_readings: int) -> Batch | None:
        return await self._run(self.sync.next_batch, max_readings)

    async def load_batch(self, seq: int) -> Batch:
        return await self._run(self.sync.load_batch, seq)

    async def unacked(self) -> list[int]:
        return await self._run(self.sync.unacked)

    async def ack(self, epoch: str, seqs: Sequence[int]) -> int:
        return await self._run(self.sync.ack, epoch, seqs)

    async def batch_due(self, batch_size: int, max_wait_s: float) -> bool:
        return await self._run(self.sync.batch_due, batch_size, max_wait_s)

    async def stats(self) -> Stats:
        return await self._run(self.sync.stats)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.sync.close()
