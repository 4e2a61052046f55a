"""What the live board shows: one tile per room, built from the snapshot the alert side
publishes (:class:`~coldchain.alerting.snapshot.AlertSnapshot`: the open alerts, the latest
reading of every series, each room's defrost and maintenance state) and the gateway
registry. Pure apart from reading those; no store query and no reach into the evaluator, so
a tile costs microseconds and the board can be rebuilt on every ingest."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from coldchain.alerting.messages import display_name
from coldchain.alerting.snapshot import AlertSnapshot, SeriesNow
from coldchain.config.site import SiteConfig
from coldchain.config.topology import PointInfo, site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind, PointRole
from dashboards.web.i18n import Lang, condition
from gateway.registry import Registry

STALE_MS: Final = 5 * 60_000  # a room silent this long shows offline (as sensor-stale fires)
SHOWN: Final = ("firing", "acknowledged")  # alerts a tile lists (pending ones may cancel)


class LiveEvents:
    """Wakes every live-board stream when readings are committed or alerts change."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()
        self.closed = False

    def publish(self) -> None:
        for ev in self._waiters:
            ev.set()

    def subscribe(self) -> asyncio.Event:
        ev = asyncio.Event()
        self._waiters.add(ev)
        return ev

    def unsubscribe(self, ev: asyncio.Event) -> None:
        self._waiters.discard(ev)

    def close(self) -> None:
        """End every stream (the hub is stopping: an open stream would hold uvicorn)."""
        self.closed = True
        self.publish()


@dataclass(slots=True)
class TileAlert:
    id: int
    rule: str
    what: str  # the condition in words
    severity: str
    state: str
    since_ms: int


@dataclass(slots=True)
class Tile:
    site: str
    room: str
    name: str
    site_name: str
    state: str
    temperature: float | None = None
    humidity: float | None = None
    door_open: bool | None = None
    door_since_ms: int | None = None
    last_ms: int | None = None
    alerts: list[TileAlert] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.site}/{self.room}"


class AlertSource(Protocol):
    """What the board needs of the alert side (the hub's ``AlertService``)."""

    def snapshot(self) -> AlertSnapshot: ...


class Board:
    """Builds the tiles of every room."""

    def __init__(
        self,
        cfg: SiteConfig,
        profiles: ProfileRegistry,
        registry: Registry,
        alerts: AlertSource,
    ) -> None:
        self.cfg, self.registry, self.alerts = cfg, registry, alerts
        self._points: dict[tuple[str, str], list[PointInfo]] = {}
        for p in site_points(cfg, profiles):
            self._points.setdefault((p.sid.site, p.room), []).append(p)

    def points(self, site: str, room: str) -> list[PointInfo]:
        return self._points.get((site, room), [])

    def tiles(self, now_ms: int, lang: Lang) -> list[Tile]:
        snap = self.alerts.snapshot()
        online = {g.id: g.state == "online" for g in self.registry.all()}
        by_room: dict[tuple[str, str], list[TileAlert]] = {}
        for a in snap.alerts:  # by id
            if a.state in SHOWN and a.room is not None:
                what = condition(a.kind, a.quantity, a.direction, lang)
                by_room.setdefault((a.site, a.room), []).append(
                    TileAlert(a.id, a.rule, what, a.severity, a.state, a.since_ms)
                )
        out = []
        for site in self.cfg.sites:
            for room in site.rooms:
                tile = Tile(
                    site=site.id,
                    room=room.id,
                    name=display_name(room.name, lang),
                    site_name=display_name(site.name, lang),
                    state="ok",
                    alerts=by_room.get((site.id, room.id), []),
                )
                self._fill(tile, snap, online, now_ms)
                out.append(tile)
        return out

    def _fill(self, tile: Tile, snap: AlertSnapshot, online: dict[str, bool], now_ms: int) -> None:
        points = self.points(tile.site, tile.room)
        gateways = {p.sid.gateway for p in points}
        self._values(tile, points, snap.series)
        room = snap.room(tile.site, tile.room)
        severities = {a.severity for a in tile.alerts}
        offline = (gateways and not any(online.get(g, False) for g in gateways)) or (
            tile.last_ms is None or now_ms - tile.last_ms > STALE_MS
        )
        if "alarm" in severities:
            tile.state = "alarm"
        elif offline:
            tile.state = "offline"
        elif severities:
            tile.state = "warning"
        elif (room.maintenance_until_ms or 0) > now_ms:
            tile.state = "maintenance"
        elif room.defrosting:
            tile.state = "defrost"

    def _values(self, tile: Tile, points: list[PointInfo], series: Mapping[str, SeriesNow]) -> None:
        """Room air temperature and humidity, door state and since when, last reading."""
        for p in points:
            v = series.get(str(p.sid))
            if v is None or v.ts_ms is None:
                continue
            tile.last_ms = max(tile.last_ms or 0, v.ts_ms)
            good = v.value if v.good else None
            if p.kind is PointKind.TEMPERATURE and p.role is PointRole.ROOM:
                tile.temperature = good if tile.temperature is None else tile.temperature
            elif p.kind is PointKind.HUMIDITY and p.role is PointRole.ROOM:
                tile.humidity = good if tile.humidity is None else tile.humidity
            elif p.kind is PointKind.DOOR and v.value is not None:
                is_open = v.value >= 0.5
                if tile.door_open is None or (is_open and not tile.door_open):
                    tile.door_open, tile.door_since_ms = is_open, v.changed_ms
