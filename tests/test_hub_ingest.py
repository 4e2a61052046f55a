"""The hub's ingest against a real Mosquitto and the real store: the path from the simulator
through the agents to the store equals the simulator's ground truth; duplicates are stored
once; batches from unknown gateways, on foreign topics, with a bad schema or unknown series
are rejected, counted and never stored; the hub killed with -9 mid-ingest loses nothing."""

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

from coldchain.config.site import InfluxStoreSettings
from coldchain.protocol.messages import Batch, decode_ack, encode_batch, pack
from coldchain.protocol.topics import Topics
from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.base import Store
from coldchain.store.lineproto.store import InfluxStore
from tests.agentkit import Recording, agents, all_series, county
from tests.hubkit import running_hub_service
from tests.services import Broker, until

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

NOW = time.time_ns() // 1_000_000


@pytest.mark.parametrize("backend", ["sqlite", "victoriametrics"])
async def test_simulator_to_store_equals_ground_truth(
    tmp_path: Path, mosquitto: Broker, request: pytest.FixtureRequest, backend: str
) -> None:
    store: Store | None = None
    if backend == "victoriametrics":
        vm = request.getfixturevalue("victoria_metrics")
        store = InfluxStore.from_settings(InfluxStoreSettings(type="influx", url=vm.url))
    async with (
        county(tmp_path, mosquitto) as c,
        running_hub_service(c.cfg, c.profiles, tmp_path / "hub", mosquitto.url, store=store) as hub,
        agents(c, tmp_path) as running,
    ):
        expected = all_series(c.cfg, c.profiles)

        async def everything() -> bool:
            if isinstance(hub.store, InfluxStore):
                await hub.store.settle()
            return expected <= set(await hub.store.series())

        await until(everything, "every series in the store", within=30)
        checked = 0
        for series in sorted(expected):
            served = c.sim.journal_entries(str(series), None)
            for r in await hub.store.raw(series, 0, time.time_ns() // 1_000_000 + 1000):
                if r.quality is not Quality.GOOD or not served:
                    continue
                cal = r.meta.get("calibration", 0.0)
                assert r.value is not None
                candidates = [e["value"] for e in served if e["wall_ms"] <= r.ts_ms + 5]
                assert any(abs(r.value - cal - v) < 1e-6 for v in candidates[-20:]), series
                checked += 1
        assert checked >= len(expected) // 2
        assert not hub.ingest.stats.rejected
        await until(lambda: {g.state for g in hub.registry.all()} == {"online"}, "all online")
        health = hub.registry.get("gw-centre-cold")
        assert health is not None
        assert health.version
        # the agents' own status and health reports pass the hub's validation
        await until(lambda: hub.registry.get("gw-centre-cold").report is not None, "health")  # type: ignore[union-attr]
        assert not hub.ingest.stats.rejected_messages
        assert not hub.ingest.stats.rejected_values
        assert all(a.uplink.stats.readings_acked > 0 for a in running)


def batch(gw: str, site: str, seq: int, device: str, point: str, value: float) -> Batch:
    return Batch(gw, site, "e-test", seq, [Reading(SeriesId(site, gw, device, point), NOW, value)])


async def test_bad_batches_are_rejected_and_duplicates_stored_once(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with county(tmp_path, mosquitto) as c:
        t = Topics()
        async with (
            running_hub_service(c.cfg, c.profiles, tmp_path / "hub", mosquitto.url) as hub,
            aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="gw-centre-cold") as gw,
        ):
            await gw.subscribe(t.topic("gw-centre-cold", "ack"), qos=1)
            await until(lambda: hub.ingest.stats.connected, "the hub subscribed")
            good = batch(
                "gw-centre-cold", "chengqu-centre", 1, "cr1-probe-door", "temperature", 3.5
            )
            tele = t.topic("gw-centre-cold", "telemetry")
            cases = [
                (
                    t.topic("gw-unknown", "telemetry"),
                    encode_batch(batch("gw-unknown", "chengqu-centre", 1, "x", "y", 1.0)),
                ),
                (t.topic("gw-meilin", "telemetry"), encode_batch(good)),  # foreign topic
                (tele, b"\x93garbage"),
                (tele, pack({"v": 1, "gw": "gw-centre-cold"})),
                (
                    tele,
                    encode_batch(
                        batch(
                            "gw-centre-cold", "chengqu-centre", 2, "cr1-probe-door", "pressure", 1.0
                        )
                    ),
                ),
                (
                    tele,
                    encode_batch(
                        batch(
                            "gw-centre-cold", "meilin-tea", 3, "cr1-probe-door", "temperature", 1.0
                        )
                    ),
                ),
            ]
            for topic, payload in cases:
                await gw.publish(topic, payload, qos=1)
            await gw.publish(tele, encode_batch(good), qos=1)
            await gw.publish(tele, encode_batch(good), qos=1)  # a resend
            acks = []
            async with asyncio.timeout(10):
                async for message in gw.messages:
                    acks.append(decode_ack(bytes(message.payload)))
                    if len(acks) == 2:
                        break
            assert acks == [("e-test", [1]), ("e-test", [1])]
            stats = hub.ingest.stats
            assert dict(stats.rejected) == {
                "unknown_gateway": 1,
                "foreign_topic": 1,
                "schema": 3,
                "unknown_series": 1,
            }
            assert (stats.readings, stats.duplicates) == (1, 1)
            stored = set(await hub.store.series())
            assert stored == {good.readings[0].series}
            (only,) = await hub.store.raw(good.readings[0].series, 0, NOW + 1)
            assert only == good.readings[0]


def store_keys(path: Path) -> set[tuple[str, int]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "series" in tables, tables
        rows = db.execute(
            "SELECT s.site || '/' || s.gateway || '/' || s.device || '/' || s.point, r.ts "
            "FROM reading r JOIN series s ON s.id = r.series"
        ).fetchall()
    finally:
        db.close()
    return {(name, ts) for name, ts in rows}


@pytest.mark.slow
async def test_hub_killed_mid_ingest_loses_and_doubles_nothing(
    tmp_path: Path, mosquitto: Broker
) -> None:
    data = tmp_path / "hub"

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coldchain.cli",
                "hub",
                str(c.path),
                "--data-dir",
                str(data),
                "--broker",
                mosquitto.url,
                "--listen",
                "127.0.0.1:0",
                "--insecure",  # the test's broker is anonymous
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    async with county(tmp_path, mosquitto, poll="500ms", max_silence="500ms") as c:
        async with agents(c, tmp_path, only=["gw-centre-cold", "gw-meilin"]) as running:
            recs = [Recording(a) for a in running]
            proc = start()
            try:
                await until(
                    lambda: sum(a.uplink.stats.readings_acked for a in running) > 200,
                    "the hub storing",
                    within=30,
                )
                os.kill(proc.pid, signal.SIGKILL)  # mid-ingest: acks and writes in flight
                proc.wait()
                acked_at_kill = sum(a.uplink.stats.readings_acked for a in running)
                await asyncio.sleep(1.0)  # readings pile up in the outboxes meanwhile
                proc = start()

                await until(
                    lambda: (
                        sum(a.uplink.stats.readings_acked for a in running) > acked_at_kill + 100
                    ),
                    "the restarted hub storing",
                    within=30,
                )
                # everything the agents buffered up to now, before and after the kill, must
                # reach the store (the agents resend what the dead hub never acknowledged)
                want = {(str(s), ts) for rec in recs for s, ts in rec.readings}
                await until(
                    lambda: want <= store_keys(data / "store.db"),
                    "every buffered reading stored",
                    within=60,
                )
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
