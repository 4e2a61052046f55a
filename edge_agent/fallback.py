"""The edge fallback: when the uplink has been down too long, the agent texts alarms itself
through a GSM modem on the gateway, and afterwards tells the hub what it sent.

It runs the alert evaluator (:mod:`coldchain.alerting`) on every reading the agent buffers,
for its own gateway's points and the rule kinds an agent can judge alone
(:data:`~coldchain.alerting.rules.EDGE_KINDS`: temperature, doors, power), all the time, so
its state is warm when the link drops. It texts only while the uplink has been down for
longer than ``fallback.after``:

* an alarm (severity ``alarm``) that fires then, and every alarm already firing when the
  fallback begins, goes to the first-level contacts of the alert's policy who cover the site,
  each in their language; alarms firing in the same step reach a person as one message;
* an alert texted about that clears while still in fallback gets a "resolved" text to those
  who got the alarm (when the policy says ``notify_resolved``);
* a send that fails for a reason worth retrying is tried again after a minute, three tries
  in all.

Every alert texted about is a *notice* (:mod:`edge_agent.notices`), kept in SQLite
(``<gateway>.fallback.db`` in the agent's data dir) with whom it was sent to, when, and what
became of it: an agent restarted during an outage resumes those alerts as firing and does not
text them again. When the uplink returns, it publishes the notices the hub has not
acknowledged on the ``alerts`` topic before it resends the telemetry backlog
(:mod:`coldchain.protocol.edge`), and again on every reconnect until the hub acknowledges
them. A notice whose alert has cleared and that the hub has acknowledged is deleted.

The clock is a parameter (UTC ms), so tests drive :meth:`EdgeFallback.step` with their own.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from coldchain.alerting.evaluator import Evaluator, Transition
from coldchain.alerting.facts import AlertFacts, Message, Places, alert_facts, message_extra
from coldchain.alerting.messages import render
from coldchain.alerting.recipients import first_level_contacts
from coldchain.alerting.rules import EDGE_KINDS
from coldchain.alerting.rules.base import Watch
from coldchain.alerting.settings import Policy
from coldchain.alerting.states import AlertState
from coldchain.alerting.watches import build_watches, effective_rules
from coldchain.config.site import Contact, SiteConfig
from coldchain.config.topology import site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.edge import (
    NoticeMessage,
    SendStatus,
    Sent,
    decode_notice_ack,
    encode_notices,
)
from coldchain.protocol.messages import ProtocolError
from coldchain.reading import Reading
from coldchain.sms.gsm import GsmNotifier
from coldchain.sms.types import DeliveryStatus, SendError, Sms
from coldchain.supervise import wait_event
from edge_agent.notices import NoticeStore

log = logging.getLogger(__name__)

TICK_S = 1.0  # the evaluator's clock runs at least this often
RETRY_MS = 60_000  # a failed send is tried again after this long ...
TRIES = 3  # ... this many times in all
CHUNK = 50  # notices per published message

Clock = Callable[[], int]
Publish = Callable[[bytes], Awaitable[None]]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class FallbackStats:
    """What the fallback did, for the health report and tests."""

    active: bool = False
    texts_sent: int = 0
    texts_failed: int = 0
    notices_published: int = 0
    notices_acked: int = 0
    bad_acks: int = 0


@dataclass(frozen=True, slots=True)
class _Retry:
    due_ms: int
    tries: int
    contact: Contact
    keys: tuple[str, ...]


class EdgeFallback:
    """One gateway's edge fallback. ``feed`` every reading the agent buffers, tell it when
    the uplink connects and disconnects (``link``), run :meth:`run`."""

    def __init__(
        self,
        cfg: SiteConfig,
        gateway_id: str,
        profiles: ProfileRegistry,
        *,
        data_dir: Path,
        clock_ms: Clock = wall_ms,
        message_key: bytes | None = None,
    ) -> None:
        self.cfg, self.gw = cfg, cfg.gateway(gateway_id)
        self.message_key = message_key  # the hub checks the notices' MAC with it
        if self.gw.fallback is None:
            raise ValueError(f"gateway {gateway_id} has no fallback configured")
        self.settings = self.gw.fallback
        self._after_ms = round(self.settings.after * 1000)
        self._clock = clock_ms
        self._places = Places.of(cfg)
        self._timezone = self._places.timezone(self.gw.site)
        self._contacts = {c.id: c for c in cfg.contacts}
        self._policies: dict[str, Policy] = {p.id: p for p in cfg.alerts.policies}
        points = [p for p in site_points(cfg, profiles) if p.gateway == self.gw.id]
        watches = build_watches(
            cfg, points, effective_rules(cfg), gateways=[self.gw.id], kinds=EDGE_KINDS
        )
        now = self._clock()
        self.evaluator = Evaluator(cfg, points, watches, now_ms=now)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = NoticeStore(data_dir / f"{self.gw.id}.fallback.db")
        self.notifier = GsmNotifier(self.settings.modem, on_delivery=self._delivered)
        self.stats = FallbackStats()
        self.changed = asyncio.Event()  # a notice changed: the uplink publishes it
        self._inbox: list[Reading] = []
        self._wake = asyncio.Event()
        self._up = False
        # Down since the last time it was seen down (a restart during an outage), else now.
        self._down_since: int | None = self.store.down_since()
        if self._down_since is None:
            self._down_since = now
            self.store.set_down_since(now)
        self._firing: dict[str, Transition] = {}  # alarms firing now, by watch key
        self._open: dict[str, int] = {}  # alarms texted about and not cleared -> notice
        self._retries: list[_Retry] = []
        self._published: dict[str, int] = {}  # this connection: notice id -> revision
        self._closed = False
        self._resume(now)
        log.info(
            "edge fallback of %s: %d watches, texts through %s after %.0fs without uplink",
            self.gw.id,
            len(watches),
            self.settings.modem.port,
            self.settings.after,
        )

    def _resume(self, now: int) -> None:
        """Alarms texted about before a restart are firing still (until the data says not)."""
        for o in self.store.open_notices():
            w = self.evaluator.watch(o.key)
            if w is None or not self.evaluator.restore(
                o.key, "firing", o.since_ms, value=o.value, peak=o.peak
            ):
                log.info("notice of %s: the rule is gone; closing it", o.key)
                self.store.resolve(o.n, now)
                continue
            self._open[o.key] = o.n
            self._firing[o.key] = Transition(
                w, AlertState.FIRING, o.fired_ms, o.since_ms, o.value, o.limit, o.peak
            )
        if self._open:
            log.info("edge fallback: %d alarms texted before the restart resumed", len(self._open))

    # --- inputs (synchronous, never block) ---------------------------------------------

    def feed(self, readings: Iterable[Reading]) -> None:
        """Readings the agent buffered; judged at the next step."""
        self._inbox.extend(readings)
        self._wake.set()

    def link(self, *, up: bool) -> None:
        """The uplink connected (``up``) or was lost."""
        if up == self._up:
            return
        self._up = up
        self._down_since = None if up else self._clock()
        if up:
            self._published.clear()
        if not self._closed:
            try:
                self.store.set_down_since(self._down_since)
            except sqlite3.Error:  # the uplink calls this: never fail it
                log.exception("edge fallback: cannot record the uplink's state")
        self._wake.set()

    def in_fallback(self, now_ms: int) -> bool:
        """Whether the uplink has been down long enough to text."""
        since = self._down_since
        return not self._up and since is not None and now_ms - since >= self._after_ms

    # --- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Judge readings and the clock, text while in fallback; until cancelled. A failing
        step is logged and the next one runs: the fallback never stops the agent."""
        try:
            try:
                await self.notifier.open()  # early, to hear of a missing modem at start
            except SendError as exc:
                log.warning("edge fallback: the modem is not ready (tried again to text): %s", exc)
            while True:
                self._wake.clear()
                try:
                    await self.step()
                except Exception:
                    log.exception("edge fallback: a step failed; carrying on")
                await wait_event(self._wake, TICK_S)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.notifier.aclose()
        self.store.close()

    async def step(self) -> None:
        """Judge what arrived and what the clock decides; text what is due."""
        now = self._clock()
        readings, self._inbox = self._inbox, []
        changes = self.evaluator.feed(readings) + self.evaluator.tick(now)
        active = self.in_fallback(now)
        began = active and not self.stats.active
        if began:
            down_s = (now - (self._down_since or now)) / 1000
            log.warning("edge fallback begins: uplink down %.0fs; texting alarms", down_s)
        elif self.stats.active and not active:
            log.warning("edge fallback ends: %s", "uplink back" if self._up else "clock went back")
        self.stats.active = active
        fired: list[Transition] = []
        for t in changes:
            if t.watch.severity != "alarm":
                continue
            if t.to == AlertState.FIRING:
                self._firing[t.key] = t
                fired.append(t)
            elif t.to == AlertState.RESOLVED:
                self._firing.pop(t.key, None)
                await self._resolved(t, texting=active)
        if not active:
            self._retries.clear()  # the hub learns of the failures and takes over
            return
        candidates = list(self._firing.values()) if began else fired
        new = [t for t in candidates if t.key in self._firing and t.key not in self._open]
        if new:
            await self._text_alarms(new, now)
        await self._retry(now)

    # --- texting ------------------------------------------------------------------------

    def _recipients(self, w: Watch) -> list[Contact]:
        """The first level of the alert's policy, those who cover its site (the hub's
        choice: :mod:`coldchain.alerting.recipients`)."""
        policy = self._policies.get(w.policy) if w.policy else None
        return first_level_contacts(policy, site=w.site, contacts=self._contacts)

    def _value_now(self, t: Transition) -> float | None:
        view = self.evaluator.views.series.get(t.watch.series or "")
        if view is not None and view.good and view.value is not None:
            return view.value
        return t.value

    def _facts(self, t: Transition, value: float | None) -> AlertFacts:
        """The alert's facts, as the hub writes them (:func:`alert_facts`)."""
        return alert_facts(
            t.watch,
            self._places,
            alert_id=self._open.get(t.key, 0),
            rule_kind=t.watch.rule.kind,
            value=value,
            limit=t.limit,
            since_ms=t.since_ms,
        )

    def _message(self, kind: NoticeMessage, ts: Sequence[Transition], now: int) -> Message:
        if kind == "resolved":
            facts = tuple(self._facts(t, t.value) for t in ts)
        else:
            facts = tuple(self._facts(t, self._value_now(t)) for t in ts)
        extra = message_extra(t.watch.rule for t in ts)
        return Message(kind, facts, now_ms=now, timezone=self._timezone, extra=extra)

    async def _text_alarms(self, fired: list[Transition], now: int) -> None:
        for t in fired:
            self._open[t.key] = self.store.create(t, self._value_now(t))
        self.changed.set()
        by_contact: dict[str, list[Transition]] = {}
        for t in fired:
            people = self._recipients(t.watch)
            if not people:
                log.warning("alarm %s: nobody in its policy's first level covers the site", t.key)
            for c in people:
                by_contact.setdefault(c.id, []).append(t)
        for cid, ts in by_contact.items():
            await self._alarm(self._contacts[cid], ts, now, tries=1)

    async def _alarm(self, contact: Contact, ts: list[Transition], now: int, tries: int) -> None:
        kind: NoticeMessage = "alarm" if len(ts) == 1 else "grouped"
        notices = [self._open[t.key] for t in ts]
        retry = await self._send(contact, kind, notices, self._message(kind, ts, now), now)
        if retry and tries < TRIES:
            keys = tuple(t.key for t in ts)
            self._retries.append(_Retry(now + RETRY_MS, tries + 1, contact, keys))

    async def _retry(self, now: int) -> None:
        due = [r for r in self._retries if r.due_ms <= now]
        self._retries = [r for r in self._retries if r.due_ms > now]
        for r in due:
            ts = [self._firing[k] for k in r.keys if k in self._open and k in self._firing]
            if ts:
                await self._alarm(r.contact, ts, now, r.tries)

    async def _resolved(self, t: Transition, *, texting: bool) -> None:
        n = self._open.pop(t.key, None)
        if n is None:
            return
        policy = self._policies.get(t.watch.policy or "")
        if texting and (policy is None or policy.notify_resolved):
            msg = self._message("resolved", [t], t.ts_ms)
            for cid in self.store.told(n):
                contact = self._contacts.get(cid)
                if contact is not None:
                    await self._send(contact, "resolved", [n], msg, t.ts_ms)
        self.store.resolve(n, t.ts_ms)
        self.changed.set()

    async def _send(
        self, contact: Contact, kind: NoticeMessage, notices: list[int], msg: Message, now: int
    ) -> bool:
        """Text ``contact`` and record it; True when it failed and is worth trying again."""
        sms = Sms(
            to=contact.phone,
            text=render(msg, contact.language),
            kind=kind,
            ref=f"{self.gw.id}-{uuid.uuid4().hex[:16]}",
        )
        status: SendStatus = "failed"
        ref = error = None
        retry = False
        try:
            delivery = await self.notifier.send(sms)
            status, ref = delivery.status, delivery.provider_ref
            self.stats.texts_sent += 1
            log.info("texted %s to %s (%s): %s", kind, contact.id, ref, sms.text)
        except SendError as exc:
            error, retry = exc.detail, exc.retryable
            self.stats.texts_failed += 1
            log.warning("could not text %s to %s: %s", kind, contact.id, exc.detail)
        sent = Sent(contact.id, contact.phone, kind, now, status, ref, error)
        self.store.add_sent(notices, sent, sms=sms.ref)
        self.changed.set()
        return retry

    def _delivered(self, sms: str, status: DeliveryStatus) -> None:
        if not self._closed and self.store.delivered(sms, status):
            self.changed.set()

    # --- the hub's side (called by the uplink) ------------------------------------------

    async def publish_notices(self, publish: Publish, *, everything: bool = False) -> int:
        """Publish the notices the hub has not acknowledged: ``everything`` at connect
        (before the telemetry backlog), else only those changed since last published."""
        if everything:
            self._published.clear()
        self.changed.clear()
        try:
            todo = [n for n in self.store.unacked() if self._published.get(n.id) != n.rev]
            messages = [
                encode_notices(self.gw.id, todo[i : i + CHUNK], key=self.message_key)
                for i in range(0, len(todo), CHUNK)
            ]
        except (sqlite3.Error, ProtocolError):  # never let notices stop the telemetry
            log.exception("edge fallback: cannot read the notices to publish")
            return 0
        for i, payload in enumerate(messages):
            await publish(payload)
            self._published.update((n.id, n.rev) for n in todo[i * CHUNK : (i + 1) * CHUNK])
        self.stats.notices_published += len(todo)
        if todo:
            log.info("published %d notices of alarms texted during the outage", len(todo))
        return len(todo)

    async def notice_loop(self, publish: Publish) -> None:
        """While connected: publish each notice as it changes."""
        while True:
            await self.changed.wait()
            await self.publish_notices(publish)

    def receive_ack(self, payload: bytes) -> int:
        """The hub's ``alerts/ack``; how many notices it settled."""
        try:
            stored = decode_notice_ack(payload)
        except ProtocolError as exc:
            self.stats.bad_acks += 1
            log.warning("ignoring a malformed notice ack: %s", exc)
            return 0
        try:
            settled = self.store.ack(stored)
        except sqlite3.Error:  # the uplink calls this: never fail it
            log.exception("edge fallback: cannot record the hub's ack")
            return 0
        self.stats.notices_acked += settled
        return settled
