"""stale: a sensor that stopped reporting ("no data for X") is its own alarm: silence is
not "all is well". Not raised while the sensor's gateway is offline — gateway_offline
says that once, instead of every sensor behind it saying it again."""

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


class StaleRule(RuleBase, SensorRule):
    """No reading from a series for longer than ``after``."""

    kind: Literal["stale"] = "stale"
    after: Duration = Field(description="how long without a reading, e.g. 5min")

    def watches(
        self,
        site: Site,
        room: Room,
        points: list[PointInfo],
        ctx: WatchContext,
    ) -> Iterator[Watch]:
        return self.sensor_watches(self, points, ctx, delay_s=0.0, timed=True, limit=self.after)

    def due_ms(self, w: Watch, views: Views) -> int | None:
        """When the series will have been silent ``after`` (None: no reading yet, or its
        gateway is offline: no evidence either way)."""
        s = views.series.get(w.series or "")
        gw = views.gateways.get(w.gateway or "")
        if s is None or s.ts_ms is None or (gw is not None and not gw.online):
            return None
        return max(s.ts_ms, views.started_ms) + math.ceil(self.after * 1000)

    def quiet_range(self, w: Watch) -> tuple[float, float] | None:
        # a reading is the opposite of silence, and moves the deadline later, never earlier
        return (-math.inf, math.inf)

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        s = views.series.get(w.series or "")
        gw = views.gateways.get(w.gateway or "")
        if s is None or s.ts_ms is None or (gw is not None and not gw.online):
            return Verdict(bad=active)  # no evidence either way: keep what is known
        last = max(s.ts_ms, views.started_ms)  # a hub just started has not missed anything
        silent_ms = now_ms - last
        bad = silent_ms >= self.after * 1000
        if not bad and not active:
            return CLEAR
        return Verdict(bad=bad, value=round(silent_ms / 1000), limit=self.after, since_ms=s.ts_ms)
