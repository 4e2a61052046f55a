"""The trend of a series over a sliding window, for ``rate_of_rise``: the Theil-Sen slope (the
median of the slopes between every pair of samples at different times) of the window's
samples, thinned evenly to at most :data:`MAX_POINTS` when it holds more.

:class:`RiseWindow` keeps the window as a queue: a sample enters once and leaves once, with
no scan of the series' history. A rule rarely needs the slope itself: a quiet room's question
is only "is the slope below my limit?". The median of the pairwise slopes is below ``x`` when
fewer than half of the pairs have a slope of ``x`` or more, and a pair (i, j) does exactly
when ``v_j - x t_j >= v_i - x t_i``: so the window keeps, for each limit asked about, the
sorted ``u = v - x t`` of its samples and the count of such pairs, updated as a sample enters
and leaves (a bisection each, O(log n) comparisons), and :meth:`RiseWindow.below` answers in
O(1). Past :data:`MAX_POINTS` samples the thinned samples all change with each reading, and
the count is made afresh over the :data:`MAX_POINTS` of them (O(MAX_POINTS log MAX_POINTS)).
The slope itself (:meth:`RiseWindow.slope`) is computed when asked, by the definition: it is
exactly :func:`theil_sen` of :func:`thin` of the window (same floats, same median), as
``tests/test_rate_of_rise.py`` checks on random series.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Sequence

MAX_POINTS = 24
"""Samples of a window the slope is computed from, at most (276 pairs)."""


def thin(samples: Sequence[tuple[int, float]], most: int) -> Sequence[tuple[int, float]]:
    """At most ``most`` of ``samples``, evenly spaced, the first and the last kept."""
    n = len(samples)
    if n <= most:
        return samples
    return [samples[round(i * (n - 1) / (most - 1))] for i in range(most)]


def theil_sen(samples: Sequence[tuple[int, float]]) -> float:
    """The median slope (value per ms) over every pair of samples at different times."""
    slopes = [
        (vj - vi) / (tj - ti)
        for i, (ti, vi) in enumerate(samples)
        for tj, vj in samples[i + 1 :]
        if tj != ti
    ]
    return _median(sorted(slopes))


def _median(ordered: list[float]) -> float:
    """As :func:`statistics.median` computes it, of an already sorted list."""
    n = len(ordered)
    if n == 0:
        return 0.0
    if n % 2 == 1:
        return ordered[n // 2]
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2


class _AtLeast:
    """The pairs of a window's samples whose slope is ``x`` or more, counted: ``us`` holds
    each sample's ``v - x (t - t0)``, sorted; a pair (i, j), ``t_i < t_j``, has a slope of
    ``x`` or more when ``u_j >= u_i``. Float rounding can only miscount a pair whose slope is
    ``x`` to within rounding, which callers leave a margin for."""

    __slots__ = ("count", "t0", "us", "x")

    def __init__(self, x: float, samples: Iterable[tuple[int, float]]) -> None:
        self.x = x
        self.us: list[float] = []
        self.count = 0
        self.t0: int | None = None
        for t, v in samples:
            self.enter(t, v)

    def enter(self, t: int, v: float) -> None:
        """A sample later than all the others."""
        if self.t0 is None:
            self.t0 = t
        u = v - self.x * (t - self.t0)
        i = bisect.bisect_right(self.us, u)
        self.count += i
        self.us.insert(i, u)

    def leave(self, t: int, v: float) -> None:
        """The earliest sample, as it entered."""
        u = v - self.x * (t - (self.t0 or 0))
        us = self.us
        i = bisect.bisect_left(us, u)
        del us[i]
        self.count -= len(us) - bisect.bisect_left(us, u)


class RiseWindow:
    """The good samples of one series within ``window_ms`` of its latest, at most ``cap``
    (the latest ones)."""

    __slots__ = ("_at_least", "_nans", "_slope", "_ties", "cap", "samples", "window_ms")

    def __init__(self, window_ms: int, cap: int) -> None:
        self.window_ms = window_ms
        self.cap = cap
        self.samples: deque[tuple[int, float]] = deque()
        self._slope: float | None = None  # cached Theil-Sen slope of the window
        self._at_least: dict[float, _AtLeast] = {}  # by x; kept while unthinned
        self._ties = 0  # samples at the time of the one before them (no pair: no slope)
        self._nans = 0  # NaN values (no order)

    def __len__(self) -> int:
        return len(self.samples)

    def push(self, ts_ms: int, value: float) -> None:
        """Add the series' newest good sample (timestamps never go back)."""
        samples = self.samples
        start = ts_ms - self.window_ms
        while samples and (samples[0][0] < start or len(samples) >= self.cap):
            self._drop_oldest()
        if samples and samples[-1][0] == ts_ms:
            self._ties += 1
        if math.isnan(value):
            self._nans += 1
        at_least = self._at_least
        if at_least:
            if len(samples) >= MAX_POINTS or self._nans:
                at_least.clear()  # thinned from now on, or no order: counted when asked
            else:
                for c in at_least.values():
                    c.enter(ts_ms, value)
        samples.append((ts_ms, value))
        self._slope = None

    def _drop_oldest(self) -> None:
        t0, v0 = self.samples.popleft()
        samples = self.samples
        if samples and samples[0][0] == t0:
            self._ties -= 1
        if math.isnan(v0):
            self._nans -= 1
        for c in self._at_least.values():
            c.leave(t0, v0)

    def span_ms(self) -> int:
        """From the first sample of the window to the last (0: empty)."""
        return self.samples[-1][0] - self.samples[0][0] if self.samples else 0

    def below(self, x: float) -> bool:
        """True when the slope (:meth:`slope`) is certainly below ``x``: fewer than half of
        the pairs of (thinned) samples have a slope of ``x`` or more. False when it may not
        be (the caller then computes the slope), and always when two samples share a time
        or a value is NaN. O(1) while the window holds at most :data:`MAX_POINTS` samples
        (after the first call for an ``x``), O(MAX_POINTS log MAX_POINTS) beyond."""
        samples = self.samples
        n = len(samples)
        if n < 2 or self._ties or self._nans:
            return False
        if n > MAX_POINTS:
            count = _AtLeast(x, thin(list(samples), MAX_POINTS)).count
            n = MAX_POINTS
        else:
            c = self._at_least.get(x)
            if c is None:
                c = self._at_least[x] = _AtLeast(x, samples)
            count = c.count
        pairs = n * (n - 1) // 2
        return count < (pairs + 1) // 2  # the median, or the upper of two, is below x

    def slope(self) -> float:
        """:func:`theil_sen` of :func:`thin` of the window, value per ms."""
        if self._slope is None:
            self._slope = theil_sen(thin(list(self.samples), MAX_POINTS))
        return self._slope
