"""A sorting line's shift, from its PLC's readings in the store (docs/sorting-line-plc.md):
parcels sorted and rejected per hour and the reject rate, and the line's jams, emergency
stops, faults and stops as spans of time, for the room page of a room with a line.

Counters: an hour's parcels are the counter's value at the hour's end (its last reading by
then) less its value at the start (its last reading in the hour before; without one, the
first hour counts from its first reading); a counter that goes down was
reset or wrapped, and counts again from zero. Spans: a flag's reading of 1 opens one (0 for
``conveyor_running``: a stop), the next reading that says otherwise closes it; a span still
open at the end has no end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from coldchain.config.topology import PointInfo
from coldchain.reading import Reading
from coldchain.store.base import Store

HOUR_MS = 3_600_000
COUNTERS = ("parcels_sorted", "parcels_rejected")
SPANS = {"e_stop": 1.0, "fault": 1.0, "jam": 1.0, "conveyor_running": 0.0}
"""The points whose spans are shown, and the value that opens one."""


@dataclass(frozen=True, slots=True)
class Hour:
    start_ms: int
    sorted: int | None  # None: no reading of the counter by then
    rejected: int | None

    @property
    def reject_pct(self) -> float | None:
        if not self.sorted or self.rejected is None:
            return None
        return 100.0 * self.rejected / (self.sorted + self.rejected)


@dataclass(frozen=True, slots=True)
class Span:
    kind: str  # e_stop, fault, jam, or conveyor_running (a stop)
    start_ms: int
    end_ms: int | None  # None: still so at the end of the shift


@dataclass(slots=True)
class Shift:
    start_ms: int
    end_ms: int
    hours: list[Hour] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)

    def total(self, which: str) -> int:
        return sum((getattr(h, which) or 0) for h in self.hours)

    @property
    def reject_pct(self) -> float | None:
        done, rejected = self.total("sorted"), self.total("rejected")
        return 100.0 * rejected / (done + rejected) if done + rejected else None


def has_line(points: list[PointInfo]) -> bool:
    """Whether a room's points are a sorting line's (its PLC's parcel counter)."""
    return any(p.sid.point == "parcels_sorted" for p in points)


def _hours(end_ms: int, hours: int, tz: str) -> list[int]:
    """The starts of the ``hours`` whole hours of the site's clock up to ``end_ms`` (the
    last one running on to ``end_ms``)."""
    local = datetime.fromtimestamp(end_ms / 1000, ZoneInfo(tz)).replace(
        minute=0, second=0, microsecond=0
    )
    return [round((local - timedelta(hours=h)).timestamp() * 1000) for h in range(hours)][::-1]


def _counted(readings: list[Reading], before: float | None, cuts: list[int]) -> list[int | None]:
    """A counter's increase in each [cut_i, cut_i+1) from its readings (time order) and its
    value before the first cut."""
    out: list[int | None] = []
    value, i = before, 0
    for end in cuts[1:]:
        grown = 0.0
        seen = value is not None
        while i < len(readings) and readings[i].ts_ms < end:
            v = readings[i].value
            i += 1
            if v is None:
                continue
            if value is not None:
                grown += v - value if v >= value else v  # down: reset or wrapped
            value, seen = v, True
        out.append(round(grown) if seen else None)
    return out


async def shift(
    store: Store, points: list[PointInfo], *, end_ms: int, hours: int, tz: str
) -> Shift:
    """The last ``hours`` hours of the line of ``points`` (see the module docstring)."""
    starts = _hours(end_ms, hours, tz)
    out = Shift(starts[0], end_ms)
    by_name = {p.sid.point: p.sid for p in points}
    cuts = [*starts, end_ms + 1]
    counted: dict[str, list[int | None]] = {}
    for name in COUNTERS:
        sid = by_name.get(name)
        if sid is None:
            counted[name] = [None] * hours
            continue
        # a running line's counter moves every poll: the hour before holds its last value
        # (a day of it would be ~86,000 rows read per page view for one number)
        before = await store.raw(sid, starts[0] - HOUR_MS, starts[0])
        prior = next((r.value for r in reversed(before) if r.value is not None), None)
        counted[name] = _counted(await store.raw(sid, starts[0], end_ms + 1), prior, cuts)
    out.hours = [
        Hour(s, a, b)
        for s, a, b in zip(
            starts, counted["parcels_sorted"], counted["parcels_rejected"], strict=True
        )
    ]
    for name, opens in SPANS.items():
        sid = by_name.get(name)
        if sid is None:
            continue
        before = await store.raw(sid, starts[0] - 24 * HOUR_MS, starts[0])
        last = next((r.value for r in reversed(before) if r.value is not None), None)
        begun = starts[0] if last == opens else None
        for r in await store.raw(sid, starts[0], end_ms + 1):
            if r.value is None:
                continue
            if r.value == opens and begun is None:
                begun = r.ts_ms
            elif r.value != opens and begun is not None:
                out.spans.append(Span(name, begun, r.ts_ms))
                begun = None
        if begun is not None:
            out.spans.append(Span(name, begun, None))
    out.spans.sort(key=lambda s: s.start_ms)
    return out
