"""The running simulation: the plant, its Modbus slaves (a pty per RTU bus, a TCP server per
TCP bus), the MQTT sensors, the fault set, the journal, the control API and the tick that
moves the physics along the accelerated clock.

    async with Simulation(config, profiles, speed=60, seed=1, broker="mqtt://...") as sim:
    # or clock=ScaledClock(...): the one clock the agents and the hub are given too
        sim.endpoints()   # where each bus is served
        sim.inject("silent", "gw-1/probe-2")

Lifetimes are owned by ``async with``: leaving it stops every task, closes every pty and
socket and the control server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any

from coldchain.clock import Clock
from coldchain.config.site import SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import MqttProfile
from simulator.clock import SimClock
from simulator.control import ControlServer
from simulator.faults import FaultKind, FaultSet
from simulator.journal import Journal
from simulator.mqtt import MqttSensors, mqtt_topics, parse_broker
from simulator.plant import Plant
from simulator.rtu import RtuBusServer
from simulator.seeding import seeded
from simulator.tcp import TcpBusServer

log = logging.getLogger(__name__)


class Simulation:
    """A virtual site served on real endpoints."""

    def __init__(
        self,
        config: SiteConfig,
        profiles: ProfileRegistry,
        *,
        speed: float = 1.0,
        seed: int = 0,
        broker: str | None = None,
        control_port: int | None = None,
        tick: float = 0.1,
        mqtt_interval: float = 10.0,
        serve_gaps: bool = False,
        journal_len: int = 3600,
        start: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config, self.profiles = config, profiles
        self.seed, self.tick, self.mqtt_interval = seed, tick, mqtt_interval
        self.broker = parse_broker(broker) if broker else None
        self.control_port = control_port
        # ``clock``: the clock the agents and the hub share (a demo's); else one of ``speed``
        self.clock = SimClock(clock, speed=speed, start=start)
        self.journal = Journal(journal_len)
        self.plant = Plant(
            config,
            profiles,
            seed=seed,
            start=self.clock.start,
            journal=self.journal,
            serve_gaps=serve_gaps,
        )
        self.fault_set = FaultSet(self.plant.targets())
        self.rtu: list[RtuBusServer] = []
        self.tcp: list[TcpBusServer] = []
        self.mqtt: MqttSensors | None = None
        self.control: ControlServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    async def __aenter__(self) -> Simulation:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.plant.advance(self.clock.now(), wall=self.clock.wall())  # values before serving
        mqtt_devices = []
        for gw in self.config.gateways:
            for bus in gw.buses:
                devs = [
                    self.plant.devices[f"{gw.id}/{d.id}"] for d in gw.devices if d.bus == bus.id
                ]
                rng = seeded(self.seed, gw.id, bus.id, "wire")
                if bus.type == "rtu":
                    rtu = RtuBusServer(
                        gateway=gw.id, bus=bus, devices=devs, faults=self.fault_set, rng=rng
                    )
                    self.rtu.append(rtu)
                    await rtu.start()
                elif bus.type == "tcp":
                    tcp = TcpBusServer(
                        gateway=gw.id, bus=bus, devices=devs, faults=self.fault_set, rng=rng
                    )
                    self.tcp.append(tcp)
                    await tcp.start()
                else:
                    mqtt_devices += [d for d in devs if isinstance(d.profile, MqttProfile)]
        if mqtt_devices and self.broker is not None:
            self.mqtt = MqttSensors(
                host=self.broker[0],
                port=self.broker[1],
                devices=mqtt_devices,
                faults=self.fault_set,
                journal=self.journal,
                interval=self.mqtt_interval,
                clock=self.clock.clock,
            )
            self._tasks.append(asyncio.create_task(self.mqtt.run(), name="sim mqtt"))
        self._tasks.append(asyncio.create_task(self._ticker(), name="sim tick"))
        if self.control_port is not None:
            self.control = ControlServer(self, asyncio.get_running_loop(), port=self.control_port)
            self.control.start()

    async def stop(self) -> None:
        if self.control is not None:
            await asyncio.to_thread(self.control.close)
            self.control = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for rtu in self.rtu:
            await rtu.close()
        for tcp in self.tcp:
            await tcp.close()

    async def _ticker(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:  # the tick must go on; say what broke
                log.exception("simulation tick failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick):
                    await self._wake.wait()
            self._wake.clear()

    async def step(self, *, refresh_all: bool = False) -> None:
        """Apply faults, advance the physics to now and refresh what devices serve."""
        self.plant.apply_faults(self.fault_set)
        self.plant.advance(self.clock.now(), wall=self.clock.wall(), refresh_all=refresh_all)
        for tcp in self.tcp:
            await tcp.set_up(not self.fault_set.has(FaultKind.LINK_DOWN, tcp.gateway))

    # -- control (called on the loop) ---------------------------------------------------
    def inject(
        self, kind: str, target: str, *, code: int | None = None, point: str | None = None
    ) -> dict[str, Any]:
        """Activate a fault; values change at once, TCP links on the next tick."""
        fault = self.fault_set.add(kind, target, code=code, point=point)
        self._apply_now()
        return fault.as_dict()

    def clear(self, kind: str | None = None, target: str | None = None) -> list[dict[str, Any]]:
        """Clear matching faults (all without arguments)."""
        gone = [f.as_dict() for f in self.fault_set.clear(kind, target)]
        self._apply_now()
        return gone

    def power_cycle(self, target: str) -> dict[str, Any]:
        """Switch device ``gateway/device`` off and on: configuration written to registers
        that act only after a power cycle (a new unit id or baud) takes effect."""
        dev = self.plant.devices.get(target)
        if dev is None:
            raise KeyError(f"no device {target!r} (give gateway/device)")
        applied = dev.power_cycle()
        return {"target": target, "applied": applied, "unit_id": dev.unit_id, "baud": dev.baud}

    def _apply_now(self) -> None:
        self.plant.apply_faults(self.fault_set)
        self.plant.advance(self.clock.now(), wall=self.clock.wall(), refresh_all=True)
        self._wake.set()

    def faults(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.fault_set.active()]

    def journal_series(self) -> list[str]:
        return self.journal.series()

    def journal_entries(self, series: str, since_wall_ms: int | None) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.journal.entries(series, since_wall_ms=since_wall_ms)]

    def endpoints(self) -> dict[str, Any]:
        """Where everything is served."""
        buses: list[dict[str, Any]] = [
            {
                "gateway": r.gateway,
                "bus": r.bus.id,
                "type": "rtu",
                "path": r.path,
                "baud": r.bus.baud,
                "units": {d.config.id: d.unit_id for d in r.devices},
                "requests": r.requests,  # frames received and replies sent so far, and the
                "replies": r.replies,  # seconds those replies went out late (bench_rtu)
                "late_s": round(r.late, 6),
            }
            for r in self.rtu
        ]
        buses += [
            {
                "gateway": t.gateway,
                "bus": t.bus.id,
                "type": "tcp",
                "host": t.host,
                "port": t.port,
                "units": {d.config.id: d.unit_id for d in t.devices},
                "requests": t.requests,  # served so far (the edge benchmark counts them)
            }
            for t in self.tcp
        ]
        broker = f"mqtt://{self.broker[0]}:{self.broker[1]}" if self.broker else None
        for gw in self.config.gateways:
            for bus in (b for b in gw.buses if b.type == "mqtt"):
                devs = [
                    self.plant.devices[f"{gw.id}/{d.id}"] for d in gw.devices if d.bus == bus.id
                ]
                buses.append(
                    {
                        "gateway": gw.id,
                        "bus": bus.id,
                        "type": "mqtt",
                        "broker": broker,
                        "topics": {d.config.id: mqtt_topics(d) for d in devs},
                    }
                )
        return {
            "control": self.control.url if self.control else None,
            "broker": broker,
            "buses": buses,
        }

    def state(self) -> dict[str, Any]:
        plant = self.plant.state()
        return {
            "clock": {
                "sim_time": self.plant.t,
                "speed": self.clock.speed,
                "start": self.clock.start,
                "wall_elapsed": self.clock.elapsed_wall(),
            },
            "seed": self.seed,
            "rooms": plant["rooms"],
            "devices": plant["devices"],
            "faults": self.faults(),
            "endpoints": self.endpoints(),
            "mqtt": self.mqtt.state() if self.mqtt is not None else None,
        }
