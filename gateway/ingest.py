"""Telemetry ingest: every gateway's batches, validated strictly, stored once, acknowledged.

The hub subscribes to every gateway's telemetry topic (a shared subscription when
``hub.share_group`` is set, so several workers split the load). A batch is rejected whole —
counted by reason, logged (rate-limited), never stored — when its topic is not a protocol
topic, its gateway is unknown, it was published on another gateway's topic, its payload is
larger than the largest legal batch (refused before decoding) or breaks the protocol, or it
names a series the site config does not have. A reading whose value is not a number, not
finite, or outside what its point can plausibly carry (the profile's ``valid_range``, else
the plausible range of its kind: :mod:`coldchain.config.topology`) is stored as a bad
reading with no value and a reason naming the refused value, counted by reason; the batch
is acknowledged, so one sensor's nonsense never wedges a gateway's outbox and the record
says what happened. Accepted batches queue for one writer task
that stores everything waiting in one write (one transaction) and only then publishes each
batch's ack: a reading leaves a gateway's outbox only once the store has committed it.
Out-of-order and backfilled batches are normal; the store's writes are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import aiomqtt

from coldchain.config.site import SiteConfig
from coldchain.config.topology import BOUNDS_SLACK, PointInfo, site_points
from coldchain.logsafe import RateLimitedLog
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.messages import (
    Batch,
    ProtocolError,
    encode_ack,
    refused_reason,
)
from coldchain.protocol.topics import Kind, TopicError, Topics
from coldchain.protocol.wire2 import TableCache, UnknownTableError, decode_any
from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.base import Store, StoreError, WriteResult
from coldchain.supervise import Client, describe, network_error

log = logging.getLogger(__name__)

MAX_WRITE = 20_000  # readings per store transaction
HAND_OVER_S = 10.0  # stored batches to the alert leader (QoS 1), before their acks
MAX_QUEUED_READINGS = 200_000  # decoded, waiting for the writer; beyond: backpressure


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class IngestStats:
    """Counters for /metrics and the gateways page."""

    batches: int = 0
    readings: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    store_seconds: float = 0.0
    store_writes: int = 0
    lag_ms: float = 0.0  # newest reading's age when it was stored
    connected: bool = False  # subscribed to the broker
    sessions: int = 0  # MQTT sessions begun (subscribed); more than 1 means reconnects
    store_errors: int = 0  # failed store writes (each retried)
    # readings stored bad because the hub refused their value, by reason
    rejected_values: Counter[str] = field(default_factory=Counter)
    # status, health and alerts messages refused, by (kind, reason)
    rejected_messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    message_errors: int = 0  # messages whose handling raised (logged; the session stays up)
    acks_dropped: int = 0  # acks whose session ended first (several brokers; resent)
    acks_withheld: int = 0  # acks of batches not handed on to the alert leader (resent)


def known_series(cfg: SiteConfig, profiles: ProfileRegistry) -> dict[str, set[SeriesId]]:
    """The series each gateway may send, from the site config."""
    out: dict[str, set[SeriesId]] = {gw.id: set() for gw in cfg.gateways}
    for p in site_points(cfg, profiles):
        out[p.gateway].add(p.sid)
    return out


Bounded = tuple[float, float, PointInfo]
"""The lowest and highest value a point can carry (:attr:`PointInfo.bounds`, widened by
:data:`BOUNDS_SLACK`), and the point."""


def series_bounds(cfg: SiteConfig, profiles: ProfileRegistry) -> dict[str, dict[SeriesId, Bounded]]:
    """Each gateway's series, with the values each can carry and what it measures."""
    out: dict[str, dict[SeriesId, Bounded]] = {gw.id: {} for gw in cfg.gateways}
    for p in site_points(cfg, profiles):
        lo, hi = p.bounds
        out[p.gateway][p.sid] = (lo - BOUNDS_SLACK, hi + BOUNDS_SLACK, p)
    return out


def implausible(r: Reading, point: PointInfo) -> Reading | None:
    """``r`` as a bad reading without its value when the value lies outside what ``point``
    can carry (:attr:`PointInfo.bounds`); None when it is plausible or absent."""
    v = r.value
    if v is None:
        return None
    lo, hi = point.bounds
    if lo - BOUNDS_SLACK <= v <= hi + BOUNDS_SLACK:
        return None
    source = "valid range" if point.valid_range is not None else f"plausible {point.kind}"
    why = f"outside {lo:g}..{hi:g} ({source})"
    return Reading(r.series, r.ts_ms, None, Quality.BAD, refused_reason(v, why, r.reason), r.meta)


Replies = list[tuple[str, bytes]] | None
"""Messages to publish in answer to one received (topic, payload)."""
Publish = Callable[[str, bytes], Awaitable[None]]


# subscriptions a broker whose roles predate them refuses (the hub carries on without)
OPTIONAL_SUBSCRIPTIONS: tuple[tuple[Kind, int, str], ...] = (
    ("time/reply", 0, "gateway clock measurements"),
    ("config/ack", 1, "answers to config revisions"),
)


class SessionPublish(Protocol):
    """A session's publish: QoS 0 and not retained unless told."""

    async def __call__(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None: ...


class RejectedError(Exception):
    """A batch the hub will not store; ``reason`` is the counter's label, ``source`` the
    gateway of its topic (or "(topic)" when the topic names none); ``retable``: the
    (epoch, seq) of a v2 batch to ask for again with its series table."""

    def __init__(
        self,
        reason: str,
        detail: str,
        source: str = "(topic)",
        retable: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason, self.source, self.retable = reason, source, retable


@dataclass(frozen=True, slots=True)
class Retable:
    """An ack that asks a gateway for a batch again, with its series table."""

    gateway: str
    epoch: str
    seq: int


class Ingest:
    """Validates, stores and acknowledges telemetry."""

    def __init__(
        self,
        cfg: SiteConfig,
        profiles: ProfileRegistry,
        store: Store,
        *,
        topics: Topics | None = None,
        on_readings: Callable[[list[Reading]], None] | None = None,
        on_batches: Callable[[list[Batch]], Awaitable[object] | None] | None = None,
        clock_ms: Callable[[], int] = wall_ms,
        key_of: Callable[[str], bytes | None] = lambda _gateway: None,
    ) -> None:
        self.store = store
        self.key_of = key_of  # a gateway's message key: its acks are authenticated
        self.clock_ms = clock_ms  # the hub's clock: timestamps are checked against it
        self.topics = topics or Topics(cfg.uplink.prefix)
        self.allowed = known_series(cfg, profiles)
        self.points = series_bounds(cfg, profiles)
        self.rejections = RateLimitedLog(log)  # one line per gateway and reason a minute
        self._queued = 0  # readings decoded and waiting for the writer
        self.sites = {gw.id: gw.site for gw in cfg.gateways}
        self.stats = IngestStats()
        self.on_readings = on_readings
        # the same, batch by batch, for the alert leader through the broker: what it returns
        # is awaited before the batches are acknowledged (HAND_OVER_S at most)
        self.on_batches = on_batches
        self._handing: set[asyncio.Task[None]] = set()
        # each with where its ack goes: None for the writer's own session (one broker)
        self._queue: asyncio.Queue[tuple[Batch | Retable, Publish | None]] = asyncio.Queue(
            maxsize=1000
        )
        self.tables = TableCache()  # the v2 series tables gateways have sent

    def reconfigure(
        self,
        cfg: SiteConfig,
        profiles: ProfileRegistry,
        retired: dict[str, dict[SeriesId, Bounded]] | None = None,
    ) -> None:
        """Accept the series of ``cfg`` from now on, and the ``retired`` ones too (series a
        config push dropped, still accepted for a grace period: backlogs in flight)."""
        points = series_bounds(cfg, profiles)
        for gw, old in (retired or {}).items():
            points[gw] = {**old, **points.get(gw, {})}
        self.points = points
        self.allowed = {gw: set(series) for gw, series in points.items()}
        self.sites = {**self.sites, **{gw.id: gw.site for gw in cfg.gateways}}

    def check(self, topic: str, payload: bytes, now_ms: int) -> Batch:
        """The batch in a telemetry message, or :class:`RejectedError` saying why."""
        try:
            gateway, kind = self.topics.parse(topic)
        except TopicError as exc:
            raise RejectedError("topic", str(exc)) from exc
        if kind != "telemetry":
            raise RejectedError("topic", f"{topic} is not a telemetry topic")
        if gateway not in self.allowed:
            raise RejectedError(
                "unknown_gateway", f"gateway {gateway!r} is not in the site config", "(unknown)"
            )
        try:  # a payload over MAX_BATCH_BYTES is refused here, before it is decoded
            batch = decode_any(payload, gateway=gateway, now_ms=now_ms, tables=self.tables)
        except UnknownTableError as exc:
            raise RejectedError(
                exc.reason, f"{gateway}: {exc}", gateway, (exc.epoch, exc.seq)
            ) from exc
        except ProtocolError as exc:
            reason = "foreign_topic" if "published on" in str(exc) else exc.reason
            raise RejectedError(reason, f"{gateway}: {exc}", gateway) from exc
        if batch.site != self.sites[gateway]:
            raise RejectedError(
                "schema",
                f"{gateway}: site {batch.site!r}, config says {self.sites[gateway]!r}",
                gateway,
            )
        return self._plausible(batch)

    def _plausible(self, batch: Batch) -> Batch:
        """``batch`` with every reading of a known series, each value one its point can carry
        (else the reading is made bad, counted in ``batch.rejected_values``)."""
        points = self.points[batch.gateway]
        readings = batch.readings
        fixed: list[Reading] | None = None
        for n, r in enumerate(readings):  # the hot path: plain comparisons
            entry = points.get(r.series)
            if entry is None:
                raise RejectedError(
                    "unknown_series",
                    f"{batch.gateway}: series {r.series} is not in the site config",
                    batch.gateway,
                )
            v = r.value
            if v is None or entry[0] <= v <= entry[1]:
                continue
            bad = implausible(r, entry[2])
            if bad is not None:
                if fixed is None:
                    fixed = list(readings)
                fixed[n] = bad
                batch.rejected_values["out_of_range"] += 1
        return batch if fixed is None else replace(batch, readings=fixed)

    def receive(self, topic: str, payload: bytes, reply: Publish | None = None) -> bool:
        """Take one message (from the MQTT loop); False if it was rejected. ``reply``: the
        publish of the session it came in on, where its ack goes (several brokers: see
        :func:`run_ingest`)."""
        try:
            batch = self.check(topic, payload, self.clock_ms())
        except RejectedError as exc:
            self.stats.rejected[exc.reason] += 1
            if exc.retable is not None:  # not refused for good: asked again, with its table
                with contextlib.suppress(asyncio.QueueFull):  # else the ack timeout resends
                    self._queue.put_nowait((Retable(exc.source, *exc.retable), reply))
                return False
            self.rejections.warning(
                (exc.source, exc.reason), "rejected a batch (%s): %s", exc.reason, str(exc)
            )
            return False
        if batch.rejected_values:
            self.stats.rejected_values.update(batch.rejected_values)
            for reason, n in batch.rejected_values.items():
                self.rejections.warning(
                    (batch.gateway, f"value:{reason}"),
                    "%s: %d readings of batch %s/%d stored as bad, value refused (%s), e.g. %s",
                    batch.gateway,
                    n,
                    batch.epoch,
                    batch.seq,
                    reason,
                    next(
                        r.reason for r in batch.readings if r.reason and "hub refused" in r.reason
                    ),
                )
        if self._queued + len(batch.readings) > MAX_QUEUED_READINGS and self._queued:
            self.stats.rejected["backpressure"] += 1  # see below
            return False
        try:
            self._queue.put_nowait((batch, reply))
        except asyncio.QueueFull:
            # The store is behind: leave the batch unacknowledged; the gateway resends it
            # after its ack timeout, by when the writer has caught up.
            self.stats.rejected["backpressure"] += 1
            return False
        self._queued += len(batch.readings)
        return True

    async def writer(self, publish: Publish | None = None) -> None:
        """Store queued batches (everything waiting, in one write), then ack each: through
        ``publish`` (one broker: the session's, whose failure ends the session), or through
        the session each came in on (several brokers: one writer for all; an ack that cannot
        go out because its session ended is dropped, and the gateway resends the batch).
        Several brokers' sessions only queue their acks (:func:`run_ingest`): a broker gone
        silent never holds up the writer. Acks still waiting for a hand-over when it ends
        are not sent (their gateways send the batches again)."""
        try:
            await self._writes(publish)
        finally:
            for task in list(self._handing):
                task.cancel()

    async def _writes(self, publish: Publish | None) -> None:
        while True:
            queued: list[tuple[Batch, Publish | None]] = []
            n = 0
            while not queued or (not self._queue.empty() and n < MAX_WRITE):
                item, reply = await self._queue.get()
                if isinstance(item, Retable):
                    await self._ask_again(item, self._route(reply, publish))
                    continue
                queued.append((item, reply))
                n += len(item.readings)
            batches = [b for b, _ in queued]
            readings = [r for b in batches for r in b.readings]
            self._queued -= len(readings)
            started = time.perf_counter()
            result = await self._write(readings)
            self.stats.store_seconds += time.perf_counter() - started
            self.stats.store_writes += 1
            self.stats.batches += len(batches)
            self.stats.readings += result.stored
            self.stats.duplicates += result.duplicates
            now = self.clock_ms()
            if readings:
                self.stats.lag_ms = now - max(r.ts_ms for r in readings)
            if self.on_readings is not None and readings:
                # committed: judge them (alerts, live board) before the acks' round trips
                try:
                    self.on_readings(readings)
                except Exception:  # the acks must go out whatever a consumer does
                    log.exception("a consumer of %d stored readings failed", len(readings))
            handed: Awaitable[object] | None = None
            if self.on_batches is not None:
                try:
                    handed = self.on_batches(batches)
                except Exception:
                    log.exception("a consumer of %d stored batches failed", len(batches))
                    self.stats.acks_withheld += len(queued)
                    continue  # unacknowledged: the gateways send them again
            if handed is not None:  # the acks wait for the hand-over; the writer goes on
                task = asyncio.create_task(self._ack_when(handed, queued, publish))
                self._handing.add(task)
                task.add_done_callback(self._handing.discard)
                continue
            await self._ack(queued, publish)

    async def _ack(
        self, queued: list[tuple[Batch, Publish | None]], publish: Publish | None
    ) -> None:
        for b, reply in queued:
            ack = encode_ack(b.epoch, [b.seq], key=self.key_of(b.gateway), gateway=b.gateway)
            await self._route(reply, publish)(self.topics.topic(b.gateway, "ack"), ack)

    async def _ack_when(
        self,
        handed: Awaitable[object],
        queued: list[tuple[Batch, Publish | None]],
        publish: Publish | None,
    ) -> None:
        """Acknowledge ``queued`` once ``handed`` (the stored batches' hand-over to the alert
        leader, QoS 1 through the broker) is done: a worker that dies, or a broker that does
        not take them within :data:`HAND_OVER_S`, leaves them unacknowledged, and the gateway
        sends them again (stored once more, idempotently, and handed over then)."""
        try:
            await asyncio.wait_for(handed, HAND_OVER_S)
        except Exception as exc:  # noqa: BLE001 - any failure: not acknowledged, resent
            self.stats.acks_withheld += len(queued)
            self.rejections.warning(
                ("(hub)", "hand_over"),
                "%d stored batches not handed to the alert leader (%s): not acknowledged, "
                "the gateways send them again",
                len(queued),
                describe(exc) if str(exc) else type(exc).__name__,
            )
            return
        try:
            await self._ack(queued, publish)
        except aiomqtt.MqttError:  # the session ended meanwhile: the gateways resend
            self.stats.acks_dropped += len(queued)

    @staticmethod
    def _route(reply: Publish | None, publish: Publish | None) -> Publish:
        """Where an ack goes: the session it came in on (several brokers), else the
        writer's."""
        if reply is not None:
            return reply
        if publish is None:
            raise RuntimeError("an ingest writer without a publish got a batch without one")
        return publish

    async def _ask_again(
        self, r: Retable, publish: Callable[[str, bytes], Awaitable[None]]
    ) -> None:
        ack = encode_ack(
            r.epoch, [], key=self.key_of(r.gateway), gateway=r.gateway, retable=[r.seq]
        )
        await publish(self.topics.topic(r.gateway, "ack"), ack)

    async def _write(self, readings: list[Reading]) -> WriteResult:
        """Write, retrying a failing store with backoff: nothing is acked meanwhile, and the
        MQTT session stays up (gateways resend what waits too long; writes are idempotent)."""
        backoff = 0.5
        while True:
            try:
                return await self.store.write(readings)
            except StoreError as exc:
                self.stats.store_errors += 1
                log.warning(
                    "store write of %d readings failed: %s; retrying in %.1fs",
                    len(readings),
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def handle(
        self,
        message: aiomqtt.Message,
        on_message: Callable[[str, bytes], Replies] | None,
        reply: Publish | None = None,
    ) -> Replies:
        """One message from the broker: telemetry to :meth:`receive`, the rest to
        ``on_message``. Never raises: an exception from handling one message is counted
        (``message_errors``) and logged (rate-limited), and the MQTT session stays up (a
        retained message that raised would otherwise come back on every reconnect)."""
        topic = str(message.topic)
        try:
            raw = message.payload
            data = bytes(raw) if isinstance(raw, bytes | bytearray) else b""
            if topic.endswith("/telemetry"):
                self.receive(topic, data, reply)
                return None
            return on_message(topic, data) if on_message is not None else None
        except Exception as exc:  # noqa: BLE001 - one message must not drop the session
            self.stats.message_errors += 1
            self.rejections.warning(
                ("(handler)", type(exc).__name__),
                "handling a message on %s failed: %s",
                topic,
                repr(exc),
                exc_info=True,
            )
            return None

    def subscription(self, share_group: str | None) -> str:
        return self.topics.all("telemetry", share=share_group)


class SessionAcks:
    """One broker session's acks, queued by the shared writer (it never waits on a session)
    and sent by the session."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def later(self, topic: str, payload: bytes) -> None:
        self.queue.put_nowait((topic, payload))

    async def send(self, publish: Publish) -> None:
        while True:
            await publish(*await self.queue.get())


async def run_ingest(
    ingest: Ingest,
    *,
    host: str,
    port: int,
    identifier: str = "coldchain-hub",
    username: str | None = None,
    password: str | None = None,
    share_group: str | None = None,
    telemetry: bool = True,
    on_message: Callable[[str, bytes], Replies] | None = None,
    tls: ssl.SSLContext | None = None,
    session_tasks: Sequence[Callable[[SessionPublish], Coroutine[Any, Any, None]]] = (),
    writer: bool = True,
    extra_subscriptions: Sequence[tuple[str, int, str]] = (),
) -> None:
    """The ingest's MQTT loop: subscribe, receive, write, ack; reconnect forever. Status,
    health, edge-fallback notices and clock replies go to ``on_message``, which may answer
    with messages to publish (QoS 1). ``tls``: connect with TLS (an ``mqtts://`` broker).
    ``session_tasks`` run alongside each session, given a publish (QoS 0 unless told, for
    the clock probes; QoS 1 retained for config revisions). ``writer``: run the ingest's
    writer in each session (one broker); with several brokers, one ``ingest.writer()`` runs
    beside a ``run_ingest(writer=False)`` per broker, and each batch's ack goes back through
    the broker it came from. ``extra_subscriptions``: (topic, QoS, what) more, to
    ``on_message`` (one the broker refuses is logged once, and the session goes on). Without
    ``telemetry`` (a hub that does not ingest) it subscribes to the other messages only."""
    backoff, told = 0.5, set[str]()
    while True:
        # several brokers: the shared writer queues this session's acks, and the session
        # sends them; what is still queued when it ends is dropped (the gateways resend)
        acks = SessionAcks()
        try:
            async with Client(
                host,
                port,
                identifier=identifier,
                username=username,
                password=password,
                tls_context=tls,
                clean_session=False,
                keepalive=30,
            ) as client:
                if telemetry:
                    await client.subscribe(ingest.subscription(share_group), qos=1)
                for kind in ("status", "health", "alerts"):
                    await client.subscribe(ingest.topics.all(kind), qos=1)
                optional = [(ingest.topics.all(k), q, w) for k, q, w in OPTIONAL_SUBSCRIPTIONS]
                for topic, qos, what in [*optional, *extra_subscriptions]:
                    try:  # a broker config from before these refuses them: carry on
                        await client.subscribe(topic, qos=qos)
                    except aiomqtt.MqttError as exc:
                        if topic not in told:  # once, not at every reconnect
                            log.warning("no %s: %s", what, exc)
                        told.add(topic)
                ingest.stats.connected, backoff = True, 0.5
                ingest.stats.sessions += 1

                async def publish(topic: str, payload: bytes) -> None:
                    await client.publish(topic, payload, qos=1)

                async def publish0(
                    topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
                ) -> None:
                    await client.publish(topic, payload, qos=qos, retain=retain)

                async with asyncio.TaskGroup() as tg:
                    if writer:
                        tg.create_task(ingest.writer(publish), name="ingest-writer")
                    else:
                        tg.create_task(acks.send(publish), name="ingest-acks")
                    for task in session_tasks:
                        tg.create_task(task(publish0))
                    async for message in client.messages:
                        replies = ingest.handle(message, on_message, None if writer else acks.later)
                        for reply_topic, reply in replies or ():
                            await publish(reply_topic, reply)
                    raise aiomqtt.MqttError("message stream ended")
        except Exception as exc:  # supervised: nothing but cancellation ends the loop
            ingest.stats.connected = False
            ingest.stats.acks_dropped += acks.queue.qsize()
            log.warning(
                "hub broker %s:%d: %s; retrying in %.1fs",
                host,
                port,
                describe(exc),
                backoff,
                exc_info=not network_error(exc),
            )
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 30.0)
