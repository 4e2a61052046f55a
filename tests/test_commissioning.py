"""Commissioning on the bus (``coldchain modbus scan|read|set``), against the simulator's
slaves on a pty (RTU) and over TCP, run as the technician runs it: the real command line in
a subprocess."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from coldchain.profiles.schema import ConfigRegister, ModbusProfile, Table
from edge_agent.commission import CachedReader, identify, plan_settings
from edge_agent.scan import (
    LineSetting,
    default_timeout,
    parse_bauds,
    parse_units,
    probe,
    probe_wire_time,
    rtu_link,
    scan_rtu,
)
from simulator.device import SimDevice
from simulator.runtime import Simulation
from tests.simkit import load_site
from tests.sites import device, one_gateway_site, room, rtu_bus, shipped_profiles, tcp_bus

PROFILES = shipped_profiles()
LINE_BAUD = 9600
# (device id, profile, unit id, the baud it runs at): a line as a technician may find it,
# with a Renke at its factory 4800 and a relay board moved to 19200 among 9600 devices.
RTU_DEVICES = [
    ("xy", "xy-md02", 1, 9600),
    ("md", "md02", 3, 9600),
    ("renke", "renke-rs-ws-n01-8", 2, 4800),
    ("relay", "waveshare-modbus-rtu-io-8ch", 5, 19200),
    ("carel", "carel-ir33plus", 7, 9600),
    ("dixell", "dixell-xr60cx", 8, 9600),
]
TCP_DEVICES = [("plc", "sorting-line-plc", 2), ("ctl", "dixell-xr60cx", 4)]


def site_doc() -> dict[str, Any]:
    rtu = [
        device(d, p, bus="rs485", unit_id=u, room="hall" if p.startswith("sorting") else "chill")
        for d, p, u, _ in RTU_DEVICES
    ]
    tcp = [
        device(d, p, bus="plc", unit_id=u, room="hall" if p.startswith("sorting") else "chill")
        for d, p, u in TCP_DEVICES
    ]
    return one_gateway_site(
        site_id="depot",
        site_name="Depot",
        rooms=[room("chill", "Chilled"), room("hall", "Sorting hall", "sorting")],
        buses=[
            rtu_bus("rs485", "/dev/ttyUSB0", baud=LINE_BAUD),
            tcp_bus("plc", "10.0.0.9", port=502),
        ],
        devices=rtu + tcp,
    )


def commission(dev: SimDevice, name: str, value: int) -> None:
    """Set a simulated device the way its buyer would find it: write the register, then
    switch it off and on."""
    profile = dev.profile
    assert isinstance(profile, ModbusProfile)
    reg = next(r for r in profile.config_registers if r.name == name)
    dev.write(Table.HOLDING, reg.address, [reg.code_of(value)])
    dev.power_cycle()


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulation]:
    config = load_site(tmp_path / "site.yaml", site_doc(), PROFILES)
    async with Simulation(config, PROFILES, seed=5, tick=3600) as s:
        for dev_id, _profile, _unit, baud in RTU_DEVICES:
            if baud != LINE_BAUD:
                commission(s.plant.devices[f"gw1/{dev_id}"], "baud", baud)
        yield s


async def coldchain(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coldchain.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def answers(sim: Simulation, unit: int, baud: int) -> bool:
    link = rtu_link(sim.rtu[0].path, LineSetting(baud, "N"), 0.3)
    try:
        return await probe(link, unit) not in (None, "garbled")
    finally:
        link.close()


async def test_scan_finds_every_device_on_a_mixed_baud_line_and_names_its_profile(
    sim: Simulation,
) -> None:
    code, out, err = await coldchain(
        "modbus", "scan", "--port", sim.rtu[0].path, "--baud", "9600,4800,19200",
        "--units", "1-10", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    found = {(d["unit"], d["baud"]): d for d in doc["devices"]}
    assert set(found) == {(u, b) for _, _, u, b in RTU_DEVICES}
    assert doc["probes"] == 30
    by_profile = {p: found[(u, b)] for _, p, u, b in RTU_DEVICES}
    for profile in ("xy-md02", "md02", "renke-rs-ws-n01-8"):
        d = by_profile[profile]
        assert (d["certainty"], d["profiles"]) == ("sure", [profile]), d
        assert "holds its address" in d["summary"]
    relay = by_profile["waveshare-modbus-rtu-io-8ch"]
    assert relay["certainty"] == "ambiguous", "its variants differ only in what is wired"
    assert "waveshare-modbus-rtu-io-8ch" in relay["profiles"]
    assert all(p.startswith("waveshare-modbus-rtu-io-8ch") for p in relay["profiles"])
    for profile in ("carel-ir33plus", "dixell-xr60cx"):
        d = by_profile[profile]
        assert (d["certainty"], d["profiles"]) == ("likely", [profile]), d


async def test_scan_text_output_and_stopping_early(sim: Simulation) -> None:
    code, out, err = await coldchain(
        "modbus", "scan", "--port", sim.rtu[0].path, "--baud", "9600,4800",
        "--units", "1-8", "--first", "--no-identify",
    )  # fmt: skip
    assert code == 0, err
    assert "unit   1 at 9600 8N1: answered (" in out
    assert "4 devices found; 8 probes in" in out
    assert "not tried: 4800 8N1" in out, "the line answered at 9600: 4800 is not tried"
    result = await scan_rtu(
        sim.rtu[0].path,
        [LineSetting(9600, "N"), LineSetting(4800, "N")],
        parse_units("1-8"),
        expect=2,
    )
    assert [f.unit for f in result.found] == [1, 3]
    assert result.probes == 3, "it stops probing once two have answered"
    assert result.skipped == [LineSetting(4800, "N")]


async def test_the_fast_pass_does_not_miss_a_slow_device(sim: Simulation) -> None:
    """Devices that start answering after the first pass's short wait (50 and 90 ms here,
    within the default timeout) are found: their late replies mark them for a second look."""
    sim.plant.devices["gw1/xy"].latency = 0.05
    sim.plant.devices["gw1/dixell"].latency = 0.09
    line = [LineSetting(9600, "N")]
    result = await scan_rtu(sim.rtu[0].path, line, parse_units("1-10"))
    assert [f.unit for f in result.found] == [1, 3, 7, 8]
    assert 10 < result.probes < 20, "a few addresses probed twice, not all"
    assert result.garbled == {}
    slow = await scan_rtu(sim.rtu[0].path, line, parse_units("1-10"), fast=False)
    assert [f.unit for f in slow.found] == [1, 3, 7, 8]
    assert slow.probes == 10


async def test_a_garbled_reply_is_reported_and_not_a_device(sim: Simulation) -> None:
    sim.inject("garbage", "gw1/carel")
    code, out, err = await coldchain(
        "modbus", "scan", "--port", sim.rtu[0].path, "--baud", "9600", "--units", "6-8",
        "--no-identify",
    )  # fmt: skip
    assert code == 0, err
    assert "unit   8 at 9600 8N1" in out
    assert "unit   7" not in out.split("garbled")[0]
    assert "garbled replies at 9600 8N1 from unit 7: a device at another parity" in out


async def test_scan_of_an_empty_line_or_a_missing_port_exits_1_with_the_reason(
    sim: Simulation,
) -> None:
    code, out, _ = await coldchain(
        "modbus", "scan", "--port", sim.rtu[0].path, "--baud", "2400", "--units", "1-3",
    )  # fmt: skip
    assert code == 1
    assert "0 devices found; 3 probes in" in out
    code, out, err = await coldchain("modbus", "scan", "--port", "/dev/nonexistent-tty")
    assert code == 1
    assert "/dev/nonexistent-tty" in err
    assert "Traceback" not in err
    code, _, err = await coldchain("modbus", "scan", "--port", "x", "--units", "0-300")
    assert code == 2
    assert "unit ids run from 1 to 247" in err
    code, _, err = await coldchain("modbus", "scan", "--port", "x", "--timeout", "-1")
    assert code == 2
    assert "-1: give seconds, more than 0" in err
    code, _, err = await coldchain("modbus", "scan", "--port", "x", "--baud", "9601")
    assert code == 2
    assert "baud '9601': choose from 1200,2400" in err


async def test_scan_behind_a_tcp_gateway(sim: Simulation) -> None:
    t = sim.tcp[0]
    code, out, err = await coldchain(
        "modbus", "scan", "--host", f"{t.host}:{t.port}", "--units", "1-6",
    )  # fmt: skip
    assert code == 0, err
    assert "unit   2 over TCP: likely: sorting-line-plc" in out
    assert "unit   4 over TCP: likely: dixell-xr60cx" in out
    assert "2 devices found; 6 probes" in out, "exception 0x0B from the gateway is nobody"


async def test_set_a_unit_id_that_acts_at_once(sim: Simulation) -> None:
    path = sim.rtu[0].path
    code, out, err = await coldchain(
        "modbus", "set", "--port", path, "--baud", "19200", "--unit", "5",
        "--profile", "waveshare-modbus-rtu-io-8ch", "unit_id=20",
    )  # fmt: skip
    assert code == 0, err
    assert "unit_id = 20: wrote 0x0014 to holding 0x4000, read back 0x0014: ok" in out
    assert "the device now answers on unit 20" in out
    assert await answers(sim, 20, 19200)
    assert not await answers(sim, 5, 19200)


async def test_set_a_unit_id_that_acts_after_a_power_cycle(sim: Simulation) -> None:
    path = sim.rtu[0].path
    code, out, err = await coldchain(
        "modbus", "set", "--port", path, "--unit", "1", "--profile", "xy-md02",
        "unit_id=30", "temperature_offset=-0.5",
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("temperature_offset = -0.5: wrote 0xfffb to holding 0x0103"), (
        "the offset goes first: the address may move"
    )
    assert "unit_id = 30: wrote 0x001e to holding 0x0101, read back 0x001e: ok; stored; " in out
    assert "after a power cycle" in out
    assert "Switch the device off and on" in out
    assert await answers(sim, 1, 9600), "still on its old address until switched off and on"
    assert not await answers(sim, 30, 9600)
    sim.power_cycle("gw1/xy")
    assert await answers(sim, 30, 9600)
    code, out, err = await coldchain(
        "modbus", "read", "--port", path, "--unit", "30", "--profile", "xy-md02",
    )  # fmt: skip
    assert code == 0, err
    assert "temperature " in out
    assert "°C" in out
    assert "config unit_id            30 " in out
    assert "config temperature_offset -0.5 " in out
    assert "(a new value acts after a power cycle)" in out


async def test_set_refuses_what_would_break_the_line(sim: Simulation) -> None:
    path = sim.rtu[0].path
    code, _, err = await coldchain(
        "modbus", "set", "--port", path, "--unit", "1", "--profile", "xy-md02", "unit_id=3",
    )  # fmt: skip
    assert code == 1
    assert "unit 3 already answers on this line" in err
    assert await answers(sim, 1, 9600), "nothing was written"
    code, _, err = await coldchain(
        "modbus", "set", "--port", path, "--unit", "1", "--profile", "xy-md02", "colour=5",
    )  # fmt: skip
    assert code == 2
    assert "NAME one of unit_id, baud, temperature_offset, humidity_offset" in err
    code, _, err = await coldchain(
        "modbus", "set", "--port", path, "--baud", "4800", "--unit", "1",
        "--profile", "renke-rs-ws-n01-8", "baud=19200",
    )  # fmt: skip
    assert code == 2
    assert "baud 19200 is not one of 2400, 4800, 9600" in err
    code, _, err = await coldchain(
        "modbus", "set", "--port", path, "--unit", "1", "--profile", "carel-ir33plus",
        "unit_id=2",
    )  # fmt: skip
    assert code == 2
    assert "profile carel-ir33plus has no configuration registers" in err


async def test_read_raw_registers_and_a_silent_device(sim: Simulation) -> None:
    path = sim.rtu[0].path
    code, out, err = await coldchain(
        "modbus", "read", "--port", path, "--unit", "1", "--table", "holding",
        "--address", "0x0101", "--count", "2",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines() == [
        "holding 257 (0x0101): 0x0001 1",
        "holding 258 (0x0102): 0x2580 9600",
    ]
    code, _, err = await coldchain(
        "modbus", "read", "--port", path, "--unit", "99", "--table", "input", "--address", "1",
    )  # fmt: skip
    assert code == 1
    assert "unit 99 input 1..1: no reply" in err


async def test_a_sentinel_is_explained_when_read(sim: Simulation) -> None:
    sim.inject("probe_open", "gw1/xy")
    code, out, err = await coldchain(
        "modbus", "read", "--port", sim.rtu[0].path, "--unit", "1", "--profile", "xy-md02",
    )  # fmt: skip
    assert code == 0, err
    temperature = next(line for line in out.splitlines() if line.startswith("temperature"))
    assert "(out of sensor range" in temperature or "(probe" in temperature, temperature
    reader = CachedReader(rtu_link(sim.rtu[0].path, LineSetting(9600, "N"), 0.3), 1)
    try:
        ident = await identify(reader, PROFILES, baud=9600)
    finally:
        reader.link.close()
    assert ident.best == ["xy-md02"], "an open probe does not hide the device's identity"


def test_settings_that_move_the_device_are_written_last() -> None:
    relay = PROFILES.get("waveshare-modbus-rtu-io-8ch")
    assert isinstance(relay, ModbusProfile)
    items = plan_settings(relay, ["baud=9600", "unit_id=9"])
    assert [(r.name, v, w) for r, v, w in items] == [("unit_id", 9, 9), ("baud", 9600, 1)]
    xy = PROFILES.get("xy-md02")
    assert isinstance(xy, ModbusProfile)
    items = plan_settings(xy, ["unit_id=9", "humidity_offset=1.5"])
    assert [r.name for r, _, _ in items] == ["humidity_offset", "unit_id"]
    with pytest.raises(ValueError, match="each setting once"):
        plan_settings(xy, ["unit_id=9", "unit_id=10"])
    with pytest.raises(ValueError, match="a unit id is a whole number from 1 to 247"):
        plan_settings(xy, ["unit_id=248"])


def test_parsing_and_timing() -> None:
    assert parse_units("1-3,2,7") == [1, 2, 3, 7]
    with pytest.raises(ValueError, match="not a unit id"):
        parse_units("a-b")
    assert parse_bauds("9600, 4800") == [9600, 4800]
    # 8N1 at 9600: a character is 10 bits; the probe is 8 bytes and 3.5 characters of silence
    assert probe_wire_time(9600, "N") == pytest.approx(11.5 * 10 / 9600)
    assert probe_wire_time(9600, "E") == pytest.approx(11.5 * 11 / 9600)
    assert default_timeout(9600, "N") == pytest.approx(18.5 * 10 / 9600 + 0.1, abs=1e-4)
    reg = ConfigRegister(name="baud", address=1, codes={2400: 0, 4800: 1})
    assert (reg.code_of(4800), reg.value_of(1), reg.value_of(7)) == (1, 4800, None)
    off = ConfigRegister(name="temperature_offset", address=3, scale=0.1)
    assert (off.code_of(-0.5), off.value_of(0xFFFB)) == (0xFFFB, -0.5)
