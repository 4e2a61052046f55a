"""The embedded SQLite store: the backend contract, and what is SQLite's own — rollups equal
to raw answers, reopening, pruning, durability settings, reads while writing."""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coldchain.reading import Reading, SeriesId
from coldchain.store.base import Agg, Bucket, DoorInterval, StoreError
from coldchain.store.sqlite import blocking
from coldchain.store.sqlite.store import SqliteStore
from tests.store_contract import (
    CHECKS,
    DAY,
    HOUR,
    MIN,
    SEC,
    T0,
    Check,
    assert_buckets,
    bad,
    good,
    uncertain,
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store.db")
    yield s
    await s.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
async def test_contract(store: SqliteStore, check: Check) -> None:
    await check(store)


async def test_contract_checks_share_one_store(store: SqliteStore) -> None:
    """The checks keep to their own series, so a backend may run them all on one store."""
    for check in CHECKS:
        await check(store)


# -- rollups give the answers raw rows give ------------------------------------------------
def _oracle(readings: list[Reading], a: int, z: int, step: int, agg: Agg) -> list[Bucket]:
    """The answer computed in Python from one series' readings (oldest first), by definition."""
    per: dict[int, list[Reading]] = {}
    for r in readings:
        if a <= r.ts_ms < z:
            per.setdefault(r.ts_ms // step * step, []).append(r)
    out = []
    for b, rs in sorted(per.items()):
        vals = [r.value for r in rs if r.quality == "good" and r.value is not None]
        if not vals:
            out.append(Bucket(b, None, 0))
            continue
        value = {
            Agg.MIN: min(vals),
            Agg.MAX: max(vals),
            Agg.MEAN: math.fsum(vals) / len(vals),
            Agg.LAST: vals[-1],
        }[agg]
        out.append(Bucket(b, value, len(vals)))
    return out


async def test_rollups_give_the_same_answers_as_raw_rows(store: SqliteStore) -> None:
    rng = random.Random(20251128)
    series = [SeriesId("city", "gw1", f"cr{i}-probe", "temperature") for i in range(4)]
    readings = []
    for s in series:
        for ts in rng.sample(range(T0, T0 + 3 * DAY, 7 * SEC), 3000):
            value = round(rng.uniform(-25, 8), 2)
            kind = rng.random()
            if kind < 0.08:
                readings.append(bad(s, ts))
            elif kind < 0.12:
                readings.append(uncertain(s, ts, value))
            else:
                readings.append(good(s, ts, value))
    rng.shuffle(readings)
    # Resends (with other values: the first copy must win) mixed into later batches.
    resent = [good(r.series, r.ts_ms, 99.0) for r in rng.sample(readings, 2000)] + rng.sample(
        readings, 1000
    )
    stream = readings + resent
    i = 0
    while i < len(stream):
        n = rng.randint(1, 700)
        await store.write(stream[i : i + n])
        i += n
    first: dict[tuple[SeriesId, int], Reading] = {}
    for r in stream:
        first.setdefault((r.series, r.ts_ms), r)
    stored = {s: [first[k] for k in sorted(first) if k[0] == s] for s in series}
    for s in series:
        for step in (MIN, 2 * MIN, 5 * MIN, 15 * MIN, HOUR, 3 * HOUR, DAY, 7 * SEC, 90 * SEC):
            for a, z in ((T0, T0 + 3 * DAY), (T0 + 17 * MIN + 3 * SEC, T0 + 2 * DAY + 7 * SEC)):
                for agg in Agg:
                    what = f"{s} step {step} [{a}, {z}) {agg}"
                    want = _oracle(stored[s], a, z, step, agg)
                    from_rollup = await store.range(s, a, z, step, agg)
                    from_raw = await store.range(s, a, z, step, agg, use_rollups=False)
                    assert_buckets(from_rollup, want, what + " (rollup)")
                    assert_buckets(from_raw, want, what + " (raw)")
                    if agg is not Agg.MEAN:  # the mean may differ in its last bits
                        assert from_rollup == from_raw == want, what


# -- reopening ----------------------------------------------------------------------------
async def test_reopen_keeps_readings_rollups_and_series_ids(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    a, b = SeriesId("city", "gw1", "p1", "temperature"), SeriesId("city", "gw1", "p2", "door")
    first = SqliteStore(path)
    written = [good(a, T0 + k * 20 * SEC, k / 2, cal=-0.5) for k in range(30)]
    assert (await first.write(written)).stored == 30
    before = await first.range(a, T0, T0 + HOUR, MIN, Agg.MEAN)
    await first.close()
    assert not path.with_name("store.db-wal").exists(), "closing checkpoints the WAL"
    again = SqliteStore(path)
    assert await again.raw(a, T0, T0 + HOUR) == written
    assert await again.range(a, T0, T0 + HOUR, MIN, Agg.MEAN) == before
    assert (await again.write(written)).duplicates == 30, "duplicates still recognised"
    await again.write([good(b, T0, 1.0)])  # a new series gets a new id
    assert await again.series() == [a, b]
    assert await again.latest() == {a: written[-1], b: good(b, T0, 1.0)}
    await again.close()


# -- prune --------------------------------------------------------------------------------
async def test_prune_deletes_each_table_past_its_retention(tmp_path: Path) -> None:
    now = T0 + 100 * DAY
    store = SqliteStore(
        tmp_path / "s.db",
        raw_retention_days=30,
        rollup_1m_retention_days=60,
        rollup_1h_retention_days=None,
        prune_batch=50,  # many small transactions
    )
    series = [SeriesId("city", "gw1", f"p{i}", "temperature") for i in range(3)]
    hourly = [good(s, T0 + h * HOUR, float(h % 7)) for s in series for h in range(100 * 24)]
    await store.write(hourly)
    result = await store.prune_detail(now)
    assert result.floor_ms == now - 30 * DAY
    assert result.raw == 3 * 70 * 24, result
    assert result.rollup_1m == 3 * 40 * 24, result
    assert result.rollup_1h == 0, result
    s = series[0]
    assert (await store.raw(s, T0, now))[0].ts_ms == now - 30 * DAY
    assert (await store.range(s, T0, now, MIN, Agg.MAX))[0].ts_ms == now - 60 * DAY
    by_day = await store.range(s, T0, T0 + 10 * DAY, DAY, Agg.MEAN)
    want = [(sum(h % 7 for h in range(d * 24, d * 24 + 24)) / 24, 24) for d in range(10)]
    assert [(b.value, b.count) for b in by_day] == want, "1-h rollups outlive raw rows"
    # A resend older than the floor is refused, so the rollups cannot count it twice.
    late = good(s, T0 + 5 * DAY, 50.0)
    assert (await store.write([late])).stored == 0
    assert await store.range(s, T0 + 5 * DAY, T0 + 6 * DAY, DAY, Agg.MEAN) == by_day[5:6]
    assert (await store.write([good(s, now - DAY + 1, 50.0)])).stored == 1
    again = await store.prune_detail(now)
    assert (again.raw, again.rollup_1m, again.rollup_1h) == (0, 0, 0)
    await store.close()
    reopened = SqliteStore(tmp_path / "s.db", raw_retention_days=30, rollup_1m_retention_days=60)
    assert (await reopened.write([late])).stored == 0, "the floor survives a restart"
    await reopened.close()


async def test_writes_are_served_between_prune_transactions(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", raw_retention_days=1, prune_batch=20)
    s = SeriesId("city", "gw1", "p1", "temperature")
    await store.write([good(s, T0 + k * MIN, 1.0) for k in range(20_000)])
    pruning = asyncio.create_task(store.prune_detail(T0 + 30 * DAY))
    async with asyncio.timeout(30):  # until the prune has committed some of its transactions
        while len(await store.raw(s, T0, T0 + 30 * DAY)) == 20_000:
            pass  # each read waits on the reader thread
    await store.write([good(s, T0 + 30 * DAY, 2.0)])
    assert not pruning.done(), "the write waited for one prune transaction, not the prune"
    assert (await pruning).raw == 20_000
    await store.close()


# -- durability, concurrency, errors -------------------------------------------------------
async def test_durable_settings(store: SqliteStore) -> None:
    db = store._writer.db
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA synchronous").fetchone() == (2,), "FULL: an ack survives power loss"
    tables = dict(db.execute("SELECT name, sql FROM sqlite_schema WHERE type = 'table'"))
    for name in ("reading", "rollup_1m", "rollup_1h"):
        assert tables[name].endswith("WITHOUT ROWID"), name


async def test_reads_run_while_writes_commit(store: SqliteStore) -> None:
    """Reads on their own thread see whole transactions; the event loop keeps running."""
    a, b = SeriesId("city", "gw1", "a", "temperature"), SeriesId("city", "gw1", "b", "humidity")
    ticks = 0
    writing = True

    async def ticker() -> None:
        nonlocal ticks
        while writing:
            ticks += 1
            await asyncio.sleep(0)

    async def writer() -> None:
        nonlocal writing
        for k in range(60):
            batch = [
                good(s, T0 + (k * 250 + i) * SEC, float(i)) for i in range(250) for s in (a, b)
            ]
            await store.write(batch)
        writing = False

    async def reader() -> int:
        reads = 0
        while writing:
            latest = await store.latest([a, b])
            if latest:
                assert latest[a].ts_ms == latest[b].ts_ms, "one transaction, seen whole"
            n = len(await store.raw(a, T0, T0 + DAY))
            assert n % 250 == 0, n
            reads += 1
        return reads

    tick_task = asyncio.create_task(ticker())
    read_task = asyncio.create_task(reader())
    await writer()
    reads = await read_task
    await tick_task
    assert reads > 0
    assert ticks > 60, "the event loop ran while the store wrote"
    assert len(await store.raw(a, T0, T0 + DAY)) == 15_000


async def test_a_non_finite_value_fails_the_whole_write(store: SqliteStore) -> None:
    s, new = SeriesId("city", "gw1", "p1", "temperature"), SeriesId("city", "gw1", "p9", "x")
    with pytest.raises(StoreError, match=r"city/gw1/p9/x at \d+: value nan is not finite"):
        await store.write([good(s, T0, 1.0), good(new, T0, math.nan)])
    assert await store.series() == [], "nothing of the failed batch is stored"
    assert (await store.write([good(new, T0, 2.0)])).stored == 1
    assert await store.series() == [new]


async def test_meta_round_trips(store: SqliteStore) -> None:
    s = SeriesId("city", "gw1", "p1", "temperature")
    written = [
        Reading(s, T0, 1.0),
        Reading(s, T0 + 1, 1.0, meta={"calibration": 0.0}),
        Reading(s, T0 + 2, 1.0, meta={"calibration": -0.3, "battery": 87.0}),
        Reading(s, T0 + 3, 1.0, meta={"battery": 12.5}),
    ]
    await store.write(written)
    assert await store.raw(s, T0, T0 + 10) == written


async def test_doors_ignore_uncertain_readings(store: SqliteStore) -> None:
    door = SeriesId("city", "gw1", "d1", "door")
    await store.write(
        [good(door, T0, 1.0), uncertain(door, T0 + MIN, 0.0), good(door, T0 + 2 * MIN, 0.0)]
    )
    assert await store.door_intervals(door, T0, T0 + HOUR) == [DoorInterval(door, T0, T0 + 2 * MIN)]


async def test_bad_steps_and_windows_are_refused_or_empty(store: SqliteStore) -> None:
    s = SeriesId("city", "gw1", "p1", "temperature")
    await store.write([good(s, T0, 1.0)])
    with pytest.raises(StoreError, match="step must be > 0 ms, not 0"):
        await store.range(s, T0, T0 + HOUR, 0, Agg.MEAN)
    assert await store.range(s, T0 + HOUR, T0, MIN, Agg.MEAN) == []


async def test_closed_store_says_so(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(StoreError, match=r"s\.db: latest: the store is closed"):
        await store.latest()


def test_retention_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rollup_1m_retention_days \\(10\\) must be >= raw"):
        SqliteStore(tmp_path / "s.db", raw_retention_days=30, rollup_1m_retention_days=10)
    with pytest.raises(ValueError, match="rollup_1h_retention_days \\(90\\) must be >= rollup_1m"):
        SqliteStore(tmp_path / "s.db", rollup_1m_retention_days=None, rollup_1h_retention_days=90)
    with pytest.raises(ValueError, match="raw_retention_days must be at least 1"):
        SqliteStore(tmp_path / "s.db", raw_retention_days=0)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="schema version 99 is newer than this coldchain's"):
        SqliteStore(tmp_path / "s.db")


# -- the 1-h rollup, made an hour late ----------------------------------------------------
def _hour_rows(path: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT * FROM rollup_1h ORDER BY series, bucket").fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("chunk", [1000, 1], ids=["all-series-a-write", "one-series-a-write"])
async def test_the_hour_rollup_made_late_is_the_one_folded_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """A live site's stream (in time order, batches of several series, bad and uncertain
    readings, resends, a backlog into hours already rolled and into hours not yet), the
    hours made for every series behind at once or for one series a write: the 1-h
    rows the writer adds up from the 1-min rows are those a store folding every reading at
    once has, and the answers are the oracle's, whichever side of the horizon a window is."""
    rng = random.Random(20261208)
    series = [SeriesId("city", "gw1", f"cr{i}-probe", "temperature") for i in range(3)]
    stream: list[Reading] = []
    for k in range(12 * 60 * 2):  # 12 h, a reading every 30 s per series
        for s in series:
            ts = T0 + k * 30 * SEC + rng.randrange(0, 1000)
            kind, value = rng.random(), round(rng.uniform(-25, 8), 2)
            if kind < 0.05:
                stream.append(bad(s, ts))
            elif kind < 0.08:
                stream.append(uncertain(s, ts, value))
            elif kind < 0.09:
                continue  # a gap: buckets with one good reading, or none
            else:
                stream.append(good(s, ts, value))
    sparse = SeriesId("city", "gw1", "cr9-door", "temperature")
    series.append(sparse)  # hours of one good reading, or of a bad one only
    stream += [good(sparse, T0 + k * 50 * MIN, float(k)) for k in range(14)]
    stream += [bad(sparse, T0 + 5 * HOUR + 55 * MIN)]
    stream.sort(key=lambda r: r.ts_ms)
    held = [r for r in stream if T0 + 2 * HOUR <= r.ts_ms < T0 + 3 * HOUR and r.ts_ms % 3 == 0]
    held += [r for r in stream if r.ts_ms >= T0 + 11 * HOUR and r.ts_ms % 5 == 0]
    live = [r for r in stream if r not in held]
    batches = [live[i : i + 90] for i in range(0, len(live), 90)]
    batches.insert(len(batches) * 3 // 4, held[: len(held) // 2])  # backlog: hours rolled
    batches.append(held[len(held) // 2 :] + live[:50])  # the rest, and resends
    late = SqliteStore(tmp_path / "late.db")
    at_once = SqliteStore(tmp_path / "at-once.db")
    forever = dict.fromkeys(range(1, len(series) + 1), 2**62)  # the series' ids, in order
    at_once._writer.db.executemany("INSERT INTO rollup_1h_horizon VALUES (?, ?)", forever.items())
    at_once._writer.horizons.update(forever)  # every reading folded at once
    monkeypatch.setattr(blocking, "ROLL_SERIES", chunk)
    spread = set()
    for batch in batches:
        before = dict(late._writer.horizons)
        await late.write(batch)
        await at_once.write(batch)
        moved = {s for s, h in late._writer.horizons.items() if s in before and h != before[s]}
        spread.add(len(moved))
    assert max(spread) == min(chunk, len(series)), "at most the chunk's series a write"
    horizons = late._writer.horizons
    kept = late._writer.db.execute("SELECT series, horizon FROM rollup_1h_horizon")
    assert dict(kept) == horizons, "the triggers and the queries go by the same horizons"
    assert len(horizons) == len(series)
    assert all(T0 + 8 * HOUR <= h <= T0 + 11 * HOUR for h in horizons.values()), horizons
    first: dict[tuple[SeriesId, int], Reading] = {}
    for b in batches:
        for r in b:
            first.setdefault((r.series, r.ts_ms), r)
    for s in series:
        stored = [first[k] for k in sorted(first) if k[0] == s]
        for a, z in ((T0, T0 + DAY), (T0 + HOUR + 7 * SEC, T0 + 12 * HOUR - 3 * MIN)):
            for step in (HOUR, 3 * HOUR):
                for agg in Agg:
                    what = f"{s} step {step} [{a}, {z}) {agg}"
                    want = _oracle(stored, a, z, step, agg)
                    got = await late.range(s, a, z, step, agg)
                    assert_buckets(got, want, what)
                    assert_buckets(await at_once.range(s, a, z, step, agg), want, what)
    late._writer.roll_through(T0 + DAY)  # the last hours too
    await late.close()
    await at_once.close()
    made, folded = _hour_rows(tmp_path / "late.db"), _hour_rows(tmp_path / "at-once.db")
    assert len(made) == len(folded) == 3 * 12 + 11  # the sparse one: 10 h 50 min
    for m, f in zip(made, folded, strict=True):
        assert m[:4] == f[:4], (m, f)  # all but the sum exactly
        assert m[5:] == f[5:], (m, f)
        assert m[4] == pytest.approx(f[4], rel=1e-12), (m, f)


def test_the_hour_roll_reads_series_by_series(tmp_path: Path) -> None:
    """Adding up an hour seeks each series' 1-min rows of that hour; it never scans the
    1-min rollup (a year of a site)."""
    from coldchain.store.sqlite.rollup import ROLL_SQL
    from coldchain.store.sqlite.schema import connect_writer

    db = connect_writer(tmp_path / "s.db")
    plan = " / ".join(
        row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {ROLL_SQL}", {"lo": 1, "hi": 9, "z": 1})
    )
    db.close()
    assert "SEARCH d USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan, plan
    assert "SEARCH r USING PRIMARY KEY (series=? AND bucket>? AND bucket<?)" in plan, plan
    assert "SCAN r" not in plan, plan


async def test_a_store_from_before_keeps_its_hours_and_rolls_on(tmp_path: Path) -> None:
    """A version-2 store (one trigger folding into both rollups): opened, its 1-h rows are
    kept, the horizon starts after the last, and readings go on into the right hours."""
    from coldchain.store.sqlite.rollup import HOUR_MS, MINUTE_MS, _fold

    path = tmp_path / "s.db"
    s = SeriesId("city", "gw1", "p1", "temperature")
    store = SqliteStore(path)
    await store.close()
    db = sqlite3.connect(path)  # as version 2 made it
    db.executescript(
        "DROP TRIGGER reading_rollup_1m; DROP TRIGGER reading_rollup_1h; "
        "DROP TABLE rollup_1h_horizon; "
        "CREATE TRIGGER reading_rollup AFTER INSERT ON reading BEGIN "
        f"{_fold('rollup_1m', MINUTE_MS)} {_fold('rollup_1h', HOUR_MS)} END; "
        "PRAGMA user_version = 2;"
    )
    db.executemany(
        "INSERT INTO reading VALUES (1, ?, ?, 0, NULL, NULL, NULL)",
        [(T0 + k * 10 * MIN, float(k)) for k in range(30)],  # 5 h
    )
    db.execute("INSERT INTO series VALUES (1, 'city', 'gw1', 'p1', 'temperature')")
    db.commit()
    db.close()
    store = SqliteStore(path)
    assert store._writer.horizons == {}  # every reading folds until its series has one
    await store.write([good(s, T0 + 4 * HOUR + 55 * MIN, 100.0)])  # into a rolled hour
    assert store._writer.horizons == {1: T0 + 5 * HOUR}  # past its last 1-h row
    await store.write([good(s, T0 + 5 * HOUR + k * 10 * MIN, 1.0) for k in range(24)])  # 4 h on
    assert store._writer.horizons == {1: T0 + 7 * HOUR}
    hours = await store.range(s, T0, T0 + 9 * HOUR, HOUR, Agg.MEAN)
    want = [(sum(range(6 * h, 6 * h + 6)) / 6, 6) for h in range(4)]
    want.append(((sum(range(24, 30)) + 100) / 7, 7))
    assert [(b.value, b.count) for b in hours] == want + [(1.0, 6)] * 4
    await store.close()
    db = sqlite3.connect(path)
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    db.close()
    assert "reading_rollup" not in names
    assert {"reading_rollup_1m", "reading_rollup_1h"} <= names


async def test_pruning_the_1min_rollup_makes_its_hours_first(tmp_path: Path) -> None:
    """The 1-min rows of hours the horizon has not passed are added up before they go."""
    store = SqliteStore(tmp_path / "s.db", raw_retention_days=1, rollup_1m_retention_days=1)
    s = SeriesId("city", "gw1", "p1", "temperature")
    await store.write([good(s, T0 + k * MIN, float(k % 10)) for k in range(3 * 60)])
    assert store._writer.horizons == {1: T0 + HOUR}  # the last two hours not rolled yet
    await store.prune_detail(T0 + DAY + 3 * HOUR)
    hours = await store.range(s, T0, T0 + 3 * HOUR, HOUR, Agg.MEAN)
    assert [(b.ts_ms, b.value, b.count) for b in hours] == [
        (T0 + h * HOUR, 4.5, 60) for h in range(3)
    ]
    await store.close()
