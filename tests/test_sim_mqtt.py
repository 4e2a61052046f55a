"""MQTT sensors publish their vendors' payloads to a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt

from coldchain.profiles.payload import PayloadError, base_topic, decode_payload
from coldchain.profiles.schema import MqttProfile
from coldchain.reading import Quality
from simulator.device import SimDevice
from simulator.mqtt import mqtt_topics
from simulator.runtime import Simulation
from tests.services import Broker, until
from tests.simkit import all_profiles_site, load_site
from tests.sites import shipped_profiles

PROFILES = shipped_profiles()


class Inbox:
    """Every message a subscriber to ``#`` received, in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def on(self, topic: str) -> list[bytes]:
        return [p for t, p in self.messages if t == topic]


@contextlib.asynccontextmanager
async def subscribed(broker: Broker) -> AsyncIterator[Inbox]:
    inbox = Inbox()
    async with aiomqtt.Client(broker.host, broker.port, identifier="sim-test") as client:
        await client.subscribe("#")

        async def collect() -> None:
            async for m in client.messages:
                inbox.messages.append((str(m.topic), bytes(m.payload)))

        task = asyncio.create_task(collect())
        try:
            yield inbox
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def mqtt_devices(sim: Simulation) -> list[tuple[SimDevice, MqttProfile, str]]:
    return [
        (d, d.profile, base_topic(d.profile, d.config.id, d.config.topic))
        for d in sim.plant.devices.values()
        if isinstance(d.profile, MqttProfile)
    ]


async def test_every_mqtt_profile_publishes_its_vendor_format(
    mosquitto: Broker, tmp_path: Path
) -> None:
    config = load_site(tmp_path / "site.yaml", all_profiles_site(PROFILES), PROFILES)
    async with (
        subscribed(mosquitto) as inbox,
        Simulation(config, PROFILES, seed=5, broker=mosquitto.url, mqtt_interval=30) as sim,
    ):
        devices = mqtt_devices(sim)
        assert {p.payload_format for _d, p, _b in devices} >= {"zigbee2mqtt"}
        expected = {t for d, _p, _b in devices for t in mqtt_topics(d)}
        await until(
            lambda: expected <= {t for t, _ in inbox.messages},
            f"a message on each of {sorted(expected)}",
        )
        for dev, profile, base in devices:
            for name in dev.values:
                entry = sim.journal.latest(dev.series(name))
                assert entry is not None, f"{dev.key} {name} was not journaled"
            for topic in {t for t, _ in inbox.messages if t.startswith(base)}:
                for point, decoded in decode_payload(profile, base, topic, inbox.on(topic)[0]):
                    first = sim.journal.entries(dev.series(point.name))[0]
                    assert decoded.value == first.value, f"{dev.key} {point.name}"


async def test_doors_publish_on_change_and_faults_show(mosquitto: Broker, tmp_path: Path) -> None:
    doc = all_profiles_site(PROFILES)
    devices = doc["gateways"][0]["devices"]
    doors = [
        p.id
        for p in PROFILES
        if isinstance(p, MqttProfile) and any(pt.kind == "door" for pt in p.points)
    ]
    assert doors, "a door sensor profile"
    # Two sensors of the same model on the same door: the first goes silent.
    devices += [
        {"id": "door-a", "profile": doors[0], "bus": "local", "room": "freeze"},
        {"id": "door-b", "profile": doors[0], "bus": "local", "room": "freeze"},
    ]
    config = load_site(tmp_path / "site.yaml", doc, PROFILES)
    async with (
        subscribed(mosquitto) as inbox,
        Simulation(
            config, PROFILES, seed=5, broker=mosquitto.url, mqtt_interval=600, tick=0.05
        ) as sim,
    ):
        a, b = sim.plant.devices["gw1/door-a"], sim.plant.devices["gw1/door-b"]
        profile = b.profile
        assert isinstance(profile, MqttProfile)
        base_a, base_b = (base_topic(profile, d.config.id) for d in (a, b))

        def door(base: str) -> list[float | None]:
            out: list[float | None] = []
            for topic, payload in list(inbox.messages):
                if topic.startswith(base + "/") or topic == base:
                    with contextlib.suppress(PayloadError):
                        out += [
                            d.value
                            for p, d in decode_payload(profile, base, topic, payload)
                            if p.kind == "door"
                        ]
            return out

        await until(lambda: bool(door(base_a)) and bool(door(base_b)), "first door states")
        a.view.room.next_door = float("inf")  # no random openings during the test
        sim.inject("silent", a.key)
        heard_a = len(door(base_a))
        sim.inject("door_stuck_open", "depot/freeze")
        await until(lambda: 1.0 in door(base_b), "door-b to report the open door", within=5)
        assert len(door(base_a)) == heard_a, "a silent sensor publishes nothing"

        # Back on the air with a broken payload: it reports the door it missed, garbled.
        count = len(inbox.messages)
        sim.inject("garbage", a.key)
        sim.clear("silent")

        def garbage_from_a() -> bool:
            for topic, payload in inbox.messages[count:]:
                if topic.startswith(base_a):
                    try:
                        decode_payload(profile, base_a, topic, payload)
                    except PayloadError:
                        return True
            return False

        await until(garbage_from_a, "an undecodable payload from door-a", within=5)


async def test_an_open_probe_publishes_a_bad_value(mosquitto: Broker, tmp_path: Path) -> None:
    config = load_site(tmp_path / "site.yaml", all_profiles_site(PROFILES), PROFILES)
    async with (
        subscribed(mosquitto) as inbox,
        Simulation(config, PROFILES, broker=mosquitto.url, mqtt_interval=0.2) as sim,
    ):
        dev, profile, base = next(
            (d, p, b)
            for d, p, b in mqtt_devices(sim)
            if any(pt.kind == "temperature" and pt.valid_range for pt in p.points)
        )
        sim.inject("probe_open", dev.key)
        start = len(inbox.messages)

        def bad_temperature() -> bool:
            for topic, payload in inbox.messages[start:]:
                if topic.startswith(base):
                    for point, decoded in decode_payload(profile, base, topic, payload):
                        if point.kind == "temperature" and decoded.quality is Quality.BAD:
                            return True
            return False

        await until(bad_temperature, f"{dev.key} to publish an out-of-range temperature")
