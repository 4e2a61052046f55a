"""Door open/close intervals from raw door readings (pure), and how far back to look.

A door series reads 1 (open) or 0 (closed); only good readings count. Gateways report on
change, so a door open for three days may have no reading in the asked range at all: the
store fetches history backwards, widening, until it finds the reading that tells when the
door last opened before ``start``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.base import DoorInterval

FIRST_LOOKBACK_MS = 86_400_000  # one day, then x16 each time
LOOKBACK_GROWTH = 16


def is_open(r: Reading) -> bool:
    return r.value is not None and r.value != 0


def intervals(
    series: SeriesId, readings: Sequence[Reading], start_ms: int, end_ms: int
) -> list[DoorInterval]:
    """Intervals overlapping [start_ms, end_ms) from ``readings`` (oldest first, all < end).

    An interval still open at the last reading has ``closed_ms`` None."""
    out: list[DoorInterval] = []
    opened: int | None = None
    for r in readings:
        if r.quality is not Quality.GOOD or r.ts_ms >= end_ms:
            continue
        if is_open(r):
            if opened is None:
                opened = r.ts_ms
        elif opened is not None:
            if r.ts_ms > start_ms:
                out.append(DoorInterval(series, opened, r.ts_ms))
            opened = None
    if opened is not None:
        out.append(DoorInterval(series, opened, None))
    return out


def knows_state_at(readings: Sequence[Reading], start_ms: int) -> bool:
    """Whether ``readings`` (a window ending at or after ``start_ms``) show when the door
    last opened before ``start_ms``: a good closed reading before ``start_ms`` does."""
    return any(r.quality is Quality.GOOD and not is_open(r) for r in readings if r.ts_ms < start_ms)


async def door_intervals(
    series: SeriesId,
    start_ms: int,
    end_ms: int,
    raw: Callable[[SeriesId, int, int], Awaitable[list[Reading]]],
    *,
    first_lookback_ms: int = FIRST_LOOKBACK_MS,
    earliest_ms: int = 0,
) -> list[DoorInterval]:
    """Door intervals from a ``raw(series, start, end)`` reader, widening the look back
    until a closed reading before ``start_ms`` (or ``earliest_ms``) is reached."""
    lookback = first_lookback_ms
    while True:
        since = max(earliest_ms, start_ms - lookback)
        readings = await raw(series, since, end_ms)
        if since <= earliest_ms or knows_state_at(readings, start_ms):
            return intervals(series, readings, start_ms, end_ms)
        lookback *= LOOKBACK_GROWTH
