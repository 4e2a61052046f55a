"""The UI's routes: the live board and its event stream, room pages and their chart data,
alerts, gateways, reports, the language switch (login and users are the hub's:
:mod:`hub.accounts`, rendered with the same :class:`~dashboards.web.render.Renderer`).

:func:`ui_router` takes what the pages read (:class:`WebContext`), the guard that asks for
a role (:data:`coldchain.access.Guard`: an operator for every page, a technician for the
gateways, a manager for the reports) and the renderer; :func:`mount_ui` adds it, the static
files and the pages' error handler to the hub's app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from alerts.service import AlertService
from coldchain import params
from coldchain.access import Guard, Principal, Role
from coldchain.alerting.messages import display_name
from coldchain.clock import WALL, Clock
from coldchain.config.site import Room, Site, SiteConfig
from coldchain.store.base import Footprint, Store, StoreError
from coldchain.supervise import wait_event
from dashboards.refrigeration import room_health
from dashboards.reports.model import SignatureRow
from dashboards.web import i18n
from dashboards.web.chart import RANGES, room_chart
from dashboards.web.hints import pi_hints
from dashboards.web.line import has_line, shift
from dashboards.web.live import Board, LiveEvents, Tile
from dashboards.web.records import backup_row, records_view
from dashboards.web.render import HERE, Renderer, safe_next, templates
from gateway.registry import Registry

HEARTBEAT_S = 15.0
# Readings wake the streams at once; alert transitions made by the evaluator's clock (a
# delay running out) are picked up by this poll.
POLL_S = 0.25
# A stream redraws the board for commits at most this often: they come tens of times a
# second at full ingest, and a redraw costs the changes since the previous one.
REDRAW_S = 0.1
SHIFT_HOURS = 12  # the sorting line's shift on the room page: the last this many hours


@dataclass
class WebContext:
    """What the pages read."""

    cfg: SiteConfig
    store: Store
    registry: Registry
    alerts: AlertService
    events: LiveEvents
    board: Board
    clock: Clock = WALL  # "now" of the board and of default chart ranges: the hub's clock
    # a gateway's config revisions (desired, applied, refused: gateway/configpush.py)
    config_state: Callable[[str], Mapping[str, Any]] | None = None
    # the audit trail's last record and link (hub/audit.py), shown on the reports page
    audit_head: Callable[[], tuple[int, str] | None] | None = None
    # the readings' newest seal (coldchain/store/sqlite/seal.py): id, hour (UTC ms), link
    seal_head: Callable[[], tuple[int, int, str] | None] | None = None
    # the daily backup's state (hub/backup_schedule.BackupState; None: no schedule), shown
    # on the reports page
    backup_state: Callable[[], Any] | None = None
    # the signatures of records (hub/signatures.py), shown on the alerts page
    signatures: Callable[[Collection[str]], list[SignatureRow]] | None = None


def ui_router(web: WebContext, guard: Guard, ui: Renderer) -> APIRouter:
    """The pages' routes over ``web``, each behind ``guard`` (but the language switch)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/lang/{lang}")
    def set_lang(lang: str, next: str = "/") -> Response:
        if lang not in i18n.LANGS:
            raise HTTPException(404, f"language {lang!r}: use one of {', '.join(i18n.LANGS)}")
        resp = RedirectResponse(safe_next(next), status_code=303)
        resp.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
        return resp

    _board_routes(router, web, guard, ui)
    _room_routes(router, web, guard, ui)
    _other_pages(router, web, guard, ui)
    return router


# --- the live board --------------------------------------------------------------------


def _tile_html(request: Request, tile: Tile) -> str:
    lang = i18n.lang_of(request)
    macro = templates.get_template("_tile.html").module.tile  # type: ignore[attr-defined]
    text: str = macro(tile, lambda key: i18n.translate(key, lang))
    return text


def _board_routes(router: APIRouter, web: WebContext, guard: Guard, ui: Renderer) -> None:
    operator = guard(Role.OPERATOR)

    @router.get("/", response_class=HTMLResponse)
    def board(request: Request, user: Principal = operator) -> HTMLResponse:
        tiles = web.board.tiles(web.clock.now_ms(), i18n.lang_of(request))
        sites: dict[str, list[Tile]] = {}
        for tile in tiles:
            sites.setdefault(tile.site_name, []).append(tile)
        return ui.page(
            request, "board.html", sites=sites, tile_html=lambda t: _tile_html(request, t)
        )

    @router.get("/events")
    async def events(request: Request, user: Principal = operator) -> Response:
        """Server-sent events: ``tile`` with a changed tile's HTML, as soon as readings are
        committed (at most every ``REDRAW_S``), or within ``POLL_S`` of an alert's change."""
        from fastapi.responses import StreamingResponse

        lang = i18n.lang_of(request)

        async def stream() -> AsyncIterator[str]:
            sent: dict[str, Tile] = {}  # what the page shows: render only what changed
            wake = web.events.subscribe()
            last_beat = woken = time.monotonic()
            try:
                yield "retry: 2000\n\n"
                while not web.events.closed:
                    for tile in web.board.tiles(web.clock.now_ms(), lang):
                        if sent.get(tile.key) == tile:
                            continue
                        sent[tile.key] = tile
                        html = _tile_html(request, tile)
                        data = json.dumps({"key": tile.key, "state": tile.state, "html": html})
                        yield f"event: tile\ndata: {data}\n\n"
                    if time.monotonic() - last_beat > HEARTBEAT_S:
                        last_beat = time.monotonic()
                        yield ": beat\n\n"
                    wake.clear()
                    if await wait_event(wake, POLL_S):  # woken by a commit, not the poll
                        rest = REDRAW_S - (time.monotonic() - woken)
                        if rest > 0:
                            await asyncio.sleep(rest)
                        woken = time.monotonic()
                    if await request.is_disconnected():
                        break
            finally:
                web.events.unsubscribe(wake)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


# --- room pages ------------------------------------------------------------------------


def _room(web: WebContext, site: str, room: str) -> tuple[Site, Room]:
    s = next((x for x in web.cfg.sites if x.id == site), None)
    r = next((x for x in s.rooms if x.id == room), None) if s else None
    if s is None or r is None:
        raise HTTPException(404, f"no room {site}/{room}")
    return s, r


def _parse_ms(text: str | None, name: str) -> int | None:
    """Epoch ms or ISO 8601 with an offset, within :data:`coldchain.params.EpochMs`."""
    if text is None or text == "":
        return None
    try:
        return params.parse_epoch_ms(text, name)
    except params.ParamError as exc:
        raise HTTPException(422, str(exc)) from None


def _room_routes(router: APIRouter, web: WebContext, guard: Guard, ui: Renderer) -> None:
    operator = guard(Role.OPERATOR)

    @router.get("/rooms/{site}/{room}", response_class=HTMLResponse)
    async def room_page(
        request: Request, site: str, room: str, user: Principal = operator
    ) -> HTMLResponse:
        s, r = _room(web, site, room)
        lang = i18n.lang_of(request)
        points = web.board.points(site, room)
        line = None
        now = web.clock.now_ms()
        if has_line(points):  # the sorting line's shift: the last 12 hours
            line = await shift(web.store, points, end_ms=now, hours=SHIFT_HOURS, tz=s.timezone)
        # the refrigeration's week (None without a compressor or defrost point)
        health = await room_health(web.store, points, end_ms=now, days=7, tz=s.timezone)
        return ui.page(
            request,
            "room.html",
            site=s,
            room=r,
            site_name=display_name(s.name, lang),
            room_name=display_name(r.name, lang),
            ranges=list(RANGES),
            line=line,
            health=health,
        )

    @router.get("/rooms/{site}/{room}/data")
    async def room_data(
        site: str,
        room: str,
        *,
        user: Principal = operator,
        range: str = "24h",
        start: params.TimeText | None = None,
        end: params.TimeText | None = None,
    ) -> JSONResponse:
        _, r = _room(web, site, room)
        end_ms = _parse_ms(end, "end") or web.clock.now_ms()
        start_ms = _parse_ms(start, "start")
        if start_ms is None:
            if range not in RANGES:
                raise HTTPException(422, f"range {range!r}: use one of {', '.join(RANGES)}")
            start_ms = end_ms - RANGES[range]
        if start_ms >= end_ms:
            raise HTTPException(422, "start must be before end")
        if end_ms - start_ms > 400 * 86_400_000:
            raise HTTPException(422, "a range of at most 400 days")
        points = web.board.points(site, room)
        data = await room_chart(
            web.store, alerts=web.alerts, room=r, points=points, start_ms=start_ms, end_ms=end_ms
        )
        return JSONResponse(data)


# --- alerts, gateways, reports ---------------------------------------------------------


def _other_pages(router: APIRouter, web: WebContext, guard: Guard, ui: Renderer) -> None:
    operator, technician = guard(Role.OPERATOR), guard(Role.TECHNICIAN)
    manager = guard(Role.MANAGER)

    @router.get("/alerts", response_class=HTMLResponse)
    def alerts_page(request: Request, user: Principal = operator) -> HTMLResponse:
        lang = i18n.lang_of(request)
        store = web.alerts.store
        active = store.query(states=["firing", "acknowledged", "pending"], limit=500)
        past = store.query(states=["resolved"], limit=100)
        told = {a.id: store.notifications(alert_id=a.id) for a in active}
        signed: dict[int, list[SignatureRow]] = {}
        if web.signatures is not None:
            for s in web.signatures([f"alert/{a.id}" for a in (*active, *past)]):
                signed.setdefault(int(s.object.split("/")[1]), []).append(s)
        names = {
            (s.id, r.id): f"{display_name(s.name, lang)} · {display_name(r.name, lang)}"
            for s in web.cfg.sites
            for r in s.rooms
        }
        return ui.page(
            request,
            "alerts.html",
            active=active,
            past=past,
            told=told,
            names=names,
            signed=signed,
        )

    @router.get("/gateways", response_class=HTMLResponse)
    def gateways_page(request: Request, user: Principal = technician) -> HTMLResponse:
        # the Modbus buses a technician may scan or read from here (commissioning), and the
        # profiles of the devices configured on them (offered for a read)
        buses = {
            g.id: [b.id for b in g.buses if b.type in ("rtu", "tcp")] for g in web.cfg.gateways
        }
        profiles = {
            g.id: sorted({d.profile for d in g.devices if d.bus in buses[g.id]})
            for g in web.cfg.gateways
        }
        return ui.page(
            request,
            "gateways.html",
            gateways=web.registry.all(),
            hints=pi_hints,
            buses=buses,
            profiles=profiles,
            configs={g.id: web.config_state(g.id) for g in web.cfg.gateways if web.config_state},
        )

    @router.get("/reports", response_class=HTMLResponse)
    async def reports_page(request: Request, user: Principal = manager) -> HTMLResponse:
        """Links to the daily log and the excursion report (dashboards/reports/api.py), and
        the records: how far back they go, their disk, retention, the audit trail's and the
        readings' seals' heads."""
        rooms = [(s, r) for s in web.cfg.sites for r in s.rooms]
        sites = web.cfg.sites
        today = datetime.now(ZoneInfo(sites[0].timezone)).date() if sites else None
        head = web.audit_head() if web.audit_head is not None else None
        try:
            footprint = await web.store.footprint()
        except StoreError:
            footprint = Footprint(None, None)  # the page still serves its links
        sealed = web.seal_head() if web.seal_head is not None else None
        records = records_view(web.cfg, footprint, web.clock.now_ms(), head, sealed)
        backups = web.backup_state() if web.backup_state is not None else None
        records = dataclasses.replace(records, backup=backup_row(backups, web.cfg))
        return ui.page(request, "reports.html", rooms=rooms, today=today, records=records)


def mount_ui(app: FastAPI, web: WebContext, guard: Guard, ui: Renderer) -> None:
    """Add the pages (:func:`ui_router`), the static files and the pages' error handler
    (403 / 404 as a page) to ``app``."""
    app.include_router(ui_router(web, guard, ui))

    @app.get("/fonts/{name}", include_in_schema=False)
    async def font(name: str) -> Response:
        """The UI's Chinese font subset (dashboards/fonts.py): its name is its digest, so a
        browser keeps it for a year."""
        f = ui.font
        if f is None or name != f.name:
            raise HTTPException(404, "no such font")
        data = await asyncio.to_thread(f.data, ui.font_cache)  # made on first request
        return Response(
            data,
            media_type="font/woff",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(StarletteHTTPException, ui.errors)
