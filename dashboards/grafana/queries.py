"""Panel queries (Grafana targets) for each datasource, selecting exactly the config's series.

PromQL (VictoriaMetrics): the store's ``value`` field is the metric ``coldchain_value`` with
the tags ``site``, ``gateway``, ``device``, ``point`` as labels (see
:mod:`coldchain.store.lineproto.promql`); a panel's query is a union (``or``) of one exact
selector per series. Flux (InfluxDB 2): measurement ``coldchain``, field ``value``, one
``(r.site == ... and r.point == ...)`` clause per series. Only good readings carry ``value``.

The hub's own metrics come from its ``/metrics``: scraped by VictoriaMetrics / Prometheus
(names as exposed, counters with ``_total``), or by Telegraf's ``inputs.prometheus``
(``metric_version = 2``) into the bucket :data:`HUB_BUCKET`, measurement ``prometheus``, one
field per metric name. See docs/grafana.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from coldchain.config.topology import PointInfo
from coldchain.store.lineproto.flux import series_filter, string
from coldchain.store.lineproto.lines import MEASUREMENT, TAGS
from coldchain.store.lineproto.promql import VALUE, quote
from dashboards.grafana.datasources import HUB_BUCKET, Datasource

Target = dict[str, Any]
RANGE = "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)"
HUB_MEASUREMENT = "prometheus"  # Telegraf inputs.prometheus, metric_version = 2


@dataclass(frozen=True, slots=True)
class HubMetric:
    """One of the hub's /metrics series, as a panel shows it."""

    name: str  # as exposed, e.g. coldchain_ingest_readings_total
    legend: str
    labels: Mapping[str, str] = field(default_factory=dict)
    counter: bool = False  # shown as a per-second rate
    by: tuple[str, ...] = ()  # labels kept apart (one line each)


class Queries(Protocol):
    @property
    def source(self) -> Datasource: ...

    def readings(self, points: Sequence[PointInfo], ref_id: str = "A") -> Target: ...

    def hub(self, metric: HubMetric, ref_id: str = "A") -> Target: ...


def ref_ids(n: int) -> list[str]:
    """A, B, ... Z, AA, AB, ...: Grafana's refIds."""
    out = []
    for i in range(n):
        ref, j = "", i
        while True:
            ref = chr(ord("A") + j % 26) + ref
            j = j // 26 - 1
            if j < 0:
                break
        out.append(ref)
    return out


def prom_selector(metric: str, labels: Mapping[str, str]) -> str:
    """``metric{label="value",...}`` (always with braces, so it reads back alike)."""
    return metric + "{" + ",".join(f"{k}={quote(v)}" for k, v in labels.items()) + "}"


@dataclass(frozen=True, slots=True)
class PromQueries:
    source: Datasource

    def readings(self, points: Sequence[PointInfo], ref_id: str = "A") -> Target:
        parts = [prom_selector(VALUE, dict(zip(TAGS, p.sid, strict=True))) for p in points]
        return self._target(" or ".join(parts), "{{device}} {{point}}", ref_id)

    def hub(self, metric: HubMetric, ref_id: str = "A") -> Target:
        expr = prom_selector(metric.name, metric.labels)
        by = f" by ({', '.join(metric.by)})" if metric.by else ""
        if metric.counter:
            expr = f"sum{by} (rate({expr}[$__rate_interval]))"
        else:
            expr = f"max{by} ({expr})"
        legend = " ".join([metric.legend, *(f"{{{{{b}}}}}" for b in metric.by)])
        return self._target(expr, legend, ref_id)

    def _target(self, expr: str, legend: str, ref_id: str) -> Target:
        return {
            "datasource": self.source.ref,
            "editorMode": "code",
            "expr": expr,
            "legendFormat": legend,
            "range": True,
            "refId": ref_id,
        }


@dataclass(frozen=True, slots=True)
class FluxQueries:
    source: Datasource

    def readings(self, points: Sequence[PointInfo], ref_id: str = "A") -> Target:
        clauses = "\n     or ".join(f"({series_filter(p.sid)})" for p in points)
        query = "\n".join(
            [
                f"from(bucket: {string(self.source.bucket)})",
                RANGE,
                f"  |> filter(fn: (r) => r._measurement == {string(MEASUREMENT)}"
                ' and r._field == "value")',
                f"  |> filter(fn: (r) => {clauses})",
                "  |> aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)",
            ]
        )
        return self._target(query, ref_id)

    def hub(self, metric: HubMetric, ref_id: str = "A") -> Target:
        where = " and ".join(
            [
                f"r._measurement == {string(HUB_MEASUREMENT)}",
                f"r._field == {string(metric.name)}",
                *(f"r.{k} == {string(v)}" for k, v in metric.labels.items()),
            ]
        )
        lines = [f"from(bucket: {string(HUB_BUCKET)})", RANGE, f"  |> filter(fn: (r) => {where})"]
        if metric.counter:
            lines.append("  |> derivative(unit: 1s, nonNegative: true)")
        fn = "mean" if metric.counter else "last"
        lines.append(f"  |> aggregateWindow(every: v.windowPeriod, fn: {fn}, createEmpty: false)")
        return self._target("\n".join(lines), ref_id)

    def _target(self, query: str, ref_id: str) -> Target:
        return {"datasource": self.source.ref, "query": query, "refId": ref_id}


def queries_for(source: Datasource) -> Queries:
    return PromQueries(source) if source.key == "prometheus" else FluxQueries(source)
