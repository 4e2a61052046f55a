"""Local wireless sensors: Zigbee2MQTT, Tasmota and Shelly devices publishing to the Pi's
own broker, decoded through their profiles.

A malformed payload is counted per device and logged (rate-limited by the log handler), and
whatever part of the message did decode is kept; it never stops the loop. The connection is
supervised like every network loop: jittered, capped exponential backoff, forever.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from coldchain.clock import WALL, Clock
from coldchain.config.site import Device, MqttBus
from coldchain.profiles.payload import PayloadError, base_topic, decode_payload, topics
from coldchain.profiles.schema import MqttProfile, PointKind
from coldchain.reading import Reading, SeriesId
from coldchain.supervise import Client, describe, network_error
from edge_agent.calibration import to_reading

log = logging.getLogger(__name__)

Sink = Callable[[list[tuple[Reading, PointKind]]], None]


@dataclass
class MqttDevice:
    """An MQTT sensor as the input knows it."""

    device: Device
    profile: MqttProfile
    base: str
    site: str
    gateway: str
    messages: int = 0
    malformed: int = 0
    last_error: str | None = None
    last_seen_ms: int | None = None

    def series(self, point: str) -> SeriesId:
        return SeriesId(self.site, self.gateway, self.device.id, point)


def mqtt_device(device: Device, profile: MqttProfile, *, site: str, gateway: str) -> MqttDevice:
    return MqttDevice(device, profile, base_topic(profile, device.id, device.topic), site, gateway)


class MqttInput:
    """Subscribes to the sensors of one MQTT bus and turns their messages into readings."""

    def __init__(
        self, bus: MqttBus, devices: Sequence[MqttDevice], sink: Sink, *, clock: Clock = WALL
    ) -> None:
        self.bus, self.sink = bus, sink
        self.clock = clock  # stamps readings when received; reconnects stay wall time
        self.devices = list(devices)
        self._by_topic: dict[str, MqttDevice] = {}
        for d in self.devices:
            for topic in topics(d.profile, d.base):
                self._by_topic[topic] = d
        self.connected = False
        self.unknown_topic = 0

    def handle(self, topic: str, payload: bytes) -> None:
        """Decode one message (public for tests and replay)."""
        d = self._by_topic.get(topic)
        if d is None:
            self.unknown_topic += 1
            return
        ts = self.clock.now_ms()
        d.messages += 1
        try:
            decoded = decode_payload(d.profile, d.base, topic, payload)
        except PayloadError as exc:
            d.malformed += 1
            d.last_error = str(exc)
            log.warning("malformed payload from %s: %s", d.device.id, exc)
            decoded = exc.decoded
        out = []
        for point, dec in decoded:
            override = d.device.points.get(point.name)
            if override is None or override.enabled:
                out.append((to_reading(d.series(point.name), ts, dec, override), point.kind))
        if out:
            d.last_seen_ms = ts
            self.sink(out)

    async def run(self, *, password: str | None = None) -> None:
        backoff = 0.5
        while True:
            try:
                async with Client(
                    self.bus.host,
                    self.bus.port,
                    username=self.bus.username,
                    password=password,
                    keepalive=30,
                    timeout=10,
                ) as client:
                    for topic in self._by_topic:
                        await client.subscribe(topic, qos=0)
                    self.connected, backoff = True, 0.5
                    log.info(
                        "listening to %d sensor topics on %s:%d",
                        len(self._by_topic),
                        self.bus.host,
                        self.bus.port,
                    )
                    async for message in client.messages:
                        payload = message.payload
                        data = (
                            payload
                            if isinstance(payload, bytes | bytearray)
                            else str(payload).encode()
                        )
                        self.handle(str(message.topic), bytes(data))
            except Exception as exc:  # supervised: nothing but cancellation ends the loop
                log.warning(
                    "sensor broker %s:%d: %s; retrying in %.1fs",
                    self.bus.host,
                    self.bus.port,
                    describe(exc),
                    backoff,
                    exc_info=not network_error(exc),
                )
            finally:
                self.connected = False
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
            backoff = min(backoff * 2, 30.0)
