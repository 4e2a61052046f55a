"""The register codec: round trips for every value type and order, scale and offset, bits,
and the errors a wrong read or a wrong value produces."""

from __future__ import annotations

import itertools
import math

import pytest
from pydantic import ValidationError

from coldchain.profiles.codec import (
    CodecError,
    decode_bit,
    decode_words,
    encode_bit,
    encode_value,
)
from coldchain.profiles.schema import ModbusPoint, Order, PointKind, Table, ValueType
from coldchain.reading import Quality

SAMPLES: dict[ValueType, list[float]] = {
    ValueType.INT16: [-32768, -205, -1, 0, 1, 32767],
    ValueType.UINT16: [0, 1, 546, 65535],
    ValueType.INT32: [-(2**31), -2, 0, 70000, 2**31 - 1],
    ValueType.UINT32: [0, 70000, 2**31, 2**32 - 1],
    ValueType.FLOAT32: [-999.0, -2.25, 0.0, 4.5, 2.0**-126, 3.4028234663852886e38],  # exact
    ValueType.FLOAT64: [-1e-300, 0.0, math.pi, 1.7976931348623157e308],
}
ORDERS = list(itertools.product(Order, Order))


def point(
    value_type: ValueType = ValueType.INT16,
    *,
    byte_order: Order = Order.BIG,
    word_order: Order = Order.BIG,
    table: Table = Table.HOLDING,
    **extra: object,
) -> ModbusPoint:
    return ModbusPoint.model_validate(
        {
            "name": "p",
            "kind": PointKind.TEMPERATURE,
            "table": table,
            "address": 10,
            "type": value_type,
            "byte_order": byte_order,
            "word_order": word_order,
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("value_type", "byte_order", "word_order"),
    [(t, b, w) for t in SAMPLES for b, w in ORDERS],
    ids=str,
)
def test_round_trip_every_type_and_order(
    value_type: ValueType, byte_order: Order, word_order: Order
) -> None:
    p = point(value_type, byte_order=byte_order, word_order=word_order)
    for value in SAMPLES[value_type]:
        words = encode_value(p, value)
        assert len(words) == value_type.registers
        assert all(0 <= w <= 0xFFFF for w in words)
        got = decode_words(p, words)
        assert got.quality is Quality.GOOD
        assert got.value == value, f"{value_type} {byte_order}/{word_order}: {words}"


@pytest.mark.parametrize(
    ("byte_order", "word_order", "words"),
    [
        (Order.BIG, Order.BIG, [0x4090, 0x0000]),  # ABCD
        (Order.BIG, Order.LITTLE, [0x0000, 0x4090]),  # CDAB, the sorting line PLC
        (Order.LITTLE, Order.BIG, [0x9040, 0x0000]),  # BADC
        (Order.LITTLE, Order.LITTLE, [0x0000, 0x9040]),  # DCBA
    ],
)
def test_float32_layouts_by_hand(byte_order: Order, word_order: Order, words: list[int]) -> None:
    # 4.5 = 1.125 * 2**2 -> sign 0, exponent 129 (0x81), mantissa 0x100000 -> 0x40900000
    p = point(ValueType.FLOAT32, byte_order=byte_order, word_order=word_order)
    assert encode_value(p, 4.5) == words
    assert decode_words(p, words).value == 4.5


def test_int32_word_order_by_hand() -> None:
    # 70000 = 0x0001_1170
    assert encode_value(point(ValueType.INT32), 70000) == [0x0001, 0x1170]
    assert encode_value(point(ValueType.INT32, word_order=Order.LITTLE), 70000) == [0x1170, 1]


def test_scale_and_offset_round_trip() -> None:
    # raw = (21.5 - -40) / 0.1 = 615; 615 * 0.1 - 40 = 21.5
    p = point(ValueType.UINT16, scale=0.1, offset=-40)
    assert encode_value(p, 21.5) == [615]
    got = decode_words(p, [615])
    assert got.value == 21.5
    assert got.raw == 615


def test_scale_does_not_leave_float_noise() -> None:
    # 215 * 0.1 is 21.500000000000004 in binary floating point; the codec rounds it away
    assert decode_words(point(scale=0.1), [215]).value == 21.5


def test_bit_of_register() -> None:
    p = point(ValueType.BIT, bit=3)
    assert encode_value(p, 1) == [0b1000]
    assert encode_value(p, 0) == [0]
    assert decode_words(p, [0x0008]).value == 1.0
    assert decode_words(p, [0xFFF7]).value == 0.0  # every other bit set


def test_coil_and_inverted_discrete_input() -> None:
    coil = point(ValueType.BIT, table=Table.COIL)
    assert encode_bit(coil, 1) is True
    assert decode_bit(coil, True).value == 1.0
    door = point(ValueType.BIT, table=Table.DISCRETE, scale=-1, offset=1)  # shut = energised
    assert encode_bit(door, 1) is False
    assert encode_bit(door, 0) is True
    assert decode_bit(door, False).value == 1.0


def test_sentinel_and_range_make_a_bad_reading() -> None:
    p = point(
        scale=0.1,
        sentinels=[
            {"raw": 32767, "reason": "probe open"},
            {"raw": -32768, "reason": "probe short"},
        ],
        valid_range=(-50, 90),
    )
    assert decode_words(p, [0x7FFF]) == decode_words(p, [32767])
    opened = decode_words(p, [0x7FFF])
    assert (opened.value, opened.quality, opened.reason) == (None, Quality.BAD, "probe open")
    assert decode_words(p, [0x8000]).reason == "probe short"
    hot = decode_words(p, [950])
    assert (hot.value, hot.reason) == (None, "out of sensor range -50..90: 95")


def test_wrong_word_count_names_point_type_and_counts() -> None:
    with pytest.raises(CodecError) as info:
        decode_words(point(ValueType.FLOAT32), [0x4090])
    assert str(info.value) == "point p: float32 needs 2 register(s), got 1"
    with pytest.raises(CodecError, match=r"point p: int16 needs 1 register\(s\), got 2"):
        decode_words(point(), [1, 2])
    with pytest.raises(CodecError, match=r"point p: float64 needs 4 register\(s\), got 0"):
        decode_words(point(ValueType.FLOAT64), [])


def test_word_out_of_range_is_an_error() -> None:
    with pytest.raises(CodecError) as info:
        decode_words(point(ValueType.UINT32), [0x1_0000, 0])
    assert str(info.value) == "point p: register word 65536 is not 0..65535"


def test_value_that_does_not_fit_is_an_error() -> None:
    with pytest.raises(CodecError) as info:
        encode_value(point(ValueType.INT16), 40000)
    assert "point p: 40000 does not fit int16" in str(info.value)
    with pytest.raises(CodecError, match="point p: -1 does not fit uint32"):
        encode_value(point(ValueType.UINT32), -1)


def test_bits_and_registers_are_not_mixed_up() -> None:
    with pytest.raises(CodecError, match="point p: a coil is one bit; use encode_bit"):
        encode_value(point(ValueType.BIT, table=Table.COIL), 1)
    with pytest.raises(CodecError, match="point p: a holding register is not one bit"):
        encode_bit(point(), 1)
    with pytest.raises(CodecError, match=r"point p: 0\.5 is neither state of the bit"):
        encode_bit(point(ValueType.BIT, table=Table.COIL), 0.5)


def test_schema_rejects_impossible_points() -> None:
    with pytest.raises(ValidationError, match="point p: a coil is one bit; set type: bit"):
        point(ValueType.INT16, table=Table.COIL)
    with pytest.raises(ValidationError, match=r"a bit of a holding register needs 'bit: N'"):
        point(ValueType.BIT)
    with pytest.raises(ValidationError, match="point p: 'bit' is only for type: bit"):
        point(ValueType.INT16, bit=2)
