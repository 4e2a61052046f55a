"""Excursions: runs of good readings past a room's band. Pure.

An excursion starts at the first reading past a limit and ends at the first good reading
back inside the band (a value equal to a limit is inside: limits are the highest and lowest
allowed values). Bad readings neither start nor end one, nor do good ones whose value is
not usable (:func:`dashboards.reports.series.is_usable`: not finite, or a temperature at or
below absolute zero — a probe fault, not a temperature); a gap in the data inside an
excursion counts as part of it: the report states the longest it may have lasted, never less.
Total: any readings, in any order, give a list of excursions, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from coldchain.config.limits import Band
from coldchain.reading import Quality, Reading
from dashboards.reports.series import in_order, is_usable


class Side(StrEnum):
    HIGH = "high"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class Excursion:
    """One run past a limit of one series."""

    series: str
    quantity: str  # temperature, humidity
    side: Side
    limit: float
    start_ms: int
    end_ms: int | None  # first reading back in the band; None: still out at the data's end
    peak: float  # highest (HIGH) or lowest (LOW) value of the run
    peak_ms: int
    start_known: bool = True  # False: already out at the first reading read

    def duration_ms(self, until_ms: int) -> int:
        """Its duration; an open one counts until ``until_ms`` (never below zero)."""
        return max(0, (self.end_ms if self.end_ms is not None else until_ms) - self.start_ms)

    def overlaps(self, start_ms: int, end_ms: int) -> bool:
        return self.start_ms < end_ms and (self.end_ms is None or self.end_ms > start_ms)


def side_of(value: float, band: Band) -> Side | None:
    if band.high is not None and value > band.high:
        return Side.HIGH
    if band.low is not None and value < band.low:
        return Side.LOW
    return None


@dataclass(slots=True)
class _Run:
    side: Side
    start_ms: int
    peak: float
    peak_ms: int
    first: bool


def find(readings: Sequence[Reading], band: Band, *, series: str, quantity: str) -> list[Excursion]:
    """Every excursion of ``readings`` past ``band`` (readings taken by time)."""
    out: list[Excursion] = []
    run: _Run | None = None
    first = True

    def close(end_ms: int | None) -> None:
        assert run is not None
        limit = band.high if run.side is Side.HIGH else band.low
        assert limit is not None
        out.append(
            Excursion(
                series=series,
                quantity=quantity,
                side=run.side,
                limit=limit,
                start_ms=run.start_ms,
                end_ms=end_ms,
                peak=run.peak,
                peak_ms=run.peak_ms,
                start_known=not run.first,
            )
        )

    for r in in_order(readings):
        if r.quality is not Quality.GOOD or r.value is None or not is_usable(r.value, quantity):
            continue
        side = side_of(r.value, band)
        if run is not None and side is not run.side:
            close(r.ts_ms)  # back in the band, or straight past the other limit
            run = None
        if side is not None:
            if run is None:
                run = _Run(side, r.ts_ms, r.value, r.ts_ms, first)
            elif (r.value > run.peak) if side is Side.HIGH else (r.value < run.peak):
                run.peak, run.peak_ms = r.value, r.ts_ms
        first = False
    if run is not None:
        close(None)
    return out
