"""What every generated dashboard shares: the site's points by room, stable uids, and the
grafanalib ``Dashboard`` with its JSON."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard, Time

from coldchain.config.site import SiteConfig
from coldchain.config.topology import PointInfo
from coldchain.profiles.schema import PointKind, PointRole
from dashboards.grafana.datasources import Datasource

SCHEMA_VERSION = 39  # Grafana 10/11; panels are written in that shape
UID_MAX = 40  # Grafana's limit
MIN_FRESH_S = 900
FLAVOUR = {"prometheus": "VictoriaMetrics", "flux": "InfluxDB"}


@dataclass(frozen=True, slots=True)
class RoomPoints:
    """A room's series that dashboards show (room-air temperature and humidity, doors)."""

    temperature: list[PointInfo]
    humidity: list[PointInfo]
    door: list[PointInfo]


def room_points(points: Sequence[PointInfo], site: str, room: str) -> RoomPoints:
    """The room's points by kind; temperature and humidity only where they measure the room's
    air (role ``room``, as the alert rules use), not an evaporator or product probe."""
    mine = [p for p in points if p.site == site and p.room == room]

    def air(kind: PointKind) -> list[PointInfo]:
        return [p for p in mine if p.kind is kind and p.role is PointRole.ROOM]

    return RoomPoints(
        temperature=air(PointKind.TEMPERATURE),
        humidity=air(PointKind.HUMIDITY),
        door=[p for p in mine if p.kind is PointKind.DOOR],
    )


def fresh_window(cfg: SiteConfig) -> str:
    """How far back a stat looks for the newest value: 15 minutes, or three times the longest
    gap between a point's reports (``agent.max_silence``, a device's ``poll_interval``), so a
    live probe always has a value there and a silent one shows "no reading", not a stale one."""
    gaps = [cfg.agent.max_silence, *(d.poll_interval for g in cfg.gateways for d in g.devices)]
    seconds = math.ceil(max(MIN_FRESH_S, 3 * max(gaps)))
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def stable_uid(*parts: str) -> str:
    """``coldchain-<parts>``; over Grafana's 40 characters, cut and ended by a hash."""
    text = "-".join(["coldchain", *parts])
    if len(text) <= UID_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: UID_MAX - 9]}-{digest}"


def site_uid(source: Datasource, site_id: str) -> str:
    return stable_uid(source.key, "site", site_id)


def dashboard(
    *,
    title: str,
    uid: str,
    source: Datasource,
    panels: list[Any],
    tags: list[str],
    timezone: str = "browser",
    since: str = "now-24h",
    refresh: str = "1m",
    description: str = "",
) -> dict[str, Any]:
    """The dashboard's JSON model (panel ids numbered in order)."""
    board = Dashboard(
        title=f"{title} ({FLAVOUR[source.key]})",
        uid=uid,
        description=description,
        panels=panels,
        tags=["coldchain", source.key, *tags],
        timezone=timezone,
        time=Time(since, "now"),
        refresh=refresh,
        schemaVersion=SCHEMA_VERSION,
        editable=False,
        links=[
            {
                "type": "dashboards",
                "title": "coldchain",
                "tags": ["coldchain", source.key],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
            }
        ],
    ).auto_panel_ids()
    data: dict[str, Any] = json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder))
    return data
