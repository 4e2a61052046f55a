"""What the live board reads: snapshots built incrementally (only the series updated since
the previous one are copied) are the snapshots a full copy would give, stay unchanged once
handed out, and the board's tiles drawn from them show the room's first good air probe, its
doors and its latest reading."""

from __future__ import annotations

import random
from pathlib import Path

from coldchain.alerting.snapshot import AlertSnapshot, OpenAlert, SeriesNow, SnapshotBuilder
from coldchain.alerting.states import AlertState
from coldchain.alerting.views import Views
from coldchain.reading import Quality
from dashboards.web.live import TILE_ALERTS, Board
from gateway.registry import Registry
from tests.alertkit import MIN, PROFILES, T0, config, evaluator, r

SERIES = ["probe/temperature", "probe/humidity", "ctl/probe_1", "di/door_1", "fz/temperature"]


def copied(views: Views) -> dict[str, SeriesNow]:
    """Every series' latest, copied from the live state: what a snapshot must hold."""
    return {
        name: SeriesNow(v.ts_ms, v.value, v.good, v.changed_ms) for name, v in views.series.items()
    }


def test_incremental_snapshots_equal_full_copies_and_never_change_afterwards() -> None:
    ev = evaluator()
    builder = SnapshotBuilder()
    rnd = random.Random(7)
    kept: list[tuple[AlertSnapshot, dict[str, SeriesNow]]] = []
    for i in range(40):
        t = T0 + i * MIN
        picked = rnd.sample(SERIES, rnd.randint(0, 3))
        quality = [Quality.GOOD, Quality.GOOD, Quality.BAD]
        ev.feed([r(s, t, rnd.uniform(-2, 8), rnd.choice(quality)) for s in picked])
        snap = builder.build((), ev.views)
        full = copied(ev.views)
        assert dict(snap.series) == full
        assert {
            k: (r.defrosting, r.maintenance_until_ms, r.last_ms) for k, r in snap.rooms.items()
        } == {
            k: (r.defrosting, r.maintenance_until_ms, r.last_ms) for k, r in ev.views.rooms.items()
        }
        kept.append((snap, full))
    for snap, full in kept:  # each as it was when handed out
        assert dict(snap.series) == full
    assert not ev.views.changed  # the builder took them


def test_replaced_live_state_is_copied_whole() -> None:
    """A rule edit hands the evaluator other views: the next snapshot is of those."""
    ev = evaluator()
    builder = SnapshotBuilder()
    ev.feed([r("probe/temperature", T0, 2.5)])
    builder.build((), ev.views)
    other = Views(started_ms=T0)
    other.series = {name: v for name, v in ev.views.series.items() if "probe" in name}
    snap = builder.build((), other)
    assert set(snap.series) == set(other.series)
    assert snap.series["s1/gw1/probe/temperature"].value == 2.5


class _Alerts:
    def __init__(self, builder: SnapshotBuilder, views: Views) -> None:
        self.builder, self.views = builder, views

    def snapshot(self) -> AlertSnapshot:
        return self.builder.build((), self.views)


def test_a_tile_shows_the_first_good_probe_the_doors_and_the_latest_reading(
    tmp_path: Path,
) -> None:
    cfg = config()
    ev = evaluator(cfg)
    registry = Registry(tmp_path / "hub.db", ["gw1"], health_timeout_s=60)
    board = Board(cfg, PROFILES, registry, _Alerts(SnapshotBuilder(), ev.views))

    def tile(now: int) -> tuple[object, ...]:
        (t,) = [t for t in board.tiles(now, "en") if t.room == "chill"]
        return (t.temperature, t.humidity, t.door_open, t.door_since_ms, t.last_ms)

    assert tile(T0) == (None, None, None, None, None)
    ev.feed([r("probe/temperature", T0, None, Quality.BAD), r("ctl/probe_1", T0, 3.5)])
    assert tile(T0) == (3.5, None, None, None, T0)  # the transmitter is bad: the controller's
    ev.feed([r("probe/temperature", T0 + MIN, 2.0), r("probe/humidity", T0 + MIN, 80.0)])
    assert tile(T0 + MIN) == (2.0, 80.0, None, None, T0 + MIN)
    ev.feed([r("di/door_1", T0 + 2 * MIN, 1.0)])
    assert tile(T0 + 2 * MIN) == (2.0, 80.0, True, T0 + 2 * MIN, T0 + 2 * MIN)
    ev.feed([r("fz/temperature", T0 + 9 * MIN, -20.0)])  # another room's reading
    assert tile(T0 + 9 * MIN)[-1] == T0 + 2 * MIN


class _Fixed:
    def __init__(self, snap: AlertSnapshot) -> None:
        self.snap = snap

    def snapshot(self) -> AlertSnapshot:
        return self.snap


def test_a_tile_lists_a_few_alerts_alarms_first_and_counts_the_rest(tmp_path: Path) -> None:
    """A storm opens thousands of alerts in a room: its tile lists TILE_ALERTS of them, the
    alarms before the warnings, and says how many more there are."""
    cfg = config()
    ev = evaluator(cfg)
    ev.feed([r("probe/temperature", T0, 9.0)])

    def alert(i: int, severity: str, state: AlertState = AlertState.FIRING) -> OpenAlert:
        return OpenAlert(
            i,
            "temperature-high",
            "threshold",
            "temperature",
            "above",
            severity,
            state,
            "s1",
            "chill",
            T0,
        )

    warnings = [alert(i, "warning") for i in range(1, 3000)]
    alarms = [alert(i, "alarm") for i in range(3000, 3003)]
    pending = [alert(i, "alarm", AlertState.PENDING) for i in range(4000, 4100)]
    snap = SnapshotBuilder().build((*warnings, *alarms, *pending), ev.views)
    registry = Registry(tmp_path / "hub.db", ["gw1"], health_timeout_s=60)
    board = Board(cfg, PROFILES, registry, _Fixed(snap))
    (tile,) = [t for t in board.tiles(T0, "en") if t.room == "chill"]
    assert [a.id for a in tile.alerts] == [3000, 3001, 3002, 1, 2]
    assert len(tile.alerts) == TILE_ALERTS
    assert tile.more == 2999 + 3 - TILE_ALERTS  # pending ones are not shown at all
    assert tile.state == "alarm"
