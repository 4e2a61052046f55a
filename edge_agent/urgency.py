"""Which readings are news that should not wait for a batch (issue 16, "state changes at
once"): a door, alarm, defrost, power or status point that changed its value, or a room's
air temperature that crossed one of the room's limits (as the agent knows them from its
config), either way. The uplink sends the batch holding such a reading at once, within a
bound (:data:`edge_agent.uplink.URGENT_PER_S`), and lets ordinary readings batch as before.

Only a change is news: the first value of a series after the agent starts is not (nothing
known to change from), and a heartbeat repeating a state is not.
"""

from __future__ import annotations

from collections.abc import Iterable

from coldchain.config.site import SiteConfig
from coldchain.config.topology import PointInfo
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.reading import Reading, SeriesId

STATE_KINDS = frozenset(
    {PointKind.DOOR, PointKind.ALARM, PointKind.DEFROST, PointKind.POWER, PointKind.STATUS}
)


class Urgency:
    """Remembers each watched series' last value; :meth:`news` says whether readings hold a
    change worth sending at once."""

    def __init__(self, cfg: SiteConfig, points: Iterable[PointInfo]) -> None:
        self._states: set[SeriesId] = set()
        self._limits: dict[SeriesId, tuple[float | None, float | None]] = {}
        self._last: dict[SeriesId, float | None] = {}
        self.retune(cfg, points)

    def retune(self, cfg: SiteConfig, points: Iterable[PointInfo]) -> None:
        """The series to watch and the rooms' limits (a new config); values known are kept."""
        bands = {(s.id, r.id): r.effective_limits.temperature for s in cfg.sites for r in s.rooms}
        self._states, self._limits = set(), {}
        for p in points:
            if p.kind in STATE_KINDS:
                self._states.add(p.sid)
            elif p.kind is PointKind.TEMPERATURE and p.role is PointRole.ROOM:
                band = bands.get((p.sid.site, p.room))
                if band is not None:
                    self._limits[p.sid] = (band.low, band.high)

    def news(self, readings: Iterable[Reading]) -> bool:
        """Whether any of ``readings`` is a state change or a limit crossed (and remember
        them all)."""
        urgent = False
        for r in readings:
            sid = r.series
            if sid in self._states:
                before = self._last.get(sid, r.value)
                urgent = urgent or (sid in self._last and before != r.value)
                self._last[sid] = r.value
            elif sid in self._limits:
                before = self._last.get(sid)
                if before is not None and r.value is not None:
                    urgent = urgent or self._side(sid, before) != self._side(sid, r.value)
                self._last[sid] = r.value
        return urgent

    def _side(self, sid: SeriesId, value: float) -> int:
        """-1 below the low limit, 1 above the high one, 0 inside."""
        low, high = self._limits[sid]
        if high is not None and value > high:
            return 1
        if low is not None and value < low:
            return -1
        return 0
