"""The uplink: batches from the outbox to the centre's broker, acknowledged end to end.

One supervised loop owns the MQTT connection (aiomqtt, MQTT 3.1.1, QoS 1, a persistent
session so acks published while the link is down still arrive). Per connection it

* announces ``online`` on the retained status topic (the last will says ``offline``),
* with an edge fallback (:mod:`edge_agent.fallback`): tells it the link is up (and, when
  lost, down), publishes its notices the hub has not acknowledged before anything else, then
  each as it changes, and hands it the hub's ``alerts/ack``,
* sends every batch stored and not acknowledged, up to ``max_in_flight`` at once: those it
  finds in the outbox, then each the agent commits (:meth:`UplinkLoop.committed`: no query
  to learn what is new), every :data:`LIVE_EVERY`-th the newest waiting so live data rides
  along with a backlog, the rest oldest first,
* resends a batch the hub has not acknowledged within ``ack_timeout``,
* deletes a batch from the outbox only on the hub's ack, and
* publishes health every ``health_interval``.

A lost connection ends the inner task group; the loop waits a jittered, capped exponential
backoff and connects again. It never dies: only cancellation stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiomqtt

from coldchain import __version__
from coldchain.clock import WALL, Clock
from coldchain.config.site import AgentSettings, Uplink, broker_address
from coldchain.protocol.commands import Reply, Request, decode_request, encode_reply
from coldchain.protocol.messages import Batch, ProtocolError, encode_batch, read_ack
from coldchain.protocol.revisions import ConfigAck, Revision, decode_revision
from coldchain.protocol.revisions import encode_ack as encode_config_ack
from coldchain.protocol.timesync import decode_time_probe, encode_time_reply
from coldchain.protocol.topics import Kind, Topics
from coldchain.protocol.wire2 import Encoder
from coldchain.supervise import Client, describe, network_error, wait_event
from edge_agent.buffer import AsyncOutbox

if TYPE_CHECKING:
    from edge_agent.fallback import EdgeFallback

log = logging.getLogger(__name__)

RECONNECT_MAX_S = 30.0  # longest wait between connection attempts (jittered down to half)
LIVE_EVERY = 4
"""With a backlog waiting, every fourth batch sent is the newest one: live data is never
starved by a day's backlog, which drains oldest first with the other three."""


def take_next(queue: deque[int], sends: int) -> int:
    """The batch to send as the ``sends``-th of a connection: every :data:`LIVE_EVERY`-th
    the newest waiting, else the oldest."""
    return queue.pop() if sends % LIVE_EVERY == 0 else queue.popleft()


@dataclass
class UplinkStats:
    """Counters for the health report."""

    connected: bool = False
    connects: int = 0
    batches_sent: int = 0
    batches_resent: int = 0
    readings_acked: int = 0
    bad_acks: int = 0
    forged_acks: int = 0  # acks whose MAC did not verify: ignored
    probes_answered: int = 0  # the hub's clock probes (timesync)
    bad_commands: int = 0  # commands malformed or not signed by the hub: dropped
    bad_revisions: int = 0  # config revisions malformed or not signed by the hub: dropped
    bad_probes: int = 0
    urgent_batches: int = 0  # committed at once for a state change or a limit crossed
    last_error: str | None = None
    in_flight: dict[int, float] = field(default_factory=dict)  # seq -> monotonic send time


class UplinkLoop:
    """Sends the outbox to the hub. :meth:`committed` after appending readings."""

    def __init__(
        self,
        *,
        outbox: AsyncOutbox,
        gateway: str,
        uplink: Uplink,
        settings: AgentSettings,
        password: str | None = None,
        message_key: bytes | None = None,
        health: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        backoff_initial: float = 0.5,
        fallback: EdgeFallback | None = None,
        clock: Clock = WALL,
        commands: Callable[[Request], Awaitable[Reply]] | None = None,
        configs: Callable[[Revision], Awaitable[ConfigAck | None]] | None = None,
    ) -> None:
        self.outbox, self.gateway, self.uplink, self.settings = outbox, gateway, uplink, settings
        self.topics = Topics(uplink.prefix)
        self.password = password
        self.message_key = message_key  # with one, only acks the hub signed delete batches
        self.health = health
        self.stats = UplinkStats()
        self._ready = asyncio.Event()
        self._queue: deque[int] = deque()  # stored batches not sent on this connection
        self._sends = 0  # batches taken from the queue: every LIVE_EVERY-th is the newest
        self._encoder = Encoder()  # protocol 2: the series table, sent when the hub lacks it
        self._hub_table: bytes | None = None  # the table digest the hub is known to hold
        self._carried: dict[int, bytes] = {}  # seq -> the table its batch carried
        self._backoff_initial = backoff_initial
        self.fallback = fallback  # told of the link; its notices go out first on connect
        # status stamps, the batch interval and the health interval run on the clock; the
        # ack timeout, reconnect backoff and network timeouts are round trips: wall time
        self.clock = clock
        self._refused: set[Kind] = set()  # topics the broker refused us: logged once each
        self.commands = commands  # commissioning from the centre (edge_agent/remote.py)
        self._command: asyncio.Task[None] | None = None  # one at a time
        self.configs = configs  # revisions from the centre (edge_agent/reconfig.py)
        self._client_now: aiomqtt.Client | None = None  # the session's, to answer revisions
        self._revisions: set[asyncio.Task[None]] = set()

    def committed(self, seqs: Iterable[int]) -> None:
        """The agent stored batches ``seqs`` (durably): send them."""
        self._queue.extend(seqs)
        self._ready.set()

    def _status(self, state: str) -> bytes:
        msg = {"v": 1, "state": state, "ts": self.clock.now_ms(), "version": __version__}
        return json.dumps(msg).encode()

    def _client(self, broker: str) -> Client:
        host, port, tls = broker_address(broker)
        tls_context = None
        if tls:
            tls_context = ssl.create_default_context(cafile=self.uplink.ca_file)
            if self.uplink.client_cert and self.uplink.client_key:  # mutual TLS
                tls_context.load_cert_chain(self.uplink.client_cert, self.uplink.client_key)
        return Client(
            host,
            port,
            identifier=f"coldchain-{self.gateway}",
            username=self.uplink.username or self.gateway,
            password=self.password,
            clean_session=False,
            keepalive=30,
            timeout=10,
            tls_context=tls_context,
            will=aiomqtt.Will(
                self.topics.topic(self.gateway, "status"),
                self._status("offline"),
                qos=1,
                retain=True,
            ),
        )

    async def run(self) -> None:
        """Connect, send, reconnect; forever. With standby brokers (``uplink.brokers``), a
        broker that cannot be reached or drops the session is left for the next in order at
        once, and the agent stays on the one that answers; the wait between attempts (backoff,
        jittered) comes after each round of every broker failing. Every session starts by
        resending what the hub has not acknowledged, so nothing is lost in a move, and the
        hub's idempotent writes store a batch resent through the other broker once."""
        brokers = self.uplink.brokers
        backoff = self._backoff_initial
        at, failed = 0, 0  # brokers failed since the last session (or wait)
        while True:
            broker = brokers[at]
            try:
                async with self._client(broker) as client:
                    self.stats.connected, self.stats.connects = True, self.stats.connects + 1
                    if self.fallback is not None:
                        self.fallback.link(up=True)
                    log.info("uplink connected to %s", broker)
                    backoff, failed = self._backoff_initial, 0
                    await self._session(client)
            except Exception as exc:  # supervised: nothing but cancellation ends the loop
                self.stats.last_error = describe(exc)
                failed += 1
                at = (at + 1) % len(brokers)
                then = (
                    f"trying {brokers[at]}"
                    if failed < len(brokers)
                    else f"retrying {brokers[at]} in {backoff:.1f}s"
                )
                log.warning(
                    "uplink to %s lost: %s; %s",
                    broker,
                    self.stats.last_error,
                    then,
                    exc_info=not network_error(exc),
                )
            finally:
                self.stats.connected = False
                if self.fallback is not None:
                    self.fallback.link(up=False)
            if failed < len(brokers) and failed > 0:
                continue  # another broker not tried since this one failed: at once
            failed = 0
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
            backoff = min(backoff * 2, RECONNECT_MAX_S)

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.subscribe(self.topics.topic(self.gateway, "ack"), qos=1)
        if self.fallback is not None:
            await client.subscribe(self.topics.topic(self.gateway, "alerts/ack"), qos=1)
        await self._subscribe_optional(client, "time", "clock probes", qos=0)
        if self.commands is not None:
            await self._subscribe_optional(client, "cmd", "commands", qos=1)
        if self.configs is not None:
            await self._subscribe_optional(client, "config", "config revisions", qos=1)
        self._client_now = client
        await client.publish(
            self.topics.topic(self.gateway, "status"), self._status("online"), qos=1, retain=True
        )
        notices = self._notice_publisher(client)
        if self.fallback is not None:  # before the backlog: the hub learns what was texted
            await self.fallback.publish_notices(notices, everything=True)
        self.stats.in_flight.clear()
        await self.outbox.reset_in_flight()
        self._queue.clear()  # what is committed while the outbox is asked joins it here
        stored = await self.outbox.unacked()  # everything the hub has not confirmed
        self._queue = deque(sorted(set(stored) | set(self._queue)))
        self._ready.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receive_acks(client), name="uplink-acks")
                tg.create_task(self._send_loop(client), name="uplink-send")
                if self.health is not None:
                    tg.create_task(self._health_loop(client), name="uplink-health")
                if self.fallback is not None:
                    tg.create_task(self.fallback.notice_loop(notices), name="uplink-notices")
        except asyncio.CancelledError:
            # A clean stop: the broker sends the last will only for a broken connection.
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.publish(
                    self.topics.topic(self.gateway, "status"),
                    self._status("offline"),
                    qos=1,
                    retain=True,
                    timeout=2,
                )
            raise

    async def _subscribe_optional(
        self, client: aiomqtt.Client, kind: Kind, what: str, *, qos: int
    ) -> None:
        """Subscribe to a topic a broker whose roles predate it refuses: say so once (per
        kind, not at every reconnect) and carry on without it."""
        try:
            await client.subscribe(self.topics.topic(self.gateway, kind), qos=qos)
        except aiomqtt.MqttError as exc:
            if kind not in self._refused:
                log.warning("no %s from the hub: %s", what, exc)
            self._refused.add(kind)

    def _notice_publisher(self, client: aiomqtt.Client) -> Callable[[bytes], Awaitable[None]]:
        topic = self.topics.topic(self.gateway, "alerts")

        async def publish(payload: bytes) -> None:
            await client.publish(topic, payload, qos=1)

        return publish

    async def _send(self, client: aiomqtt.Client, seq: int, *, resend: bool) -> None:
        try:
            batch = await self.outbox.load_batch(seq)
        except KeyError:  # acknowledged meanwhile, or dropped by the size bound
            self.stats.in_flight.pop(seq, None)
            return
        self.stats.in_flight[seq] = time.monotonic()  # the ack timeout is a round trip: wall
        await client.publish(
            self.topics.topic(self.gateway, "telemetry"), self._encode(batch), qos=1
        )
        if resend:
            self.stats.batches_resent += 1
        else:
            self.stats.batches_sent += 1

    def _encode(self, batch: Batch) -> bytes:
        if self.uplink.protocol == 1:
            return encode_batch(batch)
        payload, with_table = self._encoder.encode(batch, known=self._hub_table)
        if with_table:  # once its ack comes, the hub holds this table
            self._carried[batch.seq] = self._encoder.digest
        return payload

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        s = self.settings
        while True:
            now = time.monotonic()
            for seq, sent in list(self.stats.in_flight.items()):
                if now - sent > s.ack_timeout:
                    log.info("batch %d not acknowledged in %.0fs; resending", seq, s.ack_timeout)
                    self._hub_table = None  # with the series table: a new hub may lack it
                    await self._send(client, seq, resend=True)
            while len(self.stats.in_flight) < s.max_in_flight and self._queue:
                self._sends += 1
                await self._send(client, take_next(self._queue, self._sends), resend=False)
            self._ready.clear()
            await wait_event(self._ready, self.clock.to_wall(min(s.batch_interval, 1.0)))

    async def _receive_acks(self, client: aiomqtt.Client) -> None:
        notice_acks = self.topics.topic(self.gateway, "alerts/ack")
        probes = self.topics.topic(self.gateway, "time")
        commands = self.topics.topic(self.gateway, "cmd")
        configs = self.topics.topic(self.gateway, "config")
        async for message in client.messages:
            received_ms = self.clock.now_ms()  # a clock probe's T2: as early as can be
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                self.stats.bad_acks += 1
                continue
            # the subscriptions are exact topics: a string comparison routes a message
            topic = message.topic.value
            if topic == probes:
                await self._answer_probe(client, bytes(payload), received_ms)
            elif topic == commands:
                await self._command_received(client, bytes(payload))
            elif topic == configs:
                self._revision_received(bytes(payload))
            elif topic == notice_acks and self.fallback is not None:
                self.fallback.receive_ack(bytes(payload))
            else:
                await self._ack_received(bytes(payload))

    async def _ack_received(self, payload: bytes) -> None:
        """An ack: the batches it names deleted from the outbox. One the hub did not sign
        (with a message key) or a malformed one is counted and ignored."""
        try:
            ack = read_ack(payload, key=self.message_key, gateway=self.gateway)
        except ProtocolError as exc:
            if exc.reason == "bad_mac":  # counted; logged at 1, 1000, 2000... (the SD card)
                self.stats.forged_acks += 1
                if self.stats.forged_acks == 1 or self.stats.forged_acks % 1000 == 0:
                    log.warning(
                        "ignoring an ack the hub did not sign (%d so far): %s",
                        self.stats.forged_acks,
                        exc,
                    )
            else:
                self.stats.bad_acks += 1
                log.warning("ignoring a malformed ack: %s", exc)
            return
        if ack.epoch != self.outbox.sync.epoch:
            return  # another buffer's (a wiped one): nothing of ours
        self.stats.readings_acked += await self.outbox.ack(ack.epoch, ack.seqs)
        for seq in ack.seqs:
            self.stats.in_flight.pop(seq, None)
            table = self._carried.pop(seq, None)
            if table is not None:
                self._hub_table = table
        if ack.retable:  # the hub lacks our series table (it restarted): send them with it
            self._hub_table = None
            for seq in ack.retable:
                if self.stats.in_flight.pop(seq, None) is not None:
                    self._queue.appendleft(seq)
        self._ready.set()

    async def _answer_probe(self, client: aiomqtt.Client, payload: bytes, t2: int) -> None:
        """Answer the hub's clock probe with its time, ours on receipt and ours on answering
        (:mod:`coldchain.protocol.timesync`). A malformed probe is counted and dropped."""
        try:
            n, t1 = decode_time_probe(payload)
        except ProtocolError:
            self.stats.bad_probes += 1
            return
        reply = encode_time_reply(n, t1, t2, self.clock.now_ms())
        await client.publish(self.topics.topic(self.gateway, "time/reply"), reply, qos=0)
        self.stats.probes_answered += 1

    async def _command_received(self, client: aiomqtt.Client, payload: bytes) -> None:
        """A command from the centre: run it in its own task (the acks keep flowing) and
        answer on ``cmd/reply``; one at a time, a second is answered 'busy'. A command the
        hub did not sign (with a message key) or a malformed one is counted and dropped."""
        if self.commands is None:
            return
        try:
            req = decode_request(payload, key=self.message_key, gateway=self.gateway)
        except ProtocolError as exc:
            self.stats.bad_commands += 1
            log.warning("ignoring a command: %s", exc)
            return
        reply_topic = self.topics.topic(self.gateway, "cmd/reply")
        if self._command is not None and not self._command.done():
            busy = Reply(req.id, ok=False, error="busy: another command is running")
            await client.publish(reply_topic, encode_reply(busy), qos=1)
            return
        log.info("command %s %s on bus %s", req.action, req.id, req.bus)
        run = self.commands

        async def answer() -> None:
            reply = await run(req)
            with contextlib.suppress(aiomqtt.MqttError):  # the session ended: it is lost
                await client.publish(reply_topic, encode_reply(reply), qos=1)

        self._command = asyncio.create_task(answer(), name=f"command-{req.id}")

    def _revision_received(self, payload: bytes) -> None:
        """A config revision: tried in its own task (a trial lasts up to the grace; acks keep
        flowing), answered on ``config/ack`` on whatever session is up when it is done. One
        the hub did not sign (with a message key) or a malformed one is counted and dropped."""
        if self.configs is None or not payload:  # an empty retained message: none is set
            return
        try:
            rev = decode_revision(payload, key=self.message_key, gateway=self.gateway)
        except ProtocolError as exc:
            self.stats.bad_revisions += 1
            log.warning("ignoring a config revision: %s", exc)
            return
        tried = self.configs

        async def answer() -> None:
            ack = await tried(rev)
            client = self._client_now
            if ack is None or client is None or not self.stats.connected:
                return  # a newer one came first, or the link is down: the retained one is
                # tried again on reconnecting, and answered from what was kept
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(
                    self.topics.topic(self.gateway, "config/ack"), encode_config_ack(ack), qos=1
                )

        task = asyncio.create_task(answer(), name=f"config-{rev.rev}")
        self._revisions.add(task)
        task.add_done_callback(self._revisions.discard)

    async def _health_loop(self, client: aiomqtt.Client) -> None:
        assert self.health is not None
        while True:
            report = await self.health()
            await client.publish(
                self.topics.topic(self.gateway, "health"), json.dumps(report).encode(), qos=0
            )
            await self.clock.sleep(self.settings.health_interval)
