"""The evaluator's quiet path (a good reading inside the quiet ranges of a series' idle
watches skips judging them) changes what is judged, never what is decided: on random
streams of readings (values either side of every limit, bad readings, doors, defrost, mains,
silences), an evaluator with it and one without give the same transitions at the same
times, with the same figures, and fewer judgements."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.alerting.evaluator import Evaluator, Transition
from coldchain.reading import Quality
from tests.alertkit import MIN, T0, evaluator, r

# the test site's series that the room's rules watch, and values that cross their limits
# (chilled 0-4 °C, frozen below -18 °C, humidity bands, 0/1 for doors, defrost and mains)
SERIES: dict[str, list[float]] = {
    "probe/temperature": [-3.0, -0.5, 0.5, 2.0, 3.9, 4.0, 4.5, 5.0, 9.0],
    "probe/humidity": [40.0, 70.0, 85.0, 95.0, 99.0],
    "ctl/probe_1": [-1.0, 1.0, 3.5, 4.2, 7.0],
    "ctl/defrost": [0.0, 1.0],
    "di/door_1": [0.0, 1.0],
    "di/mains": [0.0, 1.0],
    "fz/temperature": [-25.0, -18.5, -17.5, -10.0],
}

reading = st.tuples(
    st.sampled_from(sorted(SERIES)),
    st.integers(0, 99),  # picks a value of the series
    st.sampled_from([Quality.GOOD] * 5 + [Quality.BAD]),
)
step = st.tuples(st.integers(0, 4 * MIN), st.lists(reading, max_size=6))


def transitions(ts: list[Transition]) -> list[tuple[object, ...]]:
    return [(t.key, t.to, t.ts_ms, t.since_ms, t.value, t.limit, t.peak) for t in ts]


def without_quiet_path() -> Evaluator:
    ev = evaluator()
    ev._quiet = {}  # feed finds no quiet path for any series: every watch is judged
    return ev


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=60))
def test_the_quiet_path_decides_exactly_what_judging_every_watch_decides(
    steps: list[tuple[int, list[tuple[str, int, Quality]]]],
) -> None:
    fast, full = evaluator(), without_quiet_path()
    t = T0
    for gap, readings in steps:
        t += gap
        batch = [
            r(name, t, SERIES[name][pick % len(SERIES[name])], quality)
            for name, pick, quality in readings
        ]
        got = transitions(fast.feed(batch) + fast.tick(t))
        assert got == transitions(full.feed(batch) + full.tick(t))
    assert fast.judgements <= full.judgements


def test_quiet_readings_skip_the_threshold_fault_and_stale_watches() -> None:
    """A good reading inside every limit judges only the watches without a quiet range (the
    rate of rise, the room's door-open-while-warm), not the four thresholds, the sensor
    fault and the armed silent-sensor timer; past the high limit, also the two high
    thresholds (the low ones, the fault and the timer stay quiet); while those are pending,
    they are judged on every reading; a bad reading is judged by every watch."""
    ev = evaluator()
    ev.feed([r("probe/temperature", T0, 2.0)])
    before = ev.judgements
    ev.feed([r("probe/temperature", T0 + MIN, 2.1)])
    assert ev.judgements - before == 2
    before = ev.judgements
    ev.feed([r("probe/temperature", T0 + 2 * MIN, 6.0)])  # past the high limit
    assert ev.judgements - before == 4
    before = ev.judgements  # the high warning and alarm are pending: judged though inside
    ev.feed([r("probe/temperature", T0 + 3 * MIN, 2.0)])
    assert ev.judgements - before == 4
    before = ev.judgements  # both cancelled: the quiet path again
    ev.feed([r("probe/temperature", T0 + 4 * MIN, 2.0)])
    assert ev.judgements - before == 2
    before = ev.judgements
    ev.feed([r("probe/temperature", T0 + 5 * MIN, None, Quality.BAD)])
    assert ev.judgements - before == 8


def test_a_silent_sensor_without_a_timer_is_judged_and_armed_by_its_next_reading() -> None:
    """Before its first reading a series' silent-sensor watch has no deadline (no timer):
    the first good reading is judged by it, which arms it; the silence that follows fires."""
    ev = evaluator()
    (stale,) = [
        st
        for st in ev._states.values()
        if st.watch.key.startswith("sensor-stale/")
        and st.watch.series == "s1/gw1/probe/temperature"
    ]
    assert stale.timer_ms is None
    ev.feed([r("probe/temperature", T0 + MIN, 2.0)])
    assert stale.timer_ms is not None
    fired = ev.tick(T0 + 7 * MIN)
    assert [t.key for t in fired if t.key.startswith("sensor-stale/")]
