"""What the live board shows: one tile per room, built from the snapshot the alert side
publishes (:class:`~coldchain.alerting.snapshot.AlertSnapshot`: the open alerts, the latest
reading of every series, each room's defrost and maintenance state) and the gateway
registry. Pure apart from reading those; no store query and no reach into the evaluator, so
a tile costs microseconds and the board can be rebuilt on every ingest."""

from __future__ import annotations

import asyncio
import re
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
TILE_ALERTS: Final = 5  # listed on a tile at most, alarms first; the rest are counted


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
class LineNow:
    """A sorting line as its PLC last said: ``state`` is e_stop, fault, jam, stopped or
    running (the first that holds, in that order)."""

    state: str
    speed: float | None = None  # belt m/s
    fault_code: int | None = None
    chutes_full: list[int] = field(default_factory=list)


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
    alerts: list[TileAlert] = field(default_factory=list)  # alarms first, then warnings
    more: int = 0  # open alerts of the room not listed (beyond TILE_ALERTS)
    line: LineNow | None = None  # a sorting hall's line

    @property
    def key(self) -> str:
        return f"{self.site}/{self.room}"


class AlertSource(Protocol):
    """What the board needs of the alert side (the hub's ``AlertService``)."""

    def snapshot(self) -> AlertSnapshot: ...


@dataclass(frozen=True, slots=True)
class _Shown:
    """What a room's tile reads: its gateways, and the series of its air temperature and
    humidity probes and its doors, in the site's order."""

    gateways: frozenset[str]
    temperatures: tuple[str, ...]
    humidities: tuple[str, ...]
    doors: tuple[str, ...]
    line: tuple[tuple[str, str], ...] = ()  # a sorting line's (point name, series)

    @classmethod
    def of(cls, points: list[PointInfo]) -> _Shown:
        def names(kind: PointKind, role: PointRole | None) -> tuple[str, ...]:
            return tuple(str(p.sid) for p in points if p.kind is kind and role in (None, p.role))

        return cls(
            gateways=frozenset(p.sid.gateway for p in points),
            temperatures=names(PointKind.TEMPERATURE, PointRole.ROOM),
            humidities=names(PointKind.HUMIDITY, PointRole.ROOM),
            doors=names(PointKind.DOOR, None),
            line=tuple(
                (p.sid.point, str(p.sid))
                for p in points
                if p.sid.point in LINE_POINTS or _CHUTE_FULL.fullmatch(p.sid.point)
            ),
        )


LINE_POINTS: Final = ("e_stop", "fault", "jam", "conveyor_running", "belt_speed", "fault_code")
"""A sorting line PLC's points the tile reads (docs/sorting-line-plc.md)."""
_CHUTE_FULL: Final = re.compile(r"chute_(\d+)_full")
_NOTHING_SHOWN = _Shown(frozenset(), (), (), ())


class Board:
    """Builds the tiles of every room. A tile costs the room's alerts and the few series it
    shows (the first air probe with a good value, the doors), not a pass over every point of
    the room: a room may have hundreds of probes, and the board is rebuilt on every commit."""

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
        self._shown = {key: _Shown.of(points) for key, points in self._points.items()}

    def points(self, site: str, room: str) -> list[PointInfo]:
        return self._points.get((site, room), [])

    def tiles(self, now_ms: int, lang: Lang) -> list[Tile]:
        snap = self.alerts.snapshot()
        online = {g.id: g.state == "online" for g in self.registry.all()}
        # by room: (its alarms, its other alerts), each kept to TILE_ALERTS, and how many
        by_room: dict[tuple[str, str], tuple[list[TileAlert], list[TileAlert], list[int]]] = {}
        for a in snap.alerts:  # by id
            if a.state not in SHOWN or a.room is None:
                continue
            room_alerts = by_room.get((a.site, a.room))
            if room_alerts is None:
                room_alerts = by_room[(a.site, a.room)] = ([], [], [0])
            room_alerts[2][0] += 1
            kept = room_alerts[0] if a.severity == "alarm" else room_alerts[1]
            if len(kept) < TILE_ALERTS:
                what = condition(a.kind, a.quantity, a.direction, lang)
                kept.append(TileAlert(a.id, a.rule, what, a.severity, a.state, a.since_ms))
        out = []
        for site in self.cfg.sites:
            for room in site.rooms:
                alarms, others, count = by_room.get((site.id, room.id), ([], [], [0]))
                listed = (alarms + others)[:TILE_ALERTS]
                tile = Tile(
                    site=site.id,
                    room=room.id,
                    name=display_name(room.name, lang),
                    site_name=display_name(site.name, lang),
                    state="ok",
                    alerts=listed,
                    more=count[0] - len(listed),
                )
                self._fill(tile, snap, online, now_ms)
                out.append(tile)
        return out

    def _fill(self, tile: Tile, snap: AlertSnapshot, online: dict[str, bool], now_ms: int) -> None:
        shown = self._shown.get((tile.site, tile.room), _NOTHING_SHOWN)
        gateways = shown.gateways
        room = snap.room(tile.site, tile.room)
        tile.last_ms = room.last_ms
        self._values(tile, shown, snap.series)
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

    @staticmethod
    def _values(tile: Tile, shown: _Shown, series: Mapping[str, SeriesNow]) -> None:
        """Room air temperature and humidity (of the first probe with a good value), door
        state and since when (open if any door is, since the first that opened)."""
        tile.temperature = _first_good(shown.temperatures, series)
        tile.humidity = _first_good(shown.humidities, series)
        for name in shown.doors:
            v = series.get(name)
            if v is None or v.ts_ms is None or v.value is None:
                continue
            is_open = v.value >= 0.5
            if tile.door_open is None or (is_open and not tile.door_open):
                tile.door_open, tile.door_since_ms = is_open, v.changed_ms
        if shown.line:
            tile.line = _line(shown.line, series)


def _line(points: tuple[tuple[str, str], ...], series: Mapping[str, SeriesNow]) -> LineNow | None:
    """The line's state from its PLC's latest values; None before it has said anything."""
    now: dict[str, float] = {}
    full = []
    for name, sid in points:
        v = series.get(sid)
        if v is None or v.value is None:
            continue
        now[name] = v.value
        m = _CHUTE_FULL.fullmatch(name)
        if m and v.value >= 0.5:
            full.append(int(m.group(1)))
    if "conveyor_running" not in now:
        return None
    flags = [f for f in ("e_stop", "fault", "jam") if now.get(f, 0.0) >= 0.5]
    state = flags[0] if flags else ("running" if now["conveyor_running"] >= 0.5 else "stopped")
    code = now.get("fault_code")
    return LineNow(
        state=state,
        speed=now.get("belt_speed"),
        fault_code=round(code) if code else None,
        chutes_full=sorted(full),
    )


def _first_good(names: tuple[str, ...], series: Mapping[str, SeriesNow]) -> float | None:
    for name in names:
        v = series.get(name)
        if v is not None and v.ts_ms is not None and v.good and v.value is not None:
            return v.value
    return None
