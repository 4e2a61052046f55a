"""Two central brokers (issue 18): agents list both (``uplink.standby_brokers``) and the hub
subscribes to both; one broker stopped under load, the agents move to the other with their
outboxes, and every reading they took reaches the store once, as taken; then back.

Real parts: two Mosquittos for the centre (a third for the simulated sensors, which stays
up), the simulated county's Modbus devices, two real agents, the real hub and its store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from coldchain.config.loader import load_site_config
from coldchain.protocol.messages import Batch, encode_batch
from coldchain.protocol.topics import Topics
from coldchain.reading import Reading, SeriesId
from coldchain.store.sqlite.store import SqliteStore
from firmware_configs import SITES_DIR
from gateway.ingest import Ingest, SessionAcks
from tests.agentkit import Recording, agents, all_series, county
from tests.hubkit import running_hub_service
from tests.services import Broker, MosquittoProcess, until
from tests.sites import shipped_profiles

GATEWAYS = ["gw-centre-cold", "gw-centre-hall"]


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_one_broker_stopped_agents_move_to_the_other_and_nothing_is_lost_or_doubled(
    tmp_path: Path, mosquitto: Broker
) -> None:
    a, b = MosquittoProcess(tmp_path / "a"), MosquittoProcess(tmp_path / "b")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    url_a, url_b = a.start().url, b.start().url
    try:
        async with (
            county(
                tmp_path, mosquitto, poll="1s", uplink={"broker": url_a, "standby_brokers": [url_b]}
            ) as c,
            running_hub_service(c.cfg, c.profiles, tmp_path / "hub", url_a) as hub,
            agents(c, tmp_path, only=GATEWAYS) as running,
        ):
            assert hub.brokers == [url_a, url_b]
            recs = [Recording(agent) for agent in running]
            expected = set().union(*(all_series(c.cfg, c.profiles, g) for g in GATEWAYS))

            async def stored() -> dict[tuple[SeriesId, int], float | None]:
                now = time.time_ns() // 1_000_000 + 1000
                return {
                    (r.series, r.ts_ms): r.value
                    for s in expected
                    for r in await hub.store.raw(s, 0, now)
                }

            async def every_series() -> bool:
                return expected <= {s for s, _ in await stored()}

            await until(every_series, "every series stored through broker a", within=30)

            def readings_taken() -> int:
                return sum(len(r.readings) for r in recs)

            for broker in (a, b):  # a stopped: all to b; a back, b stopped: all to a
                sessions = [agent.uplink.stats.connects for agent in running]
                broker.stop()

                def moved(sessions: list[int] = sessions) -> bool:
                    return all(
                        agent.uplink.stats.connected and agent.uplink.stats.connects > before
                        for agent, before in zip(running, sessions, strict=True)
                    )

                await until(moved, "every agent connected again, to the other broker", 30)
                taken = readings_taken()

                def more(taken: int = taken) -> bool:  # taken and sent while it is down
                    return readings_taken() > taken + 10

                await until(more, "more readings", 30)
                now = {key for rec in recs for key in rec.readings}

                async def through_the_other(now: set[tuple[SeriesId, int]] = now) -> bool:
                    return now <= (await stored()).keys()

                await until(through_the_other, "the hub storing them while it is down", 30)
                broker.start()

            want = {key: r.value for rec in recs for key, r in rec.readings.items()}

            async def everything() -> bool:
                return want.keys() <= (await stored()).keys()

            await until(everything, "every reading taken at the hub", within=60)
            held = await stored()
            assert {k: held[k] for k in want} == want  # once each (the store's key), as taken
            assert not hub.ingest.stats.rejected
    finally:
        a.stop()
        b.stop()


async def test_a_broker_gone_silent_never_holds_up_the_acks_through_the_other(
    tmp_path: Path,
) -> None:
    """With several brokers one writer stores every broker's batches and each session sends
    its own acks: a session whose publish hangs (a broker's machine gone without a word)
    keeps its acks queued, and the other broker's go out."""
    profiles = shipped_profiles()
    cfg = load_site_config(SITES_DIR / "county.yaml", profiles)
    store = SqliteStore(tmp_path / "store.db")
    ingest = Ingest(cfg, profiles, store)
    silent, live = SessionAcks(), SessionAcks()
    sent: list[str] = []

    async def hang(topic: str, payload: bytes) -> None:
        await asyncio.Event().wait()

    async def record(topic: str, payload: bytes) -> None:
        sent.append(topic)

    now = time.time_ns() // 1_000_000
    t = Topics()
    tasks = [
        asyncio.create_task(ingest.writer()),
        asyncio.create_task(silent.send(hang)),
        asyncio.create_task(live.send(record)),
    ]
    try:
        series = SeriesId("chengqu-centre", "gw-centre-cold", "cr1-probe-door", "temperature")
        for seq, acks in enumerate([silent, live, silent, live], start=1):
            b = Batch(b_gw := "gw-centre-cold", series.site, "e", seq, [Reading(series, now, 3.5)])
            assert ingest.receive(t.topic(b_gw, "telemetry"), encode_batch(b), acks.later)

            def stored(seq: int = seq) -> bool:
                return ingest.stats.batches >= seq

            await until(stored, f"batch {seq} stored")
        await until(lambda: len(sent) == 2, "the live broker's two acks sent")
        assert silent.queue.qsize() == 1  # one waits on the hung publish, one queued behind it
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
