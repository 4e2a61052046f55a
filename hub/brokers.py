"""The hub's sessions on the central brokers: ``uplink.broker`` (or ``--broker``) and each of
``uplink.standby_brokers`` (``docs/hub.md``, ingest; ``docs/availability.md``).

One ``run_ingest`` per broker. With one broker its session runs the ingest's writer, as
always; with several, one writer stores every broker's batches and each session sends the
acks of the batches it brought. Every session gets the clock probes and, at its start, the
latest config revisions; the config watch publishes a new revision on every session up.
A hub without the ingest role (``coldchain hub --role``) subscribes to no telemetry and
stores nothing: it hears the gateways' other messages and the batches other hubs stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import aiomqtt

from coldchain.config.site import broker_address
from gateway.ingest import SessionPublish, run_ingest

log = logging.getLogger(__name__)
STORED_QUEUE = 1000
"""Messages of stored readings (up to 2,000 readings each) kept while no session is up."""

if TYPE_CHECKING:
    from hub.service import Hub


class BrokerSessions:
    """The brokers of one hub, and what runs on each."""

    def __init__(self, hub: Hub, primary: str) -> None:
        self.hub = hub
        self.brokers = hub.cfg.uplink.brokers_from(primary)
        self._up: set[SessionPublish] = set()  # one publish per broker session up
        # several hub processes: the readings this hub stored, for the alert leader, sent by
        # whichever session is up (coldchain/protocol/stored.py), each with the future its
        # batches' acks wait for (gateway/ingest.py, HAND_OVER_S)
        self.stored: asyncio.Queue[tuple[bytes, asyncio.Future[None]]] = asyncio.Queue(
            maxsize=STORED_QUEUE
        )
        self.stored_dropped = 0  # messages of stored readings dropped: no session for long

    def tasks(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """(name, coroutine) of everything the brokers need while the hub runs."""
        one, ingest = len(self.brokers) == 1, "ingest" in self.hub.roles
        out: list[tuple[str, Coroutine[Any, Any, None]]] = []
        if ingest and not one:  # one writer for all brokers' batches
            out.append(("ingest-writer", self.hub.ingest.writer()))
        out += [(f"ingest {b}", self._ingest(b, writer=ingest and one)) for b in self.brokers]
        out.append(("config-watch", self.hub.config_watch.run(self.publish_all)))
        return out

    def share(self, payload: bytes) -> asyncio.Future[None]:
        """Queue a message of stored readings for the leader; done once a broker took it
        (QoS 1). The oldest is dropped (and counted; its batches' acks withheld, so their
        gateways send them again) when no session has taken any for :data:`STORED_QUEUE`
        messages."""
        if self.stored.full():
            _, dropped = self.stored.get_nowait()
            if not dropped.done():
                dropped.set_exception(ConnectionError("no broker session took it"))
            self.stored_dropped += 1
            if self.stored_dropped in (1, 100) or self.stored_dropped % 1000 == 0:
                log.warning(
                    "no broker session for the alert leader's stored readings: %d messages "
                    "dropped so far (stored, not acknowledged: their gateways send them again)",
                    self.stored_dropped,
                )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stored.put_nowait((payload, done))
        return done

    async def _send_stored(self, publish: SessionPublish) -> None:
        """For the life of one session: send the queued stored readings (QoS 1)."""
        topic = self.hub.topics.stored()
        while True:
            payload, done = await self.stored.get()
            try:
                await publish(topic, payload, qos=1)
            except BaseException:
                if not self.stored.full():  # for the next session to send
                    self.stored.put_nowait((payload, done))
                elif not done.done():
                    done.set_exception(ConnectionError("the broker session ended"))
                raise
            if not done.done():  # its acks may go now (unless they gave up waiting)
                done.set_result(None)

    async def _ingest(self, broker: str, *, writer: bool) -> None:
        """Telemetry and the gateways' other messages from one broker (``run_ingest``)."""
        hub = self.hub
        host, port, tls = broker_address(broker)
        ingest = "ingest" in hub.roles
        send = hub.split and ingest  # what it stores goes to the alert leader
        hear = hub.split and bool(hub.roles & {"alerts", "web"})  # judged, or shown
        await run_ingest(
            hub.ingest,
            host=host,
            port=port,
            identifier=hub.client_id,
            username=hub.username,
            password=hub.password,
            share_group=hub.cfg.hub.share_group,
            telemetry=ingest,
            on_message=hub.on_message,
            tls=hub.tls_context() if tls else None,
            session_tasks=[
                lambda publish: hub.clocks.run(
                    publish, hub.online, interval=hub.cfg.hub.clock_probe_interval
                ),
                self._session,
                *([self._send_stored] if send else []),
            ],
            writer=writer,
            extra_subscriptions=(
                [(hub.topics.stored(), 1, "the readings other hubs stored (the alert leader's)")]
                if hear
                else []
            ),
        )

    async def _session(self, publish: SessionPublish) -> None:
        """For the life of one broker session: its publish joins those :meth:`publish_all`
        reaches, and the latest config revisions go out on it."""
        self._up.add(publish)  # first: a revision made meanwhile goes out on it too
        try:
            await self.hub.config_watch.republish(publish)
            await asyncio.Event().wait()  # until the session ends
        finally:
            self._up.discard(publish)

    async def publish_all(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Publish on every broker session up now (a session that ends meanwhile is passed
        over: the next one republishes what matters, the config revisions)."""
        for publish in list(self._up):
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await publish(topic, payload, qos=qos, retain=retain)
