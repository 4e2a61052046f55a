"""Readings as InfluxDB line protocol (pure: data in, text out).

One line per reading, measurement ``coldchain``, tags ``device``, ``gateway``, ``point``,
``site`` (sorted, as InfluxDB prefers), millisecond timestamps:

* ``value`` (float): the value of a *good* reading, and only of good ones, so that every
  aggregate (MetricsQL ``*_over_time``, Flux ``aggregateWindow``) reads good values alone;
* ``suspect`` (float): the value an uncertain (or bad) reading still carries;
* ``quality`` (integer): 0 good, 1 bad, 2 uncertain; on every line, so it marks each
  reading's existence (latest, series, duplicate checks use it);
* ``meta_<key>`` (float): a reading's metadata, e.g. ``meta_calibration``;
* ``reason`` (string): why a reading is not good — InfluxDB flavour only.

VictoriaMetrics keeps no strings (a string field becomes a useless series of zeros), so for it
the reason travels as a tag of a second line in measurement ``coldchain_fault`` with field
``quality`` (VictoriaMetrics names it ``coldchain_fault_quality{..., reason="no reply"}``):
one series per point and distinct reason text.

Escaping: tag keys/values and field keys escape backslash, comma, equals and space; string
field values escape backslash and double quote. Line protocol has no escape for line breaks
and other control characters in tags, so those are stored as their backslash escape (a
newline as the two characters ``\\n``), in tags and string fields alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal

from coldchain.reading import Quality, Reading, SeriesId

Flavour = Literal["victoriametrics", "influxdb2"]

MEASUREMENT = "coldchain"
FAULT_MEASUREMENT = "coldchain_fault"
META_PREFIX = "meta_"
QUALITY_CODE: Mapping[Quality, int] = {Quality.GOOD: 0, Quality.BAD: 1, Quality.UNCERTAIN: 2}
QUALITY_OF_CODE: Mapping[int, Quality] = {v: k for k, v in QUALITY_CODE.items()}
TAGS = ("site", "gateway", "device", "point")  # SeriesId order

_TAG_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
_CONTROL = {chr(c): f"\\x{c:02x}" for c in [*range(32), 127]} | {
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_CONTROL_ESCAPES = str.maketrans(_CONTROL)


def printable(text: str) -> str:
    """``text`` with control characters as their backslash escapes (what gets stored)."""
    return text.translate(_CONTROL_ESCAPES)


def escape_tag(text: str) -> str:
    """A tag key, tag value or field key for line protocol."""
    if not text:
        raise ValueError("line protocol has no empty tag keys, tag values or field keys")
    return printable(text).translate(_TAG_ESCAPES)


def escape_string(text: str) -> str:
    """A string field value, without its surrounding quotes."""
    return printable(text).translate(_STRING_ESCAPES)


def float_text(x: float, what: str) -> str:
    """A float field value; NaN and infinities have no line protocol form."""
    if not math.isfinite(x):
        raise ValueError(f"{what}: {x!r} cannot be stored (line protocol has no NaN or inf)")
    return repr(float(x))


def series_tags(series: SeriesId) -> str:
    """``device=..,gateway=..,point=..,site=..`` (sorted keys)."""
    try:
        return (
            f"device={escape_tag(series.device)},gateway={escape_tag(series.gateway)},"
            f"point={escape_tag(series.point)},site={escape_tag(series.site)}"
        )
    except ValueError:
        raise ValueError(f"series {series!s}: every part needs a non-empty id") from None


def reading_lines(r: Reading, flavour: Flavour, tags: str | None = None) -> Iterator[str]:
    """The line(s) of one reading: one, plus a fault line on VictoriaMetrics when not good."""
    tags = series_tags(r.series) if tags is None else tags
    code = QUALITY_CODE[r.quality]
    fields = []
    if r.value is not None:
        name = "value" if r.quality is Quality.GOOD else "suspect"
        fields.append(f"{name}={float_text(r.value, f'{r.series} at {r.ts_ms}')}")
    fields.append(f"quality={code}i")
    for key, x in sorted(r.meta.items()):
        fields.append(f"{escape_tag(META_PREFIX + key)}={float_text(x, f'{r.series} {key}')}")
    if r.reason is not None and flavour == "influxdb2":
        fields.append(f'reason="{escape_string(r.reason)}"')
    yield f"{MEASUREMENT},{tags} {','.join(fields)} {int(r.ts_ms)}"
    if r.reason is not None and flavour == "victoriametrics":
        reason = escape_tag(r.reason)
        yield f"{FAULT_MEASUREMENT},{tags},reason={reason} quality={code}i {int(r.ts_ms)}"


def encode(readings: Iterable[Reading], flavour: Flavour) -> list[str]:
    """Every reading's lines, in order (tags encoded once per series)."""
    cache: dict[SeriesId, str] = {}
    out: list[str] = []
    for r in readings:
        tags = cache.get(r.series)
        if tags is None:
            tags = cache[r.series] = series_tags(r.series)
        out.extend(reading_lines(r, flavour, tags))
    return out


def chunks(lines: list[str], size: int) -> Iterator[list[str]]:
    """``lines`` in request-sized pieces of at most ``size`` lines."""
    for i in range(0, len(lines), size):
        yield lines[i : i + size]


# -- back from fields: what both read paths (Prometheus API, Flux) return ------------------

Fields = dict[str, float | str]  # field name -> value; "reason" -> text
MISSING_REASON = "reason not stored"


def reading_from_fields(series: SeriesId, ts_ms: int, fields: Mapping[str, float | str]) -> Reading:
    """The reading stored as ``fields`` at ``ts_ms`` (ValueError if they make none)."""
    code = fields.get("quality")
    if not isinstance(code, float | int) or int(code) not in QUALITY_OF_CODE:
        raise ValueError(f"{series} at {ts_ms}: no valid quality field ({code!r})")
    quality = QUALITY_OF_CODE[int(code)]
    raw = fields.get("value" if quality is Quality.GOOD else "suspect")
    value = float(raw) if isinstance(raw, float | int) else None
    reason: str | None = None
    if quality is not Quality.GOOD:
        text = fields.get("reason")
        reason = text if isinstance(text, str) and text else MISSING_REASON
    meta = {
        k[len(META_PREFIX) :]: float(v)
        for k, v in fields.items()
        if k.startswith(META_PREFIX) and isinstance(v, float | int)
    }
    return Reading(series, ts_ms, value, quality, reason, meta)


def newest_fields(lasts: Mapping[str, tuple[int, float | str]]) -> tuple[int, Fields] | None:
    """From each field's last (ts, value) of one series, the fields of its newest reading:
    the newest ``quality`` marks it, and only fields stamped at the same time belong to it."""
    q = lasts.get("quality")
    if q is None:
        return None
    ts = q[0]
    return ts, {name: v for name, (t, v) in lasts.items() if t == ts}
