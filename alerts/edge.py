"""What the hub does with an agent's edge-fallback notices: the texts a gateway sent itself
while its uplink was down (``coldchain/protocol/edge.py``).

A notice names the alert by the same key the hub's evaluator uses. The hub attaches it to
the open alert of that key (or opens one, firing since the notice says, when its own
evaluator has not seen the episode yet — the notices arrive before the telemetry backlog),
records each text as a notification with status ``edge``, and counts the people reached as
told: escalation skips them at the first level and they are among those told when the alert
resolves. Processing is idempotent: a revision received twice changes nothing the second
time, and every notice is acknowledged so the gateway can forget it.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from coldchain.logsafe import clip
from coldchain.protocol.edge import Notice

if TYPE_CHECKING:
    from alerts.service import AlertService
    from alerts.store import AlertRow

log = logging.getLogger(__name__)


def apply_notices(
    svc: AlertService, gateway: str, notices: tuple[Notice, ...]
) -> list[tuple[str, int]]:
    """Record ``notices`` from ``gateway``; return the (id, rev) pairs to acknowledge."""
    stored: list[tuple[str, int]] = []
    strangers: list[Notice] = []
    for n in notices:
        watch = svc.evaluator.watch(n.key)
        if watch is None or watch.gateway not in (None, gateway) or watch.site != n.site:
            strangers.append(n)
            stored.append((n.id, n.rev))  # nothing to do with it, ever: let the gateway forget it
            continue
        row = _alert_for(svc, n)
        _record_texts(svc, row, n, gateway)
        stored.append((n.id, n.rev))
    if strangers:  # one line per message, not one per notice (up to 1,000)
        log.warning(
            "gateway %s: %d notices name no alert of its own (first: %s, %s)",
            gateway,
            len(strangers),
            strangers[0].id,
            clip(strangers[0].key, 100),
        )
    return stored


def _alert_for(svc: AlertService, n: Notice) -> AlertRow:
    """The open alert of the notice's key, or one opened (or recorded) from the notice."""
    row = svc.store.open_by_key(n.key)
    if row is not None:
        return row
    watch = svc.evaluator.watch(n.key)
    assert watch is not None
    state = "firing" if n.resolved_ms is None else "resolved"
    row = svc.store.insert(
        key=n.key,
        rule=watch.rule.id,
        kind=watch.rule.kind,
        tier=watch.tier,
        severity=watch.severity,
        policy=watch.policy,
        site=watch.site,
        room=watch.room,
        gateway=watch.gateway,
        series=watch.series,
        quantity=watch.quantity,
        unit=watch.unit,
        direction=watch.direction,
        state=state,
        since_ms=n.since_ms,
        pending_ms=n.since_ms,
        fired_ms=n.fired_ms,
        resolved_ms=n.resolved_ms,
        value=n.value,
        limit_value=n.limit,
        peak=n.value,
    )
    svc.audit(
        actor=f"gateway/{row.gateway or watch.site}",
        action="alert.edge_opened",
        obj=f"alert/{row.id}",
        after={
            "key": n.key,
            "since_ms": n.since_ms,
            "fired_ms": n.fired_ms,
            "resolved_ms": n.resolved_ms,
            "notice": n.id,
        },
    )
    if state == "firing":
        svc.resume(row)
    return row


def _record_texts(svc: AlertService, row: AlertRow, n: Notice, gateway: str) -> None:
    known = {
        (x.recipient, x.kind, x.sent_ms)
        for x in svc.store.notifications(alert_id=row.id, status="edge")
    }
    told = row.edge_contacts()
    for s in n.sent:
        kind = "resolved" if s.message == "resolved" else "alarm"
        if (s.contact, kind, s.ts_ms) in known:
            continue
        note = svc.store.add_notification(
            alert_ids=[row.id],
            recipient=s.contact,
            address=s.phone,
            kind=kind,
            level=0,
            queued_ms=s.ts_ms,
            sent_ms=s.ts_ms,
            notifier=f"edge:{gateway}",
            status="edge" if s.status != "failed" else "edge-failed",
        )
        svc.store.update_notification(note, provider_ref=s.ref, error=s.error)
        svc.audit(
            actor=f"gateway/{gateway}",
            action="alert.notify",
            obj=f"alert/{row.id}",
            after={
                "to": s.contact,
                "kind": kind,
                "notifier": f"edge:{gateway}",
                "status": s.status,
                "ts_ms": s.ts_ms,
            },
        )
        if s.status != "failed" and kind == "alarm":
            told.add(s.contact)
    if told != row.edge_contacts():
        row.edge_notified = json.dumps(sorted(told))
        svc.store.update(row.id, edge_notified=row.edge_notified)
        if row.id in svc.open:
            svc.open[row.id].edge_notified = row.edge_notified
