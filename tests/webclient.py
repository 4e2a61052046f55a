"""A script's view of the hub's web side: plain HTTP (urllib in a thread, no redirects
followed) with the cookies and CSRF tokens a real client sends.

    status, headers, body = await raw("POST", url, cookie=..., form={...}, headers={...})
    session = await script_login(hub.url, "admin", password)   # Session | None
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from hub.auth import COOKIE, LOGIN_COOKIE
from hub.csrf import FIELD, HEADER


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _raw(
    method: str,
    url: str,
    *,
    cookie: str | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if cookie:
        req.add_header("Cookie", cookie)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, _lower(resp.headers.items()), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, _lower(err.headers.items()), err.read().decode()


def _lower(items: object) -> dict[str, str]:
    """Header names in lower case (HTTP/1.1 servers send them so; tests look them up so)."""
    return {k.lower(): v for k, v in items}  # type: ignore[attr-defined]


async def raw(
    method: str,
    url: str,
    *,
    cookie: str | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of one request; redirects are answers, not followed."""
    return await asyncio.to_thread(_raw, method, url, cookie=cookie, form=form, headers=headers)


def cookie_value(set_cookie: str, name: str) -> str | None:
    """The value ``name`` is set to in a Set-Cookie header (several may be folded)."""
    for part in set_cookie.replace(",", ";").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def login_form(base: str) -> tuple[str, str]:
    """Open the login page as a script: (the pre-session cookie, the form's token)."""
    status, headers, _ = await raw("GET", f"{base}/login")
    assert status == 200
    nonce = cookie_value(headers["set-cookie"], LOGIN_COOKIE)
    assert nonce
    return f"{LOGIN_COOKIE}={nonce}", headers[HEADER.lower()]


@dataclass(frozen=True)
class ScriptSession:
    cookie: str  # "coldchain_session=..."
    token: str  # the session's CSRF token (GET /api/session)

    def headers(self) -> dict[str, str]:
        return {"Cookie": self.cookie, HEADER: self.token}


async def script_login(
    base: str, name: str, password: str, *, next: str = "/"
) -> tuple[int, dict[str, str], ScriptSession | None]:
    """Log in the way a script does: the login page's cookie and token, then the form, then
    the session's token from /api/session. (status, headers of the login answer, session)."""
    pre, token = await login_form(base)
    form = {"name": name, "password": password, "next": next, FIELD: token}
    status, headers, _ = await raw("POST", f"{base}/login", cookie=pre, form=form)
    value = cookie_value(headers.get("set-cookie", ""), COOKIE)
    if status != 303 or not value:
        return status, headers, None
    cookie = f"{COOKIE}={value}"
    got, _, body = await raw("GET", f"{base}/api/session", cookie=cookie)
    assert got == 200, body
    return status, headers, ScriptSession(cookie, json.loads(body)["csrf_token"])
