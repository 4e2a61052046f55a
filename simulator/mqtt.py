"""MQTT sensors: the site's Zigbee2MQTT, Tasmota and Shelly devices publishing their vendor
payloads (:func:`coldchain.profiles.payload.encode_payloads`) to a broker.

Like the real devices they publish when a discrete value changes (a door opens) and
periodically (``interval`` seconds of the simulation's clock, as sensors report on their
own timer), all topics of
a device at once. Faults: ``silent`` and the gateway's ``link_down`` stop a device
publishing; ``garbage`` publishes bytes its decoder cannot read; ``probe_open`` publishes a
value beyond the point's range (or leaves the field out). The connection is supervised: it
reconnects with jittered exponential backoff and never dies silently.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import aiomqtt

from coldchain.clock import WALL, Clock
from coldchain.profiles.payload import PayloadError, base_topic, encode_payloads, topics
from coldchain.profiles.schema import MqttProfile
from coldchain.supervise import Client
from simulator.device import SimDevice
from simulator.faults import FaultKind, FaultSet
from simulator.journal import Journal
from simulator.signals import DISCRETE_KINDS

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, topic: str, payload: bytes) -> object: ...


def parse_broker(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` -> (host, port); raise ValueError saying what is wrong."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme != "mqtt":
        raise ValueError(f"broker {url!r}: use mqtt://host:port (only plain MQTT is simulated)")
    if not parts.hostname:
        raise ValueError(f"broker {url!r}: no host; use mqtt://host:port")
    return parts.hostname, parts.port or 1883


def mqtt_topics(device: SimDevice) -> list[str]:
    """The topics an MQTT device publishes on."""
    assert isinstance(device.profile, MqttProfile)
    return sorted(
        topics(device.profile, base_topic(device.profile, device.config.id, device.config.topic))
    )


@dataclass(eq=False)
class _Sensor:
    device: SimDevice
    profile: MqttProfile
    base: str
    last_discrete: dict[str, float | None] = field(default_factory=dict)
    last_publish: float = -1e18
    published: int = 0


class MqttSensors:
    """All MQTT devices of the site, publishing through one connection."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        devices: list[SimDevice],
        faults: FaultSet,
        journal: Journal,
        interval: float = 10.0,
        tick: float = 0.1,
        clock: Clock = WALL,
    ) -> None:
        self.host, self.port, self.faults, self.journal = host, port, faults, journal
        self.interval, self.tick = interval, tick
        self.clock = clock
        self.sensors: list[_Sensor] = []
        for dev in devices:
            assert isinstance(dev.profile, MqttProfile)
            base = base_topic(dev.profile, dev.config.id, dev.config.topic)
            self.sensors.append(_Sensor(dev, dev.profile, base))
        self.connected = asyncio.Event()
        self.published = 0

    async def run(self) -> None:
        """Publish forever, reconnecting after broker failures (cancel to stop)."""
        backoff = 0.2
        while True:
            try:
                async with Client(
                    self.host,
                    self.port,
                    identifier=f"coldchain-sim-{random.getrandbits(32):08x}",
                    timeout=5,
                ) as client:
                    backoff = 0.2
                    self.connected.set()
                    log.info("mqtt: connected to %s:%s", self.host, self.port)
                    while True:
                        await self.publish_due(client)
                        await asyncio.sleep(self.tick)
            except aiomqtt.MqttError as exc:
                log.warning("mqtt %s:%s: %s; retrying in %.1fs", self.host, self.port, exc, backoff)
            except Exception:  # a bug must not stop the sensors for good; say what broke
                log.exception("mqtt %s:%s: publishing failed; retrying", self.host, self.port)
            self.connected.clear()
            await asyncio.sleep(backoff * random.uniform(0.5, 1.5))  # noqa: S311
            backoff = min(backoff * 2, 30.0)

    async def publish_due(self, client: Publisher) -> None:
        """Publish what is due now through ``client`` (an aiomqtt client, or anything with
        its ``publish``: an in-process run hands the payloads straight to an agent)."""
        now = self.clock.monotonic()
        for s in self.sensors:
            dev = s.device
            wire = self.faults.wire_fault(dev.key, dev.gateway)
            if wire is not None and wire.kind is FaultKind.SILENT:
                continue
            discrete = {
                p.name: dev.values.get(p.name) for p in s.profile.points if p.kind in DISCRETE_KINDS
            }
            if discrete == s.last_discrete and now - s.last_publish < self.interval:
                continue
            s.last_discrete, s.last_publish = discrete, now
            if wire is not None and wire.kind is FaultKind.GARBAGE:
                for topic in topics(s.profile, s.base):
                    await client.publish(topic, b"\xff\xfe{not json")
                continue
            values = {k: v for k, v in dev.values.items() if v is not None}
            wall = time.time()
            sim_ms = self.clock.now_ms()
            try:
                messages = encode_payloads(s.profile, s.base, values, ts_ms=sim_ms)
            except PayloadError as exc:  # a value the vendor format cannot carry: say so
                log.warning("mqtt: %s: cannot encode %s: %s", dev.key, values, exc)
                continue
            for topic, payload in messages.items():
                await client.publish(topic, payload)
            for name in dev.values:
                self.journal.record(
                    dev.series(name),
                    sim_ms=sim_ms,
                    wall_ms=int(wall * 1000),
                    value=dev.values[name],
                    reason="probe open" if dev.probe_fault_on(name) else None,
                )
            s.published += 1
            self.published += 1

    def state(self) -> dict[str, object]:
        return {
            "broker": f"mqtt://{self.host}:{self.port}",
            "connected": self.connected.is_set(),
            "published": self.published,
        }
