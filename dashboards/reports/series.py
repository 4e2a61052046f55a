"""A series as the reports see it: a step function. Each good reading holds its value until
the next reading of the series (of any quality: a bad one says the probe failed), at most
``max_hold_ms``; past that the series has a gap (no data). Pure.

The same spans give min / max / time-weighted mean / MKT, the gaps, and the value recorded
at a GSP record time, so every figure of a report is of the same function.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from coldchain.reading import Quality, Reading
from dashboards.reports.mkt import mkt_celsius

MIN_MS = 60_000
DEFAULT_MAX_HOLD_MS = 5 * MIN_MS
"""How long a reading stands for at most: agents send every point at least once a minute
(``agent.max_silence``), and the stale-sensor alarm fires after 5 min of silence."""


@dataclass(frozen=True, slots=True)
class Span:
    """``value`` held over [start_ms, end_ms)."""

    start_ms: int
    end_ms: int
    value: float

    @property
    def ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True, slots=True)
class Stats:
    """Of a series over a window; None where the window holds no data."""

    minimum: float | None
    maximum: float | None
    mean: float | None  # time-weighted
    mkt: float | None  # °C; temperatures only
    covered_ms: int  # time with data
    window_ms: int

    @property
    def coverage(self) -> float:
        return self.covered_ms / self.window_ms if self.window_ms else 0.0


def spans(
    readings: Sequence[Reading],
    start_ms: int,
    end_ms: int,
    *,
    max_hold_ms: int = DEFAULT_MAX_HOLD_MS,
) -> list[Span]:
    """The step function of ``readings`` (oldest first) clipped to [start_ms, end_ms).
    A reading before ``start_ms`` still counts for the part of its hold inside the window."""
    out: list[Span] = []
    for i, r in enumerate(readings):
        if r.quality is not Quality.GOOD or r.value is None:
            continue
        until = r.ts_ms + max_hold_ms
        if i + 1 < len(readings):
            until = min(until, readings[i + 1].ts_ms)
        s, e = max(r.ts_ms, start_ms), min(until, end_ms)
        if e > s:
            out.append(Span(s, e, r.value))
    return out


def gaps(parts: Sequence[Span], start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """The parts of [start_ms, end_ms) without data."""
    out: list[tuple[int, int]] = []
    at = start_ms
    for p in parts:
        if p.start_ms > at:
            out.append((at, p.start_ms))
        at = max(at, p.end_ms)
    if at < end_ms:
        out.append((at, end_ms))
    return out


def stats(parts: Sequence[Span], window_ms: int, *, with_mkt: bool) -> Stats:
    if not parts:
        return Stats(None, None, None, None, 0, window_ms)
    covered = sum(p.ms for p in parts)
    values = [p.value for p in parts]
    return Stats(
        minimum=min(values),
        maximum=max(values),
        mean=sum(p.value * p.ms for p in parts) / covered,
        mkt=mkt_celsius((p.ms, p.value) for p in parts) if with_mkt else None,
        covered_ms=covered,
        window_ms=window_ms,
    )


def value_at(parts: Sequence[Span], ts_ms: int) -> float | None:
    """The value in force at ``ts_ms`` (None: a gap)."""
    i = bisect.bisect_right([p.start_ms for p in parts], ts_ms) - 1
    if i >= 0 and parts[i].start_ms <= ts_ms < parts[i].end_ms:
        return parts[i].value
    return None
