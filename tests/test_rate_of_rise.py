"""rate_of_rise needs a sustained rise (a robust slope over enough of the window), not two
samples: the bug was a single +8 °C spike texting "rising fast" 1 s later, then "resolved"."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from coldchain.alerting.rules.base import CLEAR, Watch
from coldchain.alerting.rules.rate import (
    MAX_POINTS,
    RateOfRiseRule,
    check_by_definition,
    theil_sen,
    thin,
)
from coldchain.alerting.views import RATE_WINDOW_MAX, SeriesView, Views
from coldchain.reading import Quality
from tests.alertkit import MIN, T0, Run, evaluator, r

RATE = "temperature-rise"  # the built-in rule: 3 °C over 15 min, a warning


def rate_changes(run: Run) -> list[str]:
    return [t.to for t in run.out if t.key.startswith(f"{RATE}/") and "/probe/" in t.key]


def steady(run: Run, until: float, value: float = 2.0, step: float = 1.0) -> None:
    m = (run.t - T0) / MIN
    while m < until:
        m += step
        run.at(m, ("probe/temperature", value))


def test_a_single_spike_raises_no_rate_of_rise() -> None:
    run = Run(evaluator())
    steady(run, 20)  # 20 min at 2.0 °C, one reading a minute
    spike_at = 20 + 1 / 60  # one reading 1 s later, +8 °C ...
    run.at(spike_at, ("probe/temperature", 10.0))
    run.at(21, ("probe/temperature", 2.0))  # ... and back
    steady(run, 40)
    assert rate_changes(run) == [], "not even pending: one sample is no trend"


def test_a_spike_among_dense_readings_raises_nothing() -> None:
    run = Run(evaluator())
    steady(run, 20, step=0.25)
    run.at(20.1, ("probe/temperature", 10.0))
    steady(run, 40, step=0.25)
    assert rate_changes(run) == []


def test_two_samples_decide_nothing() -> None:
    run = Run(evaluator())
    run.at(0, ("probe/temperature", 1.0))
    run.at(1, ("probe/temperature", 9.0))  # +8 °C in a minute, but only two samples
    run.at(2, ("probe/temperature", 9.0))
    assert rate_changes(run) == []


def test_a_compressor_failure_still_raises_within_the_window() -> None:
    """+0.2 °C/min (3 °C in 15 min, the rule's rate) for 20 min: raised, within the window
    plus a minute of the rise starting."""
    run = Run(evaluator())
    steady(run, 10, value=1.0)
    fired_at = None
    for k in range(1, 21):
        got = run.at(10 + k, ("probe/temperature", 1.0 + 0.2 * k))
        if any(t.key.startswith(f"{RATE}/") and t.to == "firing" for t in got):
            fired_at = fired_at or k
    assert fired_at is not None, rate_changes(run)
    assert fired_at <= 16, f"fired {fired_at} min into the rise"
    firing = next(t for t in run.out if t.key.startswith(f"{RATE}/") and t.to == "firing")
    assert firing.value is not None
    assert firing.value >= 3.0
    assert firing.limit == 3.0


def test_a_rise_during_a_defrost_is_held() -> None:
    run = Run(evaluator())
    steady(run, 10, value=1.0)
    run.at(10, ("ctl/defrost", 1.0))
    for k in range(1, 21):  # the defrost warms the room at the failure's rate
        run.at(10 + k, ("probe/temperature", 1.0 + 0.2 * k))
    assert rate_changes(run) == []


def test_theil_sen_ignores_one_outlier_and_thin_keeps_the_ends() -> None:
    flat = [(i * 60_000, 2.0) for i in range(15)]
    flat[7] = (7 * 60_000, 10.0)
    assert theil_sen(flat) == 0.0
    rising = [(i * 60_000, 0.2 * i) for i in range(15)]
    assert abs(theil_sen(rising) * 60_000 - 0.2) < 1e-9
    many = [(i, float(i)) for i in range(500)]
    few = thin(many, 24)
    assert len(few) == 24
    assert (few[0], few[-1]) == (many[0], many[-1])


def test_settings_that_would_never_fire_are_refused() -> None:
    # A min_span longer than the window, or more samples than the evaluator keeps per series,
    # were accepted and silently switched the rule off.
    base = {"id": "rise", "kind": "rate_of_rise", "rise": 3, "window": "15min"}
    with pytest.raises(ValidationError, match=r"min_span \(20min\) is longer than the window"):
        RateOfRiseRule.model_validate({**base, "min_span": "20min"})
    with pytest.raises(ValidationError, match=f"less than or equal to {RATE_WINDOW_MAX}"):
        RateOfRiseRule.model_validate({**base, "min_samples": RATE_WINDOW_MAX + 1})
    RateOfRiseRule.model_validate({**base, "min_span": "15min"})


# --- the window kept as a queue gives the definition's verdicts -----------------------------


def _watch(rule: RateOfRiseRule) -> Watch:
    return Watch(
        key=f"{rule.id}/warning/x",
        rule=rule,
        tier="warning",
        severity="warning",
        policy=None,
        site="s1",
        room="chill",
        gateway="gw1",
        series="x",
        quantity="temperature",
        unit="°C",
        delay_ms=0,
        inputs=("x",),
        limit=rule.rise,
    )


def _same_as_definition(rule: RateOfRiseRule, steps: list[tuple[int, float | None]]) -> None:
    """Feed ``steps`` (ms after the previous reading, value or None for a bad reading) and
    compare every verdict, idle and active, with :func:`check_by_definition`."""
    views = Views()
    view = views.series["x"] = SeriesView(room="chill", kind="temperature")
    view.track(rule.window_ms())
    w = _watch(rule)
    history: list[tuple[int, float]] = []
    t = T0
    for dt, value in steps:
        t += dt
        good = value is not None
        reading = r("probe/temperature", t, value, Quality.GOOD if good else Quality.BAD)
        assert view.update(reading)
        if value is not None:
            history.append((t, value))
        for active in (False, True):
            got = rule.check(w, views, t, active)
            want = check_by_definition(rule, history, active)
            if active or want.bad:
                assert got == want, (len(history), active)
            else:  # idle and clear: the shared verdict, nothing kept of it
                assert got is CLEAR, (len(history), want)


@settings(max_examples=150)
@given(
    window_min=st.integers(1, 20),
    min_samples=st.integers(3, 8),
    rise=st.sampled_from([0.5, 1.0, 3.0]),
    steps=st.lists(
        st.tuples(
            st.sampled_from([0, 1_000, 10_000, 30_000, 60_000, 90_000, 600_000]),
            st.one_of(st.none(), st.integers(-40, 120).map(lambda v: v / 10)),
        ),
        max_size=90,
    ),
)
def test_the_kept_window_gives_the_definitions_verdict(
    window_min: int, min_samples: int, rise: float, steps: list[tuple[int, float | None]]
) -> None:
    rule = RateOfRiseRule(id="rise", rise=rise, window=f"{window_min}min", min_samples=min_samples)
    _same_as_definition(rule, steps)


def test_a_dense_long_series_thins_and_caps_as_the_definition() -> None:
    """Windows of more than MAX_POINTS samples (thinned) and more than RATE_WINDOW_MAX
    (capped), in and out of both, with drifts that raise and clear the rule."""
    rnd = random.Random(12)
    steps: list[tuple[int, float | None]] = []
    value = 2.0
    for k in range(3_000):
        dt = (
            rnd.choice([500, 1_000, 2_000]) if (k // 700) % 2 == 0 else rnd.choice([30_000, 60_000])
        )
        value += rnd.uniform(-0.05, 0.08) if (k // 300) % 2 else rnd.uniform(-0.08, 0.05)
        steps.append((dt, None if rnd.random() < 0.02 else round(value, 2)))
    _same_as_definition(RateOfRiseRule(id="rise", rise=3.0, window="15min"), steps)


@settings(max_examples=300)
@given(
    x=st.sampled_from([0.0, 1e-6, -1e-6, 2e-5]),
    steps=st.lists(
        st.tuples(
            st.sampled_from([0, 1_000, 5_000, 60_000, 400_000]),
            st.sampled_from([1.0, 1.5, 2.0, 2.005, 3.0]),  # few values: many equal ones
        ),
        max_size=60,
    ),
)
def test_the_window_tells_a_slope_below_a_limit_as_the_definition(
    x: float, steps: list[tuple[int, float]]
) -> None:
    """``RiseWindow.below(x)`` is True only when the (thinned) window's Theil-Sen slope is
    below ``x``, its count of pairs at ``x`` or more is the brute-force count while kept
    (values repeat and times tie, so pairs of equal ``v - x t`` are common), and it is True
    whenever fewer than half of the pairs reach ``x`` and no two samples share a time."""
    view = SeriesView(room="chill", kind="temperature")
    win = view.track(300_000)
    t = T0
    for dt, value in steps:
        t += dt
        assert view.update(r("probe/temperature", t, value))
        below = win.below(x)
        pts = thin(list(win.samples), MAX_POINTS)
        pairs = [
            (vj - vi) / (tj - ti)
            for i, (ti, vi) in enumerate(pts)
            for tj, vj in pts[i + 1 :]
            if tj != ti
        ]
        if len(win) <= MAX_POINTS and (kept := win._at_least.get(x)) is not None:
            # by u = v - x (t - t0), the same order as the slopes but for rounding
            t0 = kept.t0 or 0
            want = len(
                [
                    (i, tj)
                    for i, (ti, vi) in enumerate(pts)
                    for tj, vj in pts[i + 1 :]
                    if vj - x * (tj - t0) >= vi - x * (ti - t0)
                ]
            )
            assert kept.count == want, (len(win), kept.count, want)
        fuzz = 1e-12  # a pair's slope at x to within rounding may count either way
        if below:
            assert theil_sen(pts) < x + fuzz
        ties = any(a[0] == b[0] for a, b in itertools.pairwise(pts))
        reach = sum(p >= x - fuzz for p in pairs)
        if len(pts) >= 2 and not ties and reach < (len(pairs) + 1) // 2:
            assert below, (len(win), x)
