"""Simulated Modbus slaves: round-trip time of a real pymodbus client against the simulator.

RTU over a pty at several baud rates (the simulator replies when the request and the reply
would have crossed the wire, so these figures are the wire time plus overhead) and TCP on
127.0.0.1; one XY-MD02 read of 2 input registers and one 8-register read (the PLC's four
float32 chute temperatures), median of 50.

    .venv/bin/python bench/bench_sim_modbus.py
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import time
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from coldchain.config.site import SiteConfig
from simulator.runtime import Simulation
from tests.sites import device, one_gateway_site, room, rtu_bus, shipped_profiles, tcp_bus


def site(baud: int) -> SiteConfig:
    return SiteConfig.model_validate(
        one_gateway_site(
            site_id="s",
            site_name="s",
            gateway_id="g",
            rooms=[room("r", "r"), room("h", "h", "sorting")],
            buses=[rtu_bus("rtu", "/dev/null", baud=baud), tcp_bus("tcp", "x", port=502)],
            devices=[
                device("p", "xy-md02", bus="rtu", unit_id=1, room="r"),
                device("l", "sorting-line-plc", bus="rtu", unit_id=2, room="h"),
                device("t", "xy-md02", bus="tcp", unit_id=1, room="r"),
                device("u", "sorting-line-plc", bus="tcp", unit_id=2, room="h"),
            ],
        )
    )


async def median_ms(client: Any, unit: int, table: str, address: int, count: int) -> float:
    read = getattr(client, f"read_{table}_registers")
    took = []
    for _ in range(50):
        t = time.perf_counter()
        rr = await read(address, count=count, device_id=unit)
        took.append(time.perf_counter() - t)
        assert not rr.isError(), rr
    return statistics.median(took) * 1000


async def main() -> None:
    profiles = shipped_profiles()
    print(
        f"# simulated Modbus round trips on {platform.machine()} "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    print(f"{'endpoint':>14} {'2 regs ms':>10} {'8 regs ms':>11} {'wire 2 regs ms':>15}")
    for baud in (4800, 9600, 19200, 115200):
        async with Simulation(site(baud), profiles, tick=3600) as sim:
            rtu = AsyncModbusSerialClient(sim.rtu[0].path, baudrate=baud, timeout=2, retries=0)
            await rtu.connect()
            two = await median_ms(rtu, 1, "input", 1, 2)
            many = await median_ms(rtu, 2, "holding", 100, 8)
            rtu.close()
            wire = (8 + 9) * 10 / baud * 1000
            print(f"{'rtu ' + str(baud):>14} {two:10.2f} {many:11.2f} {wire:15.2f}")
            if baud == 9600:
                t = sim.tcp[0]
                tcp = AsyncModbusTcpClient(t.host, port=t.port, timeout=2, retries=0)
                await tcp.connect()
                two = await median_ms(tcp, 1, "input", 1, 2)
                many = await median_ms(tcp, 2, "holding", 100, 8)
                tcp.close()
                print(f"{'tcp':>14} {two:10.2f} {many:11.2f} {'-':>15}")


if __name__ == "__main__":
    asyncio.run(main())
