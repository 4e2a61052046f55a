"""The trend of a series over a sliding window, for ``rate_of_rise``: the Theil-Sen slope (the
median of the slopes between every pair of samples at different times) of the window's
samples, thinned evenly to at most :data:`MAX_POINTS` when it holds more.

:class:`RiseWindow` keeps the window as a queue: a sample enters once and leaves once, so
keeping it costs O(1) amortised per reading, with no scan of the series' history. While the
window holds at most :data:`MAX_POINTS` samples (every sample counts, none is thinned away),
it also keeps the sorted list of their pairwise slopes, updated as samples enter and leave
(O(MAX_POINTS) each), so the median is read, not recomputed. What stays true: the slope
is exactly :func:`theil_sen` of :func:`thin` of the window (same floats, same median), as
``tests/test_rate_of_rise.py`` checks against that definition on random series.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence

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


class RiseWindow:
    """The good samples of one series within ``window_ms`` of its latest, at most ``cap``
    (the latest ones)."""

    __slots__ = ("_slope", "_slopes", "cap", "samples", "window_ms")

    def __init__(self, window_ms: int, cap: int) -> None:
        self.window_ms = window_ms
        self.cap = cap
        self.samples: deque[tuple[int, float]] = deque()
        self._slopes: list[float] | None = []  # sorted pairwise slopes; None: not kept
        self._slope: float | None = None  # cached Theil-Sen slope of the window

    def __len__(self) -> int:
        return len(self.samples)

    def push(self, ts_ms: int, value: float) -> None:
        """Add the series' newest good sample (timestamps never go back)."""
        samples = self.samples
        start = ts_ms - self.window_ms
        while samples and (samples[0][0] < start or len(samples) >= self.cap):
            self._drop_oldest()
        slopes = self._slopes
        if slopes is not None:
            if len(samples) >= MAX_POINTS or math.isnan(value):
                self._slopes = None  # thinned from now on (or NaN: no order to keep)
            else:
                for tk, vk in samples:
                    if tk != ts_ms:
                        bisect.insort(slopes, (value - vk) / (ts_ms - tk))
        samples.append((ts_ms, value))
        self._slope = None

    def _drop_oldest(self) -> None:
        t0, v0 = self.samples.popleft()
        slopes = self._slopes
        if slopes is None:
            return
        for tk, vk in self.samples:
            if tk != t0:
                x = (vk - v0) / (tk - t0)
                i = bisect.bisect_left(slopes, x)
                if i == len(slopes) or slopes[i] != x:
                    self._slopes = None  # not found (cannot happen with finite values)
                    return
                del slopes[i]

    def span_ms(self) -> int:
        """From the first sample of the window to the last (0: empty)."""
        return self.samples[-1][0] - self.samples[0][0] if self.samples else 0

    def slope(self) -> float:
        """:func:`theil_sen` of :func:`thin` of the window, value per ms."""
        if self._slope is not None:
            return self._slope
        if self._slopes is None and len(self.samples) <= MAX_POINTS:
            self._rebuild()
        if self._slopes is not None:
            got = _median(self._slopes)
        else:
            got = theil_sen(thin(list(self.samples), MAX_POINTS))
        self._slope = got
        return got

    def _rebuild(self) -> None:
        if any(math.isnan(v) for _, v in self.samples):
            return
        items = list(self.samples)
        self._slopes = sorted(
            (vj - vi) / (tj - ti)
            for i, (ti, vi) in enumerate(items)
            for tj, vj in items[i + 1 :]
            if tj != ti
        )
