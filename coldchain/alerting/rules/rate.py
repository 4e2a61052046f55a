"""rate_of_rise: a room's temperature climbing faster than a set rise over a window — a
compressor failing or a door left wide open shows here long before a limit is reached.

The rise is the window's trend, not its spread: the Theil-Sen slope (the median of the
slopes between every pair of samples) of the samples in the window, times the window. One
stray sample moves the median of the pairwise slopes hardly at all, so a single spike never
raises it; a real rise moves every pair. It needs ``min_samples`` samples covering at least
``min_span`` of the window, so two samples never decide. A window holding more than
:data:`MAX_POINTS` samples is thinned evenly, which bounds the cost of a check.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from coldchain.alerting.rules.base import (
    Graded,
    RuleBase,
    Verdict,
    Watch,
    WatchContext,
    series_watch,
)
from coldchain.alerting.views import RATE_WINDOW_MAX
from coldchain.durations import Duration, format_duration
from coldchain.profiles.schema import PointKind, PointRole

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo


MAX_POINTS = 24
"""Samples of a window the slope is computed from, at most (276 pairs)."""


class RateOfRiseRule(RuleBase, Graded):
    """Temperature trending up by at least ``rise`` over ``window`` (a robust slope of the
    window's samples), for at least ``delay``."""

    kind: Literal["rate_of_rise"] = "rate_of_rise"
    rise: float = Field(description="°C of rise over the window that is too fast", gt=0)
    window: Duration = Field(description="over how long, e.g. 15min", gt=0)
    delay: Duration = Field(0.0, description="how long the rise must persist")
    min_samples: int = Field(
        5,
        description="fewest samples in the window to judge a trend from",
        ge=3,
        le=RATE_WINDOW_MAX,
    )
    min_span: Duration | None = Field(
        None,
        description="the samples must cover at least this much of the window; "
        "absent: half the window",
        gt=0,
    )

    @model_validator(mode="after")
    def _span_fits_the_window(self) -> RateOfRiseRule:
        # a window's samples never span more than the window: the rule would never fire
        if self.min_span is not None and self.min_span > self.window:
            raise ValueError(
                f"min_span ({format_duration(self.min_span)}) is longer than the window "
                f"({format_duration(self.window)}), so the rule could never fire: give a "
                "min_span of at most the window, or leave it out (half the window)"
            )
        return self

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
            return Verdict(bad=active, limit=self.rise, past=False)
        window_ms = round(self.window * 1000)
        start = s.history[-1][0] - window_ms
        samples: list[tuple[int, float]] = []
        for ts, v in reversed(s.history):
            if ts < start:
                break
            samples.append((ts, v))
        samples.reverse()
        span_ms = round((self.min_span if self.min_span is not None else self.window / 2) * 1000)
        if len(samples) < self.min_samples or samples[-1][0] - samples[0][0] < span_ms:
            # too little to tell a trend: neither raise nor resolve on it
            return Verdict(bad=active, limit=self.rise, past=False)
        rise = round(theil_sen(thin(samples, MAX_POINTS)) * window_ms, 2)
        # Clears at half the rise, so a rise hovering at the limit is one alert.
        past = rise >= self.rise
        bad = past or (active and rise >= self.rise / 2)
        return Verdict(bad=bad, value=rise, limit=self.rise, past=past)


def thin(samples: Sequence[tuple[int, float]], most: int) -> Sequence[tuple[int, float]]:
    """At most ``most`` of ``samples``, evenly spaced, the first and the last kept."""
    n = len(samples)
    if n <= most:
        return samples
    return [samples[round(i * (n - 1) / (most - 1))] for i in range(most)]


def theil_sen(samples: Sequence[tuple[int, float]]) -> float:
    """The median slope (value per ms) over every pair of samples at different times."""
    slopes = [
        (vj - vi) / (tj - ti)
        for i, (ti, vi) in enumerate(samples)
        for tj, vj in samples[i + 1 :]
        if tj != ti
    ]
    return statistics.median(slopes) if slopes else 0.0
