"""The one clock: wall time by default, a scaled clock that separate processes agree on, a
manual clock tests step; and the parts that keep time (poller, MQTT input, uplink status,
health, ingest, alerts) reading the clock they are given instead of the wall."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from coldchain.clock import WALL, ManualClock, ScaledClock, as_clock
from coldchain.config.loader import load_site_config
from coldchain.config.site import SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.messages import Batch, encode_batch
from coldchain.protocol.topics import Topics
from coldchain.reading import Reading, SeriesId
from firmware_configs import SITES_DIR
from gateway.ingest import Ingest, RejectedError
from tests.alertkit import PROFILES, T0, site
from tests.hubkit import get, running_hub_service
from tests.services import Broker

DAY_S = 86_400.0


def test_wall_clock_is_wall_time() -> None:
    before = time.time_ns() // 1_000_000
    now = WALL.now_ms()
    assert before <= now <= time.time_ns() // 1_000_000
    assert WALL.speed == 1.0
    assert WALL.to_wall(30.0) == 30.0


def test_scaled_clocks_with_the_same_anchor_agree() -> None:
    anchor = time.time() - 10.0  # started 10 wall seconds ago
    a = ScaledClock(speed=60.0, start=T0 / 1000, anchor=anchor)
    b = ScaledClock(speed=60.0, start=T0 / 1000, anchor=anchor)  # "another process"
    ta, tb = a.now(), b.now()
    assert abs(ta - tb) < 1.0  # the two reads are microseconds apart: 60x that at most
    assert ta == pytest.approx(T0 / 1000 + 600.0, abs=5.0)  # 10 wall s = 10 simulated min
    assert a.to_wall(60.0) == 1.0


def test_a_scaled_clock_refuses_a_speed_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="speed must be above 0, got -2"):
        ScaledClock(speed=-2.0)


async def test_a_scaled_sleep_is_clock_seconds() -> None:
    clock = ScaledClock(speed=600.0)
    before, wall = clock.now(), time.monotonic()
    await clock.sleep(30.0)  # 30 clock seconds: 50 ms of wall time
    assert clock.now() - before >= 30.0
    assert time.monotonic() - wall < 1.0


async def test_a_manual_clock_wakes_sleepers_only_when_moved_past_their_end() -> None:
    clock = ManualClock(1000.0)
    woke: list[float] = []

    async def sleeper(s: float) -> None:
        await clock.sleep(s)
        woke.append(clock.now())

    tasks = [asyncio.create_task(sleeper(s)) for s in (5.0, 10.0)]
    await asyncio.sleep(0)
    assert clock.sleeping() == 2
    clock.advance(4.0)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(1.0)
    await asyncio.gather(tasks[0])
    assert woke == [1005.0]
    assert clock.next_wake() == 1010.0
    clock.set(2000.0)
    await asyncio.gather(tasks[1])
    assert woke == [1005.0, 2000.0]
    with pytest.raises(ValueError, match="a clock does not go back"):
        clock.set(1999.0)


def test_a_millisecond_function_is_a_clock() -> None:
    ms = [T0]
    clock = as_clock(lambda: ms[0])
    assert clock.now_ms() == T0
    ms[0] += 1500
    assert clock.now() == (T0 + 1500) / 1000
    assert as_clock(WALL) is WALL


def _batch(ts_ms: int) -> bytes:
    sid = SeriesId("s1", "gw1", "probe", "temperature")
    return encode_batch(Batch("gw1", "s1", "e1", 1, [Reading(sid, ts_ms, 2.5)]))


def test_timestamps_in_simulated_time_are_accepted_by_a_hub_on_the_same_clock() -> None:
    """At 60x a reading stamped two simulated days ahead of the wall is normal: the hub on
    the shared clock takes it; a hub on the wall clock refuses it as from the future."""
    cfg = SiteConfig.model_validate(site())
    sim_now = time.time() + 2 * DAY_S
    clock = ManualClock(sim_now)
    payload = _batch(clock.now_ms())
    topic = Topics(cfg.uplink.prefix).topic("gw1", "telemetry")
    store = None
    shared = Ingest(cfg, PROFILES, store, clock_ms=clock.now_ms)  # type: ignore[arg-type]
    batch = shared.check(topic, payload, clock.now_ms())
    assert batch.readings[0].ts_ms == clock.now_ms()
    assert shared.receive(topic, payload)
    walled = Ingest(cfg, PROFILES, store)  # type: ignore[arg-type]
    assert not walled.receive(topic, payload)
    assert walled.stats.rejected["schema"] == 1
    with pytest.raises(RejectedError, match=r"r\[0\]: bad time"):
        walled.check(topic, payload, WALL.now_ms())


async def test_default_time_ranges_of_api_chart_and_reports_follow_the_hubs_clock(
    tmp_path: Path, mosquitto: Broker, profiles: ProfileRegistry
) -> None:
    """In an accelerated demo, simulated time runs ahead of the wall: the history API's,
    the room chart's and the reports' default "now" read the wall clock, so their default
    24 h ranges ended hours before the newest reading and the charts were empty."""
    path = SITES_DIR / "county.yaml"
    cfg = load_site_config(path, profiles)
    clock = ManualClock(time.time() + 2 * DAY_S)
    series = SeriesId("chengqu-centre", "gw-centre-cold", "cr1-probe-back", "temperature")
    async with running_hub_service(
        cfg, profiles, tmp_path / "hub", mosquitto.url, config_path=path, clock=clock
    ) as hub:
        ts = clock.now_ms() - 3_600_000
        await hub.store.write([Reading(series, ts, 2.5)])
        status, body = await get(f"{hub.url}/api/history?series={quote(str(series), safe='')}")
        assert status == 200
        assert [r["ts_ms"] for r in body["readings"]] == [ts]
        status, chart = await get(f"{hub.url}/rooms/chengqu-centre/cold-room-1/data")
        assert status == 200
        assert chart["end_ms"] == clock.now_ms()
