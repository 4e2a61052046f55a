"""``coldchain agent CONFIG --gateway ID`` runs a gateway's agent;
``coldchain agent plan CONFIG --gateway ID`` prints the Modbus requests it makes per poll."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from coldchain.profiles.options import add_profiles_argument, load_profiles


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "args",
        nargs="+",
        metavar="[plan] CONFIG",
        help="the site config; 'plan CONFIG' prints the request plan instead",
    )
    parser.add_argument("--gateway", required=True, metavar="ID", help="which gateway this is")
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the outbox lives (default: agent.data_dir of the config)",
    )
    parser.add_argument(
        "--broker", metavar="URL", help="central broker, mqtt://host:port (default: uplink.broker)"
    )
    parser.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="broker password (default: uplink.password_file)",
    )
    add_profiles_argument(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _load(args: argparse.Namespace, config: str) -> tuple[object, object] | None:
    from coldchain.config.errors import InvalidConfigError
    from coldchain.config.loader import load_site_config

    try:
        profiles = load_profiles(args)
        cfg = load_site_config(config, profiles)
        cfg.gateway(args.gateway)
    except InvalidConfigError as exc:
        print(f"{config}: {exc}", file=sys.stderr)
        return None
    except KeyError as exc:
        print(f"{config}: {exc.args[0]}", file=sys.stderr)
        return None
    return cfg, profiles


def _plan(args: argparse.Namespace, config: str) -> int:
    from coldchain.config.site import SiteConfig
    from coldchain.profiles.registry import ProfileRegistry
    from coldchain.profiles.schema import ModbusProfile
    from edge_agent.poller import device_state

    loaded = _load(args, config)
    if loaded is None:
        return 1
    cfg, profiles = loaded
    assert isinstance(cfg, SiteConfig)
    assert isinstance(profiles, ProfileRegistry)
    gw = cfg.gateway(args.gateway)
    total_req = total_points = 0
    for bus in gw.buses:
        for d in (d for d in gw.devices if d.bus == bus.id):
            profile = profiles.get(d.profile)
            if not isinstance(profile, ModbusProfile):
                continue
            st = device_state(
                d,
                profile,
                site=gw.site,
                gateway=gw.id,
                fill_registers=cfg.agent.fill_registers,
                fill_bits=cfg.agent.fill_bits,
            )
            touched = sum(b.count for b in st.blocks)
            total_req += len(st.blocks)
            total_points += len(st.points)
            print(
                f"{d.id}: {len(st.blocks)} request{'s' if len(st.blocks) != 1 else ''} "
                f"touching {touched} register{'s' if touched != 1 else ''} "
                f"for {len(st.points)} points (bus {bus.id}, unit {d.unit_id})"
            )
            for b in st.blocks:
                print(f"    {b}")
    print(
        f"{gw.id}: {total_req} requests per cycle for {total_points} points "
        f"(fill {cfg.agent.fill_registers} registers / {cfg.agent.fill_bits} bits)"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    if args.args[0] == "plan":
        if len(args.args) != 2:
            print("usage: coldchain agent plan CONFIG --gateway ID", file=sys.stderr)
            return 2
        return _plan(args, args.args[1])
    if len(args.args) != 1:
        print("usage: coldchain agent CONFIG --gateway ID", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    loaded = _load(args, args.args[0])
    if loaded is None:
        return 1
    return asyncio.run(_main(args, *loaded))


async def _main(args: argparse.Namespace, cfg: object, profiles: object) -> int:
    from coldchain.config.site import SiteConfig
    from coldchain.profiles.registry import ProfileRegistry
    from edge_agent.agent import Agent

    assert isinstance(cfg, SiteConfig)
    assert isinstance(profiles, ProfileRegistry)
    if args.broker:
        cfg = cfg.model_copy(
            update={"uplink": cfg.uplink.model_copy(update={"broker": args.broker})}
        )
    pw_file = args.password_file or (
        Path(cfg.uplink.password_file) if cfg.uplink.password_file else None
    )
    password = pw_file.read_text().strip() if pw_file else None
    agent = Agent(cfg, args.gateway, profiles, data_dir=args.data_dir, uplink_password=password)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await agent.run()
    except asyncio.CancelledError:
        logging.getLogger("edge_agent").info("agent %s stopped", args.gateway)
    return 0
