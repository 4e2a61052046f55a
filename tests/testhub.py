"""A small acknowledging hub for the agent tests, following docs/protocol.md: it decodes
every telemetry batch strictly, stores readings idempotently by (series, timestamp), and only
then publishes the ack. It counts what it saw so tests can prove "no loss, no double".

The real hub (gateway/) is issue 4; this one exists only so the agent can be tested end to end
against a real broker.
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

from coldchain.protocol.messages import ProtocolError, decode_batch, encode_ack
from coldchain.protocol.topics import TopicError, Topics
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
        try:
            batch = decode_batch(data, gateway=gateway, now_ms=time.time_ns() // 1_000_000)
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
            self.topics.topic(gateway, "ack"), encode_ack(batch.epoch, [batch.seq]), qos=1
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
