"""Reads what the reports need: the room's room-air points (from the config and profiles),
their readings (through the store interface) and the room's alerts (from the alert tables),
then builds the reports with the pure functions of :mod:`.build`."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Callable, Collection, Sequence
from datetime import date
from functools import partial

from alerts.store import AlertRow, AlertStore
from coldchain.config.site import Room, Site, SiteConfig
from coldchain.config.topology import site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.reading import Reading, SeriesId
from coldchain.store.base import Store
from dashboards.reports import build
from dashboards.reports.model import DailyLog, ExcursionReport, SignatureRow

Signatures = Callable[[Collection[str]], list[SignatureRow]]
"""The signatures of some records (``alert/ID``, ``daily/SITE/ROOM/DAY``), oldest first."""

DAY_MS = 86_400_000
CONTEXT_MS = DAY_MS
"""Readings read before and after a report's window, so an excursion crossing its edge keeps
its real start, end and peak (one that began earlier than this is marked "start unknown")."""
ALERTS_MAX = 10_000


def room_points(
    cfg: SiteConfig, profiles: ProfileRegistry, site_id: str, room_id: str
) -> list[build.PointRef]:
    """The room-air temperature and humidity points of a room: temperatures first, in
    config order (evaporator and product probes are not the room's climate)."""
    found = [
        p
        for p in site_points(cfg, profiles)
        if p.site == site_id
        and p.room == room_id
        and p.role is PointRole.ROOM
        and p.kind in (PointKind.TEMPERATURE, PointKind.HUMIDITY)
    ]
    found.sort(key=lambda p: p.kind is not PointKind.TEMPERATURE)
    return [
        build.PointRef(
            series=str(p.sid),
            label=f"{p.sid.device}/{p.sid.point}",
            quantity=str(p.kind),
            unit=p.unit,
        )
        for p in found
    ]


async def read_points(
    store: Store, points: Sequence[build.PointRef], start_ms: int, end_ms: int
) -> dict[str, list[Reading]]:
    """Raw readings of each point over [start_ms - CONTEXT_MS, end_ms + CONTEXT_MS)."""
    lists = await asyncio.gather(
        *(
            store.raw(SeriesId.parse(p.series), start_ms - CONTEXT_MS, end_ms + CONTEXT_MS)
            for p in points
        )
    )
    return {p.series: r for p, r in zip(points, lists, strict=True)}


def room_alerts(
    alerts: AlertStore, site_id: str, room_id: str, start_ms: int, end_ms: int
) -> list[AlertRow]:
    """Alerts of the room open at some time in [start_ms, end_ms) (cancelled ones, which
    never fired, are left out by the query)."""
    return alerts.query(
        site=site_id, room=room_id, since_ms=start_ms, until_ms=end_ms, limit=ALERTS_MAX
    )


async def daily_log(
    *,
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    store: Store,
    alerts: AlertStore | None,
    site: Site,
    room: Room,
    day: date,
    now_ms: int,
    audit_head: tuple[int, str] | None = None,
    seal_head: tuple[int, int, str] | None = None,
) -> DailyLog:
    points = room_points(cfg, profiles, site.id, room.id)
    start_ms, end_ms = build.day_window(day, site.timezone)
    readings = await read_points(store, points, start_ms, end_ms)
    rows = None if alerts is None else room_alerts(alerts, site.id, room.id, start_ms, end_ms)
    # pure Python over thousands of readings: off the event loop the ingest shares
    return await asyncio.to_thread(
        partial(
            build.daily_log,
            site,
            room,
            day,
            points=points,
            readings=readings,
            alerts=rows,
            generated_ms=now_ms,
            audit_head=audit_head,
            seal_head=seal_head,
        )
    )


def daily_objects(site_id: str, rooms: Sequence[str], first: date, last: date) -> list[str]:
    """The daily logs' record names of ``rooms`` from ``first`` to ``last``, for signatures."""
    days = (last - first).days + 1
    return [
        f"daily/{site_id}/{room}/{date.fromordinal(first.toordinal() + i).isoformat()}"
        for room in rooms
        for i in range(days)
    ]


def with_signatures(log: DailyLog, signatures: Signatures | None) -> DailyLog:
    """``log`` with its own signatures and those of its alerts."""
    if signatures is None:
        return log
    objects = [f"alert/{a.alert_id}" for a in log.acks or ()]
    objects += daily_objects(log.room.site_id, [log.room.room_id], log.day, log.day)
    return dataclasses.replace(log, signatures=tuple(signatures(objects)))


def content_digest(log: DailyLog) -> str:
    """SHA-256 (hex) of a daily log's content: its CSV in English without the time it was
    made, the heads and the signatures, so the same day's data gives the same digest (what a
    manager's approval binds, hub/signatures.py)."""
    from dashboards.reports import csvout
    from dashboards.reports.tables import daily_document

    bare = dataclasses.replace(log, generated_ms=0, audit_head=None, seal_head=None, signatures=())
    return hashlib.sha256(csvout.render(daily_document(bare))).hexdigest()


async def excursion_report(
    *,
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    store: Store,
    site: Site,
    rooms: Sequence[Room],
    first: date,
    last: date,
    now_ms: int,
    alerts: AlertStore | None = None,
    signatures: Signatures | None = None,
) -> ExcursionReport:
    start_ms, end_ms = build.period_window(first, last, site.timezone)
    periods = []
    for room in rooms:
        points = room_points(cfg, profiles, site.id, room.id)
        readings = await read_points(store, points, start_ms, end_ms)
        period = partial(
            build.room_period,
            site,
            room,
            points=points,
            readings=readings,
            start_ms=start_ms,
            end_ms=min(end_ms, max(start_ms, now_ms)),  # a range reaching today: up to now
        )
        periods.append(await asyncio.to_thread(period))
    rep = build.excursion_report(site, first, last, periods, generated_ms=now_ms)
    if signatures is None:
        return rep
    objects = daily_objects(site.id, [r.id for r in rooms], first, last)
    if alerts is not None:
        for room in rooms:
            rows = room_alerts(alerts, site.id, room.id, start_ms, end_ms)
            objects += [f"alert/{a.id}" for a in rows]
    return dataclasses.replace(rep, signatures=tuple(signatures(objects)))
