"""A series as the reports see it: a step function. Each good reading holds its value until
the next reading of the series (of any quality: a bad one says the probe failed), at most
``max_hold_ms``; past that the series has a gap (no data). Pure.

The same spans give min / max / time-weighted mean / MKT, the gaps, and the value recorded
at a GSP record time, so every figure of a report is of the same function.

Every function here is total over whatever a store can hold: any float (also 1e308, -1e308,
inf, nan), None, bad readings, readings out of order or on the same millisecond. A good
reading whose value is not usable (:func:`is_usable`: not finite, or a temperature at or
below absolute zero) counts as a bad one — the probe failed — and :func:`left_out` counts
those so the report can say so (docs/reports.md).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from coldchain.reading import Quality, Reading
from dashboards.reports.mkt import is_temperature, mkt_celsius

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


TEMPERATURE = "temperature"
NOT_FINITE = "not a finite number"
BELOW_ZERO = "at or below absolute zero (-273.15 °C): not a temperature"


def why_unusable(value: float, quantity: str) -> str | None:
    """Why a good reading's ``value`` of ``quantity`` cannot enter a figure; None: it can."""
    if not math.isfinite(value):
        return NOT_FINITE
    if quantity == TEMPERATURE and not is_temperature(value):
        return BELOW_ZERO
    return None


def is_usable(value: float, quantity: str) -> bool:
    return why_unusable(value, quantity) is None


def _good(r: Reading, quantity: str) -> bool:
    return r.quality is Quality.GOOD and r.value is not None and is_usable(r.value, quantity)


def in_order(readings: Sequence[Reading]) -> Sequence[Reading]:
    """``readings`` by time (stable: of two on the same millisecond the later one given
    wins); as given when they already are (a store returns them so)."""
    if all(a.ts_ms <= b.ts_ms for a, b in itertools.pairwise(readings)):
        return readings
    return sorted(readings, key=lambda r: r.ts_ms)


@dataclass(frozen=True, slots=True)
class LeftOut:
    """Good readings of a series in a window left out of its figures, for one reason."""

    reason: str
    count: int
    first_ms: int
    last_ms: int


def left_out(
    readings: Iterable[Reading], start_ms: int, end_ms: int, quantity: str
) -> list[LeftOut]:
    """The good readings in [start_ms, end_ms) whose value is not usable, by reason."""
    found: dict[str, list[int]] = {}
    for r in readings:
        if r.quality is Quality.GOOD and r.value is not None and start_ms <= r.ts_ms < end_ms:
            why = why_unusable(r.value, quantity)
            if why is not None:
                found.setdefault(why, []).append(r.ts_ms)
    return [LeftOut(why, len(ts), min(ts), max(ts)) for why, ts in sorted(found.items())]


def spans(
    readings: Sequence[Reading],
    start_ms: int,
    end_ms: int,
    *,
    max_hold_ms: int = DEFAULT_MAX_HOLD_MS,
    quantity: str = TEMPERATURE,
) -> list[Span]:
    """The step function of ``readings`` clipped to [start_ms, end_ms), oldest first. A
    reading before ``start_ms`` still counts for the part of its hold inside the window; a
    reading that is bad or not usable for ``quantity`` ends the hold of the one before."""
    readings = in_order(readings)
    out: list[Span] = []
    for i, r in enumerate(readings):
        if not _good(r, quantity):
            continue
        assert r.value is not None
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


def weighted_mean(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Mean of (weight, value) pairs, over those with a positive finite weight and a finite
    value; None when there are none. Never overflows: weights are scaled by the largest and
    values by the largest magnitude before summing (each term is then within ±1), and the
    result is clamped to [min, max] of the values, where a mean always lies."""
    used = [(w, v) for w, v in pairs if math.isfinite(w) and w > 0 and math.isfinite(v)]
    if not used:
        return None
    w_top = max(w for w, _ in used)
    v_top = max(abs(v) for _, v in used) or 1.0
    total = math.fsum(w / w_top for w, _ in used)  # >= 1: the largest weight gives 1
    acc = math.fsum((w / w_top) * (v / v_top) for w, v in used)
    lo, hi = min(v for _, v in used), max(v for _, v in used)
    return min(max(acc / total * v_top, lo), hi)


def stats(parts: Sequence[Span], window_ms: int, *, with_mkt: bool) -> Stats:
    """The figures of ``parts`` (usable values only: see :func:`spans`); all None when
    there are none."""
    if not parts:
        return Stats(None, None, None, None, 0, window_ms)
    covered = sum(p.ms for p in parts)
    values = [p.value for p in parts]
    return Stats(
        minimum=min(values),
        maximum=max(values),
        mean=weighted_mean((p.ms, p.value) for p in parts),
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
