"""The ranges of what a request to the hub may carry, defined once: integers (times, ids,
offsets, limits), dates, times given as text, and durations. Every router of the hub
(``hub.api``, ``alerts.api``, ``dashboards.reports.api``, ``dashboards.web.pages``)
takes its parameter types from here, so a number the store, SQLite (signed 64-bit) or a
calendar cannot hold is refused with a 422 that states the range, never a 500.

What stays true: every integer a route accepts has both a lower and an upper bound
(``tests/test_api_bounds.py`` walks the app's routes to check it). The types are plain
``Annotated`` constraints (annotated-types), which FastAPI and pydantic both enforce and put
in the OpenAPI schema; this module needs no web framework.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Final

from annotated_types import Interval, MaxLen

from coldchain.durations import DurationError, parse_duration

EPOCH_MS_MIN: Final = 0
"""1970-01-01T00:00:00Z. A Pi without a real-time clock stamps 1970 until it syncs."""
EPOCH_MS_MAX: Final = 253_402_128_000_000
"""9999-12-30T00:00:00Z: the last instant every time zone can still show as a date
(Python's calendar ends with 9999), well inside 2^53 (a JavaScript number stays exact)."""
ID_MAX: Final = 2**63 - 1
"""The largest SQLite row id."""
LIMIT_MAX: Final = 1000
OFFSET_MAX: Final = 1_000_000_000
DAY_MIN: Final = date(1970, 1, 1)
DAY_MAX: Final = date(9999, 12, 28)
"""A report's day: its window and the day of context read around it stay in the calendar."""
TIME_TEXT_MAX: Final = 40
"""Longest time given as text (ISO 8601 with fractions and an offset is 32 characters)."""

EpochMs = Annotated[int, Interval(ge=EPOCH_MS_MIN, le=EPOCH_MS_MAX)]
"""A time in UTC epoch milliseconds, 1970-01-01 to 9999-12-30."""
RowId = Annotated[int, Interval(ge=1, le=ID_MAX)]
"""An id of a stored row (an alert, an audit record)."""
Limit = Annotated[int, Interval(ge=1, le=LIMIT_MAX)]
"""Items per page."""
Offset = Annotated[int, Interval(ge=0, le=OFFSET_MAX)]
"""Items to skip."""
Day = Annotated[date, Interval(ge=DAY_MIN, le=DAY_MAX)]
"""A local day (YYYY-MM-DD) of a report."""
TimeText = Annotated[str, MaxLen(TIME_TEXT_MAX)]
"""A time as text: epoch milliseconds or ISO 8601 with an offset (:func:`parse_epoch_ms`)."""
DurationText = Annotated[str, MaxLen(TIME_TEXT_MAX)]
"""A duration as text, e.g. ``30s``, ``1h30min`` (:func:`duration_ms`)."""

_EPOCH_MS_TEXT = re.compile(r"-?[0-9]+")  # ASCII digits only: "²".isdigit() is True
_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ParamError(ValueError):
    """A parameter out of its range or of the wrong form; the message says which and why."""


def _in_range(ms: int, name: str, text: str) -> int:
    if not EPOCH_MS_MIN <= ms <= EPOCH_MS_MAX:
        raise ParamError(
            f"{name}={text!r}: a time must lie between 1970-01-01 and 9999-12-30 "
            f"(epoch ms {EPOCH_MS_MIN} to {EPOCH_MS_MAX})"
        )
    return ms


def parse_epoch_ms(text: str, name: str) -> int:
    """UTC epoch ms from epoch milliseconds or an ISO 8601 time with an offset, within
    [EPOCH_MS_MIN, EPOCH_MS_MAX]; :class:`ParamError` says what is wrong."""
    if len(text) > TIME_TEXT_MAX:
        raise ParamError(f"{name}: {len(text)} characters; a time is at most {TIME_TEXT_MAX}")
    if _EPOCH_MS_TEXT.fullmatch(text):
        return _in_range(int(text), name, text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ParamError(
            f"{name}={text!r}: give epoch milliseconds or ISO 8601 with an offset, "
            "e.g. 2026-11-28T08:00:00+08:00"
        ) from None
    if dt.tzinfo is None:
        raise ParamError(f"{name}={text!r}: say the time zone, e.g. +08:00 or Z")
    return _in_range((dt - _EPOCH) // _MS, name, text)


def duration_ms(text: str, name: str, *, at_most_ms: int = EPOCH_MS_MAX) -> int:
    """A duration written as people write them (``30s``, ``2h``) in whole ms, at most
    ``at_most_ms``; :class:`ParamError` says what is wrong (``1e400s`` is not infinite time,
    it is too long)."""
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        raise ParamError(f"{name}: {exc}") from None
    if not math.isfinite(seconds) or seconds * 1000 > at_most_ms:
        shown = text if len(text) <= TIME_TEXT_MAX else text[: TIME_TEXT_MAX - 3] + "..."
        raise ParamError(f"{name}={shown!r} is too long: at most {at_most_ms // 86_400_000} days")
    return round(seconds * 1000)
