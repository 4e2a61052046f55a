"""The contract every store backend keeps (coldchain/store/base.py), as plain async checks.

Each check is ``async def check_x(store, settle=noop) -> None``: it writes, awaits ``settle()``
after each write (a backend whose reads lag its writes — VictoriaMetrics — waits there until
they are visible; the embedded store needs nothing), reads, and asserts with hand-computed
expectations. A backend's test runs every function in :data:`CHECKS`.

Checks are independent: each writes only series of its own (gateway = the check's name), so
all of them may share one store, and they assume nothing beyond base.py: no SQL, no clock,
no empty store (``series()`` and ``latest()`` are checked for inclusion, not equality).
Values are exact binary fractions, so every mean is exact; values are still compared with a
relative tolerance of 1e-9 so that a backend that sums in another order passes.
Times are fixed (late 2025); a backend with a retention limit must keep that far back.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.base import Agg, Bucket, DoorInterval, Store, WriteResult

Settle = Callable[[], Awaitable[None]]


class Check(Protocol):
    """A contract check: ``await check(store)`` or ``await check(store, settle)``."""

    __name__: str

    def __call__(self, store: Store, settle: Settle = ...) -> Awaitable[None]: ...


T0 = 1_764_288_000_000  # 2025-11-28T00:00:00Z: whole days, hours and minutes
SEC, MIN, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000


async def noop() -> None:
    """The default ``settle``: reads see writes at once."""


def sid(check: str, device: str = "probe", point: str = "temperature") -> SeriesId:
    return SeriesId("contract", check, device, point)


def good(series: SeriesId, ts: int, value: float, cal: float | None = None) -> Reading:
    return Reading(series, ts, value, meta={} if cal is None else {"calibration": cal})


def bad(
    series: SeriesId, ts: int, reason: str = "probe open", value: float | None = None
) -> Reading:
    return Reading(series, ts, value, Quality.BAD, reason)


def uncertain(series: SeriesId, ts: int, value: float, reason: str = "stale") -> Reading:
    return Reading(series, ts, value, Quality.UNCERTAIN, reason)


def assert_buckets(got: Sequence[Bucket], want: Sequence[Bucket], what: str) -> None:
    """Same steps and counts; values equal within 1e-9 relative (None only with None)."""
    key = [(b.ts_ms, b.count) for b in got], [(b.ts_ms, b.count) for b in want]
    assert key[0] == key[1], f"{what}: steps/counts {got} != {want}"
    for g, w in zip(got, want, strict=True):
        same = g.value is None and w.value is None
        same = same or (
            g.value is not None and w.value is not None and math.isclose(g.value, w.value)
        )
        assert same, f"{what}: step {g.ts_ms}: value {g.value} != {w.value} (got {got})"


def steps(rows: Sequence[tuple[int, float | None, int]]) -> list[Bucket]:
    return [Bucket(ts, value, count) for ts, value, count in rows]


# A step's expected answer: (start, (min, max, mean, last) or None when no reading is good,
# good readings).
Step = tuple[int, tuple[float, float, float, float] | None, int]


async def assert_range(
    store: Store, s: SeriesId, window: tuple[int, int], step: int, want: Sequence[Step]
) -> None:
    """``range`` answers ``want`` for every aggregate."""
    for i, agg in enumerate((Agg.MIN, Agg.MAX, Agg.MEAN, Agg.LAST)):
        expected = [Bucket(ts, None if v is None else v[i], n) for ts, v, n in want]
        got = await store.range(s, *window, step, agg)
        assert_buckets(got, expected, f"{s}: step {step} ms over {window}, {agg}")


async def write(
    store: Store, settle: Settle, readings: Sequence[Reading], want: tuple[int, int]
) -> None:
    got = await store.write(readings)
    assert got == WriteResult(*want), f"write of {len(readings)}: {got}, expected {want}"
    await settle()


# -- writes -------------------------------------------------------------------------------
async def check_empty_write(store: Store, settle: Settle = noop) -> None:
    await write(store, settle, [], (0, 0))


async def check_write_is_idempotent(store: Store, settle: Settle = noop) -> None:
    s = sid("write-idempotent")
    batch = [good(s, T0 + i * MIN, i / 2, cal=-0.25) for i in range(10)]
    batch.append(bad(s, T0 + 30 * SEC))
    await write(store, settle, batch, (11, 0))
    await write(store, settle, batch, (0, 11))  # the same batch resent: stored once
    reordered = [*reversed(batch), good(s, T0 + 10 * MIN, 7.5)]
    await write(store, settle, reordered, (1, 11))
    want = sorted([*batch, reordered[-1]], key=lambda r: r.ts_ms)
    assert await store.raw(s, T0, T0 + HOUR) == want


async def check_first_copy_wins(store: Store, settle: Settle = noop) -> None:
    s = sid("first-copy-wins")
    await write(store, settle, [good(s, T0, 1.0)], (1, 0))
    # A resend with another value or quality never alters the stored record ...
    await write(store, settle, [good(s, T0, 2.0), bad(s, T0, "no reply")], (0, 2))
    # ... and within one batch, the first copy is the one stored.
    await write(store, settle, [good(s, T0 + MIN, 5.0), good(s, T0 + MIN, 6.0)], (1, 1))
    assert await store.raw(s, T0, T0 + HOUR) == [good(s, T0, 1.0), good(s, T0 + MIN, 5.0)]
    got = await store.range(s, T0, T0 + HOUR, MIN, Agg.MEAN)
    assert_buckets(got, steps([(T0, 1.0, 1), (T0 + MIN, 5.0, 1)]), "1-min mean")
    got = await store.range(s, T0, T0 + HOUR, HOUR, Agg.MEAN)
    assert_buckets(got, steps([(T0, 3.0, 2)]), "1-h mean (duplicates not counted)")


async def check_large_batch(store: Store, settle: Settle = noop) -> None:
    series = [sid("large-batch", f"probe-{i}") for i in range(50)]
    batch = [good(s, T0 + k * 30 * SEC, k / 4) for k in range(100) for s in series]
    random.Random(4).shuffle(batch)
    await write(store, settle, batch, (5000, 0))
    await write(store, settle, batch[:1000], (0, 1000))
    for s in (series[0], series[-1]):
        got = await store.raw(s, T0, T0 + DAY)
        assert [r.value for r in got] == [k / 4 for k in range(100)], s


# -- raw, latest, series ------------------------------------------------------------------
async def check_raw(store: Store, settle: Settle = noop) -> None:
    s, other = sid("raw"), sid("raw", point="humidity")
    readings = [
        good(s, T0 + 10 * SEC, -18.5, cal=0.5),
        bad(s, T0 + 20 * SEC, "probe open"),
        uncertain(s, T0 + 30 * SEC, 2.25, "stale"),
        good(s, T0 + 40 * SEC, -18.0),
        good(other, T0 + 20 * SEC, 80.0),
    ]
    await write(store, settle, readings[::-1], (5, 0))  # written newest first
    assert await store.raw(s, T0, T0 + MIN) == readings[:4], "oldest first, every quality"
    assert await store.raw(s, T0 + 20 * SEC, T0 + 40 * SEC) == readings[1:3], "[start, end)"
    assert await store.raw(s, T0 + 41 * SEC, T0 + MIN) == []
    assert await store.raw(other, T0, T0 + MIN) == [readings[4]]


async def check_latest(store: Store, settle: Settle = noop) -> None:
    a, b = sid("latest", "a"), sid("latest", "b")
    never = sid("latest", "never-written")
    await write(store, settle, [good(a, T0, 1.0), good(a, T0 + MIN, 2.0, cal=0.5)], (2, 0))
    await write(store, settle, [good(b, T0, 3.0), bad(b, T0 + 2 * MIN, "no reply")], (2, 0))
    await write(store, settle, [good(a, T0 - HOUR, 0.5)], (1, 0))  # a backfill is not newer
    everything = await store.latest()
    assert everything[a] == good(a, T0 + MIN, 2.0, cal=0.5)
    assert everything[b] == bad(b, T0 + 2 * MIN, "no reply"), "a bad reading is the latest"
    assert never not in everything
    assert await store.latest([b, never]) == {b: bad(b, T0 + 2 * MIN, "no reply")}
    assert await store.latest([never]) == {}


async def check_series(store: Store, settle: Settle = noop) -> None:
    written = [sid("series", "x", "temperature"), sid("series", "x", "humidity")]
    await write(store, settle, [good(s, T0, 1.0) for s in written], (2, 0))
    held = await store.series()
    assert set(written) <= set(held)
    assert len(held) == len(set(held)), "each series once"


async def check_unknown_series_reads_empty(store: Store, settle: Settle = noop) -> None:
    s = sid("unknown", "nobody")
    await settle()
    assert await store.raw(s, T0, T0 + DAY) == []
    assert await store.range(s, T0, T0 + DAY, HOUR, Agg.MEAN) == []
    assert await store.door_intervals(s, T0, T0 + DAY) == []
    assert await store.latest([s]) == {}


# -- range ----------------------------------------------------------------------------------
async def check_range_raw_steps(store: Store, settle: Settle = noop) -> None:
    """A 10 s step (not a multiple of a minute)."""
    s = sid("range-10s")
    await write(
        store,
        settle,
        [
            good(s, T0, 1.0),
            good(s, T0 + 4 * SEC, 3.0),
            bad(s, T0 + 7 * SEC),
            good(s, T0 + 12 * SEC, 2.0),
            uncertain(s, T0 + 15 * SEC, 9.0),  # not good: not aggregated
            good(s, T0 + 19 * SEC, 8.0),
            bad(s, T0 + 35 * SEC, value=99.0),  # a step with readings but none good
        ],
        (7, 0),
    )
    want: list[Step] = [
        (T0, (1.0, 3.0, 2.0, 3.0), 2),
        (T0 + 10 * SEC, (2.0, 8.0, 5.0, 8.0), 2),
        (T0 + 30 * SEC, None, 0),
    ]
    await assert_range(store, s, (T0, T0 + MIN), 10 * SEC, want)


async def check_range_minute_steps(store: Store, settle: Settle = noop) -> None:
    s = sid("range-1min")
    await write(
        store,
        settle,
        [
            good(s, T0 + 10 * SEC, 4.0),
            good(s, T0 + 50 * SEC, 2.0),
            good(s, T0 + MIN + 5 * SEC, 6.0),
            bad(s, T0 + MIN + 30 * SEC),
            uncertain(s, T0 + 2 * MIN + 20 * SEC, 1.0),
            good(s, T0 + 3 * MIN, -1.5),
        ],
        (6, 0),
    )
    one: list[Step] = [
        (T0, (2.0, 4.0, 3.0, 2.0), 2),
        (T0 + MIN, (6.0, 6.0, 6.0, 6.0), 1),
        (T0 + 2 * MIN, None, 0),
        (T0 + 3 * MIN, (-1.5, -1.5, -1.5, -1.5), 1),
    ]
    await assert_range(store, s, (T0, T0 + HOUR), MIN, one)
    two: list[Step] = [(T0, (2.0, 6.0, 4.0, 6.0), 3), (T0 + 2 * MIN, (-1.5, -1.5, -1.5, -1.5), 1)]
    await assert_range(store, s, (T0, T0 + HOUR), 2 * MIN, two)


async def check_range_hour_steps(store: Store, settle: Settle = noop) -> None:
    s = sid("range-1h")
    await write(
        store,
        settle,
        [
            good(s, T0 + 10 * MIN, 3.0),
            good(s, T0 + 50 * MIN, 5.0),
            good(s, T0 + HOUR, 7.0),
            bad(s, T0 + HOUR + 30 * MIN),
            good(s, T0 + 2 * HOUR + 15 * MIN, 1.0),
        ],
        (5, 0),
    )
    one: list[Step] = [
        (T0, (3.0, 5.0, 4.0, 5.0), 2),
        (T0 + HOUR, (7.0, 7.0, 7.0, 7.0), 1),
        (T0 + 2 * HOUR, (1.0, 1.0, 1.0, 1.0), 1),
    ]
    await assert_range(store, s, (T0, T0 + DAY), HOUR, one)
    two: list[Step] = [(T0, (3.0, 7.0, 5.0, 7.0), 3), (T0 + 2 * HOUR, (1.0, 1.0, 1.0, 1.0), 1)]
    await assert_range(store, s, (T0, T0 + DAY), 2 * HOUR, two)
    day: list[Step] = [(T0, (1.0, 7.0, 4.0, 1.0), 4)]
    await assert_range(store, s, (T0 - DAY, T0 + 2 * DAY), DAY, day)


async def check_range_window_not_aligned(store: Store, settle: Settle = noop) -> None:
    """Readings outside [start, end) never count, even inside a step that the window cuts."""
    s = sid("range-unaligned")
    await write(
        store,
        settle,
        [
            good(s, T0 + 10 * MIN, 3.0),  # before start, in the first step
            good(s, T0 + 50 * MIN, 5.0),
            good(s, T0 + HOUR + 20 * SEC, 6.0),
            good(s, T0 + HOUR + 40 * SEC, 8.0),  # after end, in the last step
        ],
        (4, 0),
    )
    start, end = T0 + 30 * MIN, T0 + HOUR + 30 * SEC
    for step in (HOUR, MIN, 30 * MIN):
        got = await store.range(s, start, end, step, Agg.MEAN)
        first = T0 if step == HOUR else T0 + 30 * MIN if step == 30 * MIN else T0 + 50 * MIN
        want = [(first, 5.0, 1), (T0 + HOUR, 6.0, 1)]
        assert_buckets(got, steps(want), f"step {step} ms, window [{start}, {end})")
    assert await store.range(s, end, start, MIN, Agg.MEAN) == [], "an empty window"


async def check_range_backfill_out_of_order(store: Store, settle: Settle = noop) -> None:
    s = sid("range-backfill")
    await write(store, settle, [good(s, T0 + HOUR + 30 * SEC, 5.0)], (1, 0))
    # Out of order: an older reading of the same minute arrives after a newer one.
    await write(
        store,
        settle,
        [good(s, T0 + HOUR + 50 * SEC, 4.0), good(s, T0 + HOUR + 10 * SEC, 3.0)],
        (2, 0),
    )
    # A backfill of yesterday, newest first, after today's data.
    old = T0 - DAY
    await write(
        store,
        settle,
        [good(s, old + 2 * MIN, 9.0), good(s, old + MIN + 30 * SEC, 7.0), good(s, old + MIN, 8.0)],
        (3, 0),
    )
    today: list[Step] = [(T0 + HOUR, (3.0, 5.0, 4.0, 4.0), 3)]
    await assert_range(store, s, (T0 + HOUR, T0 + 2 * HOUR), MIN, today)
    await assert_range(store, s, (T0 + HOUR, T0 + 2 * HOUR), HOUR, today)
    yesterday: list[Step] = [
        (old + MIN, (7.0, 8.0, 7.5, 7.0), 2),  # last: 7.0 is the later, written first
        (old + 2 * MIN, (9.0, 9.0, 9.0, 9.0), 1),
    ]
    await assert_range(store, s, (old, T0), MIN, yesterday)
    await assert_range(store, s, (old, T0), DAY, [(old, (7.0, 9.0, 8.0, 9.0), 3)])


async def check_only_bad_readings(store: Store, settle: Settle = noop) -> None:
    """Bad readings: kept and returned by raw and latest, never aggregated."""
    s = sid("only-bad")
    readings = [bad(s, T0 + k * 20 * SEC, "probe open") for k in range(6)]
    await write(store, settle, readings, (6, 0))
    assert await store.raw(s, T0, T0 + HOUR) == readings
    assert await store.latest([s]) == {s: readings[-1]}
    for agg in Agg:
        for step in (10 * SEC, MIN, HOUR):
            got = await store.range(s, T0, T0 + HOUR, step, agg)
            want = sorted({r.ts_ms // step * step for r in readings})
            assert_buckets(got, [Bucket(t, None, 0) for t in want], f"{step} ms {agg}")


# -- doors ------------------------------------------------------------------------------
async def check_door_intervals(store: Store, settle: Settle = noop) -> None:
    door = sid("doors", "cr1-door", "door")
    await write(
        store,
        settle,
        [
            good(door, T0 - 2 * HOUR, 0.0),
            good(door, T0 - 30 * MIN, 1.0),  # opened before the window
            good(door, T0 - 10 * MIN, 1.0),  # still open (a periodic reading)
            bad(door, T0 + 5 * MIN, "no reply"),
            good(door, T0 + 10 * MIN, 0.0),
            good(door, T0 + 20 * MIN, 1.0),
            bad(door, T0 + 25 * MIN, "contact bounce", value=0.0),  # bad: ignored
            good(door, T0 + 30 * MIN, 0.0),
            good(door, T0 + 40 * MIN, 1.0),
            good(door, T0 + 45 * MIN, 1.0),
            good(door, T0 + 55 * MIN, 0.0),  # after the window
        ],
        (11, 0),
    )
    got = await store.door_intervals(door, T0, T0 + 50 * MIN)
    assert got == [
        DoorInterval(door, T0 - 30 * MIN, T0 + 10 * MIN),
        DoorInterval(door, T0 + 20 * MIN, T0 + 30 * MIN),
        DoorInterval(door, T0 + 40 * MIN, None),
    ]
    assert await store.door_intervals(door, T0 + 31 * MIN, T0 + 35 * MIN) == [], "shut"
    got = await store.door_intervals(door, T0 + 12 * MIN, T0 + 22 * MIN)
    assert got == [DoorInterval(door, T0 + 20 * MIN, None)], "open at the window's end"
    got = await store.door_intervals(door, T0 + 22 * MIN, T0 + 28 * MIN)
    assert got == [DoorInterval(door, T0 + 20 * MIN, None)], "open all through the window"
    assert await store.door_intervals(door, T0 - 3 * HOUR, T0 - 2 * HOUR) == []


async def check_door_never_closed(store: Store, settle: Settle = noop) -> None:
    door = sid("doors", "dock-door", "door")
    await write(store, settle, [good(door, T0 - HOUR, 1.0), good(door, T0, 1.0)], (2, 0))
    got = await store.door_intervals(door, T0 - 30 * MIN, T0 + HOUR)
    assert got == [DoorInterval(door, T0 - HOUR, None)]


CHECKS: list[Check] = [
    check_empty_write,
    check_write_is_idempotent,
    check_first_copy_wins,
    check_large_batch,
    check_raw,
    check_latest,
    check_series,
    check_unknown_series_reads_empty,
    check_range_raw_steps,
    check_range_minute_steps,
    check_range_hour_steps,
    check_range_window_not_aligned,
    check_range_backfill_out_of_order,
    check_only_bad_readings,
    check_door_intervals,
    check_door_never_closed,
]
