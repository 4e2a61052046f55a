"""Payloads of the protocol topics, and their strict decoding.

A telemetry batch carries the readings of one gateway, with a per-batch series table so the
series names are sent once per batch, not once per reading::

    {"v": 1, "gw": "gw-city", "site": "city", "epoch": "9f2c...", "seq": 17,
     "series": [["cr1-probe", "temperature", -0.3], ["cr1-probe", "humidity", 0]],
     "r": [[0, 1764300000000, 2.4], [1, 1764300000000, null, "b", "probe open"]]}

A reading row is ``[series index, UTC ms, value]`` when good, and
``[index, UTC ms, value or null, quality, reason]`` otherwise (quality ``b`` bad,
``u`` uncertain). The third element of a series entry is the calibration offset the gateway
applied to its values (recorded, never hidden). ``epoch`` names the gateway's buffer (it
changes only if the buffer is wiped), ``seq`` numbers batches within it; the hub acknowledges
``(epoch, seq)`` once the store has committed the batch.

Serialised as MessagePack (see bench/bench_payload.py and docs/benchmarks.md for why).
Decoding never trusts the sender: every field is checked and a :class:`ProtocolError` says
what is wrong, so the hub can count, log and drop a bad batch without storing any of it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from coldchain.protocol import VERSION
from coldchain.reading import Quality, Reading, SeriesId

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_Q_CODE = {Quality.BAD: "b", Quality.UNCERTAIN: "u"}
_Q_FROM = {"b": Quality.BAD, "u": Quality.UNCERTAIN}
# Readings stamped before 2020 or more than a day ahead are a broken clock, not data.
MIN_TS_MS = 1_577_836_800_000
MAX_FUTURE_MS = 86_400_000


class ProtocolError(ValueError):
    """A payload that does not follow the protocol; the message says what and where."""


def pack(obj: Any) -> bytes:
    """Serialise a protocol message."""
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    """Deserialise a protocol message; raise :class:`ProtocolError` on garbage."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise ProtocolError(f"not a MessagePack message: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Batch:
    """A numbered batch of readings from one gateway."""

    gateway: str
    site: str
    epoch: str
    seq: int
    readings: Sequence[Reading] = field(default_factory=list)


def encode_batch(batch: Batch) -> bytes:
    index: dict[tuple[str, str], int] = {}
    series: list[list[Any]] = []
    rows: list[list[Any]] = []
    for r in batch.readings:
        if r.series.site != batch.site or r.series.gateway != batch.gateway:
            raise ProtocolError(f"reading of {r.series} does not belong in {batch.gateway}'s batch")
        key = (r.series.device, r.series.point)
        i = index.get(key)
        if i is None:
            i = index[key] = len(series)
            series.append([key[0], key[1], r.meta.get("calibration", 0)])
        if r.quality is Quality.GOOD:
            rows.append([i, r.ts_ms, r.value])
        else:
            rows.append([i, r.ts_ms, r.value, _Q_CODE[r.quality], r.reason])
    return pack(
        {
            "v": VERSION,
            "gw": batch.gateway,
            "site": batch.site,
            "epoch": batch.epoch,
            "seq": batch.seq,
            "series": series,
            "r": rows,
        }
    )


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise ProtocolError(what)


def _header(msg: Any, gateway: str | None) -> tuple[str, str, str, int]:
    _need(isinstance(msg, dict), "a batch must be a map")
    _need(msg.get("v") == VERSION, f"protocol version {msg.get('v')!r}, expected {VERSION}")
    gw, site, epoch, seq = msg.get("gw"), msg.get("site"), msg.get("epoch"), msg.get("seq")
    _need(isinstance(gw, str) and bool(_ID.match(gw)), f"bad gateway id {gw!r}")
    _need(gateway is None or gw == gateway, f"gateway {gw!r} published on {gateway!r}'s topic")
    _need(isinstance(site, str) and bool(_ID.match(site)), f"bad site id {site!r}")
    _need(isinstance(epoch, str) and 0 < len(epoch) <= 64, f"bad epoch {epoch!r}")
    _need(type(seq) is int and seq >= 0, f"bad sequence number {seq!r}")
    return gw, site, epoch, seq


# Series names already checked, shared by every batch: a gateway sends the same few hundred
# names over and over, and checking them was half of the hub's decoding time. Bounded.
_KNOWN_SERIES: dict[tuple[str, str, str, str], SeriesId] = {}
_KNOWN_SERIES_MAX = 200_000


def _series_id(site: str, gw: str, device: Any, point: Any) -> SeriesId | None:
    key = (site, gw, device, point)
    sid = _KNOWN_SERIES.get(key) if type(device) is str and type(point) is str else None
    if sid is None:
        if not (type(device) is str and type(point) is str):
            return None
        if not (_ID.match(device) and _ID.match(point)):
            return None
        if len(_KNOWN_SERIES) >= _KNOWN_SERIES_MAX:
            _KNOWN_SERIES.clear()
        sid = _KNOWN_SERIES[key] = SeriesId(site, gw, device, point)
    return sid


def _series(msg: dict[str, Any], site: str, gw: str) -> list[tuple[SeriesId, float]]:
    raw = msg.get("series")
    if not isinstance(raw, list):
        raise ProtocolError("'series' must be a list")
    out = []
    for n, entry in enumerate(raw):
        sid = None
        if type(entry) is list and len(entry) == 3:
            cal = entry[2]
            if type(cal) in (int, float) and math.isfinite(cal):
                sid = _series_id(site, gw, entry[0], entry[1])
        if sid is None:
            raise ProtocolError(f"series[{n}] must be [device, point, calibration]: {entry!r}")
        out.append((sid, float(cal)))
    return out


def _reading(row: Any, n: int, series: list[tuple[SeriesId, float]], now_ms: int) -> Reading:
    # The hot path of the hub's ingest: plain checks, messages formatted only on failure.
    if type(row) is not list or len(row) not in (3, 5):
        raise ProtocolError(f"r[{n}] must have 3 or 5 items")
    i, ts, value = row[0], row[1], row[2]
    if type(i) is not int or not 0 <= i < len(series):
        raise ProtocolError(f"r[{n}]: no series {i!r}")
    if type(ts) is not int or not MIN_TS_MS <= ts <= now_ms + MAX_FUTURE_MS:
        raise ProtocolError(f"r[{n}]: bad time {ts!r}")
    if value is not None and (type(value) not in (int, float) or not math.isfinite(value)):
        raise ProtocolError(f"r[{n}]: bad value {value!r}")
    sid, cal = series[i]
    meta = {"calibration": cal} if cal else {}
    if len(row) == 3:
        if value is None:
            raise ProtocolError(f"r[{n}]: a good reading needs a value")
        return Reading(sid, ts, float(value), Quality.GOOD, None, meta)
    q, reason = _Q_FROM.get(row[3]), row[4]
    if q is None:
        raise ProtocolError(f"r[{n}]: bad quality {row[3]!r}")
    if type(reason) is not str or not 0 < len(reason) <= 200:
        raise ProtocolError(f"r[{n}]: bad reason {reason!r}")
    return Reading(sid, ts, None if value is None else float(value), q, reason, meta)


def decode_batch(data: bytes, *, gateway: str | None = None, now_ms: int) -> Batch:
    """Decode and check a telemetry batch; ``gateway`` is the one whose topic it came on."""
    msg = unpack(data)
    gw, site, epoch, seq = _header(msg, gateway)
    series = _series(msg, site, gw)
    rows = msg.get("r")
    if not isinstance(rows, list):
        raise ProtocolError("'r' must be a list")
    readings = [_reading(row, n, series, now_ms) for n, row in enumerate(rows)]
    return Batch(gw, site, epoch, seq, readings)


def encode_ack(epoch: str, seqs: Sequence[int]) -> bytes:
    return pack({"v": VERSION, "epoch": epoch, "seqs": list(seqs)})


def decode_ack(data: bytes) -> tuple[str, list[int]]:
    msg = unpack(data)
    _need(isinstance(msg, dict) and msg.get("v") == VERSION, "an ack must be a v1 map")
    epoch, seqs = msg.get("epoch"), msg.get("seqs")
    _need(isinstance(epoch, str) and bool(epoch), f"bad epoch {epoch!r}")
    _need(
        isinstance(seqs, list) and all(type(s) is int and s >= 0 for s in seqs),
        f"bad seqs {seqs!r}",
    )
    return epoch, seqs
