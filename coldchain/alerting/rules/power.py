"""power: a room's supply cut, where a profile exposes a mains-sense point (kind power,
e.g. a relay contact into a DI module on a UPS). GSP asks for power-failure alarms too."""

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


class PowerRule(RuleBase, Graded):
    """A power point reading 0 for longer than ``longer_than``."""

    kind: Literal["power"] = "power"
    longer_than: Duration = Field(30.0, description="how long a cut may last, e.g. 30s")

    def watches(
        self, site: Site, room: Room, points: list[PointInfo], ctx: WatchContext
    ) -> Iterator[Watch]:
        for p in points:
            if p.kind is PointKind.POWER:
                yield series_watch(
                    self,
                    p,
                    ctx,
                    severity=self.severity,
                    explicit_policy=self.policy,
                    quantity="power",
                    delay_s=self.longer_than,
                    unit="",
                )

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        s = views.series.get(w.series or "")
        if s is None or s.value is None or not s.good:
            return Verdict(bad=active)
        if s.value < 0.5:
            return Verdict(bad=True, value=0.0, since_ms=s.changed_ms)
        return Verdict(bad=False, value=1.0) if active else CLEAR
