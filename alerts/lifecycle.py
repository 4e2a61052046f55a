"""The alert lifecycle: the evaluator's condition changes become stored alerts.

    idle -> pending -> firing -> (acknowledged) -> resolved
               \\-> cancelled (cleared or suppressed before firing)

Each change the evaluator emits (:class:`~coldchain.alerting.evaluator.Transition`, to one of
the :class:`~coldchain.alerting.states.AlertState` values) is dispatched by its target state
in :meth:`Lifecycle.apply`. What must stay true:

* at most one open alert per watch key; a change for a key already open (resumed after a
  restart, or opened from an agent's edge notice) updates that alert;
* a pending alert that clears is cancelled, any other resolved; only a pending one fires;
* firing starts escalation at once; closing stops it, and a resolved alert that was told to
  anyone is announced to those levels when its policy says ``notify_resolved``;
* every transition is audited (``alert.<state>``).
"""

from __future__ import annotations

from typing import assert_never

from alerts.context import AlertContext
from alerts.escalation import Escalator
from alerts.store import AlertRow
from coldchain.alerting.evaluator import Phase, Transition
from coldchain.alerting.states import AlertState


class Lifecycle:
    """Applies condition changes to the stored alerts."""

    def __init__(self, ctx: AlertContext, escalator: Escalator) -> None:
        self.ctx, self.escalator = ctx, escalator

    def apply(self, transitions: list[Transition]) -> None:
        for t in transitions:
            self.ctx.stats.transitions += 1
            match t.to:
                case AlertState.PENDING:
                    self._pending(t)
                case AlertState.FIRING:
                    self._firing(t)
                case AlertState.CANCELLED:
                    self._cancelled(t)
                case AlertState.RESOLVED:
                    self._resolved(t)
                case AlertState.ACKNOWLEDGED:
                    raise ValueError(f"{t.key}: the evaluator does not acknowledge alerts")
                case _:
                    assert_never(t.to)

    def resume(self, row: AlertRow, now: int) -> None:
        """Take up a stored open alert: the evaluator continues it (closed when its rule is
        gone), and a firing one is escalated from now."""
        phase: Phase = "pending" if row.state == AlertState.PENDING else "firing"
        if not self.ctx.evaluator.restore(
            row.key, phase, row.since_ms, value=row.value, peak=row.peak
        ):
            self.close(row, AlertState.RESOLVED, now, reason="its rule no longer exists")
            return
        self.ctx.opened(row)
        if row.state == AlertState.FIRING:
            self.escalator.schedule(row.id, now)

    def close(
        self, row: AlertRow, state: AlertState, ts: int, *, reason: str | None = None
    ) -> None:
        """End ``row`` as ``state`` (resolved or cancelled) at ``ts``."""
        ctx = self.ctx
        told = row.level >= 0 or bool(row.edge_contacts())
        row.state, row.resolved_ms = state, ts
        ctx.store.update(row.id, state=state, resolved_ms=ts, value=row.value, peak=row.peak)
        ctx.closed(row)
        self.escalator.cancel(row.id)
        ctx.audit(
            actor="hub",
            action=f"alert.{state}",
            obj=f"alert/{row.id}",
            after={"key": row.key, "ts_ms": ts, "value": row.value, "peak": row.peak},
            comment=reason,
        )
        policy = ctx.policy(row)
        if state == AlertState.RESOLVED and told and policy is not None and policy.notify_resolved:
            self.escalator.notify(row, range(max(row.level, 0) + 1), "resolved", policy)

    # --- one per target state --------------------------------------------------------------

    def _pending(self, t: Transition) -> None:
        ctx = self.ctx
        if t.key in ctx.open_keys:
            return  # resumed after a restart, or raised from an agent's notice
        w = t.watch
        row = ctx.store.insert(
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
            state=AlertState.PENDING,
            since_ms=t.since_ms,
            pending_ms=t.ts_ms,
            value=t.value,
            limit_value=t.limit,
            peak=t.peak,
        )
        ctx.opened(row)
        self._audit(row, t)

    def _row(self, t: Transition) -> AlertRow | None:
        return self.ctx.open_keys.get(t.key)

    def _firing(self, t: Transition) -> None:
        row = self._row(t)
        if row is None:
            self._pending(t)
            row = self._row(t)
            assert row is not None
        if row.state != AlertState.PENDING:
            return
        row.state, row.fired_ms, row.value, row.peak = AlertState.FIRING, t.ts_ms, t.value, t.peak
        self.ctx.changed.add(row.id)
        row.limit_value = t.limit
        self.ctx.store.update(
            row.id,
            state=AlertState.FIRING,
            fired_ms=t.ts_ms,
            value=t.value,
            limit_value=t.limit,
            peak=t.peak,
        )
        self._audit(row, t)
        self.escalator.schedule(row.id, t.ts_ms)
        self.escalator.escalate(self.ctx.clock(), only=row.id)

    def _cancelled(self, t: Transition) -> None:
        row = self._row(t)
        if row is not None and row.state == AlertState.PENDING:
            self.close(row, AlertState.CANCELLED, t.ts_ms)

    def _resolved(self, t: Transition) -> None:
        row = self._row(t)
        if row is None:
            return
        row.value, row.peak = t.value, t.peak
        pending = row.state == AlertState.PENDING
        self.close(row, AlertState.CANCELLED if pending else AlertState.RESOLVED, t.ts_ms)

    def _audit(self, row: AlertRow, t: Transition) -> None:
        self.ctx.audit(
            actor="hub",
            action=f"alert.{t.to}",
            obj=f"alert/{row.id}",
            after={
                "key": row.key,
                "since_ms": t.since_ms,
                "ts_ms": t.ts_ms,
                "value": t.value,
                "limit": t.limit,
            },
        )
