"""Every figure the hub shows is a total function of whatever the store can hold: MKT, min,
max, time-weighted mean, excursions, the GSP records, the chart's series and figures, and
every report format. A stored -273.15 °C, 1e308, -1e308, a bad reading, readings out of
order or on the same millisecond give a number or an explicit "none", never an exception
(issue 10). The bug first, on a real hub; then properties (hypothesis) of each part."""

from __future__ import annotations

import asyncio
import math
import tempfile
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.config.limits import Band
from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.base import Agg
from coldchain.store.sqlite.store import SqliteStore
from dashboards.reports import build, csvout, htmlout, pdfout, series, tables
from dashboards.reports.excursions import find
from dashboards.reports.mkt import is_temperature, mkt_celsius
from dashboards.reports.model import local
from dashboards.web.chart import _stats as chart_stats
from tests.alertkit import PROFILES
from tests.hubkit import get, running_hub_service, session_header
from tests.services import Broker
from tests.test_alerts_api import _config
from tests.test_reports import site_config

MIN = 60_000
HOUR = 60 * MIN
# 2026-01-02 00:00 in Asia/Shanghai (the test site's zone) is 2026-01-01T16:00:00Z.
DAY = date(2026, 1, 2)
M = 1_767_283_200_000
TEMP = SeriesId("s1", "gw1", "probe", "temperature")
HUM = SeriesId("s1", "gw1", "probe", "humidity")


def _fetch(url: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=session_header(url))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


async def fetch(url: str) -> tuple[int, bytes]:
    """GET ``url`` as the hub's test admin: (status, body bytes)."""
    return await asyncio.to_thread(_fetch, url)


async def every_report_format(u: str) -> dict[str, tuple[int, bytes]]:
    """The daily log and the excursion report of DAY in each format: name -> answer."""
    out = {}
    for fmt in ("html", "csv", "pdf"):
        out[f"daily.{fmt}"] = await fetch(
            f"{u}/reports/daily?site=s1&room=chill&date={DAY}&format={fmt}&lang=en"
        )
        out[f"excursions.{fmt}"] = await fetch(
            f"{u}/reports/excursions?site=s1&from={DAY}&to={DAY}&format={fmt}&lang=en"
        )
    return out


def _room_day() -> list[Reading]:
    """The chilled room from 10:00 to 11:00 local: 3.0 °C a minute, but the probe sent
    -273.15 at 10:30 (a broken sensor's reading, stored before the ingest checked values)."""
    out = []
    for i in range(60):
        ts = M + 10 * HOUR + i * MIN
        out.append(Reading(TEMP, ts, -273.15 if i == 30 else 3.0))
        out.append(Reading(HUM, ts, 85.0))
    return out


async def test_stored_minus_273_15_gives_200_on_room_chart_and_every_report_format(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        readings = _room_day()
        await hub.store.write(readings)
        feed = hub.ingest.on_readings
        assert feed is not None
        feed(readings[-2:])  # the live board sees the room too

        start, end = M + 10 * HOUR, M + 11 * HOUR
        status, data = await get(f"{u}/rooms/s1/chill/data?start={start}&end={end}")
        assert status == 200, data
        stats = data["stats"]
        # the -273.15 is not a temperature: left out of every figure, and said so
        assert (stats["min"], stats["max"], stats["mean"]) == (3.0, 3.0, 3.0)
        assert stats["mkt"] == 3.0
        assert stats["left_out"] == 1
        [probe] = [s for s in data["series"] if s["name"] == "probe/temperature"]
        assert probe["values"][30] is None
        assert probe["left_out"] == 1
        # a week from the rollups: a 1-hour bucket holding -273.15 still answers
        status, week = await get(f"{u}/rooms/s1/chill/data?range=7d&end={end}")
        assert status == 200, week
        assert week["stats"]["min"] is not None

        answers = await every_report_format(u)
        assert {k: a[0] for k, a in answers.items()} == dict.fromkeys(answers, 200), answers
        text = answers["daily.csv"][1].decode("utf-8-sig")
        assert "Readings left out of the figures" in text
        assert "at or below absolute zero (-273.15 °C): not a temperature" in text
        assert "2026-01-02 10:30" in text

        status, _ = await get(f"{u}/")
        assert status == 200
        status, hist = await get(
            f"{u}/api/history?series={quote(str(TEMP), safe='')}&start={start}&end={end}"
        )
        assert status == 200
        assert [r["value"] for r in hist["readings"]][29:32] == [3.0, -273.15, 3.0]


async def test_extreme_stored_values_give_200_everywhere(tmp_path: Path, mosquitto: Broker) -> None:
    """1e308, -1e308, the largest float, -273.15, -300 and a bad reading: the chart (raw,
    and from rollups whose sums overflow) and every report format still answer, with finite
    figures or none."""
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        base = M + 10 * HOUR
        values = [1e308, 1e308, -1e308, 1.7976931348623157e308, -273.15, -300.0, 3.0]
        readings = [Reading(TEMP, base + i * MIN, v) for i, v in enumerate(values)]
        readings.append(Reading(TEMP, base + 20 * MIN, None, Quality.BAD, "probe open"))
        readings += [Reading(HUM, base + i * MIN, v) for i, v in enumerate(values)]
        await hub.store.write(readings)
        for q in (f"start={base}&end={base + HOUR}", f"range=30d&end={base + HOUR}"):
            status, data = await get(f"{u}/rooms/s1/chill/data?{q}")
            assert status == 200, (q, data)
            for key in ("min", "max", "mean", "mkt"):
                v = data["stats"][key]
                assert v is None or math.isfinite(v), (q, key, v)
        answers = await every_report_format(u)
        assert {k: a[0] for k, a in answers.items()} == dict.fromkeys(answers, 200), answers


# --- properties: any input gives a number or None, never an exception ------------------------

NASTY = [-273.15, -273.16, -1e308, 1e308, 1.7976931348623157e308, -300.0, 0.0, -0.0, 5e-324]
floats = st.one_of(st.sampled_from(NASTY), st.floats())  # also inf, -inf and nan
values = st.one_of(st.none(), floats)
# any int64 time, and times in and around DAY (where the reports look)
times = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.integers(M - 2 * 86_400_000, M + 3 * 86_400_000)
)


@st.composite
def readings_of(draw: st.DrawFn, sid: SeriesId = TEMP) -> list[Reading]:
    """Readings the store could hand back: any time (out of order, duplicates), any value,
    any quality (a good one has a value; the others a reason)."""
    out = []
    for ts, value, drawn in draw(
        st.lists(st.tuples(times, values, st.sampled_from(list(Quality))), max_size=40)
    ):
        quality = Quality.BAD if drawn is Quality.GOOD and value is None else drawn
        reason = None if quality is Quality.GOOD else "probe open"
        out.append(Reading(sid, ts, value, quality, reason))
    return out


def finite_or_none(x: float | None) -> bool:
    return x is None or math.isfinite(x)


@given(st.lists(st.tuples(floats, floats)))
def test_mkt_is_total(pairs: list[tuple[float, float]]) -> None:
    got = mkt_celsius(pairs)
    used = [t for w, t in pairs if math.isfinite(w) and w > 0 and is_temperature(t)]
    if not used:
        assert got is None
    else:
        assert got is not None
        assert math.isfinite(got)
        assert min(used) <= got <= max(used)


@given(st.lists(st.tuples(floats, floats)))
def test_weighted_mean_is_total(pairs: list[tuple[float, float]]) -> None:
    got = series.weighted_mean(pairs)
    used = [v for w, v in pairs if math.isfinite(w) and w > 0 and math.isfinite(v)]
    if not used:
        assert got is None
    else:
        assert got is not None
        assert min(used) <= got <= max(used)


def test_mkt_at_the_edges_by_hand() -> None:
    # the bug: one -273.15 made 1/(t + 273.15) divide by zero
    assert mkt_celsius([(60_000, -273.15)]) is None
    assert mkt_celsius([(60_000, -273.15), (60_000, 3.0)]) == 3.0
    # just above absolute zero: e^(-x) underflows to 0; the mean is half of e^(-x(3 °C))
    # x(3 °C) = 10000/276.15 = 36.2122; -ln(e^(-36.2122)/2) = 36.2122 + 0.6931 = 36.9053:
    # 10000/36.9053 = 270.964 K = -2.19 °C
    assert mkt_celsius([(1, -273.149), (1, 3.0)]) == pytest.approx(-2.186, abs=0.001)
    # huge temperatures: the ratio rounds to 1, its log to 0; the answer stays in range
    assert mkt_celsius([(1, 1e308)]) == 1e308
    # (the harmonic mean of the two, as the formula gives for huge T)
    assert mkt_celsius([(1, 1.7976931348623157e308), (1, 1e308)]) == pytest.approx(
        1.2851e308, rel=1e-4
    )
    # huge and tiny weights
    assert mkt_celsius([(1e308, 4.0), (1e308, 4.0)]) == pytest.approx(4.0)
    assert mkt_celsius([(5e-324, 30.0), (1e308, -20.0)]) == pytest.approx(-20.0)


@given(
    readings_of(),
    times,
    st.integers(0, 3 * 86_400_000),
    st.sampled_from(["temperature", "humidity"]),
)
def test_series_figures_are_total(rs: list[Reading], start: int, width: int, quantity: str) -> None:
    end = start + width
    parts = series.spans(rs, start, end, quantity=quantity)
    assert all(start <= p.start_ms < p.end_ms <= end for p in parts)
    assert all(series.is_usable(p.value, quantity) for p in parts)
    st_ = series.stats(parts, width, with_mkt=quantity == "temperature")
    for x in (st_.minimum, st_.maximum, st_.mean, st_.mkt):
        assert finite_or_none(x)
    assert 0 <= st_.covered_ms <= width
    assert 0.0 <= st_.coverage <= 1.0
    holes = series.gaps(parts, start, end)
    assert sum(b - a for a, b in holes) + st_.covered_ms == width
    for t in (start, end - 1, *(r.ts_ms for r in rs[:5])):
        assert finite_or_none(series.value_at(parts, t))
    left = series.left_out(rs, start, end, quantity)
    assert all(lo.count > 0 and lo.first_ms <= lo.last_ms for lo in left)


@given(readings_of(), st.sampled_from(["temperature", "humidity"]))
def test_excursions_are_total(rs: list[Reading], quantity: str) -> None:
    for e in find(rs, Band(low=0.0, high=4.0), series="probe/x", quantity=quantity):
        assert math.isfinite(e.peak)
        assert e.duration_ms(M) >= 0
        assert e.end_ms is None or e.end_ms >= e.start_ms


@settings(max_examples=60, deadline=None)
@given(readings_of(TEMP), readings_of(HUM), times)
def test_reports_render_whatever_the_store_holds(
    temps: list[Reading], hums: list[Reading], now: int
) -> None:
    cfg = site_config()
    s = cfg.sites[0]
    room = s.rooms[0]
    points = [
        build.PointRef(str(TEMP), "probe/temperature", "temperature", "°C"),
        build.PointRef(str(HUM), "probe/humidity", "humidity", "%RH"),
    ]
    got = {str(TEMP): sorted(temps, key=lambda r: r.ts_ms), str(HUM): hums}
    log = build.daily_log(s, room, DAY, points=points, readings=got, alerts=None, generated_ms=now)
    for p in log.points:
        for x in (p.stats.minimum, p.stats.maximum, p.stats.mean, p.stats.mkt):
            assert finite_or_none(x)
    doc = tables.daily_document(log)
    assert csvout.render(doc)
    assert htmlout.render(doc)
    start, end = build.period_window(DAY, DAY, s.timezone)
    period = build.room_period(s, room, points=points, readings=got, start_ms=start, end_ms=end)
    rep = build.excursion_report(s, DAY, DAY, [period], generated_ms=now)
    doc = tables.excursion_document(rep)
    assert csvout.render(doc)
    assert htmlout.render(doc)


@settings(max_examples=10, deadline=None)
@given(readings_of(TEMP))
def test_pdf_renders_whatever_the_store_holds(temps: list[Reading]) -> None:
    s = site_config().sites[0]
    points = [build.PointRef(str(TEMP), "probe/temperature", "temperature", "°C")]
    log = build.daily_log(
        s,
        s.rooms[0],
        DAY,
        points=points,
        readings={str(TEMP): temps},
        alerts=None,
        generated_ms=M + 86_400_000,
    )
    assert pdfout.render(tables.daily_document(log)).startswith(b"%PDF")


@given(
    st.lists(st.tuples(times, floats, st.one_of(st.just(0.0), st.integers(0, 2**63).map(float)))),
    times,
)
def test_chart_figures_are_total(samples: list[tuple[int, float, float]], end: int) -> None:
    got = chart_stats(samples, end)
    assert all(finite_or_none(v) for v in got.values())
    used = [v for _, v, _ in samples if is_temperature(v)]
    assert (got["mkt"] is None) == (not used)


@given(st.integers(-(2**63), 2**63 - 1))
def test_a_time_no_calendar_can_show_still_prints(ts: int) -> None:
    assert local(ts, "Asia/Shanghai")


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3 * HOUR),
            st.one_of(
                st.sampled_from([1.7e308, -1.7e308, 1e308, -273.15]),
                st.floats(allow_nan=False, allow_infinity=False),
            ),
        ),
        max_size=30,
    )
)
def test_store_rollups_are_finite_or_none(points: list[tuple[int, float]]) -> None:
    """Sums of huge values overflow in SQLite (1e308 + 1e308 = inf): a bucket's mean is then
    None, never inf or nan (the store refuses non-finite values on write)."""

    async def run(db: Path) -> None:
        store = SqliteStore(db)
        try:
            await store.write([Reading(TEMP, M + t, v) for t, v in points])
            for step in (7_000, MIN, HOUR, 2 * HOUR):
                for agg in Agg:
                    for a, z in ((M, M + 3 * HOUR), (M + 1234, M + 2 * HOUR + 5)):
                        for b in await store.range(TEMP, a, z, step, agg):
                            assert finite_or_none(b.value), (step, agg, b)
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp) / "store.db"))
