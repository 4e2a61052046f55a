"""The agent: one gateway's pollers, sensor inputs, outbox and uplink, in one task group.

Readings flow poller/input -> report-on-change filter -> outbox (on disk) -> uplink. The
filter and the hand-off are synchronous and cheap; a flusher task writes what was handed off
to the outbox in one transaction per commit window (``agent.batch_interval``, 1 s), every
device's readings of the window together, so the card sees one fsync a second however many
devices there are. A power cut loses at most the open window's readings, none committed.
News (edge_agent/urgency.py) and a full window (:data:`WINDOW_MAX`) end it early.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence, Set
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coldchain.clock import WALL, Clock, WallClock
from coldchain.config.site import AgentSettings, Device, Gateway, MqttBus, SiteConfig
from coldchain.config.topology import PointInfo, site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import ModbusProfile, MqttProfile, PointKind
from coldchain.protocol.limits import AGENT_MAX_BATCH_SIZE
from coldchain.reading import Reading
from coldchain.supervise import wait_event
from edge_agent import health, watchdog
from edge_agent.buffer import AsyncOutbox, Outbox, Policy
from edge_agent.mqtt_input import MqttDevice, MqttInput, mqtt_device
from edge_agent.poller import BusPoller, DeviceState, device_state
from edge_agent.reconfig import Reconfigurer
from edge_agent.report import ReportFilter
from edge_agent.timekeeping import ClockCheck, kernel_synchronised, unknown
from edge_agent.uplink import UplinkLoop
from edge_agent.urgency import Budget, Urgency

if TYPE_CHECKING:
    from coldchain.protocol.commands import Reply, Request
    from edge_agent.fallback import EdgeFallback

log = logging.getLogger(__name__)

WINDOW_MAX = 10_000
"""Readings an open commit window holds at most (a few MB): past it the window is committed
early. It is cut into batches of ``agent.batch_size`` either way, so a gateway of a thousand
devices still commits once a second."""


class Agent:
    """Everything one gateway runs."""

    def __init__(
        self,
        cfg: SiteConfig,
        gateway_id: str,
        profiles: ProfileRegistry,
        *,
        data_dir: Path | None = None,
        uplink_password: str | None = None,
        sensor_password: str | None = None,
        message_key: bytes | None = None,
        clock: Clock = WALL,
        clock_synchronised: Callable[[], bool | None] | None = None,
    ) -> None:
        self.clock = clock  # poll intervals, timestamps, batching, health, fallback rules
        # where the outbox lives comes from the gateway's own config (or --data-dir), never
        # from the centre: a revision pushed from there is kept in it
        self.data_dir = Path(data_dir or cfg.agent.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # the last revision pushed from the centre and applied (edge_agent/reconfig.py)
        self.reconfig = Reconfigurer(self, self.data_dir, gateway_id)
        cfg, profiles = self.reconfig.restore(cfg, profiles)
        self.cfg, self.gw, self.profiles = cfg, cfg.gateway(gateway_id), profiles
        s = cfg.agent
        # Readings taken while the clock is not synchronised are marked (docs/agent.md);
        # ``clock_synchronised`` replaces the kernel's answer (tests, the one-host demo). The
        # kernel speaks for wall time only: an accelerated or hand-moved clock is a fiction.
        kernel = s.clock_check and type(clock) in (Clock, WallClock)
        probe = clock_synchronised or (kernel_synchronised if kernel else unknown)
        self.clock_check = ClockCheck(probe, monotonic=clock.monotonic, wall=clock.now)
        policy = Policy(
            max_bytes=s.buffer_max_mb * 1024 * 1024,
            keep_recent_s=s.keep_recent,
            thin_interval_s=s.thin_interval,
        )
        outbox = Outbox(
            self.data_dir / f"{self.gw.id}.outbox.db",
            site=self.gw.site,
            gateway=self.gw.id,
            policy=policy,
            clock_ms=clock.now_ms,
        )
        self.outbox = AsyncOutbox(outbox)
        self.filter = ReportFilter(deadbands_of(cfg.agent), cfg.agent.max_silence)
        # a state change or a room limit crossed goes out at once (edge_agent/urgency.py)
        self.urgency = Urgency(cfg, self._own_points(cfg, profiles))
        self._urgent = False  # news waits in the window: commit early when the budget allows
        self._budget = Budget(monotonic=clock.monotonic)
        self._pending: list[Reading] = []  # the open commit window
        self._opened = 0.0  # when the open window's first reading came (clock seconds)
        self._flush = asyncio.Event()  # a window is open
        self._now = asyncio.Event()  # ... and is to be committed now
        self.pollers, self.inputs = self._build(profiles)
        self._buses = {b.id: bus_key(cfg, b.id, profiles) for b in self.gw.buses}
        self._tasks: dict[str, asyncio.Task[None]] = {}  # by bus id, while running
        self._tg: asyncio.TaskGroup | None = None
        self._sensor_password = sensor_password
        self.started = clock.monotonic()
        # texts alarms through a GSM modem when the uplink is down too long; only a gateway
        # with one loads the alert evaluator and the SMS stack (about 5 MB of memory)
        self.fallback: EdgeFallback | None = None
        if self.gw.fallback is not None:
            from edge_agent.fallback import EdgeFallback

            self.fallback = EdgeFallback(
                cfg,
                self.gw.id,
                profiles,
                data_dir=self.data_dir,
                clock_ms=clock.now_ms,
                message_key=message_key,
            )
        self.uplink = UplinkLoop(
            outbox=self.outbox,
            gateway=self.gw.id,
            uplink=cfg.uplink,
            settings=cfg.agent,
            password=uplink_password,
            message_key=message_key,
            health=self.health,
            fallback=self.fallback,
            clock=clock,
            commands=self._command,
            configs=self.reconfig.on_revision,
        )

    async def _command(self, req: Request) -> Reply:
        """A command from the centre (a scan, a read): its code is loaded only when one comes,
        not kept in a gateway's memory for the days between."""
        from edge_agent.remote import run_command

        return await run_command(req, self.pollers, self.profiles)

    def _build(
        self, profiles: ProfileRegistry, only: Set[str] | None = None
    ) -> tuple[list[BusPoller], list[MqttInput]]:
        """The pollers and sensor inputs of the gateway's buses (of those in ``only``)."""
        s, gw = self.cfg.agent, self.gw
        pollers, inputs = [], []
        for bus in gw.buses:
            if only is not None and bus.id not in only:
                continue
            devices = [d for d in gw.devices if d.bus == bus.id]
            if isinstance(bus, MqttBus):
                mqtt_devices = mqtt_devices_of(gw, devices, profiles)
                if mqtt_devices:
                    inputs.append(MqttInput(bus, mqtt_devices, self.sink, clock=self.clock))
                continue
            states = modbus_states_of(gw, devices, profiles, s)
            if states:
                pollers.append(
                    BusPoller(bus, states, self.sink, backoff_max=s.backoff_max, clock=self.clock)
                )
        return pollers, inputs

    async def reconfigure(self, cfg: SiteConfig, profiles: ProfileRegistry) -> set[str]:
        """Run on ``cfg`` from now on (a revision from the centre, or the way back from one):
        the buses whose settings, devices or profiles changed are stopped and started anew,
        removed ones closed, new ones opened; the others poll on undisturbed, and the outbox
        and the uplink are not touched. Returns the ids of the buses started anew."""
        self.urgency.retune(cfg, self._own_points(cfg, profiles))
        new = {b.id: bus_key(cfg, b.id, profiles) for b in cfg.gateway(self.gw.id).buses}
        changed = {b for b, key in new.items() if self._buses.get(b) != key}
        gone = (set(self._buses) - set(new)) | changed
        for p in [p for p in self.pollers if p.bus.id in gone]:
            await self._stop(p.bus.id)
            p.link.close()  # the port is free for the bus's new poller
            self.pollers.remove(p)
        for i in [i for i in self.inputs if i.bus.id in gone]:
            await self._stop(i.bus.id)
            self.inputs.remove(i)
        self.cfg, self.gw, self.profiles = cfg, cfg.gateway(self.gw.id), profiles
        self._buses = new
        self.filter.retune(deadbands_of(cfg.agent), cfg.agent.max_silence)
        self.uplink.settings = cfg.agent
        pollers, inputs = self._build(profiles, only=changed)
        self.pollers += pollers
        self.inputs += inputs
        for p in pollers:
            self._start(p)
        for i in inputs:
            self._start(i)
        return changed

    async def _stop(self, bus: str) -> None:
        task = self._tasks.pop(bus, None)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # not ``await task``: our own cancellation must pass

    def _start(self, source: BusPoller | MqttInput) -> None:
        if self._tg is None:  # not running yet: run() starts it
            return
        bus = source.bus.id
        if isinstance(source, BusPoller):
            task = self._tg.create_task(source.run(), name=f"bus-{bus}")
        else:
            task = self._tg.create_task(
                source.run(password=self._sensor_password), name=f"sensors-{bus}"
            )
        self._tasks[bus] = task

    def _own_points(self, cfg: SiteConfig, profiles: ProfileRegistry) -> list[PointInfo]:
        return [p for p in site_points(cfg, profiles) if p.sid.gateway == self.gw.id]

    def sink(self, readings: Sequence[tuple[Reading, PointKind]]) -> None:
        """Take readings from a poller or input (synchronous, never blocks)."""
        readings = self.clock_check.mark(readings)
        admitted = [r for r, kind in readings if self.filter.admit(r, kind)]
        if admitted:
            if not self._pending:
                self._opened = self.clock.monotonic()
            self._pending.extend(admitted)
            if self.urgency.news(admitted):
                self._urgent = True
            if self._urgent and self._budget.take():
                self._urgent = False
                self.uplink.stats.urgent_batches += 1
                self._now.set()
            elif len(self._pending) >= WINDOW_MAX:
                self._now.set()
            self._flush.set()
            if self.fallback is not None:
                self.fallback.feed(admitted)

    def _max_batch(self) -> int:
        # never more than the protocol lets an agent send (the hub refuses larger)
        return min(self.cfg.agent.batch_size, AGENT_MAX_BATCH_SIZE)

    @property
    def waiting(self) -> int:
        """Readings in the open commit window (not yet on disk)."""
        return len(self._pending)

    async def _flusher(self) -> None:
        while True:
            await self._flush.wait()
            left = self.cfg.agent.batch_interval - (self.clock.monotonic() - self._opened)
            if left > 0 and not self._now.is_set():
                await wait_event(self._now, self.clock.to_wall(left))
            await self.flush()

    async def flush(self) -> None:
        """Commit the open window to the outbox (one transaction) and hand the batches it
        made to the uplink."""
        self._flush.clear()
        self._now.clear()
        batch, self._pending = self._pending, []
        self._urgent = False
        if batch:
            self.uplink.committed(await self.outbox.append(batch, self._max_batch()))

    async def health(self) -> dict[str, Any]:
        report = health.report(
            started=self.started,
            buffer=await self.outbox.stats(),
            uplink=self.uplink.stats,
            pollers=self.pollers,
            inputs=self.inputs,
            suppressed=self.filter.suppressed,
            clock=self.clock,
            data_dir=self.data_dir,
            clock_synchronised=lambda: self.clock_check.state,
            clock_step=self.clock_check.last_step,
        )
        if self.fallback is not None:
            report["fallback"] = dataclasses.asdict(self.fallback.stats)
        return report

    async def run(self) -> None:
        """Run until cancelled; on the way out, write what is pending and close the outbox."""
        log.info(
            "agent %s: %d Modbus buses, %d sensor brokers, outbox %s",
            self.gw.id,
            len(self.pollers),
            len(self.inputs),
            self.outbox.sync.epoch,
        )
        interval = watchdog.watchdog_interval()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._flusher(), name="flusher")
                if interval is not None:  # systemd's WatchdogSec (deploy/pi)
                    tg.create_task(
                        watchdog.keep_alive(self.outbox.stats, interval), name="watchdog"
                    )
                tg.create_task(self.uplink.run(), name="uplink")
                if self.fallback is not None:
                    tg.create_task(self.fallback.run(), name="fallback")
                self._tg = tg
                for p in self.pollers:
                    self._start(p)
                for i in self.inputs:
                    self._start(i)
                watchdog.notify("READY=1")
        finally:
            self._tg = None
            watchdog.notify("STOPPING=1")
            await asyncio.shield(self.flush())
            for p in self.pollers:
                p.link.close()
            self.outbox.close()


def deadbands_of(s: AgentSettings) -> dict[PointKind, float]:
    return {
        PointKind.TEMPERATURE: s.deadband.temperature,
        PointKind.HUMIDITY: s.deadband.humidity,
        PointKind.SETPOINT: s.deadband.setpoint,
        PointKind.COUNTER: s.deadband.counter,
    }


def bus_key(cfg: SiteConfig, bus: str, profiles: ProfileRegistry) -> str:
    """What a bus's poller is built from (the bus, its devices, their profiles, the agent's
    poll settings), as text: equal keys, nothing to rebuild."""
    gw = next(g for g in cfg.gateways if any(b.id == bus for b in g.buses))
    devices = [d for d in gw.devices if d.bus == bus]
    s = cfg.agent
    return json.dumps(
        [
            next(b for b in gw.buses if b.id == bus).model_dump(mode="json"),
            [d.model_dump(mode="json") for d in devices],
            [profiles.get(p).model_dump(mode="json") for p in sorted({d.profile for d in devices})],
            [s.fill_registers, s.fill_bits, s.backoff_max],
        ],
        sort_keys=True,
    )


def mqtt_devices_of(
    gw: Gateway, devices: Sequence[Device], profiles: ProfileRegistry
) -> list[MqttDevice]:
    """The MQTT sensors among ``devices`` (of one MQTT bus of ``gw``), ready to subscribe."""
    out = []
    for d in devices:
        profile = profiles.get(d.profile)
        assert isinstance(profile, MqttProfile)  # checked by the config
        out.append(mqtt_device(d, profile, site=gw.site, gateway=gw.id))
    return out


def modbus_states_of(
    gw: Gateway, devices: Sequence[Device], profiles: ProfileRegistry, s: AgentSettings
) -> list[DeviceState]:
    """The Modbus devices among ``devices`` (of one bus of ``gw``), planned for polling."""
    out = []
    for d in devices:
        profile = profiles.get(d.profile)
        assert isinstance(profile, ModbusProfile)  # checked by the config
        out.append(
            device_state(
                d,
                profile,
                site=gw.site,
                gateway=gw.id,
                fill_registers=s.fill_registers,
                fill_bits=s.fill_bits,
            )
        )
    return out
