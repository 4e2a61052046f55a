"""Message composition: a batch of notifications for one recipient becomes the SMS (or robot
post) to send, and what became of it is audited.

What must stay true:

* an alarm, warning, reminder or grouped message tells only of alerts still pending or
  firing when it is sent (one acknowledged meanwhile is left out; none left: nothing sent),
  and a "grouped" batch down to one alert reads as that alert's alarm or warning;
* a "resolved" message goes only to those told of the alarm and not yet of its end (an
  agent may have said so), one line per room back to normal;
* the facts of each alert come from :func:`coldchain.alerting.facts.alert_facts`, the same
  as an agent's edge fallback texts;
* a message about one alert to a contact carries the signed acknowledge link (when the hub
  has a public URL) and, when replies acknowledge, the alert's reply code.
"""

from __future__ import annotations

from dataclasses import replace

from alerts.context import AlertContext
from alerts.dispatch import Batch
from alerts.store import AlertRow
from coldchain.alerting.facts import AlertFacts, Message, alert_facts, message_extra
from coldchain.alerting.links import reply_code, sign
from coldchain.alerting.messages import render, template_params
from coldchain.alerting.states import AlertState
from coldchain.sms.types import Delivery, Sms

_LIVE = (AlertState.FIRING, AlertState.PENDING)
_TOLD = ("accepted", "delivered", "edge")  # notification statuses that reached the person


class Composer:
    """Writes the messages of batches; ``link_key`` signs links and reply codes."""

    def __init__(self, ctx: AlertContext, link_key: bytes) -> None:
        self.ctx, self.link_key = ctx, link_key

    def facts(self, row: AlertRow) -> AlertFacts:
        return alert_facts(
            row,
            self.ctx.places,
            alert_id=row.id,
            rule_kind=row.kind,
            value=row.value,
            limit=row.limit_value,
            since_ms=row.since_ms,
        )

    def link(self, alert_id: int, contact: str, now: int) -> str | None:
        alerts = self.ctx.cfg.alerts
        if alerts.public_url is None:
            return None
        token = sign(alert_id, contact, now + round(alerts.link_ttl * 1000), self.link_key)
        return f"{alerts.public_url.rstrip('/')}/a/{token}"

    def compose(self, batch: Batch, now: int) -> Sms | None:
        """The message of ``batch`` at ``now`` (None: nothing left to say)."""
        ctx = self.ctx
        rows = [r for r in (ctx.store.get(i) for i in batch.alert_ids) if r is not None]
        kind = batch.kind
        if kind in ("alarm", "warning", "reminder", "grouped"):
            rows = [r for r in rows if r.state in _LIVE]  # acked meanwhile
            if not rows:
                return None
            if len(rows) == 1 and kind == "grouped":
                kind = "alarm" if rows[0].severity == "alarm" else "warning"
        elif kind == "resolved":
            rows = [r for r in rows if self._was_told(r.id, batch.recipient)]
            if not rows:
                return None  # the alarm itself was never sent to them (it cleared first)
        contact = ctx.contacts.get(batch.recipient)
        language = contact.language if contact else "zh-CN"
        single = len(rows) == 1 and kind != "resolved"
        rules = (ctx.evaluator.watch(r.key) for r in rows)
        msg = Message(
            kind=kind,  # type: ignore[arg-type]
            alerts=tuple(self.facts(r) for r in rows),
            now_ms=(rows[0].resolved_ms or now) if kind == "resolved" and rows else now,
            timezone=ctx.places.timezone(rows[0].site) if rows else "Asia/Shanghai",
            link=self.link(rows[0].id, batch.recipient, now) if single and contact else None,
            reply_code=reply_code(rows[0].id, self.link_key)
            if single and contact and ctx.cfg.alerts.reply_ack
            else None,
            extra=message_extra(w.rule if w else None for w in rules),
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
            for n in self.ctx.store.notifications(alert_id=alert_id)
            if n.recipient == recipient and n.status in _TOLD
        ]
        # told of the alarm, and not yet that it is over (an agent may have said so)
        return any(n.kind != "resolved" for n in sent) and not any(
            n.kind == "resolved" for n in sent
        )

    def sent(self, batch: Batch, delivery: Delivery | None) -> None:
        """Audit what became of a batch (``delivery`` None: every notifier failed)."""
        self.ctx.audit(
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
