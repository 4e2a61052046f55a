"""The shipped device profiles and the example site config load; broken profiles are
reported with file:line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

import firmware_configs
from coldchain.cli import main
from coldchain.config.errors import InvalidConfigError
from coldchain.config.loader import check_site_file
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import ModbusProfile, MqttProfile

COUNTY = firmware_configs.SITES_DIR / "county.yaml"


def test_every_shipped_profile_loads(profiles: ProfileRegistry) -> None:
    files = sorted(p.stem for p in firmware_configs.PROFILES_DIR.glob("*.yaml"))
    assert profiles.ids() == files
    for profile in profiles:
        assert len(profile.source) > 40, f"{profile.id}: name the manual or page in 'source'"
        if isinstance(profile, MqttProfile):
            assert "{name}" in profile.base_topic, f"{profile.id}: base_topic without {{name}}"


def test_the_profiles_the_foundation_needs_are_shipped(profiles: ProfileRegistry) -> None:
    wanted = {
        "xy-md02", "md02", "renke-rs-ws-n01-8", "dixell-xr60cx", "carel-ir33plus",
        "waveshare-modbus-rtu-io-8ch", "sorting-line-plc", "aqara-mccgq11lm",
        "aqara-wsdcgq11lm", "tasmota-ds18b20", "shelly-dw2", "shelly-plus-ht",
    }  # fmt: skip
    assert wanted <= set(profiles.ids())
    formats = {p.payload_format for p in profiles if isinstance(p, MqttProfile)}
    assert formats == {"zigbee2mqtt", "tasmota", "shelly-gen1", "shelly-gen2"}


def test_sorting_line_plc_declares_a_hole_between_its_blocks(profiles: ProfileRegistry) -> None:
    plc = profiles.get("sorting-line-plc")
    assert isinstance(plc, ModbusProfile)
    (hole,) = plc.unreadable
    holding = sorted(p.address for p in plc.points if p.table == "holding")
    below = [a for a in holding if a < hole.start]
    above = [a for a in holding if a > hole.end]
    assert below
    assert above
    assert len(below) + len(above) == len(holding)


def test_example_site_passes_config_check() -> None:
    result = check_site_file(COUNTY)
    assert [e.format() for e in result.errors] == []
    assert [w.format() for w in result.warnings] == []
    cfg = result.config
    assert cfg is not None
    devices = [d for g in cfg.gateways for d in g.devices]
    assert len(cfg.gateways) >= 4
    assert len(devices) >= 20
    bus_types = {b.type for g in cfg.gateways for b in g.buses}
    assert bus_types == {"rtu", "tcp", "mqtt"}
    for bus_type in ("rtu", "tcp"):  # several unit ids behind one line / one TCP gateway
        units = [
            {d.unit_id for d in g.devices if d.bus == b.id}
            for g in cfg.gateways
            for b in g.buses
            if b.type == bus_type
        ]
        assert max(len(u) for u in units) >= 3, bus_type


def test_config_check_command_on_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(COUNTY)]) == 0
    out = capsys.readouterr().out
    assert "county.yaml: ok: 4 sites, 10 rooms, 5 gateways, 30 devices, 0 warnings" in out


BROKEN = """\
id: broken-meter
protocol: modbus
model: M1
vendor: test
source: a test that breaks things
points:
  - name: temperature
    kind: temperature
    table: holding
    adress: 3
"""


def _errors(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(InvalidConfigError) as info:
        ProfileRegistry.load(tmp_path)
    return str(info.value)


def test_typo_in_a_profile_names_file_line_and_fix(tmp_path: Path) -> None:
    text = _errors(tmp_path, "broken-meter.yaml", BROKEN)
    path = tmp_path / "broken-meter.yaml"
    assert f"{path}:10:5: points[0].adress: unknown key 'adress'" in text
    assert "fix: did you mean 'address'?" in text
    assert "fix: add 'address: ...' (0-based protocol address)" in text
    assert f"{path}:7:5: points[0].address: missing required key 'address'" in text


def test_profile_id_must_match_the_file_name(tmp_path: Path) -> None:
    fixed = BROKEN.replace("adress", "address")
    text = _errors(tmp_path, "meter.yaml", fixed)
    assert f"{tmp_path / 'meter.yaml'}:1:1: id: profile id 'broken-meter' differs" in text
    assert "fix: rename the file to broken-meter.yaml or set 'id: meter'" in text


def test_point_inside_an_unreadable_range_is_rejected(tmp_path: Path) -> None:
    text = BROKEN.replace("adress: 3", "address: 50") + (
        "unreadable:\n  - {table: holding, start: 7, end: 99}\n"
    )
    out = _errors(tmp_path, "broken-meter.yaml", text)
    assert "point temperature: address 50 lies in an unreadable range 7-99" in out


def test_base_topic_takes_only_the_name_placeholder(tmp_path: Path) -> None:
    text = """\
id: bad-topic
protocol: mqtt
model: M
vendor: test
source: a test that breaks things
payload_format: tasmota
base_topic: tele/{device}
points:
  - {name: temperature, kind: temperature, topic: SENSOR, field: DS18B20.Temperature}
"""
    out = _errors(tmp_path, "bad-topic.yaml", text)
    assert f"{tmp_path / 'bad-topic.yaml'}:1:1:" in out
    assert "base_topic 'tele/{device}' has placeholder {device}" in out
    assert "fix: use {name} (the device name) and nothing else in braces" in out


def test_whole_payload_point_cannot_share_its_topic(tmp_path: Path) -> None:
    text = """\
id: shared-topic
protocol: mqtt
model: M
vendor: test
source: a test that breaks things
payload_format: shelly-gen1
base_topic: shellies/{name}
points:
  - {name: door, kind: door, topic: sensor/state, map: {open: 1, close: 0}}
  - {name: lux, kind: status, topic: sensor/state, field: lux}
"""
    out = _errors(tmp_path, "shared-topic.yaml", text)
    assert "point door takes the whole payload of topic 'sensor/state'" in out
    assert "fix: give each point a 'field' or its own topic" in out
