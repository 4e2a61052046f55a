"""The simulation clock: simulated time runs ``speed`` times faster than wall time.

Physics (thermal model, sorting line) follows the simulated clock; protocol timing (Modbus
replies, MQTT publish intervals) stays on wall time. Both sources are injectable so tests can
drive time by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Simulated UTC epoch seconds, ``speed`` times faster than the monotonic wall clock."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        start: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be above 0, got {speed:g}")
        self.speed = speed
        self._monotonic = monotonic
        self._wall = wall
        self._m0 = monotonic()
        self.start = wall() if start is None else start

    def now(self) -> float:
        """Simulated time, UTC epoch seconds."""
        return self.start + (self._monotonic() - self._m0) * self.speed

    def wall(self) -> float:
        """Wall time, UTC epoch seconds."""
        return self._wall()

    def elapsed_wall(self) -> float:
        """Wall seconds since the clock started (monotonic)."""
        return self._monotonic() - self._m0
