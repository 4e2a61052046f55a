"""First copy wins, for stores that would otherwise keep the last copy (pure).

Neither InfluxDB (a point with the same tags and time overwrites the stored fields) nor
VictoriaMetrics with ``-dedup.minScrapeInterval=1ms`` (it keeps one sample per millisecond:
the last written in 1.79, the largest in newer releases) keeps the *first* copy of a reading.
So before writing, the store looks up which (series, ts) it already holds, and writes only
the others. One lookup covers the readings of some gateways over a short time span; this
module plans those lookups and filters the readings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from coldchain.reading import Reading, SeriesId

Key = tuple[SeriesId, int]

GAP_MS = 5 * 60_000  # a gateway's readings further apart than this are looked up apart
MERGE_SPAN_MS = 10 * 60_000  # lookups of several gateways are merged within this span


@dataclass(frozen=True, slots=True)
class Lookup:
    """Which stored readings to fetch: these sites and gateways, ts in [start_ms, end_ms]."""

    sites: frozenset[str]
    gateways: frozenset[str]
    start_ms: int
    end_ms: int  # inclusive


def first_copies(readings: Sequence[Reading]) -> tuple[list[Reading], int]:
    """The first reading of each (series, ts) in ``readings``, and how many copies followed."""
    seen: set[Key] = set()
    out: list[Reading] = []
    for r in readings:
        key = (r.series, r.ts_ms)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out, len(readings) - len(out)


def plan_lookups(
    readings: Iterable[Reading], *, gap_ms: int = GAP_MS, merge_span_ms: int = MERGE_SPAN_MS
) -> list[Lookup]:
    """Lookups that cover every reading's (series, ts), each over a short span.

    Per (site, gateway), timestamps are cut where they are more than ``gap_ms`` apart (a
    backlog from an outage and live readings become separate lookups); then pieces of
    different gateways are merged while the merged span stays within ``merge_span_ms``, so
    a write of live batches from many gateways needs one lookup.
    """
    stamps: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in readings:
        stamps[(r.series.site, r.series.gateway)].append(r.ts_ms)
    pieces: list[Lookup] = []
    for (site, gateway), ts in stamps.items():
        ts.sort()
        lo = prev = ts[0]
        for t in ts[1:]:
            if t - prev > gap_ms:
                pieces.append(Lookup(frozenset({site}), frozenset({gateway}), lo, prev))
                lo = t
            prev = t
        pieces.append(Lookup(frozenset({site}), frozenset({gateway}), lo, prev))
    pieces.sort(key=lambda p: (p.start_ms, p.end_ms))
    merged: list[Lookup] = []
    for p in pieces:
        if merged:
            m = merged[-1]
            lo, hi = min(m.start_ms, p.start_ms), max(m.end_ms, p.end_ms)
            if hi - lo <= merge_span_ms:
                merged[-1] = Lookup(m.sites | p.sites, m.gateways | p.gateways, lo, hi)
                continue
        merged.append(p)
    return merged


def split_new(readings: Sequence[Reading], stored: set[Key]) -> tuple[list[Reading], int]:
    """Readings whose (series, ts) is not in ``stored``, and how many were."""
    new = [r for r in readings if (r.series, r.ts_ms) not in stored]
    return new, len(readings) - len(new)
