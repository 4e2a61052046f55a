"""The gateways page says in plain words what to check on a Pi, from its last health report:
under-voltage (now, or since boot), throttling, a nearly full disk, an unsynchronised
clock; "ok" when all is well, "—" when nothing is known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coldchain.protocol.status import health_from
from dashboards.web.hints import pi_hints
from tests.hubkit import get, running_hub_service
from tests.services import Broker
from tests.test_config_warnings import DOOR, site

GIB = 1024**3


def report(**system: Any) -> dict[str, Any]:
    return {"v": 1, "ts": 1_767_225_600_000, "version": "0.1.0", "system": system}


def flags(**on: bool) -> dict[str, bool]:
    names = ("under_voltage", "frequency_capped", "throttled", "soft_temperature_limit")
    out = dict.fromkeys(names, False) | {f"{n}_since_boot": False for n in names}
    return out | on


def test_hints_from_the_system_report() -> None:
    ok = report(
        disk={"free_bytes": 20 * GIB, "total_bytes": 32 * GIB},
        throttling=flags(),
        clock_synchronised=True,
    )
    assert pi_hints(health_from(ok)) == []
    bad = report(
        disk={"free_bytes": 1 * GIB, "total_bytes": 32 * GIB},
        throttling=flags(under_voltage=True, under_voltage_since_boot=True, throttled=True),
        clock_synchronised=False,
    )
    assert pi_hints(health_from(bad)) == [
        ("hint_under_voltage", None),
        ("hint_throttled", None),
        ("hint_disk", 3),
        ("hint_clock", None),
    ]
    worn = report(storage_wear={"used_pct": 90, "pre_eol": "normal"})
    assert pi_hints(health_from(worn)) == [("hint_wear", None)]
    eol = report(storage_wear={"used_pct": 30, "pre_eol": "urgent"})
    assert pi_hints(health_from(eol)) == [("hint_wear", None)]
    young = report(storage_wear={"used_pct": 30, "pre_eol": "normal"})
    assert pi_hints(health_from(young)) == []
    behind = {**report(), "buffer": {"pending": 5000, "oldest_unsent_age_s": 1500.0}}
    assert pi_hints(health_from(behind)) == [("hint_backlog", 25)]
    keeping_up = {**report(), "buffer": {"pending": 5, "oldest_unsent_age_s": 1.2}}
    assert pi_hints(health_from(keeping_up)) == []
    hot = {**report(throttling=flags()), "cpu_temp_c": 83.4}
    assert pi_hints(health_from(hot)) == [("hint_hot", 83)]
    warm = {**report(throttling=flags()), "cpu_temp_c": 61.0}
    assert pi_hints(health_from(warm)) == []
    stepped = report(clock_synchronised=True, clock_step={"at_ms": 1, "step_ms": 14_400_000})
    assert pi_hints(health_from(stepped)) == [("hint_clock_step", 14_400)]
    tiny = report(clock_synchronised=True, clock_step={"at_ms": 1, "step_ms": -40, "marked": 2})
    assert pi_hints(health_from(tiny)) == []
    earlier = report(throttling=flags(under_voltage_since_boot=True))
    assert pi_hints(health_from(earlier)) == [("hint_under_voltage_since_boot", None)]
    assert pi_hints(health_from({"v": 1})) == []  # an older agent: nothing known
    assert pi_hints(None) == []


async def test_the_gateways_page_shows_them(tmp_path: Path, mosquitto: Broker) -> None:
    from coldchain.config.site import SiteConfig
    from tests.sites import shipped_profiles

    doc = site([DOOR], defrost={"at": ["02:00"]})
    cfg = SiteConfig.model_validate(doc)
    async with running_hub_service(cfg, shipped_profiles(), tmp_path / "hub", mosquitto.url) as hub:
        bad = report(
            disk={"free_bytes": 1 * GIB, "total_bytes": 32 * GIB},
            throttling=flags(under_voltage=True),
            clock_synchronised=False,
        )
        hub.registry.on_health("gw1", json.dumps(bad).encode())
        status, body = await get(f"{hub.url}/gateways")
        assert status == 200
        assert isinstance(body, str)
        bad["system"]["storage_wear"] = {"used_pct": 100, "pre_eol": "urgent"}
        bad["buffer"] = {"oldest_unsent_age_s": 3600.0}
        hub.registry.on_health("gw1", json.dumps(bad).encode())
        status, body = await get(f"{hub.url}/gateways")
        for text in (
            "电压不足：请检查电源和电源线",  # noqa: RUF001
            "存储将满：剩余 3%",  # noqa: RUF001
            "时钟未同步",
            "存储卡寿命将尽",
            "最早一条已等待 60 分钟",
        ):
            assert text in body, text
        failing = {
            **report(clock_synchronised=True),
            "devices": {
                "probe": {"polls": 40, "ok": 38, "success": 0.95},
                "door": {
                    "polls": 40,
                    "ok": 10,
                    "success": 0.25,
                    "failing_since_ms": 1_767_225_000_000,
                    "last_error": "bus rs485 (/dev/ttyUSB0) unit 3 input 1..2: no reply",
                },
            },
        }
        hub.registry.on_health("gw1", json.dumps(failing).encode())
        status, body = await get(f"{hub.url}/gateways")
        assert "probe: 95 %<br>door: 25 %<br>" in body
        assert "无数据，自" in body  # noqa: RUF001
        assert "unit 3 input 1..2: no reply</span>" in body
        assert body.count('class="device-error"') == 1, "only the failing device"
        hub.registry.on_health("gw1", json.dumps(report(clock_synchronised=True)).encode())
        status, body = await get(f"{hub.url}/gateways")
        assert '<td class="pi">正常</td>' in body
