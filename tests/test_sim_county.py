"""The example site (firmware_configs/sites/county.yaml) runs in the simulator: every Modbus
device answers on its bus with what the plant serves, every MQTT device publishes."""

from __future__ import annotations

import asyncio

import aiomqtt
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

import firmware_configs
from coldchain.config.loader import load_site_config
from coldchain.profiles.registry import ProfileRegistry
from simulator.mqtt import mqtt_topics
from simulator.runtime import Simulation
from tests.services import Broker, until
from tests.simkit import check_device

COUNTY = firmware_configs.SITES_DIR / "county.yaml"


async def test_county_runs(mosquitto: Broker, profiles: ProfileRegistry) -> None:
    config = load_site_config(COUNTY, profiles)
    seen: set[str] = set()
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as sub:
        await sub.subscribe("#")

        async def collect() -> None:
            async for m in sub.messages:
                seen.add(str(m.topic))

        collector = asyncio.create_task(collect())
        async with Simulation(config, profiles, speed=60, broker=mosquitto.url, tick=3600) as sim:
            counts: list[int] = []

            async def rtu_bus(i: int) -> None:
                bus = sim.rtu[i]
                client = AsyncModbusSerialClient(
                    bus.path,
                    baudrate=bus.bus.baud,
                    stopbits=bus.bus.stop_bits,
                    parity=bus.bus.parity,
                    timeout=0.5,
                    retries=0,
                )
                assert await client.connect()
                counts.extend([await check_device(client, dev) for dev in bus.devices])
                client.close()

            async def tcp_bus(i: int) -> None:
                bus = sim.tcp[i]
                client = AsyncModbusTcpClient(bus.host, port=bus.port, timeout=0.5, retries=0)
                assert await client.connect()
                counts.extend([await check_device(client, dev) for dev in bus.devices])
                client.close()

            await asyncio.gather(
                *(rtu_bus(i) for i in range(len(sim.rtu))),
                *(tcp_bus(i) for i in range(len(sim.tcp))),
            )
            modbus = [d for d in sim.plant.devices.values() if d.image is not None]
            assert len(counts) == len(modbus) >= 10

            topics = {
                t for d in sim.plant.devices.values() if d.image is None for t in mqtt_topics(d)
            }
            await until(lambda: topics <= seen, f"messages on {sorted(topics - seen)}")
            rooms = sim.state()["rooms"]
            assert rooms["chengqu-centre/cold-room-2"]["setpoint"] <= -20
            assert "line" in rooms["chengqu-centre/sorting-hall"]
        collector.cancel()
