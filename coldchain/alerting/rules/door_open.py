"""door_open: a door open longer than a set time (Dixell ``did``, Carel ``d8d``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from coldchain.alerting.rules.base import (
    CLEAR,
    Graded,
    RuleBase,
    Verdict,
    Watch,
    WatchContext,
    series_watch,
)
from coldchain.durations import Duration
from coldchain.profiles.schema import PointKind

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo


class DoorOpenRule(RuleBase, Graded):
    """Each door point open longer than ``longer_than``."""

    kind: Literal["door_open"] = "door_open"
    longer_than: Duration = Field(description="how long a door may stay open, e.g. 10min")

    def watches(
        self, site: Site, room: Room, points: list[PointInfo], ctx: WatchContext
    ) -> Iterator[Watch]:
        for p in points:
            if p.kind is PointKind.DOOR:
                yield series_watch(
                    self,
                    p,
                    ctx,
                    severity=self.severity,
                    explicit_policy=self.policy,
                    quantity="door",
                    delay_s=self.longer_than,
                    unit="",
                )

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        s = views.series.get(w.series or "")
        if s is None or s.value is None:
            return Verdict(bad=active)  # no data yet (a hub just started): keep what is known
        if s.value >= 0.5:
            return Verdict(bad=True, value=1.0, since_ms=s.changed_ms)
        return Verdict(bad=False, value=0.0) if active else CLEAR
