"""rate_of_rise: a room's temperature climbing faster than a set rise over a window — a
compressor failing or a door left wide open shows here long before a limit is reached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from coldchain.alerting.rules.base import (
    Graded,
    RuleBase,
    Verdict,
    Watch,
    WatchContext,
    series_watch,
)
from coldchain.durations import Duration
from coldchain.profiles.schema import PointKind, PointRole

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo


class RateOfRiseRule(RuleBase, Graded):
    """Temperature rising by at least ``rise`` within ``window``."""

    kind: Literal["rate_of_rise"] = "rate_of_rise"
    rise: float = Field(description="°C of rise that is too fast", gt=0)
    window: Duration = Field(description="over how long, e.g. 15min")
    delay: Duration = Field(0.0, description="how long the rise must persist")

    def watches(
        self, site: Site, room: Room, points: list[PointInfo], ctx: WatchContext
    ) -> Iterator[Watch]:
        for p in points:
            if p.kind is PointKind.TEMPERATURE and p.role is PointRole.ROOM:
                yield series_watch(
                    self,
                    p,
                    ctx,
                    severity=self.severity,
                    explicit_policy=self.policy,
                    quantity="temperature",
                    delay_s=self.delay,
                    suppressible=True,
                    limit=self.rise,
                )

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        s = views.series.get(w.series or "")
        if s is None or not s.history:
            return Verdict(bad=False)
        newest_ts, newest = s.history[-1]
        start = newest_ts - round(self.window * 1000)
        low = min(v for ts, v in s.history if ts >= start)
        rise = newest - low
        # Clears at half the rise, so a rise hovering at the limit is one alert.
        bad = rise >= (self.rise / 2 if active else self.rise)
        return Verdict(bad=bad, value=round(rise, 2), limit=self.rise)
