"""What every part of the hub's alert lifecycle shares: the config's lookups, the store,
the audit log, the clock, the evaluator and the open alerts.

One :class:`AlertContext` per :class:`~alerts.service.AlertService`; the parts (lifecycle,
escalation, composition, people's actions, maintenance, rule edits) each hold it. What must
stay true: ``open`` holds exactly the open alerts (pending, firing, acknowledged) by id, the
same objects the parts update, and ``open_keys`` the same by watch key (changed only through
:meth:`AlertContext.opened` and :meth:`AlertContext.closed`, so the lifecycle finds a
watch's open alert without a query); ``changed`` names the alerts opened, closed or changed
in state since the live board's last snapshot; and ``evaluator`` is the one judging readings
now (a rule edit replaces it, keeping what it knew of the live state).

``audit`` is a :class:`StoreAudit`: given the hub's audit log (an :class:`AuditTrail`), each
record is encoded at once and queued in the transaction open on the alert store's connection;
the records of one transaction are written together just before it commits, so an alert's
change and its record commit together; given a plain function, the record is handed
to it once that transaction has committed (the function cannot join it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, runtime_checkable

from alerts.store import AlertRow, AlertStore
from coldchain.alerting.evaluator import Evaluator
from coldchain.alerting.facts import Places
from coldchain.alerting.settings import Policy
from coldchain.config.site import Contact, Room, Site, SiteConfig
from coldchain.config.topology import PointInfo
from coldchain.statedb import StateConn


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


@runtime_checkable
class AuditTrail(Protocol):
    """The hub's audit log (:class:`hub.audit.AuditLog`), seen from the alert side."""

    def record(
        self,
        *,
        actor: str,
        action: str,
        obj: str,
        before: Any = None,
        after: Any = None,
        comment: str | None = None,
    ) -> int: ...

    def row(
        self,
        *,
        actor: str,
        action: str,
        obj: str,
        before: Any = None,
        after: Any = None,
        comment: str | None = None,
    ) -> Any: ...

    def insert_rows(self, db: StateConn, rows: list[Any]) -> None: ...


class StoreAudit:
    """Audits the alert side's changes in the alert store's transactions (see the module
    docstring). Returns 0 when the record is written later (with the transaction's others,
    or by a plain function once the transaction has committed), else the function's id."""

    def __init__(self, store: AlertStore, sink: AuditTrail | Audit) -> None:
        self.store = store
        self.trail: AuditTrail | None = None
        self.function: Audit | None = None
        if isinstance(sink, AuditTrail):
            self.trail = sink
        else:
            self.function = sink

    def __call__(
        self,
        *,
        actor: str,
        action: str,
        obj: str,
        before: Any = None,
        after: Any = None,
        comment: str | None = None,
    ) -> int:
        trail = self.trail
        if trail is not None:
            row = trail.row(
                actor=actor, action=action, obj=obj, before=before, after=after, comment=comment
            )
            self.store.append(trail.insert_rows, row)
            return 0
        record: dict[str, Any] = {
            "actor": actor,
            "action": action,
            "obj": obj,
            "before": before,
            "after": after,
            "comment": comment,
        }
        function = self.function
        assert function is not None
        if self.store.in_transaction:
            self.store.after_commit(partial(function, **record))
            return 0
        return function(**record)


@dataclass
class AlertStats:
    readings: int = 0  # judged
    transitions: int = 0
    notifications: int = 0
    evaluations_s: float = 0.0


@dataclass(eq=False)
class AlertContext:
    """The shared state of one alert service (see the module docstring)."""

    cfg: SiteConfig
    points: list[PointInfo]
    store: AlertStore
    audit: Audit
    clock: Callable[[], int]  # epoch ms, the hub's (possibly scaled) time
    evaluator: Evaluator
    open: dict[int, AlertRow] = field(default_factory=dict)
    open_keys: dict[str, AlertRow] = field(default_factory=dict)
    changed: set[int] = field(default_factory=set)
    stats: AlertStats = field(default_factory=AlertStats)

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.contacts: dict[str, Contact] = {c.id: c for c in cfg.contacts}
        self.policies: dict[str, Policy] = {p.id: p for p in cfg.alerts.policies}
        self.sites: dict[str, Site] = {s.id: s for s in cfg.sites}
        self.rooms: dict[tuple[str, str], Room] = {
            (s.id, r.id): r for s in cfg.sites for r in s.rooms
        }
        self.places = Places.of(cfg)

    def policy(self, row: AlertRow) -> Policy | None:
        return self.policies.get(row.policy or "")

    def opened(self, row: AlertRow) -> None:
        """``row`` is open (new, resumed or taken up again)."""
        self.open[row.id] = row
        self.open_keys[row.key] = row
        self.changed.add(row.id)

    def closed(self, row: AlertRow) -> None:
        """``row`` is closed (resolved or cancelled)."""
        self.open.pop(row.id, None)
        if self.open_keys.get(row.key) is row:
            del self.open_keys[row.key]
        self.changed.add(row.id)
