"""The simulated Modbus slaves, read by real pymodbus clients over TCP and over a pty (RTU)."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException

from coldchain.profiles.schema import ModbusProfile
from coldchain.reading import Quality
from simulator.device import SimDevice
from simulator.runtime import Simulation
from tests.services import until
from tests.simkit import RTU_BAUD, all_profiles_site, check_device, load_site, read_point, unit
from tests.sites import shipped_profiles

PROFILES = shipped_profiles()


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulation]:
    config = load_site(tmp_path / "site.yaml", all_profiles_site(PROFILES), PROFILES)
    # A tick of an hour: values change only when a test makes them (a fault, a step()).
    async with Simulation(config, PROFILES, seed=3, tick=3600) as s:
        yield s


def rtu_client(sim: Simulation, timeout: float = 0.3) -> AsyncModbusSerialClient:
    return AsyncModbusSerialClient(
        sim.rtu[0].path, baudrate=RTU_BAUD, timeout=timeout, retries=0, reconnect_delay=0
    )


def tcp_client(sim: Simulation, timeout: float = 0.5) -> AsyncModbusTcpClient:
    t = sim.tcp[0]
    return AsyncModbusTcpClient(t.host, port=t.port, timeout=timeout, retries=0, reconnect_delay=0)


@pytest.fixture
async def rtu(sim: Simulation) -> AsyncIterator[AsyncModbusSerialClient]:
    client = rtu_client(sim)
    assert await client.connect(), f"cannot open {sim.rtu[0].path}"
    yield client
    client.close()


@pytest.fixture
async def tcp(sim: Simulation) -> AsyncIterator[AsyncModbusTcpClient]:
    client = tcp_client(sim)
    assert await client.connect()
    yield client
    client.close()


async def raw_tcp(sim: Simulation, unit: int, pdu: bytes) -> bytes:
    """Send one request PDU over Modbus TCP and return the reply PDU."""
    reader, writer = await asyncio.open_connection(sim.tcp[0].host, sim.tcp[0].port)
    try:
        writer.write(struct.pack(">HHHB", 7, 0, len(pdu) + 1, unit) + pdu)
        tid, proto, length, got_unit = struct.unpack(">HHHB", await reader.readexactly(7))
        assert (tid, proto, got_unit) == (7, 0, unit)
        return await reader.readexactly(length - 1)
    finally:
        writer.close()


def error(rr: Any) -> int:
    """The exception code of a reply, 0 if it is not an exception."""
    return int(rr.exception_code) if rr.isError() else 0


def device(sim: Simulation, profile: str, bus: str) -> SimDevice:
    return sim.plant.devices[f"gw1/{profile}-{bus}"]


def modbus(dev: SimDevice) -> ModbusProfile:
    assert isinstance(dev.profile, ModbusProfile)
    return dev.profile


async def test_every_device_reads_right_over_rtu_and_tcp(
    sim: Simulation, rtu: AsyncModbusSerialClient, tcp: AsyncModbusTcpClient
) -> None:
    modbus = [p.id for p in PROFILES if isinstance(p, ModbusProfile)]
    assert "xy-md02" in modbus
    points = 0
    for profile in modbus:
        points += await check_device(rtu, device(sim, profile, "rs485"))
        points += await check_device(tcp, device(sim, profile, "plc"))
    assert points >= 4 * len(modbus)
    xy = device(sim, "xy-md02", "rs485")
    assert xy.values["temperature"] is not None
    assert -1 < xy.values["temperature"] < 6, "a probe in a chilled room reads 0-4 °C"


async def test_several_unit_ids_share_one_rtu_bus(
    sim: Simulation, rtu: AsyncModbusSerialClient
) -> None:
    units = sorted(unit(d) for d in sim.rtu[0].devices)
    assert len(units) >= 2
    for u in units:
        rr = await rtu.read_coils(0, count=1, device_id=u)  # any reply proves the address
        assert rr.dev_id == u


async def test_an_unknown_unit_id_gets_silence_on_rtu(rtu: AsyncModbusSerialClient) -> None:
    with pytest.raises(ModbusIOException, match="No response"):
        await rtu.read_input_registers(1, count=2, device_id=200)


async def test_an_unknown_unit_id_behind_tcp_gets_gateway_exception(
    tcp: AsyncModbusTcpClient,
) -> None:
    rr = await tcp.read_input_registers(1, count=2, device_id=200)
    assert error(rr) == 0x0B


async def test_illegal_address_value_and_function(
    sim: Simulation, rtu: AsyncModbusSerialClient, tcp: AsyncModbusTcpClient
) -> None:
    xy = device(sim, "xy-md02", "rs485")
    rr = await rtu.read_input_registers(0x10, count=1, device_id=unit(xy))
    assert error(rr) == 2, "unmapped address"
    rr = await rtu.read_input_registers(1, count=3, device_id=unit(xy))
    assert error(rr) == 2, "a range running past the map"
    # pymodbus refuses to send a count above the limit, so these go raw over TCP.
    tcp_xy = device(sim, "xy-md02", "plc")
    assert await raw_tcp(sim, unit(tcp_xy), bytes.fromhex("04 0001 007e")) == bytes((0x84, 3)), (
        "more than 125 registers"
    )
    assert await raw_tcp(sim, unit(tcp_xy), bytes.fromhex("01 0000 07d1")) == bytes((0x81, 3)), (
        "more than 2000 bits"
    )
    rr = await rtu.write_register(1, 5, device_id=unit(xy))
    assert error(rr) == 2, "input registers cannot be written"
    rr = await rtu.diag_read_diagnostic_register(device_id=unit(xy))  # FC 8
    assert error(rr) == 1, "no diagnostics function"
    plc = device(sim, "sorting-line-plc", "plc")
    rr = await tcp.read_holding_registers(0, count=8, device_id=unit(plc))
    assert error(rr) == 2, "holding 7-99 is listed unreadable"


async def test_a_new_unit_id_takes_effect_at_once_where_the_profile_says_so(
    sim: Simulation, rtu: AsyncModbusSerialClient
) -> None:
    relay = device(sim, "waveshare-modbus-rtu-io-8ch", "rs485")
    old = unit(relay)
    rr = await rtu.write_register(0x4000, 77, device_id=old)
    assert not rr.isError()
    assert rr.dev_id == old, "the reply comes from the old address"
    rr = await rtu.read_holding_registers(0x4000, count=1, device_id=77)
    assert rr.registers == [77], "it answers on the new address at once"
    with pytest.raises(ModbusIOException):
        await rtu.read_holding_registers(0x4000, count=1, device_id=old)


async def test_commissioning_a_new_unit_id_takes_effect_after_a_power_cycle(
    sim: Simulation, rtu: AsyncModbusSerialClient
) -> None:
    xy = device(sim, "xy-md02", "rs485")
    old = unit(xy)
    rr = await rtu.write_register(0x0101, 77, device_id=old)
    assert not rr.isError()
    assert rr.dev_id == old, "the reply comes from the old address"
    rr = await rtu.read_holding_registers(0x0101, count=1, device_id=old)
    assert rr.registers == [77], "it reads back the new address, still answering on the old"
    assert sim.power_cycle(xy.key)["applied"] == ["unit_id"]
    rr = await rtu.read_input_registers(1, count=2, device_id=77)
    assert not rr.isError()
    with pytest.raises(ModbusIOException):
        await rtu.read_input_registers(1, count=2, device_id=old)
    rr = await rtu.read_holding_registers(0x0101, count=1, device_id=77)
    assert rr.registers == [77]
    rr = await rtu.write_register(0x0101, 0, device_id=77)
    assert error(rr) == 3, "unit id 0 is not an address"


async def test_a_device_answers_only_at_its_baud(sim: Simulation) -> None:
    xy = device(sim, "xy-md02", "rs485")
    path = sim.rtu[0].path
    wrong = AsyncModbusSerialClient(path, baudrate=9600, timeout=0.2, retries=0)
    assert await wrong.connect()
    with pytest.raises(ModbusIOException):
        await wrong.read_input_registers(1, count=2, device_id=unit(xy))
    wrong.close()
    client = rtu_client(sim)
    assert await client.connect()
    rr = await client.write_register(0x0102, 9600, device_id=unit(xy))  # XY-MD02: the rate
    assert not rr.isError(), "the reply still comes at the old baud"
    rr = await client.read_input_registers(1, count=2, device_id=unit(xy))
    assert not rr.isError(), "an XY-MD02 keeps its old baud until switched off and on"
    sim.power_cycle(xy.key)
    with pytest.raises(ModbusIOException):
        await client.read_input_registers(1, count=2, device_id=unit(xy))
    client.close()
    slow = AsyncModbusSerialClient(path, baudrate=9600, timeout=0.5, retries=0)
    assert await slow.connect()
    rr = await slow.read_input_registers(1, count=2, device_id=unit(xy))
    assert not rr.isError(), "re-commissioned to 9600, it answers at 9600"
    slow.close()


async def test_a_written_setpoint_moves_the_thermostat(
    sim: Simulation, tcp: AsyncModbusTcpClient
) -> None:
    carel = device(sim, "carel-ir33plus", "plc")
    room = carel.view.room
    sp = modbus(carel).point("setpoint")
    rr = await tcp.write_register(sp.address, 35, device_id=unit(carel))  # 3.5 °C
    assert not rr.isError()
    assert room.setpoint == 3.5
    got = await read_point(tcp, unit(carel), sp)
    assert got.value == 3.5


async def test_a_slow_bus_is_slow(tmp_path: Path) -> None:
    doc = all_profiles_site(PROFILES)
    doc["gateways"][0]["buses"][0]["baud"] = 9600
    config = load_site(tmp_path / "slow.yaml", doc, PROFILES)
    async with Simulation(config, PROFILES, tick=3600) as s:
        client = AsyncModbusSerialClient(s.rtu[0].path, baudrate=9600, timeout=1, retries=0)
        assert await client.connect()
        xy = s.plant.devices["gw1/xy-md02-rs485"]
        took = []
        for _ in range(5):
            t0 = time.perf_counter()
            rr = await client.read_input_registers(1, count=2, device_id=unit(xy))
            took.append(time.perf_counter() - t0)
            assert not rr.isError()
        client.close()
    wire = (8 + 9) * 10 / 9600  # request + reply, 10 bits per character at 8N1
    assert min(took) >= wire, f"{min(took) * 1000:.1f} ms is faster than the wire"
    assert max(took) < 0.2


@pytest.mark.parametrize("bus", ["rtu", "tcp"])
async def test_faults_on_the_wire(sim: Simulation, bus: str) -> None:
    client = rtu_client(sim) if bus == "rtu" else tcp_client(sim)
    assert await client.connect()
    dev = device(sim, "xy-md02", "rs485" if bus == "rtu" else "plc")
    point = modbus(dev).point("temperature")
    u = unit(dev)

    sim.inject("silent", dev.key)
    with pytest.raises(ModbusIOException):
        await read_point(client, u, point)
    sim.clear("silent", dev.key)
    assert (await read_point(client, u, point)).quality is Quality.GOOD

    sim.inject("exception", dev.key, code=6)
    rr = await client.read_input_registers(point.address, count=1, device_id=u)
    assert error(rr) == 6
    sim.clear()

    sim.inject("garbage", dev.key)
    with pytest.raises(ModbusException):
        await client.read_input_registers(point.address, count=1, device_id=u)
    sim.clear()
    client.close()

    client = rtu_client(sim) if bus == "rtu" else tcp_client(sim)
    assert await client.connect()
    if bus == "rtu":
        sim.inject("bad_crc", dev.key)
        with pytest.raises(ModbusIOException):
            await read_point(client, u, point)
        sim.clear()

    sim.inject("probe_open", dev.key)
    got = await read_point(client, u, point)
    assert got.quality is Quality.BAD
    assert "out of sensor range" in str(got.reason)
    sim.clear()
    assert (await read_point(client, u, point)).quality is Quality.GOOD
    client.close()


async def test_probe_open_serves_the_profiles_sentinel(
    sim: Simulation, tcp: AsyncModbusTcpClient
) -> None:
    plc = device(sim, "sorting-line-plc", "plc")
    profile = modbus(plc)
    chute = profile.point("chute_2_temperature")
    sim.inject("probe_open", plc.key, point=chute.name)
    got = await read_point(tcp, unit(plc), chute)
    assert (got.quality, got.reason, got.raw) == (Quality.BAD, "probe open", -999.0)
    other = await read_point(tcp, unit(plc), profile.point("chute_1_temperature"))
    assert other.quality is Quality.GOOD
    entry = sim.journal.latest(plc.series(chute.name))
    assert entry is not None
    assert entry.reason == "probe open"


async def test_gateway_link_down_silences_rtu_and_refuses_tcp(
    sim: Simulation, rtu: AsyncModbusSerialClient
) -> None:
    xy = device(sim, "xy-md02", "rs485")
    sim.inject("link_down", "gw1")
    with pytest.raises(ModbusIOException):
        await rtu.read_input_registers(1, count=2, device_id=unit(xy))

    async def refused() -> bool:
        client = tcp_client(sim)
        try:
            return not await client.connect()
        finally:
            client.close()

    await until(refused, "TCP connections to be refused")
    sim.clear("link_down", "gw1")

    async def accepted() -> bool:
        return not await refused()

    await until(accepted, "TCP connections to be accepted again")
    rr = await rtu.read_input_registers(1, count=2, device_id=unit(xy))
    assert not rr.isError()


async def test_room_faults_reach_the_controllers(
    sim: Simulation, tcp: AsyncModbusTcpClient
) -> None:
    carel = device(sim, "carel-ir33plus", "plc")
    profile = modbus(carel)
    sim.inject("door_stuck_open", "chill")
    assert (await read_point(tcp, unit(carel), profile.point("door"))).value == 1.0
    sim.inject("power_cut", "depot/chill")
    assert not carel.view.room.compressor_running
    sim.clear()
    assert (await read_point(tcp, unit(carel), profile.point("door"))).value == 0.0
    dixell = device(sim, "dixell-xr60cx", "plc")
    dixell.view.room.air = 10.0  # warm: the thermostat calls for cooling
    sim.inject("compressor_failure", "chill")
    await sim.step()
    assert (await read_point(tcp, unit(dixell), modbus(dixell).point("compressor"))).value == 1.0
    assert not dixell.view.room.compressor_running, "the relay is on, the compressor is not"


async def test_the_plc_counts_until_a_jam_or_a_stop(
    sim: Simulation, tcp: AsyncModbusTcpClient
) -> None:
    plc = device(sim, "sorting-line-plc", "plc")
    profile = modbus(plc)
    u = unit(plc)

    async def parcels() -> float:
        return (await read_point(tcp, u, profile.point("parcels_sorted"))).value or 0.0

    async def counting() -> bool:
        before = await parcels()
        await sim.step()
        return await parcels() > before

    await until(counting, "the parcel counter to count")
    sim.inject("jam", "hall")
    assert (await read_point(tcp, u, profile.point("jam"))).value == 1.0
    assert (await read_point(tcp, u, profile.point("conveyor_running"))).value == 0.0
    jammed = await parcels()
    await sim.step()
    assert await parcels() == jammed, "a jammed line counts nothing"
    sim.clear("jam")
    await until(counting, "counting again after the jam is cleared")

    rr = await tcp.write_coil(profile.point("conveyor_running").address, False, device_id=u)
    assert not rr.isError()
    await sim.step()
    stopped = await parcels()
    await sim.step()
    assert await parcels() == stopped, "an operator stop halts the line"
