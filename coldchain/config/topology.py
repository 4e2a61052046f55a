"""The points a site config reads, with where they are and what they measure.

Derived once from the config and the profiles; the hub's ingest and API, the alert
evaluator and the tests all need the same list.
"""

from __future__ import annotations

from dataclasses import dataclass

from coldchain.config.site import Room, Site, SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.reading import SeriesId


@dataclass(frozen=True, slots=True)
class PointInfo:
    """One enabled point of one device: a series."""

    sid: SeriesId
    room: str
    kind: PointKind
    role: PointRole
    unit: str
    calibration: float

    @property
    def site(self) -> str:
        return self.sid.site

    @property
    def gateway(self) -> str:
        return self.sid.gateway


def site_points(cfg: SiteConfig, profiles: ProfileRegistry) -> list[PointInfo]:
    """Every enabled point of every device, in config order."""
    out: list[PointInfo] = []
    for gw in cfg.gateways:
        for d in gw.devices:
            for p in profiles.get(d.profile).points:
                o = d.points.get(p.name)
                if o is not None and not o.enabled:
                    continue
                out.append(
                    PointInfo(
                        sid=SeriesId(gw.site, gw.id, d.id, p.name),
                        room=d.room,
                        kind=p.kind,
                        role=p.role,
                        unit=p.unit,
                        calibration=o.calibration if o else 0.0,
                    )
                )
    return out


def rooms(cfg: SiteConfig) -> dict[tuple[str, str], tuple[Site, Room]]:
    """(site id, room id) -> the site and the room."""
    return {(s.id, r.id): (s, r) for s in cfg.sites for r in s.rooms}
