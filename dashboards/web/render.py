"""The UI's pages, rendered from its templates (``templates/``), for the pages of this package
and for the hub's own (login, users: :mod:`hub.accounts`).

Every page gets the language (:mod:`dashboards.web.i18n`), ``t`` to translate, ``when`` to
show a time in the site's zone, the logged-in user and the session's CSRF token. Those two
are read from the request's state, where the hub's access middleware puts them on every
request (``request.state.user``: a :class:`coldchain.access.Principal` or None;
``request.state.csrf_token``: a str or None); a request without them renders as logged out.

    ui = Renderer(cfg)
    return ui.page(request, "board.html", sites=...)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from coldchain.config.site import SiteConfig
from dashboards.fonts import WebFont
from dashboards.web import i18n

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def safe_next(target: str | None) -> str:
    """Where to go next: only a path on this hub (no //host, no scheme), else ``/``."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


class Renderer:
    """Renders the templates for one site config (its first site's time zone); ``font``:
    the UI's Chinese font subset (:mod:`dashboards.fonts`), served from ``/fonts/`` and
    kept in ``font_cache``; None: the browser's own fonts."""

    def __init__(
        self, cfg: SiteConfig, font: WebFont | None = None, font_cache: Path | None = None
    ) -> None:
        self.tz = ZoneInfo(cfg.sites[0].timezone) if cfg.sites else None
        self.font = font
        self.font_cache = font_cache
        # whether no hub runs the alerts now (hub/leader.py; set by the hub): every page
        # says so, as no alarm is being sent
        self.no_leader: Callable[[], bool] = lambda: False

    def when(self, ms: int | None) -> str:
        """A time in the site's zone, to the second; ``—`` for none."""
        if ms is None:
            return "—"
        return datetime.fromtimestamp(ms / 1000, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def page(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        """``template`` rendered with the common values and ``values``."""
        lang = i18n.lang_of(request)
        context = {
            "request": request,
            "lang": lang,
            "t": lambda key: i18n.translate(key, lang),
            "when": self.when,
            "what": lambda row: i18n.condition(row.kind, row.quantity, row.direction, lang),
            "user": getattr(request.state, "user", None),
            "csrf_token": getattr(request.state, "csrf_token", None),
            "wall": request.query_params.get("wall") == "1",
            "cjk_font": f"/fonts/{self.font.name}" if self.font else None,
            "no_leader": self.no_leader(),
            **values,
        }
        return templates.TemplateResponse(request, template, context, status_code=status)

    async def errors(self, request: Request, exc: Exception) -> Response:
        """The app's HTTP error handler: 403 / 404 on a page as a page; the API (and every
        other status) keeps FastAPI's JSON."""
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith("/api/") or exc.status_code not in (403, 404):
            return await http_exception_handler(request, exc)
        return self.page(
            request, "error.html", exc.status_code, status_code=exc.status_code, detail=exc.detail
        )
