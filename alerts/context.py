"""What every part of the hub's alert lifecycle shares: the config's lookups, the store,
the audit log, the clock, the evaluator and the open alerts.

One :class:`AlertContext` per :class:`~alerts.service.AlertService`; the parts (lifecycle,
escalation, composition, people's actions, maintenance, rule edits) each hold it. What must
stay true: ``open`` holds exactly the open alerts (pending, firing, acknowledged) by id, the
same objects the parts update, and ``evaluator`` is the one judging readings now (a rule
edit replaces it, keeping what it knew of the live state).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from alerts.store import AlertRow, AlertStore
from coldchain.alerting.evaluator import Evaluator
from coldchain.alerting.facts import Places
from coldchain.alerting.settings import Policy
from coldchain.config.site import Contact, Room, Site, SiteConfig
from coldchain.config.topology import PointInfo


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
