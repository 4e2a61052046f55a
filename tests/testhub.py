"""A second, minimal acknowledging ingest for the agent's tests (``test_agent_e2e``,
``test_agent_faults``, ``test_uplink``), following docs/protocol.md: it decodes every
telemetry batch strictly, keeps readings by (series, timestamp), and only then publishes the
ack. It counts what it saw so tests can prove "no loss, no double".

Why the real ingest (:mod:`gateway.ingest`, in process through ``tests/hubkit.py``, as
``test_hub_ingest`` uses it) does not serve these tests:

* ``drop_first`` loses the first copy of every batch before anything is kept or acked: a hub
  that fails between receiving and committing, for every batch, deterministically. That is
  how ``test_uplink`` proves the agent resends what is unacknowledged and nothing once acked.
  The real hub reaches that state only when killed at a random moment (``test_hub_ingest``
  covers that case separately).
* ``acking = False`` makes the hub absent for exactly the window a test chooses while the
  broker stays up (``test_agent_faults``: a backlog builds on disk, then drains in batches);
  the real hub would have to be stopped and started, with its timing.
* ``batches`` counts every copy of every batch (gateway, epoch, seq) and ``duplicates`` every
  reading received twice. The real store upserts by (series, timestamp) (writes are
  idempotent by design), so a resend leaves no trace there and "acked once, never sent again"
  cannot be read from it.
* It needs no site config, profiles or store: these tests check the agent against the wire
  protocol, not the hub's series and plausibility checks.

Keep it to the protocol. A test of what the real ingest does (rejections, bounds, the store,
acks after commit) belongs against the real ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from coldchain.protocol.messages import ProtocolError, encode_ack
from coldchain.protocol.topics import TopicError, Topics
from coldchain.protocol.wire2 import TableCache, UnknownTableError, decode_any
from coldchain.reading import Reading, SeriesId
from coldchain.supervise import Client, network_error

log = logging.getLogger(__name__)


@dataclass
class AckingHub:
    host: str
    port: int
    topics: Topics = field(default_factory=Topics)
    store: dict[tuple[SeriesId, int], Reading] = field(default_factory=dict)
    batches: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)
    health: dict[str, dict[str, Any]] = field(default_factory=dict)
    acking: bool = True  # False: receive and store nothing, ack nothing (a hub that is "down")
    tables: TableCache = field(default_factory=TableCache)  # v2 series tables seen
    keys: dict[str, bytes] = field(default_factory=dict)  # gateways' message keys: signed acks
    drop_first: bool = False  # ignore the first copy of every batch (a hub that crashed)
    seen: set[tuple[str, str, int]] = field(default_factory=set)
    connected: bool = False
    errors: list[str] = field(default_factory=list)

    def series(self) -> set[SeriesId]:
        return {s for s, _ in self.store}

    def readings(self, series: SeriesId) -> list[Reading]:
        return sorted((r for (s, _), r in self.store.items() if s == series), key=lambda r: r.ts_ms)

    async def run(self) -> None:
        while True:
            try:
                async with Client(
                    self.host, self.port, identifier="test-hub", clean_session=False
                ) as client:
                    for kind in ("telemetry", "status", "health"):
                        await client.subscribe(self.topics.all(kind), qos=1)
                    self.connected = True
                    async for message in client.messages:
                        await self._handle(client, str(message.topic), message.payload)
            except Exception as exc:  # like the real hub: log, reconnect, never die
                self.connected = False
                self.errors.append(repr(exc))
                log.warning("test hub: %r; reconnecting", exc, exc_info=not network_error(exc))
                await asyncio.sleep(0.2)

    async def _handle(self, client: aiomqtt.Client, topic: str, payload: Any) -> None:
        try:
            gateway, kind = self.topics.parse(topic)
        except TopicError as exc:
            self.rejected.append(str(exc))
            return
        data = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
        if kind == "status":
            self.status[gateway] = json.loads(data)["state"] if data else ""
            return
        if kind == "health":
            self.health[gateway] = json.loads(data)
            return
        if kind != "telemetry" or not self.acking:
            return
        now_ms = time.time_ns() // 1_000_000
        try:
            batch = decode_any(data, gateway=gateway, now_ms=now_ms, tables=self.tables)
        except UnknownTableError as exc:  # v2: ask for the batch again, with its table
            ack = encode_ack(
                exc.epoch, [], key=self.keys.get(gateway), gateway=gateway, retable=[exc.seq]
            )
            await client.publish(self.topics.topic(gateway, "ack"), ack, qos=1)
            return
        except ProtocolError as exc:
            self.rejected.append(str(exc))
            return
        key = (gateway, batch.epoch, batch.seq)
        if self.drop_first and key not in self.seen:
            self.seen.add(key)
            return
        self.batches[key] += 1
        for r in batch.readings:
            rkey = (r.series, r.ts_ms)
            if rkey in self.store:
                self.duplicates += 1
            self.store[rkey] = r
        await client.publish(
            self.topics.topic(gateway, "ack"),
            encode_ack(batch.epoch, [batch.seq], key=self.keys.get(gateway), gateway=gateway),
            qos=1,
        )


@contextlib.asynccontextmanager
async def running_hub(host: str, port: int) -> Any:
    hub = AckingHub(host, port)
    task = asyncio.create_task(hub.run(), name="test-hub")
    try:
        yield hub
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
