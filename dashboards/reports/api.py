"""The reports' HTTP API (a FastAPI router; the hub mounts it and guards it by role):

    GET /reports/daily?site=&room=&date=YYYY-MM-DD&format=html|csv|pdf
    GET /reports/excursions?site=&room=&from=YYYY-MM-DD&to=YYYY-MM-DD&format=html|csv|pdf

Reads ``app.state.hub`` (a :class:`hub.context.HubContext`) and, when the hub runs
alerts, ``app.state.alerts`` (an :class:`alerts.service.AlertService`): without it the daily
log has no acknowledgements section. Dates are the site's local days, from 1970-01-01 to
9999-12-28 (:data:`coldchain.params.Day`; outside: a 422 that says the range).
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request, Response

from alerts.service import AlertService
from coldchain.config.site import Room, Site
from coldchain.params import Day
from dashboards.reports import csvout, htmlout, load, pdfout
from dashboards.reports.tables import Document, daily_document, excursion_document
from hub.context import HubContext, not_found

MAX_DAYS = 92
"""Longest excursion report (a quarter): it reads every raw reading of a room at once, about
11 s to build, 17 s to render as PDF and 80 MiB for 92 days of two points at one reading a
minute (docs/reports.md)."""

router = APIRouter(prefix="/reports", tags=["reports"])


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


def _hub(request: Request) -> HubContext:
    hub: HubContext = request.app.state.hub
    return hub


def _alerts(request: Request) -> AlertService | None:
    svc: AlertService | None = getattr(request.app.state, "alerts", None)
    return svc


def _site(hub: HubContext, site_id: str) -> Site:
    for s in hub.cfg.sites:
        if s.id == site_id:
            return s
    raise not_found("site", site_id, (s.id for s in hub.cfg.sites))


def _room(site: Site, room_id: str) -> Room:
    for r in site.rooms:
        if r.id == room_id:
            return r
    raise not_found("room", room_id, (r.id for r in site.rooms))


def _links(request: Request, fmt: Format) -> dict[str, str]:
    """The other formats of the same report (for the page's toolbar)."""
    out = {}
    for other in (Format.CSV, Format.PDF):
        if other is not fmt:
            query = {**request.query_params, "format": other.value}
            out[other.value.upper()] = f"{request.url.path}?{urlencode(query)}"
    return out


async def _respond(request: Request, doc: Document, fmt: Format) -> Response:
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


@router.get("/daily", summary="A room's daily temperature log (GSP records, excursions, acks)")
async def daily(
    request: Request,
    site: SiteQ,
    room: Annotated[str, Query(description="room id")],
    day: Annotated[Day, Query(alias="date", description="local day, YYYY-MM-DD")],
    fmt: Annotated[Format, Query(alias="format", description="html, csv or pdf")] = Format.HTML,
) -> Response:
    hub = _hub(request)
    s = _site(hub, site)
    r = _room(s, room)
    svc = _alerts(request)
    log = await load.daily_log(
        cfg=hub.cfg,
        profiles=hub.profiles,
        store=hub.store,
        alerts=svc.store if svc is not None else None,
        site=s,
        room=r,
        day=day,
        now_ms=hub.clock.now_ms(),
    )
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
    hub = _hub(request)
    s = _site(hub, site)
    rooms = [_room(s, room)] if room is not None else list(s.rooms)
    rep = await load.excursion_report(
        cfg=hub.cfg,
        profiles=hub.profiles,
        store=hub.store,
        site=s,
        rooms=rooms,
        first=first,
        last=last,
        now_ms=hub.clock.now_ms(),
    )
    return await _respond(request, excursion_document(rep, room), fmt)
