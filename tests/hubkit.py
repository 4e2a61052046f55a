"""Helpers for the hub tests: the hub service running in-process on a free port, and plain
HTTP calls to its API (urllib in a thread: a real client over a real socket), logged in as
an admin made for the test (``session_header``: its session cookie and the session's CSRF
token, as a script sends them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from coldchain.clock import WALL, Clock
from coldchain.config.site import SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.store.base import Store
from hub.auth import COOKIE
from hub.csrf import HEADER as CSRF_HEADER
from hub.service import Hub
from tests.postgres import engine_settings

TEST_USER, TEST_PASSWORD = "test-admin", "test-admin-password"
# hub URL -> the headers of its test admin's session
_SESSIONS: dict[str, dict[str, str]] = {}


def session_header(url: str) -> dict[str, str]:
    """The headers logging a request to ``url`` in as the test admin of its hub: the
    session cookie and the CSRF token its state-changing requests carry."""
    for base, headers in _SESSIONS.items():
        if url.startswith(base):
            return dict(headers)
    return {}


@contextlib.asynccontextmanager
async def running_hub_service(
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    data_dir: Path,
    broker: str,
    *,
    config_path: Path | None = None,
    store: Store | None = None,
    clock: Clock = WALL,
    password: str | None = None,
) -> AsyncIterator[Hub]:
    engine = engine_settings()  # the test's PostgreSQL database, under hub_engine
    if engine is not None:
        cfg = cfg.model_copy(update={"hub": cfg.hub.model_copy(update={"state": engine})})
    hub = Hub(
        cfg,
        profiles,
        data_dir=data_dir,
        broker=broker,
        config_path=config_path,
        store=store,
        listen="127.0.0.1:0",
        clock=clock,
        password=password,
    )
    if hub.auth.users.get(TEST_USER) is None:  # a hub restarted on its data dir has it
        hub.auth.users.add(TEST_USER, "admin", TEST_PASSWORD)
    cookie = hub.auth.sessions.issue(TEST_USER)
    session = hub.auth.sessions.verify(cookie)
    assert session is not None
    _SESSIONS[hub.url] = {"Cookie": f"{COOKIE}={cookie}", CSRF_HEADER: session.csrf_token}
    task = asyncio.create_task(hub.run(), name="hub")
    try:
        yield hub
    finally:
        _SESSIONS.pop(hub.url, None)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _get(url: str) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers=session_header(url))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as err:
        body, status = err.read().decode(), err.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


async def get(url: str) -> tuple[int, Any]:
    """GET ``url``; (status, parsed JSON or text)."""
    return await asyncio.to_thread(_get, url)


def _call(
    method: str,
    url: str,
    body: Any = None,
    *,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data, hdrs = None, {**session_header(url), **(headers or {})}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text, status = resp.read().decode(), resp.status
    except urllib.error.HTTPError as err:
        text, status = err.read().decode(), err.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


async def call(method: str, url: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    """``method`` on ``url`` as the test admin, with a JSON ``body`` or a ``form``: (status,
    the answer as JSON, or its text)."""
    return await asyncio.to_thread(_call, method, url, body, **kw)
