"""The routes that need the hub's users and sessions themselves (:class:`hub.auth.Auth`):
the login form and login (throttled, audited), logout, the session's user and token, and the
admin's users page (add, remove, log out everywhere). Pages are rendered with the UI's
templates (:class:`dashboards.web.render.Renderer`).

    app.include_router(accounts_router(auth, audit, Renderer(cfg)))
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coldchain.access import ROLES, Principal, Role
from dashboards.web import i18n
from dashboards.web.render import Renderer, safe_next
from hub import csrf
from hub.audit import AuditLog
from hub.auth import COOKIE, LOGIN_COOKIE, Auth, AuthError, Session, new_login_nonce
from hub.throttle import Lock

log = logging.getLogger(__name__)
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def accounts_router(auth: Auth, audit: AuditLog, ui: Renderer) -> APIRouter:
    """Login and logout (open), ``/api/session`` (any user), the users page and
    ``DELETE /api/users/{name}/sessions`` (admins). Logins, failures, locks and every
    change to a user go to ``audit``."""
    router = APIRouter()
    _login_routes(router, auth, audit, ui)
    _users_routes(router, auth, audit, ui)
    return router


def _locked(lock: Lock, lang: i18n.Lang) -> str:
    text = i18n.translate(f"login_locked.{lock.scope}", lang)
    return text.format(wait=i18n.wait(lock.seconds, lang))


def _login_form(
    auth: Auth,
    ui: Renderer,
    request: Request,
    status: int,
    *,
    next: str,
    error: str | None = None,
    name: str = "",
) -> HTMLResponse:
    """The login page, with the token of its pre-session cookie (made when missing)."""
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not _NONCE.fullmatch(nonce):
        nonce = new_login_nonce()
    token = auth.sessions.login_token(nonce)
    resp = ui.page(
        request,
        "login.html",
        status,
        next=safe_next(next),
        error=error,
        name=name,
        login_token=token,  # not csrf_token: a logged-in user's nav still needs the session's
    )
    resp.set_cookie(
        LOGIN_COOKIE, nonce, max_age=86400, httponly=True, samesite="strict", path="/login"
    )
    resp.headers[csrf.HEADER] = token  # for a script: send it back with the cookie
    return resp


def _login_routes(router: APIRouter, auth: Auth, audit: AuditLog, ui: Renderer) -> None:
    operator = auth.require(Role.OPERATOR)

    @router.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return _login_form(auth, ui, request, 200, next=next)

    @router.post("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login(
        request: Request,
        name: Annotated[str, Form()],
        password: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        """Check the password unless the account or the address is locked (then 429 at
        once, no password check); audit failures and locks; on success a new session."""
        lang = i18n.lang_of(request)
        address = request.client.host if request.client else "unknown"
        refused, earned = auth.throttle.begin(name, address)
        if refused is not None:
            error = _locked(refused, lang)
            resp = _login_form(auth, ui, request, 429, next=next, error=error, name=name)
            resp.headers["Retry-After"] = str(math.ceil(refused.seconds))
            return resp
        user = await asyncio.to_thread(auth.users.check, name, password)
        if user is None:
            who = f"user/{name[:64]}"
            audit.record(
                actor="anonymous", action="login.failed", obj=who, after={"address": address}
            )
            error = i18n.translate("login_failed", lang)
            if earned is not None:
                obj = who if earned.scope == "account" else f"address/{address}"
                after = {"address": address, "failures": earned.failures, "seconds": earned.seconds}
                audit.record(actor="hub", action="login.locked", obj=obj, after=after)
                log.warning(
                    "login locked for %.0f s: %s after %d failures",
                    earned.seconds,
                    obj,
                    earned.failures,
                )
                error += ("。" if lang == "zh-CN" else ". ") + _locked(earned, lang)
            return _login_form(auth, ui, request, 401, next=next, error=error, name=name)
        auth.throttle.succeeded(name, address)
        previous = request.cookies.get(COOKIE)
        if previous:  # the browser's session before this login ends: one session per cookie
            auth.sessions.revoke(previous)
        audit.record(
            actor=user.name, action="login", obj=f"user/{user.name}", after={"address": address}
        )
        done = RedirectResponse(safe_next(next), status_code=303)
        done.set_cookie(
            COOKIE,
            auth.sessions.issue(user.name),
            max_age=auth.sessions.ttl_s,
            httponly=True,
            samesite="lax",
            path="/",
        )
        return done

    @router.post("/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        """End the session on the hub (the cookie is no longer accepted), then drop it."""
        token = request.cookies.get(COOKIE)
        if token:
            auth.sessions.revoke(token)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @router.get(
        "/api/session", tags=["session"], summary="Who is logged in, and the token for changes"
    )
    def session_info(request: Request, user: Principal = operator) -> dict[str, str]:
        """The session's user and role, and the token every state-changing request of this
        session sends (header X-CSRF-Token)."""
        session: Session = request.state.session
        return {"user": user.name, "role": user.role.value, "csrf_token": session.csrf_token}


def _users_routes(router: APIRouter, auth: Auth, audit: AuditLog, ui: Renderer) -> None:
    admin = auth.require(Role.ADMIN)
    users = auth.users

    def users_page_of(request: Request, status: int = 200, error: str | None = None) -> Response:
        return ui.page(
            request,
            "users.html",
            status,
            users=users.all(),
            sessions=users.live_sessions(),
            roles=ROLES,
            error=error,
        )

    def logout_everywhere(name: str, by: Principal) -> int:
        if users.get(name) is None:
            raise HTTPException(404, f"no user {name!r}")
        ended = users.revoke_sessions(name)
        audit.record(
            actor=by.name, action="user.logout", obj=f"user/{name}", after={"sessions": ended}
        )
        return ended

    @router.get("/users", response_class=HTMLResponse, include_in_schema=False)
    def users_page(request: Request, user: Principal = admin, error: str | None = None) -> Response:
        return users_page_of(request, error=error)

    @router.post("/users", response_class=HTMLResponse, include_in_schema=False)
    async def users_add(
        request: Request,
        name: Annotated[str, Form()],
        role: Annotated[str, Form()],
        password: Annotated[str, Form()],
        user: Principal = admin,
    ) -> Response:
        try:
            await asyncio.to_thread(users.add, name, role, password)
        except AuthError as exc:
            return users_page_of(request, 422, error=str(exc))
        audit.record(actor=user.name, action="user.add", obj=f"user/{name}", after={"role": role})
        return RedirectResponse("/users", status_code=303)

    @router.post("/users/{name}/remove", include_in_schema=False)
    def users_remove(name: str, user: Principal = admin) -> Response:
        """Remove a user; their sessions end with them."""
        if name == user.name:
            raise HTTPException(409, "you cannot remove yourself")
        if users.remove(name):
            audit.record(actor=user.name, action="user.remove", obj=f"user/{name}")
        return RedirectResponse("/users", status_code=303)

    @router.post("/users/{name}/logout", include_in_schema=False)
    def users_logout(name: str, user: Principal = admin) -> Response:
        """Log a user out everywhere (the admin's button)."""
        logout_everywhere(name, user)
        return RedirectResponse("/users", status_code=303)

    @router.delete(
        "/api/users/{name}/sessions",
        tags=["session"],
        summary="Log a user out everywhere (admin)",
    )
    def users_sessions_end(name: str, user: Principal = admin) -> dict[str, Any]:
        """End every session of ``name`` at once: the number that were live."""
        return {"user": name, "ended": logout_everywhere(name, user)}
