"""forecast: a room's temperature heading past its limit within a horizon at its current
trend — the warning that comes before the alarm (a failed compressor crosses the limit
minutes to hours after it stops).

The trend is the one ``rate_of_rise`` reads: the Theil-Sen slope of the room-air series'
samples over ``window`` (:class:`~coldchain.alerting.trend.RiseWindow`), so one stray sample
hardly moves it and a real rise moves every pair. A door opening or a defrost is not read as
a trend: while a door of the room is open and for ``door_settle`` after it closes, and while a
defrost reported by its controller is on and for a window after, the rule neither raises nor
resolves (whatever ``alerts.suppression`` says of the threshold rules); a scheduled defrost
holds it as it holds the room's other temperature rules (suppression and its hold-off).

Where the room is at ``value`` °C below its ``limit`` and warming at ``slope`` °C/min, it
reaches the limit in ``(limit - value) / slope`` minutes. The warning is raised when that is
within ``horizon`` (after ``delay``); its value is the estimate in whole minutes, shown as
"reaches 4 °C in ~25 min". It resolves when the trend turns: the room cooling or level
(the slope under ``min_slope``), or the estimate beyond twice the horizon. A room already
past its limit is the threshold rule's: the forecast stays as it was until the trend turns.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from coldchain.alerting.rules.base import (
    CLEAR,
    RuleBase,
    Verdict,
    Watch,
    WatchContext,
    series_watch,
)
from coldchain.alerting.views import RATE_WINDOW_MAX
from coldchain.durations import Duration
from coldchain.profiles.schema import PointKind, PointRole

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo

MS_PER_MIN = 60_000


class ForecastRule(RuleBase):
    """A room's temperature reaching its limit within ``horizon`` at its current trend."""

    kind: Literal["forecast"] = "forecast"
    limit: float | Literal["room"] = Field(
        "room", description="a number (°C), or 'room': the room's high temperature limit"
    )
    # defaults from bench/bench_forecast.py (docs/benchmarks.md): no false warning in 20
    # room-weeks of the example site, a median 41 min of warning on a failed compressor
    horizon: Duration = Field(
        1800.0, description="warn when the limit is this close at the current trend", gt=0
    )
    window: Duration = Field(2700.0, description="the trend is read over this long", gt=0)
    min_samples: int = Field(
        6, description="fewest samples in the window to read a trend from", ge=3, le=RATE_WINDOW_MAX
    )
    min_slope: float = Field(
        0.02,
        description="°C per minute under which the room is not warming (noise, a slow drift)",
        gt=0,
    )
    delay: Duration = Field(120.0, description="how long the forecast must hold first", ge=0)
    door_settle: Duration | None = Field(
        900.0,
        description="after a door of the room closes, how long before the trend is read "
        "again; null: the whole window",
        ge=0,
    )
    severity: Literal["warning", "alarm"] = Field("warning", description="warning or alarm")
    policy: str | None = Field(
        None, description="escalation policy id; absent: alerts.default_policy for the severity"
    )

    def _limit(self, room: Room) -> float | None:
        if self.limit != "room":
            return float(self.limit)
        band = room.effective_limits.temperature
        return None if band is None else band.high

    def watches(
        self, site: Site, room: Room, points: list[PointInfo], ctx: WatchContext
    ) -> Iterator[Watch]:
        limit = self._limit(room)
        if limit is None:
            return
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
                    direction="above",
                    limit=limit,
                )

    def window_ms(self) -> int:
        return round(self.window * 1000)

    def minutes_to(self, value: float, slope_per_min: float, limit: float) -> float:
        """Minutes until ``value`` reaches ``limit`` warming at ``slope_per_min`` (inf when
        it is not warming)."""
        if slope_per_min < self.min_slope:
            return math.inf
        return max(0.0, (limit - value) / slope_per_min)

    def disturbed(self, w: Watch, views: Views, now_ms: int) -> bool:
        """A door of the room open, or closed within ``door_settle``; a defrost on, or ended
        within the window: the window's samples are not the room's own trend."""
        room = views.rooms.get((w.site, w.room or ""))
        if room is None:
            return False
        recent = now_ms - self.window_ms()
        settle = self.window_ms() if self.door_settle is None else round(self.door_settle * 1000)
        return (
            room.door_open
            or room.defrosting
            or (room.door_closed_ms is not None and room.door_closed_ms > now_ms - settle)
            or (room.defrost_end_ms is not None and room.defrost_end_ms > recent)
        )

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        s = views.series.get(w.series or "")
        win = None if s is None else s.windows.get(self.window_ms())
        hold = Verdict(bad=True, limit=w.limit, past=False) if active else CLEAR
        if (
            s is None
            or win is None
            or s.value is None
            or not s.good
            or w.limit is None
            or len(win) < self.min_samples
            or win.span_ms() < self.window_ms() / 2
            or self.disturbed(w, views, now_ms)
        ):
            return hold  # no trend of the room's own to read: neither raise nor resolve
        slope = win.slope() * MS_PER_MIN
        if s.value >= w.limit:  # past it: the threshold rule's; held until the trend turns
            return hold if slope >= self.min_slope else CLEAR
        minutes = self.minutes_to(s.value, slope, w.limit)
        horizon = self.horizon / 60
        past = minutes <= horizon
        if not (past or (active and minutes <= 2 * horizon)):
            return CLEAR
        return Verdict(bad=True, value=float(math.ceil(minutes)), limit=w.limit, past=past)
