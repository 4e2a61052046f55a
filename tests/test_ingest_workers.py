"""Two hub processes as ingest workers on a shared subscription (``hub.share_group``), one
PostgreSQL state and one VictoriaMetrics store: the broker splits the batches between them,
each stores and acknowledges its share, the alert leader judges every reading either stored
(coldchain/protocol/stored.py), and a worker killed with -9 and started again loses and
doubles nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml

from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.stored import MAX_READINGS, decode_stored, encode_stored
from coldchain.reading import Quality, Reading, SeriesId
from coldchain.statedb import PostgresTarget
from coldchain.store.lineproto.store import InfluxStore
from tests.agentkit import Recording, agents, all_series, county
from tests.hubprocs import HubProcesses
from tests.services import Broker, until
from tests.victoria import VictoriaMetrics

GATEWAYS = ["gw-centre-cold", "gw-centre-hall"]
HEAD = b'{"v": 1, "from": "h", "gw": "g", "epoch": "e", "seq": 1, '  # a message's start
S = SeriesId("site", "gw-1", "probe", "temperature")


def test_stored_readings_go_out_in_bounded_messages_and_come_back_as_they_were() -> None:
    readings = [Reading(S, 1_767_225_600_000 + i, 2.5 + i / 10) for i in range(MAX_READINGS + 5)]
    readings.append(Reading(S, 1_767_225_700_000, None, Quality.BAD, "no answer"))
    messages = encode_stored(readings, "coldchain-hub-0123abcd", gateway="gw-1", epoch="e1", seq=7)
    assert len(messages) == 2
    decoded = [decode_stored(m) for m in messages]
    assert [r for d in decoded for r in d.readings] == readings
    for d in decoded:
        assert (d.sender, d.gateway, d.epoch, d.seq) == ("coldchain-hub-0123abcd", "gw-1", "e1", 7)
    (empty,) = encode_stored([], "h", gateway="gw-1", epoch="e1", seq=8)  # a resend, all dups
    assert (decode_stored(empty).seq, decode_stored(empty).readings) == (8, [])


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"[1, 2]", "not a version 1 message"),
        (HEAD + b'"r": [[1]]}', "not a list of 8"),
        (HEAD + b'"r": [["a/b", "g", "d", "p", 1, 1.0, "g", null]]}', "not an id"),
        (HEAD + b'"r": [["s", "g", "d", "p", -1, 1.0, "g", null]]}', "UTC ms"),
        (HEAD + b'"r": [["s", "g", "d", "p", 1, "hot", "g", null]]}', "finite"),
        (HEAD + b'"r": [["s", "g", "d", "p", 1, null, "g", null]]}', "needs a value"),
        (HEAD + b'"r": [["s", "g", "d", "p", 1, 1.0, "x", null]]}', "quality"),
        (HEAD + b'"r": [], "x": 1}', "not a version 1 message"),
        (b'{"v": 1, "from": "h", "gw": "g", "epoch": "e", "seq": -1, "r": []}', "batch number"),
        (b'{"v": 1, "from": "h", "gw": "", "epoch": "e", "seq": 1, "r": []}', "gw is not an id"),
        (b"{" * 100, "deep"),
        (b"\xff", "UTF-8"),
    ],
)
def test_a_malformed_message_of_stored_readings_is_refused_whole(payload: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        decode_stored(payload)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_two_ingest_workers_split_the_load_and_one_killed_loses_nothing(
    tmp_path: Path,
    mosquitto: Broker,
    postgres: PostgresTarget,
    victoria_metrics: VictoriaMetrics,
) -> None:
    async with county(tmp_path, mosquitto, poll="500ms", max_silence="500ms") as c:
        doc = yaml.safe_load(c.path.read_text(encoding="utf-8"))
        doc["hub"] = {
            "state": {"type": "postgres", "url": postgres.conninfo},
            "store": {"type": "influx", "url": victoria_metrics.url},
            "share_group": "ingest",
        }
        doc["alerts"]["default_rules"] = False  # judged, but nothing to page
        config = tmp_path / "hub.yaml"
        config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        hubs = HubProcesses(tmp_path, config, mosquitto.url)

        def stored(name: str) -> float:
            return hubs.metric(name, "coldchain_ingest_readings_total") or 0

        def judged(name: str) -> float:
            return hubs.metric(name, "coldchain_alerts_readings_judged_total") or 0

        expected = set().union(*(all_series(c.cfg, c.profiles, g) for g in GATEWAYS))
        store = InfluxStore(url=victoria_metrics.url)

        async def in_store() -> set[tuple[SeriesId, int]]:
            victoria_metrics.flush()
            now = time.time_ns() // 1_000_000 + 1000
            return {(r.series, r.ts_ms) for s in expected for r in await store.raw(s, 0, now)}

        try:
            hubs.start("a")
            await until(lambda: hubs.alerts("a") == "leader", "hub a leads", 30)
            hubs.start("b")
            await until(lambda: hubs.alerts("b") == "standby", "hub b stands by", 30)
            async with agents(c, tmp_path, only=GATEWAYS) as running:
                recs = [Recording(a) for a in running]
                await until(lambda: stored("a") > 100 and stored("b") > 100, "both store", 30)
                taken = {k for r in recs for k in r.readings}

                async def arrived() -> bool:
                    return taken <= await in_store()

                await until(arrived, "every reading taken so far stored", 30)
            # the agents stopped: the leader judged every reading either hub stored
            await asyncio.sleep(1)
            await until(lambda: judged("a") == stored("a") + stored("b"), "a judged all", 10)
            assert judged("b") == 0  # the standby judges nothing
            # in each gateway's order (hub/ordering.py): most batches in turn, none waiting
            assert (hubs.metric("a", 'coldchain_alerts_batches_total{how="in_order"}') or 0) > 0
            assert hubs.metric("a", "coldchain_alerts_batches_waiting") == 0

            async with agents(c, tmp_path, only=GATEWAYS) as running:  # their outboxes kept
                recs = [Recording(a) for a in running]
                before = stored("b")
                await until(lambda: stored("b") > before + 100, "b storing again", 30)
                hubs.kill("b")  # -9 mid-ingest: batches in flight
                await asyncio.sleep(2)  # a takes the whole load meanwhile
                hubs.start("b")
                await until(lambda: hubs.alerts("b") == "standby", "the restarted b up", 30)
                await until(lambda: stored("b") > 100, "the restarted b storing", 30)
                # everything taken up to now, before and after the kill, reaches the store
                # (the agents resend what the dead worker never acknowledged)
                taken = {k for r in recs for k in r.readings}
                await until(arrived, "every reading taken stored once", 60)
        finally:
            await store.close()
            assert hubs.stop() == {"a": 0, "b": 0}
