"""Real headless Chromium for the web UI tests: Debian's ``/usr/bin/chromium`` (or
``$COLDCHAIN_CHROMIUM``) driven by Playwright through its executable path (Playwright's own
browser downloads are never used). A missing browser FAILS the test with how to install it.

    async with chromium() as browser:
        page = await logged_in(browser, hub.url, "op", "op-password")
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from hub.service import Hub


def chromium_path() -> Path:
    path = Path(os.environ.get("COLDCHAIN_CHROMIUM") or shutil.which("chromium") or "")
    if not path.is_file():
        pytest.fail(
            "the web UI tests need Chromium: `apt-get install chromium` (Debian; `make services` "
            "does it), or point COLDCHAIN_CHROMIUM at a Chromium or Chrome binary"
        )
    return path


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = chromium_path()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(path), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def logged_in(browser: Browser, base: str, name: str, password: str) -> Page:
    """A new page (own cookies) logged in through the login form."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    return page


def add_user(hub: Hub, name: str, role: str) -> str:
    """Add a user to the hub; returns its password."""
    password = f"{name}-password"
    hub.auth.users.add(name, role, password)
    return password
