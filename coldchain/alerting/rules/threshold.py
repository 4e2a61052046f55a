"""threshold: a room's temperature or humidity above (or below) a limit for longer than a
delay, in a warning and an alarm tier, cleared only once back inside by the hysteresis
(Dixell/Eliwell ``ALd`` and ``AFH``). Watches every room-air point of the quantity."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from coldchain.alerting.rules.base import (
    CLEAR,
    RuleBase,
    Tier,
    Verdict,
    Watch,
    WatchContext,
    series_watch,
)
from coldchain.profiles.schema import PointKind, PointRole

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo


class ThresholdRule(RuleBase):
    """Above or below a limit, for longer than a delay."""

    kind: Literal["threshold"] = "threshold"
    quantity: Literal["temperature", "humidity"] = Field(
        "temperature", description="what is watched"
    )
    direction: Literal["above", "below"] = Field(description="above the limit, or below it")
    limit: float | Literal["room"] = Field(
        "room", description="a number, or 'room': the room's band (high for above, low for below)"
    )
    hysteresis: float = Field(
        0.5, description="clears only this far back inside the limit (°C or %RH)", ge=0
    )
    warning: Tier | None = Field(None, description="the warning tier (optional)")
    alarm: Tier | None = Field(None, description="the alarm tier")

    @model_validator(mode="after")
    def _a_tier(self) -> ThresholdRule:
        if self.warning is None and self.alarm is None:
            raise ValueError("give a warning tier, an alarm tier or both")
        return self

    def _limit(self, room: Room) -> float | None:
        if self.limit != "room":
            return float(self.limit)
        limits = room.effective_limits
        band = limits.temperature if self.quantity == "temperature" else limits.humidity
        if band is None:
            return None
        return band.high if self.direction == "above" else band.low

    def watches(
        self, site: Site, room: Room, points: list[PointInfo], ctx: WatchContext
    ) -> Iterator[Watch]:
        base = self._limit(room)
        if base is None:  # e.g. 'below' on a frozen room: no low limit
            return
        kind = PointKind(self.quantity)
        sign = 1.0 if self.direction == "above" else -1.0
        for tier_name, tier in (("warning", self.warning), ("alarm", self.alarm)):
            if tier is None:
                continue
            severity: Literal["warning", "alarm"] = "warning" if tier_name == "warning" else "alarm"
            for p in points:
                if p.kind is not kind or p.role is not PointRole.ROOM:
                    continue
                yield series_watch(
                    self,
                    p,
                    ctx,
                    severity=severity,
                    explicit_policy=tier.policy,
                    tier=tier_name,
                    quantity=self.quantity,
                    delay_s=tier.delay,
                    suppressible=True,
                    direction=self.direction,
                    limit=base + sign * tier.margin,
                )

    def quiet_range(self, w: Watch) -> tuple[float, float] | None:
        # idle, a good value is bad only past the limit (the hysteresis is for clearing)
        if w.limit is None:
            return (-math.inf, math.inf)
        return (-math.inf, w.limit) if w.direction == "above" else (w.limit, math.inf)

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        s = views.series.get(w.series or "")
        if s is None or s.value is None or not s.good or w.limit is None:
            # No good value: not evidence of an excursion (sensor_fault covers it); an
            # active alert stays active rather than resolving on a missing reading, and a
            # pending one does not fire on it.
            if not active:
                return CLEAR
            value = None if s is None else s.value
            return Verdict(bad=True, value=value, limit=w.limit, past=False)
        limit = w.limit
        if w.direction == "above":
            past = s.value > limit
            bad = past or (active and s.value >= limit - self.hysteresis)
        else:
            past = s.value < limit
            bad = past or (active and s.value <= limit + self.hysteresis)
        if not bad and not active:
            return CLEAR  # the quiet path: nothing built per reading
        return Verdict(bad=bad, value=s.value, limit=limit, since_ms=s.ts_ms, past=past)
