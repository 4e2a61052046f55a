"""Helpers for the hub tests: the hub service running in-process on a free port, and plain
HTTP calls to its API (urllib in a thread: a real client over a real socket)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from coldchain.config.site import SiteConfig
from coldchain.hub.service import Hub
from coldchain.profiles.registry import ProfileRegistry
from coldchain.store.base import Store


@contextlib.asynccontextmanager
async def running_hub_service(
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    data_dir: Path,
    broker: str,
    *,
    config_path: Path | None = None,
    store: Store | None = None,
) -> AsyncIterator[Hub]:
    hub = Hub(
        cfg,
        profiles,
        data_dir=data_dir,
        broker=broker,
        config_path=config_path,
        store=store,
        listen="127.0.0.1:0",
    )
    task = asyncio.create_task(hub.run(), name="hub")
    try:
        yield hub
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
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
