"""The overview: every room's newest room-air temperatures (of the last 15 minutes, longer
where devices report less often), coloured by the room's limits, a row per site; each tile
links to its site's dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coldchain.config.site import SiteConfig
from coldchain.config.topology import PointInfo
from dashboards.grafana.common import dashboard, fresh_window, room_points, site_uid, stable_uid
from dashboards.grafana.panels import (
    SERIES_NAME,
    TEMPERATURE_COLOURS,
    Layout,
    band_text,
    stat_panel,
    steps,
)
from dashboards.grafana.queries import Queries


def overview(cfg: SiteConfig, points: Sequence[PointInfo], q: Queries) -> dict[str, Any]:
    layout = Layout()
    fresh = fresh_window(cfg)
    panels: list[Any] = []
    for site in cfg.sites:
        panels.append(layout.row(site.name))
        link = [{"title": site.name, "url": f"/d/{site_uid(q.source, site.id)}"}]
        for room in site.rooms:
            temps = room_points(points, site.id, room.id).temperature
            if not temps:
                continue  # nothing measures the room's air: nothing to show
            band = room.effective_limits.temperature
            panels.append(
                stat_panel(
                    q,
                    f"{room.name} ({band_text(band, '°C')})",
                    [q.readings(temps)],
                    unit="celsius",
                    thresholds=steps(band, TEMPERATURE_COLOURS),
                    pos=layout.place(6, 5),
                    links=link,
                    display_name=SERIES_NAME,
                    fresh=fresh,
                )
            )
        layout.newline()
    return dashboard(
        title="coldchain overview",
        uid=stable_uid(q.source.key, "overview"),
        source=q.source,
        panels=panels,
        tags=["overview"],
        since=f"now-{fresh}",
        refresh="30s",
        description="Every room's room-air temperature probes, coloured by the room's limits.",
    )
