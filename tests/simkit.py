"""Helpers for the simulator tests: a site config with every shipped profile on it, and
reading a simulated device's points with a real pymodbus client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from coldchain.config.loader import check_site_file
from coldchain.config.site import SiteConfig
from coldchain.profiles.codec import Decoded, decode_bit, decode_words
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import ModbusPoint, ModbusProfile, MqttProfile, PointKind, Table
from simulator.device import SimDevice
from tests.sites import device, mqtt_bus, one_gateway_site, room, rtu_bus, tcp_bus

RTU_BAUD = 19200


def load_site(path: Path, doc: dict[str, Any], profiles: ProfileRegistry) -> SiteConfig:
    """Write ``doc`` to ``path`` and load it like the CLI does (all errors in the message)."""
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = check_site_file(path, profiles)
    assert result.config is not None, "\n".join(e.format() for e in result.errors)
    return result.config


def one_bus_site(
    bus: dict[str, Any], devices: list[tuple[str, str, int]], *, poll_interval: str
) -> dict[str, Any]:
    """A site of one chilled room and one gateway with one bus: ``devices`` as (id,
    profile, unit id), each polled every ``poll_interval``."""
    return one_gateway_site(
        site_id="depot",
        site_name="Depot",
        rooms=[room("chill", "Chilled")],
        buses=[bus],
        devices=[
            device(d, p, bus=bus["id"], unit_id=u, room="chill", poll_interval=poll_interval)
            for d, p, u in devices
        ],
    )


def all_profiles_site(profiles: ProfileRegistry) -> dict[str, Any]:
    """Every Modbus profile on an RTU bus and on a TCP bus, every MQTT profile on a broker.

    Devices with a counter (a PLC) stand in the sorting hall, the rest in the chilled room.
    """
    modbus = sorted((p for p in profiles if isinstance(p, ModbusProfile)), key=lambda p: p.id)
    devices = [
        device(
            f"{p.id}-{bus}",
            p.id,
            bus=bus,
            unit_id=unit,
            room="hall" if any(pt.kind is PointKind.COUNTER for pt in p.points) else "chill",
        )
        for unit, p in enumerate(modbus, start=1)
        for bus in ("rs485", "plc")
    ]
    mqtt = sorted((p for p in profiles if isinstance(p, MqttProfile)), key=lambda p: p.id)
    devices += [device(p.id, p.id, bus="local", room="chill") for p in mqtt]
    return one_gateway_site(
        site_id="depot",
        site_name="Test depot",
        rooms=[
            room("chill", "Chilled"),
            room("freeze", "Frozen", "frozen"),
            room("hall", "Sorting hall", "sorting"),
        ],
        buses=[
            rtu_bus("rs485", "/dev/ttyUSB0", baud=RTU_BAUD),
            tcp_bus("plc", "10.0.0.9", port=502),
            mqtt_bus("local", "localhost"),
        ],
        devices=devices,
    )


async def read_point(client: Any, unit: int, point: ModbusPoint) -> Decoded:
    """Read one point with a pymodbus client and decode it; raise on an exception reply."""
    if point.table is Table.COIL:
        rr = await client.read_coils(point.address, count=1, device_id=unit)
    elif point.table is Table.DISCRETE:
        rr = await client.read_discrete_inputs(point.address, count=1, device_id=unit)
    elif point.table is Table.INPUT:
        rr = await client.read_input_registers(point.address, count=point.count, device_id=unit)
    else:
        rr = await client.read_holding_registers(point.address, count=point.count, device_id=unit)
    assert not rr.isError(), f"{point.name} at {point.table} {point.address}: {rr}"
    if point.table.is_bits:
        return decode_bit(point, rr.bits[0])
    return decode_words(point, rr.registers)


def unit(dev: SimDevice) -> int:
    """The unit id a Modbus device answers at now."""
    assert dev.unit_id is not None, f"{dev.key} has no unit id"
    return dev.unit_id


async def check_device(client: Any, dev: SimDevice) -> int:
    """Read every point of ``dev`` and compare with what the plant serves; return the count."""
    assert isinstance(dev.profile, ModbusProfile)
    for point in dev.profile.points:
        got = await read_point(client, unit(dev), point)
        want = dev.values[point.name]
        assert got.value == want, f"{dev.key} {point.name}: read {got}, plant serves {want}"
    return len(dev.profile.points)
