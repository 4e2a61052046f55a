"""Reports from readings: pure functions from (room, its points, their readings, alerts) to
:mod:`.model` objects.

The GSP record interval: a record every 30 min in storage and every 2 min while the room is
out of range (DOMAIN.md). Records fall on the marks of local midnight + k·30 min and, inside
each excursion of any of the room's points, + k·2 min; each holds every point's value in
force at that instant (:func:`series.value_at`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.store import AlertRow
from coldchain.config.limits import Band
from coldchain.config.site import Room, Site
from coldchain.reading import Reading
from dashboards.reports import excursions as exc
from dashboards.reports import series as ser
from dashboards.reports.model import (
    Ack,
    DailyLog,
    ExcursionReport,
    PointSummary,
    Record,
    RoomInfo,
    RoomPeriod,
)

MIN_MS = 60_000
RECORD_MS = 30 * MIN_MS  # GSP: at least every 30 min in storage
RECORD_OUT_MS = 2 * MIN_MS  # GSP: at least every 2 min while out of range


@dataclass(frozen=True, slots=True)
class PointRef:
    """A room-air point of a room: its series and what it measures."""

    series: str
    label: str
    quantity: str  # temperature or humidity
    unit: str


def day_window(day: date, tz: str) -> tuple[int, int]:
    """[local midnight, next local midnight) of ``day`` in ``tz`` as epoch ms (23 or 25 h on
    a day a clock changes)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return round(start.timestamp() * 1000), round(end.timestamp() * 1000)


def period_window(first: date, last: date, tz: str) -> tuple[int, int]:
    """[first's local midnight, the midnight after ``last``) as epoch ms."""
    return day_window(first, tz)[0], day_window(last, tz)[1]


def fmt_band(band: Band | None, unit: str) -> str | None:
    if band is None:
        return None
    lo = "" if band.low is None else f"{band.low:g}"
    hi = "" if band.high is None else f"{band.high:g}"
    if band.low is None:
        return f"≤ {hi} {unit}"
    if band.high is None:
        return f"≥ {lo} {unit}"
    return f"{lo} … {hi} {unit}"


def room_info(site: Site, room: Room) -> RoomInfo:
    limits = room.effective_limits
    return RoomInfo(
        site_id=site.id,
        site_name=site.name,
        room_id=room.id,
        room_name=room.name,
        room_class=str(room.room_class),
        temperature=fmt_band(limits.temperature, "°C") or "",
        humidity=fmt_band(limits.humidity, "%RH"),
        timezone=site.timezone,
    )


def band_of(room: Room, quantity: str) -> Band | None:
    limits = room.effective_limits
    return limits.temperature if quantity == "temperature" else limits.humidity


def _summaries(
    points: Sequence[PointRef],
    readings: Mapping[str, Sequence[Reading]],
    start_ms: int,
    end_ms: int,
    max_hold_ms: int,
) -> tuple[list[PointSummary], list[list[ser.Span]]]:
    summaries, all_spans = [], []
    for p in points:
        got = readings.get(p.series, ())
        parts = ser.spans(got, start_ms, end_ms, max_hold_ms=max_hold_ms, quantity=p.quantity)
        all_spans.append(parts)
        summaries.append(
            PointSummary(
                series=p.series,
                label=p.label,
                quantity=p.quantity,
                unit=p.unit,
                stats=ser.stats(parts, end_ms - start_ms, with_mkt=p.quantity == "temperature"),
                gaps=tuple(ser.gaps(parts, start_ms, end_ms)),
                left_out=tuple(ser.left_out(got, start_ms, end_ms, p.quantity)),
            )
        )
    return summaries, all_spans


def room_excursions(
    room: Room,
    points: Sequence[PointRef],
    readings: Mapping[str, Sequence[Reading]],
    start_ms: int,
    end_ms: int,
) -> list[exc.Excursion]:
    """Excursions of the room's points overlapping [start_ms, end_ms), by start. Pass
    readings from before and after the window too: an excursion crossing the window's
    edges keeps its real start, end and peak."""
    out: list[exc.Excursion] = []
    for p in points:
        band = band_of(room, p.quantity)
        if band is None:
            continue
        found = exc.find(readings.get(p.series, ()), band, series=p.label, quantity=p.quantity)
        out += [e for e in found if e.overlaps(start_ms, end_ms)]
    return sorted(out, key=lambda e: (e.start_ms, e.series))


def record_times(
    start_ms: int, end_ms: int, out: Sequence[tuple[int, int | None]]
) -> list[tuple[int, bool]]:
    """The record instants of [start_ms, end_ms): every 30 min from the start, and every
    2 min (on the same grid) inside each out-of-range interval [s, e) (e None: open)."""
    times = set(range(start_ms, end_ms, RECORD_MS))
    flagged: set[int] = set()
    for s, e in out:
        lo, hi = max(s, start_ms), min(e if e is not None else end_ms, end_ms)
        first = start_ms + -(-(lo - start_ms) // RECORD_OUT_MS) * RECORD_OUT_MS
        flagged.update(range(first, hi, RECORD_OUT_MS))
    return [(t, t in flagged) for t in sorted(times | flagged)]


def daily_log(
    site: Site,
    room: Room,
    day: date,
    *,
    points: Sequence[PointRef],
    readings: Mapping[str, Sequence[Reading]],
    alerts: Sequence[AlertRow] | None,
    generated_ms: int,
    max_hold_ms: int = ser.DEFAULT_MAX_HOLD_MS,
    audit_head: tuple[int, str] | None = None,
    seal_head: tuple[int, int, str] | None = None,
) -> DailyLog:
    """The daily log of ``room`` on the local ``day``. ``readings`` by series string,
    oldest first, may reach beyond the day (see :func:`room_excursions`). A day still under
    way has its records and figures up to ``generated_ms``."""
    start_ms, end_ms = day_window(day, site.timezone)
    until = min(end_ms, max(start_ms, generated_ms))  # today: up to now
    summaries, all_spans = _summaries(points, readings, start_ms, until, max_hold_ms)
    found = room_excursions(room, points, readings, start_ms, end_ms)
    records = tuple(
        Record(t, flagged, tuple(ser.value_at(s, t) for s in all_spans))
        for t, flagged in record_times(start_ms, until, [(e.start_ms, e.end_ms) for e in found])
    )
    return DailyLog(
        room=room_info(site, room),
        day=day,
        start_ms=start_ms,
        end_ms=end_ms,
        points=tuple(summaries),
        records=records,
        excursions=tuple(found),
        acks=None if alerts is None else tuple(acks(alerts)),
        generated_ms=generated_ms,
        audit_head=audit_head,
        seal_head=seal_head,
    )


def acks(alerts: Sequence[AlertRow]) -> list[Ack]:
    """The alerts, oldest first, with who acknowledged them, how, and their comment."""
    return [
        Ack(
            alert_id=a.id,
            rule=a.rule,
            severity=a.severity,
            state=a.state,
            since_ms=a.since_ms,
            fired_ms=a.fired_ms,
            resolved_ms=a.resolved_ms,
            peak=a.peak,
            limit=a.limit_value,
            unit=a.unit,
            acked_ms=a.acked_ms,
            acked_by=a.acked_by,
            via=a.ack_via,
            comment=a.ack_comment,
        )
        for a in sorted(alerts, key=lambda a: (a.since_ms, a.id))
    ]


def room_period(
    site: Site,
    room: Room,
    *,
    points: Sequence[PointRef],
    readings: Mapping[str, Sequence[Reading]],
    start_ms: int,
    end_ms: int,
    max_hold_ms: int = ser.DEFAULT_MAX_HOLD_MS,
) -> RoomPeriod:
    summaries, _ = _summaries(points, readings, start_ms, end_ms, max_hold_ms)
    return RoomPeriod(
        room=room_info(site, room),
        points=tuple(summaries),
        excursions=tuple(room_excursions(room, points, readings, start_ms, end_ms)),
    )


def excursion_report(
    site: Site, first: date, last: date, rooms: Sequence[RoomPeriod], *, generated_ms: int
) -> ExcursionReport:
    start_ms, end_ms = period_window(first, last, site.timezone)
    return ExcursionReport(
        site_id=site.id,
        site_name=site.name,
        timezone=site.timezone,
        first=first,
        last=last,
        start_ms=start_ms,
        end_ms=end_ms,
        rooms=tuple(rooms),
        generated_ms=generated_ms,
    )
