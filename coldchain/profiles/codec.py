"""The register codec: Modbus register words and bits <-> typed engineering values.

Pure, no I/O. Decoding applies byte order, word order, value type, scale and offset, and
turns fault sentinels and out-of-range values into a bad quality with a reason. Encoding is
the inverse, used by the simulator to serve a profile's map.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from coldchain.profiles.schema import ModbusPoint, Order, ValueType
from coldchain.reading import Quality

_STRUCT = {
    ValueType.INT16: "h",
    ValueType.UINT16: "H",
    ValueType.INT32: "i",
    ValueType.UINT32: "I",
    ValueType.FLOAT32: "f",
    ValueType.FLOAT64: "d",
}


class CodecError(ValueError):
    """Words that cannot be decoded for a point, or a value that cannot be encoded."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded value, or none with the reason it is bad."""

    value: float | None
    quality: Quality = Quality.GOOD
    reason: str | None = None
    raw: int | float | None = None


def _words_to_bytes(words: list[int] | tuple[int, ...], point: ModbusPoint) -> bytes:
    ordered = list(words) if point.word_order is Order.BIG else list(reversed(words))
    out = bytearray()
    for w in ordered:
        if not 0 <= w <= 0xFFFF:
            raise CodecError(f"point {point.name}: register word {w} is not 0..65535")
        hi, lo = w >> 8, w & 0xFF
        out += bytes((hi, lo)) if point.byte_order is Order.BIG else bytes((lo, hi))
    return bytes(out)


def _bytes_to_words(data: bytes, point: ModbusPoint) -> list[int]:
    words = []
    for i in range(0, len(data), 2):
        a, b = data[i], data[i + 1]
        words.append((a << 8 | b) if point.byte_order is Order.BIG else (b << 8 | a))
    return words if point.word_order is Order.BIG else list(reversed(words))


def raw_from_words(point: ModbusPoint, words: list[int] | tuple[int, ...]) -> int | float:
    """The raw value (before scale and offset) of a register point."""
    if len(words) != point.count:
        raise CodecError(
            f"point {point.name}: {point.type} needs {point.count} register(s), got {len(words)}"
        )
    if point.type is ValueType.BIT:
        assert point.bit is not None  # guaranteed by the schema
        return (words[0] >> point.bit) & 1
    value: int | float = struct.unpack(">" + _STRUCT[point.type], _words_to_bytes(words, point))[0]
    return value


def engineering(point: ModbusPoint, raw: int | float) -> Decoded:
    """Apply sentinels, scale, offset and the valid range to a raw value."""
    for s in point.sentinels:
        if raw == s.raw:
            return Decoded(None, Quality.BAD, str(s.reason), raw)
    return scaled(raw, scale=point.scale, offset=point.offset, valid_range=point.valid_range)


def scaled(
    raw: int | float,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    valid_range: tuple[float, float] | None = None,
) -> Decoded:
    """``raw * scale + offset``, bad if not a number or outside ``valid_range`` (shared by the
    register codec and the MQTT payload codec)."""
    if isinstance(raw, float) and not math.isfinite(raw):
        return Decoded(None, Quality.BAD, "not a number", raw)
    value = float(raw * scale + offset if (scale != 1 or offset) else raw)
    if scale != 1 or offset:
        value = round(value, 10)  # 215 * 0.1 is 21.5, not 21.500000000000004
    if valid_range is not None and not valid_range[0] <= value <= valid_range[1]:
        lo, hi = valid_range
        return Decoded(None, Quality.BAD, f"out of sensor range {lo:g}..{hi:g}: {value:g}", raw)
    return Decoded(value, Quality.GOOD, None, raw)


def decode_words(point: ModbusPoint, words: list[int] | tuple[int, ...]) -> Decoded:
    """Decode the register words of one point."""
    return engineering(point, raw_from_words(point, words))


def decode_bit(point: ModbusPoint, bit: bool | int) -> Decoded:
    """Decode one coil or discrete input."""
    return engineering(point, 1 if bit else 0)


def raw_from_value(point: ModbusPoint, value: float) -> int | float:
    """The raw value a device holds for an engineering value (inverse of scale and offset)."""
    raw = (value - point.offset) / point.scale if (point.scale != 1 or point.offset) else value
    if point.type in (ValueType.FLOAT32, ValueType.FLOAT64):
        return float(raw)
    return round(raw)


def words_from_raw(point: ModbusPoint, raw: int | float) -> list[int]:
    """Register words holding ``raw`` in the point's type and orders."""
    if point.type is ValueType.BIT:
        assert point.bit is not None  # guaranteed by the schema
        return [(1 << point.bit) if raw else 0]
    fmt = ">" + _STRUCT[point.type]
    if point.type not in (ValueType.FLOAT32, ValueType.FLOAT64):
        raw = int(raw)
    try:
        data = struct.pack(fmt, raw)
    except struct.error as exc:
        raise CodecError(f"point {point.name}: {raw!r} does not fit {point.type}: {exc}") from exc
    return _bytes_to_words(data, point)


def encode_value(point: ModbusPoint, value: float) -> list[int]:
    """Register words for an engineering value (the simulator's side of the codec)."""
    if point.table.is_bits:
        raise CodecError(f"point {point.name}: a {point.table} is one bit; use encode_bit")
    return words_from_raw(point, raw_from_value(point, value))


def encode_bit(point: ModbusPoint, value: float) -> bool:
    """The coil or discrete input state for an engineering value (inverse of decode_bit)."""
    if not point.table.is_bits:
        raise CodecError(f"point {point.name}: a {point.table} register is not one bit")
    raw = (value - point.offset) / point.scale if (point.scale != 1 or point.offset) else value
    if not (math.isclose(raw, 0, abs_tol=1e-9) or math.isclose(raw, 1, abs_tol=1e-9)):
        raise CodecError(f"point {point.name}: {value!r} is neither state of the bit")
    return raw > 0.5
