"""What people (and their providers) do to alerts: acknowledge, snooze, reply to an SMS, and
report a delivery. Each is audited under the person's id; a request that does not fit raises
one of :mod:`alerts.errors` (no transport detail; the API maps them).

What must stay true: an acknowledgement stops escalation and leaves the alert open until its
condition clears; only a firing alert can be snoozed, until a time in the future, and its
escalation looks again when the snooze ends; an SMS reply acknowledges only when it names
exactly one open, unacknowledged alert its sender was told of (by the alert's reply code, or
the sender's only such alert when the reply has no digits).
"""

from __future__ import annotations

import logging

from alerts.context import AlertContext
from alerts.errors import ConflictError, InvalidError, NotFoundError
from alerts.escalation import Escalator
from alerts.store import AlertRow
from coldchain.alerting.links import reply_code
from coldchain.alerting.states import AlertState

log = logging.getLogger(__name__)


class Actions:
    """People's actions on alerts."""

    def __init__(self, ctx: AlertContext, escalator: Escalator, link_key: bytes) -> None:
        self.ctx, self.escalator, self.link_key = ctx, escalator, link_key

    def get(self, alert_id: int) -> AlertRow:
        row = self.ctx.store.get(alert_id)
        if row is None:
            raise NotFoundError(f"no alert {alert_id}")
        return row

    def ack(self, alert_id: int, *, by: str, comment: str | None, via: str) -> AlertRow:
        ctx = self.ctx
        row = ctx.open.get(alert_id) or self.get(alert_id)
        if row.acked_ms is not None:
            raise ConflictError(f"alert {alert_id} was acknowledged by {row.acked_by} already")
        if row.state == AlertState.CANCELLED:
            raise ConflictError(f"alert {alert_id} was cancelled before it fired")
        now = ctx.clock()
        before = row.state
        row.acked_ms, row.acked_by, row.ack_comment, row.ack_via = now, by, comment, via
        if row.is_open:
            row.state = AlertState.ACKNOWLEDGED
            ctx.changed.add(row.id)
        ctx.store.update(
            row.id, state=row.state, acked_ms=now, acked_by=by, ack_comment=comment, ack_via=via
        )
        self.escalator.cancel(row.id)
        ctx.audit(
            actor=by,
            action="alert.ack",
            obj=f"alert/{row.id}",
            before={"state": before},
            after={"state": row.state, "via": via},
            comment=comment,
        )
        return row

    def snooze(self, alert_id: int, *, until_ms: int, by: str) -> AlertRow:
        ctx = self.ctx
        row = ctx.open.get(alert_id)
        if row is None or row.state != AlertState.FIRING:
            raise ConflictError(
                f"alert {alert_id} is not firing; only a firing alert can be snoozed"
            )
        if until_ms <= ctx.clock():
            raise InvalidError("snooze until a time in the future")
        before = row.snoozed_until
        row.snoozed_until = until_ms
        ctx.store.update(row.id, snoozed_until=until_ms)
        self.escalator.schedule(row.id, until_ms)
        ctx.audit(
            actor=by,
            action="alert.snooze",
            obj=f"alert/{row.id}",
            before={"snoozed_until": before},
            after={"snoozed_until": until_ms},
        )
        return row

    def reply(self, phone: str, text: str, *, via: str) -> AlertRow | None:
        ctx = self.ctx
        who = next((c for c in ctx.contacts.values() if c.phone == phone), None)
        if who is None or not ctx.cfg.alerts.reply_ack:
            log.warning("SMS reply from an unknown number %s ignored", phone)
            return None
        told = {i for n in ctx.store.notifications(recipient=who.id) for i in n.alerts}
        candidates = [r for r in ctx.open.values() if r.id in told and r.acked_ms is None]
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
        ctx = self.ctx
        ids = [int(x) for x in ref.split("-") if x.isdigit()] if ref[:1].isdigit() else []
        if not ids:
            note = ctx.store.by_provider_ref(ref)
            ids = [note.id] if note else []
        for i in ids:
            ctx.store.update_notification(i, status=status)
        if ids:
            ctx.audit(
                actor="hub",
                action="alert.delivery",
                obj=f"notification/{ids[0]}",
                after={"ids": ids, "status": status},
            )
