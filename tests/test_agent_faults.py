"""Faults the agent must survive with no reading lost or doubled: the central broker down for
two minutes, the agent killed with -9 during a burst, malformed sensor payloads."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import pytest

from coldchain.reading import SeriesId
from edge_agent.buffer import snapshot
from tests.agentkit import Recording, agents, all_series, county
from tests.services import Broker, MosquittoProcess, until
from tests.testhub import AckingHub, running_hub

# The issue asks for a two-minute outage; COLDCHAIN_OUTAGE_S shortens it for local runs.
OUTAGE_S = float(os.environ.get("COLDCHAIN_OUTAGE_S", "120"))


def hub_keys(hub: AckingHub, gateway: str) -> set[tuple[SeriesId, int]]:
    return {k for k in hub.store if k[0].gateway == gateway}


@pytest.mark.slow
@pytest.mark.timeout(OUTAGE_S + 240)
async def test_broker_down_two_minutes_loses_nothing(
    tmp_path: Path, restartable_mosquitto: MosquittoProcess
) -> None:
    broker = restartable_mosquitto.broker
    assert broker is not None
    gateways = ["gw-centre-cold", "gw-centre-hall"]
    async with (
        county(tmp_path, broker, poll="1s") as c,
        running_hub(broker.host, broker.port) as hub,
        agents(c, tmp_path, only=gateways) as running,
    ):
        recs = {a.gw.id: Recording(a) for a in running}
        expected = set().union(*(all_series(c.cfg, c.profiles, g) for g in gateways))
        await until(lambda: expected <= hub.series(), "every series before the outage", 30)
        restartable_mosquitto.stop()
        down_at = time.monotonic()
        before = {g: len(r.readings) for g, r in recs.items()}
        await until(lambda: not any(a.uplink.stats.connected for a in running), "uplinks down")
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        during = {g: len(r.readings) - before[g] for g, r in recs.items()}
        restartable_mosquitto.start()
        # everything buffered until the broker came back must reach the hub: the uplinks
        # retry at most every 30 s (jittered), then drain the backlog
        want = {g: set(r.readings) for g, r in recs.items()}
        await until(
            lambda: all(want[g] <= hub_keys(hub, g) for g in gateways),
            "every reading buffered during the outage at the hub",
            within=120,
        )
        for g, rec in recs.items():
            assert during[g] > 0, "readings were taken and buffered during the outage"
            for key in want[g]:
                assert hub.store[key] == rec.readings[key]
        assert all(a.uplink.stats.connects >= 2 for a in running)


def outbox_snapshot(path: Path) -> set[tuple[str, int]]:
    """(device/point, ts) of every reading in an outbox file, WAL included."""
    if not path.exists():
        return set()
    try:
        return {(f"{device}/{point}", ts) for device, point, ts in snapshot(path)}
    except sqlite3.OperationalError:  # the agent is still creating the file
        return set()


def start_agent(config: Path, gateway: str, data: Path, broker: Broker) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coldchain.cli",
            "agent",
            str(config),
            "--gateway",
            gateway,
            "--data-dir",
            str(data),
            "--broker",
            broker.url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
async def test_agent_killed_during_a_burst_loses_nothing(tmp_path: Path, mosquitto: Broker) -> None:
    gw = "gw-centre-cold"
    data = tmp_path / "agent"
    outbox = data / f"{gw}.outbox.db"
    async with (
        county(
            tmp_path,
            mosquitto,
            poll="500ms",
            batch_size=50,
            max_silence="500ms",  # every poll is a reading: a dense burst
        ) as c,
        running_hub(mosquitto.host, mosquitto.port) as hub,
    ):
        site = c.cfg.gateway(gw).site
        hub.acking = False  # the hub is away: a backlog builds up
        proc = start_agent(c.path, gw, data, mosquitto)
        try:
            await until(
                lambda: outbox.exists() and len(outbox_snapshot(outbox)) > 400,
                "a backlog of 400 readings",
                within=60,
            )
            hub.acking = True  # the burst: the backlog drains in batches of 50
            await until(lambda: len(hub_keys(hub, gw)) > 100, "the drain under way", within=30)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
        left = outbox_snapshot(outbox)
        assert left, "the kill should have come mid-drain"
        at_kill = hub_keys(hub, gw)
        proc = start_agent(c.path, gw, data, mosquitto)
        try:
            wanted = {(SeriesId(site, gw, *n.split("/")), ts) for n, ts in left}
            await until(
                lambda: wanted <= hub_keys(hub, gw), "everything left in the outbox", within=60
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""
        assert at_kill | wanted <= hub_keys(hub, gw)
        assert not hub.rejected
        await until(lambda: hub.status.get(gw) == "offline", "the clean stop saying so", 10)


@pytest.mark.slow
async def test_malformed_sensor_payloads_are_counted_and_nothing_else_moves(
    tmp_path: Path, mosquitto: Broker
) -> None:
    gw = "gw-dongtang"
    async with (
        county(tmp_path, mosquitto, poll="1s") as c,
        running_hub(mosquitto.host, mosquitto.port) as hub,
        agents(c, tmp_path, only=[gw]) as (agent,),
    ):
        expected = all_series(c.cfg, c.profiles, gw)
        await until(lambda: expected <= hub.series(), "every series of the gateway", 30)
        (inp,) = agent.inputs
        door = next(d for d in inp.devices if d.device.id == "fruit-door")
        probe = next(d for d in inp.devices if d.device.id == "precool-probe")
        garbage = [
            (door.base, b"{not json"),
            (door.base, b'{"contact": "maybe", "battery": 90}'),
            (door.base, b"\xff\xfe"),
            (door.base, b"[1, 2, 3]"),
            (f"tele/{probe.device.id}/SENSOR", b'{"DS18B20": {"Temperature": "hot"}}'),
        ]
        before = (door.malformed, probe.malformed, len(hub.store))
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as pub:
            for topic, payload in garbage:
                await pub.publish(topic, payload, qos=1)
        await until(lambda: door.malformed == before[0] + 4, "the door's bad payloads counted")
        await until(lambda: probe.malformed == before[1] + 1, "the probe's bad payload counted")
        # nothing else disturbed: the input still runs and good data keeps arriving
        assert inp.connected
        await until(lambda: len(hub.store) > before[2] + 20, "more readings after the garbage")
        # the door's next good message is decoded as before
        sent_at = time.time_ns() // 1_000_000
        await until(lambda: (door.last_seen_ms or 0) > sent_at, "a good door message after")
        health = await agent.health()
        assert health["devices"]["fruit-door"]["malformed"] == door.malformed
        assert probe.last_error is not None
        assert "DS18B20.Temperature" in probe.last_error
