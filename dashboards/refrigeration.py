"""Refrigeration health of a room, from its controller's readings in the store: how hard the
compressor works and whether it still cools, for the room page and the weekly maintenance
report (issue 15, part 2).

From a controller that reports its compressor relay (a ``status`` point named
``compressor``: Dixell XR60CX) and its defrost output (a ``defrost`` point), with the room's
doors and its air temperature:

* **duty cycle**: the share of the time the compressor relay was on, per hour and per day
  of the site's clock (only the time the relay's state was known counts);
* **defrosts**: how many began each day, and their mean length;
* **pull-down**: after each door opening, the minutes from the door closing until the air is
  back within 0.3 °C of where it was before the door opened (none when it is not within an
  hour); the day's median;
* **flags**: ``duty_rising``: the daily duty cycle rose over the days by
  :data:`RISE_PP_PER_DAY` percentage points a day or more, and by :data:`RISE_PP` in all,
  while the doors opened no more often (the same load): a failing compressor, low
  refrigerant or an iced coil; ``no_pull_down``: the compressor ran :data:`RUN_MIN` minutes
  or more on end and the air did not come down (doors and the minutes after left out).

Carel IR33 controllers in the example county report no compressor state: their rooms have
defrosts but no duty cycle.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from coldchain.config.topology import PointInfo
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.reading import Reading, SeriesId
from coldchain.store.base import Store

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RISE_PP_PER_DAY = 3.0
RISE_PP = 10.0
RUN_MIN = 30.0
BACK_WITHIN = 0.3  # °C: the air is back where it was
DOOR_SETTLE_MS = 5 * 60_000  # after a door closes, the air is still the door's doing
PULL_DOWN_MAX_MS = HOUR_MS


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    duty: float | None  # 0..1 of the time the relay's state was known
    defrosts: int
    defrost_min: float | None  # mean length
    doors: int  # openings that began this day
    pull_down_min: float | None  # median


@dataclass(frozen=True, slots=True)
class Flag:
    kind: str  # duty_rising or no_pull_down
    at_ms: int  # when (a run's start; the last day's start for a trend)
    detail: float  # pp per day for duty_rising, minutes run for no_pull_down


@dataclass(slots=True)
class Health:
    days: list[Day] = field(default_factory=list)
    hours: list[tuple[int, float | None]] = field(default_factory=list)  # the last 24 h
    flags: list[Flag] = field(default_factory=list)


Spans = list[tuple[int, int]]


def _spans(readings: list[Reading], on: float, start_ms: int, end_ms: int) -> Spans:
    """Where the readings said ``on`` (>= 0.5 for 1, < 0.5 for 0), clipped to the range;
    a span still open at the end ends there."""
    out: Spans = []
    begun: int | None = None
    for r in readings:
        if r.value is None:
            continue
        now = (r.value >= 0.5) == (on >= 0.5)
        if now and begun is None:
            begun = max(r.ts_ms, start_ms)
        elif not now and begun is not None:
            out.append((begun, r.ts_ms))
            begun = None
    if begun is not None:
        out.append((begun, end_ms))
    return [(a, min(b, end_ms)) for a, b in out if min(b, end_ms) > a]


def _known(readings: list[Reading], end_ms: int) -> tuple[int, int] | None:
    """From the first reading with a value to the end: when the state was known."""
    first = next((r.ts_ms for r in readings if r.value is not None), None)
    return None if first is None else (first, end_ms)


def _share(spans: Spans, a: int, b: int, known: tuple[int, int] | None) -> float | None:
    if known is None:
        return None
    lo, hi = max(a, known[0]), min(b, known[1])
    if hi - lo < (b - a) / 2:  # less than half the period known: no figure
        return None
    on = sum(max(0, min(y, hi) - max(x, lo)) for x, y in spans)
    return on / (hi - lo)


def _pull_downs(doors: Spans, air: list[Reading]) -> list[tuple[int, float]]:
    """(door closed ms, minutes until the air was back) for each opening."""
    out = []
    for opened, closed in doors:
        before = [r.value for r in air if r.ts_ms < opened and r.value is not None]
        if not before:
            continue
        was = before[-1]
        back = next(
            (
                r.ts_ms
                for r in air
                if closed <= r.ts_ms <= closed + PULL_DOWN_MAX_MS
                and r.value is not None
                and r.value <= was + BACK_WITHIN
            ),
            None,
        )
        if back is not None:
            out.append((closed, (back - closed) / 60_000))
    return out


def _no_pull_down(run: Spans, doors: Spans, air: list[Reading]) -> list[Flag]:
    """Compressor runs of RUN_MIN or more in which the air, apart from while a door is open
    and the few minutes after (:data:`DOOR_SETTLE_MS`), did not come down: its trend over
    the run (least squares) is flat or rising."""
    out = []
    for a, b in run:
        if (b - a) / 60_000 < RUN_MIN:
            continue
        quiet = [
            (r.ts_ms, r.value)
            for r in air
            if a <= r.ts_ms <= b
            and r.value is not None
            and not any(x <= r.ts_ms < y + DOOR_SETTLE_MS for x, y in doors)
        ]
        if len(quiet) < 5:
            continue
        slope = statistics.linear_regression(
            [float(t - a) for t, _ in quiet], [v for _, v in quiet]
        ).slope
        if slope >= 0:
            out.append(Flag("no_pull_down", a, (b - a) / 60_000))
    return out


def _trend(days: list[Day]) -> Flag | None:
    """``duty_rising`` over the days with a duty figure, at no more door openings."""
    known = [(i, d) for i, d in enumerate(days) if d.duty is not None]
    if len(known) < 3:
        return None
    xs = [float(i) for i, _ in known]
    ys = [100.0 * (d.duty or 0.0) for _, d in known]
    slope = statistics.linear_regression(xs, ys).slope
    first, last = known[0][1], known[-1][1]
    rise = ys[-1] - ys[0]
    same_load = last.doors <= max(first.doors * 1.2, first.doors + 2)
    if slope >= RISE_PP_PER_DAY and rise >= RISE_PP and same_load:
        return Flag("duty_rising", 0, slope)
    return None


def _day_starts(end_ms: int, days: int, tz: str) -> list[int]:
    """The starts (ms) of the ``days`` days of the site's clock to ``end_ms``'s day."""
    zone = ZoneInfo(tz)
    today = datetime.fromtimestamp(end_ms / 1000, zone).date()
    midnight = datetime.min.time()
    return [
        round(datetime.combine(today - timedelta(days=d), midnight, zone).timestamp() * 1000)
        for d in range(days - 1, -1, -1)
    ]


def has_compressor(points: list[PointInfo]) -> bool:
    return any(p.kind is PointKind.STATUS and p.sid.point == "compressor" for p in points)


async def _raw(store: Store, sid: SeriesId | None, a: int, b: int) -> list[Reading]:
    return [] if sid is None else await store.raw(sid, a, b)


async def room_health(
    store: Store, points: list[PointInfo], *, end_ms: int, days: int, tz: str
) -> Health | None:
    """The room's refrigeration health over the ``days`` days of the site's clock to
    ``end_ms`` (the last one so far), or None without a compressor or defrost point."""
    comp = next(
        (p.sid for p in points if p.kind is PointKind.STATUS and p.sid.point == "compressor"),
        None,
    )
    defrost = next((p.sid for p in points if p.kind is PointKind.DEFROST), None)
    if comp is None and defrost is None:
        return None
    air = next(
        (p.sid for p in points if p.kind is PointKind.TEMPERATURE and p.role is PointRole.ROOM),
        None,
    )
    doors = [p.sid for p in points if p.kind is PointKind.DOOR]
    starts = _day_starts(end_ms, days, tz)
    a = starts[0]
    relay = await _raw(store, comp, a, end_ms + 1)
    running, known = _spans(relay, 1.0, a, end_ms), _known(relay, end_ms)
    defrosts = _spans(await _raw(store, defrost, a, end_ms + 1), 1.0, a, end_ms)
    opened: Spans = []
    for door in doors:
        opened += _spans(await store.raw(door, a, end_ms + 1), 1.0, a, end_ms)
    opened.sort()
    temps = await _raw(store, air, a - HOUR_MS, end_ms + 1)
    pulls = _pull_downs(opened, temps)
    out = Health()
    zone = ZoneInfo(tz)
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else end_ms
        mine = [b - x for x, b in defrosts if s <= x < e]
        pd = [m for closed, m in pulls if s <= closed < e]
        out.days.append(
            Day(
                day=datetime.fromtimestamp(s / 1000, zone).date(),
                duty=_share(running, s, e, known) if comp is not None else None,
                defrosts=len(mine),
                defrost_min=statistics.mean(mine) / 60_000 if mine else None,
                doors=sum(1 for x, _ in opened if s <= x < e),
                pull_down_min=statistics.median(pd) if pd else None,
            )
        )
    if comp is not None:
        hour0 = end_ms - end_ms % HOUR_MS - 23 * HOUR_MS
        out.hours = [
            (h, _share(running, h, min(h + HOUR_MS, end_ms), known))
            for h in range(hour0, end_ms, HOUR_MS)
        ]
        out.flags += _no_pull_down(running, opened, temps)
        trend = _trend(out.days)
        if trend is not None:
            out.flags.append(Flag(trend.kind, starts[-1], trend.detail))
    return out
