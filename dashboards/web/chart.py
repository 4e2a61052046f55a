"""The room page's chart data: each temperature and humidity series over a range (raw
readings for short ranges, the store's rollups through ``Store.range`` for long ones), the
room's limits, door-open and defrost periods, alert markers, and min / max / mean / MKT of
the room's air temperature.

Total over whatever the store holds: a value that is bad, not finite, or a temperature at or
below absolute zero (a probe fault: :func:`dashboards.reports.series.is_usable`) is drawn as
a gap and left out of the figures, and each series says how many of its readings were
(``left_out``; ``stats.left_out`` for the room's air). Long ranges come from rollup
buckets: a bucket mixing a fault with good readings cannot be taken apart, so there the
figures are of the bucket means as stored (docs/reports.md)."""

from __future__ import annotations

from typing import Any, Final

from alerts.service import AlertService
from coldchain.alerting.rules.forecast import ForecastRule
from coldchain.config.site import Room
from coldchain.config.topology import PointInfo
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.reading import Quality
from coldchain.store.base import Agg, Store
from dashboards.reports.mkt import mkt_celsius
from dashboards.reports.series import is_usable, weighted_mean

RANGES: Final = {"1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000}
RAW_UP_TO_MS: Final = 6 * 3_600_000  # longer ranges come from rollups
POINTS: Final = 720  # about one bucket per two pixels of a desk screen
STEPS_S: Final = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400)
TEMPERATURE: Final = str(PointKind.TEMPERATURE)


def step_for(span_ms: int) -> int:
    """The smallest round step giving at most ``POINTS`` buckets, in ms."""
    for s in STEPS_S:
        if span_ms / (s * 1000) <= POINTS:
            return s * 1000
    return STEPS_S[-1] * 1000


def _stats(samples: list[tuple[int, float, float]], end_ms: int) -> dict[str, float | None]:
    """min, max, mean, MKT of (ts, value, weight) samples (by time); weight 0 means "use
    time" (until the next sample, at least 1 ms). Total: samples that are not usable
    temperatures are left out; no usable sample gives None for every figure."""
    samples = sorted(x for x in samples if is_usable(x[1], TEMPERATURE))
    if not samples:
        return {"min": None, "max": None, "mean": None, "mkt": None}
    weighted: list[tuple[float, float]] = []
    for i, (ts, v, w) in enumerate(samples):
        nxt = samples[i + 1][0] if i + 1 < len(samples) else end_ms
        weighted.append((w if w > 0 else max(nxt - ts, 1), v))
    return {
        "min": min(v for _, v, _ in samples),
        "max": max(v for _, v, _ in samples),
        "mean": weighted_mean(weighted),
        "mkt": mkt_celsius(weighted),
    }


def _usable(v: float | None, kind: PointKind) -> float | None:
    """``v`` if a figure can use it as a ``kind`` value, else None (drawn as a gap)."""
    return v if v is not None and is_usable(v, str(kind)) else None


async def room_chart(
    store: Store,
    *,
    alerts: AlertService,
    room: Room,
    points: list[PointInfo],
    start_ms: int,
    end_ms: int,
) -> dict[str, Any]:
    span = end_ms - start_ms
    raw = span <= RAW_UP_TO_MS
    step = None if raw else step_for(span)
    series: list[dict[str, Any]] = []
    room_temp: list[tuple[int, float, float]] = []
    lo_hi: list[float] = []
    room_left_out = 0
    for p in points:
        if p.kind not in (PointKind.TEMPERATURE, PointKind.HUMIDITY):
            continue
        if raw:
            rows = await store.raw(p.sid, start_ms, end_ms)
            got = [
                (r.ts_ms, _usable(r.value, p.kind) if r.quality is Quality.GOOD else None)
                for r in rows
            ]
            left_out = sum(
                1
                for r, (_, v) in zip(rows, got, strict=True)
                if r.quality is Quality.GOOD and r.value is not None and v is None
            )
            samples = [(t, v, 0.0) for t, v in got if v is not None]
        else:
            assert step is not None
            buckets = await store.range(p.sid, start_ms, end_ms, step, Agg.MEAN)
            got = [(b.ts_ms, _usable(b.value, p.kind)) for b in buckets]
            left_out = sum(1 for b, (_, v) in zip(buckets, got, strict=True) if b.value != v)
            samples = [
                (t, v, float(b.count))
                for b, (t, v) in zip(buckets, got, strict=True)
                if v is not None
            ]
            if p.kind is PointKind.TEMPERATURE and p.role is PointRole.ROOM:
                for agg in (Agg.MIN, Agg.MAX):
                    lo_hi += [
                        v
                        for b in await store.range(p.sid, start_ms, end_ms, step, agg)
                        if (v := _usable(b.value, p.kind)) is not None
                    ]
        if p.kind is PointKind.TEMPERATURE and p.role is PointRole.ROOM:
            room_temp += samples
            room_left_out += left_out
        series.append(
            {
                "name": f"{p.sid.device}/{p.sid.point}",
                "device": p.device_name or p.sid.device,  # the legend: names, not ids
                "point": p.sid.point,
                "kind": str(p.kind),
                "role": str(p.role),
                "unit": p.unit,
                "ts": [t for t, _ in got],
                "values": [v for _, v in got],
                "left_out": left_out,  # readings (raw) or buckets (rollups) not usable
            }
        )
    stats: dict[str, Any] = _stats(room_temp, end_ms)
    if lo_hi and stats["min"] is not None and stats["max"] is not None:
        stats["min"] = min([stats["min"], *lo_hi])
        stats["max"] = max([stats["max"], *lo_hi])
    stats["left_out"] = room_left_out
    lim = room.effective_limits
    return {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "step_ms": step,
        "series": series,
        "limits": {
            "temperature": [lim.temperature.low, lim.temperature.high],
            "humidity": [lim.humidity.low, lim.humidity.high] if lim.humidity else None,
        },
        "doors": await _intervals(store, points, PointKind.DOOR, start_ms, end_ms),
        "defrost": await _intervals(store, points, PointKind.DEFROST, start_ms, end_ms),
        "alerts": _markers(alerts, points, start_ms, end_ms),
        "forecasts": projections(alerts, points),
        "stats": stats,
    }


async def _intervals(
    store: Store, points: list[PointInfo], kind: PointKind, start_ms: int, end_ms: int
) -> list[list[int]]:
    out = []
    for p in points:
        if p.kind is kind:
            for i in await store.door_intervals(p.sid, start_ms, end_ms):
                closed = i.closed_ms if i.closed_ms is not None else end_ms
                out.append([max(i.opened_ms, start_ms), min(closed, end_ms)])
    return sorted(out)


def projections(alerts: AlertService, points: list[PointInfo]) -> list[dict[str, Any]]:
    """Each open forecast of the room (the ``forecast`` rule): its series' latest value and
    time, and where its current trend reaches the limit (the line the chart draws on)."""
    ours = {str(p.sid): p for p in points}
    ev = alerts.evaluator
    out = []
    for row in alerts.open.values():
        p = ours.get(row.series or "")
        watch = ev.watch(row.key)
        view = ev.views.series.get(row.series or "")
        if row.kind != "forecast" or p is None or watch is None or view is None:
            continue
        rule = watch.rule
        if not isinstance(rule, ForecastRule) or watch.limit is None:
            continue
        win = view.windows.get(rule.window_ms())
        if win is None or view.value is None or view.ts_ms is None:
            continue
        slope = win.slope() * 60_000  # °C per minute
        minutes = rule.minutes_to(view.value, slope, watch.limit)
        if minutes == float("inf"):
            continue
        out.append(
            {
                "name": f"{p.sid.device}/{p.sid.point}",
                "from": [view.ts_ms, view.value],
                "to": [view.ts_ms + round(minutes * 60_000), watch.limit],
            }
        )
    return out


def _markers(
    alerts: AlertService, points: list[PointInfo], start_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    if not points:
        return []
    site, room = points[0].sid.site, points[0].room
    rows = alerts.store.query(site=site, room=room, since_ms=start_ms, until_ms=end_ms, limit=200)
    return [
        {
            "id": r.id,
            "ts_ms": max(r.fired_ms or r.pending_ms, start_ms),
            "rule": r.rule,
            "severity": r.severity,
            "state": r.state,
        }
        for r in rows
        if r.fired_ms is not None
    ]
