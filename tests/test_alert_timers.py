"""The evaluator's tick judges only what is due: deadlines (a series falling silent, an alarm
delay running out, a hold-off or maintenance ending) sit in a heap keyed by due time, so a
tick with nothing due judges nothing however many watches there are, and a deadline is
judged once, at its time. Counted with ``Evaluator.judgements``, not timed."""

from __future__ import annotations

from coldchain.alerting.evaluator import Evaluator
from coldchain.alerting.watches import build_watches, effective_rules
from coldchain.clock import ManualClock
from coldchain.config.topology import PointInfo, site_points
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.reading import SeriesId
from tests.alertkit import MIN, PROFILES, T0, config, r

SERIES = 2_500  # x 4 built-in rules on a frozen room's air probe (high x2, rise, stale, fault)


def many_points(n: int) -> list[PointInfo]:
    """``n`` air probes in the frozen room (no doors: no room-wide watch over all of them)."""
    return [
        PointInfo(
            sid=SeriesId("s1", "gw1", f"t{i}", "temperature"),
            room="other",
            kind=PointKind.TEMPERATURE,
            role=PointRole.ROOM,
            unit="°C",
            calibration=0.0,
        )
        for i in range(n)
    ]


def big_evaluator(clock: ManualClock) -> tuple[Evaluator, int]:
    cfg = config()
    points = site_points(cfg, PROFILES) + many_points(SERIES)
    watches = build_watches(cfg, points, effective_rules(cfg))
    return Evaluator(cfg, points, watches, now_ms=clock.now_ms()), len(watches)


def all_read(ev: Evaluator, t_ms: int, value: float = -20.0, skip: int | None = None) -> None:
    readings = [r(f"t{i}/temperature", t_ms, value) for i in range(SERIES) if i != skip]
    assert ev.feed(readings) == []


def test_a_tick_with_nothing_due_judges_nothing_among_10000_watches() -> None:
    clock = ManualClock(T0 / 1000)
    ev, n = big_evaluator(clock)
    assert n >= 10_000
    all_read(ev, clock.now_ms())
    before = ev.judgements
    for _ in range(600):  # a minute of 100 ms ticks
        clock.advance(0.1)
        assert ev.tick(clock.now_ms()) == []
    assert ev.judgements == before, "ticks with nothing due judged watches"


def test_a_silent_series_is_judged_once_at_its_deadline() -> None:
    clock = ManualClock(T0 / 1000)
    ev, _ = big_evaluator(clock)
    all_read(ev, T0)
    all_read(ev, T0 + MIN, skip=7)  # t7 falls silent after T0; the rest read again
    due = T0 + 5 * MIN  # the built-in stale rule: 5 min
    counts: list[int] = []
    while clock.now_ms() < due:
        clock.advance(1.0)  # the scan cadence (1 s)
        before = ev.judgements
        out = ev.tick(clock.now_ms())
        counts.append(ev.judgements - before)
        if clock.now_ms() < due:
            assert out == [], clock.now_ms() - T0
    assert counts[:-1] == [0] * (len(counts) - 1), "judged before its deadline"
    assert counts[-1] == 1, "the deadline was not judged exactly once"
    assert [(t.key, t.to, t.ts_ms) for t in out] == [
        ("sensor-stale/alarm/s1/gw1/t7/temperature", "pending", due),
        ("sensor-stale/alarm/s1/gw1/t7/temperature", "firing", due),
    ]
    # the others' early entries (armed at T0 + 5 min) were re-armed, not judged; they fall
    # due a minute later, all at once
    clock.set((T0 + 6 * MIN) / 1000)
    before = ev.judgements
    late = ev.tick(clock.now_ms())
    assert ev.judgements - before == SERIES  # each once (t7 firing: its figure refreshed)
    assert len([t for t in late if t.to == "firing"]) == SERIES - 1


def test_an_alarm_delay_running_out_is_judged_once_at_its_time() -> None:
    clock = ManualClock(T0 / 1000)
    ev, _ = big_evaluator(clock)
    all_read(ev, T0)
    key = "temperature-high/warning/s1/gw1/t3/temperature"
    got = ev.feed([r("t3/temperature", T0, -5.0)])  # above the frozen room's limit
    assert (key, "pending") in [(t.key, t.to) for t in got]
    warning_due = T0 + 5 * MIN
    clock.set((warning_due - 1) / 1000)
    before = ev.judgements
    assert ev.tick(clock.now_ms()) == []
    assert ev.judgements == before
    clock.set(warning_due / 1000)
    out = ev.tick(clock.now_ms())
    assert ev.judgements - before == 1
    assert [(t.key, t.to) for t in out] == [(key, "firing")]


def test_maintenance_ending_wakes_only_the_held_watches() -> None:
    clock = ManualClock(T0 / 1000)
    ev, _ = big_evaluator(clock)
    all_read(ev, T0)
    until = T0 + 4 * MIN  # before the 5-min stale deadlines
    ev.set_maintenance("s1", "chill", until_ms=until, reason="door seal", now_ms=T0)
    got = ev.feed([r("probe/temperature", T0 + MIN, 9.0)])  # held: no alert
    assert not [t for t in got if t.key.startswith("temperature-high/")]
    before = ev.judgements
    clock.set((until - 1) / 1000)
    assert ev.tick(clock.now_ms()) == []
    assert ev.judgements == before
    clock.set(until / 1000)
    out = ev.tick(clock.now_ms())
    assert ev.views.room_of("s1", "chill").maintenance_until_ms is None
    woken = ev.judgements - before
    assert 0 < woken <= 4, woken  # the probe's held watches, not the room's 10,000
    assert ("temperature-high/warning", "pending") in [
        ("/".join(t.key.split("/")[:2]), t.to) for t in out
    ]


def test_an_evaluator_taking_over_live_state_rearms_its_deadlines() -> None:
    """A rule edit rebuilds the evaluator and hands it the old one's views: the silent series
    and the maintenance windows they hold still fall due."""
    clock = ManualClock(T0 / 1000)
    old, _ = big_evaluator(clock)
    all_read(old, T0)
    old.set_maintenance("s1", "chill", until_ms=T0 + MIN, reason="door seal", now_ms=T0)
    new, _ = big_evaluator(clock)
    new.views = old.views
    clock.set((T0 + MIN) / 1000)
    assert new.tick(clock.now_ms()) == []
    assert new.views.room_of("s1", "chill").maintenance_until_ms is None
    clock.set((T0 + 5 * MIN) / 1000)
    out = new.tick(clock.now_ms())
    stale = {t.watch.series for t in out if t.key.startswith("sensor-stale/") and t.to == "firing"}
    assert len(stale) == SERIES
