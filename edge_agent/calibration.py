"""Turning a decoded value into a reading, with the site config's calibration offset applied
and recorded in the reading's metadata (GSP: users get no hidden offsets)."""

from __future__ import annotations

from coldchain.config.site import PointOverride
from coldchain.profiles.codec import Decoded
from coldchain.reading import Reading, SeriesId


def to_reading(
    series: SeriesId, ts_ms: int, dec: Decoded, override: PointOverride | None
) -> Reading:
    cal = override.calibration if override is not None else 0.0
    if dec.value is None or not cal:
        return Reading(series, ts_ms, dec.value, dec.quality, dec.reason)
    return Reading(
        series, ts_ms, round(dec.value + cal, 6), dec.quality, dec.reason, {"calibration": cal}
    )
