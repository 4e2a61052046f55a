"""Login and roles for the hub's pages and API.

Users live in the hub database (table ``users``); passwords are hashed with scrypt and a
per-user salt. A session is a signed cookie (HMAC-SHA256 with a key kept in the hub's data
dir; HttpOnly, SameSite=Lax) naming the user and its expiry; the user's role is read from
the database on each request, so a changed role or a removed user takes effect at once.

Roles are ranked: operator (view, acknowledge) < technician (+ gateways, maintenance) <
manager (+ reports, rules, audit) < admin (+ users). :class:`AccessMiddleware` refuses
every request without a valid session except the open paths (login, static files,
``/healthz``, ``/metrics``, the signed one-tap links ``/a/...`` and Twilio's signed
callbacks); routes then ask for a role with ``app.state.authorize(request, role)``.

    python -m dashboards.auth DATA_DIR add NAME --role operator [--password-file F]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import HTTPException, Request

log = logging.getLogger(__name__)

ROLES: Final = ("operator", "technician", "manager", "admin")
COOKIE: Final = "coldchain_session"
SESSION_TTL_S: Final = 12 * 3600  # one shift and a half
# Paths anyone may reach. /a/ and the Twilio callbacks carry their own signatures.
OPEN_PREFIXES: Final = ("/login", "/static/", "/a/", "/api/alerts/twilio/", "/lang/")
OPEN_PATHS: Final = frozenset({"/healthz", "/metrics", "/favicon.ico"})
_SCRYPT: Final = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
"""


class AuthError(ValueError):
    """A user could not be added or changed; says why."""


def rank(role: str) -> int:
    return ROLES.index(role)


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str

    def allows(self, role: str) -> bool:
        return rank(self.role) >= rank(role)


class Users:
    """The users table (thread-safe; calls are short)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def add(self, name: str, role: str, password: str) -> User:
        if role not in ROLES:
            raise AuthError(f"role {role!r}: use one of {', '.join(ROLES)}")
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise AuthError(f"user name {name!r}: use letters, digits, '-', '_' or '.'")
        if len(password) < 8:
            raise AuthError(f"password for {name}: use at least 8 characters")
        salt = secrets.token_bytes(16)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO users (name, role, salt, hash, created_ms) VALUES (?,?,?,?,?)",
                    (name, role, salt, hash_password(password, salt), time.time_ns() // 10**6),
                )
            except sqlite3.IntegrityError:
                raise AuthError(f"user {name!r} exists already") from None
        return User(name, role)

    def remove(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def get(self, name: str) -> User | None:
        with self._lock:
            cur = self._db.execute("SELECT name, role FROM users WHERE name = ?", (name,))
            row = cur.fetchone()
        return User(row[0], row[1]) if row else None

    def all(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT name, role FROM users ORDER BY name").fetchall()
        return [User(n, r) for n, r in rows]

    def count(self) -> int:
        with self._lock:
            n: int = self._db.execute("SELECT count(*) FROM users").fetchone()[0]
        return n

    def check(self, name: str, password: str) -> User | None:
        """The user when the password is right, else None (same work either way)."""
        with self._lock:
            row = self._db.execute(
                "SELECT name, role, salt, hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        salt, want = (row[2], row[3]) if row else (b"\0" * 16, b"")
        got = hash_password(password, salt)
        if row is None or not hmac.compare_digest(got, want):
            return None
        return User(row[0], row[1])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Signed session cookies: ``base64(json).base64(hmac)``."""

    def __init__(self, key: bytes, *, ttl_s: int = SESSION_TTL_S) -> None:
        self.key, self.ttl_s = key, ttl_s

    @classmethod
    def from_dir(cls, data_dir: Path) -> Sessions:
        """With the key in ``data_dir/session.key``, made once (0600) and kept."""
        path = data_dir / "session.key"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_bytes(secrets.token_bytes(32))
        return cls(path.read_bytes())

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())

    def issue(self, name: str, now_s: float | None = None) -> str:
        exp = int((now_s if now_s is not None else time.time()) + self.ttl_s)
        body = _b64(json.dumps({"u": name, "exp": exp}, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str, now_s: float | None = None) -> str | None:
        """The user name of a valid, unexpired token, else None."""
        body, _, mac = token.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            claim = json.loads(_unb64(body))
        except ValueError:
            return None
        if claim.get("exp", 0) < (now_s if now_s is not None else time.time()):
            return None
        name = claim.get("u")
        return name if isinstance(name, str) else None


class Auth:
    """Users and sessions of one hub."""

    def __init__(self, data_dir: Path) -> None:
        self.users = Users(data_dir / "hub.db")
        self.sessions = Sessions.from_dir(data_dir)
        self.data_dir = data_dir

    def bootstrap(self) -> None:
        """With no user at all, make ``admin`` with a random password written to
        ``<data_dir>/admin-password`` (0600), so the first login is possible."""
        if self.users.count():
            return
        password = secrets.token_urlsafe(12)
        self.users.add("admin", "admin", password)
        path = self.data_dir / "admin-password"
        path.touch(mode=0o600)
        path.write_text(password + "\n", encoding="utf-8")
        log.warning("no users yet: made 'admin'; its password is in %s", path)

    def user_of(self, cookie_header: str | None) -> User | None:
        if not cookie_header:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie_header)
        except ValueError:
            return None
        morsel = jar.get(COOKIE)
        name = self.sessions.verify(morsel.value) if morsel else None
        return self.users.get(name) if name else None

    def authorize(self, request: Request, role: str) -> str:
        """The name of the request's user when it holds ``role``; else 401 / 403."""
        user: User | None = getattr(request.state, "user", None)
        if user is None:
            raise HTTPException(401, "log in first: POST /login")
        if not user.allows(role):
            raise HTTPException(403, f"{user.name} is {user.role}; this needs {role} or above")
        return user.name


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AccessMiddleware:
    """Puts the session's user in ``request.state.user``; refuses a request without one
    (401 for the API, a redirect to the login page for pages) unless its path is open."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app, self.auth = app, auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cookie = headers.get(b"cookie")
        user = self.auth.user_of(cookie.decode("latin-1") if cookie else None)
        scope.setdefault("state", {})["user"] = user
        path: str = scope["path"]
        if user is not None or is_open(path):
            await self.app(scope, receive, send)
            return
        if path.startswith("/api/"):
            body = b'{"detail":"log in first: POST /login"}'
            await _respond(send, 401, body, [(b"content-type", b"application/json")])
            return
        target = path + ("?" + scope["query_string"].decode() if scope.get("query_string") else "")
        location = "/login?next=" + quote(target, safe="")
        await _respond(send, 303, b"", [(b"location", location.encode())])


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- the command line ------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, *, prog: str = "coldchain users") -> int:
    """``coldchain users DATA_DIR add|remove|list`` (also ``python -m dashboards.auth``)."""
    ap = argparse.ArgumentParser(prog=prog, description="the hub's users and their roles")
    ap.add_argument("data_dir", type=Path, help="the hub's data dir (holds hub.db)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-file", type=Path, help="default: asked on the terminal")
    rm = sub.add_parser("remove", help="remove a user")
    rm.add_argument("name")
    sub.add_parser("list", help="list the users")
    args = ap.parse_args(argv)
    users = Users(args.data_dir / "hub.db")
    try:
        if args.cmd == "add":
            if args.password_file is not None:
                password = args.password_file.read_text(encoding="utf-8").strip()
            else:
                import getpass

                password = getpass.getpass(f"password for {args.name}: ")
            users.add(args.name, args.role, password)
        elif args.cmd == "remove" and not users.remove(args.name):
            raise AuthError(f"no user {args.name!r}")
        elif args.cmd == "list":
            for u in users.all():
                print(f"{u.name}\t{u.role}")  # noqa: T201 - a CLI
    except AuthError as exc:
        print(f"error: {exc}")  # noqa: T201 - a CLI
        return 1
    finally:
        users.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
