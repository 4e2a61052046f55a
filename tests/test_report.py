from __future__ import annotations

from coldchain.profiles.schema import PointKind
from coldchain.reading import Quality, Reading, SeriesId
from edge_agent.report import ReportFilter

T = SeriesId("s", "g", "d", "temperature")
DOOR = SeriesId("s", "g", "d", "door")


def r(ts_s: float, value: float | None, series: SeriesId = T) -> Reading:
    ts = int(1_764_300_000_000 + ts_s * 1000)
    if value is None:
        return Reading(series, ts, None, Quality.BAD, "probe open")
    return Reading(series, ts, value)


def test_deadband_against_the_last_sent_value_lets_drift_through() -> None:
    f = ReportFilter({PointKind.TEMPERATURE: 0.1}, max_silence_s=60)
    sent = [
        f.admit(r(t, v), PointKind.TEMPERATURE)
        for t, v in [(0, 2.0), (1, 2.05), (2, 2.09), (3, 2.1), (4, 2.15), (5, 2.2)]
    ]
    assert sent == [True, False, False, True, False, True]
    assert f.suppressed == 3


def test_max_silence_and_quality_changes_are_always_sent() -> None:
    f = ReportFilter({PointKind.TEMPERATURE: 0.5}, max_silence_s=60)
    assert f.admit(r(0, 2.0), PointKind.TEMPERATURE)
    assert not f.admit(r(59, 2.0), PointKind.TEMPERATURE)
    assert f.admit(r(60, 2.0), PointKind.TEMPERATURE)
    assert f.admit(r(61, None), PointKind.TEMPERATURE)
    assert not f.admit(r(62, None), PointKind.TEMPERATURE)
    assert f.admit(r(63, 2.0), PointKind.TEMPERATURE)


def test_doors_send_every_change() -> None:
    f = ReportFilter({PointKind.TEMPERATURE: 0.5}, max_silence_s=60)
    assert [
        f.admit(r(t, v, DOOR), PointKind.DOOR) for t, v in [(0, 0), (1, 0), (2, 1), (3, 0)]
    ] == [
        True,
        False,
        True,
        True,
    ]
