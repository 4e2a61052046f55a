"""With several hub processes the ingest hands what it stored to the alert leader through the
broker (coldchain/protocol/stored.py): a batch is acknowledged only once that hand-over is on
the broker. A worker that dies in between, or a hand-over that fails, leaves the batch
unacknowledged, and the gateway sends it again, so no reading is stored without being judged."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from coldchain.config.loader import load_site_config
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.messages import Batch, pack
from coldchain.protocol.topics import Topics
from coldchain.store.sqlite.store import SqliteStore
from firmware_configs import SITES_DIR
from gateway import ingest as ingest_module
from gateway.ingest import Ingest
from tests.services import until

NOW = time.time_ns() // 1_000_000


def telemetry(seq: int) -> bytes:
    return pack(
        {
            "v": 1,
            "gw": "gw-centre-cold",
            "site": "chengqu-centre",
            "epoch": "e1",
            "seq": seq,
            "series": [["cr1-probe-door", "temperature", 0]],
            "r": [[0, NOW + seq, 3.0]],
        }
    )


async def test_a_batch_is_acknowledged_only_once_handed_to_the_leader(
    tmp_path: Path, profiles: ProfileRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "HAND_OVER_S", 0.5)
    cfg = load_site_config(SITES_DIR / "county.yaml", profiles)
    store = SqliteStore(tmp_path / "store.db")
    handovers: list[tuple[list[int], asyncio.Future[None]]] = []

    def hand_over(batches: list[Batch]) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handovers.append(([b.seq for b in batches], done))
        return done

    ingest = Ingest(cfg, profiles, store, on_batches=hand_over)
    acks: list[str] = []

    async def publish(topic: str, payload: bytes) -> None:
        acks.append(topic)

    t = Topics()
    writer = asyncio.create_task(ingest.writer(publish))
    try:
        assert ingest.receive(t.topic("gw-centre-cold", "telemetry"), telemetry(1))
        await until(lambda: len(handovers) == 1, "batch 1 stored and handed over")
        await asyncio.sleep(0.1)
        assert acks == []  # stored, not yet on its way to the leader: not acknowledged
        handovers[0][1].set_result(None)
        await until(lambda: len(acks) == 1, "batch 1 acknowledged")
        assert acks == [t.topic("gw-centre-cold", "ack")]

        assert ingest.receive(t.topic("gw-centre-cold", "telemetry"), telemetry(2))
        await until(lambda: len(handovers) == 2, "batch 2 stored and handed over")
        assert ingest.receive(t.topic("gw-centre-cold", "telemetry"), telemetry(3))
        # the writer went on while batch 2 waited
        await until(lambda: len(handovers) == 3, "batch 3 stored and handed over")
        handovers[2][1].set_result(None)
        await asyncio.sleep(0.7)  # batch 2's hand-over never completes: given up
        assert len(acks) == 2
        assert ingest.stats.acks_withheld == 1
        assert ingest.stats.readings == 3  # stored all the same; batch 2 comes again

        # the writer ends (its session did) while batch 4 waits: its ack is not sent later
        assert ingest.receive(t.topic("gw-centre-cold", "telemetry"), telemetry(4))
        await until(lambda: len(handovers) == 4, "batch 4 stored and handed over")
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        assert handovers[3][1].cancelled()  # nothing waits for it any more
        await asyncio.sleep(0.1)
        assert len(acks) == 2
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await store.close()
