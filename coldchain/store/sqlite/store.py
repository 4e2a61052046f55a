"""The embedded default store: one SQLite file (WAL, synchronous=FULL) with 1-min and 1-h
rollups kept by the writer's own transaction. See docs/store.md for the schema, the disk
it needs and its measured speed.

Threads: every write (and prune step) runs on one dedicated writer thread with the only
read-write connection, so writes stay in order and the event loop never waits on an fsync.
Reads run on a second thread with a read-only connection: WAL lets it read a consistent
snapshot while the writer commits, so a dashboard's 30-day query does not hold up the ingest's
acks, and a slow commit does not hold up the dashboard. A read sees every write that returned
before it was called.

    store = SqliteStore("/var/lib/coldchain/store.db", raw_retention_days=1827)
    await store.write(readings)
    ...
    await store.prune(now_ms)   # daily
    await store.close()
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from coldchain.reading import Reading, SeriesId
from coldchain.store.base import (
    Agg,
    Bucket,
    DoorInterval,
    Footprint,
    RetimeResult,
    SealResult,
    Store,
    StoreError,
    WriteResult,
)
from coldchain.store.sqlite.blocking import Reader, Writer
from coldchain.store.sqlite.rollup import HOUR_MS, MINUTE_MS
from coldchain.store.sqlite.seal import SEAL_GRACE_MS

_T = TypeVar("_T")
DAY_MS = 86_400_000
# GSP: records kept 5 years (DOMAIN.md); 1827 days cover any 5 years with their leap days.
RAW_RETENTION_DAYS = 1827


@dataclass(frozen=True, slots=True)
class PruneResult:
    """Rows deleted by :meth:`SqliteStore.prune`, and the floor below which readings are
    refused from now on (None: raw readings are kept forever)."""

    raw: int
    rollup_1m: int
    rollup_1h: int
    floor_ms: int | None


def _check_retention(raw: int | None, m1: int | None, h1: int | None) -> None:
    def longer(a: int | None, b: int | None) -> bool:  # None: forever
        return a is None or (b is not None and a >= b)

    for name, days in (("raw", raw), ("rollup_1m", m1), ("rollup_1h", h1)):
        if days is not None and days < 1:
            raise ValueError(f"{name}_retention_days must be at least 1 (or None: forever)")
    if not longer(m1, raw):
        raise ValueError(
            f"rollup_1m_retention_days ({m1}) must be >= raw_retention_days ({raw}): "
            "1-min queries read the rollup, so it must reach as far back as raw rows"
        )
    if not longer(h1, m1):
        raise ValueError(
            f"rollup_1h_retention_days ({h1}) must be >= rollup_1m_retention_days ({m1})"
        )


class SqliteStore(Store):
    """Readings in one SQLite file; see the module doc."""

    def __init__(
        self,
        path: str | Path,
        *,
        raw_retention_days: int | None = RAW_RETENTION_DAYS,
        rollup_1m_retention_days: int | None = RAW_RETENTION_DAYS,
        rollup_1h_retention_days: int | None = None,
        prune_batch: int = 5000,
    ) -> None:
        """Open (or create) the store at ``path``. Retention in days, None: forever. Rollups
        must be kept at least as long as raw readings. ``prune_batch``: rows deleted per
        prune transaction, so the ingest's writes wait at most one batch."""
        _check_retention(raw_retention_days, rollup_1m_retention_days, rollup_1h_retention_days)
        if prune_batch < 1:
            raise ValueError(f"prune_batch must be at least 1, not {prune_batch}")
        self.path = Path(path)
        self.raw_retention_days = raw_retention_days
        self.rollup_1m_retention_days = rollup_1m_retention_days
        self.rollup_1h_retention_days = rollup_1h_retention_days
        self.prune_batch = prune_batch
        # Opening creates the schema: a short, one-time block at start-up, so that a bad
        # path fails here rather than at the first write.
        self._writer = Writer(self.path)
        try:
            self._reader = Reader(self.path)
            self._sealer = Reader(self.path)  # reads an hour to seal without holding up reads
        except BaseException:
            self._writer.close()
            raise
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-write")
        self._read_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-read")
        self._seal_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-seal")
        self._sealing = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    async def _run(
        self, pool: ThreadPoolExecutor, what: str, fn: Callable[..., _T], *args: Any
    ) -> _T:
        if self._closed:
            raise StoreError(f"sqlite store {self.path}: {what}: the store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: {what}: {exc}") from exc

    # -- writing -----------------------------------------------------------------------
    async def write(self, readings: Sequence[Reading]) -> WriteResult:
        what = f"write of {len(readings)} readings"
        stored, ignored = await self._run(self._write_pool, what, self._writer.write, readings)
        return WriteResult(stored=stored, duplicates=ignored)

    async def retime(self, gateway: str, start_ms: int, end_ms: int, shift_ms: int) -> RetimeResult:
        what = f"clock correction of {gateway}"
        moved, conflicts = await self._run(
            self._write_pool, what, self._writer.retime, gateway, start_ms, end_ms, shift_ms
        )
        return RetimeResult(moved, conflicts)

    async def prune(self, now_ms: int) -> int:
        """Delete rows past their retention; the number of rows deleted (the hub calls it
        daily). :meth:`prune_detail` says how many of each kind."""
        r = await self.prune_detail(now_ms)
        return r.raw + r.rollup_1m + r.rollup_1h

    async def prune_detail(self, now_ms: int) -> PruneResult:
        """Delete rows past their retention, ``prune_batch`` rows a transaction (writes are
        served between transactions). Raw readings older than the new floor are refused
        from now on (counted as duplicates): see :meth:`Writer.raise_floor`."""
        floor: int | None = None
        if self.raw_retention_days is not None:
            cut = now_ms - self.raw_retention_days * DAY_MS
            floor = await self._run(self._write_pool, "prune", self._writer.raise_floor, cut)
        sids = await self._run(self._write_pool, "prune", self._writer.series_ids)
        plan = (
            ("reading", "ts", self.raw_retention_days, 1),
            ("rollup_1m", "bucket", self.rollup_1m_retention_days, MINUTE_MS),
            ("rollup_1h", "bucket", self.rollup_1h_retention_days, HOUR_MS),
        )
        deleted: list[int] = []
        for table, key, days, grain in plan:
            total = 0
            if days is not None:
                cut = (now_ms - days * DAY_MS) // grain * grain  # keep a partly kept bucket
                if table == "rollup_1m":  # the 1-h rows its hours make, made first
                    await self._run(self._write_pool, "prune", self._writer.roll_through, cut)
                pos = 0
                while pos < len(sids):
                    step = functools.partial(
                        self._writer.prune_step,
                        table,
                        key,
                        cutoff=cut,
                        sids=sids,
                        pos=pos,
                        budget=self.prune_batch,
                    )
                    n, pos = await self._run(self._write_pool, f"prune {table}", step)
                    total += n
            deleted.append(total)
        raw, rollup_1m, rollup_1h = deleted
        return PruneResult(raw=raw, rollup_1m=rollup_1m, rollup_1h=rollup_1h, floor_ms=floor)

    async def seal(self, now_ms: int) -> SealResult:
        """Seal every hour that ended :data:`SEAL_GRACE_MS` or more before ``now_ms`` and is
        not sealed yet (the first time: the last such hour only; readings before it stay
        unsealed), then the late readings of sealed hours in addenda
        (:mod:`coldchain.store.sqlite.seal`). Each step is its own short transaction on the
        writer; the hour's readings are read on a third connection."""
        w, pool = self._writer.sealing, self._write_pool
        async with self._sealing:
            due = (now_ms - SEAL_GRACE_MS) // HOUR_MS * HOUR_MS  # hours before it are over
            through = await self._run(pool, "seal", lambda: w.sealed_through)
            hour = due - HOUR_MS if through is None else through + HOUR_MS
            hours = late = 0
            while hour < due:
                await self._run(pool, "seal", w.advance_late, hour)
                entries = await self._run(
                    self._seal_pool, "seal", self._sealer.hour_sealed_part, hour
                )
                await self._run(pool, "seal", w.seal_hour, hour, entries, now_ms)
                hour += HOUR_MS
                hours += 1
            for h in await self._run(pool, "seal", w.late_hours):
                late += await self._run(pool, "seal", w.seal_addendum, h, now_ms)
            head = await self._run(pool, "seal", w.head)
        return SealResult(hours, late, None if head is None else (head.id, head.hour_ms, head.link))

    # -- reading -----------------------------------------------------------------------
    async def latest(self, series: Sequence[SeriesId] | None = None) -> dict[SeriesId, Reading]:
        return await self._run(self._read_pool, "latest", self._reader.latest, series)

    async def raw(self, series: SeriesId, start_ms: int, end_ms: int) -> list[Reading]:
        what = f"raw {series}"
        return await self._run(self._read_pool, what, self._reader.raw, series, start_ms, end_ms)

    async def range(
        self,
        series: SeriesId,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        agg: Agg,
        *,
        use_rollups: bool = True,
    ) -> list[Bucket]:
        """See :meth:`Store.range`; ``use_rollups=False`` reads raw rows only (for tests and
        the benchmark: the answer is the same)."""
        return await self._run(
            self._read_pool,
            f"range {series}",
            functools.partial(self._reader.range, use_rollups=use_rollups),
            *(series, start_ms, end_ms, step_ms, agg),
        )

    async def door_intervals(
        self, series: SeriesId, start_ms: int, end_ms: int
    ) -> list[DoorInterval]:
        return await self._run(
            self._read_pool,
            f"door intervals {series}",
            self._reader.door_intervals,
            *(series, start_ms, end_ms),
        )

    async def series(self) -> list[SeriesId]:
        return await self._run(self._read_pool, "series", self._reader.series)

    async def footprint(self) -> Footprint:
        """The oldest reading, and the file with its WAL on disk."""
        oldest = await self._run(self._read_pool, "oldest", self._reader.oldest)
        size = 0
        for suffix in ("", "-wal", "-shm"):
            f = self.path.with_name(self.path.name + suffix)
            size += f.stat().st_size if f.exists() else 0
        return Footprint(oldest, size)

    async def close(self) -> None:
        """Wait for queued work, then close both connections (the WAL is checkpointed)."""
        if self._closed:
            return
        async with self._sealing:
            await self._run(self._read_pool, "close", self._reader.close)
            await self._run(self._seal_pool, "close", self._sealer.close)
            await self._run(self._write_pool, "close", self._writer.close)
            self._closed = True
        self._read_pool.shutdown(wait=False)
        self._seal_pool.shutdown(wait=False)
        self._write_pool.shutdown(wait=False)
