"""From "tell these people about these alerts" to messages sent, with storm control.

Notices wait ``linger`` for others firing at the same moment, then each recipient gets one
message per site: a power cut that trips six rooms is one grouped SMS per person, not six.
A recipient sent ``storm_burst`` messages about a site within ``storm_window`` gets what
follows folded into one message at the window's end, and nobody gets more than
``max_per_hour`` messages (the rest are folded until the hour allows). Each message goes to
the first SMS notifier (group channels to their own), retried with backoff while the error
is retryable, then to the next notifier; the result of every try is recorded. Messages to
different people go out concurrently (``concurrency`` at once), so one slow provider answer
delays no one else. A message every notifier failed is tried again a minute later, up to
five rounds: an alarm is never silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from alerts.notifiers.base import Notifier
from alerts.store import AlertStore
from coldchain.clock import Clock, as_clock
from coldchain.sms.types import Delivery, SendError, Sms
from coldchain.supervise import wait_event

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
RETRY_ROUND_MS = 60_000
MAX_ROUNDS = 5


@dataclass(slots=True)
class Notice:
    """One queued notification row: a recipient and the alerts to tell them about."""

    note_id: int
    recipient: str  # contact id or channel id
    address: str  # phone, or "" for a channel
    kind: str  # alarm, warning, resolved, reminder, test
    alert_ids: list[int]
    site: str
    level: int | None = None
    rounds: int = 0


@dataclass(slots=True)
class Batch:
    """Notices for one recipient and site, sent as one message."""

    recipient: str
    address: str
    site: str
    notices: list[Notice] = field(default_factory=list)

    @property
    def alert_ids(self) -> list[int]:
        return sorted({a for n in self.notices for a in n.alert_ids})

    @property
    def kind(self) -> str:
        kinds = {n.kind for n in self.notices}
        if len(self.alert_ids) > 1 and kinds & {"alarm", "warning", "reminder"}:
            return "grouped"
        for k in ("alarm", "reminder", "warning", "resolved", "test"):
            if k in kinds:
                return k
        return next(iter(kinds))


Compose = Callable[[Batch, int], Sms | None]
"""Render a batch into the message for its recipient (None: nothing left to say)."""


class Dispatcher:
    """Queues, folds and sends notifications."""

    def __init__(
        self,
        store: AlertStore,
        *,
        sms: list[Notifier],
        channels: dict[str, Notifier],
        compose: Compose,
        clock: Clock | Callable[[], int],
        linger_ms: int = 300,
        storm_window_ms: int = 120_000,
        storm_burst: int = 2,
        concurrency: int = 16,
        max_per_hour: int = 20,
        retries: int = 3,
        backoff_s: float = 0.5,
        on_sent: Callable[[Batch, Delivery | None], None] | None = None,
    ) -> None:
        self.store, self.sms, self.channels = store, sms, channels
        # ``clock``: a Clock (the hub's) or a function of epoch ms; linger and held notices
        # wait in its time, send retries (a provider's round trip) in wall time
        self.timebase = as_clock(clock)
        self.compose, self.clock = compose, self.timebase.now_ms
        self.linger_ms, self.storm_window_ms = linger_ms, storm_window_ms
        self.storm_burst, self.concurrency = storm_burst, concurrency
        self.max_per_hour, self.retries, self.backoff_s = max_per_hour, retries, backoff_s
        self.on_sent = on_sent
        self._queue: list[Notice] = []
        self._held: dict[tuple[str, str], tuple[int, list[Notice]]] = {}
        self._last: dict[tuple[str, str], list[int]] = {}  # sent times in the window
        self._wake = asyncio.Event()
        self.sent = 0
        self.failed = 0

    def submit(self, notice: Notice) -> None:
        self._queue.append(notice)
        self._wake.set()

    def pending(self) -> int:
        return len(self._queue) + sum(len(v[1]) for v in self._held.values())

    async def run(self) -> None:
        while True:
            timeout = self._next_release()
            if timeout is None:
                await self._wake.wait()
            else:
                await wait_event(self._wake, timeout)
            self._wake.clear()
            if self._queue:
                # let what fires together arrive
                await self.timebase.sleep(self.linger_ms / 1000)
            await self.flush()

    def _next_release(self) -> float | None:
        if not self._held:
            return None
        soonest = min(at for at, _ in self._held.values())
        return self.timebase.to_wall((soonest - self.clock()) / 1000)

    async def flush(self) -> None:
        """Send everything due now (queued, and held notices whose time has come)."""
        now = self.clock()
        batches: dict[tuple[str, str, bool], Batch] = {}
        for key, (at, held) in list(self._held.items()):
            if at <= now:
                del self._held[key]
                for n in held:
                    self._add(batches, n)
        queued, self._queue = self._queue, []
        for n in queued:
            key = (n.recipient, n.site)
            if key in self._held:
                self._held[key][1].append(n)
                continue
            recent = [t for t in self._last.get(key, ()) if now - t < self.storm_window_ms]
            self._last[key] = recent
            if n.kind != "test" and len(recent) >= self.storm_burst:
                self._hold(key, recent[0] + self.storm_window_ms, [n])
                continue
            self._add(batches, n)
        ready = []
        for batch in batches.values():
            if self._over_rate(batch.recipient, now) and batch.kind != "test":
                self._hold((batch.recipient, batch.site), now + 300_000, batch.notices)
                continue
            ready.append(batch)
        # one person's message must not wait for another's provider round trip
        limit = asyncio.Semaphore(self.concurrency)

        async def send(batch: Batch) -> None:
            async with limit:
                await self._send_safely(batch)

        await asyncio.gather(*(send(b) for b in ready))

    async def _send_safely(self, batch: Batch) -> None:
        try:
            await self._send(batch)
        except Exception:  # a bug here must not stop every later alarm
            log.exception("sending to %s failed; trying again later", batch.recipient)
            self._retry_later(batch)

    def _hold(self, key: tuple[str, str], until_ms: int, notices: list[Notice]) -> None:
        """Hold ``notices`` until ``until_ms``, with what is held for the key already (the
        earlier release time wins: nothing held is ever overwritten)."""
        held = self._held.get(key)
        if held is None:
            self._held[key] = (until_ms, list(notices))
        else:
            self._held[key] = (min(held[0], until_ms), held[1] + list(notices))

    def _add(self, batches: dict[tuple[str, str, bool], Batch], n: Notice) -> None:
        # "back to normal" goes in its own message: never folded into an alarm's text
        key = (n.recipient, n.site, n.kind == "resolved")
        batch = batches.get(key)
        if batch is None:
            batch = batches[key] = Batch(n.recipient, n.address, n.site)
        batch.notices.append(n)

    def _over_rate(self, recipient: str, now: int) -> bool:
        return self.store.sent_since(recipient, now - HOUR_MS) >= self.max_per_hour

    async def _send(self, batch: Batch) -> None:
        now = self.clock()
        sms = self.compose(batch, now)
        ids = [n.note_id for n in batch.notices]
        if sms is None:
            for i in ids:
                self.store.update_notification(i, status="dropped", error="nothing to say")
            return
        chain = [self.channels[batch.recipient]] if batch.recipient in self.channels else self.sms
        delivery, errors, attempts = await self._try_chain(chain, sms)
        if delivery is not None:
            self._last.setdefault((batch.recipient, batch.site), []).append(now)
        sent_ms = self.clock()
        for i in ids:
            if delivery is not None:
                self.store.update_notification(
                    i,
                    text=sms.text,
                    sent_ms=sent_ms,
                    notifier=delivery.notifier,
                    status=delivery.status,
                    provider_ref=delivery.provider_ref,
                    attempts=attempts,
                    parts=delivery.parts,
                    error="; ".join(errors) or None,
                )
            else:
                self.store.update_notification(
                    i, text=sms.text, attempts=attempts, error="; ".join(errors), status="failed"
                )
        if delivery is not None:
            self.sent += 1
        else:
            self.failed += 1
            log.error("could not notify %s: %s", batch.recipient, "; ".join(errors))
            self._retry_later(batch)
        if self.on_sent is not None:
            self.on_sent(batch, delivery)

    def _retry_later(self, batch: Batch) -> None:
        again = [n for n in batch.notices if n.rounds + 1 < MAX_ROUNDS]
        for n in again:
            n.rounds += 1
            self.store.update_notification(n.note_id, status="queued")
        if again:
            self._hold((batch.recipient, batch.site), self.clock() + RETRY_ROUND_MS, again)
            self._wake.set()

    async def _try_chain(
        self, chain: list[Notifier], sms: Sms
    ) -> tuple[Delivery | None, list[str], int]:
        errors: list[str] = []
        attempts = 0
        if not chain:
            return None, ["no notifier configured"], 0
        for notifier in chain:
            for i in range(self.retries):
                attempts += 1
                try:
                    return await notifier.send(sms), errors, attempts
                except SendError as exc:
                    errors.append(str(exc))
                    log.warning("notifier %s failed (try %d): %s", notifier.id, i + 1, exc)
                    if not exc.retryable:
                        break
                    if i + 1 < self.retries:
                        await asyncio.sleep(self.backoff_s * 2**i)
        return None, errors, attempts
