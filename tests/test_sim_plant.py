"""The plant's pure parts: which quantity a point shows, encoding, devices' writes, the
journal, fault validation and the simulated copy of the site config."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

import firmware_configs
from coldchain.config.loader import check_site_file, load_site_config
from coldchain.config.site import RtuBus, SiteConfig
from coldchain.profiles.codec import decode_words
from coldchain.profiles.schema import ModbusPoint, ModbusProfile, PointKind, Table
from simulator.device import encode, probe_open_raw
from simulator.endpoints import simulated_config
from simulator.faults import FaultError, FaultSet
from simulator.image import RegisterImage
from simulator.journal import Journal
from simulator.pdu import SlaveError
from simulator.plant import Plant
from simulator.signals import signal_for
from tests.sites import shipped_profiles
from tests.test_sim_cli import SITE

PROFILES = shipped_profiles()
T0 = 1_764_300_000.0


def plant(seed: int = 1) -> Plant:
    return Plant(SiteConfig.model_validate(SITE), PROFILES, seed=seed, start=T0)


@pytest.mark.parametrize(
    ("kind", "name", "label"),
    [
        ("temperature", "probe_1", "air"),
        ("temperature", "evap_temperature", "coil"),
        ("temperature", "chute_3_temperature", "air"),
        ("alarm", "door_open_alarm", "door_alarm"),
        ("alarm", "high_temperature_alarm", "high_alarm"),
        ("alarm", "low_temperature_alarm", "low_alarm"),
        ("alarm", "probe_1_fault", "probe_fault"),
        ("alarm", "jam", "jam"),
        ("alarm", "e_stop", "e_stop"),
        ("alarm", "chute_1_full", "chute_full"),
        ("alarm", "alarm", "any_alarm"),
        ("alarm", "fault", "device_fault"),
        ("status", "fault_code", "fault_code"),
        ("status", "belt_speed", "belt_speed"),
        ("status", "compressor", "compressor_relay"),
        ("status", "conveyor_running", "conveyor_running"),
        ("status", "device_temperature", "device_temperature"),
        ("status", "battery", "battery"),
        ("counter", "parcels_sorted", "parcels"),
        ("counter", "parcels_rejected", "rejected"),
        ("setpoint", "setpoint", "setpoint"),
        ("setpoint", "low_alarm_threshold", "low_limit"),
        ("setpoint", "high_alarm_threshold", "high_limit"),
    ],
)
def test_point_names_pick_the_quantity(kind: str, name: str, label: str) -> None:
    assert signal_for(PointKind(kind), name)[0] == label


def point(**kw: object) -> ModbusPoint:
    return ModbusPoint.model_validate(
        {"name": "p", "kind": "counter", "table": "holding", "address": 0, **kw}
    )


def test_counters_wrap_and_other_integers_saturate() -> None:
    counter = point(type="uint16")
    assert encode(counter, 70_000) == [70_000 - 65_536]
    gauge = point(kind="temperature", type="int16", scale=0.1)
    assert decode_words(gauge, encode(gauge, 5000)).raw == 32767


def test_an_open_probe_serves_the_sentinel_or_an_impossible_value() -> None:
    with_sentinel = point(
        kind="temperature",
        type="int16",
        sentinels=[
            {"raw": 32767, "reason": "probe short"},
            {"raw": -32768, "reason": "probe open"},
        ],
    )
    assert probe_open_raw(with_sentinel) == -32768
    ranged = point(kind="temperature", type="int16", scale=0.1, valid_range=[-40, 125])
    bad = decode_words(ranged, [int(probe_open_raw(ranged))])
    assert bad.value is None
    assert "out of sensor range" in str(bad.reason)
    assert math.isnan(probe_open_raw(point(kind="temperature", type="float32")))


def test_plants_with_the_same_seed_serve_the_same_values() -> None:
    a, b, c = plant(1), plant(1), plant(2)
    for p in (a, b, c):
        p.advance(T0 + 3600, wall=T0)
    assert a.state() == b.state()
    assert a.state() != c.state()


def test_commissioning_writes_on_the_holding_map() -> None:
    p = plant()
    probe = p.devices["gw1/probe"]
    profile = probe.profile
    assert isinstance(profile, ModbusProfile)
    regs = {c.name: c.address for c in profile.config_registers}
    p.advance(T0, wall=T0)
    before = probe.values["temperature"]
    probe.write(Table.HOLDING, regs["temperature_offset"], [0xFFEC])  # -2.0 °C
    p.advance(T0 + 1, wall=T0 + 10)
    assert before is not None
    assert probe.values["temperature"] == pytest.approx(before - 2.0, abs=0.3)
    probe.write(Table.HOLDING, regs["baud"], [19200])
    assert probe.baud == 9600, "an XY-MD02 changes its baud after a power cycle"
    assert probe.power_cycle() == ["baud"]
    assert probe.baud == 19200
    assert probe.power_cycle() == [], "nothing waits any more"
    with pytest.raises(SlaveError, match="read-only"):
        p.devices["gw1/line"].write(Table.HOLDING, 0, [1, 2])  # the parcel counter
    with pytest.raises(SlaveError, match="does not exist"):
        probe.write(Table.HOLDING, 0x0200, [1])


def test_the_journal_keeps_changes_bounded() -> None:
    j = Journal(maxlen=3)
    assert j.record("s", sim_ms=1, wall_ms=10, value=1.0)
    assert not j.record("s", sim_ms=2, wall_ms=20, value=1.0), "repeats are not recorded"
    for i in range(3, 8):
        j.record("s", sim_ms=i, wall_ms=i * 10, value=float(i))
    assert [e.value for e in j.entries("s")] == [5.0, 6.0, 7.0]
    entry = j.value_at("s", 65)
    assert entry is not None
    assert entry.value == 6.0
    assert j.value_at("s", 1) is None
    with pytest.raises(KeyError, match="no series 'x'"):
        j.entries("x")


def test_faults_name_their_targets_and_refuse_what_cannot_be() -> None:
    faults = FaultSet(plant().targets())
    assert faults.add("silent", "probe").target == "gw1/probe"
    assert faults.add("power_cut", "chill").target == "depot/chill"
    assert faults.add("exception", "gw1/line").code == 4
    with pytest.raises(FaultError, match="bad_crc: device gw1/line is on a tcp bus"):
        faults.add("bad_crc", "line")
    with pytest.raises(FaultError, match="jam: room depot/chill has no sorting line"):
        faults.add("jam", "chill")
    with pytest.raises(FaultError, match=r"no device 'nope'; known: gw1/line, gw1/probe"):
        faults.add("garbage", "nope")
    with pytest.raises(FaultError, match="has no point 'rh'"):
        faults.add("probe_open", "probe", point="rh")
    assert [f.kind for f in faults.clear(target="probe")] == ["silent"]
    assert len(faults.clear()) == 2


def test_the_simulated_config_points_at_the_simulation(tmp_path: Path) -> None:
    endpoints = {
        "broker": "mqtt://127.0.0.1:18830",
        "buses": [
            {"gateway": "gw1", "bus": "rs485", "type": "rtu", "path": "/dev/pts/9"},
            {"gateway": "gw1", "bus": "plc", "type": "tcp", "host": "127.0.0.1", "port": 5020},
        ],
    }
    site = copy.deepcopy(SITE)
    site["gateways"][0]["buses"][0]["parity"] = "E"
    doc = simulated_config(SiteConfig.model_validate(site), endpoints)
    out = tmp_path / "sim.yaml"
    out.write_text(yaml.safe_dump(doc))
    result = check_site_file(out, PROFILES)
    assert result.config is not None, [e.format() for e in result.errors]
    rtu, tcp = result.config.gateways[0].buses
    assert isinstance(rtu, RtuBus)
    assert (rtu.port, rtu.parity) == ("/dev/pts/9", "N"), "a pty has no parity"
    assert (getattr(tcp, "host", None), tcp.port if tcp.type == "tcp" else 0) == ("127.0.0.1", 5020)
    assert doc["sites"][0]["rooms"][0]["class"] == "chilled"


def test_gaps_are_refused_unless_served_and_unreadable_ranges_always() -> None:
    carel, plc = PROFILES.get("carel-ir33plus"), PROFILES.get("sorting-line-plc")
    assert isinstance(carel, ModbusProfile)
    assert isinstance(plc, ModbusProfile)
    with pytest.raises(SlaveError, match="holding address 5 does not exist"):
        RegisterImage(carel).get(Table.HOLDING, 3, 3)
    assert RegisterImage(carel, serve_gaps=True).get(Table.HOLDING, 3, 3)[2] == 0
    with pytest.raises(SlaveError, match="address 7 does not exist"):
        RegisterImage(plc, serve_gaps=True).get(Table.HOLDING, 0, 8)
    with pytest.raises(SlaveError, match="address 0 does not exist"):
        RegisterImage(carel, serve_gaps=True).get(Table.INPUT, 0, 1)


def test_a_door_sensor_on_a_freezer_reads_the_warm_side_of_the_frame() -> None:
    county = load_site_config(firmware_configs.SITES_DIR / "county.yaml", PROFILES)
    p = Plant(county, PROFILES, seed=1, start=T0)
    p.advance(T0, wall=T0)
    door = p.devices["gw-shuangxi/freeze-door"]
    assert door.view.room.air < -18
    assert door.values["temperature"] == pytest.approx(door.view.room.surroundings, abs=1)
    probe = p.devices["gw-shuangxi/freeze-probe"]
    assert (probe.values["temperature"] or 0) < -18, "a probe in the room reads the room"


def test_the_sorting_lines_faults_show_on_its_plc() -> None:
    """e_stop, line_fault (with its code), chute_full and line_stop, on the example county's
    sorting line PLC: each stops the belt and raises its own point, none another's."""
    cfg = load_site_config(firmware_configs.SITES_DIR / "county.yaml", PROFILES)
    p = Plant(cfg, PROFILES, seed=1, start=T0)
    faults = FaultSet(p.targets())
    plc = p.devices["gw-centre-hall/sorting-plc"]
    flags = ("e_stop", "fault", "chute_1_full", "chute_4_full", "jam")

    def after(seconds: float) -> dict[str, float | None]:
        p.apply_faults(faults)
        p.advance(p.t + seconds, wall=p.t + seconds, refresh_all=True)
        return dict(plc.values)

    v = after(1)
    assert v["conveyor_running"] == 1
    assert all(v[f] == 0 for f in flags)
    assert v["fault_code"] == 0
    for kind, raised, code in (
        ("e_stop", {"e_stop"}, 0),
        ("line_fault", {"fault"}, 17),
        ("chute_full", {"chute_1_full", "chute_4_full"}, 0),
        ("line_stop", set(), 0),
    ):
        faults.add(kind, "sorting-hall", code=17 if kind == "line_fault" else None)
        v = after(5)
        counted = v["parcels_sorted"]
        v = after(60)
        assert {f for f in flags if v[f] == 1} == raised, kind
        assert v["fault_code"] == code, kind
        if kind == "chute_full":  # full chutes do not stop the belt by themselves
            assert v["conveyor_running"] == 1
        else:
            assert v["conveyor_running"] == 0, kind
            assert v["parcels_sorted"] == counted, kind
        faults.clear(kind)
    v = after(60)
    assert v["conveyor_running"] == 1
    with pytest.raises(FaultError, match=r"line_fault code must be 1\.\.65535"):
        faults.add("line_fault", "sorting-hall", code=70000)
    with pytest.raises(FaultError, match="e_stop: room chengqu-centre/cold-room-1 has no sorting"):
        faults.add("e_stop", "cold-room-1")
