"""One clock for everything that keeps time: the simulator's physics, the agents' polling
and timestamps, the hub's rule delays, windows, hold-offs, escalation and SMS times.

A real deployment runs on :class:`WallClock` (the default everywhere). An accelerated run
(``coldchain demo --speed N``, ``coldchain simulate --speed N``) hands one
:class:`ScaledClock` to the simulator, the agents and the hub, so that a 60 s poll, a
15-minute rate window and a 15-minute alarm delay are all clock time, and an accelerated run
behaves as a real one would, only faster. Tests step a :class:`ManualClock` by hand.

Clock time is UTC epoch seconds (``now``) or milliseconds (``now_ms``); ``sleep`` and
``monotonic`` are in clock seconds. What stays true:

* every clock is monotonic non-decreasing in ``now`` while the wall clock is;
* ``sleep(s)`` returns once the clock has advanced at least ``s`` clock seconds;
* two :class:`ScaledClock` built from the same (anchor, start, speed) agree in any process.

Only timing that is physics of the wire (a Modbus RTU frame at 9600 baud, an MQTT keepalive,
a network timeout) stays on wall time: those are not scaled.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable


class Clock:
    """Wall time (the default): ``speed`` 1, ``now`` is ``time.time()``."""

    speed: float = 1.0

    def now(self) -> float:
        """Clock time, UTC epoch seconds."""
        return time.time()

    def now_ms(self) -> int:
        """Clock time, UTC epoch milliseconds."""
        return int(self.now() * 1000)

    def monotonic(self) -> float:
        """Clock seconds for measuring intervals (never steps back)."""
        return time.monotonic()

    def to_wall(self, seconds: float) -> float:
        """How many wall seconds ``seconds`` of clock time take."""
        return seconds / self.speed

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of clock time."""
        await asyncio.sleep(max(0.0, self.to_wall(seconds)))

    def describe(self) -> str:
        return "wall time"


class WallClock(Clock):
    """The real clock: readings, delays and SMS times in wall time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


WALL = WallClock()
"""The clock of a real deployment; every ``clock=`` keyword defaults to it."""


class ScaledClock(Clock):
    """Clock time running ``speed`` times faster than wall time: at wall time ``anchor`` it
    was ``start``. Separate processes given the same three numbers agree on the time."""

    def __init__(
        self, *, speed: float, start: float | None = None, anchor: float | None = None
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be above 0, got {speed:g}")
        self.speed = speed
        self.anchor = time.time() if anchor is None else anchor
        self.start = self.anchor if start is None else start

    def now(self) -> float:
        return self.start + (time.time() - self.anchor) * self.speed

    def monotonic(self) -> float:
        return self.now()

    def describe(self) -> str:
        return f"{self.speed:g}x wall time from {self.start:.0f} (anchor {self.anchor:.3f})"


class ManualClock(Clock):
    """A clock that moves only when told (:meth:`advance`, :meth:`set`): tests and the
    in-process site runs. ``sleep`` returns when the clock has been moved past its end."""

    def __init__(self, start: float, *, speed: float = 1.0) -> None:
        self.speed = speed
        self.t = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._waiting = 0

    def now(self) -> float:
        return self.t

    def now_ms(self) -> int:
        return round(self.t * 1000)

    def monotonic(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        """Move to ``t`` (never back) and wake the sleepers whose time has come."""
        if t < self.t:
            raise ValueError(f"a clock does not go back: {t} < {self.t}")
        self.t = float(t)
        while self._sleepers and self._sleepers[0][0] <= self.t:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def advance(self, seconds: float) -> None:
        self.set(self.t + seconds)

    def next_wake(self) -> float | None:
        """When the earliest sleeper wakes, if any sleeps."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def sleeping(self) -> int:
        """How many sleeps wait on this clock (woken ones count until they have run)."""
        return self._waiting

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._seq), fut))
        self._waiting += 1
        try:
            await fut
        finally:
            self._waiting -= 1

    def describe(self) -> str:
        return f"manual clock at {self.t:.3f}"


class MsClock(Clock):
    """A clock given as a function of UTC epoch milliseconds (a test's hand-moved clock);
    its sleeps are wall time, speed 1."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms

    def now(self) -> float:
        return self._now_ms() / 1000

    def now_ms(self) -> int:
        return self._now_ms()

    def describe(self) -> str:
        return "a millisecond clock function"


def as_clock(clock: Clock | Callable[[], int]) -> Clock:
    """``clock`` as a :class:`Clock`: a Clock as it is, a function of epoch ms wrapped."""
    return clock if isinstance(clock, Clock) else MsClock(clock)
