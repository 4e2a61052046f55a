"""The pure parts of the line-protocol store: the encoder, the MetricsQL and Flux it
generates and how it reads their answers back, the write look-up planner, door intervals.
(The Flux path has no server here to run against: its text and parsing are checked here.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store import doors
from coldchain.store.base import Agg, Bucket, DoorInterval
from coldchain.store.lineproto import dedupe, flux, promql
from coldchain.store.lineproto import lines as lineproto
from coldchain.store.lineproto.victoria import duration_ms, parse_flags, retention_days

T0 = 1_764_288_000_000  # 2025-11-28T00:00:00Z
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
S = SeriesId("site-a", "gw-1", "cr1-probe", "temperature")
TAGS = "device=cr1-probe,gateway=gw-1,point=temperature,site=site-a"


# -- the encoder ------------------------------------------------------------------------------


def test_a_good_reading_is_one_line_with_value_and_quality() -> None:
    r = Reading(S, T0, -18.5, meta={"calibration": 0.5})
    for flavour in ("victoriametrics", "influxdb2"):
        assert lineproto.encode([r], flavour) == [
            f"coldchain,{TAGS} value=-18.5,quality=0i,meta_calibration=0.5 {T0}"
        ]


def test_a_not_good_value_is_suspect_and_its_reason_depends_on_the_flavour() -> None:
    bad = Reading(S, T0, None, Quality.BAD, 'exception 2: "illegal address"')
    odd = Reading(S, T0 + 1, 85.5, Quality.UNCERTAIN, "out of range, 85.5")
    assert lineproto.encode([bad, odd], "influxdb2") == [
        f'coldchain,{TAGS} quality=1i,reason="exception 2: \\"illegal address\\"" {T0}',
        f'coldchain,{TAGS} suspect=85.5,quality=2i,reason="out of range, 85.5" {T0 + 1}',
    ]
    assert lineproto.encode([bad, odd], "victoriametrics") == [
        f"coldchain,{TAGS} quality=1i {T0}",
        f'coldchain_fault,{TAGS},reason=exception\\ 2:\\ "illegal\\ address" quality=1i {T0}',
        f"coldchain,{TAGS} suspect=85.5,quality=2i {T0 + 1}",
        f"coldchain_fault,{TAGS},reason=out\\ of\\ range\\,\\ 85.5 quality=2i {T0 + 1}",
    ]


@pytest.mark.parametrize(
    ("text", "tag", "string"),
    [
        ("plain", "plain", "plain"),
        ("a b", "a\\ b", "a b"),
        ("a,b=c", "a\\,b\\=c", "a,b=c"),
        ('say "x"', 'say\\ "x"', 'say \\"x\\"'),
        ("back\\slash", "back\\\\slash", "back\\\\slash"),
        ("ends\\", "ends\\\\", "ends\\\\"),  # a trailing backslash escapes nothing after it
        ("two\nlines\t!", "two\\\\nlines\\\\t!", "two\\\\nlines\\\\t!"),
        ("nul\x00", "nul\\\\x00", "nul\\\\x00"),
        ("°C ü", "°C\\ ü", "°C ü"),
    ],
)
def test_escaping(text: str, tag: str, string: str) -> None:
    assert lineproto.escape_tag(text) == tag
    assert lineproto.escape_string(text) == string


def test_point_names_and_meta_keys_are_escaped_as_tags_and_field_keys() -> None:
    series = SeriesId("s", "g", "d", "probe 1,a=b")
    line = lineproto.encode([Reading(series, 5, 1.0, meta={"cal x": 1.0})], "victoriametrics")
    assert line == ["coldchain,device=d,gateway=g,point=probe\\ 1\\,a\\=b,site=s "
                    "value=1.0,quality=0i,meta_cal\\ x=1.0 5"]  # fmt: skip


def test_what_line_protocol_cannot_carry_is_refused_with_the_series() -> None:
    with pytest.raises(ValueError, match=r"site-a/gw-1/cr1-probe/temperature at 5: nan"):
        lineproto.encode([Reading(S, 5, float("nan"))], "victoriametrics")
    with pytest.raises(ValueError, match="calibration: inf"):
        lineproto.encode([Reading(S, 5, 1.0, meta={"calibration": float("inf")})], "influxdb2")
    with pytest.raises(ValueError, match="series s//d/p: every part needs a non-empty id"):
        lineproto.encode([Reading(SeriesId("s", "", "d", "p"), 5, 1.0)], "influxdb2")


def test_floats_keep_their_digits_and_chunks_cut_lines() -> None:
    lines = lineproto.encode(
        [Reading(S, i, v) for i, v in enumerate([0.1, 1e-7, -40.0])], "influxdb2"
    )
    assert [line.split(" ")[1].split(",")[0] for line in lines] == [
        "value=0.1", "value=1e-07", "value=-40.0"
    ]  # fmt: skip
    assert [len(c) for c in lineproto.chunks(["x"] * 7, 3)] == [3, 3, 1]


def test_fields_make_the_reading_back() -> None:
    fields: lineproto.Fields = {"suspect": 2.5, "quality": 2.0, "reason": "stale"}
    assert lineproto.reading_from_fields(S, T0, fields) == Reading(
        S, T0, 2.5, Quality.UNCERTAIN, "stale"
    )
    assert lineproto.reading_from_fields(S, T0, {"quality": 1, "meta_calibration": 0.5}) == Reading(
        S, T0, None, Quality.BAD, "reason not stored", {"calibration": 0.5}
    )
    with pytest.raises(ValueError, match="no valid quality field"):
        lineproto.reading_from_fields(S, T0, {"value": 1.0})
    lasts = {"quality": (T0, 0.0), "value": (T0, 1.0), "meta_calibration": (T0 - 1, 0.5)}
    assert lineproto.newest_fields(lasts) == (T0, {"quality": 0.0, "value": 1.0})


# -- first copy wins --------------------------------------------------------------------------


def test_first_copies_and_split_new() -> None:
    a, b = Reading(S, 1, 1.0), Reading(S, 1, 2.0)
    assert dedupe.first_copies([a, b, Reading(S, 2, 3.0), a]) == ([a, Reading(S, 2, 3.0)], 2)
    assert dedupe.split_new([a, Reading(S, 2, 3.0)], {(S, 1)}) == ([Reading(S, 2, 3.0)], 1)


def test_live_batches_of_many_gateways_need_one_lookup_and_a_backlog_its_own() -> None:
    live = [Reading(SeriesId("s", f"gw-{g}", "d", "p"), T0 + g * 1000, 1.0) for g in range(20)]
    backlog = [Reading(SeriesId("s", "gw-3", "d", "p"), T0 - k * MIN, 1.0) for k in range(10, 300)]
    old, now = dedupe.plan_lookups(live + backlog)
    assert (old.gateways, old.start_ms, old.end_ms) == (
        frozenset({"gw-3"}),
        T0 - 299 * MIN,
        T0 - 10 * MIN,
    )
    assert (len(now.gateways), now.start_ms, now.end_ms) == (20, T0, T0 + 19_000)
    # A backlog reaching up to now is one long look-up of its own gateway.
    backlog = [Reading(SeriesId("s", "gw-3", "d", "p"), T0 - k * MIN, 1.0) for k in range(300)]
    old, now = dedupe.plan_lookups(live + backlog)
    assert (old.gateways, old.start_ms, old.end_ms) == (
        frozenset({"gw-3"}),
        T0 - 299 * MIN,
        T0 + 3000,
    )
    assert (len(now.gateways), now.start_ms, now.end_ms) == (19, T0, T0 + 19_000)
    gap = [Reading(S, T0, 1.0), Reading(S, T0 + 20 * MIN, 1.0)]
    assert [(lk.start_ms, lk.end_ms) for lk in dedupe.plan_lookups(gap)] == [
        (T0, T0),
        (T0 + 20 * MIN, T0 + 20 * MIN),
    ]


# -- doors ------------------------------------------------------------------------------------


def door(ts: int, v: float, q: Quality = Quality.GOOD) -> Reading:
    return Reading(S, ts, v, q, None if q is Quality.GOOD else "x")


def test_door_intervals_from_readings() -> None:
    rs = [door(0, 0), door(10, 1), door(15, 1), door(20, 0, Quality.BAD), door(30, 0), door(40, 1)]
    assert doors.intervals(S, rs, 0, 100) == [DoorInterval(S, 10, 30), DoorInterval(S, 40, None)]
    assert doors.intervals(S, rs, 30, 35) == [], "closed exactly at start"
    assert doors.knows_state_at(rs, 12)
    assert not doors.knows_state_at(rs[1:], 12), "no closed reading before 12"


async def test_door_lookback_widens_until_a_closed_reading() -> None:
    history = [door(T0 - 40 * DAY, 0), door(T0 - 30 * DAY, 1)]
    asked: list[int] = []

    async def raw(series: SeriesId, start: int, end: int) -> list[Reading]:
        asked.append(start)
        return [r for r in history if start <= r.ts_ms < end]

    got = await doors.door_intervals(S, T0, T0 + DAY, raw)
    assert got == [DoorInterval(S, T0 - 30 * DAY, None)]
    assert asked == [T0 - DAY, T0 - 16 * DAY, T0 - 256 * DAY]


# -- MetricsQL --------------------------------------------------------------------------------


def test_selectors_quote_and_escape() -> None:
    assert promql.selector(promql.VALUE, SeriesId("s", "g", "d", 'p "x"')) == (
        '{__name__=~"coldchain_value",site="s",gateway="g",device="d",point="p \\"x\\""}'
    )
    assert promql.selector("m", within={"gateway": ["gw-2", "a.b", "gw-1"]}) == (
        '{__name__=~"m",gateway=~"a\\\\.b|gw-1|gw-2"}'
    )
    assert (promql.seconds(T0 + 7), promql.ms_of("1764288000.007")) == ("1764288000.007", T0 + 7)


def test_plan_range_splits_edges_recent_steps_and_long_grids() -> None:
    grids, edges = promql.plan_range(T0, T0 + HOUR, MIN, fresh_after_ms=T0 + DAY, max_points=100)
    assert (grids, edges) == ([promql.Grid(T0, T0 + HOUR, MIN)], [])
    grids, edges = promql.plan_range(
        T0 + 10, T0 + 25 * MIN + 5, MIN, fresh_after_ms=T0 + 20 * MIN + 30_000, max_points=8
    )
    assert grids == [
        promql.Grid(T0 + MIN, T0 + 9 * MIN, MIN),
        promql.Grid(T0 + 9 * MIN, T0 + 17 * MIN, MIN),
        promql.Grid(T0 + 17 * MIN, T0 + 20 * MIN, MIN),
    ]
    assert edges == [promql.Edge(T0 + 10, T0 + MIN), promql.Edge(T0 + 20 * MIN, T0 + 25 * MIN + 5)]
    assert promql.plan_range(T0 + 5, T0 + 50, MIN, fresh_after_ms=T0 + DAY, max_points=9) == (
        [],
        [promql.Edge(T0 + 5, T0 + 50)],
    )
    assert promql.plan_range(T0, T0, MIN, fresh_after_ms=T0, max_points=9) == ([], [])
    # A query whose search would end at midnight hands its last step to raw samples.
    grids, edges = promql.plan_range(T0 - 4, T0 + 1, 1, fresh_after_ms=T0 + DAY, max_points=9)
    assert (grids, edges) == ([promql.Grid(T0 - 4, T0, 1)], [promql.Edge(T0, T0 + 1)])
    with pytest.raises(ValueError, match="step must be positive"):
        promql.plan_range(T0, T0 + 1, 0, fresh_after_ms=T0, max_points=9)


def test_grid_query_and_its_answer() -> None:
    q = promql.grid_query(S, MIN, Agg.MEAN)
    assert q.startswith('union(label_set(avg_over_time({__name__=~"coldchain_value",site=')
    assert '[60000ms] offset 1ms), "cc_part", "agg")' in q
    assert 'label_set(sum_over_time({__name__=~"coldchain_quality"' in q
    assert '[60000ms] offset 1ms) > 0, "cc_part", "other"))' in q
    t = T0 / 1000
    result = [
        {"metric": {"cc_part": "agg"}, "values": [[t + 60, "2.5"]]},
        {"metric": {"cc_part": "n"}, "values": [[t + 60, "2"]]},
        {"metric": {"cc_part": "other"}, "values": [[t + 60, "1"], [t + 180, "2"]]},
    ]
    assert promql.buckets_from_grid(result, MIN) == [
        Bucket(T0, 2.5, 2),
        Bucket(T0 + 2 * MIN, None, 0),
    ]


def test_aggregate_is_the_reference() -> None:
    rs = [Reading(S, T0 + 5, 3.0), Reading(S, T0 + 1, 1.0), door(T0 + 9, 7, Quality.UNCERTAIN)]
    rs.append(Reading(S, T0 + MIN, None, Quality.BAD, "x"))
    want = {Agg.MIN: 1.0, Agg.MAX: 3.0, Agg.MEAN: 2.0, Agg.LAST: 3.0}
    for agg, value in want.items():
        assert promql.aggregate(rs, MIN, agg) == [Bucket(T0, value, 2), Bucket(T0 + MIN, None, 0)]


def test_export_and_latest_answers_make_readings() -> None:
    labels = {"site": "site-a", "gateway": "gw-1", "device": "cr1-probe", "point": "temperature"}
    export = "\n".join(
        [
            '{"metric":{"__name__":"coldchain_quality",%s},"values":[0,1],"timestamps":[%d,%d]}',
            '{"metric":{"__name__":"coldchain_value",%s},"values":[-18.5],"timestamps":[%d]}',
            '{"metric":{"__name__":"coldchain_fault_quality","reason":"no reply",%s},'
            '"values":[1],"timestamps":[%d]}',
        ]
    )
    tags = ",".join(f'"{k}":"{v}"' for k, v in labels.items())
    text = export % (tags, T0, T0 + 1, tags, T0, tags, T0 + 1)
    assert promql.readings_from_export(text) == {
        S: [Reading(S, T0, -18.5), Reading(S, T0 + 1, None, Quality.BAD, "no reply")]
    }
    t = (T0 + 1) / 1000
    rows: list[tuple[str, dict[str, str], str, object]] = [
        ("coldchain_quality", {}, "v", "1"),
        ("coldchain_quality", {}, "t", t),
        ("coldchain_value", {}, "v", "-18.5"),
        ("coldchain_value", {}, "t", T0 / 1e3),
        ("coldchain_fault_quality", {"reason": "no reply"}, "v", "1"),
        ("coldchain_fault_quality", {"reason": "no reply"}, "t", t),
    ]
    result: list[dict[str, object]] = [
        {"metric": {"__name__": name, "cc_part": part} | extra | labels, "value": [0, v]}
        for name, extra, part, v in rows
    ]
    lasts = promql.lasts_from_result(result)
    assert promql.latest_readings(lasts) == {S: Reading(S, T0 + 1, None, Quality.BAD, "no reply")}


def test_flags_and_durations() -> None:
    flags = parse_flags('-dedup.minScrapeInterval="1ms"\n-search.latencyOffset="1m30s"\n')
    assert flags == {"dedup.minScrapeInterval": "1ms", "search.latencyOffset": "1m30s"}
    assert [duration_ms(d) for d in ("1ms", "0s", "30s", "1m30s", "1h", "500us")] == [
        1, 0, 30_000, 90_000, 3_600_000, 0
    ]  # fmt: skip
    with pytest.raises(ValueError, match="not a duration"):
        duration_ms("30")
    assert [retention_days(r) for r in ("1", "6y", "30d", "2w", "12h")] == [31, 2190, 30, 14, 0.5]
    with pytest.raises(ValueError, match="not a retention period"):
        retention_days("6 years")


# -- Flux -------------------------------------------------------------------------------------


def test_flux_literals() -> None:
    assert flux.string('a "b" \\ ${x}') == '"a \\"b\\" \\\\ \\${x}"'
    assert flux.time_literal(T0 + 7) == "2025-11-28T00:00:00.007Z"
    assert flux.time_literal(0) == "1970-01-01T00:00:00.000Z"
    assert flux.ms_of(datetime(2025, 11, 28, tzinfo=UTC) + timedelta(milliseconds=7)) == T0 + 7


SERIES_FILTER = (
    'r.site == "site-a" and r.gateway == "gw-1" and r.device == "cr1-probe" '
    'and r.point == "temperature"'
)


def test_flux_raw_and_range_text() -> None:
    assert flux.raw_query("coldchain", S, T0, T0 + MIN) == (
        'from(bucket: "coldchain")\n'
        "  |> range(start: 2025-11-28T00:00:00.000Z, stop: 2025-11-28T00:01:00.000Z)\n"
        f'  |> filter(fn: (r) => r._measurement == "coldchain" and {SERIES_FILTER})\n'
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        '  |> sort(columns: ["_time"])'
    )
    q = flux.range_query("b", S, start_ms=T0 + 1, end_ms=T0 + HOUR, step_ms=MIN, agg=Agg.MEAN)
    src = (
        'from(bucket: "b")\n'
        "  |> range(start: 2025-11-28T00:00:00.001Z, stop: 2025-11-28T01:00:00.000Z)\n"
        '  |> filter(fn: (r) => r._measurement == "coldchain" and r._field == "{}" and '
        f"{SERIES_FILTER})"
    )
    window = 'every: 60000ms, createEmpty: false, timeSrc: "_start"'
    assert q == (
        f"good = {src.format('value')}\n"
        f"readings = {src.format('quality')}\n"
        f'good |> aggregateWindow({window}, fn: mean) |> yield(name: "agg")\n'
        f'good |> aggregateWindow({window}, fn: count) |> yield(name: "n")\n'
        f'readings |> aggregateWindow({window}, fn: count) |> yield(name: "all")'
    )


def test_flux_latest_series_and_lookup_text() -> None:
    head = (
        'from(bucket: "b")\n'
        "  |> range(start: 1970-01-01T00:00:00.000Z, stop: 2025-11-28T01:00:00.000Z)\n"
    )
    assert flux.latest_query("b", None, T0 + HOUR) == (
        head + '  |> filter(fn: (r) => r._measurement == "coldchain")\n  |> last()'
    )
    assert 'contains(value: r.point, set: ["humidity", "temperature"])' in flux.latest_query(
        "b", [S, S._replace(point="humidity")], T0 + HOUR
    )
    assert flux.series_query("b", T0 + HOUR) == (
        head + '  |> filter(fn: (r) => r._measurement == "coldchain" and r._field == "quality")\n'
        '  |> last()\n  |> keep(columns: ["site", "gateway", "device", "point"])'
    )
    q = flux.stored_query("b", ["site-a"], ["gw-2", "gw-1"], T0, T0 + MIN)
    assert "stop: 2025-11-28T00:01:00.001Z)" in q, "the look-up's end is inclusive"
    assert 'contains(value: r.gateway, set: ["gw-1", "gw-2"])' in q


def at(ms: int) -> datetime:
    return flux.EPOCH + timedelta(milliseconds=ms)


def test_flux_records_back() -> None:
    tags = {"site": "site-a", "gateway": "gw-1", "device": "cr1-probe", "point": "temperature"}
    pivot = [
        {"result": "_result", "table": 0, "_start": at(0), "_stop": at(1), "_time": at(T0 + 1),
         "_measurement": "coldchain", **tags, "quality": 1, "reason": "no reply"},
        {"result": "_result", "table": 0, "_time": at(T0), **tags, "value": -18.5, "quality": 0,
         "meta_calibration": 0.5},
    ]  # fmt: skip
    assert flux.readings_from_pivot(S, pivot) == [
        Reading(S, T0, -18.5, meta={"calibration": 0.5}),
        Reading(S, T0 + 1, None, Quality.BAD, "no reply"),
    ]
    windows = [  # the first window is cut at the range's start (T0 + 10)
        {"result": "agg", "_time": at(T0 + 10), "_value": 2.5},
        {"result": "n", "_time": at(T0 + 10), "_value": 2},
        {"result": "all", "_time": at(T0 + 10), "_value": 3},
        {"result": "all", "_time": at(T0 + 2 * MIN), "_value": 1},
    ]
    assert flux.buckets_from_records(windows, MIN) == [
        Bucket(T0, 2.5, 2),
        Bucket(T0 + 2 * MIN, None, 0),
    ]
    lasts = [
        {"_field": "quality", "_time": at(T0 + 1), "_value": 2, **tags},
        {"_field": "suspect", "_time": at(T0 + 1), "_value": 3.5, **tags},
        {"_field": "reason", "_time": at(T0 + 1), "_value": "stale", **tags},
        {"_field": "value", "_time": at(T0), "_value": 1.0, **tags},
    ]
    assert flux.latest_readings(flux.lasts_from_records(lasts)) == {
        S: Reading(S, T0 + 1, 3.5, Quality.UNCERTAIN, "stale")
    }
    assert flux.keys_from_records([{"_time": at(T0), **tags}]) == {(S, T0)}
