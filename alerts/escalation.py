"""Escalation: who is told of a firing alert, and when.

:func:`step` is pure: given an alert's timeline and its policy, which levels are due now and
when to look again. Levels are due at ``fired + level.after``; once every due level has been
told, ``repeat`` re-notifies those reached until someone acknowledges; a snooze holds
everything until it ends.

:class:`Escalator` runs it for the open alerts: it keeps when to look at each firing alert
again, persists ``level`` and ``notified_ms``, and queues a notification per recipient
(:func:`coldchain.alerting.recipients.recipients`, the choice the edge fallback makes too)
with the dispatcher once the store's transaction has committed. Contacts an agent already
texted (an edge notice) are not told of the alarm again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from alerts.context import AlertContext
from alerts.dispatch import Dispatcher, Notice
from alerts.store import AlertRow
from coldchain.alerting.recipients import recipients
from coldchain.alerting.settings import Policy
from coldchain.alerting.states import AlertState


@dataclass(frozen=True, slots=True)
class Step:
    """What to do now: notify ``levels`` (new levels reached) or remind ``reminder``
    levels; ``next_ms`` is when to look again (None: nothing more to do)."""

    levels: tuple[int, ...]
    reminder: tuple[int, ...]
    next_ms: int | None


def step(
    policy: Policy,
    *,
    fired_ms: int,
    level: int,
    notified_ms: int | None,
    snoozed_until: int | None,
    now_ms: int,
) -> Step:
    """The escalation step of a firing, unacknowledged alert at ``now_ms``."""
    if snoozed_until is not None and snoozed_until > now_ms:
        return Step((), (), snoozed_until)
    due = tuple(
        i
        for i, lv in enumerate(policy.levels)
        if i > level and fired_ms + round(lv.after * 1000) <= now_ms
    )
    reached = max(due) if due else level
    nexts: list[int] = []
    if reached + 1 < len(policy.levels):
        nexts.append(fired_ms + round(policy.levels[reached + 1].after * 1000))
    reminder: tuple[int, ...] = ()
    if policy.repeat is not None and level >= 0:
        repeat_ms = round(policy.repeat * 1000)
        last = notified_ms if notified_ms is not None else fired_ms
        if snoozed_until is not None and snoozed_until > last:
            last = snoozed_until - repeat_ms  # a snooze that ended: remind now
        if not due and last + repeat_ms <= now_ms:
            reminder = tuple(range(level + 1))
            last = now_ms
        nexts.append(last + repeat_ms)
    elif policy.repeat is not None and due:
        nexts.append(now_ms + round(policy.repeat * 1000))
    return Step(due, reminder, min(nexts) if nexts else None)


class Escalator:
    """Escalation of the open alerts; ``due`` maps an alert id to when to look at it next."""

    def __init__(self, ctx: AlertContext, dispatcher: Dispatcher) -> None:
        self.ctx, self.dispatcher = ctx, dispatcher
        self.due: dict[int, int] = {}

    def schedule(self, alert_id: int, at_ms: int) -> None:
        self.due[alert_id] = at_ms

    def cancel(self, alert_id: int) -> None:
        self.due.pop(alert_id, None)

    def escalate(self, now: int, *, only: int | None = None) -> None:
        """Notify the levels due now of every alert due (or of alert ``only``)."""
        ids = [only] if only is not None else [i for i, at in self.due.items() if at <= now]
        for alert_id in ids:
            row = self.ctx.open.get(alert_id)
            policy = self.ctx.policy(row) if row else None
            if (
                row is None
                or row.state != AlertState.FIRING
                or row.fired_ms is None
                or policy is None
            ):
                self.due.pop(alert_id, None)
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
                self.notify(row, s.levels, kind, policy)
                row.level = max(s.levels)
            if s.reminder:
                self.notify(row, s.reminder, "reminder", policy)
            if s.levels or s.reminder:
                row.notified_ms = now
                self.ctx.store.update(row.id, level=row.level, notified_ms=now)
            if s.next_ms is None:
                self.due.pop(alert_id, None)
            else:
                self.due[alert_id] = s.next_ms

    def notify(self, row: AlertRow, levels: Iterable[int], kind: str, policy: Policy) -> None:
        """Queue a ``kind`` notification of ``row`` to everyone of ``levels``."""
        ctx = self.ctx
        levels = list(levels)
        skip = row.edge_contacts() if kind in ("alarm", "warning") else set()
        now = ctx.clock()
        for who in recipients(policy, levels, site=row.site, contacts=ctx.contacts):
            if who in skip:
                continue
            contact = ctx.contacts.get(who)
            address = contact.phone if contact else ""
            note = ctx.store.add_notification(
                alert_ids=[row.id],
                recipient=who,
                address=address,
                kind=kind,
                level=max(levels) if levels else None,
                queued_ms=now,
            )
            notice = Notice(note, who, address, kind, [row.id], row.site, max(levels))
            ctx.store.after_commit(partial(self.dispatcher.submit, notice))
            ctx.stats.notifications += 1
