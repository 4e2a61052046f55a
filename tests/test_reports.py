"""Reports: MKT, excursions, the GSP record grid and the daily log against values worked out
by hand; then the reports API over real HTTP on a real SqliteStore, with the CSV parsed, the
printable page read and the PDF opened and its table read back."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pypdf
import pytest
import uvicorn
from fastapi import Depends, FastAPI

from alerts.service import AlertService
from coldchain.access import Principal, Role
from coldchain.clock import WALL
from coldchain.config.limits import Band
from coldchain.config.site import SiteConfig
from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.sqlite.store import SqliteStore
from dashboards.reports import build, series
from dashboards.reports.api import reports_router
from dashboards.reports.excursions import Excursion, Side, find
from dashboards.reports.mkt import mkt_celsius
from hub.audit import AuditLog
from hub.service import listen_socket
from tests.sites import device, one_gateway_site, room, rtu_bus, shipped_profiles

MIN = 60_000
HOUR = 60 * MIN
PROFILES = shipped_profiles()
# 2026-01-02 00:00 in Asia/Shanghai (UTC+8, no DST) is 2026-01-01T16:00:00Z.
DAY = date(2026, 1, 2)
M = 1_767_283_200_000
assert datetime.fromtimestamp(M / 1000, UTC).isoformat() == "2026-01-01T16:00:00+00:00"

TEMP = SeriesId("s1", "gw1", "probe", "temperature")
HUM = SeriesId("s1", "gw1", "probe", "humidity")
EVAP = SeriesId("s1", "gw1", "ctl", "probe_2")
FROZEN = SeriesId("s1", "gw1", "fz", "temperature")
COMMENT = "门未关严\N{FULLWIDTH COMMA}已关好"  # as operators type it


def good(sid: SeriesId, ts: int, value: float) -> Reading:
    return Reading(sid, ts, value)


def bad(sid: SeriesId, ts: int) -> Reading:
    return Reading(sid, ts, None, Quality.BAD, "probe open")


# --- MKT --------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [-25.0, -18.0, 0.0, 4.0, 25.0])
def test_mkt_of_a_constant_series_is_that_temperature(t: float) -> None:
    assert mkt_celsius([(1, t), (7, t), (0.5, t)]) == pytest.approx(t, abs=1e-9)


def test_mkt_of_two_levels_by_hand() -> None:
    # 12 h at 2 °C, 12 h at 8 °C: T1 = 275.15 K, T2 = 281.15 K.
    # ΔH/(R·T1) = 10000/275.15 = 36.34381, ΔH/(R·T2) = 10000/281.15 = 35.56820.
    # Σ tᵢ·e^(-xᵢ)/Σ tᵢ = e^(-36.34381)·(1 + e^(36.34381-35.56820))/2
    #                   = e^(-36.34381)·(1 + 2.17203)/2 = e^(-36.34381)·1.586015
    # -ln(...) = 36.34381 - ln 1.586015 = 36.34381 - 0.461223 = 35.882587
    # T_mk = 10000/35.882587 = 278.688 K = 5.54 °C (the arithmetic mean is 5.0)
    assert mkt_celsius([(12, 2.0), (12, 8.0)]) == pytest.approx(5.536, abs=0.001)
    # weights are durations: the unit does not matter
    assert mkt_celsius([(12 * HOUR, 2.0), (12 * HOUR, 8.0)]) == pytest.approx(5.536, abs=0.001)


def test_mkt_weights_by_duration_by_hand() -> None:
    # 3 h at 5 °C, 1 h at 25 °C: x1 = 10000/278.15 = 35.95182, x2 = 10000/298.15 = 33.54016;
    # e^(x1-x2) = e^2.41166 = 11.1523; (3 + 11.1523)/4 = 3.53808; ln = 1.26358;
    # T_mk = 10000/(35.95182 - 1.26358) = 10000/34.68824 = 288.282 K = 15.13 °C (mean 10.0)
    assert mkt_celsius([(3, 5.0), (1, 25.0)]) == pytest.approx(15.132, abs=0.001)


def test_mkt_of_a_frozen_series_by_hand() -> None:
    # 12 h at -20 °C, 12 h at -18 °C: x1 = 10000/253.15 = 39.50227, x2 = 10000/255.15 = 39.19263;
    # e^(x1-x2) = e^0.30964 = 1.36291; (1 + 1.36291)/2 = 1.181455; ln = 0.166746;
    # T_mk = 10000/(39.50227 - 0.166746) = 254.2230 K = -18.93 °C
    assert mkt_celsius([(1, -20.0), (1, -18.0)]) == pytest.approx(-18.927, abs=0.001)


def test_mkt_is_never_below_the_time_weighted_mean() -> None:
    pairs = [(1.0 + i % 3, -5.0 + 1.7 * i) for i in range(20)]
    mean = sum(w * t for w, t in pairs) / sum(w for w, _ in pairs)
    assert (mkt_celsius(pairs) or mean) > mean


def test_mkt_of_nothing_is_none() -> None:
    # no reading, or none that stands for any time: no MKT (the reports print a blank)
    assert mkt_celsius([]) is None
    assert mkt_celsius([(0, 5.0)]) is None


# --- the series as a step function --------------------------------------------------------


def test_each_reading_holds_until_the_next_at_most_five_minutes() -> None:
    # readings at 0, 1, 2 min; then silence until 20 min; a bad one at 22; good at 23
    rs = [
        good(TEMP, M, 2.0),
        good(TEMP, M + MIN, 4.0),
        good(TEMP, M + 2 * MIN, 6.0),
        good(TEMP, M + 20 * MIN, 3.0),
        bad(TEMP, M + 22 * MIN),
        good(TEMP, M + 23 * MIN, 3.0),
    ]
    parts = series.spans(rs, M, M + 30 * MIN)
    # 2.0 for 1 min, 4.0 for 1 min, 6.0 held 5 min (2..7), gap 7..20, 3.0 for 2 min (20..22),
    # the bad reading ends it: gap 22..23, 3.0 from 23 held 5 min to 28, gap 28..30
    assert [(p.start_ms - M, p.end_ms - M, p.value) for p in parts] == [
        (0, MIN, 2.0),
        (MIN, 2 * MIN, 4.0),
        (2 * MIN, 7 * MIN, 6.0),
        (20 * MIN, 22 * MIN, 3.0),
        (23 * MIN, 28 * MIN, 3.0),
    ]
    assert [(a - M, b - M) for a, b in series.gaps(parts, M, M + 30 * MIN)] == [
        (7 * MIN, 20 * MIN),
        (22 * MIN, 23 * MIN),
        (28 * MIN, 30 * MIN),
    ]
    st = series.stats(parts, 30 * MIN, with_mkt=True)
    # time-weighted mean: (2·1 + 4·1 + 6·5 + 3·2 + 3·5) / 14 = 57/14 = 4.0714
    assert (st.minimum, st.maximum, st.covered_ms) == (2.0, 6.0, 14 * MIN)
    assert st.mean == pytest.approx(57 / 14)
    assert st.coverage == pytest.approx(14 / 30)
    assert series.value_at(parts, M + 5 * MIN) == 6.0
    assert series.value_at(parts, M + 10 * MIN) is None


def test_a_reading_before_the_window_counts_for_its_hold_inside_it() -> None:
    parts = series.spans([good(TEMP, M - 2 * MIN, 7.0)], M, M + HOUR)
    assert [(p.start_ms - M, p.end_ms - M) for p in parts] == [(0, 3 * MIN)]


def test_no_data_gives_no_figures() -> None:
    st = series.stats([], HOUR, with_mkt=True)
    assert (st.minimum, st.maximum, st.mean, st.mkt, st.coverage) == (None, None, None, None, 0.0)


# --- excursions --------------------------------------------------------------------------


CHILLED = Band(low=0, high=4)


def run_of(values: list[float | None], start: int = M) -> list[Reading]:
    """One reading a minute from ``start``; None is a bad reading."""
    return [
        bad(TEMP, start + i * MIN) if v is None else good(TEMP, start + i * MIN, v)
        for i, v in enumerate(values)
    ]


def test_an_excursion_has_its_start_end_peak_and_duration() -> None:
    rs = run_of([3.0, 4.0, 4.5, 6.0, None, 5.0, 3.9, 3.0])
    [e] = find(rs, CHILLED, series="probe/temperature", quantity="temperature")
    # 4.0 equals the limit: still inside. Out from minute 2 (4.5), peak 6.0 at minute 3, the
    # bad reading at 4 neither ends nor peaks it, back inside at minute 6 (3.9): 4 min.
    assert e == Excursion(
        series="probe/temperature",
        quantity="temperature",
        side=Side.HIGH,
        limit=4.0,
        start_ms=M + 2 * MIN,
        end_ms=M + 6 * MIN,
        peak=6.0,
        peak_ms=M + 3 * MIN,
    )
    assert e.duration_ms(0) == 4 * MIN


def test_low_then_straight_to_high_is_two_excursions() -> None:
    rs = run_of([1.0, -0.5, -1.5, -1.0, 5.0, 2.0])
    low, high = find(rs, CHILLED, series="p", quantity="temperature")
    assert (low.side, low.limit, low.peak, low.start_ms, low.end_ms) == (
        Side.LOW,
        0.0,
        -1.5,
        M + MIN,
        M + 4 * MIN,
    )
    assert (high.side, high.limit, high.peak, high.start_ms, high.end_ms) == (
        Side.HIGH,
        4.0,
        5.0,
        M + 4 * MIN,
        M + 5 * MIN,
    )


def test_an_excursion_still_out_at_the_end_and_one_out_from_the_start() -> None:
    # out at the first reading read: its real start is earlier than anything we have
    first, last = find(run_of([5.0, 5.5, 3.0, 3.0, 8.0, 9.0]), CHILLED, series="p", quantity="t")
    assert (first.start_known, first.start_ms, first.end_ms) == (False, M, M + 2 * MIN)
    # still out at the last reading: no end; an open one counts to the end it is given
    assert (last.start_known, last.start_ms, last.end_ms, last.peak) == (
        True,
        M + 4 * MIN,
        None,
        9.0,
    )
    assert last.duration_ms(M + 10 * MIN) == 6 * MIN
    assert find(run_of([]), CHILLED, series="p", quantity="t") == []


def test_an_open_ended_band_only_has_the_limit_it_has() -> None:
    frozen = Band(low=None, high=-18)
    [e] = find(run_of([-30.0, -18.0, -17.5, -19.0]), frozen, series="p", quantity="t")
    assert (e.side, e.limit, e.start_ms, e.end_ms) == (Side.HIGH, -18.0, M + 2 * MIN, M + 3 * MIN)


# --- the record grid and the day --------------------------------------------------------


def test_records_every_30_min_and_every_2_min_while_out_of_range() -> None:
    day = 24 * HOUR
    plain = build.record_times(M, M + day, [])
    assert len(plain) == 48
    assert all(not flagged for _, flagged in plain)
    # out of range 10:03 to 10:10: records at 10:04, 10:06, 10:08 (the 2-min grid of the day)
    out = build.record_times(M, M + day, [(M + 10 * HOUR + 3 * MIN, M + 10 * HOUR + 10 * MIN)])
    extra = [(t - M - 10 * HOUR) // MIN for t, f in out if f]
    assert extra == [4, 6, 8]
    assert len(out) == 51
    # still out at the end of the day: every 2 min to midnight (23:50 .. 23:58)
    tail = build.record_times(M, M + day, [(M + day - 10 * MIN, None)])
    assert [(t - M - day) // MIN for t, f in tail if f] == [-10, -8, -6, -4, -2]


def test_the_day_is_the_sites_local_day() -> None:
    assert build.day_window(DAY, "Asia/Shanghai") == (M, M + 24 * HOUR)
    # Europe/Berlin springs forward on 2026-03-29 (23 h) and falls back on 2026-10-25 (25 h)
    start, end = build.day_window(date(2026, 3, 29), "Europe/Berlin")
    assert datetime.fromtimestamp(start / 1000, UTC).isoformat() == "2026-03-28T23:00:00+00:00"
    assert end - start == 23 * HOUR
    assert len(build.record_times(start, end, [])) == 46
    start, end = build.day_window(date(2026, 10, 25), "Europe/Berlin")
    assert end - start == 25 * HOUR
    assert len(build.record_times(start, end, [])) == 50


# --- the test site ------------------------------------------------------------------------


def site_config() -> SiteConfig:
    return SiteConfig.model_validate(
        one_gateway_site(
            site_name="双溪镇禽类冷库",
            rooms=[
                room("chill", "冷鲜禽库"),
                room("frozen", "冻品库", "frozen"),
                room("hall", "分拣大厅", "sorting"),
            ],
            buses=[rtu_bus()],
            devices=[
                device("probe", "xy-md02", unit_id=1, room="chill"),
                device(
                    "ctl",
                    "dixell-xr60cx",
                    unit_id=2,
                    room="chill",
                    points={"probe_1": {"enabled": False}},
                ),
                device("fz", "xy-md02", unit_id=3, room="frozen"),
            ],
        )
    )


def chill_temperature(ts: int) -> float | None:
    """The chilled room's air, one reading a minute (None: no reading). Local times of DAY:
    23:50 the day before to 00:11: 5.0, with a peak of 6.0 at 00:05 (an excursion across
    midnight, 22 min); 10:00 to 10:06: 4.5, peak 5.5 at 10:03 (7 min); 12:00 exactly 4.0 (the
    limit: inside); no readings 14:00 to 14:59 (a gap); 3.0 otherwise."""
    t = (ts - M) // MIN  # minutes since local midnight of DAY
    if -10 <= t <= 11:
        return 6.0 if t == 5 else 5.0
    if 600 <= t <= 606:
        return 5.5 if t == 603 else 4.5
    if t == 720:
        return 4.0
    if 840 <= t < 900:
        return None
    return 3.0


def day_readings() -> list[Reading]:
    out: list[Reading] = []
    for i in range(-60, 24 * 60 + 60):
        ts = M + i * MIN
        v = chill_temperature(ts)
        if ts == M + 20 * HOUR:
            out.append(bad(TEMP, ts))  # a probe fault at 20:00: one minute without data
        elif v is not None:
            out.append(good(TEMP, ts, v))
        out.append(good(HUM, ts, 85.0))
        out.append(good(EVAP, ts, -10.0))  # far below the band, and not the room's air
        if 0 <= i < 24 * 60:
            # frozen: -20 °C until noon, then -18 °C (the limit: inside)
            out.append(good(FROZEN, ts, -20.0 if i < 12 * 60 else -18.0))
    return out


def points_of(room: str) -> list[build.PointRef]:
    from dashboards.reports.load import room_points

    return room_points(site_config(), PROFILES, "s1", room)


def test_room_points_are_the_room_air_only() -> None:
    assert [(p.series, p.quantity, p.unit) for p in points_of("chill")] == [
        ("s1/gw1/probe/temperature", "temperature", "°C"),
        ("s1/gw1/probe/humidity", "humidity", "%RH"),
    ]
    assert points_of("hall") == []


def by_series(rs: list[Reading]) -> dict[str, list[Reading]]:
    out: dict[str, list[Reading]] = {}
    for r in rs:
        out.setdefault(str(r.series), []).append(r)
    return out


def test_daily_log_by_hand() -> None:
    cfg = site_config()
    site = cfg.site("s1")
    log = build.daily_log(
        site,
        site.rooms[0],
        DAY,
        points=points_of("chill"),
        readings=by_series(day_readings()),
        alerts=None,
        generated_ms=M + 30 * HOUR,
    )
    temp, hum = log.points
    # gaps: 14:04 (the 13:59 reading holds 5 min) to 15:00 = 56 min, 20:00 to 20:01 = 1 min
    assert [((a - M) // MIN, (b - M) // MIN) for a, b in temp.gaps] == [(844, 900), (1200, 1201)]
    assert temp.stats.covered_ms == (1440 - 57) * MIN
    # mean: 3.0 + excess/1383 min; excess over 3.0 inside the day: 00:00-00:11 (11 min at 5.0,
    # 1 min at 6.0) = 22 + 3, 10:00-10:06 (6 at 4.5, 1 at 5.5) = 9 + 2.5, 12:00 at 4.0 = 1;
    # 37.5 / 1383 = 0.027115
    assert temp.stats.mean == pytest.approx(3.0 + 37.5 / 1383)
    assert (temp.stats.minimum, temp.stats.maximum) == (3.0, 6.0)
    # MKT: the formula over the same hand-counted durations (minutes of the day per value)
    held = [(1363, 3.0), (11, 5.0), (1, 6.0), (6, 4.5), (1, 5.5), (1, 4.0)]
    assert sum(w for w, _ in held) == 1383
    assert temp.stats.mkt == pytest.approx(mkt_celsius(held))
    assert 3.03 < (mkt_celsius(held) or 0.0) < 3.04  # a little above the mean 3.027
    assert (hum.stats.minimum, hum.stats.maximum, hum.stats.coverage, hum.stats.mkt) == (
        85.0,
        85.0,
        1.0,
        None,
    )
    across, morning = log.excursions
    assert (across.start_ms - M, across.end_ms, across.peak, across.peak_ms - M) == (
        -10 * MIN,
        M + 12 * MIN,
        6.0,
        5 * MIN,
    )
    assert (morning.start_ms - M, morning.duration_ms(0), morning.peak) == (
        10 * HOUR,
        7 * MIN,
        5.5,
    )
    # 48 half-hour records, plus 00:02..00:10 (5) and 10:02..10:06 (3) while out of range
    assert len(log.records) == 56
    rec = {(r.ts_ms - M) // MIN: r for r in log.records}
    assert (rec[0].values, rec[0].out_of_range) == ((5.0, 85.0), True)
    assert (rec[6].values, rec[6].out_of_range) == ((5.0, 85.0), True)
    assert (rec[602].values, rec[602].out_of_range) == ((4.5, 85.0), True)
    assert (rec[30].values, rec[30].out_of_range) == ((3.0, 85.0), False)
    assert rec[870].values == (None, 85.0)  # 14:30, in the gap
    assert log.acks is None


def test_a_day_without_data() -> None:
    cfg = site_config()
    site = cfg.site("s1")
    log = build.daily_log(
        site,
        site.rooms[0],
        DAY,
        points=points_of("chill"),
        readings={},
        alerts=[],
        generated_ms=M + 30 * HOUR,
    )
    assert [p.stats.coverage for p in log.points] == [0.0, 0.0]
    assert len(log.records) == 48
    assert all(r.values == (None, None) for r in log.records)
    assert (log.excursions, log.acks) == ((), ())


def test_a_day_under_way_is_logged_up_to_now() -> None:
    site = site_config().site("s1")
    log = build.daily_log(
        site,
        site.rooms[0],
        DAY,
        points=points_of("chill"),
        readings=by_series(day_readings()),
        alerts=None,
        generated_ms=M + 12 * HOUR,  # noon
    )
    # 00:00 .. 11:30 (24), plus 00:02 .. 00:10 (5) and 10:02 .. 10:06 (3) while out of range
    assert len(log.records) == 32
    assert log.records[-1].ts_ms == M + 11 * HOUR + 30 * MIN
    # no gap before noon; 12:00 (4.0, on the limit) is not yet in the figures
    assert [(p.stats.coverage, p.gaps) for p in log.points] == [(1.0, ()), (1.0, ())]
    assert log.points[0].stats.mean == pytest.approx(3.0 + 36.5 / 720)


# --- the API over HTTP -------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def _fetch(url: str, lang: str = "en") -> Answer:
    """GET ``url`` as a reader whose web UI is in ``lang`` (its cookie): English here, the
    text these tests check; the Chinese reports are test_reports_in_chinese."""
    req = urllib.request.Request(url, headers={"Cookie": f"coldchain_lang={lang}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Answer(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, dict(err.headers.items()), err.read())


async def fetch(url: str, lang: str = "en") -> Answer:
    return await asyncio.to_thread(_fetch, url, lang)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Served:
    url: str
    no_alerts_url: str  # the same reports, of a hub that runs without alerts
    app: FastAPI
    alerts: AlertService
    audit: AuditLog
    seal_head: tuple[int, int, str] | None


def no_login(role: Role) -> object:
    """The test's guard: every request is an admin's (login and roles: test_web_auth)."""
    del role
    return Depends(lambda: Principal("test-admin", Role.ADMIN))


@contextlib.asynccontextmanager
async def serve_reports(tmp_path: Path) -> AsyncIterator[Served]:
    cfg = site_config()
    store = SqliteStore(tmp_path / "store.db")
    await store.write(day_readings())
    # 10:20 in the site's time: sealing begins with the hour 09:00-10:00
    sealed = (await store.seal(M + 10 * HOUR + 20 * MIN)).head
    audit = AuditLog(tmp_path / "hub.db")
    now = [M + 10 * HOUR + 4 * MIN]
    svc = AlertService(
        cfg, PROFILES, db_path=tmp_path / "hub.db", audit=audit.record, clock=lambda: now[0]
    )
    seed_alerts(svc)
    clock = WALL  # "now" of an unfinished day
    app = FastAPI()
    app.include_router(
        reports_router(
            cfg=cfg,
            profiles=PROFILES,
            store=store,
            alerts=svc.store,
            clock=clock,
            guard=no_login,
            audit_head=audit.head,
            seal_head=lambda: sealed,
        )
    )
    without = FastAPI()
    without.include_router(
        reports_router(
            cfg=cfg, profiles=PROFILES, store=store, alerts=None, clock=clock, guard=no_login
        )
    )
    app.mount("/no-alerts", without)
    sock = listen_socket("127.0.0.1:0")
    host, port = sock.getsockname()[:2]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="reports-api")
    try:
        url = f"http://{host}:{port}"
        yield Served(url, f"{url}/no-alerts", app, svc, audit, sealed)
    finally:
        server.should_exit = True
        await task
        sock.close()
        await store.close()
        svc.store.close()
        audit.close()


def seed_alerts(svc: AlertService) -> None:
    """The morning excursion's alarm, acknowledged at 10:04 with a comment; an alert of the
    day before and one of another room, which the chilled room's log must leave out."""

    def alert(room: str, since: int, resolved: int, rule: str = "temperature-high") -> int:
        row = svc.store.insert(
            key=f"{rule}/alarm/s1/{room}",
            rule=rule,
            kind="threshold",
            tier="alarm",
            severity="alarm",
            policy=None,
            site="s1",
            room=room,
            gateway="gw1",
            series=str(TEMP),
            quantity="temperature",
            unit="°C",
            direction="above",
            state="resolved",
            since_ms=since,
            pending_ms=since,
            fired_ms=since + MIN,
            resolved_ms=resolved,
            value=5.5,
            limit_value=4.0,
            peak=5.5,
        )
        return row.id

    morning = alert("chill", M + 10 * HOUR, M + 10 * HOUR + 7 * MIN)
    svc.ack(morning, by="wang-li", comment=COMMENT)
    alert("chill", M - 30 * HOUR, M - 29 * HOUR)
    alert("frozen", M + 9 * HOUR, M + 11 * HOUR)


def csv_sections(body: bytes) -> dict[str, list[list[str]]]:
    """Title -> rows (header first) of each section of a report CSV."""
    assert body.startswith(b"\xef\xbb\xbf"), "CSV for Excel starts with a UTF-8 BOM"
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    out: dict[str, list[list[str]]] = {"": []}
    title = ""
    for i, row in enumerate(rows):
        if not row:
            title = rows[i + 1][0]
            out[title] = []
        elif not (len(row) == 1 and row[0] == title):
            out[title].append(row)
    return out


def pdf_lines(body: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(body))
    text = "\n".join(p.extract_text() for p in reader.pages)
    return [line.strip() for line in text.splitlines() if line.strip()]


def contains_run(lines: list[str], run: list[str]) -> bool:
    """``run`` appears in ``lines`` as consecutive lines (a table row, cell by cell)."""
    return any(lines[i : i + len(run)] == run for i in range(len(lines) - len(run) + 1))


MORNING_ROW = [
    "probe/temperature",
    "temperature",
    "> 4 °C",
    "2026-01-02 10:00",
    "2026-01-02 10:07",
    "7",
    "5.5 °C",
    "2026-01-02 10:03",
]
ACROSS_ROW = [
    "probe/temperature",
    "temperature",
    "> 4 °C",
    "2026-01-01 23:50",
    "2026-01-02 00:12",
    "22",
    "6.0 °C",
    "2026-01-02 00:05",
]


async def test_daily_log_over_http(tmp_path: Path) -> None:
    async with serve_reports(tmp_path) as srv:
        q = f"{srv.url}/reports/daily?site=s1&room=chill&date=2026-01-02"

        got = await fetch(q + "&format=csv")
        assert got.status == 200, got.body
        assert got.headers["content-type"] == "text/csv; charset=utf-8"
        assert (
            got.headers["content-disposition"]
            == 'attachment; filename="daily-s1-chill-2026-01-02.csv"'
        )
        sec = csv_sections(got.body)
        facts = dict(r for r in sec[""] if len(r) == 2)
        assert facts["Site"] == "双溪镇禽类冷库 (s1)"
        assert facts["Room"] == "冷鲜禽库 (chill)"
        assert facts["Temperature limits"] == "0 … 4 °C"
        summary = sec["Summary"]
        assert summary[0][:6] == ["Point", "Quantity", "Min", "Max", "Mean", "MKT °C"]
        # coverage 1383/1440 = 96.04 %, gaps 56 + 1 = 57 min
        assert summary[1][:5] == ["probe/temperature", "temperature (°C)", "3.0", "6.0", "3.0"]
        assert summary[1][6:] == ["96.0", "57"]
        assert summary[2] == [
            "probe/humidity",
            "humidity (%RH)",
            "85.0",
            "85.0",
            "85.0",
            "",
            "100.0",
            "0",
        ]
        records = sec["Records (every 30 min; every 2 min while out of range, marked *)"]
        assert records[0] == [
            "Time",
            "probe/temperature (°C)",
            "probe/humidity (%RH)",
            "Out of range",
        ]
        assert len(records) == 1 + 56
        assert records[1:5] == [
            ["00:00", "5.0", "85.0", "*"],
            ["00:02", "5.0", "85.0", "*"],
            ["00:04", "5.0", "85.0", "*"],
            ["00:06", "5.0", "85.0", "*"],
        ]
        assert ["00:30", "3.0", "85.0", ""] in records
        assert ["10:02", "4.5", "85.0", "*"] in records
        assert ["14:30", "", "85.0", ""] in records
        assert sec["Excursions"][1:] == [ACROSS_ROW, MORNING_ROW]
        [ack_header, ack] = sec["Alerts, acknowledgements and comments"]
        assert ack_header[-4:] == ["Acknowledged", "By", "Via", "Comment"]
        assert ack[1:] == [
            "temperature-high",
            "alarm",
            "2026-01-02 10:00",
            "2026-01-02 10:07",
            "5.5 °C",
            "2026-01-02 10:04",
            "wang-li",
            "api",
            COMMENT,
        ]
        # the audit trail's head, printed: it anchors the trail (coldchain records verify)
        head = srv.audit.head()
        assert head is not None
        assert facts["Audit trail head"] == f"#{head[0]} {head[1]}"
        # and the readings' newest seal (coldchain records verify --seal-anchor)
        assert srv.seal_head is not None
        assert facts["Readings seal head"] == f"#1 {srv.seal_head[2]} (2026-01-02 09:00)"

        got = await fetch(q + "&format=pdf")
        assert got.status == 200
        assert got.headers["content-type"] == "application/pdf"
        assert (
            got.headers["content-disposition"]
            == 'attachment; filename="daily-s1-chill-2026-01-02.pdf"'
        )
        lines = pdf_lines(got.body)
        text = "\n".join(lines)
        assert "双溪镇禽类冷库" in text
        assert "冷鲜禽库" in text
        assert contains_run(lines, ["00:02", "5.0", "85.0", "*"])
        assert contains_run(lines, ["14:30", "85.0"])
        assert contains_run(lines, MORNING_ROW)
        assert contains_run(lines, ACROSS_ROW)
        assert COMMENT in text
        assert head[1] in text.replace("\n", "")

        got = await fetch(q)  # html is the default
        assert got.status == 200
        assert got.headers["content-type"] == "text/html; charset=utf-8"
        assert got.headers["content-disposition"].startswith("inline;")
        page = got.text
        assert "@media print" in page
        assert "冷鲜禽库" in page
        assert '<tr class="out"><td>00:02</td>' in page
        assert "format=pdf" in page
        assert "format=csv" in page

        # without alerts in the hub there is no acknowledgements section
        got = await fetch(q.replace(srv.url, srv.no_alerts_url) + "&format=csv")
        assert got.status == 200
        assert "Alerts, acknowledgements and comments" not in csv_sections(got.body)
        assert "Audit trail head" not in dict(r for r in csv_sections(got.body)[""] if len(r) == 2)

        # a day without data
        got = await fetch(f"{srv.url}/reports/daily?site=s1&room=chill&date=2026-02-01&format=csv")
        sec = csv_sections(got.body)
        assert sec["Summary"][1][2:7] == ["", "", "", "", "0.0"]
        assert sec["Excursions"] == [sec["Excursions"][0], ["none"]]


async def test_excursion_report_over_http(tmp_path: Path) -> None:
    async with serve_reports(tmp_path) as srv:
        q = f"{srv.url}/reports/excursions?site=s1&from=2026-01-01&to=2026-01-02"
        got = await fetch(q + "&format=csv")
        assert got.status == 200, got.body
        assert (
            got.headers["content-disposition"]
            == 'attachment; filename="excursions-s1-2026-01-01-2026-01-02.csv"'
        )
        sec = csv_sections(got.body)
        summary = {(r[0], r[1]): r[2:] for r in sec["Summary by room"][1:]}
        # frozen: 12 h at -20 °C, 12 h at -18 °C on the 2nd, nothing on the 1st:
        # MKT -18.93 (worked out in test_mkt_of_a_frozen_series_by_hand), mean -19.0, data 50 %
        assert summary["冻品库 (frozen)", "fz/temperature"] == [
            "temperature (°C)",
            "-18.93",
            "-20.0",
            "-18.0",
            "-19.0",
            "50.0",
            "0",
        ]
        chill = summary["冷鲜禽库 (chill)", "probe/temperature"]
        assert chill[2:4] == ["3.0", "6.0"]
        assert chill[-1] == "2"
        assert [r[0] for r in sec["Excursions"][1:]] == ["冷鲜禽库 (chill)"] * 2
        assert [r[1:] for r in sec["Excursions"][1:]] == [ACROSS_ROW, MORNING_ROW]

        got = await fetch(q + "&room=frozen&format=pdf")
        assert got.status == 200
        assert got.headers["content-type"] == "application/pdf"
        assert (
            got.headers["content-disposition"]
            == 'attachment; filename="excursions-s1-frozen-2026-01-01-2026-01-02.pdf"'
        )
        lines = pdf_lines(got.body)
        assert contains_run(
            lines,
            ["冻品库 (frozen)", "fz/temperature", "temperature (°C)", "-18.93", "-20.0", "-18.0"],
        )
        assert "冷鲜禽库" not in "\n".join(lines)

        got = await fetch(q.replace("to=2026-01-02", "to=2026-01-04"))  # the printable page
        assert got.status == 200
        assert got.headers["content-type"] == "text/html; charset=utf-8"
        assert "<dd>2026-01-01 to 2026-01-04</dd>" in got.text
        assert "<td>冷鲜禽库 (chill)</td>" in got.text


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        (
            "daily?site=s1&room=chil&date=2026-01-02",
            404,
            "no room 'chil'; did you mean 'chill'?",
        ),
        ("daily?site=s1x&room=chill&date=2026-01-02", 404, "no site 's1x'; did you mean 's1'?"),
        ("daily?site=s1&room=chill&date=2026-13-02", 422, "date"),
        ("daily?site=s1&room=chill&date=2026-01-02&format=xls", 422, "format"),
        (
            "excursions?site=s1&from=2026-01-03&to=2026-01-02",
            422,
            "'to' (2026-01-02) is before 'from' (2026-01-03)",
        ),
        (
            "excursions?site=s1&from=2025-10-01&to=2026-01-02",
            422,
            "94 days asked; a report covers at most 92",
        ),
    ],
)
async def test_bad_requests_say_what_is_wrong(
    tmp_path: Path, query: str, status: int, message: str
) -> None:
    async with serve_reports(tmp_path) as srv:
        got = await fetch(f"{srv.url}/reports/{query}")
        assert got.status == status
        assert message in got.text


async def test_reports_in_chinese(tmp_path: Path) -> None:
    """Without a language chosen (no cookie), the reports speak the web UI's default,
    Chinese, in every format; ?lang= chooses; names and values stay as they are."""
    async with serve_reports(tmp_path) as srv:
        q = f"{srv.url}/reports/daily?site=s1&room=chill&date=2026-01-02"
        got = await fetch(q + "&format=csv", lang="zh-CN")
        sec = csv_sections(got.body)
        title = sec[""][0][0]
        assert title.startswith("温湿度日志 · 双溪镇禽类冷库"), title
        facts = dict(r for r in sec[""] if len(r) == 2)
        assert facts["站点"] == "双溪镇禽类冷库 (s1)"
        assert srv.seal_head is not None
        assert facts["读数封存链头"].startswith(f"#1 {srv.seal_head[2]}")
        assert facts["温度限值"] == "0 … 4 °C"
        assert sec["汇总"][0][:3] == ["测点", "物理量", "最低"]
        records = sec["记录（每 30 分钟一条；超限时每 2 分钟一条，标 *）"]  # noqa: RUF001
        assert records[0][-1] == "超限"
        assert records[1] == ["00:00", "5.0", "85.0", "*"]
        assert sec["超标"][1:] == [ACROSS_ROW, MORNING_ROW]

        page = (await fetch(q, lang="zh-CN")).text
        assert '<html lang="zh-CN">' in page
        assert '<tr class="out"><td>00:02</td>' in page  # out-of-range rows still marked
        assert ">打印</button>" in page
        lines = pdf_lines((await fetch(q + "&format=pdf", lang="zh-CN")).body)
        text = "\n".join(lines)
        assert "温湿度日志" in text
        assert "页 1" in text
        assert "告警、确认与备注" in text

        english = (await fetch(q + "&format=csv&lang=en", lang="zh-CN")).body.decode("utf-8-sig")
        assert english.startswith("Daily temperature log · ")
        excursions = f"{srv.url}/reports/excursions?site=s1&from=2026-01-01&to=2026-01-02"
        sec = csv_sections((await fetch(excursions + "&format=csv&lang=zh-CN")).body)
        assert sec[""][0][0].endswith("2026-01-01 至 2026-01-02")
        assert dict(r for r in sec[""] if len(r) == 2)["期间"] == "2026-01-01 至 2026-01-02"


async def test_the_weekly_maintenance_report(tmp_path: Path) -> None:
    """The week's refrigeration of a site's rooms with a controller (the chilled room's
    Dixell): a row per room and day, in every format; rooms without one are not listed."""
    async with serve_reports(tmp_path) as srv:
        q = f"{srv.url}/reports/maintenance?site=s1&to=2026-01-02"
        sec = csv_sections((await fetch(q + "&format=csv")).body)
        rows = sec["Refrigeration by room and day"]
        assert rows[0][:3] == ["Room", "Date", "Compressor duty %"]
        assert [r[1] for r in rows[1:]] == [f"2025-12-{d}" for d in range(27, 32)] + [
            "2026-01-01",
            "2026-01-02",
        ]
        assert {r[0] for r in rows[1:]} == {"冷鲜禽库 (chill)"}
        page = (await fetch(q)).text
        assert "Maintenance report" in page
        assert (await fetch(q + "&format=pdf")).body.startswith(b"%PDF")
        zh = csv_sections((await fetch(q + "&format=csv", lang="zh-CN")).body)
        assert "各库房每日制冷情况" in zh
