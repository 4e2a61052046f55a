"""``config check`` warns where the alert rules cannot do their job: a room whose rules would
watch only points not declared room air, a profile point that does not say where it measures,
and a chilled or frozen room whose defrosts nobody reports (the bug: the pre-cooling room's
normal defrost raised a warning in the demo); and where a gateway would send its readings to
its own sensor broker instead of the centre's (the bug: with no ``uplink`` section an agent
published to ``mqtt://localhost:1883`` without complaint)."""

from __future__ import annotations

from typing import Any

import yaml

from coldchain.config.loader import check_site_file
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import ModbusProfile
from firmware_configs import SITES_DIR
from tests import sites
from tests.sites import one_gateway_site, shipped_profiles

PROFILES = shipped_profiles()


CENTRE = {"broker": "mqtts://mqtt.county.example:8883"}


def site(devices: list[dict[str, Any]], **room: Any) -> dict[str, Any]:
    return one_gateway_site(
        rooms=[sites.room("fz", "Freezer", "frozen", **room)],
        buses=[sites.rtu_bus("bus", "/dev/ttyUSB0"), sites.mqtt_bus("wifi", "localhost")],
        devices=devices,
        uplink=CENTRE,
    )


def warnings(doc: dict[str, Any], profiles: ProfileRegistry = PROFILES) -> list[str]:
    result = check_site_file("site.yaml", profiles, text=yaml.safe_dump(doc))
    assert result.errors == [], [e.format() for e in result.errors]
    return [w.format() for w in result.warnings]


CONTROLLER = {"id": "ctl", "profile": "dixell-xr60cx", "bus": "bus", "unit_id": 1, "room": "fz"}
DOOR = {"id": "door", "profile": "shelly-dw2", "bus": "wifi", "room": "fz"}


def test_a_room_watched_only_through_a_door_sensor_temperature_is_warned() -> None:
    found = warnings(site([DOOR], defrost={"at": ["02:00"]}))
    assert len(found) == 1, found
    assert (
        "room s1/fz: its temperature rules watch no point: none of its temperature points "
        "is declared room air (door/temperature (device))" in found[0]
    )
    assert "say 'role: room' for it in its profile" in found[0]


def test_a_room_with_room_air_and_a_defrost_flag_is_not_warned() -> None:
    assert warnings(site([CONTROLLER, DOOR])) == []


def test_a_cold_room_without_a_defrost_source_is_warned() -> None:
    probe = {"id": "probe", "profile": "xy-md02", "bus": "bus", "unit_id": 2, "room": "fz"}
    (found,) = warnings(site([probe]))
    assert (
        "room s1/fz: frozen room with temperature rules and no defrost source (no controller "
        "point of kind defrost, no 'defrost:' schedule): its defrosts cannot be told from a "
        "failure" in found
    )
    assert warnings(site([probe], defrost={"at": ["02:00", "14:00"], "duration": "20min"})) == []


def test_a_profile_point_without_a_role_is_warned() -> None:
    xy = PROFILES.get("xy-md02")
    assert isinstance(xy, ModbusProfile)
    raw = xy.model_dump(exclude_unset=True)
    for p in raw["points"]:
        p.pop("role")
    raw["id"] = "xy-md02-norole"
    registry = ProfileRegistry([*PROFILES, ModbusProfile.model_validate(raw)])
    probe = {"id": "probe", "profile": "xy-md02-norole", "bus": "bus", "unit_id": 2, "room": "fz"}
    found = warnings(site([CONTROLLER, probe]), registry)
    assert len(found) == 1, found
    assert (
        "device probe: profile xy-md02-norole does not say where temperature measures, so the "
        "room's rules take it as 'other', not the room's air" in found[0]
    )


def test_the_example_site_has_no_coverage_warnings() -> None:
    result = check_site_file(SITES_DIR / "county.yaml", PROFILES)
    assert result.errors == []
    assert [w.format() for w in result.warnings] == []


def test_loading_a_config_to_run_it_skips_the_checks_that_only_warn() -> None:
    # An agent loading a gateway of 2,000 points built every watch of the site twice for
    # warnings it then threw away: 8 MB more peak memory at start (bench_agent) and the time.
    text = yaml.safe_dump(site([DOOR]))
    reviewed = check_site_file("site.yaml", PROFILES, text=text)
    assert reviewed.warnings, "the site of this test must have a warning to skip"
    run = check_site_file("site.yaml", PROFILES, text=text, advice=False)
    assert run.config is not None
    assert run.errors == []
    assert run.warnings == []


def test_a_gateway_whose_uplink_is_its_own_sensor_broker_is_warned() -> None:
    doc = site([CONTROLLER, DOOR])
    del doc["uplink"]  # as a new user wrote it: the default, mqtt://localhost:1883
    (found,) = warnings(doc)
    assert (
        "gateways[0].buses[1]: gateway gw1: the uplink broker mqtt://localhost:1883 is this "
        "gateway's own sensor broker (bus wifi at localhost:1883); its readings would never "
        "leave the Pi" in found
    )
    assert "set uplink.broker to the centre's broker" in found
    for uplink in ("mqtt://127.0.0.1", "mqtt://127.0.1.1:1883"):  # the same broker, other names
        assert len(warnings({**doc, "uplink": {"broker": uplink}})) == 1, uplink


def test_an_uplink_elsewhere_or_on_another_port_is_not_warned() -> None:
    doc = site([CONTROLLER, DOOR])
    assert warnings(doc) == []  # the centre's broker
    # a loopback uplink on another port (a tunnel to the centre, say) is not the sensors'
    assert warnings({**doc, "uplink": {"broker": "mqtt://localhost:18830"}}) == []
    # mqtts on loopback defaults to 8883, not the sensors' 1883
    assert warnings({**doc, "uplink": {"broker": "mqtts://localhost"}}) == []
    # a gateway without a local MQTT bus cannot talk to itself
    no_mqtt = one_gateway_site(
        rooms=[sites.room("fz", "Freezer", "frozen")],
        buses=[sites.rtu_bus("bus", "/dev/ttyUSB0")],
        devices=[CONTROLLER],
    )
    assert warnings(no_mqtt) == []
