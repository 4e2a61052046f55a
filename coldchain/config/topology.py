"""The points a site config reads, with where they are and what they measure.

Derived once from the config and the profiles; the hub's ingest and API, the alert
evaluator and the tests all need the same list. Each point also knows the values it can
plausibly carry (:attr:`PointInfo.bounds`): its profile's ``valid_range`` where one is
given, else the physical plausibility of its kind (:data:`PLAUSIBLE`). The hub stores a
value outside them as a bad reading, whatever the gateway says about it.
"""

from __future__ import annotations

from dataclasses import dataclass

from coldchain.config.site import Room, Site, SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.reading import SeriesId

PLAUSIBLE: dict[PointKind, tuple[float, float]] = {
    PointKind.TEMPERATURE: (-100.0, 200.0),  # °C: no cold store, probe or cabinet outside it
    PointKind.SETPOINT: (-100.0, 200.0),  # °C, as the temperatures it sets
    PointKind.HUMIDITY: (0.0, 100.0),  # %RH
    PointKind.DOOR: (0.0, 1.0),  # 1 open, 0 closed
    PointKind.DEFROST: (0.0, 1.0),  # 1 defrosting
    PointKind.POWER: (0.0, 1.0),  # 1 mains present
    PointKind.ALARM: (-(2.0**31), 2.0**32 - 1),  # a flag or an alarm word: any register value
    PointKind.STATUS: (-(2.0**31), 2.0**32 - 1),  # a status code or reading of a register
    PointKind.COUNTER: (0.0, 2.0**53),  # counts up from 0; beyond 2^53 a float loses units
}
"""Physically plausible values of each kind, for points whose profile gives no
``valid_range``. Every kind has an entry (``tests/test_ingest_values.py`` checks)."""


BOUNDS_SLACK = 1e-6
"""How far past its :attr:`PointInfo.bounds` a value is still taken as inside: the agent
rounds a calibrated value to 6 decimals (``edge_agent/calibration.py``), so a reading at the
edge of its range may land one float step outside ``hi + calibration``."""


@dataclass(frozen=True, slots=True)
class PointInfo:
    """One enabled point of one device: a series."""

    sid: SeriesId
    room: str
    kind: PointKind
    role: PointRole
    unit: str
    calibration: float
    valid_range: tuple[float, float] | None = None  # the profile's, before calibration
    device_name: str = ""  # the device's name in the config (its id when it has none)

    @property
    def bounds(self) -> tuple[float, float]:
        """The values this point's readings can plausibly carry, calibration included: the
        profile's ``valid_range`` (what the sensor can measure) where given, else the
        plausible range of its kind."""
        lo, hi = self.valid_range if self.valid_range is not None else PLAUSIBLE[self.kind]
        return lo + self.calibration, hi + self.calibration

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
                        valid_range=p.valid_range,
                        device_name=d.name or d.id,
                    )
                )
    return out


def rooms(cfg: SiteConfig) -> dict[tuple[str, str], tuple[Site, Room]]:
    """(site id, room id) -> the site and the room."""
    return {(s.id, r.id): (s, r) for s in cfg.sites for r in s.rooms}
