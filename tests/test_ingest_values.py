"""The hub judges every value by its point's profile, whatever the gateway says about it: a
value outside the profile's ``valid_range`` (or, without one, outside what the point's kind
can physically be) is stored as a bad reading with no value and a reason, counted by reason;
the batch is still acknowledged. (The running-hub cases are in tests/cases/hostile/.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coldchain.config.loader import load_site_config
from coldchain.config.topology import PLAUSIBLE, PointInfo, site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.protocol.messages import Batch, encode_batch, pack
from coldchain.protocol.topics import Topics
from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.sqlite.store import SqliteStore
from firmware_configs import SITES_DIR
from gateway.ingest import Ingest, implausible

NOW = time.time_ns() // 1_000_000
SID = SeriesId("s", "g", "d", "p")


def point(kind: PointKind, valid: tuple[float, float] | None = None, cal: float = 0.0) -> PointInfo:
    return PointInfo(SID, "room", kind, PointRole.ROOM, "", cal, valid)


def test_every_point_kind_has_a_plausible_range() -> None:
    assert set(PLAUSIBLE) == set(PointKind)
    assert PLAUSIBLE[PointKind.TEMPERATURE] == (-100.0, 200.0)
    assert PLAUSIBLE[PointKind.HUMIDITY] == (0.0, 100.0)
    assert PLAUSIBLE[PointKind.DOOR] == PLAUSIBLE[PointKind.POWER] == (0.0, 1.0)


@pytest.mark.parametrize(
    ("info", "value", "reason"),
    [
        (
            point(PointKind.TEMPERATURE),
            -273.15,
            "hub refused value -273.15: outside -100..200 (plausible temperature)",
        ),
        (
            point(PointKind.TEMPERATURE, (-40.0, 125.0), cal=-0.3),
            1e308,
            "hub refused value 1e+308: outside -40.3..124.7 (valid range)",
        ),
        (
            point(PointKind.HUMIDITY),
            100.5,
            "hub refused value 100.5: outside 0..100 (plausible humidity)",
        ),
        (point(PointKind.POWER), -1.0, "hub refused value -1.0: outside 0..1 (plausible power)"),
        (
            point(PointKind.COUNTER),
            float(2**64 - 1),
            "hub refused value 1.8446744073709552e+19: outside 0..9.0072e+15 (plausible counter)",
        ),
    ],
)
def test_implausible_values_were_stored_as_good(info: PointInfo, value: float, reason: str) -> None:
    bad = implausible(Reading(SID, NOW, value), info)
    assert bad is not None
    assert (bad.value, bad.quality, bad.reason) == (None, Quality.BAD, reason)


def test_plausible_values_and_no_value_are_left_alone() -> None:
    info = point(PointKind.TEMPERATURE, (-40.0, 125.0), cal=-0.3)
    assert implausible(Reading(SID, NOW, -40.3), info) is None
    assert implausible(Reading(SID, NOW, 124.7), info) is None
    assert implausible(Reading(SID, NOW, None, Quality.BAD, "probe open"), info) is None


def test_site_points_carry_the_profiles_valid_range(profiles: ProfileRegistry) -> None:
    cfg = load_site_config(SITES_DIR / "county.yaml", profiles)
    points = {str(p.sid): p for p in site_points(cfg, profiles)}
    door = points["chengqu-centre/gw-centre-cold/cr1-doors/door_1"]
    assert (door.valid_range, door.bounds) == (None, (0.0, 1.0))
    assert all(p.bounds[0] <= p.bounds[1] for p in points.values())


async def test_one_implausible_value_makes_one_bad_reading_not_a_rejected_batch(
    tmp_path: Path,
    profiles: ProfileRegistry,
) -> None:
    """A batch carrying 1e308 was stored whole; a batch carrying ``true`` was refused
    whole, never acknowledged, and resent by the gateway forever."""
    cfg = load_site_config(SITES_DIR / "county.yaml", profiles)
    store = SqliteStore(tmp_path / "store.db")
    ingest = Ingest(cfg, profiles, store)
    t = Topics()
    probe = ["cr1-probe-door", "temperature", 0]
    msg = {
        "v": 1,
        "gw": "gw-centre-cold",
        "site": "chengqu-centre",
        "epoch": "e1",
        "seq": 1,
        "series": [probe],
        "r": [[0, NOW, 1e308], [0, NOW + 1, 3.0], [0, NOW + 2, True], [0, NOW + 3, 2**64 - 1]],
    }
    batch = ingest.check(t.topic("gw-centre-cold", "telemetry"), pack(msg), NOW)
    assert [r.value for r in batch.readings] == [None, 3.0, None, None]
    assert [r.quality for r in batch.readings] == [
        Quality.BAD,
        Quality.GOOD,
        Quality.BAD,
        Quality.BAD,
    ]
    assert dict(batch.rejected_values) == {"out_of_range": 2, "not_a_number": 1}
    assert ingest.receive(t.topic("gw-centre-cold", "telemetry"), pack(msg))
    assert dict(ingest.stats.rejected_values) == {"out_of_range": 2, "not_a_number": 1}
    assert not ingest.stats.rejected
    await store.close()


async def test_a_batch_larger_than_the_largest_legal_one_is_refused_undecoded(
    tmp_path: Path,
    profiles: ProfileRegistry,
) -> None:
    cfg = load_site_config(SITES_DIR / "county.yaml", profiles)
    store = SqliteStore(tmp_path / "store.db")
    ingest = Ingest(cfg, profiles, store)
    sid = SeriesId("chengqu-centre", "gw-centre-cold", "cr1-probe-door", "temperature")
    readings = [Reading(sid, NOW - i, 1.0) for i in range(300_000)]
    data = encode_batch(Batch("gw-centre-cold", "chengqu-centre", "e1", 1, readings))
    started = time.perf_counter()
    assert not ingest.receive(Topics().topic("gw-centre-cold", "telemetry"), data)
    assert time.perf_counter() - started < 0.05  # refused before decoding
    assert dict(ingest.stats.rejected) == {"too_large": 1}
    await store.close()


def test_a_calibrated_reading_at_the_edge_of_its_range_was_refused() -> None:
    # The agent stores round(raw + calibration, 6); the hub compared it with hi + calibration
    # in floats, and e.g. range (-20, 60) with calibration -4.98 refused a raw 60 (55.02 >
    # 55.019999999999996): a good reading stored as bad.
    for lo, hi in ((-20.0, 60.0), (-40.0, 125.0), (0.0, 100.0)):
        for step in range(-500, 501):
            cal = step / 100
            info = point(PointKind.TEMPERATURE, (lo, hi), cal=cal)
            for raw in (lo, hi):
                value = round(raw + cal, 6)
                assert implausible(Reading(SID, NOW, value), info) is None, (lo, hi, cal, raw)
