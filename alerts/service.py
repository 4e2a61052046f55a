"""The alerts part of the hub: the evaluator on the live stream, the alert lifecycle
(pending -> firing -> acknowledged -> resolved) persisted in the hub database, escalation,
and the dispatcher that texts people.

    svc = AlertService(cfg, profiles, db_path=..., audit=audit.record, notifiers=[...])
    svc.start(latest_readings)        # restore open alerts; seed the evaluator
    ingest.on_readings = svc.on_readings
    await svc.run()                   # clock: delays, escalation, sending

Every transition and notification is audited through ``audit`` (the hub's append-only log).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from pydantic import TypeAdapter

from alerts.dispatch import Batch, Dispatcher, Notice
from alerts.errors import ConflictError, InvalidError, NotFoundError
from alerts.escalation import step
from alerts.notifiers.base import Notifier
from alerts.store import AlertRow, AlertStore
from coldchain.alerting.evaluator import Evaluator, Phase, Transition
from coldchain.alerting.facts import AlertFacts, Message
from coldchain.alerting.links import reply_code, sign
from coldchain.alerting.messages import render, template_params
from coldchain.alerting.rules import AnyRule, Rule
from coldchain.alerting.settings import Policy
from coldchain.alerting.watches import build_watches, effective_rules
from coldchain.clock import Clock, as_clock
from coldchain.config.site import Contact, SiteConfig
from coldchain.config.topology import site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.reading import Reading
from coldchain.sms.types import Delivery, Sms

log = logging.getLogger(__name__)

RULE = TypeAdapter(Rule)
TICK_S = 0.1  # delays that run out between readings fire within this


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Audit(Protocol):
    def __call__(
        self,
        *,
        actor: str,
        action: str,
        obj: str,
        before: Any = None,
        after: Any = None,
        comment: str | None = None,
    ) -> int: ...


@dataclass
class AlertStats:
    transitions: int = 0
    notifications: int = 0
    evaluations_s: float = 0.0


class AlertService:
    """Alerts, from readings to people."""

    def __init__(
        self,
        cfg: SiteConfig,
        profiles: ProfileRegistry,
        *,
        db_path: Path,
        audit: Audit,
        notifiers: Iterable[Notifier] = (),
        link_key: bytes | None = None,
        twilio_token: str | None = None,
        clock: Clock | Callable[[], int] = wall_ms,
    ) -> None:
        # ``clock``: the hub's Clock (a demo's scaled one), or a function of epoch ms (a
        # test's hand-moved clock). Rule delays, windows, hold-offs, escalation, linger and
        # the times in messages all read it; ``self.clock()`` is its epoch ms.
        self.timebase = as_clock(clock)
        self.clock: Callable[[], int] = self.timebase.now_ms
        self.cfg, self.profiles, self.audit = cfg, profiles, audit
        self.store = AlertStore(db_path)
        self.link_key = link_key or secrets.token_bytes(32)
        self.twilio_token = twilio_token  # verifies Twilio's callbacks
        self.points = site_points(cfg, profiles)
        self.contacts: dict[str, Contact] = {c.id: c for c in cfg.contacts}
        self.policies: dict[str, Policy] = {p.id: p for p in cfg.alerts.policies}
        self.sites = {s.id: s for s in cfg.sites}
        self.rooms = {(s.id, r.id): r for s in cfg.sites for r in s.rooms}
        notifiers = list(notifiers)
        channel_ids = {
            n.id for n in cfg.alerts.notifiers if n.type in ("webhook", "dingtalk", "wecom")
        }
        self.notifiers = notifiers
        self.dispatcher = Dispatcher(
            self.store,
            sms=[n for n in notifiers if n.texts_phones],
            channels={n.id: n for n in notifiers if n.id in channel_ids},
            compose=self._compose,
            clock=self.timebase,
            linger_ms=round(cfg.alerts.linger * 1000),
            storm_window_ms=round(cfg.alerts.storm_window * 1000),
            storm_burst=cfg.alerts.storm_burst,
            max_per_hour=cfg.alerts.max_per_hour,
            retries=cfg.alerts.retries,
            on_sent=self._sent,
        )
        self.stats = AlertStats()
        self.open: dict[int, AlertRow] = {}
        self._next: dict[int, int] = {}  # alert id -> next escalation check
        self.evaluator = self._build_evaluator()

    # --- set-up ---------------------------------------------------------------------------

    def rules(self) -> list[AnyRule]:
        edits = self.store.rule_edits()
        overrides = [RULE.validate_python(b) for b in edits.values() if b is not None]
        return effective_rules(self.cfg, overrides)

    def _build_evaluator(self) -> Evaluator:
        watches = build_watches(self.cfg, self.points, self.rules())
        return Evaluator(self.cfg, self.points, watches, now_ms=self.clock())

    def start(self, latest: Iterable[Reading] = ()) -> None:
        """Seed the evaluator with the last known readings and resume open alerts,
        maintenance and unsent notifications."""
        for r in latest:
            self.evaluator.seed(r)
        now = self.clock()
        for m in self.store.maintenance(now):
            self.evaluator.set_maintenance(
                m["site"], m["room"], until_ms=m["until_ms"], reason=m["reason"], now_ms=now
            )
        for row in self.store.open_alerts():
            self._resume(row, now)
        for n in self.store.notifications(status="queued"):
            self.dispatcher.submit(
                Notice(
                    n.id, n.recipient, n.address, n.kind, n.alerts, self._site_of(n.alerts), n.level
                )
            )

    def _site_of(self, alert_ids: list[int]) -> str:
        row = self.store.get(alert_ids[0]) if alert_ids else None
        return row.site if row else ""

    def resume(self, row: AlertRow) -> None:
        """Take up an alert opened elsewhere (an agent's edge notice) as firing."""
        self._resume(row, self.clock())

    def edge_notices(self, gateway: str, payload: bytes) -> list[tuple[str, int]]:
        """An agent's ``alerts`` message: record what it texted; the (id, rev) to ack.
        Raises :class:`~coldchain.protocol.messages.ProtocolError` when malformed."""
        from alerts.edge import apply_notices
        from coldchain.protocol.edge import decode_notices

        msg = decode_notices(payload, gateway=gateway, now_ms=self.clock())
        return apply_notices(self, gateway, msg.notices)

    def _resume(self, row: AlertRow, now: int) -> None:
        phase: Phase = "pending" if row.state == "pending" else "firing"
        if not self.evaluator.restore(row.key, phase, row.since_ms, value=row.value, peak=row.peak):
            self._close(row, "resolved", now, reason="its rule no longer exists")
            return
        self.open[row.id] = row
        if row.state == "firing":
            self._next[row.id] = now

    # --- inputs ---------------------------------------------------------------------------

    def on_readings(self, readings: list[Reading]) -> None:
        """New readings, stored: judge them now (called by the ingest after each commit)."""
        started = time.perf_counter()
        self._apply(self.evaluator.feed(readings))
        self.stats.evaluations_s += time.perf_counter() - started

    def on_gateway(self, gateway: str, *, online: bool) -> None:
        self._apply(self.evaluator.gateway(gateway, online=online, ts_ms=self.clock()))

    def tick(self) -> None:
        now = self.clock()
        self._apply(self.evaluator.tick(now))
        self._escalate(now)

    async def run(self) -> None:
        """The clock and the dispatcher, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.dispatcher.run(), name="alerts-dispatch")
            while True:
                self.tick()
                await asyncio.sleep(TICK_S)

    async def aclose(self) -> None:
        for n in self.notifiers:
            await n.aclose()
        self.store.close()

    # --- lifecycle ------------------------------------------------------------------------

    def _apply(self, transitions: list[Transition]) -> None:
        for t in transitions:
            self.stats.transitions += 1
            getattr(self, f"_on_{t.to}")(t)

    def _on_pending(self, t: Transition) -> None:
        if self.store.open_by_key(t.key) is not None:
            return  # resumed after a restart, or raised from an agent's notice
        w = t.watch
        row = self.store.insert(
            key=w.key,
            rule=w.rule.id,
            kind=w.rule.kind,
            tier=w.tier,
            severity=w.severity,
            policy=w.policy,
            site=w.site,
            room=w.room,
            gateway=w.gateway,
            series=w.series,
            quantity=w.quantity,
            unit=w.unit,
            direction=w.direction,
            state="pending",
            since_ms=t.since_ms,
            pending_ms=t.ts_ms,
            value=t.value,
            limit_value=t.limit,
            peak=t.peak,
        )
        self.open[row.id] = row
        self._audit_transition(row, "pending", t)

    def _row(self, t: Transition) -> AlertRow | None:
        row = self.store.open_by_key(t.key)
        if row is not None:
            self.open[row.id] = row
        return row

    def _on_firing(self, t: Transition) -> None:
        row = self._row(t)
        if row is None:
            self._on_pending(t)
            row = self._row(t)
            assert row is not None
        if row.state != "pending":
            return
        row.state, row.fired_ms, row.value, row.peak = "firing", t.ts_ms, t.value, t.peak
        row.limit_value = t.limit
        self.store.update(
            row.id,
            state="firing",
            fired_ms=t.ts_ms,
            value=t.value,
            limit_value=t.limit,
            peak=t.peak,
        )
        self._audit_transition(row, "firing", t)
        self._next[row.id] = t.ts_ms
        self._escalate(self.clock(), only=row.id)

    def _on_cancelled(self, t: Transition) -> None:
        row = self._row(t)
        if row is not None and row.state == "pending":
            self._close(row, "cancelled", t.ts_ms)

    def _on_resolved(self, t: Transition) -> None:
        row = self._row(t)
        if row is None:
            return
        row.value, row.peak = t.value, t.peak
        self._close(row, "resolved" if row.state != "pending" else "cancelled", t.ts_ms)

    def _close(self, row: AlertRow, state: str, ts: int, *, reason: str | None = None) -> None:
        told = row.level >= 0 or bool(row.edge_contacts())
        row.state, row.resolved_ms = state, ts
        self.store.update(row.id, state=state, resolved_ms=ts, value=row.value, peak=row.peak)
        self.open.pop(row.id, None)
        self._next.pop(row.id, None)
        self.audit(
            actor="hub",
            action=f"alert.{state}",
            obj=f"alert/{row.id}",
            after={"key": row.key, "ts_ms": ts, "value": row.value, "peak": row.peak},
            comment=reason,
        )
        policy = self.policies.get(row.policy or "")
        if state == "resolved" and told and policy is not None and policy.notify_resolved:
            self._notify(row, range(max(row.level, 0) + 1), "resolved", policy)

    def _audit_transition(self, row: AlertRow, to: str, t: Transition) -> None:
        self.audit(
            actor="hub",
            action=f"alert.{to}",
            obj=f"alert/{row.id}",
            after={
                "key": row.key,
                "since_ms": t.since_ms,
                "ts_ms": t.ts_ms,
                "value": t.value,
                "limit": t.limit,
            },
        )

    # --- escalation -----------------------------------------------------------------------

    def _escalate(self, now: int, *, only: int | None = None) -> None:
        ids = [only] if only is not None else [i for i, at in self._next.items() if at <= now]
        for alert_id in ids:
            row = self.open.get(alert_id)
            policy = self.policies.get(row.policy or "") if row else None
            if row is None or row.state != "firing" or row.fired_ms is None or policy is None:
                self._next.pop(alert_id, None)
                continue
            s = step(
                policy,
                fired_ms=row.fired_ms,
                level=row.level,
                notified_ms=row.notified_ms,
                snoozed_until=row.snoozed_until,
                now_ms=now,
            )
            kind = "alarm" if row.severity == "alarm" else "warning"
            if s.levels:
                self._notify(row, s.levels, kind, policy)
                row.level = max(s.levels)
            if s.reminder:
                self._notify(row, s.reminder, "reminder", policy)
            if s.levels or s.reminder:
                row.notified_ms = now
                self.store.update(row.id, level=row.level, notified_ms=now)
            if s.next_ms is None:
                self._next.pop(alert_id, None)
            else:
                self._next[alert_id] = s.next_ms

    def _recipients(self, row: AlertRow, levels: Iterable[int], policy: Policy) -> list[str]:
        out: list[str] = []
        for i in levels:
            lv = policy.levels[i]
            for c in lv.contacts:
                contact = self.contacts.get(c)
                if contact is None or (contact.sites and row.site not in contact.sites):
                    continue
                if c not in out:
                    out.append(c)
            out += [ch for ch in lv.channels if ch not in out]
        return out

    def _notify(self, row: AlertRow, levels: Iterable[int], kind: str, policy: Policy) -> None:
        levels = list(levels)
        skip = row.edge_contacts() if kind in ("alarm", "warning") else set()
        now = self.clock()
        for who in self._recipients(row, levels, policy):
            if who in skip:
                continue
            contact = self.contacts.get(who)
            address = contact.phone if contact else ""
            note = self.store.add_notification(
                alert_ids=[row.id],
                recipient=who,
                address=address,
                kind=kind,
                level=max(levels) if levels else None,
                queued_ms=now,
            )
            self.dispatcher.submit(
                Notice(note, who, address, kind, [row.id], row.site, max(levels))
            )
            self.stats.notifications += 1

    # --- messages -------------------------------------------------------------------------

    def facts(self, row: AlertRow) -> AlertFacts:
        site = self.sites.get(row.site)
        room = self.rooms.get((row.site, row.room or ""))
        device = row.series.split("/")[2] if row.series else None
        return AlertFacts(
            alert_id=row.id,
            rule_kind=row.kind,
            severity="alarm" if row.severity == "alarm" else "warning",
            site=site.name if site else row.site,
            room=room.name if room else row.room,
            quantity=row.quantity,
            value=row.value if row.unit else None,  # door, power, stale: no value to show
            limit=row.limit_value if row.unit else None,
            unit=row.unit,
            direction="below" if row.direction == "below" else ("above" if row.direction else None),
            since_ms=row.since_ms,
            gateway=row.gateway,
            device=device,
        )

    def link(self, alert_id: int, contact: str, now: int) -> str | None:
        base = self.cfg.alerts.public_url
        if base is None:
            return None
        token = sign(alert_id, contact, now + round(self.cfg.alerts.link_ttl * 1000), self.link_key)
        return f"{base.rstrip('/')}/a/{token}"

    def _compose(self, batch: Batch, now: int) -> Sms | None:
        rows = [r for r in (self.store.get(i) for i in batch.alert_ids) if r is not None]
        kind = batch.kind
        if kind in ("alarm", "warning", "reminder", "grouped"):
            rows = [r for r in rows if r.state in ("firing", "pending")]  # acked meanwhile
            if not rows:
                return None
            if len(rows) == 1 and kind == "grouped":
                kind = "alarm" if rows[0].severity == "alarm" else "warning"
        elif kind == "resolved":
            rows = [r for r in rows if self._was_told(r.id, batch.recipient)]
            if not rows:
                return None  # the alarm itself was never sent to them (it cleared first)
        contact = self.contacts.get(batch.recipient)
        language = contact.language if contact else "zh-CN"
        single = len(rows) == 1 and kind != "resolved"
        tz = (
            self.sites[rows[0].site].timezone
            if rows and rows[0].site in self.sites
            else "Asia/Shanghai"
        )
        msg = Message(
            kind=kind,  # type: ignore[arg-type]
            alerts=tuple(self.facts(r) for r in rows),
            now_ms=(rows[0].resolved_ms or now) if kind == "resolved" and rows else now,
            timezone=tz,
            link=self.link(rows[0].id, batch.recipient, now) if single and contact else None,
            reply_code=reply_code(rows[0].id, self.link_key)
            if single and contact and self.cfg.alerts.reply_ack
            else None,
        )
        ref = "-".join(str(n.note_id) for n in batch.notices)
        text = render(msg, language)
        if kind == "resolved" and len(rows) > 1:  # one line per room back to normal
            text = "\n".join(
                render(replace(msg, alerts=(a,), now_ms=r.resolved_ms or now), language)
                for a, r in zip(msg.alerts, rows, strict=True)
            )
        return Sms(
            to=batch.address,
            text=text,
            kind=kind,
            ref=ref,
            params=template_params(msg, language),
        )

    def _was_told(self, alert_id: int, recipient: str) -> bool:
        sent = [
            n
            for n in self.store.notifications(alert_id=alert_id)
            if n.recipient == recipient and n.status in ("accepted", "delivered", "edge")
        ]
        # told of the alarm, and not yet that it is over (an agent may have said so)
        return any(n.kind != "resolved" for n in sent) and not any(
            n.kind == "resolved" for n in sent
        )

    def _sent(self, batch: Batch, delivery: Delivery | None) -> None:
        self.audit(
            actor="hub",
            action="alert.notify" if delivery else "alert.notify_failed",
            obj=",".join(f"alert/{i}" for i in batch.alert_ids),
            after={
                "to": batch.recipient,
                "kind": batch.kind,
                "notifier": delivery.notifier if delivery else None,
                "status": delivery.status if delivery else "failed",
                "provider_ref": delivery.provider_ref if delivery else None,
            },
        )

    # --- people ---------------------------------------------------------------------------

    def get(self, alert_id: int) -> AlertRow:
        row = self.store.get(alert_id)
        if row is None:
            raise NotFoundError(f"no alert {alert_id}")
        return row

    def ack(
        self, alert_id: int, *, by: str, comment: str | None = None, via: str = "api"
    ) -> AlertRow:
        """Acknowledge: escalation stops; the alert stays open until its condition clears."""
        row = self.open.get(alert_id) or self.get(alert_id)
        if row.acked_ms is not None:
            raise ConflictError(f"alert {alert_id} was acknowledged by {row.acked_by} already")
        if row.state == "cancelled":
            raise ConflictError(f"alert {alert_id} was cancelled before it fired")
        now = self.clock()
        before = row.state
        row.acked_ms, row.acked_by, row.ack_comment, row.ack_via = now, by, comment, via
        if row.is_open:
            row.state = "acknowledged"
        self.store.update(
            row.id, state=row.state, acked_ms=now, acked_by=by, ack_comment=comment, ack_via=via
        )
        self._next.pop(row.id, None)
        self.audit(
            actor=by,
            action="alert.ack",
            obj=f"alert/{row.id}",
            before={"state": before},
            after={"state": row.state, "via": via},
            comment=comment,
        )
        return row

    def snooze(self, alert_id: int, *, until_ms: int, by: str) -> AlertRow:
        row = self.open.get(alert_id)
        if row is None or row.state != "firing":
            raise ConflictError(
                f"alert {alert_id} is not firing; only a firing alert can be snoozed"
            )
        now = self.clock()
        if until_ms <= now:
            raise InvalidError("snooze until a time in the future")
        before = row.snoozed_until
        row.snoozed_until = until_ms
        self.store.update(row.id, snoozed_until=until_ms)
        self._next[row.id] = until_ms
        self.audit(
            actor=by,
            action="alert.snooze",
            obj=f"alert/{row.id}",
            before={"snoozed_until": before},
            after={"snoozed_until": until_ms},
        )
        return row

    def reply(self, phone: str, text: str, *, via: str) -> AlertRow | None:
        """An SMS reply: "1234" (the code in the message) acknowledges that alert; a
        reply without a code acknowledges the sender's only open alert."""
        who = next((c for c in self.contacts.values() if c.phone == phone), None)
        if who is None or not self.cfg.alerts.reply_ack:
            log.warning("SMS reply from an unknown number %s ignored", phone)
            return None
        told = {i for n in self.store.notifications(recipient=who.id) for i in n.alerts}
        candidates = [r for r in self.open.values() if r.id in told and r.acked_ms is None]
        digits = "".join(ch for ch in text if ch.isdigit())
        if digits:
            candidates = [r for r in candidates if reply_code(r.id, self.link_key) == digits]
        if len(candidates) != 1:
            log.warning(
                "SMS reply %r from %s matches %d open alerts; not acknowledged",
                text,
                who.id,
                len(candidates),
            )
            return None
        return self.ack(candidates[0].id, by=who.id, comment=f"SMS reply: {text}", via=via)

    def delivery(self, ref: str, status: str) -> None:
        """A delivery report: ``ref`` is our notification ids ("12-13") or a provider's id."""
        ids = [int(x) for x in ref.split("-") if x.isdigit()] if ref[:1].isdigit() else []
        if not ids:
            note = self.store.by_provider_ref(ref)
            ids = [note.id] if note else []
        for i in ids:
            self.store.update_notification(i, status=status)
        if ids:
            self.audit(
                actor="hub",
                action="alert.delivery",
                obj=f"notification/{ids[0]}",
                after={"ids": ids, "status": status},
            )

    # --- maintenance and rules --------------------------------------------------------------

    def maintenance(
        self, site: str, room: str, *, until_ms: int | None, reason: str, by: str
    ) -> None:
        if (site, room) not in self.rooms:
            raise NotFoundError(f"no room {site}/{room}")
        now = self.clock()
        if until_ms is not None:
            if until_ms <= now:
                raise InvalidError("maintenance must end in the future")
            if len(reason.strip()) < 3:
                raise InvalidError("say why the room is in maintenance (reason)")
            self.store.start_maintenance(
                site, room, now_ms=now, until_ms=until_ms, reason=reason, by=by
            )
        elif not self.store.end_maintenance(site, room, now_ms=now):
            raise ConflictError(f"room {site}/{room} is not in maintenance")
        self.audit(
            actor=by,
            action="room.maintenance" if until_ms else "room.maintenance_end",
            obj=f"room/{site}/{room}",
            after={"until_ms": until_ms, "reason": reason},
        )
        self._apply(
            self.evaluator.set_maintenance(site, room, until_ms=until_ms, reason=reason, now_ms=now)
        )

    def put_rule(self, body: dict[str, Any], *, by: str) -> AnyRule:
        rule = RULE.validate_python(body)
        before = next((r for r in self.rules() if r.id == rule.id), None)
        now = self.clock()
        self.store.save_rule(rule.id, rule.model_dump(mode="json"), now_ms=now, by=by)
        self.audit(
            actor=by,
            action="rule.edit",
            obj=f"rule/{rule.id}",
            before=before.model_dump(mode="json") if before else None,
            after=rule.model_dump(mode="json"),
        )
        self._rebuild()
        return rule

    def revert_rule(self, rule_id: str, *, by: str) -> None:
        edits = self.store.rule_edits()
        if edits.get(rule_id) is None:
            raise NotFoundError(f"rule {rule_id} has no edit to revert")
        self.store.save_rule(rule_id, None, now_ms=self.clock(), by=by)
        self.audit(actor=by, action="rule.revert", obj=f"rule/{rule_id}", before=edits[rule_id])
        self._rebuild()

    def _rebuild(self) -> None:
        """New watches from the edited rules; keep what is known of the live state."""
        old = self.evaluator
        self.evaluator = self._build_evaluator()
        for name, view in self.evaluator.views.series.items():
            if name in old.views.series:  # a new rate rule needs the history from now on
                old.views.series[name].keep_history = view.keep_history
        self.evaluator.views = old.views
        now = self.clock()
        for row in list(self.open.values()):
            self._resume(row, now)
