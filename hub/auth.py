"""Login, sessions and roles for the hub's pages and API.

Users live in the hub database (table ``users``); passwords are hashed with scrypt and a
per-user salt. A session is a row of the table ``sessions`` (a random id, the user, when it
was made, when it expires, when it was revoked); the cookie (HttpOnly, SameSite=Lax) carries
the session id and its expiry, signed with HMAC-SHA256 under a key kept in the hub's state
(:mod:`hub.hub_keys`: the same for every hub on it). Each request looks the session up with
its user in one query, so logging out, a password change, a removed user and an admin's "log
out everywhere" end sessions at once, and a changed role takes effect at once.

Roles are ranked (:class:`coldchain.access.Role`): operator (view, acknowledge) <
technician (+ gateways, maintenance) < manager (+ reports, rules, audit) < admin (+ users).
:class:`AccessMiddleware` refuses every request without a valid session except the open
paths (login, static files, the UI's font, ``/healthz``, ``/metrics``, the one-tap links ``/a/...``
and Twilio's signed callbacks), and every state-changing request from another origin or
without its token (:mod:`hub.csrf`). A route asks for a role with the one dependency,
:meth:`Auth.require` (a :data:`coldchain.access.Guard`, handed to every router factory),
which yields the request's :class:`~coldchain.access.Principal`. Failed logins are throttled
(:mod:`hub.throttle`). The login, logout, session and users routes are :mod:`hub.accounts`.

    coldchain users DATA_DIR add NAME --role operator [--password-file F | --generate]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import cookie_parser

from coldchain.access import ROLES, Principal, Role
from coldchain.statedb import Schema, StateTarget, open_state
from hub import csrf
from hub.hub_keys import shared_key
from hub.throttle import LoginThrottle

log = logging.getLogger(__name__)

COOKIE: Final = "coldchain_session"
LOGIN_COOKIE: Final = "coldchain_login"  # the login form's pre-session nonce
SESSION_TTL_S: Final = 12 * 3600  # one shift and a half
# Paths anyone may reach. /a/ and the Twilio callbacks carry their own signatures.
OPEN_PREFIXES: Final = ("/login", "/static/", "/fonts/", "/a/", "/api/alerts/twilio/", "/lang/")
OPEN_PATHS: Final = frozenset({"/healthz", "/metrics", "/favicon.ico"})
_SCRYPT: Final = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_SID_BYTES: Final = 32

SCHEMA = Schema(
    "users",
    (
        """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    "user" TEXT NOT NULL,          -- quoted: a reserved word in PostgreSQL
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions ("user");
""",
        # 2: a second factor for signatures (hub/second_factor.py): the TOTP secret, and the
        # time step of the last code used (a code signs once)
        """
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_step INTEGER;
""",
    ),
)


class AuthError(ValueError):
    """A user could not be added or changed; says why."""


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_user_name(name: str) -> None:
    """Raises :class:`AuthError` unless ``name`` is a user name: letters, digits, '-', '_'
    and '.', at least one letter or digit (so never a path such as ``..`` or ``a/b``)."""
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise AuthError(f"user name {name!r}: use letters, digits, '-', '_' or '.'")


class Users:
    """The users table and their sessions (thread-safe; calls are short)."""

    def __init__(self, path: StateTarget) -> None:
        self._db = open_state(path, SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _check_password(name: str, password: str) -> None:
        if len(password) < 8:
            raise AuthError(f"password for {name}: use at least 8 characters")

    def add(self, name: str, role: Role | str, password: str) -> Principal:
        if role not in ROLES:
            raise AuthError(f"role {role!r}: use one of {', '.join(ROLES)}")
        role = Role(role)
        check_user_name(name)
        self._check_password(name, password)
        salt = secrets.token_bytes(16)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO users (name, role, salt, hash, created_ms) VALUES (?,?,?,?,?)",
                    (name, role, salt, hash_password(password, salt), _now_ms()),
                )
            except self._db.IntegrityError:
                raise AuthError(f"user {name!r} exists already") from None
        return Principal(name, role)

    def set_password(self, name: str, password: str) -> int:
        """Change a user's password and end every session of the user (their number)."""
        self._check_password(name, password)
        salt = secrets.token_bytes(16)
        digest = hash_password(password, salt)
        with self._lock:
            cur = self._db.execute(
                "UPDATE users SET salt = ?, hash = ? WHERE name = ?", (salt, digest, name)
            )
            if cur.rowcount == 0:
                raise AuthError(f"no user {name!r}")
            return self._revoke_user(name)

    def remove(self, name: str) -> bool:
        """Remove a user, and with it every session of the user."""
        with self._lock:
            self._db.execute('DELETE FROM sessions WHERE "user" = ?', (name,))
            return self._db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def get(self, name: str) -> Principal | None:
        with self._lock:
            cur = self._db.execute("SELECT name, role FROM users WHERE name = ?", (name,))
            row = cur.fetchone()
        return Principal(row[0], Role(row[1])) if row else None

    def all(self) -> list[Principal]:
        with self._lock:
            rows = self._db.execute("SELECT name, role FROM users ORDER BY name").fetchall()
        return [Principal(n, Role(r)) for n, r in rows]

    def count(self) -> int:
        with self._lock:
            n: int = self._db.execute("SELECT count(*) FROM users").fetchone()[0]
        return n

    def check(self, name: str, password: str) -> Principal | None:
        """The user when the password is right, else None (same work either way)."""
        with self._lock:
            row = self._db.execute(
                "SELECT name, role, salt, hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        salt, want = (row[2], row[3]) if row else (b"\0" * 16, b"")
        got = hash_password(password, salt)
        if row is None or not hmac.compare_digest(got, want):
            return None
        return Principal(row[0], Role(row[1]))

    # --- the second factor (hub/second_factor.py) ---

    def set_totp(self, name: str, secret: str | None) -> None:
        """Enrol ``name`` with ``secret`` (None: remove their second factor)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE users SET totp_secret = ?, totp_step = NULL WHERE name = ?", (secret, name)
            )
            if cur.rowcount == 0:
                raise AuthError(f"no user {name!r}")

    def totp(self, name: str) -> str | None:
        """The user's TOTP secret, or None when they have no second factor."""
        with self._lock:
            row = self._db.execute(
                "SELECT totp_secret FROM users WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def use_totp_step(self, name: str, step: int) -> bool:
        """Spend the code of time ``step``: False when it (or a later one) was used."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE users SET totp_step = ? WHERE name = ? AND totp_secret IS NOT NULL "
                "AND (totp_step IS NULL OR totp_step < ?)",
                (step, name, step),
            )
            return cur.rowcount > 0

    # --- sessions ---

    def open_session(self, name: str, *, now_ms: int, expires_ms: int) -> str:
        """A new session of ``name``: its random id. Expired sessions are dropped."""
        sid = secrets.token_urlsafe(_SID_BYTES)
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires_ms < ?", (now_ms,))
            self._db.execute(
                'INSERT INTO sessions (id, "user", created_ms, expires_ms) VALUES (?,?,?,?)',
                (sid, name, now_ms, expires_ms),
            )
        return sid

    def session_user(self, sid: str, now_ms: int) -> Principal | None:
        """The user of a live session (not expired, not revoked, user still there)."""
        with self._lock:
            row = self._db.execute(
                'SELECT u.name, u.role FROM sessions s JOIN users u ON u.name = s."user" '
                "WHERE s.id = ? AND s.revoked_ms IS NULL AND s.expires_ms > ?",
                (sid, now_ms),
            ).fetchone()
        return Principal(row[0], Role(row[1])) if row else None

    def revoke_session(self, sid: str) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE sessions SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
                (_now_ms(), sid),
            )
        return cur.rowcount > 0

    def revoke_sessions(self, name: str) -> int:
        """End every session of ``name`` ("log out everywhere"): how many were live."""
        with self._lock:
            return self._revoke_user(name)

    def _revoke_user(self, name: str) -> int:
        now = _now_ms()
        cur = self._db.execute(
            "UPDATE sessions SET revoked_ms = ? "
            'WHERE "user" = ? AND revoked_ms IS NULL AND expires_ms > ?',
            (now, name, now),
        )
        return cur.rowcount

    def live_sessions(self) -> dict[str, int]:
        """The number of live sessions per user name."""
        now = _now_ms()
        with self._lock:
            rows = self._db.execute(
                'SELECT "user", count(*) FROM sessions '
                'WHERE revoked_ms IS NULL AND expires_ms > ? GROUP BY "user"',
                (now,),
            ).fetchall()
        return dict(rows)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionClaims(BaseModel):
    """What a session cookie says: the session's id and when it expires (epoch s). A
    correctly signed cookie whose claims are not exactly these is no session."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    sid: str = Field(
        pattern=r"^[A-Za-z0-9_-]{20,64}$", description="the session's id in the sessions table"
    )
    exp: int = Field(ge=0, lt=2**53, description="expiry, UTC epoch seconds")


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: its id, its user and the token its state-changing requests carry."""

    sid: str
    user: Principal
    csrf_token: str


class Sessions:
    """Signed session cookies ``base64(json claims).base64(hmac)`` over the sessions table."""

    def __init__(self, key: bytes, users: Users, *, ttl_s: int = SESSION_TTL_S) -> None:
        self.key, self.users, self.ttl_s = key, users, ttl_s

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())

    def issue(self, name: str, now_s: float | None = None) -> str:
        """A new session of ``name``: the cookie's value."""
        now = now_s if now_s is not None else time.time()
        exp = int(now + self.ttl_s)
        sid = self.users.open_session(name, now_ms=int(now * 1000), expires_ms=exp * 1000)
        claims = SessionClaims(sid=sid, exp=exp)
        body = _b64(claims.model_dump_json().encode())
        return f"{body}.{self._mac(body)}"

    def claims(self, token: str, now_s: float | None = None) -> SessionClaims | None:
        """The claims of a correctly signed, unexpired cookie, else None."""
        body, _, mac = token.partition(".")
        if not mac or not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        try:
            claims = SessionClaims.model_validate_json(_unb64(body))
        except (ValueError, ValidationError):  # bad base64, JSON or claims
            return None
        if claims.exp < (now_s if now_s is not None else time.time()):
            return None
        return claims

    def verify(self, token: str, now_s: float | None = None) -> Session | None:
        """The live session of a cookie's value, else None."""
        claims = self.claims(token, now_s)
        if claims is None:
            return None
        now_ms = int((now_s if now_s is not None else time.time()) * 1000)
        user = self.users.session_user(claims.sid, now_ms)
        if user is None:
            return None
        return Session(claims.sid, user, self.csrf_token(claims.sid))

    def revoke(self, token: str) -> bool:
        """End the session of a cookie's value (logging out)."""
        claims = self.claims(token)
        return claims is not None and self.users.revoke_session(claims.sid)

    def csrf_token(self, sid: str) -> str:
        return csrf.token(self.key, "session", sid)

    def login_token(self, nonce: str) -> str:
        """The login form's token: bound to the nonce in its pre-session cookie."""
        return csrf.token(self.key, "login", nonce)


def new_login_nonce() -> str:
    return secrets.token_urlsafe(18)


class Auth:
    """Users, sessions and the login throttle of one hub."""

    def __init__(
        self,
        data_dir: Path,
        *,
        state: StateTarget | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        state = data_dir / "hub.db" if state is None else state
        self.users = Users(state)
        # the same key on every hub of this state: a login holds on each web worker
        self.sessions = Sessions(shared_key(state, "session", data_dir / "session.key"), self.users)
        self.throttle = throttle or LoginThrottle()
        self.data_dir = data_dir

    def bootstrap(self) -> None:
        """With no user at all, make ``admin`` with a random password written to
        ``<data_dir>/admin-password`` (0600), so the first login is possible."""
        if self.users.count():
            return
        password = secrets.token_urlsafe(12)
        self.users.add("admin", Role.ADMIN, password)
        path = self.data_dir / "admin-password"
        path.touch(mode=0o600)
        path.write_text(password + "\n", encoding="utf-8")
        log.warning("no users yet: made 'admin'; its password is in %s", path)

    def session_of(self, cookies: Mapping[str, str]) -> Session | None:
        value = cookies.get(COOKIE)
        return self.sessions.verify(value) if value else None

    @staticmethod
    def require(role: Role) -> Any:
        """The route dependency (a :data:`coldchain.access.Guard`): the request's
        :class:`~coldchain.access.Principal` when it holds ``role``; else 401 without a
        session, 403 below the role (saying who holds what, and what is needed)."""

        def principal(request: Request) -> Principal:
            user: Principal | None = getattr(request.state, "user", None)
            if user is None:
                raise HTTPException(401, "log in first: POST /login")
            why = user.refusal(role, changes=request.method not in READS)
            if why is not None:
                raise HTTPException(403, why)
            return user

        return Depends(principal)


READS = frozenset({"GET", "HEAD", "OPTIONS"})
"""The methods that change nothing: all an auditor may send (:mod:`coldchain.access`)."""


def _cookies(header: str | None) -> dict[str, str]:
    """The cookies of a ``Cookie`` header, parsed as browsers send them and as the routes
    read them (Starlette's parser, which never raises). ``SimpleCookie`` raised on a name
    such as ``a<b`` (a 500 on every path, from a cookie any page on the hub's host can set)
    and dropped every cookie after one it could not read (a logout)."""
    return cookie_parser(header) if header else {}


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RefusedError(Exception):
    """A request the middleware answers itself: status and what to say."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class AccessMiddleware:
    """Puts the session (``request.state.session``), its user (``request.state.user``, a
    :class:`~coldchain.access.Principal`) and its CSRF token (``request.state.csrf_token``;
    each None without a session) on the request: :meth:`Auth.require` reads the user, the
    pages' renderer both. Refuses a request without a session (401 for the API, a redirect
    to the login page for pages) unless its path is open; refuses (403) a state-changing
    request from another origin or without its session's token, and a login without the
    token of its pre-session cookie (:mod:`hub.csrf`), but for the signed SMS links and
    callbacks.
    """

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app, self.auth = app, auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cookie = headers.get(b"cookie")
        cookies = _cookies(cookie.decode("latin-1") if cookie else None)
        session = self.auth.session_of(cookies)
        state = scope.setdefault("state", {})
        state["session"] = session
        state["user"] = session.user if session else None
        state["csrf_token"] = session.csrf_token if session else None
        path: str = scope["path"]
        if session is None and not is_open(path):
            await _unauthenticated(scope, send, path)
            return
        if scope["method"] not in csrf.SAFE_METHODS and not path.startswith(csrf.EXEMPT_PREFIXES):
            try:
                receive = await self._check_forgery(scope, receive, headers, cookies, session)
            except RefusedError as exc:
                await _refuse(send, path, exc)
                return
        await self.app(scope, receive, send)

    async def _check_forgery(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[bytes, bytes],
        cookies: Mapping[str, str],
        session: Session | None,
    ) -> Receive:
        """Raises :class:`RefusedError` unless the request is the hub's own; the ``receive``
        to go on with (the form's body replayed when the token was read from it)."""
        why = csrf.foreign_origin(headers, scope.get("scheme", "http"))
        if why is not None:
            raise RefusedError(403, f"cross-origin request refused: {why}")
        if scope["path"] == "/login":  # with or without a session: the form's own token
            nonce = cookies.get(LOGIN_COOKIE)
            if nonce is None:
                raise RefusedError(
                    403, "no login form token: open the login page again and log in from it"
                )
            expected = self.auth.sessions.login_token(nonce)
        elif session is not None:
            expected = session.csrf_token
        else:
            raise RefusedError(403, "no session: log in first")
        given = headers.get(csrf.HEADER.lower().encode())
        if given is not None:
            if csrf.same_token(expected, given.decode("latin-1")):
                return receive
            raise RefusedError(403, _BAD_TOKEN)
        field, receive = await _form_field(scope, receive, headers, csrf.FIELD)
        if not csrf.same_token(expected, field):
            raise RefusedError(403, _BAD_TOKEN)
        return receive


_BAD_TOKEN: Final = (
    f"missing or wrong CSRF token: send the session's token in {csrf.HEADER} "
    f"(GET /api/session) or the form's {csrf.FIELD}; reload the page and try again"
)


async def _form_field(
    scope: Scope, receive: Receive, headers: dict[bytes, bytes], name: str
) -> tuple[str | None, Receive]:
    """The field ``name`` of a url-encoded form body (read up to ``csrf.MAX_FORM_BYTES``),
    and a ``receive`` that hands the body on unchanged. Any other body has no field."""
    kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if kind != b"application/x-www-form-urlencoded":
        return None, receive
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None, receive  # the client went away
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > csrf.MAX_FORM_BYTES:
            raise RefusedError(413, f"a form of more than {csrf.MAX_FORM_BYTES} bytes")
        chunks.append(chunk)
        more = bool(message.get("more_body"))
    body = b"".join(chunks)
    values = parse_qs(body.decode("latin-1"), max_num_fields=100).get(name)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return (values[-1] if values else None), replay


async def _unauthenticated(scope: Scope, send: Send, path: str) -> None:
    if path.startswith("/api/"):
        body = b'{"detail":"log in first: POST /login"}'
        await _respond(send, 401, body, [(b"content-type", b"application/json")])
        return
    target = path + ("?" + scope["query_string"].decode() if scope.get("query_string") else "")
    location = "/login?next=" + quote(target, safe="")
    await _respond(send, 303, b"", [(b"location", location.encode())])


async def _refuse(send: Send, path: str, exc: RefusedError) -> None:
    if path.startswith("/api/"):
        body = json.dumps({"detail": exc.detail}).encode()
        await _respond(send, exc.status, body, [(b"content-type", b"application/json")])
        return
    text = (
        '<!doctype html><html><head><meta charset="utf-8"><title>403</title></head><body>'
        f'<h1>请求被拒绝 / Request refused</h1><p id="detail">{html.escape(exc.detail)}</p>'
        '<p><a href="/">返回 / Back</a></p></body></html>'
    )
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    await _respond(send, exc.status, text.encode(), headers)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
