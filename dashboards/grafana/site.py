"""One dashboard per site: a row per room with its temperature and humidity (limits drawn
as threshold lines) and its doors as a state timeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coldchain.config.site import Room, Site
from coldchain.config.topology import PointInfo
from dashboards.grafana.common import RoomPoints, dashboard, room_points, site_uid
from dashboards.grafana.panels import (
    HUMIDITY_COLOURS,
    TEMPERATURE_COLOURS,
    Layout,
    band_text,
    door_panel,
    series_panel,
    steps,
)
from dashboards.grafana.queries import Queries


def room_panels(q: Queries, room: Room, mine: RoomPoints, layout: Layout) -> list[Any]:
    limits = room.effective_limits
    panels = [layout.row(f"{room.name} · {room.id}")]
    width = 12 if mine.humidity and mine.temperature else 24
    if mine.temperature:
        band = limits.temperature
        title = f"Temperature ({band_text(band, '°C')})"
        panels.append(
            series_panel(
                q,
                title,
                mine.temperature,
                unit="celsius",
                thresholds=steps(band, TEMPERATURE_COLOURS),
                pos=layout.place(width, 8),
            )
        )
    if mine.humidity:
        title = f"Humidity ({band_text(limits.humidity, '%RH')})"
        panels.append(
            series_panel(
                q,
                title,
                mine.humidity,
                unit="humidity",
                thresholds=steps(limits.humidity, HUMIDITY_COLOURS),
                pos=layout.place(width, 8),
            )
        )
    if mine.door:
        layout.newline()
        panels.append(door_panel(q, "Doors", mine.door, layout.place(24, 2 + 2 * len(mine.door))))
    layout.newline()
    return panels


def site_dashboard(site: Site, points: Sequence[PointInfo], q: Queries) -> dict[str, Any]:
    layout = Layout()
    panels: list[Any] = []
    for room in site.rooms:
        panels += room_panels(q, room, room_points(points, site.id, room.id), layout)
    return dashboard(
        title=site.name,
        uid=site_uid(q.source, site.id),
        source=q.source,
        panels=panels,
        tags=["site", site.id],
        timezone=site.timezone,
        description=f"Site {site.id}: room-air temperature and humidity against the limits, doors.",
    )
