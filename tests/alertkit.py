"""A small site for alert tests: one chilled room with a transmitter, a controller (air,
evaporator, defrost) and a DI module (two doors, mains); and helpers to feed it."""

from __future__ import annotations

from typing import Any

from coldchain.alerting.evaluator import Evaluator, Transition
from coldchain.alerting.watches import build_watches, effective_rules
from coldchain.config.site import SiteConfig
from coldchain.config.topology import site_points
from coldchain.reading import Quality, Reading, SeriesId
from tests.sites import device, one_gateway_site, room, rtu_bus, shipped_profiles

MIN = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, 08:00 in Shanghai

PROFILES = shipped_profiles()


def site(**alerts: Any) -> dict[str, Any]:
    """The test site as a config dict; ``alerts`` go into the alerts section."""
    return one_gateway_site(
        site_name="双溪禽类冷库 Shuangxi poultry",
        rooms=[
            room("chill", "冷鲜禽 Chilled poultry"),
            room("other", "冻品库 Frozen", "frozen"),
        ],
        buses=[rtu_bus()],
        devices=[
            device("probe", "xy-md02", unit_id=1, room="chill"),
            device("ctl", "dixell-xr60cx", unit_id=2, room="chill"),
            device(
                "di",
                "waveshare-modbus-rtu-io-8ch-mains",
                unit_id=3,
                room="chill",
                points={f"door_{i}": {"enabled": False} for i in range(2, 8)},
            ),
            device("fz", "xy-md02", unit_id=4, room="other"),
        ],
        contacts=[
            {"id": f"c{i}", "name": f"Contact {i}", "phone": f"+861380000000{i}"}
            for i in range(1, 5)
        ],
        alerts=alerts,
    )


def config(**alerts: Any) -> SiteConfig:
    return SiteConfig.model_validate(site(**alerts))


def evaluator(cfg: SiteConfig | None = None, *, now_ms: int = T0) -> Evaluator:
    cfg = cfg or config()
    points = site_points(cfg, PROFILES)
    return Evaluator(cfg, points, build_watches(cfg, points, effective_rules(cfg)), now_ms=now_ms)


def r(series: str, ts_ms: int, value: float | None, quality: Quality = Quality.GOOD) -> Reading:
    """A reading of ``device/point`` on gw1 at s1."""
    device, point = series.split("/")
    reason = None if quality is Quality.GOOD else "probe open"
    return Reading(SeriesId("s1", "gw1", device, point), ts_ms, value, quality, reason)


def changes(ts: list[Transition]) -> list[tuple[str, str]]:
    """(rule/tier, change) of each transition, in order."""
    return [("/".join(t.key.split("/")[:2]), t.to) for t in ts]


class Run:
    """Feeds an evaluator minute by minute and collects what changed."""

    def __init__(self, ev: Evaluator, t_ms: int = T0) -> None:
        self.ev, self.t, self.out = ev, t_ms, list[Transition]()

    def at(self, minutes: float, *readings: tuple[str, float | None]) -> list[Transition]:
        t = T0 + round(minutes * MIN)
        got = self.ev.feed([r(s, t, v) for s, v in readings]) + self.ev.tick(t)
        self.out += got
        self.t = t
        return got

    def until(self, minutes: float, step: float = 0.5, **fixed: float) -> None:
        """Advance to ``minutes``, feeding ``fixed`` values (device__point=value) each step."""
        m = (self.t - T0) / MIN
        while m < minutes:
            m = min(minutes, m + step)
            self.at(m, *((k.replace("__", "/"), v) for k, v in fixed.items()))
