"""The ground-truth journal: every value the simulator served, per series, bounded.

End-to-end tests compare what the hub stored with what the devices actually served at that
moment. A series is ``site/gateway/device/point`` (as :class:`coldchain.reading.SeriesId`).
A value is recorded when it changes, so the journal is a step function: the value served at
wall time ``t`` is the last entry at or before ``t`` (:meth:`Journal.value_at`).
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    """One served value: simulated and wall time (UTC epoch ms), value or the fault reason."""

    sim_ms: int
    wall_ms: int
    value: float | None
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "sim_ms": self.sim_ms,
            "wall_ms": self.wall_ms,
            "value": self.value,
            "reason": self.reason,
        }


class Journal:
    """Per-series ring buffers of served values."""

    def __init__(self, maxlen: int = 3600) -> None:
        if maxlen < 1:
            raise ValueError(f"journal maxlen must be at least 1, got {maxlen}")
        self.maxlen = maxlen
        self._series: dict[str, deque[Entry]] = {}

    def record(
        self,
        series: str,
        *,
        sim_ms: int,
        wall_ms: int,
        value: float | None,
        reason: str | None = None,
        always: bool = False,
    ) -> bool:
        """Append unless it repeats the last value (or ``always``); return whether it did."""
        ring = self._series.get(series)
        if ring is None:
            ring = self._series[series] = deque(maxlen=self.maxlen)
        if ring and not always and ring[-1].value == value and ring[-1].reason == reason:
            return False
        ring.append(Entry(sim_ms, wall_ms, value, reason))
        return True

    def series(self) -> list[str]:
        return sorted(self._series)

    def entries(self, series: str, *, since_wall_ms: int | None = None) -> list[Entry]:
        """Entries of a series, oldest first; raise ``KeyError`` naming known series."""
        ring = self._series.get(series)
        if ring is None:
            raise KeyError(f"no series {series!r} in the journal ({len(self._series)} known)")
        if since_wall_ms is None:
            return list(ring)
        return [e for e in ring if e.wall_ms >= since_wall_ms]

    def latest(self, series: str) -> Entry | None:
        ring = self._series.get(series)
        return ring[-1] if ring else None

    def value_at(self, series: str, wall_ms: int) -> Entry | None:
        """The entry in effect at wall time ``wall_ms`` (None if before the journal starts)."""
        ring = list(self._series.get(series, ()))
        i = bisect.bisect_right([e.wall_ms for e in ring], wall_ms)
        return ring[i - 1] if i else None
