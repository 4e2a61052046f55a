"""sensor_fault: a sensor reporting bad quality (probe open or shorted, exception replies,
garbage) for longer than a set time."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from coldchain.alerting.rules.base import (
    CLEAR,
    RuleBase,
    SensorRule,
    Verdict,
    Watch,
    WatchContext,
)
from coldchain.durations import Duration

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo


class SensorFaultRule(RuleBase, SensorRule):
    """Bad-quality readings from a series for longer than ``longer_than``."""

    kind: Literal["sensor_fault"] = "sensor_fault"
    longer_than: Duration = Field(description="how long bad readings may last, e.g. 2min")

    def watches(
        self,
        site: Site,
        room: Room,
        points: list[PointInfo],
        ctx: WatchContext,
    ) -> Iterator[Watch]:
        return self.sensor_watches(self, points, ctx, delay_s=self.longer_than)

    def quiet_range(self, w: Watch) -> tuple[float, float] | None:
        return (-math.inf, math.inf)  # a good reading is no fault, whatever its value

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        s = views.series.get(w.series or "")
        if s is None or s.ts_ms is None:
            return Verdict(bad=active)
        if s.good:
            return CLEAR
        return Verdict(bad=True, since_ms=s.bad_since_ms)
