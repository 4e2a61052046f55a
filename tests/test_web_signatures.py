"""Signing on the alerts page, in headless Chromium: an operator signs an alarm's
acknowledgement with their password (a wrong one is refused on the form, nothing signed),
and once the alarm has resolved closes it with its cause and corrective action; the
signatures are listed on the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldchain.reading import Reading, SeriesId
from tests.alertkit import PROFILES
from tests.browser import add_user, chromium, logged_in
from tests.hubkit import running_hub_service
from tests.services import Broker, until
from tests.test_signatures import _config

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

TEMP = SeriesId("s1", "gw1", "probe", "temperature")


@pytest.mark.timeout(120)
async def test_an_operator_signs_and_closes_an_alarm_on_the_alerts_page(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with (
        running_hub_service(_config(), PROFILES, tmp_path / "hub", mosquitto.url) as hub,
        chromium() as browser,
    ):
        password = add_user(hub, "li-op", "operator")
        page = await logged_in(browser, hub.url, "li-op", password)
        now = hub.alerts.clock()
        hub.alerts.on_readings([Reading(TEMP, now, 9.5)])
        [alert] = [a for a in hub.alerts.open.values() if a.rule == "temperature-high"]
        await page.goto(f"{hub.url}/alerts")
        row = page.locator(f"#alert-{alert.id}")
        await row.locator("details.sign summary").click()
        form = row.locator("form.sign")
        await form.locator("input[name=comment]").fill("door closed, stock checked")
        await form.locator("input[name=password]").fill("not-my-password")
        await form.locator("button").click()
        await page.wait_for_function(
            "document.querySelector('form.sign .err').textContent.length > 0"
        )
        assert "nothing was signed" in (await form.locator(".err").text_content() or "")
        assert hub.alerts.get(alert.id).acked_ms is None
        await form.locator("input[name=password]").fill(password)
        await form.locator("button").click()
        await page.wait_for_selector(f"#alert-{alert.id} ul.signed li", timeout=10_000)
        signed = await row.locator("ul.signed").text_content() or ""
        assert "已确认 · li-op" in signed  # the UI speaks Chinese by default
        assert "door closed, stock checked" in signed
        assert hub.alerts.get(alert.id).acked_by == "li-op"

        hub.alerts.on_readings([Reading(TEMP, now + 120_000, 2.5)])
        await until(lambda: hub.alerts.get(alert.id).state == "resolved", "the alert resolved")
        await page.goto(f"{hub.url}/alerts")
        past = page.locator(f"#past-{alert.id}")
        await past.locator("details.sign summary").click()
        close = past.locator("form.sign")
        await close.locator("input[name=cause]").fill("door held open during loading")
        await close.locator("input[name=corrective_action]").fill("moved stock to room 2")
        await close.locator("input[name=password]").fill(password)
        await close.locator("button").click()
        await page.wait_for_selector(f"#past-{alert.id} ul.signed li:nth-child(2)", timeout=10_000)
        text = await past.locator("ul.signed").text_content() or ""
        assert "已关闭 · li-op" in text
        assert "door held open during loading; moved stock to room 2" in text
        assert await past.locator("form.sign").count() == 0  # closed once
