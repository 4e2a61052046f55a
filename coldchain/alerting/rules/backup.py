"""backup: the hub's scheduled backup failed, or no good backup for longer than ``max_age``
(issue 17: backups that are proven; a missing one must reach a manager). One watch per site,
judged on the hub's backup state (:class:`coldchain.alerting.views.BackupView`), which the
hub's backup schedule reports (``hub/backup_schedule.py``); clear while no schedule is
configured, so a site without one is never told."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from coldchain.alerting.rules.base import CLEAR, Graded, RuleBase, Verdict, Watch, WatchContext
from coldchain.durations import Duration

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo

HOUR_S = 3600


class BackupRule(RuleBase, Graded):
    """The last scheduled backup failed its restore test, or none was good for ``max_age``."""

    kind: Literal["backup"] = "backup"
    max_age: Duration = Field(
        description="how old the last good backup may be, e.g. 26h (a daily schedule with "
        "two hours to spare)"
    )

    def _since(self, views: Views) -> int | None:
        """When the current run without a good backup began (None: no schedule)."""
        b = views.backup
        if b.configured_ms is None:
            return None
        return b.last_good_ms if b.last_good_ms is not None else b.configured_ms

    def due_ms(self, w: Watch, views: Views) -> int | None:
        since = self._since(views)
        return None if since is None else since + math.ceil(self.max_age * 1000)

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        since = self._since(views)
        if since is None:
            return CLEAR
        b = views.backup
        age_h = round((now_ms - since) / 1000 / HOUR_S, 1)
        limit_h = round(self.max_age / HOUR_S, 1)
        failed = b.failed_ms is not None and (
            b.last_good_ms is None or b.failed_ms > b.last_good_ms
        )
        if failed or now_ms >= since + math.ceil(self.max_age * 1000):  # due_ms on
            return Verdict(bad=True, value=age_h, limit=limit_h, since_ms=b.failed_ms or since)
        return CLEAR

    def watches(
        self, site: Site, room: Room, points: list[PointInfo], ctx: WatchContext
    ) -> Iterator[Watch]:
        yield Watch(
            key=f"{self.id}/{self.severity}/{site.id}",
            rule=self,
            tier=self.severity,
            severity=self.severity,
            policy=ctx.policy(self.severity, self.policy),
            site=site.id,
            room=None,
            gateway=None,
            series=None,
            quantity="backup",
            unit="h",
            delay_ms=0,
            timed=True,
        )
