"""The simulation's clock: a :class:`coldchain.clock.Clock` (the one the agents and the hub
share in a demo or a test) plus what the simulator reports about wall time.

Physics (thermal model, sorting line), the transmitters' measurement cycle and the MQTT
sensors' report interval follow the clock; the wire (Modbus RTU frame timing at the bus's
baud, TCP, MQTT keepalives) stays on wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from coldchain.clock import WALL, Clock, ScaledClock


def clock_for(speed: float = 1.0, start: float | None = None) -> Clock:
    """Wall time at speed 1 from now, else a scaled clock starting at ``start`` (now)."""
    if speed == 1.0 and start is None:
        return WALL
    return ScaledClock(speed=speed, start=start)


class SimClock:
    """Simulated UTC epoch seconds from ``clock``; wall seconds elapsed since the start."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        speed: float = 1.0,
        start: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be above 0, got {speed:g}")
        self.clock = clock if clock is not None else clock_for(speed, start)
        self._monotonic = monotonic
        self._wall = wall
        self._m0 = monotonic()
        self.start = self.clock.now()

    @property
    def speed(self) -> float:
        return self.clock.speed

    def now(self) -> float:
        """Simulated time, UTC epoch seconds."""
        return self.clock.now()

    def wall(self) -> float:
        """Wall time, UTC epoch seconds."""
        return self._wall()

    def elapsed_wall(self) -> float:
        """Wall seconds since the clock started (monotonic)."""
        return self._monotonic() - self._m0
