"""Which readings are news that should not wait for a batch (issue 16, "state changes at
once"): a door, alarm, defrost, power or status point that changed its value, or a room's
air temperature that crossed one of the room's limits (as the agent knows them from its
config), either way. The agent commits the readings waiting with such a reading at once,
without waiting out the commit window, and the uplink sends them as soon as they are stored;
at most :data:`URGENT_PER_S` times a second on average (:class:`Budget`), so a flapping input
cannot flood a metered link; past it they wait for the window like ordinary readings.

Only a change is news: the first value of a series after the agent starts is not (nothing
known to change from), and a heartbeat repeating a state is not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from coldchain.config.site import SiteConfig
from coldchain.config.topology import PointInfo
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.reading import Reading, SeriesId

URGENT_PER_S = 4.0
"""Early commits for news, a second on average at most (a door flapping at the speed of its
poll cannot flood a metered 4G link)."""
URGENT_BURST = 4.0

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


class Budget:
    """A token bucket: :meth:`take` says whether news may go early now, at most
    ``per_s`` a second on average after a burst of ``burst``."""

    def __init__(
        self,
        per_s: float = URGENT_PER_S,
        burst: float = URGENT_BURST,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_s, self.burst, self._monotonic = per_s, burst, monotonic
        self._tokens, self._at = burst, monotonic()

    def take(self) -> bool:
        now = self._monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_s)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
