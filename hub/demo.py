"""``coldchain demo``: the whole system on one machine, with no external service.

The simulator serves the example county (every device a real Modbus slave; MQTT sensors
publish to the broker); an embedded MQTT broker (amqtt, on a free port) stands in for the
centre's Mosquitto unless ``--broker`` is given; one agent per gateway polls and streams; the
hub stores into SQLite under ``./demo-data`` and serves the API. Every few seconds it prints
what flows. Part of the command line's composition root: it imports the other packages lazily.

Time is one thing: the simulator, every agent and the hub share one
:class:`~coldchain.clock.ScaledClock` running ``--speed`` times faster than wall time, so
poll intervals, rule delays, rate windows, hold-offs, escalation, health intervals,
timestamps and the times in SMS are all simulated time, and an accelerated run behaves as a
real one would. Only the wire is real time: a speed at which an RS-485 line could not carry
its devices' polls (at the bus's baud) is refused before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from coldchain.supervise import wait_event

if TYPE_CHECKING:
    from coldchain.clock import Clock
    from coldchain.config.site import SiteConfig
    from coldchain.profiles.registry import ProfileRegistry
    from hub.service import Hub
from firmware_configs import SITES_DIR

EXAMPLE_SITE = SITES_DIR / "county.yaml"
MAX_LINE_LOAD = 0.8  # share of an RS-485 line's time polls may take, at the demo's speed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site",
        type=Path,
        default=None,
        metavar="SITE.yaml",
        help="site config (default: the example county network)",
    )
    parser.add_argument(
        "--broker", metavar="URL", help="use this MQTT broker instead of the embedded one"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("demo-data"),
        metavar="DIR",
        help="hub database, SQLite store and agents' outboxes (default demo-data)",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="the hub's API and web address (port 0: a free one)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=60.0,
        metavar="N",
        help="simulated time runs N times faster for the simulator, the agents and the hub "
        "alike (default 60; refused if an RS-485 line could not keep up)",
    )
    parser.add_argument("--seed", type=int, default=1, metavar="N", help="random seed")
    parser.add_argument(
        "--every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often to print what flows (default 10)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--history",
        type=float,
        default=7.0,
        metavar="DAYS",
        help="on a store with no readings yet, first write DAYS of simulated history (a "
        "reading every 5 min from the simulator's plant), so charts and reports have a week "
        "to show; marked as seeded in this output (default 7; 0: none)",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded_broker() -> AsyncIterator[str]:
    """amqtt on a free port of 127.0.0.1 (the demo only; production runs Mosquitto/EMQX)."""
    from amqtt.broker import Broker

    port = free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        await broker.shutdown()


def line_seconds(cfg: SiteConfig, profiles: ProfileRegistry) -> dict[str, tuple[int, float]]:
    """Per RS-485 bus (``gateway/bus``): its baud and the wall seconds of line time its
    devices' polls take per second of clock time (requests and replies at the baud, 3.5
    characters of silence each way, the poller's inter-frame gap and 2 ms of turnaround).
    Conservative: the simulator's slaves answer a little faster than this."""
    from coldchain.config.site import RtuBus
    from coldchain.profiles.schema import ModbusProfile
    from edge_agent.poller import device_state

    out: dict[str, tuple[int, float]] = {}
    s = cfg.agent
    for gw in cfg.gateways:
        for bus in gw.buses:
            if not isinstance(bus, RtuBus):
                continue
            load = 0.0
            for d in (d for d in gw.devices if d.bus == bus.id):
                profile = profiles.get(d.profile)
                assert isinstance(profile, ModbusProfile)  # checked by the config
                state = device_state(
                    d,
                    profile,
                    site=gw.site,
                    gateway=gw.id,
                    fill_registers=s.fill_registers,
                    fill_bits=s.fill_bits,
                )
                wire = 0.0
                for b in state.blocks:
                    reply = 5 + ((b.count + 7) // 8 if b.table.is_bits else 2 * b.count)
                    chars = 8 + reply + 7  # request, reply, 3.5 characters of silence each
                    wire += chars * bus.char_time + 0.002 + bus.frame_gap
                load += wire / d.poll_interval
            out[f"{gw.id}/{bus.id}"] = (bus.baud, load)
    return out


def speed_refusal(cfg: SiteConfig, profiles: ProfileRegistry, speed: float) -> str | None:
    """Why ``speed`` is too fast for the site's RS-485 lines (Modbus RTU timing is wall time:
    at N times speed a line must carry N times the polls per wall second), or None."""
    lines = line_seconds(cfg, profiles)
    if not lines:
        return None
    name, (baud, load) = max(lines.items(), key=lambda kv: kv[1][1])
    if load * speed <= MAX_LINE_LOAD:
        return None
    fastest = int(MAX_LINE_LOAD / load)
    return (
        f"--speed {speed:g} is too fast for bus {name} ({baud} baud): its polls take "
        f"{load * 100:.2f} % of the line in real time, {load * speed * 100:.0f} % at "
        f"{speed:g}x (at most {MAX_LINE_LOAD * 100:.0f} % leaves room for retries). Modbus "
        f"RTU timing stays real time while everything else is accelerated, so the polls "
        f"would fall behind the clock. The fastest this site runs is --speed {fastest}."
    )


def shared_clock(cfg: SiteConfig, profiles: ProfileRegistry, speed: float) -> Clock | None:
    """The one clock of the demo (simulated time starts now and runs ``speed`` times
    faster), or None after saying why the site's RS-485 lines cannot run that fast."""
    from coldchain.clock import ScaledClock

    refusal = (
        f"--speed must be above 0, got {speed:g}"
        if not speed > 0
        else speed_refusal(cfg, profiles, speed)
    )
    if refusal is not None:
        print(f"coldchain demo: {refusal}", flush=True)
        return None
    return ScaledClock(speed=speed)


def room_lines(state: dict[str, Any]) -> list[str]:
    """One line per simulated room: temperature, humidity, compressor, defrost, door."""
    clock = state["clock"]
    lines = [f"simulated time +{(clock['sim_time'] - clock['start']) / 3600:.2f} h"]
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


def announce(endpoints: list[str], hub: Hub, data: Path, agents: list[str]) -> None:
    """Where everything is, once it is up."""
    for line in endpoints:
        print(line)
    print(f"web: {hub.url}/ (user admin, password in {data / 'hub' / 'admin-password'})")
    print(f"hub: {hub.url}/docs (API), {hub.url}/api/latest, {hub.url}/metrics")
    print(f"agents: {', '.join(agents)}")
    print(
        "Inject a fault: python -m simulator.ctl --url <control URL above> inject "
        "compressor_failure chengqu-centre/cold-room-1.  Ctrl-C stops.",
        flush=True,
    )


async def seed(
    args: argparse.Namespace, cfg: SiteConfig, profiles: ProfileRegistry, hub: Hub, clock: Clock
) -> None:
    """``--history``: simulated readings of the days before now, on an empty store only."""
    import time

    from simulator.history import seed_history

    if args.history <= 0:
        return
    if await hub.store.latest():
        print("history: the store already holds readings; nothing seeded", flush=True)
        return
    print(
        f"history: seeding {args.history:g} days of SIMULATED readings before now (the "
        "simulator's plant, every 5 min; not measured, and not evaluated by the alert rules)",
        flush=True,
    )
    started = time.monotonic()
    n = await seed_history(
        cfg, profiles, hub.store.write, end_ms=clock.now_ms(), days=args.history, seed=args.seed
    )
    print(
        f"history: seeded {n:,} simulated readings in {time.monotonic() - started:.1f} s; "
        "live readings follow",
        flush=True,
    )


async def _run(args: argparse.Namespace) -> int:
    from coldchain.config.loader import load_site_config
    from coldchain.profiles.registry import ProfileRegistry
    from edge_agent.agent import Agent
    from edge_agent.timekeeping import unknown
    from hub.service import Hub
    from simulator.endpoints import describe, simulated_config
    from simulator.runtime import Simulation

    site_path = args.site or EXAMPLE_SITE
    profiles = ProfileRegistry.load()
    config = load_site_config(site_path, profiles)
    clock = shared_clock(config, profiles, args.speed)
    if clock is None:
        return 2
    data: Path = args.data_dir
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration:
        loop.call_later(args.duration, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        broker = args.broker or await stack.enter_async_context(embedded_broker())
        print(
            f"coldchain demo: {site_path.name} at {args.speed:g}x (simulator, agents and hub "
            f"on one clock), broker {broker}"
            f"{'' if args.broker else ' (embedded amqtt)'}, data in {data}/",
            flush=True,
        )
        sim = await stack.enter_async_context(
            Simulation(
                config,
                profiles,
                seed=args.seed,
                broker=broker,
                control_port=0,
                clock=clock,
            )
        )
        doc = simulated_config(config, sim.endpoints())
        doc["uplink"] = {"broker": broker}
        doc["hub"] = {"data_dir": str(data / "hub"), "listen": args.listen}
        live_path = data / "demo-site.yaml"
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
        await asyncio.to_thread(live_path.write_text, text, "utf-8")
        live = load_site_config(live_path, profiles)
        try:
            hub = Hub(live, profiles, data_dir=data / "hub", config_path=live_path, clock=clock)
        except OSError as exc:
            print(
                f"coldchain demo: cannot listen on {args.listen}: {exc.strerror}; "
                "give another address, e.g. --listen 127.0.0.1:0 for a free port"
            )
            return 1
        agents = [
            # The demo's gateways are processes on the hub's own host, on its clock: there
            # is no gateway clock to distrust, whatever the host's NTP state.
            Agent(
                live,
                gw.id,
                profiles,
                data_dir=data / "agents",
                clock=clock,
                clock_synchronised=unknown,
            )
            for gw in live.gateways
        ]
        await seed(args, live, profiles, hub, clock)
        announce(describe(sim.endpoints()), hub, data, [a.gw.id for a in agents])
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(hub.run(), name="hub")]
            tasks += [tg.create_task(a.run(), name=f"agent-{a.gw.id}") for a in agents]
            while not stop.is_set():
                await wait_event(stop, args.every)
                print("\n".join(room_lines(sim.state())))
                s = hub.ingest.stats
                states = [f"{g.id} {g.state}" for g in hub.registry.all()]
                print(
                    f"hub: {s.readings} readings stored, {s.batches} batches, "
                    f"{sum(s.rejected.values())} rejected; gateways: {', '.join(states)}",
                    flush=True,
                )
            for t in tasks:
                t.cancel()
    print("stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    args.data_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_run(args))
