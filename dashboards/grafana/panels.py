"""Panels (grafanalib) and their layout: limits as threshold steps, time series, door
timelines, room stats. Queries come from :mod:`dashboards.grafana.queries`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafanalib.core import GridPos, RowPanel, Stat, StateTimeline, TimeSeries

from coldchain.config.limits import Band
from coldchain.config.topology import PointInfo
from dashboards.grafana.queries import Queries, Target

Steps = list[dict[str, Any]]
TEMPERATURE_COLOURS = ("blue", "green", "red")  # too cold, within limits, too warm
HUMIDITY_COLOURS = ("orange", "green", "blue")  # too dry, within limits, too wet
SERIES_NAME = "${__field.labels.device} ${__field.labels.point}"
DOOR_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "closed", "color": "green", "index": 0},
            "1": {"text": "open", "color": "orange", "index": 1},
        },
    }
]


def steps(band: Band | None, colours: tuple[str, str, str]) -> Steps:
    """Threshold steps of a band: below ``low``, from ``low``, from ``high`` (Grafana colours
    a value from the step at or below it, so a value equal to ``high`` shows as above)."""
    below, inside, above = colours
    if band is None:
        return [{"color": inside, "value": None}]
    out: Steps = [{"color": below if band.low is not None else inside, "value": None}]
    if band.low is not None:
        out.append({"color": inside, "value": band.low})
    if band.high is not None:
        out.append({"color": above, "value": band.high})
    return out


def band_text(band: Band | None, unit: str) -> str:
    if band is None:
        return "no limits"
    low = "" if band.low is None else f"{band.low:g}"
    high = "" if band.high is None else f"{band.high:g}"
    if band.low is None:
        return f"≤ {high} {unit}"
    if band.high is None:
        return f"≥ {low} {unit}"
    return f"{low} to {high} {unit}"


@dataclass
class Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping lines."""

    x: int = 0
    y: int = 0
    line_height: int = 0

    def place(self, w: int, h: int) -> Any:
        if self.x + w > 24:
            self.newline()
        pos = GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.line_height = max(self.line_height, h)
        return pos

    def newline(self) -> None:
        self.y += self.line_height
        self.x = self.line_height = 0

    def row(self, title: str) -> Any:
        if self.x:
            self.newline()
        pos = GridPos(h=1, w=24, x=0, y=self.y)
        self.y += 1
        return RowPanel(title=title, gridPos=pos)


def series_panel(
    q: Queries,
    title: str,
    points: Sequence[PointInfo],
    *,
    unit: str,
    thresholds: Steps,
    pos: Any,
) -> Any:
    """A time series of ``points`` with the limits drawn as threshold lines."""
    return TimeSeries(
        title=title,
        dataSource=q.source.ref,
        targets=[q.readings(points)],
        gridPos=pos,
        unit=unit,
        thresholds=thresholds,
        thresholdsStyleMode="line",
        legendDisplayMode="table",
        legendPlacement="right",
        legendCalcs=["min", "max", "mean", "lastNotNull"],
        maxDataPoints=1000,
        extraJson={"fieldConfig": {"defaults": {"displayName": SERIES_NAME}}},
    )


def door_panel(q: Queries, title: str, points: Sequence[PointInfo], pos: Any) -> Any:
    """Door state (0 closed, 1 open) of ``points`` as a state timeline."""
    return StateTimeline(
        title=title,
        dataSource=q.source.ref,
        targets=[q.readings(points)],
        gridPos=pos,
        mappings=DOOR_MAPPINGS,
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
        maxDataPoints=1000,
        extraJson={"fieldConfig": {"defaults": {"displayName": SERIES_NAME}}},
    )


def stat_panel(
    q: Queries,
    title: str,
    targets: list[Target],
    *,
    unit: str,
    thresholds: Steps,
    pos: Any,
    links: list[dict[str, str]] | None = None,
    fresh: str,
    display_name: str | None = None,
) -> Any:
    """The newest value of each series in the last ``fresh`` (a Grafana relative time such
    as ``15m``: older values show as "no reading"), coloured by ``thresholds``."""
    extra = {"fieldConfig": {"defaults": {"displayName": display_name}}} if display_name else None
    return Stat(
        title=title,
        dataSource=q.source.ref,
        targets=targets,
        gridPos=pos,
        color={"mode": "thresholds"},
        colorMode="background",
        decimals=1 if unit == "celsius" else None,
        format=unit,
        graphMode="area",
        noValue="no reading",
        reduceCalc="lastNotNull",
        textMode="value_and_name",
        thresholds=thresholds,
        links=links or [],
        timeFrom=fresh,
        extraJson=extra,
    )


def metrics_panel(q: Queries, title: str, unit: str, targets: list[Target], pos: Any) -> Any:
    """A plain time series of the hub's metrics."""
    return TimeSeries(title=title, dataSource=q.source.ref, targets=targets, gridPos=pos, unit=unit)
