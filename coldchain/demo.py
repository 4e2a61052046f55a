"""``coldchain demo``: the virtual county network, running, with a live view of its rooms.

Part of the command line's composition root: it imports the simulator lazily. Until the hub
lands (issue 4), the demo runs the simulator on the example site at 60x speed and prints the
state of every room every few seconds; the Modbus endpoints it prints can be read with any
Modbus tool, and faults injected through the control URL show up in the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

EXAMPLE_SITE = Path(__file__).resolve().parent.parent / "firmware_configs" / "sites" / "county.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site",
        type=Path,
        default=None,
        metavar="SITE.yaml",
        help="site config (default: the example county network)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=60.0,
        metavar="N",
        help="simulated time runs N times faster (default 60)",
    )
    parser.add_argument("--seed", type=int, default=1, metavar="N", help="random seed")
    parser.add_argument(
        "--every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how often to print the rooms (default 5)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )


def room_lines(state: dict[str, Any]) -> list[str]:
    """One line per room: temperature, humidity, compressor, defrost, door, faults."""
    clock = state["clock"]
    hours = (clock["sim_time"] - clock["start"]) / 3600
    lines = [f"simulated time +{hours:.2f} h"]
    for name, room in state["rooms"].items():
        flags = [
            "compressor on" if room["compressor_running"] else "",
            f"defrost {room['defrost']}" if room["defrost"] != "off" else "",
            "DOOR OPEN" if room["door_open"] else "",
            "POWER CUT" if room["power_cut"] else "",
            "COMPRESSOR FAILED" if room["compressor_failed"] else "",
        ]
        line = room.get("line")
        if line:
            flags.append(
                f"line {'running' if line['running'] else 'stopped'}, "
                f"{line['parcels']} parcels, {line['jams']} jams"
            )
        text = ", ".join(f for f in flags if f)
        lines.append(f"  {name:36} {room['air']:7.2f} °C {room['rh']:5.1f} %RH  {text}")
    return lines


async def _run(args: argparse.Namespace) -> int:
    from coldchain.config.loader import load_site_config
    from coldchain.profiles.registry import ProfileRegistry
    from simulator.endpoints import describe
    from simulator.runtime import Simulation

    profiles = ProfileRegistry.load()
    config = load_site_config(args.site or EXAMPLE_SITE, profiles)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration:
        loop.call_later(args.duration, stop.set)
    async with Simulation(
        config, profiles, speed=args.speed, seed=args.seed, control_port=0
    ) as sim:
        print(f"coldchain demo: {args.site or EXAMPLE_SITE.name}, {args.speed:g}x speed")
        print("Every device below is a real Modbus slave: read it with any Modbus tool.")
        for line in describe(sim.endpoints()):
            print(line)
        print(
            "Inject a fault, e.g.: python -m simulator.ctl --url URL inject compressor_failure "
            "chengqu-centre/cold-room-1   (URL: the control line above)"
        )
        print("The hub, agents and web UI join the demo as they land. Ctrl-C stops.", flush=True)
        while not stop.is_set():
            print("\n".join(room_lines(sim.state())), flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.every)
    print("stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
