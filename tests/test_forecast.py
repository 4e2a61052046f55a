"""The forecast rule with a controlled clock: a room warming towards its limit is warned of
before it gets there, with the time left; a door opening, a defrost and a rise that stops are
not read as trouble coming; the message says when the limit is reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from coldchain.alerting.evaluator import Transition
from coldchain.alerting.rules import ForecastRule
from coldchain.config.site import SiteConfig
from tests.alertkit import T0, Run, evaluator, site
from tests.services import Broker, until

RULE = {"id": "forecast", "kind": "forecast", "horizon": "30min", "window": "20min"}
LIMIT = 4.0  # the chilled room's high limit


def forecast_run(**rule: Any) -> Run:
    doc = site()
    doc["alert_rules"] = [{**RULE, **rule}]
    return Run(evaluator(SiteConfig.model_validate(doc)))


def forecasts(run: Run) -> list[Transition]:
    return [t for t in run.out if t.key.startswith("forecast/") and "/probe/" in t.key]


def steady(run: Run, until: float, value: float) -> None:
    run.until(until, step=0.5, probe__temperature=value)


def rise(run: Run, start: float, until: float, base: float, per_min: float) -> None:
    m = (run.t - T0) / 60_000
    while m < until:
        m += 0.5
        run.at(m, ("probe/temperature", base + per_min * (m - start)))


def test_a_room_warming_towards_its_limit_is_warned_of_before_it_gets_there() -> None:
    run = forecast_run()
    steady(run, 30, 2.0)
    assert forecasts(run) == []
    rise(run, 30, 60, 2.0, 0.05)  # a failed compressor: +0.05 °C/min, the limit at minute 70
    fired = [t for t in forecasts(run) if t.to == "firing"]
    assert fired, [(t.to, t.value) for t in forecasts(run)]
    first = fired[0]
    at = (first.ts_ms - T0) / 60_000
    left = (LIMIT - (2.0 + 0.05 * (at - 30))) / 0.05  # the true time to the limit then
    assert at < 70 - 10, f"warned at minute {at:.1f}, less than 10 min before the limit"
    assert first.value is not None
    assert first.limit == LIMIT
    assert abs(first.value - left) <= 3, (first.value, left)
    assert first.value <= 30


def test_a_rise_that_stops_resolves() -> None:
    run = forecast_run()
    steady(run, 30, 2.0)
    rise(run, 30, 45, 2.0, 0.06)
    assert any(t.to == "firing" for t in forecasts(run))
    steady(run, 90, 2.9)  # the compressor came back: level again, below the limit
    assert forecasts(run)[-1].to == "resolved"


def test_a_door_opening_is_not_trouble_coming() -> None:
    run = forecast_run()
    steady(run, 30, 2.0)
    run.at(30, ("di/door_1", 1.0))
    rise(run, 30, 34, 2.0, 0.5)  # the door open 4 min: +2 °C
    run.at(34, ("di/door_1", 0.0))
    m = 34.0
    while m < 60:  # pulled back down in 10 min, then level
        m += 0.5
        run.at(m, ("probe/temperature", max(2.0, 4.0 - 0.2 * (m - 34))))
    assert forecasts(run) == []


def test_a_defrost_is_not_trouble_coming() -> None:
    run = forecast_run()
    steady(run, 30, 2.0)
    run.at(30, ("ctl/defrost", 1.0))
    rise(run, 30, 45, 2.0, 0.1)  # the coil heats the room: +1.5 °C
    run.at(45, ("ctl/defrost", 0.0))
    m = 45.0
    while m < 90:
        m += 0.5
        run.at(m, ("probe/temperature", max(2.0, 3.5 - 0.1 * (m - 45))))
    assert forecasts(run) == []


def test_a_slow_drift_and_noise_raise_nothing() -> None:
    run = forecast_run()
    m = 0.0
    while m < 240:  # +0.01 °C/min (under min_slope) with ±0.1 °C of noise
        m += 0.5
        noise = 0.1 if int(m * 2) % 3 == 0 else -0.1
        run.at(m, ("probe/temperature", 1.0 + 0.01 * m + noise))
    assert forecasts(run) == []


def test_the_message_says_when_the_limit_is_reached() -> None:
    from coldchain.alerting.facts import AlertFacts, Message
    from coldchain.alerting.messages import render

    facts = AlertFacts(
        alert_id=1,
        rule_kind="forecast",
        severity="warning",
        site="双溪禽类冷库 Shuangxi poultry",
        room="冷鲜禽 Chilled poultry",
        quantity="temperature",
        value=25.0,
        limit=4.0,
        unit="°C",
        direction="above",
        since_ms=T0,
        device="probe",
    )
    msg = Message("warning", (facts,), T0 + 60_000)
    en, zh = render(msg, "en"), render(msg, "zh-CN")
    assert "reaches its limit in ~25 min" in en, en
    assert "limit 4" in en, en
    assert "预计超温 约25分钟后" in zh, zh
    assert "上限4" in zh, zh
    gone = render(Message("resolved", (facts,), T0 + 60_000), "en")
    assert "25 min" not in gone, gone


def test_settings_are_checked() -> None:
    with pytest.raises(ValidationError):
        ForecastRule.model_validate({**RULE, "horizon": "0s"})
    with pytest.raises(ValidationError):
        ForecastRule.model_validate({**RULE, "min_samples": 2})


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_on_the_simulator_a_failed_compressor_is_forecast_before_the_alarm(
    tmp_path: Path,
) -> None:
    """The example site on one clock (:mod:`tests.sitekit`): the simulator's thermal model
    and controllers, the agents' pollers, the hub's alert service with a forecast rule. A
    compressor failing in a chilled room is warned of before the room's limit alarm."""
    from coldchain.config.loader import load_site_config
    from firmware_configs import SITES_DIR
    from tests.sitekit import SiteRun, describe
    from tests.sites import shipped_profiles

    profiles = shipped_profiles()
    base = load_site_config(SITES_DIR / "county.yaml", profiles)
    # the rule's defaults, as bench/bench_forecast.py chose them
    rule = ForecastRule.model_validate({"id": "forecast", "kind": "forecast"})
    cfg = base.model_copy(update={"alert_rules": [*base.alert_rules, rule]})
    start = 1_767_542_400.0  # Monday 2026-01-05 00:00 in Shanghai
    async with SiteRun(cfg, profiles, tmp_path, start=start, seed=1) as run:
        await run.run_for(1800.0)
        before = [describe(a) for a in run.raised() if a.fired_ms is not None]
        assert not before, before
        run.inject("compressor_failure", "chengqu-centre/cold-room-1")
        injected = run.clock.now_ms()
        for _ in range(18):  # up to 3 h, in 10-minute steps, until the alarm
            await run.run_for(600.0)
            raised = [a for a in run.raised() if a.fired_ms is not None and a.room == "cold-room-1"]
            if any(a.rule == "temperature-high" and a.severity == "alarm" for a in raised):
                break
    forecast = [a for a in raised if a.rule == "forecast"]
    alarm = [a for a in raised if a.rule == "temperature-high" and a.severity == "alarm"]
    assert forecast, "no forecast: " + "; ".join(map(describe, raised))
    assert alarm, "no alarm: " + "; ".join(map(describe, raised))
    lead_min = (alarm[0].fired_ms - forecast[0].fired_ms) / 60_000  # type: ignore[operator]
    assert lead_min >= 10, f"forecast only {lead_min:.1f} min before the alarm"
    assert forecast[0].fired_ms > injected  # type: ignore[operator]


@pytest.mark.slow
async def test_the_room_page_draws_where_the_trend_reaches_the_limit(
    tmp_path: Path, mosquitto: Broker
) -> None:
    import time

    from coldchain.reading import Reading, SeriesId
    from tests.alertkit import PROFILES
    from tests.browser import add_user, chromium, logged_in
    from tests.hubkit import call, running_hub_service
    from tests.test_alerts_api import _config

    base = _config(tmp_path)
    rule = ForecastRule.model_validate({**RULE, "delay": "0s"})
    cfg = base.model_copy(update={"alert_rules": [*base.alert_rules, rule]})
    temp = SeriesId("s1", "gw1", "probe", "temperature")
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        now = time.time_ns() // 1_000_000 // 60_000 * 60_000
        t0 = now - 40 * 60_000  # 20 min level at 2.0 °C, then +0.05 °C/min: 3.0 °C now
        readings = [
            Reading(temp, t0 + i * 60_000, 2.0 if i <= 20 else 2.0 + 0.05 * (i - 20))
            for i in range(41)
        ]
        await hub.store.write(readings)
        assert hub.ingest.on_readings is not None
        hub.ingest.on_readings(readings)  # as the ingest does after its commit
        data: dict[str, Any] = {}

        async def forecast_drawn() -> bool:  # once the evaluation has run (not a fixed sleep)
            nonlocal data
            status, data = await call("GET", f"{hub.url}/rooms/s1/chill/data?range=1h")
            assert status == 200
            return bool(data["forecasts"])

        await until(forecast_drawn, "the room's chart data carries the forecast")
        [f] = data["forecasts"]
        assert f["name"] == "probe/temperature"
        assert f["from"] == [now, 3.0]
        assert f["to"][1] == LIMIT
        assert abs(f["to"][0] - (now + 20 * 60_000)) <= 60_000  # 1 °C to go at 0.05 °C/min
        status, alerts = await call("GET", f"{hub.url}/api/alerts")
        assert status == 200
        assert any(a["rule"] == "forecast" and a["state"] == "firing" for a in alerts)
        password = add_user(hub, "op", "operator")
        async with chromium() as browser:
            page = await logged_in(browser, hub.url, "op", password)
            await page.goto(f"{hub.url}/rooms/s1/chill?range=1h")
            await page.wait_for_selector("#chart[data-forecasts]", timeout=10_000)
            assert await page.get_attribute("#chart", "data-forecasts") == "1"
            await page.goto(f"{hub.url}/alerts")
            text = await page.text_content("#active") or ""
            assert "预计超温" in text, text  # the UI's default language
            assert "分钟后 (限值 4 °C)" in text, text
