"""MetricsQL for VictoriaMetrics' Prometheus-compatible API (pure: queries out, data in).

VictoriaMetrics names a line-protocol field ``<measurement>_<field>``: ``coldchain_value``,
``coldchain_suspect``, ``coldchain_quality``, ``coldchain_meta_<key>`` and, for reasons,
``coldchain_fault_quality{reason="..."}`` (see :mod:`coldchain.store.lineproto.lines`).

Buckets: a rollup ``f(m[step] offset 1ms)`` evaluated at ``t`` reads the samples in
``(t - step - 1ms, t - 1ms]``, i.e. ``[t - step, t)`` in whole milliseconds, so evaluating
at the *end* of each bucket (a multiple of ``step``) gives exactly the interface's buckets.
Partial buckets at the edges of the range, and buckets VictoriaMetrics may still treat as
incomplete (its ``-search.latencyOffset`` rewrites the newest points of a ``query_range``),
are aggregated here from raw samples instead (:func:`aggregate`).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.base import Agg, Bucket, StoreError
from coldchain.store.lineproto.lines import (
    FAULT_MEASUREMENT,
    MEASUREMENT,
    TAGS,
    Fields,
    newest_fields,
    reading_from_fields,
)

VALUE = f"{MEASUREMENT}_value"
QUALITY = f"{MEASUREMENT}_quality"
FAULT = f"{FAULT_MEASUREMENT}_quality"
ALL_METRICS = f"{MEASUREMENT}_(value|suspect|quality|meta_.+)|{FAULT}"
ROLLUP: Mapping[Agg, str] = {
    Agg.MIN: "min_over_time",
    Agg.MAX: "max_over_time",
    Agg.MEAN: "avg_over_time",
    Agg.LAST: "last_over_time",
}
DAY_MS = 86_400_000
PART = "cc_part"  # label that tells the two halves of a union query apart

_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")

LastSamples = dict[SeriesId, dict[str, tuple[int, float | str]]]


def quote(text: str) -> str:
    """A MetricsQL string literal."""
    return json.dumps(text, ensure_ascii=False)


def regex_of(values: Iterable[str]) -> str:
    """An RE2 alternation matching exactly ``values``."""
    return "|".join(_RE2_SPECIAL.sub(r"\\\1", v) for v in sorted(set(values)))


def selector(
    metric_regex: str,
    series: SeriesId | None = None,
    within: Mapping[str, Iterable[str]] | None = None,
) -> str:
    """``{__name__=~"...", site="..", ...}``: one series exactly, or tags within sets."""
    parts = [f"__name__=~{quote(metric_regex)}"]
    if series is not None:
        parts += [f"{tag}={quote(v)}" for tag, v in zip(TAGS, series, strict=True)]
    parts += [f"{tag}=~{quote(regex_of(vs))}" for tag, vs in (within or {}).items()]
    return "{" + ",".join(parts) + "}"


def covering(series: Sequence[SeriesId]) -> dict[str, set[str]]:
    """Per tag, the values of ``series``: a selector that matches them (and maybe more)."""
    return {tag: {s[i] for s in series} for i, tag in enumerate(TAGS)}


def series_of(labels: Mapping[str, str]) -> SeriesId | None:
    values = [labels.get(t) for t in TAGS]
    return SeriesId(*values) if all(values) else None  # type: ignore[arg-type]


def field_of(labels: Mapping[str, str]) -> str | None:
    """The line-protocol field a VictoriaMetrics metric came from (``reason`` for faults)."""
    name = labels.get("__name__", "")
    if name == FAULT:
        return "reason"
    prefix = f"{MEASUREMENT}_"
    return name[len(prefix) :] if name.startswith(prefix) else None


def seconds(ms: int) -> str:
    """Milliseconds as the API's seconds, exact (``1700000000.001``)."""
    sign = "-" if ms < 0 else ""
    return f"{sign}{abs(ms) // 1000}.{abs(ms) % 1000:03d}"


def ms_of(seconds_value: float | str) -> int:
    return round(float(seconds_value) * 1000)


# -- raw samples ----------------------------------------------------------------------------


def readings_from_export(text: str | bytes) -> dict[SeriesId, list[Reading]]:
    """/api/v1/export output (JSON lines) as readings, oldest first per series."""
    rows: dict[SeriesId, dict[int, Fields]] = defaultdict(lambda: defaultdict(dict))
    for line in (text.decode() if isinstance(text, bytes) else text).splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        labels: dict[str, str] = item["metric"]
        series, field = series_of(labels), field_of(labels)
        if series is None or field is None:
            continue
        per_ts = rows[series]
        for ts, v in zip(item["timestamps"], item["values"], strict=True):
            fields = per_ts[int(ts)]
            if field == "reason":
                if "reason" not in fields or labels.get("reason", "") < str(fields["reason"]):
                    fields["reason"] = labels.get("reason", "")
            elif v is not None and math.isfinite(v):
                fields[field] = float(v)
    out: dict[SeriesId, list[Reading]] = {}
    for series, per_ts in rows.items():
        try:
            out[series] = [
                reading_from_fields(series, ts, f)
                for ts, f in sorted(per_ts.items())
                if "quality" in f
            ]
        except ValueError as exc:
            raise StoreError(f"stored data does not make a reading: {exc}") from exc
    return out


def keys_from_export(text: str | bytes) -> set[tuple[SeriesId, int]]:
    """The (series, ts) of every sample in /api/v1/export output."""
    keys: set[tuple[SeriesId, int]] = set()
    for line in (text.decode() if isinstance(text, bytes) else text).splitlines():
        if line.strip():
            item = json.loads(line)
            series = series_of(item["metric"])
            if series is not None:
                keys.update((series, int(ts)) for ts in item["timestamps"])
    return keys


# -- ranged aggregates ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grid:
    """Whole buckets ``[first_ms, end_ms)`` answered by one ``query_range``."""

    first_ms: int  # start of the first bucket
    end_ms: int  # end of the last bucket
    step_ms: int

    @property
    def eval_start_ms(self) -> int:
        return self.first_ms + self.step_ms


@dataclass(frozen=True, slots=True)
class Edge:
    """Readings in ``[start_ms, end_ms)`` aggregated from raw samples."""

    start_ms: int
    end_ms: int


def plan_range(
    start_ms: int, end_ms: int, step_ms: int, *, fresh_after_ms: int, max_points: int
) -> tuple[list[Grid], list[Edge]]:
    """Split a ranged query: aligned whole buckets ending by ``fresh_after_ms`` go to
    ``query_range`` (at most ``max_points`` buckets each); the rest to raw samples. A query
    whose search would end exactly at midnight UTC gives its last bucket to raw samples
    (VictoriaMetrics 1.79 would miss series that start on that day)."""
    if step_ms <= 0:
        raise ValueError(f"step must be positive, got {step_ms} ms")
    if end_ms <= start_ms:
        return [], []
    first = -(-start_ms // step_ms) * step_ms  # first whole bucket's start
    last_end = min(end_ms, fresh_after_ms) // step_ms * step_ms
    if first >= last_end:
        return [], [Edge(start_ms, end_ms)]
    grids, edges = [], []
    for lo in range(first, last_end, max_points * step_ms):
        grid = Grid(lo, min(lo + max_points * step_ms, last_end), step_ms)
        if (grid.end_ms - 1) % DAY_MS == 0:  # see victoria.VictoriaReads._export
            edges.append(Edge(grid.end_ms - step_ms, grid.end_ms))
            grid = Grid(grid.first_ms, grid.end_ms - step_ms, step_ms)
        if grid.end_ms > grid.first_ms:
            grids.append(grid)
    if start_ms < first:
        edges.append(Edge(start_ms, first))
    if last_end < end_ms:
        edges.append(Edge(last_end, end_ms))
    return grids, edges


def grid_query(series: SeriesId, step_ms: int, agg: Agg) -> str:
    """Per bucket, evaluated at its end: the aggregate and the count of good values, and
    whether it holds readings that are not good (a step with only those is a bucket without
    a value; ``> 0`` keeps that part of the answer as small as such steps are rare)."""
    sel, quality = selector(VALUE, series), selector(QUALITY, series)
    window = f"[{step_ms}ms] offset 1ms"
    return (
        f'union(label_set({ROLLUP[agg]}({sel}{window}), "{PART}", "agg"), '
        f'label_set(count_over_time({sel}{window}), "{PART}", "n"), '
        f'label_set(sum_over_time({quality}{window}) > 0, "{PART}", "other"))'
    )


def buckets_from_grid(result: Sequence[Mapping[str, Any]], step_ms: int) -> list[Bucket]:
    """A ``query_range`` result of :func:`grid_query` as buckets (a hot loop: 43,200 points
    a part for a month at 1-min steps)."""
    parts: dict[str, list[list[Any]]] = defaultdict(list)
    for item in result:
        parts[item["metric"].get(PART, "")].extend(item["values"])
    agg = {round(t * 1000) - step_ms: float(v) for t, v in parts["agg"]}
    agg = {ts: v for ts, v in agg.items() if math.isfinite(v)}
    count = {round(t * 1000) - step_ms: int(float(v)) for t, v in parts["n"]}
    steps = agg.keys() | {round(t * 1000) - step_ms for t, _ in parts["other"]}
    return [Bucket(ts, agg.get(ts), count.get(ts, 0)) for ts in sorted(steps)]


def aggregate(readings: Iterable[Reading], step_ms: int, agg: Agg) -> list[Bucket]:
    """Good readings aggregated per aligned step (the reference the grid must agree with);
    a step with readings but no good one is a bucket without a value."""
    per: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for r in readings:
        samples = per[r.ts_ms // step_ms * step_ms]
        if r.quality is Quality.GOOD and r.value is not None:
            samples.append((r.ts_ms, r.value))
    out = []
    for ts in sorted(per):
        samples = per[ts]
        values = [v for _, v in samples]
        value: float | None
        if not samples:
            value = None
        elif agg is Agg.MIN:
            value = min(values)
        elif agg is Agg.MAX:
            value = max(values)
        elif agg is Agg.MEAN:
            value = sum(values) / len(values)
        else:
            value = max(samples)[1]  # newest (ts is unique per series)
        out.append(Bucket(ts, value, len(samples)))
    return out


# -- latest ---------------------------------------------------------------------------------


def latest_query(sel: str, lookback_ms: int) -> str:
    """Each field's last value and its time within ``lookback_ms``, in one union."""
    window = f"[{lookback_ms}ms]"
    return (
        f'union(label_set(last_over_time({sel}{window}) keep_metric_names, "{PART}", "v"), '
        f'label_set(tlast_over_time({sel}{window}) keep_metric_names, "{PART}", "t"))'
    )


def lasts_from_result(result: Sequence[Mapping[str, Any]]) -> LastSamples:
    """A :func:`latest_query` result as each series' fields' last (ts, value)."""
    values: dict[tuple[SeriesId, str, str], float] = {}
    stamps: dict[tuple[SeriesId, str, str], int] = {}
    for item in result:
        labels = item["metric"]
        series, field = series_of(labels), field_of(labels)
        if series is None or field is None:
            continue
        key = (series, field, labels.get("reason", ""))
        if labels.get(PART) == "v":
            values[key] = float(item["value"][1])
        elif labels.get(PART) == "t":
            stamps[key] = ms_of(item["value"][1])
    out: LastSamples = defaultdict(dict)
    for key, ts in stamps.items():
        series, field, reason = key
        if key not in values:
            continue
        value: float | str = reason if field == "reason" else values[key]
        prev = out[series].get(field)
        if prev is None or ts > prev[0] or (ts == prev[0] and str(value) < str(prev[1])):
            out[series][field] = (ts, value)
    return dict(out)


def latest_readings(lasts: LastSamples) -> dict[SeriesId, Reading]:
    out = {}
    for series, fields in lasts.items():
        newest = newest_fields(fields)
        if newest is not None:
            try:
                out[series] = reading_from_fields(series, *newest)
            except ValueError as exc:
                raise StoreError(f"stored data does not make a reading: {exc}") from exc
    return out
