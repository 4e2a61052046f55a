"""The agent: one gateway's pollers, sensor inputs, outbox and uplink, in one task group.

Readings flow poller/input -> report-on-change filter -> outbox (on disk) -> uplink. The
filter and the hand-off are synchronous and cheap; a flusher task writes what was handed off
to the outbox in one transaction per loop turn, so a burst costs one fsync, not hundreds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from coldchain.clock import WALL, Clock, WallClock
from coldchain.config.site import AgentSettings, Device, Gateway, MqttBus, SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import ModbusProfile, MqttProfile, PointKind
from coldchain.reading import Reading
from edge_agent import health, watchdog
from edge_agent.buffer import AsyncOutbox, Outbox, Policy
from edge_agent.fallback import EdgeFallback
from edge_agent.mqtt_input import MqttDevice, MqttInput, mqtt_device
from edge_agent.poller import BusPoller, DeviceState, device_state
from edge_agent.remote import run_command
from edge_agent.report import ReportFilter
from edge_agent.timekeeping import ClockCheck, kernel_synchronised, unknown
from edge_agent.uplink import UplinkLoop

log = logging.getLogger(__name__)


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
        self.cfg, self.gw = cfg, cfg.gateway(gateway_id)
        self.clock = clock  # poll intervals, timestamps, batching, health, fallback rules
        s = cfg.agent
        # Readings taken while the clock is not synchronised are marked (docs/agent.md);
        # ``clock_synchronised`` replaces the kernel's answer (tests, the one-host demo). The
        # kernel speaks for wall time only: an accelerated or hand-moved clock is a fiction.
        kernel = s.clock_check and type(clock) in (Clock, WallClock)
        probe = clock_synchronised or (kernel_synchronised if kernel else unknown)
        self.clock_check = ClockCheck(probe, monotonic=clock.monotonic, wall=clock.now)
        self.data_dir = Path(data_dir or s.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
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
        deadbands = {
            PointKind.TEMPERATURE: s.deadband.temperature,
            PointKind.HUMIDITY: s.deadband.humidity,
            PointKind.SETPOINT: s.deadband.setpoint,
            PointKind.COUNTER: s.deadband.counter,
        }
        self.filter = ReportFilter(deadbands, s.max_silence)
        self._pending: list[Reading] = []
        self._flush = asyncio.Event()
        self.pollers, self.inputs = self._build(profiles)
        self._sensor_password = sensor_password
        self.started = clock.monotonic()
        self.fallback = (  # texts alarms through a GSM modem when the uplink is down too long
            EdgeFallback(
                cfg,
                self.gw.id,
                profiles,
                data_dir=self.data_dir,
                clock_ms=clock.now_ms,
                message_key=message_key,
            )
            if self.gw.fallback is not None
            else None
        )
        self.uplink = UplinkLoop(
            outbox=self.outbox,
            gateway=self.gw.id,
            uplink=cfg.uplink,
            settings=s,
            password=uplink_password,
            message_key=message_key,
            health=self.health,
            fallback=self.fallback,
            clock=clock,
            commands=lambda req: run_command(req, self.pollers, profiles),
        )

    def _build(self, profiles: ProfileRegistry) -> tuple[list[BusPoller], list[MqttInput]]:
        s, gw = self.cfg.agent, self.gw
        pollers, inputs = [], []
        for bus in gw.buses:
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

    def sink(self, readings: Sequence[tuple[Reading, PointKind]]) -> None:
        """Take readings from a poller or input (synchronous, never blocks)."""
        readings = self.clock_check.mark(readings)
        admitted = [r for r, kind in readings if self.filter.admit(r, kind)]
        if admitted:
            self._pending.extend(admitted)
            self._flush.set()
            if self.fallback is not None:
                self.fallback.feed(admitted)

    async def _flusher(self) -> None:
        while True:
            await self._flush.wait()
            await self.flush()

    async def flush(self) -> None:
        """Write what was handed off to the outbox (one transaction) and wake the uplink."""
        self._flush.clear()
        batch, self._pending = self._pending, []
        if batch:
            await self.outbox.append(batch)
            self.uplink.wake()

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
                for p in self.pollers:
                    tg.create_task(p.run(), name=f"bus-{p.bus.id}")
                for i in self.inputs:
                    tg.create_task(
                        i.run(password=self._sensor_password), name=f"sensors-{i.bus.id}"
                    )
                watchdog.notify("READY=1")
        finally:
            watchdog.notify("STOPPING=1")
            await asyncio.shield(self.flush())
            for p in self.pollers:
                p.link.close()
            self.outbox.close()


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
