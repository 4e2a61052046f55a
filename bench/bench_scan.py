"""How long ``coldchain modbus scan`` takes on one RS-485 line, against the line's limit.

A line at --baud (default 9600 8N1) on the simulator's pty with three devices (units 1, 2
and 3) among the 247 addresses; a scan of all 247 with the command's own code
(:func:`edge_agent.scan.scan_rtu`): in one pass with the full reply timeout (the
baseline), and as the command runs by default, a fast pass with a short timeout and the
addresses after which stray bytes came probed again with the full one, with the devices
answering at once and after 50 and 90 ms. The physical limit is the least time the probes
occupy the wire: per address, the 8-byte request and the 3.5 characters of silence that end
it (and, for the three devices that answer, their 7-byte reply): no master can scan the line
faster. Printed: devices found, probes, seconds, and the ratio to that limit.

The simulator answers the moment the reply would have finished on the wire, plus the
latency the bench gives each device; real devices take up to tens of milliseconds to start
answering, which is what the full timeout allows for (docs/commissioning.md).

    .venv/bin/python bench/bench_scan.py [--baud 9600] [--units 1-247]
"""

from __future__ import annotations

import argparse
import asyncio
import platform

from coldchain.config.site import SiteConfig
from coldchain.rtu import char_time
from edge_agent.modbus_io import quiet_pymodbus
from edge_agent.scan import (
    DEFAULT_LATENCY,
    FAST_MARGIN,
    PROBE_REPLY_BYTES,
    LineSetting,
    default_timeout,
    fast_timeout,
    parse_units,
    probe_wire_time,
    scan_rtu,
)
from simulator.runtime import Simulation
from tests.sites import device, one_gateway_site, room, rtu_bus, shipped_profiles


def site(baud: int) -> SiteConfig:
    return SiteConfig.model_validate(
        one_gateway_site(
            site_id="s",
            site_name="s",
            gateway_id="g",
            rooms=[room("r", "r")],
            buses=[rtu_bus("rtu", "/dev/null", baud=baud)],
            devices=[device(f"p{u}", "xy-md02", bus="rtu", unit_id=u, room="r") for u in (1, 2, 3)],
        )
    )


async def run(baud: int, units: list[int]) -> None:
    quiet_pymodbus()
    profiles = shipped_profiles()
    setting = LineSetting(baud, "N")
    limit = len(units) * probe_wire_time(baud, "N") + 3 * PROBE_REPLY_BYTES * char_time(baud, "N")
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(
        f"line {setting}, {len(units)} addresses, 3 devices; physical limit "
        f"{limit:.2f} s ({probe_wire_time(baud, 'N') * 1000:.1f} ms per silent address)"
    )
    default = default_timeout(baud, "N")
    quick = fast_timeout(baud, "N")
    print(
        f"reply timeout {default * 1000:.0f} ms (wire + {DEFAULT_LATENCY * 1000:.0f} ms); "
        f"fast pass {quick * 1000:.0f} ms (wire + {FAST_MARGIN * 1000:.0f} ms)"
    )
    print(f"{'scan':<44} {'found':>5} {'probes':>6} {'seconds':>8} {'x limit':>8}")
    async with Simulation(site(baud), profiles, seed=1, tick=3600) as sim:
        devices = list(sim.plant.devices.values())
        for label, fast, latency in (
            ("one pass, full timeout (the baseline)", False, 0.0),
            ("fast pass, then suspects again (default)", True, 0.0),
            ("  the same, devices answering after 50 ms", True, 0.05),
            ("  the same, devices answering after 90 ms", True, 0.09),
        ):
            for d in devices:
                d.latency = latency
            result = await scan_rtu(sim.rtu[0].path, [setting], units, fast=fast)
            print(
                f"{label:<44} {len(result.found):>5} {result.probes:>6} "
                f"{result.seconds:>8.2f} {result.seconds / limit:>8.1f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--units", default="1-247")
    args = ap.parse_args()
    asyncio.run(run(args.baud, parse_units(args.units)))


if __name__ == "__main__":
    main()
