"""rate_of_rise: a room's temperature climbing faster than a set rise over a window — a
compressor failing or a door left wide open shows here long before a limit is reached.

The rise is the window's trend, not its spread: the Theil-Sen slope (the median of the
slopes between every pair of samples) of the samples in the window, times the window. One
stray sample moves the median of the pairwise slopes hardly at all, so a single spike never
raises it; a real rise moves every pair. It needs ``min_samples`` samples covering at least
``min_span`` of the window, so two samples never decide. A window holding more than
:data:`MAX_POINTS` samples is thinned evenly, which bounds the cost of a check.

The evaluator keeps each watched series' window as a queue
(:class:`~coldchain.alerting.trend.RiseWindow`): a sample enters and leaves it once. A check
of an idle watch first asks the window whether its slope is certainly below the limit (less
0.01 °C, so the rounded rise is too), which the window answers from a count it keeps, and
computes the slope (over at most :data:`MAX_POINTS` thinned samples) only when it may not be,
or when the alert is open (its verdict carries the rise). :func:`check_by_definition`
is the plain definition the tests and ``bench/bench_evaluator.py`` hold it to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from coldchain.alerting.rules.base import (
    CLEAR,
    Graded,
    RuleBase,
    Verdict,
    Watch,
    WatchContext,
    series_watch,
)
from coldchain.alerting.trend import MAX_POINTS, theil_sen, thin
from coldchain.alerting.views import RATE_WINDOW_MAX
from coldchain.durations import Duration, format_duration
from coldchain.profiles.schema import PointKind, PointRole

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo

_MARGIN = 0.01  # °C: a rise below the limit by this much rounds (to 0.01) below it

__all__ = ["MAX_POINTS", "RateOfRiseRule", "check_by_definition", "theil_sen", "thin"]


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

    def window_ms(self) -> int:
        return round(self.window * 1000)

    def span_ms(self) -> int:
        """How much of the window the samples must cover."""
        return round((self.min_span if self.min_span is not None else self.window / 2) * 1000)

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        s = views.series.get(w.series or "")
        win = None if s is None else s.windows.get(self.window_ms())
        if win is None or len(win) < self.min_samples or win.span_ms() < self.span_ms():
            # too little to tell a trend: neither raise nor resolve on it
            return Verdict(bad=True, limit=self.rise, past=False) if active else CLEAR
        window_ms = self.window_ms()
        if not active and self.rise > _MARGIN and win.below((self.rise - _MARGIN) / window_ms):
            return CLEAR  # the rise, rounded to 0.01, is below the limit: no slope needed
        return self.judge_rise(round(win.slope() * window_ms, 2), active)

    def judge_rise(self, rise: float, active: bool) -> Verdict:
        """The verdict on a window's rise (°C over the window)."""
        # Clears at half the rise, so a rise hovering at the limit is one alert.
        past = rise >= self.rise
        bad = past or (active and rise >= self.rise / 2)
        if not bad and not active:
            return CLEAR
        return Verdict(bad=bad, value=rise, limit=self.rise, past=past)


def check_by_definition(
    rule: RateOfRiseRule, history: Sequence[tuple[int, float]], active: bool
) -> Verdict:
    """The rule's verdict by its definition, from the series' good samples (the last
    :data:`~coldchain.alerting.views.RATE_WINDOW_MAX` of them): scan back to the window's
    start from the latest, thin, take the Theil-Sen slope. O(window) per call: the reference
    :meth:`RateOfRiseRule.check` is held to, not what the evaluator runs."""
    if len(history) > RATE_WINDOW_MAX:
        history = list(history)[-RATE_WINDOW_MAX:]
    if not history:
        return Verdict(bad=active, limit=rule.rise, past=False)
    window_ms = rule.window_ms()
    start = history[-1][0] - window_ms
    samples: list[tuple[int, float]] = []
    for ts, v in reversed(history):
        if ts < start:
            break
        samples.append((ts, v))
    samples.reverse()
    if len(samples) < rule.min_samples or samples[-1][0] - samples[0][0] < rule.span_ms():
        return Verdict(bad=active, limit=rule.rise, past=False)
    rise = round(theil_sen(thin(samples, MAX_POINTS)) * window_ms, 2)
    past = rise >= rule.rise
    bad = past or (active and rise >= rule.rise / 2)
    return Verdict(bad=bad, value=rise, limit=rule.rise, past=past)
