"""Durations written the way people write them: ``500ms``, ``30s``, ``5min``, ``2h``, ``1d``,
and compounds such as ``1h30min``. Parsed to seconds (a float) by one pydantic type.

A bare number is rejected with a hint, because ``30`` could mean seconds or minutes and a
cold-room delay off by sixty is a missed alarm.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|min|s|h|d)")
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|min|s|h|d)\s*)+$")
PATTERN = r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|min|s|h|d)\s*)+$"


MAX_SECONDS = 100 * 365 * 86400.0
"""The longest duration anything takes (a century): longer is a typo, and keeps every
duration finite and its milliseconds within 64 bits."""


class DurationError(ValueError):
    """A duration string that cannot be read."""


def parse_duration(text: str) -> float:
    """Return the duration in seconds; raise :class:`DurationError` with the fix."""
    if not _WHOLE.match(text):
        raise DurationError(
            f"{text!r} is not a duration; write a number and a unit "
            "(ms, s, min, h, d), e.g. '30s', '5min', '1h30min'"
        )
    seconds = sum(float(n) * UNITS[u] for n, u in _PART.findall(text))
    if seconds > MAX_SECONDS:
        raise DurationError(
            f"{text[:40]!r}{'...' if len(text) > 40 else ''} is longer than any setting "
            f"needs; write at most {MAX_SECONDS // 86400:.0f}d"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` (``90`` -> ``'1min30s'``)."""
    if seconds == 0:
        return "0s"
    ms = round(seconds * 1000)
    out = []
    for unit, factor in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        n, ms = divmod(ms, factor)
        if n:
            out.append(f"{n}{unit}")
    if ms:
        out.append(f"{ms}ms")
    return "".join(out)


def _validate(value: Any) -> float:
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a duration; write e.g. '30s' or '5min'")
    if isinstance(value, int | float):
        raise DurationError(
            f"a bare number is ambiguous; did you mean '{value:g}s'? "
            "(write the unit: ms, s, min, h or d)"
        )
    if isinstance(value, str):
        return parse_duration(value)
    raise DurationError(f"{value!r} is not a duration; write e.g. '30s' or '5min'")


Duration = Annotated[
    float,
    BeforeValidator(_validate),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PATTERN,
            "description": "a duration such as 500ms, 30s, 5min, 2h, 1d, 1h30min",
        }
    ),
]
"""Seconds, read from a human duration string."""
