"""The room page, the gateways page, the users page and the display-wall board on a hub
with known readings, in real headless Chromium: the chart draws the readings with the door's
open period shaded; min / max / mean / MKT are the values worked out by hand; long ranges
come from rollups; a technician sees the gateways; an admin adds a user who can log in."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coldchain.reading import Reading, SeriesId
from tests.alertkit import PROFILES
from tests.browser import add_user, chromium, logged_in
from tests.hubkit import running_hub_service, session_header
from tests.services import Broker
from tests.test_alerts_api import _config

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

MIN = 60_000
TEMP = SeriesId("s1", "gw1", "probe", "temperature")
DOOR = SeriesId("s1", "gw1", "di", "door_1")


def _json(url: str) -> Any:
    req = urllib.request.Request(url, headers=session_header(url))
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def mkt_by_hand(pairs: list[tuple[int, float]]) -> float:
    """MKT in °C of (minutes, °C): ΔH/R = 10 000 K."""
    total = sum(n for n, _ in pairs)
    mean = sum(n * math.exp(-10_000 / (t + 273.15)) for n, t in pairs) / total
    return 10_000 / -math.log(mean) - 273.15


@pytest.mark.slow
async def test_room_chart_pages_and_roles(tmp_path: Path, mosquitto: Broker) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        t0 = (time.time_ns() // 1_000_000 // MIN - 50) * MIN  # 50 minutes ago, on a minute
        readings = [Reading(TEMP, t0 + i * MIN, 2.0 if i < 30 else 6.0) for i in range(50)]
        readings += [Reading(DOOR, t0, 0.0), Reading(DOOR, t0 + 10 * MIN, 1.0)]
        readings += [Reading(DOOR, t0 + 15 * MIN, 0.0)]
        await hub.store.write(readings)
        feed = hub.ingest.on_readings  # what the ingest calls after its commit
        assert feed is not None
        feed(readings)

        # the figures, by hand: 30 minutes at 2 °C, 20 at 6 °C
        q = f"start={t0}&end={t0 + 50 * MIN}"
        data = await asyncio.to_thread(_json, f"{u}/rooms/s1/chill/data?{q}")
        stats = data["stats"]
        assert (stats["min"], stats["max"]) == (2.0, 6.0)
        assert math.isclose(stats["mean"], 3.6)
        assert math.isclose(stats["mkt"], mkt_by_hand([(30, 2.0), (20, 6.0)]), abs_tol=1e-9)
        assert stats["mkt"] > stats["mean"]
        assert data["doors"] == [[t0 + 10 * MIN, t0 + 15 * MIN]]
        assert data["limits"]["temperature"] == [0.0, 4.0]
        assert data["step_ms"] is None, "an hour is drawn from raw readings"
        marks = {(a["rule"], a["ts_ms"]) for a in data["alerts"]}
        assert ("temperature-high", t0 + 30 * MIN) in marks, marks
        week = await asyncio.to_thread(_json, f"{u}/rooms/s1/chill/data?range=7d")
        assert week["step_ms"] is not None, "a week comes from rollups"
        [probe] = [s for s in week["series"] if s["name"] == "probe/temperature"]
        assert 0 < len(probe["ts"]) <= 720
        assert math.isclose(week["stats"]["mean"], 3.6)

        password = add_user(hub, "tech", "technician")
        async with chromium() as browser:
            page = await logged_in(browser, u, "tech", password)
            await page.goto(f"{u}/rooms/s1/chill?range=1h")
            await page.wait_for_selector("#chart[data-points]", timeout=10_000)
            assert await page.get_attribute("#chart", "data-points") == "50"
            assert await page.get_attribute("#chart", "data-doors") == "1"
            assert await page.get_attribute("#chart", "data-alerts") == str(len(marks))
            assert await page.locator("#chart canvas").count() == 1
            assert (await page.text_content("#stat-max") or "").startswith("6.0")
            # the canvas holds drawn pixels, not just a blank element
            painted = await page.evaluate(
                """() => { const c = document.querySelector('#chart canvas');
                  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
            )
            assert painted > 1000
            # the time axis: 24-hour, in the site's zone; the legend: names, the limits' values
            ticks = (await page.get_attribute("#chart", "data-ticks") or "").split("|")
            assert len(ticks) >= 3
            assert all(re.fullmatch(r"(\d\d-\d\d )?\d\d:\d\d", t) for t in ticks), ticks
            local = datetime.fromtimestamp(t0 / 1000, ZoneInfo("Asia/Shanghai"))
            assert ticks[0].startswith(local.strftime("%m-%d "))
            legend = await page.locator("#chart .u-legend .u-label").all_text_contents()
            assert "probe 温度 (°C)" in legend, legend
            assert "限值 上限 4 °C" in legend, legend
            assert not any("probe/temperature" in x for x in legend)
            # the controller's week of refrigeration (a row a day, none known yet: "—")
            assert await page.locator("#refrigeration tr").count() == 1 + 7
            assert await page.locator("#duty-hours span").count() == 24

            resp = await page.goto(f"{u}/gateways")
            assert resp is not None
            assert resp.status == 200
            assert await page.locator("#gw-gw1").count() == 1

            # the display wall: no chrome, every room a tile
            await page.goto(f"{u}/?wall=1")
            assert await page.locator("nav").count() == 0
            assert await page.locator(".tile").count() == 2
            assert await page.locator("body.wall").count() == 1
            # 6 °C is past the chilled room's 4 °C: the config's rule alarms at once
            assert await page.get_attribute("#tile-s1--chill", "data-state") == "alarm"
            assert "6.0 °C" in (await page.text_content("#tile-s1--chill") or "")

            # an admin adds a user, who can then log in
            admin = await logged_in(browser, u, "admin", _admin_password(tmp_path))
            await admin.goto(f"{u}/users")
            await admin.fill("form.login input[name=name]", "zhao-min")
            await admin.select_option("form.login select[name=role]", "manager")
            await admin.fill("form.login input[name=password]", "zhao-min-secret")
            await admin.click("form.login button[type=submit]")
            await admin.wait_for_selector("#users >> text=zhao-min")
            manager = await logged_in(browser, u, "zhao-min", "zhao-min-secret")
            assert "zhao-min (manager)" in (await manager.text_content("nav") or "")

            # a manager's reports: the page, a PDF download, the CSV of the readings' day
            await manager.click("nav a[href='/reports']")
            await manager.wait_for_selector("#daily")
            async with manager.expect_download() as info:
                await manager.click("#daily tr:nth-child(2) a:has-text('PDF')")
            download = await info.value
            assert download.suggested_filename.startswith("daily-s1-chill-")
            assert download.suggested_filename.endswith(".pdf")
            path = await download.path()
            assert path.read_bytes().startswith(b"%PDF")
            day = datetime.fromtimestamp(t0 / 1000, ZoneInfo("Asia/Shanghai")).date()
            csv_text = await manager.evaluate(
                f"""async () => await (await fetch(
                    '/reports/daily?site=s1&room=chill&date={day}&format=csv')).text()"""
            )
            assert "probe/temperature" in csv_text or "probe" in csv_text, csv_text[:300]
            assert "6" in csv_text


def _admin_password(tmp_path: Path) -> str:
    return (tmp_path / "hub" / "admin-password").read_text(encoding="utf-8").strip()
