"""The web UI on a phone (390 x 844) and a wall or desk (1920 x 1080), in headless Chromium:
no page scrolls sideways; each page's main action (a tile, Acknowledge, a gateway's scan,
a report, adding a user, a chart range) lies inside the screen; on the phone the navigation
opens behind its menu button and every link is then on screen; no two navigation items,
and no room title and its state badge, overlap (their boxes); the room in alarm comes first
and is named above the board. Screenshots of every page go to the tests' artefacts
(``$COLDCHAIN_ARTIFACTS``, default ``test-artifacts/`` in the checkout)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from coldchain.config.site import SiteConfig
from coldchain.reading import Reading, SeriesId
from tests.alertkit import PROFILES
from tests.browser import chromium, logged_in
from tests.hubkit import TEST_PASSWORD, TEST_USER, running_hub_service
from tests.services import Broker
from tests.test_alerts_api import _config

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("COLDCHAIN_ARTIFACTS") or REPO / "test-artifacts") / "screens"
TEMP = SeriesId("s1", "gw1", "probe", "temperature")
LONG = "一号冷鲜禽分割肉冷藏库（东区靠近装卸月台）Cold room 1, cut poultry, by the loading dock"  # noqa: RUF001
# each page, and the element a user comes to it for
PAGES = {
    "/": "#tile-s1--chill",
    "/alerts": "form.ack button",
    "/gateways": 'form.scan[data-gateway="gw1"] button',
    "/reports": "#excursions button",
    "/users": "#add-user button",
    "/rooms/s1/chill": ".ranges button",
}
OVERLAPS = """(pairs) => pairs.flatMap(([a, b]) => {
    const boxes = (sel) => [...document.querySelectorAll(sel)]
        .filter(e => e.offsetParent !== null).map(e => e.getBoundingClientRect());
    const out = [];
    const [as, bs] = [boxes(a), boxes(b)];
    as.forEach((p, i) => bs.forEach((q, j) => {
        if (a === b && j <= i) return;
        const x = Math.min(p.right, q.right) - Math.max(p.left, q.left);
        const y = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
        if (x > 1 && y > 1) out.push(`${a}[${i}] x ${b}[${j}]`);
    }));
    return out;
})"""
NAV_ITEMS = "nav .links > a, nav .links > .who, nav .links > form"


def long_named(tmp_path: Path) -> SiteConfig:
    doc = _config(tmp_path).model_dump(mode="json", exclude_unset=True, by_alias=True)
    doc["sites"][0]["rooms"][0]["name"] = LONG
    return SiteConfig.model_validate(doc)


async def inside(page: Page, selector: str) -> dict[str, Any]:
    """The first element of ``selector`` scrolled into view: its box against the screen."""
    el = page.locator(selector).first
    await el.scroll_into_view_if_needed()
    box = await el.bounding_box()
    assert box is not None, f"{selector} is not shown"
    width = await page.evaluate("window.innerWidth")
    return {"left": box["x"], "right": box["x"] + box["width"], "width": width}


@pytest.mark.slow
async def test_every_page_fits_a_phone_and_a_wall(tmp_path: Path, mosquitto: Broker) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cfg = long_named(tmp_path)
    # a deep data dir: the gateways page names a file in it, a word no line can hold
    data = tmp_path / "var_lib_coldchain_centre_hub_data_kept_here" / "hub"
    async with running_hub_service(cfg, PROFILES, data, mosquitto.url) as hub:
        now = hub.alerts.clock()
        # an hour of readings for the chart, the last one an alarm to act on
        readings = [Reading(TEMP, now - (60 - i) * 60_000, 2.0 + i / 20) for i in range(60)]
        await hub.store.write([*readings, Reading(TEMP, now, 9.5)])
        hub.alerts.on_readings([Reading(TEMP, now, 9.5)])
        async with chromium() as browser:
            for width, height in ((390, 844), (1920, 1080)):
                page = await logged_in(browser, hub.url, TEST_USER, TEST_PASSWORD)
                await page.set_viewport_size({"width": width, "height": height})
                for path, action in PAGES.items():
                    await page.goto(hub.url + path)
                    await page.wait_for_load_state("networkidle")
                    name = f"{width}x{height}{path.replace('/', '_')}.png"
                    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)
                    wide = await page.evaluate(
                        "[document.documentElement.scrollWidth, window.innerWidth]"
                    )
                    assert wide[0] <= wide[1], f"{path} at {width} px scrolls sideways: {wide}"
                    box = await inside(page, action)
                    assert box["left"] >= 0, (path, width, box)
                    assert box["right"] <= box["width"], (path, width, box)
                    pairs = [[NAV_ITEMS, NAV_ITEMS], [".tile .name", ".tile .state"]]
                    assert await page.evaluate(OVERLAPS, pairs) == [], (path, width)

                await page.goto(hub.url + "/")
                # the room in alarm first, and named above the board
                first = page.locator("section.site").first.locator(".tile").first
                assert await first.get_attribute("id") == "tile-s1--chill"
                shown = await first.locator(".name").text_content()
                assert shown
                assert shown in (await page.locator("#trouble").text_content() or "")
                links = page.locator("nav .links a[href='/alerts']")
                if width < 700:  # behind the menu, until it is opened
                    assert not await links.is_visible()
                    await page.click("nav .nav-button")
                assert await links.is_visible()
                for i in range(await page.locator(NAV_ITEMS).count()):
                    box = await inside(page, f":nth-match({NAV_ITEMS}, {i + 1})")
                    assert box["right"] <= box["width"], (width, i, box)
                assert await page.evaluate(OVERLAPS, [[NAV_ITEMS, NAV_ITEMS]]) == []
                await page.screenshot(path=str(ARTIFACTS / f"{width}x{height}_menu.png"))
                await page.context.close()
