"""Flux for InfluxDB 2 (pure: query text out, records in).

The queries read the schema of :mod:`coldchain.store.lineproto.lines`. Records are the
``FluxRecord.values`` dicts influxdb-client returns (``_time`` a timezone-aware datetime).
Buckets come from ``aggregateWindow`` (windows aligned to the epoch, ``createEmpty: false``
omits empty steps); its first window is cut at the range's start, so the bucket of a record
is recomputed from its window start rather than taken as is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from coldchain.reading import Reading, SeriesId
from coldchain.store.base import Agg, Bucket
from coldchain.store.lineproto.lines import (
    MEASUREMENT,
    TAGS,
    Fields,
    newest_fields,
    reading_from_fields,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FN: Mapping[Agg, str] = {Agg.MIN: "min", Agg.MAX: "max", Agg.MEAN: "mean", Agg.LAST: "last"}
LastFields = dict[SeriesId, dict[str, tuple[int, float | str]]]


def string(text: str) -> str:
    """A Flux string literal (``\\``, ``"`` and the ``${`` of interpolation escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def time_literal(ms: int) -> str:
    """A Flux time literal of epoch milliseconds, exact."""
    t = EPOCH + timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def ms_of(value: datetime) -> int:
    return (value - EPOCH) // timedelta(milliseconds=1)


def series_filter(series: SeriesId) -> str:
    return " and ".join(f"r.{tag} == {string(v)}" for tag, v in zip(TAGS, series, strict=True))


def set_filter(tag: str, values: Iterable[str]) -> str:
    items = ", ".join(string(v) for v in sorted(set(values)))
    return f"contains(value: r.{tag}, set: [{items}])"


def source(bucket: str, start_ms: int, stop_ms: int, where: str | None) -> str:
    """Rows of measurement ``coldchain`` with start_ms <= _time < stop_ms matching ``where``."""
    condition = f"r._measurement == {string(MEASUREMENT)}" + (f" and {where}" if where else "")
    return (
        f"from(bucket: {string(bucket)})\n"
        f"  |> range(start: {time_literal(start_ms)}, stop: {time_literal(stop_ms)})\n"
        f"  |> filter(fn: (r) => {condition})"
    )


def raw_query(bucket: str, series: SeriesId, start_ms: int, end_ms: int) -> str:
    """Every field of every reading of ``series`` in [start_ms, end_ms), one row a reading."""
    return (
        source(bucket, start_ms, end_ms, series_filter(series))
        + '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
        + '\n  |> sort(columns: ["_time"])'
    )


def range_query(
    bucket: str, series: SeriesId, *, start_ms: int, end_ms: int, step_ms: int, agg: Agg
) -> str:
    """Per aligned step: aggregate (yield ``agg``) and count (yield ``n``) of good values,
    and the count of all readings (yield ``all``: a step with only bad ones has no value)."""
    good = f'r._field == "value" and {series_filter(series)}'
    every = f'r._field == "quality" and {series_filter(series)}'
    window = f'every: {step_ms}ms, createEmpty: false, timeSrc: "_start"'
    return (
        f"good = {source(bucket, start_ms, end_ms, good)}\n"
        f"readings = {source(bucket, start_ms, end_ms, every)}\n"
        f'good |> aggregateWindow({window}, fn: {FN[agg]}) |> yield(name: "agg")\n'
        f'good |> aggregateWindow({window}, fn: count) |> yield(name: "n")\n'
        f'readings |> aggregateWindow({window}, fn: count) |> yield(name: "all")'
    )


def latest_query(bucket: str, series: Sequence[SeriesId] | None, stop_ms: int) -> str:
    """The last value of every field of every (given) series: ``last()`` is pushed down to
    the storage engine, so no look-back window is needed."""
    where = None
    if series is not None:
        where = " and ".join(set_filter(tag, {s[i] for s in series}) for i, tag in enumerate(TAGS))
    return source(bucket, 0, stop_ms, where) + "\n  |> last()"


def series_query(bucket: str, stop_ms: int) -> str:
    return (
        source(bucket, 0, stop_ms, 'r._field == "quality"')
        + "\n  |> last()"
        + f"\n  |> keep(columns: [{', '.join(string(t) for t in TAGS)}])"
    )


def stored_query(
    bucket: str, sites: Iterable[str], gateways: Iterable[str], start_ms: int, end_ms: int
) -> str:
    """The (series, time) of every reading of these gateways with start <= ts <= end."""
    where = f'r._field == "quality" and {set_filter("site", sites)} and ' + set_filter(
        "gateway", gateways
    )
    return (
        source(bucket, start_ms, end_ms + 1, where)
        + f'\n  |> keep(columns: ["_time", {", ".join(string(t) for t in TAGS)}])'
    )


# -- records back ---------------------------------------------------------------------------


def series_of(rec: Mapping[str, Any]) -> SeriesId | None:
    values = [rec.get(t) for t in TAGS]
    if all(isinstance(v, str) and v for v in values):
        return SeriesId(*(str(v) for v in values))
    return None


def readings_from_pivot(series: SeriesId, records: Iterable[Mapping[str, Any]]) -> list[Reading]:
    """Pivoted rows (one per reading, a column per field) as readings, oldest first."""
    out = []
    for rec in records:
        fields: Fields = {
            k: v
            for k, v in rec.items()
            if not k.startswith("_") and k not in TAGS and k not in {"result", "table"}
            if isinstance(v, float | int | str) and not isinstance(v, bool)
        }
        out.append(reading_from_fields(series, ms_of(rec["_time"]), fields))
    return sorted(out, key=lambda r: r.ts_ms)


def buckets_from_records(records: Iterable[Mapping[str, Any]], step_ms: int) -> list[Bucket]:
    """``range_query`` records (``result`` ``agg`` or ``n``) as buckets."""
    agg: dict[int, float] = {}
    count: dict[int, int] = {}
    steps: set[int] = set()
    for rec in records:
        ts = ms_of(rec["_time"]) // step_ms * step_ms
        result, value = rec.get("result"), rec.get("_value")
        if result == "agg" and value is not None:
            agg[ts] = float(value)
        elif result == "n":
            count[ts] = int(value or 0)
        elif result == "all" and value:
            steps.add(ts)
    return [Bucket(ts, agg.get(ts), count.get(ts, 0)) for ts in sorted(steps | agg.keys())]


def lasts_from_records(records: Iterable[Mapping[str, Any]]) -> LastFields:
    out: LastFields = defaultdict(dict)
    for rec in records:
        series = series_of(rec)
        value = rec.get("_value")
        if series is None or not isinstance(value, float | int | str):
            continue
        out[series][str(rec["_field"])] = (ms_of(rec["_time"]), value)
    return dict(out)


def latest_readings(lasts: LastFields) -> dict[SeriesId, Reading]:
    out = {}
    for series, fields in lasts.items():
        newest = newest_fields(fields)
        if newest is not None:
            out[series] = reading_from_fields(series, *newest)
    return out


def keys_from_records(records: Iterable[Mapping[str, Any]]) -> set[tuple[SeriesId, int]]:
    return {(s, ms_of(rec["_time"])) for rec in records if (s := series_of(rec)) is not None}
