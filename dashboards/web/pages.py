"""The UI's routes: login, the live board and its event stream, room pages and their chart
data, alerts, gateways, users, the language switch."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from alerts.service import AlertService
from coldchain import params
from coldchain.alerting.messages import display_name
from coldchain.clock import WALL, Clock
from coldchain.config.site import SiteConfig
from coldchain.store.base import Store
from coldchain.supervise import wait_event
from dashboards import csrf
from dashboards.auth import (
    COOKIE,
    LOGIN_COOKIE,
    ROLES,
    Auth,
    AuthError,
    Session,
    User,
    new_login_nonce,
)
from dashboards.throttle import Lock
from dashboards.web import i18n
from dashboards.web.chart import RANGES, room_chart
from dashboards.web.live import Board, LiveEvents, Tile
from gateway.registry import Registry

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
HEARTBEAT_S = 15.0
# Readings wake the streams at once; alert transitions made by the evaluator's clock (a
# delay running out) are picked up by this poll.
POLL_S = 0.25


@dataclass
class WebContext:
    cfg: SiteConfig
    store: Store
    registry: Registry
    alerts: AlertService
    auth: Auth
    events: LiveEvents
    board: Board
    clock: Clock = WALL  # "now" of the board and of default chart ranges: the hub's clock


def _web(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    return ctx


def needs(role: str) -> Any:
    """A dependency: the logged-in user, when it holds ``role`` (else 401 / 403)."""

    def dep(request: Request) -> User:
        _web(request).auth.authorize(request, role)
        user: User = request.state.user
        return user

    return Depends(dep)


Operator = Annotated[User, needs("operator")]
Technician = Annotated[User, needs("technician")]
Manager = Annotated[User, needs("manager")]
Admin = Annotated[User, needs("admin")]


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    lang = i18n.lang_of(request)
    tz = ZoneInfo(_web(request).cfg.sites[0].timezone) if _web(request).cfg.sites else None

    def when(ms: int | None) -> str:
        if ms is None:
            return "—"
        return datetime.fromtimestamp(ms / 1000, tz).strftime("%Y-%m-%d %H:%M:%S")

    context = {
        "request": request,
        "lang": lang,
        "t": lambda key: i18n.translate(key, lang),
        "when": when,
        "what": lambda row: i18n.condition(row.kind, row.quantity, row.direction, lang),
        "user": getattr(request.state, "user", None),
        "csrf_token": _csrf_token(request),
        "wall": request.query_params.get("wall") == "1",
        **values,
    }
    return templates.TemplateResponse(request, template, context, status_code=status)


def _csrf_token(request: Request) -> str | None:
    """The token the page's forms and scripts send back (dashboards/csrf.py)."""
    session: Session | None = getattr(request.state, "session", None)
    return session.csrf_token if session else None


router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["session"])


# --- login -----------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path on this hub (no //host, no scheme)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def _login_form(
    request: Request, status: int, *, next: str, error: str | None = None, name: str = ""
) -> HTMLResponse:
    """The login page, with the token of its pre-session cookie (made when missing)."""
    auth = _web(request).auth
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not _NONCE.fullmatch(nonce):
        nonce = new_login_nonce()
    token = auth.sessions.login_token(nonce)
    resp = render(
        request,
        "login.html",
        status,
        next=_safe_next(next),
        error=error,
        name=name,
        login_token=token,  # not csrf_token: a logged-in user's nav still needs the session's
    )
    resp.set_cookie(
        LOGIN_COOKIE, nonce, max_age=86400, httponly=True, samesite="strict", path="/login"
    )
    resp.headers[csrf.HEADER] = token  # for a script: send it back with the cookie
    return resp


_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return _login_form(request, 200, next=next)


def _locked(lock: Lock, lang: i18n.Lang) -> str:
    text = i18n.translate(f"login_locked.{lock.scope}", lang)
    return text.format(wait=i18n.wait(lock.seconds, lang))


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the password unless the account or the address is locked (then 429 at once,
    no password check); audit failures and locks; on success a new session."""
    web = _web(request)
    auth, lang = web.auth, i18n.lang_of(request)
    address = request.client.host if request.client else "unknown"
    refused, earned = auth.throttle.begin(name, address)
    if refused is not None:
        resp = _login_form(request, 429, next=next, error=_locked(refused, lang), name=name)
        resp.headers["Retry-After"] = str(math.ceil(refused.seconds))
        return resp
    user = await asyncio.to_thread(auth.users.check, name, password)
    if user is None:
        who = f"user/{name[:64]}"
        web.alerts.audit(
            actor="anonymous", action="login.failed", obj=who, after={"address": address}
        )
        error = i18n.translate("login_failed", lang)
        if earned is not None:
            obj = who if earned.scope == "account" else f"address/{address}"
            after = {"address": address, "failures": earned.failures, "seconds": earned.seconds}
            web.alerts.audit(actor="hub", action="login.locked", obj=obj, after=after)
            log.warning(
                "login locked for %.0f s: %s after %d failures",
                earned.seconds,
                obj,
                earned.failures,
            )
            error += ("。" if lang == "zh-CN" else ". ") + _locked(earned, lang)
        return _login_form(request, 401, next=next, error=error, name=name)
    auth.throttle.succeeded(name, address)
    previous = request.cookies.get(COOKIE)
    if previous:  # the browser's session before this login ends: one session per cookie
        auth.sessions.revoke(previous)
    web.alerts.audit(
        actor=user.name, action="login", obj=f"user/{user.name}", after={"address": address}
    )
    done = RedirectResponse(_safe_next(next), status_code=303)
    done.set_cookie(
        COOKIE,
        auth.sessions.issue(user.name),
        max_age=auth.sessions.ttl_s,
        httponly=True,
        samesite="lax",
        path="/",
    )
    return done


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session on the hub (the cookie is no longer accepted), then drop it."""
    token = request.cookies.get(COOKIE)
    if token:
        _web(request).auth.sessions.revoke(token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@api.get("/api/session", summary="Who is logged in, and the token for changes")
def session_info(request: Request, user: Operator) -> dict[str, str]:
    """The session's user and role, and the token every state-changing request of this
    session sends (header X-CSRF-Token)."""
    session: Session = request.state.session
    return {"user": user.name, "role": user.role, "csrf_token": session.csrf_token}


@router.get("/lang/{lang}")
def set_lang(lang: str, next: str = "/") -> Response:
    if lang not in i18n.LANGS:
        raise HTTPException(404, f"language {lang!r}: use one of {', '.join(i18n.LANGS)}")
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return resp


# --- the live board --------------------------------------------------------------------


def _tile_html(request: Request, tile: Tile) -> str:
    lang = i18n.lang_of(request)
    macro = templates.get_template("_tile.html").module.tile  # type: ignore[attr-defined]
    text: str = macro(tile, lambda key: i18n.translate(key, lang))
    return text


@router.get("/", response_class=HTMLResponse)
def board(request: Request, user: Operator) -> HTMLResponse:
    web = _web(request)
    tiles = web.board.tiles(web.clock.now_ms(), i18n.lang_of(request))
    sites: dict[str, list[Tile]] = {}
    for tile in tiles:
        sites.setdefault(tile.site_name, []).append(tile)
    return render(request, "board.html", sites=sites, tile_html=lambda t: _tile_html(request, t))


@router.get("/events")
async def events(request: Request, user: Operator) -> Response:
    """Server-sent events: ``tile`` with a changed tile's HTML, as soon as readings are
    committed (or within ``POLL_S`` of an alert's change)."""
    from fastapi.responses import StreamingResponse

    web = _web(request)
    lang = i18n.lang_of(request)

    async def stream() -> AsyncIterator[str]:
        sent: dict[str, Tile] = {}  # what the page shows: render only what changed
        wake = web.events.subscribe()
        last_beat = time.monotonic()
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
                await wait_event(wake, POLL_S)
                if await request.is_disconnected():
                    break
        finally:
            web.events.unsubscribe(wake)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


# --- room pages ------------------------------------------------------------------------


def _room(web: WebContext, site: str, room: str) -> tuple[Any, Any]:
    s = next((x for x in web.cfg.sites if x.id == site), None)
    r = next((x for x in s.rooms if x.id == room), None) if s else None
    if s is None or r is None:
        raise HTTPException(404, f"no room {site}/{room}")
    return s, r


@router.get("/rooms/{site}/{room}", response_class=HTMLResponse)
def room_page(request: Request, site: str, room: str, user: Operator) -> HTMLResponse:
    s, r = _room(_web(request), site, room)
    lang = i18n.lang_of(request)
    return render(
        request,
        "room.html",
        site=s,
        room=r,
        site_name=display_name(s.name, lang),
        room_name=display_name(r.name, lang),
        ranges=list(RANGES),
    )


def _parse_ms(text: str | None, name: str) -> int | None:
    """Epoch ms or ISO 8601 with an offset, within :data:`coldchain.params.EpochMs`."""
    if text is None or text == "":
        return None
    try:
        return params.parse_epoch_ms(text, name)
    except params.ParamError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/rooms/{site}/{room}/data")
async def room_data(  # noqa: PLR0917 - query parameters
    request: Request,
    site: str,
    room: str,
    user: Operator,
    range: str = "24h",
    start: params.TimeText | None = None,
    end: params.TimeText | None = None,
) -> JSONResponse:
    web = _web(request)
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


# --- alerts ----------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, user: Operator) -> HTMLResponse:
    web = _web(request)
    lang = i18n.lang_of(request)
    store = web.alerts.store
    active = store.query(states=["firing", "acknowledged", "pending"], limit=500)
    past = store.query(states=["resolved"], limit=100)
    told = {a.id: store.notifications(alert_id=a.id) for a in active}
    names = {
        (s.id, r.id): f"{display_name(s.name, lang)} · {display_name(r.name, lang)}"
        for s in web.cfg.sites
        for r in s.rooms
    }
    return render(request, "alerts.html", active=active, past=past, told=told, names=names)


# --- gateways --------------------------------------------------------------------------


@router.get("/gateways", response_class=HTMLResponse)
def gateways_page(request: Request, user: Technician) -> HTMLResponse:
    return render(request, "gateways.html", gateways=_web(request).registry.all())


# --- reports ---------------------------------------------------------------------------


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, user: Manager) -> HTMLResponse:
    """Links to the daily log and the excursion report (dashboards/reports/api.py)."""
    web = _web(request)
    rooms = [(s, r) for s in web.cfg.sites for r in s.rooms]
    today = datetime.now(ZoneInfo(web.cfg.sites[0].timezone)).date() if web.cfg.sites else None
    return render(request, "reports.html", rooms=rooms, today=today)


# --- users -----------------------------------------------------------------------------


def _users_page(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
    users = _web(request).auth.users
    return render(
        request,
        "users.html",
        status,
        users=users.all(),
        sessions=users.live_sessions(),
        roles=ROLES,
        error=error,
    )


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, user: Admin, error: str | None = None) -> HTMLResponse:
    return _users_page(request, error=error)


@router.post("/users", response_class=HTMLResponse)
async def users_add(
    request: Request,
    user: Admin,
    name: Annotated[str, Form()],
    role: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    web = _web(request)
    try:
        await asyncio.to_thread(web.auth.users.add, name, role, password)
    except AuthError as exc:
        return _users_page(request, 422, error=str(exc))
    web.alerts.audit(actor=user.name, action="user.add", obj=f"user/{name}", after={"role": role})
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{name}/remove")
def users_remove(request: Request, name: str, user: Admin) -> Response:
    """Remove a user; their sessions end with them."""
    web = _web(request)
    if name == user.name:
        raise HTTPException(409, "you cannot remove yourself")
    if web.auth.users.remove(name):
        web.alerts.audit(actor=user.name, action="user.remove", obj=f"user/{name}")
    return RedirectResponse("/users", status_code=303)


def _logout_everywhere(request: Request, name: str, by: User) -> int:
    web = _web(request)
    if web.auth.users.get(name) is None:
        raise HTTPException(404, f"no user {name!r}")
    ended = web.auth.users.revoke_sessions(name)
    web.alerts.audit(
        actor=by.name, action="user.logout", obj=f"user/{name}", after={"sessions": ended}
    )
    return ended


@router.post("/users/{name}/logout")
def users_logout(request: Request, name: str, user: Admin) -> Response:
    """Log a user out everywhere (the admin's button)."""
    _logout_everywhere(request, name, user)
    return RedirectResponse("/users", status_code=303)


@api.delete("/api/users/{name}/sessions", summary="Log a user out everywhere (admin)")
def users_sessions_end(request: Request, name: str, user: Admin) -> dict[str, Any]:
    """End every session of ``name`` at once: the number that were live."""
    return {"user": name, "ended": _logout_everywhere(request, name, user)}


async def _page_errors(request: Request, exc: Exception) -> Response:
    """403 / 404 on a page as a page; the API keeps FastAPI's JSON."""
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/api/") or exc.status_code not in (403, 404):
        return await http_exception_handler(request, exc)
    return render(
        request, "error.html", exc.status_code, status_code=exc.status_code, detail=exc.detail
    )


def mount_ui(app: FastAPI, web: WebContext) -> None:
    app.state.web = web
    app.include_router(router)
    app.include_router(api)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(StarletteHTTPException, _page_errors)
