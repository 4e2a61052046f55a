"""Only room air is the room's air. The bug: a Shelly DW2 door sensor's own temperature (on
the warm side of a freezer door) defaulted to role ``room``, so it raised "温度过高 20°C" for
a freezer at -20 °C and put Max 24 °C, MKT 18.4 °C and ongoing excursions in its reports."""

from __future__ import annotations

import pytest

from coldchain.alerting.evaluator import Evaluator
from coldchain.alerting.watches import build_watches, effective_rules
from coldchain.config.loader import load_site_config
from coldchain.config.topology import site_points
from coldchain.profiles.schema import MqttProfile, PointKind, PointRole
from coldchain.reading import Quality, Reading, SeriesId
from dashboards.grafana.common import room_points as grafana_room_points
from dashboards.reports.load import room_points as report_room_points
from firmware_configs import SITES_DIR
from tests.sites import shipped_profiles

PROFILES = shipped_profiles()
COUNTY = load_site_config(SITES_DIR / "county.yaml", PROFILES)
T0 = 1_767_225_600_000
MIN = 60_000
DOOR_TEMP = SeriesId("shuangxi-poultry", "gw-shuangxi", "freeze-door", "temperature")
PROBE = SeriesId("shuangxi-poultry", "gw-shuangxi", "freeze-probe", "temperature")
DOOR = SeriesId("shuangxi-poultry", "gw-shuangxi", "freeze-door", "door")


def test_door_sensor_temperature_is_not_room_air() -> None:
    point = PROFILES.get("shelly-dw2").point("temperature")
    assert point.role is PointRole.DEVICE
    info = {p.sid: p for p in site_points(COUNTY, PROFILES)}[DOOR_TEMP]
    assert info.role is not PointRole.ROOM


def test_door_sensor_temperature_raises_no_threshold_alarm() -> None:
    points = site_points(COUNTY, PROFILES)
    watches = build_watches(COUNTY, points, effective_rules(COUNTY))
    assert not [w.key for w in watches if str(DOOR_TEMP) in w.inputs]
    ev = Evaluator(COUNTY, points, watches, now_ms=T0)
    out = []
    for m in range(40):  # the freezer at -20 °C, its door sensor on the warm side at 20 °C
        t = T0 + m * MIN
        out += ev.feed(
            [
                Reading(DOOR_TEMP, t, 20.0, Quality.GOOD),
                Reading(PROBE, t, -20.0, Quality.GOOD),
                Reading(DOOR, t, float(m % 2), Quality.GOOD),
            ]
        )
        out += ev.tick(t)
    frozen = [t for t in out if t.watch.room == "frozen-1" and t.watch.quantity == "temperature"]
    assert frozen == [], [(t.key, t.to) for t in frozen]


def test_door_sensor_temperature_is_not_in_the_rooms_reports_or_dashboards() -> None:
    refs = report_room_points(COUNTY, PROFILES, "shuangxi-poultry", "frozen-1")
    assert str(DOOR_TEMP) not in {r.series for r in refs}
    assert str(PROBE) in {r.series for r in refs}
    board = grafana_room_points(site_points(COUNTY, PROFILES), "shuangxi-poultry", "frozen-1")
    assert DOOR_TEMP not in {p.sid for p in board.temperature}


def test_a_point_that_does_not_say_is_not_room_air() -> None:
    profile = MqttProfile.model_validate(
        {
            "id": "no-role",
            "model": "x",
            "vendor": "x",
            "source": "a test",
            "payload_format": "tasmota",
            "base_topic": "tele/{name}",
            "points": [{"name": "t", "kind": "temperature", "topic": "SENSOR", "field": "T"}],
        }
    )
    point = profile.point("t")
    assert point.role is PointRole.OTHER
    assert not point.role_declared


@pytest.mark.parametrize("pid", PROFILES.ids())
def test_every_climate_point_of_every_profile_says_where_it_measures(pid: str) -> None:
    for p in PROFILES.get(pid).points:
        if p.kind in (PointKind.TEMPERATURE, PointKind.HUMIDITY):
            assert p.role_declared, f"profile {pid}: point {p.name} declares no role"
