"""The embedded SQLite store (coldchain/store/sqlite/store.py): write throughput, disk per reading,
and a room's 30-day history with a year of data loaded.

(a) Writes through ``await store.write`` (the hub's path) in batches of ``--batch``, in three
    shapes: one gateway draining a backlog (40 series, time order), live readings of
    ``--series`` series (each batch a different series per reading: the worst case for
    locality), and the live shape coalesced into transactions of 20,000 (what the ingest does
    when readings queue). readings/s is wall time; "per CPU-s" divides by the process's CPU
    time (writer thread included). Each shape with synchronous=FULL (the store's setting)
    and NORMAL (what FULL costs). Target: well above 50,000 readings/s per core.
(b) One room (temperature, humidity) with a year at 1 reading/min per series loaded through
    ``write``; a 30-day history at 1-min resolution, from the 1-min rollup and from raw rows
    (median of ``--repeat``). Target: under 100 ms.

    .venv/bin/python bench/bench_store_sqlite.py [--readings 300000] [--batch 500]
        [--series 1000] [--days 365] [--per-minute 1] [--repeat 15] [--only writes|history]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.base import Agg
from coldchain.store.sqlite.store import SqliteStore

T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
COALESCED = 20_000  # gateway/ingest.py MAX_WRITE


def _value(rng: random.Random, base: float) -> float:
    return round(base + rng.gauss(0, 0.4), 1)


def backlog(n: int) -> list[Reading]:
    """One gateway's backlog: 40 series, one reading a minute each, in time order."""
    rng = random.Random(1)
    series = [
        SeriesId("town", "gw-tea", f"cr{i // 2}", ("temperature", "humidity")[i % 2])
        for i in range(40)
    ]
    return [
        Reading(series[k % 40], T0 + (k // 40) * MIN + k % 40, _value(rng, 3.0 + 60 * (k % 2)))
        for k in range(n)
    ]


def live(n: int, nseries: int) -> list[Reading]:
    """Every series once a minute, ordered by time: consecutive readings are different series."""
    rng = random.Random(2)
    series = [SeriesId("city", f"gw{i // 40}", f"p{i}", "temperature") for i in range(nseries)]
    out = []
    for k in range(n):
        r = Reading(series[k % nseries], T0 + (k // nseries) * MIN + k % 997, _value(rng, -18.0))
        if k % 200 == 0:  # a few bad readings, as a real site has
            r = Reading(r.series, r.ts_ms, None, Quality.BAD, "probe open")
        out.append(r)
    return out


async def timed_writes(
    store: SqliteStore, readings: list[Reading], batch: int
) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(readings), batch):
        await store.write(readings[i : i + batch])
    return time.perf_counter() - wall, time.process_time() - cpu


def table_bytes(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    finally:
        db.close()
    return dict(rows)


async def bench_writes(args: argparse.Namespace, tmp: Path) -> None:
    print(f"\n## (a) writes: {args.readings:,} readings a run")
    print("| shape | batch | synchronous | readings/s | per CPU-s | ms per write |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    shapes = [
        ("one gateway's backlog (40 series)", backlog(args.readings), args.batch),
        (f"live, {args.series} series", live(args.readings, args.series), args.batch),
        (f"live, {args.series} series, coalesced", live(args.readings, args.series), COALESCED),
    ]
    kept: SqliteStore | None = None
    for name, readings, batch in shapes:
        for sync in ("FULL", "NORMAL"):
            store = SqliteStore(tmp / f"{len(os.listdir(tmp))}.db")
            store._writer.db.execute(f"PRAGMA synchronous={sync}")
            wall, cpu = await timed_writes(store, readings, batch)
            n, ms = len(readings), wall / math.ceil(len(readings) / batch) * 1e3
            print(f"| {name} | {batch:,} | {sync} | {n / wall:,.0f} | {n / cpu:,.0f} | {ms:.2f} |")
            if kept is None and name.startswith("live"):
                kept = store  # the live shape's file, for the disk figures
            else:
                await store.close()
    assert kept is not None
    await disk_per_reading(args, kept)


async def disk_per_reading(args: argparse.Namespace, store: SqliteStore) -> None:
    sizes = table_bytes(store.path)
    n, per_series = args.readings, args.readings / args.series
    print(f"\n## disk, live shape ({args.series} series x {per_series:.0f} minutes, dbstat)")
    print("| table | bytes | bytes per reading |")
    print("| --- | ---: | ---: |")
    for name in ("reading", "rollup_1m", "rollup_1h", "series", "sqlite_autoindex_series_1"):
        print(f"| {name} | {sizes.get(name, 0):,} | {sizes.get(name, 0) / n:.1f} |")
    total = sum(sizes.values())
    print(f"| all | {total:,} | {total / n:.1f} |")
    ids = [SeriesId("city", f"gw{i // 40}", f"p{i}", "temperature") for i in range(args.series)]
    latest_all = await median_ms(functools.partial(store.latest), args.repeat)
    latest_40 = await median_ms(functools.partial(store.latest, ids[:40]), args.repeat)
    print(f"\nlatest(): all {args.series} series {latest_all:.1f} ms; 40 series {latest_40:.2f} ms")
    await store.close()


async def median_ms(fn: Callable[[], Awaitable[object]], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def room_year(days: int, per_minute: int) -> tuple[SeriesId, SeriesId, list[Reading]]:
    temp = SeriesId("city", "gw-city", "cr1-probe", "temperature")
    hum = SeriesId("city", "gw-city", "cr1-probe", "humidity")
    rng = random.Random(3)
    out = []
    every = MIN // per_minute
    for k in range(days * 24 * 60 * per_minute):
        ts = T0 + k * every + rng.randrange(every // 30)  # read just after the tick
        daily = math.sin(2 * math.pi * k / (1440 * per_minute))
        out.append(Reading(temp, ts, round(2.5 + 1.2 * daily + rng.gauss(0, 0.2), 1)))
        out.append(Reading(hum, ts + 1, round(85 - 5 * daily + rng.gauss(0, 1), 1)))
    return temp, hum, out


async def history(
    store: SqliteStore,
    series: list[SeriesId],
    window: tuple[int, int],
    step: int,
    agg: Agg,
    *,
    rollups: bool,
) -> int:
    """One history view: every series of the room, one after the other; buckets returned."""
    n = 0
    for s in series:
        n += len(await store.range(s, *window, step, agg, use_rollups=rollups))
    return n


async def bench_history(args: argparse.Namespace, tmp: Path) -> None:
    temp, hum, readings = room_year(args.days, args.per_minute)
    store = SqliteStore(tmp / "room.db")
    wall, _ = await timed_writes(store, readings, 10_000)
    sizes = table_bytes(store.path)
    size, n = sum(sizes.values()), len(readings)
    print(
        f"\n## (b) one room, {args.days} days at {args.per_minute} reading(s)/min: "
        "temperature + humidity"
    )
    print(
        f"loaded {n:,} readings through write() in batches of 10,000: {n / wall:,.0f} "
        f"readings/s; {size / 2**20:.1f} MiB in the file ({size / n:.1f} bytes/reading: "
        + ", ".join(f"{t} {sizes.get(t, 0) / n:.1f}" for t in ("reading", "rollup_1m", "rollup_1h"))
        + ")"
    )
    end = T0 + args.days * DAY
    print(f"\nmedian of {args.repeat}, ms (rollup: what range() reads; raw: use_rollups=False)")
    print("| query | buckets | rollup | raw rows | raw / rollup |")
    print("| --- | ---: | ---: | ---: | ---: |")
    month, year = (end - 30 * DAY, end), (end - args.days * DAY, end)
    cases = [
        ("30 days, 1 min, mean, temperature", [temp], month, MIN, Agg.MEAN),
        ("30 days, 1 min, mean, temperature + humidity", [temp, hum], month, MIN, Agg.MEAN),
        ("30 days, 1 min, max, temperature", [temp], month, MIN, Agg.MAX),
        ("30 days, 15 min, mean, temperature", [temp], month, 15 * MIN, Agg.MEAN),
        ("30 days, 1 h, mean, temperature", [temp], month, HOUR, Agg.MEAN),
        (f"{args.days} days, 1 day, mean, temperature", [temp], year, DAY, Agg.MEAN),
    ]
    for name, series, window, step, agg in cases:
        view = functools.partial(history, store, series, window, step, agg)
        buckets = await view(rollups=True)
        assert buckets == await view(rollups=False), name
        fast = await median_ms(functools.partial(view, rollups=True), args.repeat)
        slow = await median_ms(functools.partial(view, rollups=False), args.repeat)
        print(f"| {name} | {buckets:,} | {fast:.1f} | {slow:.1f} | {slow / fast:.1f}x |")
    await store.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--per-minute", type=int, default=1, help="readings/min of the room")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--only", choices=("writes", "history"), help="run one part")
    args = ap.parse_args()
    print(
        f"# SQLite store benchmark: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}; files in {Path.cwd()}"
    )
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        if args.only in (None, "writes"):
            await bench_writes(args, Path(tmp))
        if args.only in (None, "history"):
            await bench_history(args, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
