"""Correcting the time of readings a gateway took with a wrong clock: the SQLite store moves
exactly the readings still marked ``clock unsynchronised`` of that gateway in the window,
keeps its rollups true, and moves such readings arriving later (a backlog, a resend) on
arrival, across a restart; the hub's API takes the step the gateway reported, audits the
correction, and says so when the store cannot move readings."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coldchain.config.loader import load_site_config
from coldchain.reading import (
    CLOCK_SHIFT,
    CLOCK_UNSYNCHRONISED,
    Quality,
    Reading,
    SeriesId,
    clock_corrected,
)
from coldchain.store.base import RetimeResult, StoreError
from coldchain.store.sqlite.store import SqliteStore
from firmware_configs import SITES_DIR
from hub.service import Hub
from tests.hubkit import call, running_hub_service
from tests.services import Broker
from tests.sites import shipped_profiles
from tests.victoria import VictoriaMetrics

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
MIN = 60_000
GW = "gw-centre-cold"
A = SeriesId("chengqu-centre", GW, "cr1-probe-door", "temperature")
B = SeriesId("chengqu-centre", GW, "cr1-probe-back", "temperature")
OTHER = SeriesId("meilin-tea", "gw-meilin", "tea-probe-a", "temperature")
SHIFT = 4 * 3_600_000  # the Pi booted 4 h behind


def marked(series: SeriesId, ts: int, value: float) -> Reading:
    return Reading(series, ts, value, Quality.UNCERTAIN, CLOCK_UNSYNCHRONISED)


def rollup_others(path: Path) -> dict[tuple[str, int, int], int]:
    """Per rollup table, series and bucket: the 'other' count, and what the raw rows say
    (the 1-h rollup holds the hours before its horizon only: the others are made later)."""
    db = sqlite3.connect(path)
    out = {}
    horizons = dict(db.execute("SELECT series, horizon FROM rollup_1h_horizon"))
    for table, grain in (("rollup_1m", MIN), ("rollup_1h", 60 * MIN)):
        until = horizons if table == "rollup_1h" else {}
        kept = {(s, b): o for s, b, o in db.execute(f"SELECT series, bucket, other FROM {table}")}
        raw = db.execute(
            f"SELECT series, ts - ts % {grain}, count(*) FROM reading WHERE q <> 0 GROUP BY 1, 2"
        ).fetchall()
        want = {(s, b): n for s, b, n in raw if b < until.get(s, b + 1)}
        assert all(b < until.get(s, b + 1) for s, b in kept), table
        assert {k: v for k, v in kept.items() if v} == want, table
        out.update({(table, *k): v for k, v in kept.items()})
    db.close()
    return out


async def test_the_store_moves_only_the_marked_readings_of_the_window(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    await store.write(
        [marked(A, T0 + i * MIN, 3.0 + i) for i in range(5)]  # stamped 4 h early
        + [marked(B, T0 + 2 * MIN, 9.0)]
        + [Reading(A, T0 + 10 * MIN, 4.0)]  # good: never moved
        + [Reading(A, T0 + 11 * MIN, None, Quality.BAD, "probe open")]  # bad: never moved
        + [marked(OTHER, T0, 5.0)]  # another gateway's
        + [marked(A, T0 + 60 * MIN, 7.0)]  # after the window
        + [Reading(B, T0 + 2 * MIN + SHIFT, 8.5)]  # where B's marked one belongs: taken
    )
    result = await store.retime(GW, T0, T0 + 30 * MIN, SHIFT)
    assert result == RetimeResult(moved=5, conflicts=1)
    moved = await store.raw(A, T0 + SHIFT, T0 + SHIFT + 30 * MIN)
    assert [(r.ts_ms - SHIFT - T0) // MIN for r in moved] == [0, 1, 2, 3, 4]
    assert all(r.quality is Quality.UNCERTAIN for r in moved)
    assert (
        {r.reason for r in moved} == {clock_corrected(SHIFT)} == {"clock corrected by +14400.000 s"}
    )
    assert {r.meta[CLOCK_SHIFT] for r in moved} == {float(SHIFT)}
    assert [r.value for r in moved] == [3.0, 4.0, 5.0, 6.0, 7.0]
    left = await store.raw(A, T0, T0 + 61 * MIN)
    assert [(r.ts_ms - T0) // MIN for r in left] == [10, 11, 60]  # good, bad, outside
    assert [r.value for r in await store.raw(B, T0, T0 + 3 * MIN)] == [9.0]  # its place taken
    assert [r.reason for r in await store.raw(OTHER, T0, T0 + 1)] == [CLOCK_UNSYNCHRONISED]
    rollup_others(path)  # the rollups' counts follow the rows
    # a backlog of that window arriving now is moved on arrival; a resend is a duplicate
    late = await store.write([marked(A, T0 + 5 * MIN, 8.0), marked(A, T0 + 1 * MIN, 4.0)])
    assert (late.stored, late.duplicates) == (1, 1)
    assert [r.value for r in await store.raw(A, T0 + SHIFT + 5 * MIN, T0 + SHIFT + 6 * MIN)] == [
        8.0
    ]
    await store.close()
    # the correction outlives a restart
    again = SqliteStore(path)
    got = await again.write([marked(A, T0 + 6 * MIN, 9.0)])
    assert got.stored == 1
    assert [r.reason for r in await again.raw(A, T0 + 6 * MIN + SHIFT, T0 + 7 * MIN + SHIFT)] == [
        clock_corrected(SHIFT)
    ]
    assert await again.raw(A, T0 + 6 * MIN, T0 + 7 * MIN) == []
    rollup_others(path)
    again._writer.roll_through(T0 + SHIFT + 2 * 60 * MIN)  # the hours readings moved into
    rollup_others(path)
    await again.close()


async def test_a_clock_behind_and_a_clock_ahead_move_readings_without_collisions(
    tmp_path: Path,
) -> None:
    """Readings one minute apart shifted by exactly one minute: each lands where the next
    stood, which must be moved first."""
    for shift in (MIN, -MIN):
        store = SqliteStore(tmp_path / f"s{shift}.db")
        await store.write([marked(A, T0 + i * MIN, float(i)) for i in range(10)])
        assert await store.retime(GW, T0, T0 + 10 * MIN, shift) == RetimeResult(10, 0)
        got = await store.raw(A, T0 - MIN, T0 + 11 * MIN)
        assert [(r.ts_ms - T0) // MIN for r in got] == [i + shift // MIN for i in range(10)]
        assert [r.value for r in got] == [float(i) for i in range(10)]
        await store.close()


def report(step: dict[str, int]) -> bytes:
    body = {
        "v": 1,
        "ts": T0,
        "version": "0.1.0",
        "system": {"clock_synchronised": True, "clock_step": step},
    }
    return json.dumps(body).encode()


@contextlib.asynccontextmanager
async def county_hub(tmp_path: Path, mosquitto: Broker) -> AsyncIterator[Hub]:
    profiles = shipped_profiles()
    cfg = load_site_config(SITES_DIR / "county.yaml", profiles)
    async with running_hub_service(cfg, profiles, tmp_path / "hub", mosquitto.url) as hub:
        yield hub


async def test_a_manager_corrects_the_readings_by_the_step_the_gateway_reported(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with county_hub(tmp_path, mosquitto) as hub:
        u = f"{hub.url}/api/gateways/{GW}/clock-correction"
        status, body = await call("POST", u, {"comment": "Pi booted without time"})
        assert status == 409
        assert "reported no clock step" in body["detail"]
        await hub.store.write([marked(A, T0 + i * MIN, 3.0) for i in range(3)])
        # synchronised 2 min after the last reading by its wrong clock, 4 h later in truth
        at = T0 + 4 * MIN + SHIFT
        hub.registry.on_health(GW, report({"at_ms": at, "step_ms": SHIFT, "marked": 3}))
        status, body = await call("POST", u, {"comment": "x" * 501})
        assert status == 422
        status, body = await call("POST", u, {"comment": "Pi booted without time; NTP stepped"})
        assert status == 200, body
        assert (body["moved"], body["conflicts"], body["shift_ms"]) == (3, 0, SHIFT)
        assert body["before_ms"] == T0 + 4 * MIN
        stored = await hub.store.raw(A, T0 + SHIFT, T0 + SHIFT + 3 * MIN)
        assert len(stored) == 3
        status, audit = await call("GET", f"{hub.url}/api/audit?action=readings.retime")
        item = audit["items"][0]
        assert item["object"] == f"gateway/{GW}"
        assert item["after"]["moved"] == 3
        assert item["after"]["comment"] == "Pi booted without time; NTP stepped"
        assert item["after"]["reported_step"]["step_ms"] == SHIFT
        status, body = await call(
            "POST", f"{hub.url}/api/gateways/gw-nowhere/clock-correction", {"comment": "x"}
        )
        assert status == 404


async def test_the_line_protocol_store_says_it_cannot_move_readings(
    victoria_metrics: VictoriaMetrics,
) -> None:
    """VictoriaMetrics keeps a point where it was written: the store says so, nothing moves."""
    from coldchain.store.lineproto.store import InfluxStore

    store = InfluxStore(url=victoria_metrics.url)
    try:
        await store.write([marked(A, T0, 3.0)])
        with pytest.raises(StoreError, match="cannot correct readings' timestamps in place"):
            await store.retime(GW, T0, T0 + MIN, SHIFT)
        victoria_metrics.flush()
        assert [r.ts_ms for r in await store.raw(A, T0, T0 + 1)] == [T0]
    finally:
        await store.close()


@pytest.mark.slow
async def test_a_manager_corrects_them_from_the_gateways_page(
    tmp_path: Path, mosquitto: Broker
) -> None:
    from tests.browser import add_user, chromium, logged_in

    async with county_hub(tmp_path, mosquitto) as hub:
        await hub.store.write([marked(A, T0 + i * MIN, 3.0) for i in range(3)])
        at = T0 + 4 * MIN + SHIFT
        hub.registry.on_health(GW, report({"at_ms": at, "step_ms": SHIFT, "marked": 3}))
        tech = add_user(hub, "li-tech", "technician")
        boss = add_user(hub, "zhao-qa", "manager")
        async with chromium() as browser:
            page = await logged_in(browser, hub.url, "li-tech", tech)
            await page.goto(f"{hub.url}/gateways")
            assert await page.locator("form.retime").count() == 0  # a manager's to do
            page = await logged_in(browser, hub.url, "zhao-qa", boss)
            await page.goto(f"{hub.url}/lang/en?next=/gateways")
            form = page.locator(f'form.retime[data-gateway="{GW}"]')
            text = await form.text_content() or ""
            assert "3 readings taken with the clock +14400 s off" in text
            await form.locator("input[name=comment]").fill("Pi booted without time")
            await form.locator("button").click()
            err = form.locator(".err")
            await page.wait_for_function(
                "el => el.textContent === '3 corrected, 0 left (their time was taken)'",
                arg=await err.element_handle(),
                timeout=30_000,
            )
        assert len(await hub.store.raw(A, T0 + SHIFT, T0 + SHIFT + 3 * MIN)) == 3
        records, _ = hub.audit.page(10, 0, action="readings.retime")
        assert [(r.actor, r.after["moved"]) for r in records] == [("zhao-qa", 3)]
