"""``coldchain simulate SITE.yaml``: run the virtual site of a site config.

Serves every Modbus bus (RTU on a pty, TCP on 127.0.0.1), publishes the MQTT sensors to
``--broker``, starts the control API, prints where everything is, optionally writes a copy
of the site config pointing at the simulated endpoints, and runs until SIGINT or SIGTERM.
:func:`add_arguments` imports nothing heavy (the ``coldchain`` CLI builds its parser with it).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from coldchain.profiles.options import add_profiles_argument, load_profiles

if TYPE_CHECKING:
    from coldchain.config.site import SiteConfig
    from coldchain.profiles.registry import ProfileRegistry


SIMULATE_DESCRIPTION = """\
Run the virtual site of a site config until SIGINT or SIGTERM: every Modbus bus served by
real slaves (RTU on a pseudo-terminal, TCP on 127.0.0.1), the MQTT sensors publishing their
vendors' payloads to --broker, rooms with thermal behaviour, and a control API on 127.0.0.1
to inject faults (see docs/simulator.md). It prints where each bus is; --write-config writes
a copy of the site config pointing at them, for 'coldchain agent'."""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site", metavar="SITE.yaml", help="site config to simulate")
    parser.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        metavar="N",
        help="simulated time runs N times faster than wall time (physics "
        "only; Modbus and MQTT timing stay real), default 1",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="random seed: the same seed gives the same rooms and events",
    )
    parser.add_argument(
        "--broker", metavar="URL", help="MQTT broker the MQTT sensors publish to, mqtt://host:port"
    )
    parser.add_argument(
        "--control-port",
        type=int,
        default=0,
        metavar="N",
        help="port of the control API on 127.0.0.1 (default: a free port)",
    )
    parser.add_argument(
        "--write-config",
        metavar="OUT.yaml",
        help="write the site config with buses pointing at the simulation",
    )
    add_profiles_argument(parser)
    parser.add_argument(
        "--mqtt-interval",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="MQTT sensors report at least this often (wall time), default 10",
    )
    parser.add_argument(
        "--serve-gaps",
        action="store_true",
        help="answer 0 for unmapped registers inside a device's map instead "
        "of exception 02 (unreadable ranges still refuse)",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from coldchain.config.errors import InvalidConfigError
    from coldchain.config.loader import check_site_file

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        profiles = load_profiles(args)
    except InvalidConfigError as exc:
        print(f"device profiles: {exc}", file=sys.stderr)
        return 1
    result = check_site_file(args.site, profiles, advice=False)  # errors only: it runs it
    if result.config is None:
        for e in result.errors:
            print(f"error: {e.format()}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_serve(args, result.config, profiles))
    except (OSError, ValueError) as exc:
        print(f"coldchain simulate: {exc}", file=sys.stderr)
        return 1


async def _serve(args: argparse.Namespace, config: SiteConfig, profiles: ProfileRegistry) -> int:
    import asyncio
    import signal

    from simulator.endpoints import describe, write_config
    from simulator.runtime import Simulation

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Simulation(
        config,
        profiles,
        speed=args.speed,
        seed=args.seed,
        broker=args.broker,
        control_port=args.control_port,
        mqtt_interval=args.mqtt_interval,
        serve_gaps=args.serve_gaps,
    ) as sim:
        endpoints = sim.endpoints()
        print(f"coldchain simulate: {args.site}, speed {args.speed:g}x, seed {args.seed}")
        for line in describe(endpoints):
            print(line)
        mqtt = sum(len(b["topics"]) for b in endpoints["buses"] if b["type"] == "mqtt")
        if mqtt and not args.broker:
            print(f"  note: {mqtt} MQTT devices are not simulated; give --broker mqtt://host:port")
        if args.write_config:
            write_config(args.write_config, config, endpoints, source=args.site)
            print(f"  config: {args.write_config}")
        print("ready (Ctrl-C or SIGTERM stops)", flush=True)
        await stop.wait()
    print("stopped", flush=True)
    return 0
