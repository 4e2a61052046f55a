"""What the API and the hub's loops share: the config, profiles, store, registry, audit log
and ingest counters, plus the config-derived lookups the API needs.

HTTP-free: an unknown name raises :class:`coldchain.lookup.UnknownNameError` (the API maps
it to 404), a malformed series id :class:`ValueError` (the API's 422)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from alerts.service import AlertService
from coldchain.clock import WALL, Clock
from coldchain.config.site import SiteConfig
from coldchain.config.topology import site_points
from coldchain.lookup import unknown
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind
from coldchain.reading import SeriesId
from coldchain.store.base import Store
from gateway.configpush import ConfigState
from gateway.ingest import IngestStats
from gateway.registry import Registry
from hub.audit import AuditLog
from hub.model import PointOut
from hub.ordering import GatewayOrder


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
    config_state: Callable[[str], ConfigState] | None = None  # revisions pushed (set by the hub)
    order: GatewayOrder | None = None  # hub.share_group: batches judged in order (set by the hub)
    roles: tuple[str, ...] = ("ingest", "alerts", "web")  # what this hub process runs

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

    def reconfigure(self, cfg: SiteConfig) -> None:
        """Answer from ``cfg`` from now on (the hub took up a changed config)."""
        self.cfg = cfg
        self.__dict__.pop("_points", None)  # the cached points of the old one

    def points(self) -> list[PointOut]:
        return list(self._points.values())

    def series_id(self, text: str) -> SeriesId:
        """A known series. Raises :class:`ValueError` when ``text`` is no series id,
        :class:`~coldchain.lookup.UnknownNameError` when no point has it."""
        sid = SeriesId.parse(text)
        if sid not in self._points:
            raise unknown("series", text, [str(s) for s in self._points])
        return sid

    def kind_of(self, sid: SeriesId) -> PointKind:
        return PointKind(self._points[sid].kind)

    def check_filters(
        self, *, site: str | None = None, room: str | None = None, gateway: str | None = None
    ) -> None:
        sites = [s.id for s in self.cfg.sites]
        if site is not None and site not in sites:
            raise unknown("site", site, sites)
        if room is not None:
            rooms = [r.id for s in self.cfg.sites if site in (None, s.id) for r in s.rooms]
            if room not in rooms:
                raise unknown("room", room, rooms)
        if gateway is not None:
            gws = [g.id for g in self.cfg.gateways]
            if gateway not in gws:
                raise unknown("gateway", gateway, gws)
