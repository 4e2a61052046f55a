"""``coldchain agent CONFIG --gateway ID`` runs a gateway's agent;
``coldchain agent plan CONFIG --gateway ID`` prints the Modbus requests it makes per poll.

``agent`` has two actions, ``run`` and ``plan``; ``run`` is implied when the word after
``agent`` is neither (the ``coldchain`` command line inserts it), so the service units'
``coldchain agent CONFIG --gateway ID`` stays what it always was.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from pathlib import Path

from coldchain.profiles.options import add_profiles_argument, load_profiles

ACTIONS = ("run", "plan")
IMPLIED_ACTION = "run"
AGENT_USAGE = """\
%(prog)s [run] CONFIG --gateway ID [--data-dir DIR] [--broker URL]
                       [--password-file FILE] [--profiles DIR] [-v]
       %(prog)s plan CONFIG --gateway ID [--profiles DIR]"""
AGENT_DESCRIPTION = """\
The process on each gateway (a Raspberry Pi): it polls the gateway's Modbus devices and reads
its MQTT sensors, keeps every reading in an outbox on disk until the hub has stored it, and
streams to the central broker; it publishes its status and a health report. SIGTERM or Ctrl-C
stops it cleanly.

'coldchain agent CONFIG --gateway ID' is short for 'coldchain agent run CONFIG --gateway ID'.
'coldchain agent plan CONFIG --gateway ID' prints the Modbus requests one poll cycle makes.
Run 'coldchain agent run --help' or 'coldchain agent plan --help' for the options."""


def _gateway_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="the site config")
    parser.add_argument("--gateway", required=True, metavar="ID", help="which gateway this is")
    add_profiles_argument(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``run`` and ``plan`` actions of ``coldchain agent``."""
    sub = parser.add_subparsers(
        dest="agent_command", required=True, metavar="ACTION", prog=parser.prog
    )
    run = sub.add_parser(
        "run",
        help="run the gateway's agent (the default: 'coldchain agent CONFIG' runs it)",
        description="Run the agent of gateway ID until SIGTERM or Ctrl-C: poll its Modbus "
        "devices, read its MQTT sensors, buffer every reading on disk (the outbox, in "
        "--data-dir) and stream it to the central broker until the hub acknowledges it. "
        "'coldchain agent CONFIG --gateway ID' is short for this. Logs go to stderr: a "
        "device that stops answering is logged once when it starts failing and once when it "
        "answers again.",
    )
    _gateway_arguments(run)
    run.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the outbox lives (default: agent.data_dir of the config)",
    )
    run.add_argument(
        "--broker", metavar="URL", help="central broker, mqtt://host:port (default: uplink.broker)"
    )
    run.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="broker password (default: uplink.password_file)",
    )
    run.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="the gateway's message key, shared with the hub: only acks it signed delete "
        "buffered readings (default: uplink.key_file)",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging, with every Modbus frame pymodbus sends and receives",
    )
    plan = sub.add_parser(
        "plan",
        help="print the Modbus requests the agent makes per poll",
        description="Print, per Modbus device of gateway ID, the requests one poll cycle makes "
        "(table, address range, the points each covers) and the totals; talks to no device.",
    )
    _gateway_arguments(plan)


def setup_logging(*, verbose: bool) -> None:
    """The agent's log on stderr (the journal, on a Pi): INFO, or DEBUG with ``-v``.

    Without ``-v``, pymodbus's per-timeout frame dumps and late-reply warnings are dropped
    (:func:`edge_agent.modbus_io.quiet_pymodbus`): the poller logs a device's failure once when
    it starts and once when it ends, with counts in the health report.
    """
    from edge_agent.modbus_io import quiet_pymodbus

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        quiet_pymodbus()


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


def _plan(args: argparse.Namespace) -> int:
    from coldchain.config.site import SiteConfig
    from coldchain.profiles.registry import ProfileRegistry
    from coldchain.profiles.schema import ModbusProfile
    from edge_agent.poller import device_state

    loaded = _load(args, args.config)
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
    if args.agent_command == "plan":
        return _plan(args)
    setup_logging(verbose=args.verbose)
    loaded = _load(args, args.config)
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
    from coldchain.protocol.auth import read_key

    pw_file = args.password_file or (
        Path(cfg.uplink.password_file) if cfg.uplink.password_file else None
    )
    key_file = args.key_file or (Path(cfg.uplink.key_file) if cfg.uplink.key_file else None)
    try:
        password = pw_file.read_text().strip() if pw_file else None
        key = read_key(key_file) if key_file else None
        if cfg.uplink.client_cert and cfg.uplink.client_key:  # unreadable: say so now
            ssl.create_default_context(cafile=cfg.uplink.ca_file).load_cert_chain(
                cfg.uplink.client_cert, cfg.uplink.client_key
            )
    except (OSError, ValueError) as exc:
        print(f"coldchain agent: {exc}", file=sys.stderr)
        return 1
    agent = Agent(
        cfg,
        args.gateway,
        profiles,
        data_dir=args.data_dir,
        uplink_password=password,
        message_key=key,
    )
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
