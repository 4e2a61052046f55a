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
Decoding never trusts the sender: a payload larger than the largest legal batch
(:mod:`coldchain.protocol.limits`) is refused before it is decoded, every field is checked,
and a :class:`ProtocolError` says what is wrong, so the hub can count, log and drop a bad
batch without storing any of it. One thing is judged per reading instead: a value that is
not a finite number (``true``, a string, NaN) makes that reading bad, with no value and a
reason that says so (``Batch.rejected_values`` counts them), so a batch that can be stored
is never refused for one sensor's value (docs/protocol.md, "What the hub refuses").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from coldchain.protocol import VERSION
from coldchain.protocol.auth import signed, verifies
from coldchain.protocol.limits import (
    MAX_BATCH_BYTES,
    MAX_BATCH_READINGS,
    MAX_BATCH_SERIES,
    MAX_EPOCH_CHARS,
    MAX_ID_CHARS,
    MAX_REASON_BYTES,
)
from coldchain.reading import Quality, Reading, SeriesId

_ID = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_ID_CHARS - 1}}}$")
_Q_CODE = {Quality.BAD: "b", Quality.UNCERTAIN: "u"}
_Q_FROM = {"b": Quality.BAD, "u": Quality.UNCERTAIN}
# Readings stamped before 2020 or more than a day ahead are a broken clock, not data.
MIN_TS_MS = 1_577_836_800_000
MAX_FUTURE_MS = 86_400_000


class ProtocolError(ValueError):
    """A payload that does not follow the protocol; the message says what and where, and
    ``reason`` is the counter's label: ``schema`` (a field is wrong), ``too_large``,
    ``too_deep`` or ``not_json``."""

    def __init__(self, message: str, *, reason: str = "schema") -> None:
        super().__init__(message)
        self.reason = reason


def pack(obj: Any) -> bytes:
    """Serialise a protocol message."""
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


def unpack(data: bytes, *, max_bytes: int, max_items: int) -> Any:
    """Deserialise a protocol message of at most ``max_bytes`` bytes, in which no array holds
    more than ``max_items`` items and no map more than 64 keys; raise :class:`ProtocolError`
    on garbage or on anything larger (checked before or while decoding, never after)."""
    if len(data) > max_bytes:
        raise ProtocolError(
            f"{len(data)} bytes; a message is at most {max_bytes}", reason="too_large"
        )
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_array_len=max_items,
            max_map_len=64,
            max_ext_len=0,
        )
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        # StackError (nested too deep) is a ValueError, as is an array over max_items
        too_large = "exceeds max_" in str(exc)
        raise ProtocolError(
            f"not a MessagePack message: {exc!r}"[:300],
            reason="too_large" if too_large else "schema",
        ) from exc


@dataclass(frozen=True, slots=True)
class Batch:
    """A numbered batch of readings from one gateway. ``rejected_values`` counts, by reason,
    the readings whose value the decoder refused (they are bad, with no value)."""

    gateway: str
    site: str
    epoch: str
    seq: int
    readings: Sequence[Reading] = field(default_factory=list)
    rejected_values: Counter[str] = field(default_factory=Counter)


def fit_reason(reason: str) -> str:
    """``reason`` shortened to at most :data:`MAX_REASON_BYTES` bytes of UTF-8 (whole
    characters, ending in "…" when shortened)."""
    data = reason.encode()
    if len(data) <= MAX_REASON_BYTES:
        return reason
    cut = data[: MAX_REASON_BYTES - len("…".encode())].decode("utf-8", errors="ignore")
    return cut + "…"


def reason_fits(reason: object) -> bool:
    """Is ``reason`` a reason the protocol carries: 1 to MAX_REASON_BYTES bytes of UTF-8."""
    if type(reason) is not str or not reason:
        return False
    if len(reason) <= MAX_REASON_BYTES and reason.isascii():
        return True
    return len(reason.encode("utf-8", errors="replace")) <= MAX_REASON_BYTES


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
            rows.append([i, r.ts_ms, r.value, _Q_CODE[r.quality], fit_reason(r.reason or "?")])
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


def header(msg: Any, gateway: str | None, version: int = VERSION) -> tuple[str, str, str, int]:
    """(gateway, site, epoch, seq) of a batch of protocol ``version``, checked."""
    _need(isinstance(msg, dict), "a batch must be a map")
    _need(msg.get("v") == version, f"protocol version {msg.get('v')!r:.40}, expected {version}")
    gw, site, epoch, seq = msg.get("gw"), msg.get("site"), msg.get("epoch"), msg.get("seq")
    _need(isinstance(gw, str) and bool(_ID.match(gw)), f"bad gateway id {gw!r:.80}")
    _need(gateway is None or gw == gateway, f"gateway {gw!r:.80} published on {gateway!r}'s topic")
    _need(isinstance(site, str) and bool(_ID.match(site)), f"bad site id {site!r:.80}")
    _need(isinstance(epoch, str) and 0 < len(epoch) <= MAX_EPOCH_CHARS, f"bad epoch {epoch!r:.80}")
    _need(type(seq) is int and seq >= 0, f"bad sequence number {seq!r:.40}")
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


def series_entries(raw: Any, site: str, gw: str) -> list[tuple[SeriesId, float]]:
    """A series table, ``[[device, point, calibration], ...]``, checked."""
    if not isinstance(raw, list):
        raise ProtocolError("'series' must be a list")
    if len(raw) > MAX_BATCH_SERIES:
        raise ProtocolError(
            f"{len(raw)} series in one batch; at most {MAX_BATCH_SERIES}", reason="too_large"
        )
    out = []
    for n, entry in enumerate(raw):
        sid = None
        if type(entry) is list and len(entry) == 3:
            cal = entry[2]
            if type(cal) in (int, float) and math.isfinite(cal):
                sid = _series_id(site, gw, entry[0], entry[1])
        if sid is None:
            raise ProtocolError(f"series[{n}] must be [device, point, calibration]: {entry!r:.120}")
        out.append((sid, float(cal)))
    return out


def _bad_value(value: Any) -> str:
    """Why ``value`` cannot be a reading's value (the counter's label)."""
    if type(value) in (int, float):
        return "not_finite"
    return "not_a_number"


def refused_reason(value: Any, why: str, reason: str | None) -> str:
    """The reason recorded for a reading whose value the hub refused: what the value was
    (shortened), and the gateway's own reason if it gave one."""
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:40] + "…"
    text = f"hub refused value {shown}: {why}"
    return fit_reason(f"{text}; gateway: {reason}" if reason else text)


def _reading(
    row: Any, n: int, series: list[tuple[SeriesId, float]], now_ms: int, rejected: Counter[str]
) -> Reading:
    # The hot path of the hub's ingest: plain checks, messages formatted only on failure.
    if type(row) is not list or len(row) not in (3, 5):
        raise ProtocolError(f"r[{n}] must have 3 or 5 items")
    i, ts, value = row[0], row[1], row[2]
    if type(i) is not int or not 0 <= i < len(series):
        raise ProtocolError(f"r[{n}]: no series {i!r:.40}")
    if type(ts) is not int or not MIN_TS_MS <= ts <= now_ms + MAX_FUTURE_MS:
        raise ProtocolError(f"r[{n}]: bad time {ts!r:.40}")
    sid, cal = series[i]
    meta = {"calibration": cal} if cal else {}
    finite = type(value) in (int, float) and math.isfinite(value)
    if len(row) == 3:
        if finite:
            return Reading(sid, ts, float(value), Quality.GOOD, None, meta)
        if value is None:
            raise ProtocolError(f"r[{n}]: a good reading needs a value")
        return refused_reading(sid, ts, value, None, meta, rejected=rejected)
    code, reason = row[3], row[4]
    if type(code) is not str or code not in _Q_FROM:
        raise ProtocolError(f"r[{n}]: bad quality {code!r:.40}")
    if type(reason) is not str or not reason:
        raise ProtocolError(
            f"r[{n}]: bad reason {reason!r:.80}: a reading that is not good needs one"
        )
    if not reason_fits(reason):  # an older agent's long reason: kept, shortened
        reason = fit_reason(reason)
    if value is not None and not finite:
        return refused_reading(sid, ts, value, reason, meta, rejected=rejected)
    return Reading(sid, ts, None if value is None else float(value), _Q_FROM[code], reason, meta)


def refused_reading(
    sid: SeriesId,
    ts: int,
    value: Any,
    reason: str | None,
    meta: dict[str, float],
    *,
    rejected: Counter[str],
) -> Reading:
    """A reading whose value is not a finite number: bad, without it, counted."""
    label = _bad_value(value)
    rejected[label] += 1
    why = "not finite" if label == "not_finite" else "not a number"
    return Reading(sid, ts, None, Quality.BAD, refused_reason(value, why, reason), meta)


def decode_batch(data: bytes, *, gateway: str | None = None, now_ms: int) -> Batch:
    """Decode and check a v1 telemetry batch; ``gateway`` is the one whose topic it came on
    (:func:`coldchain.protocol.wire2.decode_any` reads v1 and v2)."""
    msg = unpack(data, max_bytes=MAX_BATCH_BYTES, max_items=MAX_BATCH_READINGS)
    return decode_v1(msg, gateway=gateway, now_ms=now_ms)


def decode_v1(msg: Any, *, gateway: str | None, now_ms: int) -> Batch:
    """A v1 batch, already unpacked (within MAX_BATCH_BYTES), checked."""
    gw, site, epoch, seq = header(msg, gateway)
    series = series_entries(msg.get("series"), site, gw)
    rows = msg.get("r")
    if not isinstance(rows, list):
        raise ProtocolError("'r' must be a list")
    rejected: Counter[str] = Counter()
    readings = [_reading(row, n, series, now_ms, rejected) for n, row in enumerate(rows)]
    return Batch(gw, site, epoch, seq, readings, rejected)


def encode_ack(
    epoch: str,
    seqs: Sequence[int],
    *,
    key: bytes | None = None,
    gateway: str = "",
    retable: Sequence[int] = (),
) -> bytes:
    """An ``ack``; with ``gateway``'s message ``key``, authenticated (:mod:`.auth`).
    ``retable``: v2 batches the hub could not read for want of their series table (it asks
    for them again, with it; :mod:`.wire2`)."""
    msg: dict[str, Any] = {"v": VERSION, "epoch": epoch, "seqs": list(seqs)}
    if retable:
        msg["retable"] = list(retable)
    return pack(signed(key, gateway, msg))


@dataclass(frozen=True, slots=True)
class Ack:
    epoch: str
    seqs: list[int]
    retable: list[int] = field(default_factory=list)


MAX_ACK_BYTES = 64 * 1024  # an ack names at most a few hundred batches


def decode_ack(
    data: bytes, *, key: bytes | None = None, gateway: str = ""
) -> tuple[str, list[int]]:
    """The (epoch, seqs) of an ``ack`` (see :func:`read_ack`)."""
    ack = read_ack(data, key=key, gateway=gateway)
    return ack.epoch, ack.seqs


def _seq_list(value: Any) -> bool:
    return isinstance(value, list) and all(type(s) is int and s >= 0 for s in value)


def read_ack(data: bytes, *, key: bytes | None = None, gateway: str = "") -> Ack:
    """An ``ack``; :class:`ProtocolError` when malformed, or (reason ``bad_mac``) when ``key``
    is given and the ack's MAC for ``gateway`` is missing or does not verify (:mod:`.auth`)."""
    msg = unpack(data, max_bytes=MAX_ACK_BYTES, max_items=MAX_ACK_BYTES)
    _need(isinstance(msg, dict) and msg.get("v") == VERSION, "an ack must be a v1 map")
    if key is not None and not verifies(key, gateway, msg):
        raise ProtocolError("the ack's MAC is missing or does not verify", reason="bad_mac")
    epoch, seqs = msg.get("epoch"), msg.get("seqs")
    _need(isinstance(epoch, str) and 0 < len(epoch) <= MAX_EPOCH_CHARS, f"bad epoch {epoch!r:.80}")
    _need(_seq_list(seqs), f"bad seqs {seqs!r:.80}")
    retable = msg.get("retable", [])
    _need(_seq_list(retable), f"bad retable {retable!r:.80}")
    return Ack(epoch, seqs, retable)
