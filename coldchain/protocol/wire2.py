"""Telemetry protocol v2: the same batch as v1 (:mod:`.messages`) in a fraction of the bytes,
for gateways on metered 4G links. The hub accepts both.

A v2 batch is a MessagePack map::

    {"v": 2, "gw": "gw-city", "site": "city", "epoch": "9f2c...", "seq": 17,
     "tab": <8 bytes>, "st": <zlib of the series table>, "t0": 1764300000000, "n": 600,
     "d": <the readings>, "z": true}

* ``tab`` names the gateway's **series table**: every series it has sent, in a stable order,
  ``[[device, point, calibration], ...]``, its digest the first 8 bytes of the SHA-256 of its
  MessagePack encoding. ``st`` carries the table itself (zlib-compressed MessagePack) only
  when the hub may not know it: until a batch that carried it is acknowledged, and whenever
  the hub asks (an ack's ``retable``: it did not know ``tab``, after a restart say). The hub
  keeps the tables it has seen (:class:`TableCache`, bounded).
* ``d`` packs the ``n`` readings, each as varints: ``index << 2 | kind``, then the time as a
  signed (zigzag) difference from the previous reading's (the first's from ``t0``), then the
  value by its kind: 0 a whole number of tenths (zigzag; most points are int16 x 0.1), 1 a
  float32 that holds the value exactly (4 bytes), 2 a float64 (8 bytes), 3 not good: a flags
  byte (quality 1 bad or 2 uncertain in bits 0-1, the value's kind in bits 2-3: 0 none, 1
  tenths, 2 float32, 3 float64), the value, and the reason (varint length, UTF-8).
* ``z``: ``d`` is zlib-compressed (the agent compresses when that is smaller).

A reading thus costs 4 to 6 bytes where v1 spends about 21 (a full timestamp and a float64
each), and the table travels once, not with every batch (docs/benchmarks.md, "Agent on a cold
store's shape"). Decoding is as strict as v1's: sizes are bounded before anything is
allocated (the decompressed size too), every varint, index, time, value and reason is
checked, the count must match and nothing may trail; the same :class:`ProtocolError`.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from collections import Counter, OrderedDict
from typing import Any

from coldchain.protocol.limits import (
    MAX_BATCH_BYTES,
    MAX_BATCH_READINGS,
    MAX_BATCH_SERIES,
    MAX_REASON_BYTES,
)
from coldchain.protocol.messages import (
    MAX_FUTURE_MS,
    MIN_TS_MS,
    Batch,
    ProtocolError,
    decode_v1,
    fit_reason,
    header,
    pack,
    refused_reading,
    series_entries,
    unpack,
)
from coldchain.reading import Quality, Reading, SeriesId

VERSION2 = 2
DIGEST_BYTES = 8
_QUALITY = {Quality.BAD: 1, Quality.UNCERTAIN: 2}
_QUALITY_BACK = {1: Quality.BAD, 2: Quality.UNCERTAIN}
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
# a reading's worst case: index and kind (3 bytes), time (10), flags (1), float64 (8),
# reason (2 + 200)
MAX_DATA_BYTES = MAX_BATCH_READINGS * (3 + 10 + 1 + 8 + 2 + MAX_REASON_BYTES)
MAX_TABLE_BYTES = MAX_BATCH_SERIES * (1 + 2 * (2 + 64) + 9) + 16


def digest(table_bytes: bytes) -> bytes:
    return hashlib.sha256(table_bytes).digest()[:DIGEST_BYTES]


# -- varints --------------------------------------------------------------------------------
def _varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int) -> int:
    return n << 1 if n >= 0 else ((-n) << 1) - 1


def _value(out: bytearray, value: float) -> int:
    """Append ``value`` in its most compact exact form; its kind (0 tenths, 1 f32, 2 f64)."""
    if not math.isfinite(value):
        out += _F64.pack(value)
        return 2
    k = round(value * 10)
    if k / 10 == value and -(1 << 40) < k < (1 << 40):
        _varint(out, _zigzag(k))
        return 0
    as32 = _F32.pack(value) if abs(value) < 3.4e38 else None
    if as32 is not None and _F32.unpack(as32)[0] == value:
        out += as32
        return 1
    out += _F64.pack(value)
    return 2


# -- the agent's side ------------------------------------------------------------------------
class Encoder:
    """One gateway's v2 encoder: keeps its series table (append-only, so indices are stable
    for the life of the process) and the digest of the table as it stands."""

    def __init__(self) -> None:
        self._index: dict[tuple[str, str, float], int] = {}
        self._entries: list[list[Any]] = []
        self._table: bytes | None = None  # zlib of the packed table, while unchanged
        self.digest = digest(pack([]))

    def _series(self, key: tuple[str, str, float]) -> int:
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self._entries)
            self._entries.append(list(key))
            self._table = None
        return i

    def _current_table(self) -> bytes:
        if self._table is None:
            raw = pack(self._entries)
            self.digest = digest(raw)
            self._table = zlib.compress(raw, 9)
        return self._table

    def encode(self, batch: Batch, *, known: bytes | None) -> tuple[bytes, bool]:
        """``batch`` as a v2 message, and whether it carries the series table: it does
        unless the table (with any series this batch adds) is ``known``, the digest of the
        table the hub is known to hold."""
        readings = batch.readings
        keys = []
        for r in readings:
            if r.series.site != batch.site or r.series.gateway != batch.gateway:
                raise ProtocolError(f"reading of {r.series} does not belong in the batch")
            keys.append((r.series.device, r.series.point, r.meta.get("calibration", 0)))
        if len(self._entries) + len(set(keys) - self._index.keys()) > MAX_BATCH_SERIES:
            self._index, self._entries, self._table = {}, [], None  # the hub's bound: anew
        t0 = readings[0].ts_ms if readings else 0
        out = bytearray()
        prev = t0
        for r, key in zip(readings, keys, strict=True):
            i = self._series(key)
            head = len(out)
            _varint(out, i << 2)  # the kind is or-ed in below (it fits: the last 2 bits)
            _varint(out, _zigzag(r.ts_ms - prev))
            prev = r.ts_ms
            if r.quality is Quality.GOOD and r.value is not None:
                kind = _value(out, r.value)
            else:
                flags = len(out)
                out.append(_QUALITY.get(r.quality, 1))
                if r.value is not None:
                    out[flags] |= (_value(out, r.value) + 1) << 2
                reason = fit_reason(r.reason or "?").encode()
                _varint(out, len(reason))
                out += reason
                kind = 3
            out[head] |= kind
        table = self._current_table()
        data = bytes(out)
        packed = zlib.compress(data, 6)
        msg: dict[str, Any] = {
            "v": VERSION2,
            "gw": batch.gateway,
            "site": batch.site,
            "epoch": batch.epoch,
            "seq": batch.seq,
            "tab": self.digest,
            "t0": t0,
            "n": len(readings),
        }
        with_table = self.digest != known
        if with_table:
            msg["st"] = table
        if len(packed) < len(data):
            msg["d"], msg["z"] = packed, True
        else:
            msg["d"] = data
        return pack(msg), with_table


# -- the hub's side ---------------------------------------------------------------------------
class TableCache:
    """Series tables the hub has seen, by gateway and digest: at most ``per_gateway`` of one
    gateway (it needs one; a hostile one cannot fill the hub's memory) and ``size`` in all,
    the least recently used going first."""

    def __init__(self, size: int = 4096, per_gateway: int = 4) -> None:
        self.size, self.per_gateway = size, per_gateway
        self._tables: OrderedDict[tuple[str, bytes], list[tuple[SeriesId, float]]] = OrderedDict()

    def get(self, gateway: str, tab: bytes) -> list[tuple[SeriesId, float]] | None:
        table = self._tables.get((gateway, tab))
        if table is not None:
            self._tables.move_to_end((gateway, tab))
        return table

    def put(self, gateway: str, tab: bytes, table: list[tuple[SeriesId, float]]) -> None:
        self._tables[(gateway, tab)] = table
        self._tables.move_to_end((gateway, tab))
        own = [key for key in self._tables if key[0] == gateway]
        for key in own[: max(0, len(own) - self.per_gateway)]:
            del self._tables[key]
        while len(self._tables) > self.size:
            self._tables.popitem(last=False)

    def forget(self) -> None:
        self._tables.clear()


TABLES = TableCache()
"""The process's tables (the hub's ingest, and any other reader of v2 telemetry)."""


def _inflate(data: bytes, limit: int, what: str) -> bytes:
    """zlib ``data``, refused past ``limit`` bytes inflated (no bomb is ever expanded)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit)
    except zlib.error as exc:
        raise ProtocolError(f"{what}: not zlib data ({exc})") from exc
    if d.unconsumed_tail or not d.eof:
        raise ProtocolError(f"{what}: more than {limit} bytes inflated", reason="too_large")
    return out


class UnknownTableError(ProtocolError):
    """A v2 batch naming a series table the hub does not hold: it asks the gateway for the
    batch again with its table (an ack's ``retable``)."""

    def __init__(self, message: str, epoch: str, seq: int) -> None:
        super().__init__(message, reason="unknown_table")
        self.epoch, self.seq = epoch, seq


def _table(
    msg: dict[str, Any], site: str, gw: str, tables: TableCache, batch: tuple[str, int]
) -> list[Any]:
    tab = msg.get("tab")
    if type(tab) is not bytes or len(tab) != DIGEST_BYTES:
        raise ProtocolError(f"'tab' must be {DIGEST_BYTES} bytes")
    st = msg.get("st")
    if st is None:
        known = tables.get(gw, tab)
        if known is None:
            raise UnknownTableError(f"series table {tab.hex()} unknown: send it ('st')", *batch)
        return known
    if type(st) is not bytes:
        raise ProtocolError("'st' must be bytes")
    raw = _inflate(st, MAX_TABLE_BYTES, "'st'")
    if digest(raw) != tab:
        raise ProtocolError("'st' does not match its digest 'tab'")
    entries = unpack(raw, max_bytes=MAX_TABLE_BYTES, max_items=MAX_BATCH_SERIES)
    table = series_entries(entries, site, gw)
    tables.put(gw, tab, table)
    return table


class _Reader:
    """The readings blob, read strictly."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def varint(self) -> int:
        data, pos, n, shift = self.data, self.pos, 0, 0
        while True:
            if pos >= len(data):
                raise ProtocolError("'d' ends inside a reading")
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                self.pos = pos
                return n
            shift += 7
            if shift > 63:
                raise ProtocolError("'d': a varint longer than 64 bits")

    def signed(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise ProtocolError("'d' ends inside a reading")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def value(self, kind: int) -> float:
        if kind == 0:
            return self.signed() / 10
        if kind == 1:
            return float(_F32.unpack(self.take(4))[0])
        return float(_F64.unpack(self.take(8))[0])


def decode_v2(
    msg: dict[str, Any], *, gateway: str | None, now_ms: int, tables: TableCache
) -> Batch:
    """A v2 batch (already unpacked, within MAX_BATCH_BYTES), checked as v1's is."""
    gw, site, epoch, seq = header(msg, gateway, VERSION2)
    table = _table(msg, site, gw, tables, (epoch, seq))
    t0, n, data = msg.get("t0"), msg.get("n"), msg.get("d")
    if type(n) is not int or not 0 <= n <= MAX_BATCH_READINGS:
        too_large = type(n) is int and n > MAX_BATCH_READINGS
        raise ProtocolError(f"bad count {n!r:.40}", reason="too_large" if too_large else "schema")
    if type(t0) is not int or not (n == 0 or MIN_TS_MS <= t0 <= now_ms + MAX_FUTURE_MS):
        raise ProtocolError(f"bad t0 {t0!r:.40}")
    if type(data) is not bytes:
        raise ProtocolError("'d' must be bytes")
    if msg.get("z") is True:
        data = _inflate(data, MAX_DATA_BYTES, "'d'")
    elif msg.get("z") is not None:
        raise ProtocolError("'z' must be true or absent")
    rejected: Counter[str] = Counter()
    readings = _readings(data, n, t0, table, now_ms=now_ms, rejected=rejected)
    return Batch(gw, site, epoch, seq, readings, rejected)


def _readings(
    data: bytes,
    n: int,
    t0: int,
    table: list[tuple[SeriesId, float]],
    *,
    now_ms: int,
    rejected: Counter[str],
) -> list[Reading]:
    # The hot path of the hub's ingest: varints of one and two bytes read inline (nearly
    # all are), anything else through the strict reader.
    r = _Reader(data)
    size, pos, ts = len(data), 0, t0
    latest = now_ms + MAX_FUTURE_MS
    good = Quality.GOOD
    out = []
    for k in range(n):
        if pos + 1 < size and data[pos] < 0x80:
            head, pos = data[pos], pos + 1
        elif pos + 1 < size and data[pos + 1] < 0x80:
            head, pos = (data[pos] & 0x7F) | data[pos + 1] << 7, pos + 2
        else:
            r.pos = pos
            head, pos = r.varint(), r.pos
        i, kind = head >> 2, head & 3
        if i >= len(table):
            raise ProtocolError(f"reading {k}: no series {i}")
        if pos < size and data[pos] < 0x80:
            z, pos = data[pos], pos + 1
        else:
            r.pos = pos
            z, pos = r.varint(), r.pos
        ts += (z >> 1) ^ -(z & 1)
        if not MIN_TS_MS <= ts <= latest:
            raise ProtocolError(f"reading {k}: bad time {ts}")
        sid, cal = table[i]
        meta = {"calibration": cal} if cal else {}
        if kind == 0 and pos + 1 < size and data[pos + 1] < 0x80 and data[pos] >= 0x80:
            z, pos = (data[pos] & 0x7F) | data[pos + 1] << 7, pos + 2
            out.append(Reading(sid, ts, ((z >> 1) ^ -(z & 1)) / 10, good, None, meta))
            continue
        r.pos = pos
        if kind != 3:
            value = r.value(kind)
            pos = r.pos
            if not math.isfinite(value):
                out.append(refused_reading(sid, ts, value, None, meta, rejected=rejected))
                continue
            out.append(Reading(sid, ts, value, good, None, meta))
            continue
        out.append(_not_good(r, k, sid, ts, meta=meta, rejected=rejected))
        pos = r.pos
    if pos != size:
        raise ProtocolError(f"'d' holds {size - pos} bytes after its {n} readings")
    return out


def _not_good(
    r: _Reader, k: int, sid: SeriesId, ts: int, *, meta: dict[str, float], rejected: Counter[str]
) -> Reading:
    """A reading of kind 3: flags, value (if any) and reason, from ``r``."""
    flags = r.take(1)[0]
    quality = _QUALITY_BACK.get(flags & 3)
    if quality is None or flags >> 4:
        raise ProtocolError(f"reading {k}: bad flags {flags}")
    vkind = (flags >> 2) & 3
    value = None if vkind == 0 else r.value(vkind - 1)
    length = r.varint()
    if not 0 < length <= MAX_REASON_BYTES:
        raise ProtocolError(f"reading {k}: a reading that is not good needs a reason")
    try:
        reason = r.take(length).decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"reading {k}: the reason is not UTF-8") from exc
    if value is not None and not math.isfinite(value):
        return refused_reading(sid, ts, value, reason, meta, rejected=rejected)
    return Reading(sid, ts, value, quality, reason, meta)


def decode_any(
    data: bytes, *, gateway: str | None = None, now_ms: int, tables: TableCache = TABLES
) -> Batch:
    """A telemetry batch of protocol v1 or v2."""
    msg = unpack(data, max_bytes=MAX_BATCH_BYTES, max_items=MAX_BATCH_READINGS)
    if isinstance(msg, dict) and msg.get("v") == VERSION2:
        return decode_v2(msg, gateway=gateway, now_ms=now_ms, tables=tables)
    return decode_v1(msg, gateway=gateway, now_ms=now_ms)
