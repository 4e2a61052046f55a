"""The reports' HTTP API (a FastAPI router factory; the hub mounts it), for managers:

    GET /reports/daily?site=&room=&date=YYYY-MM-DD&format=html|csv|pdf
    GET /reports/excursions?site=&room=&from=YYYY-MM-DD&to=YYYY-MM-DD&format=html|csv|pdf

:func:`reports_router` takes what the reports read: the site config, the device profiles,
the store, the alert store (None when the hub runs without alerts: the daily log then has no
acknowledgements section), the clock ("now" of an unfinished day) and the guard that asks
for the manager's role. Dates are the site's local days, from 1970-01-01 to 9999-12-28
(:data:`coldchain.params.Day`; outside: a 422 that says the range); an unknown site or room
is a 404 that names the closest known one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response

from alerts.store import AlertStore
from coldchain.access import Guard, Role
from coldchain.clock import Clock
from coldchain.config.site import Room, Site, SiteConfig
from coldchain.config.topology import site_points
from coldchain.lookup import UnknownNameError, unknown
from coldchain.params import Day
from coldchain.profiles.registry import ProfileRegistry
from coldchain.store.base import Store
from dashboards.refrigeration import room_health
from dashboards.reports import csvout, htmlout, load, pdfout
from dashboards.reports.localize import localize
from dashboards.reports.tables import (
    Document,
    daily_document,
    excursion_document,
    maintenance_document,
)
from dashboards.web.i18n import LANGS, lang_of

MAX_DAYS = 92
"""Longest excursion report (a quarter): it reads every raw reading of a room at once, about
11 s to build, 17 s to render as PDF and 80 MiB for 92 days of two points at one reading a
minute (docs/reports.md)."""


class Format(StrEnum):
    HTML = "html"
    CSV = "csv"
    PDF = "pdf"


MEDIA = {
    Format.HTML: "text/html; charset=utf-8",
    Format.CSV: "text/csv; charset=utf-8",
    Format.PDF: "application/pdf",
}

SiteQ = Annotated[str, Query(description="site id")]
FormatQ = Annotated[Format, Query(description="html (printable page), csv or pdf")]


def _site(cfg: SiteConfig, site_id: str) -> Site:
    for s in cfg.sites:
        if s.id == site_id:
            return s
    raise unknown("site", site_id, (s.id for s in cfg.sites))


def _room(site: Site, room_id: str) -> Room:
    for r in site.rooms:
        if r.id == room_id:
            return r
    raise unknown("room", room_id, (r.id for r in site.rooms))


def _site_rooms(cfg: SiteConfig, site_id: str, room_id: str | None) -> tuple[Site, list[Room]]:
    """The site and the room asked for (every room without one); an unknown one is a 404."""
    try:
        site = _site(cfg, site_id)
        return site, [_room(site, room_id)] if room_id is not None else list(site.rooms)
    except UnknownNameError as exc:
        raise HTTPException(404, str(exc)) from None


def _links(request: Request, fmt: Format) -> dict[str, str]:
    """The other formats of the same report (for the page's toolbar)."""
    out = {}
    for other in (Format.CSV, Format.PDF):
        if other is not fmt:
            query = {**request.query_params, "format": other.value}
            out[other.value.upper()] = f"{request.url.path}?{urlencode(query)}"
    return out


async def _respond(request: Request, doc: Document, fmt: Format) -> Response:
    """``doc`` in ``fmt``, in the reader's language: ``?lang=`` (en or zh-CN), else the web
    UI's (its cookie; zh-CN by default)."""
    asked = request.query_params.get("lang")
    doc = localize(doc, asked if asked in LANGS else lang_of(request))
    if fmt is Format.PDF:
        body = await asyncio.to_thread(pdfout.render, doc)  # seconds for a long report
    elif fmt is Format.CSV:
        body = csvout.render(doc)
    else:
        body = htmlout.render(doc, _links(request, fmt))
    disposition = "inline" if fmt is Format.HTML else "attachment"
    return Response(
        body,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'{disposition}; filename="{doc.filename}.{fmt.value}"'},
    )


def reports_router(
    *,
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    store: Store,
    alerts: AlertStore | None,
    clock: Clock,
    guard: Guard,
    audit_head: Callable[[], tuple[int, str] | None] | None = None,
    seal_head: Callable[[], tuple[int, int, str] | None] | None = None,
    signatures: load.Signatures | None = None,
) -> APIRouter:
    """The ``/reports`` routes over these, each for managers and above (asked of ``guard``);
    ``audit_head`` gives the audit trail's last record and link, ``seal_head`` the readings'
    newest seal, which the daily log prints; ``signatures`` the signatures the daily log and
    the excursion report show."""
    router = APIRouter(prefix="/reports", tags=["reports"], dependencies=[guard(Role.MANAGER)])

    @router.get("/daily", summary="A room's daily temperature log (GSP records, excursions, acks)")
    async def daily(
        request: Request,
        site: SiteQ,
        room: Annotated[str, Query(description="room id")],
        day: Annotated[Day, Query(alias="date", description="local day, YYYY-MM-DD")],
        fmt: Annotated[Format, Query(alias="format", description="html, csv or pdf")] = Format.HTML,
    ) -> Response:
        s, (r,) = _site_rooms(cfg, site, room)
        log = await load.daily_log(
            cfg=cfg,
            profiles=profiles,
            store=store,
            alerts=alerts,
            site=s,
            room=r,
            day=day,
            now_ms=clock.now_ms(),
            audit_head=audit_head() if audit_head is not None else None,
            seal_head=seal_head() if seal_head is not None else None,
        )
        log = load.with_signatures(log, signatures)
        return await _respond(request, daily_document(log), fmt)

    @router.get("/excursions", summary="Excursions and MKT per room over a date range")
    async def excursions(
        request: Request,
        *,
        site: SiteQ,
        first: Annotated[Day, Query(alias="from", description="first local day, YYYY-MM-DD")],
        last: Annotated[Day, Query(alias="to", description="last local day (included)")],
        room: Annotated[str | None, Query(description="one room; absent: every room")] = None,
        fmt: Annotated[Format, Query(alias="format", description="html, csv or pdf")] = Format.HTML,
    ) -> Response:
        if last < first:
            raise HTTPException(422, f"'to' ({last}) is before 'from' ({first})")
        if (last - first).days + 1 > MAX_DAYS:
            raise HTTPException(
                422, f"{(last - first).days + 1} days asked; a report covers at most {MAX_DAYS}"
            )
        s, rooms = _site_rooms(cfg, site, room)
        rep = await load.excursion_report(
            cfg=cfg,
            profiles=profiles,
            store=store,
            site=s,
            rooms=rooms,
            first=first,
            last=last,
            now_ms=clock.now_ms(),
            alerts=alerts,
            signatures=signatures,
        )
        return await _respond(request, excursion_document(rep, room), fmt)

    @router.get("/maintenance", summary="Refrigeration health of a site's rooms over a week")
    async def maintenance(
        request: Request,
        *,
        site: SiteQ,
        to: Annotated[Day | None, Query(description="the week's last day; default today")] = None,
        fmt: Annotated[Format, Query(alias="format", description="html, csv or pdf")] = Format.HTML,
    ) -> Response:
        s, rooms = _site_rooms(cfg, site, None)
        zone = ZoneInfo(s.timezone)
        now = clock.now_ms()
        last = to or datetime.fromtimestamp(now / 1000, zone).date()
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
        end_ms = min(now, round(end.timestamp() * 1000) - 1)
        points = [p for p in site_points(cfg, profiles) if p.sid.site == s.id]
        health = {}
        for r in rooms:
            mine = [p for p in points if p.room == r.id]
            h = await room_health(store, mine, end_ms=end_ms, days=7, tz=s.timezone)
            if h is not None:
                health[r.id] = (r, h)
        doc = maintenance_document(s, health, last, now)
        return await _respond(request, doc, fmt)

    return router
