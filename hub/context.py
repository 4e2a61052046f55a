"""What the API and the hub's loops share: the config, profiles, store, registry, audit log
and ingest counters, plus the config-derived lookups the API needs."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from fastapi import HTTPException

from alerts.service import AlertService
from coldchain.clock import WALL, Clock
from coldchain.config.site import SiteConfig
from coldchain.config.topology import site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind
from coldchain.reading import SeriesId
from coldchain.store.base import Store
from gateway.ingest import IngestStats
from gateway.registry import Registry
from hub.audit import AuditLog
from hub.model import PointOut


def not_found(what: str, name: str, known: Iterable[str]) -> HTTPException:
    """A 404 naming what was not found, and the closest known name."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return HTTPException(404, f"no {what} {name!r}{hint}")


@dataclass
class HubContext:
    cfg: SiteConfig
    profiles: ProfileRegistry
    store: Store
    registry: Registry
    audit: AuditLog
    ingest: IngestStats = field(default_factory=IngestStats)
    alerts: AlertService | None = None  # set by the hub once built
    clock: Clock = WALL  # "now" of default time ranges: the hub's clock (coldchain.clock)

    @cached_property
    def _points(self) -> dict[SeriesId, PointOut]:
        return {
            p.sid: PointOut(
                series=str(p.sid),
                site=p.site,
                room=p.room,
                gateway=p.gateway,
                device=p.sid.device,
                point=p.sid.point,
                kind=str(p.kind),
                unit=p.unit,
                calibration=p.calibration,
            )
            for p in site_points(self.cfg, self.profiles)
        }

    def points(self) -> list[PointOut]:
        return list(self._points.values())

    def series_id(self, text: str) -> SeriesId:
        """A known series, or a 404/422 that says what is wrong."""
        try:
            sid = SeriesId.parse(text)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if sid not in self._points:
            raise not_found("series", text, [str(s) for s in self._points])
        return sid

    def kind_of(self, sid: SeriesId) -> PointKind:
        return PointKind(self._points[sid].kind)

    def check_filters(
        self, *, site: str | None = None, room: str | None = None, gateway: str | None = None
    ) -> None:
        sites = [s.id for s in self.cfg.sites]
        if site is not None and site not in sites:
            raise not_found("site", site, sites)
        if room is not None:
            rooms = [r.id for s in self.cfg.sites if site in (None, s.id) for r in s.rooms]
            if room not in rooms:
                raise not_found("room", room, rooms)
        if gateway is not None:
            gws = [g.id for g in self.cfg.gateways]
            if gateway not in gws:
                raise not_found("gateway", gateway, gws)
