"""Telemetry protocol v2 (coldchain/protocol/wire2.py): every reading round-trips exactly,
the series table travels only while the hub may lack it, a reading costs a few bytes, v1 is
still read, and any bytes give a batch or a ProtocolError, never another exception, never an
allocation past the bounds."""

from __future__ import annotations

import contextlib
import zlib
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.protocol.limits import MAX_BATCH_SERIES
from coldchain.protocol.messages import Batch, ProtocolError, encode_batch, pack
from coldchain.protocol.wire2 import (
    MAX_DATA_BYTES,
    Encoder,
    TableCache,
    UnknownTableError,
    decode_any,
    digest,
)
from coldchain.reading import Quality, Reading, SeriesId

NOW = 1_764_300_000_000
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sid(device: str, point: str) -> SeriesId:
    return SeriesId("city", "gw1", device, point)


def batch(readings: list[Reading], seq: int = 1) -> Batch:
    return Batch("gw1", "city", "e1", seq, readings)


def decode(data: bytes, tables: TableCache) -> Batch:
    return decode_any(data, gateway="gw1", now_ms=NOW, tables=tables)


EVERY_KIND = [
    Reading(sid("p1", "temperature"), NOW - 5000, 2.4, meta={"calibration": -0.3}),
    Reading(sid("p1", "temperature"), NOW - 6000, -21.3, meta={"calibration": -0.3}),  # earlier
    Reading(sid("p1", "humidity"), NOW - 6000, 65.30000305175781),  # a float32
    Reading(sid("p2", "temperature"), NOW - 4000, 2.345),  # not whole tenths: a float64
    Reading(sid("p2", "temperature"), NOW - 3000, 1e300),
    Reading(sid("p2", "door"), NOW - 3000, 1.0),
    Reading(sid("p3", "temperature"), NOW - 2000, None, Quality.BAD, "probe open"),
    Reading(sid("p3", "humidity"), NOW - 2000, 71.5, Quality.UNCERTAIN, "clock unsynchronised"),
    Reading(sid("p3", "humidity"), NOW - 1000, 0.1 + 0.2, Quality.UNCERTAIN, "冷库 2 号"),
]


def test_every_kind_of_reading_round_trips_exactly() -> None:
    data, with_table = Encoder().encode(batch(EVERY_KIND), known=None)
    assert with_table
    got = decode(data, TableCache())
    assert (got.gateway, got.site, got.epoch, got.seq) == ("gw1", "city", "e1", 1)
    assert got.readings == EVERY_KIND
    assert not got.rejected_values


def test_the_table_travels_until_the_hub_holds_it_and_again_when_it_grows() -> None:
    enc, hub = Encoder(), TableCache()
    first, carried = enc.encode(batch(EVERY_KIND[:3]), known=None)
    assert carried
    decode(first, hub)
    known = enc.digest
    second, carried = enc.encode(batch(EVERY_KIND[:3], seq=2), known=known)
    assert not carried
    assert len(second) < len(first)
    assert decode(second, hub).readings == EVERY_KIND[:3]  # from the cached table
    third, carried = enc.encode(batch(EVERY_KIND, seq=3), known=known)  # new series
    assert carried
    assert enc.digest != known
    assert decode(third, hub).readings == EVERY_KIND
    # a hub that never saw the table (it restarted) says which batch to send again
    with pytest.raises(UnknownTableError) as caught:
        decode(second, TableCache())
    assert (caught.value.epoch, caught.value.seq, caught.value.reason) == ("e1", 2, "unknown_table")


def test_the_hub_keeps_a_few_tables_per_gateway_and_a_bounded_number_in_all() -> None:
    cache = TableCache(size=6, per_gateway=2)
    for gw in ("gw1", "gw2", "gw3", "gw4"):
        for n in range(3):
            cache.put(gw, bytes([n]) * 8, [])
    assert cache.get("gw1", bytes([0]) * 8) is None  # two per gateway: the oldest went
    assert cache.get("gw4", bytes([2]) * 8) == []
    assert len(cache._tables) == 6
    assert cache.get("gw1", bytes([2]) * 8) is None  # six in all: the least recent went


def test_a_table_that_does_not_match_its_digest_is_refused() -> None:
    data, _ = Encoder().encode(batch(EVERY_KIND[:2]), known=None)
    msg = msgpack.unpackb(data)
    msg["st"] = zlib.compress(pack([["p9", "temperature", 0]]))
    with pytest.raises(ProtocolError, match="digest"):
        decode(pack(msg), TableCache())


def cold_store_batch(seq: int, t: int, devices: range) -> Batch:
    """A second of 100 cold-store devices: four tenths temperatures, a float32 humidity and a
    door each, polled a few ms apart (bench/profiles/bench-6.yaml)."""
    readings = []
    for d in devices:
        ts = t + d * 7
        for n, point in enumerate(("air", "product", "condenser", "evaporator")):
            readings.append(Reading(sid(f"d{d:04d}", point), ts, round(-18.5 + n + d / 10, 1)))
        readings.append(Reading(sid(f"d{d:04d}", "humidity"), ts, 65.30000305175781))
        readings.append(Reading(sid(f"d{d:04d}", "door"), ts, 0.0))
    return Batch("gw1", "city", "e1", seq, readings)


def test_a_cold_store_reading_costs_a_few_bytes_and_the_first_batch_less_than_json() -> None:
    enc, hub = Encoder(), TableCache()
    first = cold_store_batch(1, NOW - 10_000, range(84))  # 504 readings: a batch of 500
    data, carried = enc.encode(first, known=None)
    assert carried
    assert len(data) / len(first.readings) <= 23  # ThingsBoard's JSON, by the issue
    decode(data, hub)
    steady = cold_store_batch(2, NOW - 9_000, range(84))
    data, carried = enc.encode(steady, known=enc.digest)
    assert not carried
    assert len(data) / len(steady.readings) <= 10
    assert len(encode_batch(steady)) / len(steady.readings) > 20  # v1, for scale


def test_a_table_about_to_pass_the_hubs_bound_starts_anew() -> None:
    enc, hub = Encoder(), TableCache()
    for seq in range(3):
        devices = range(seq * 1000, seq * 1000 + 1000)  # 4,000 new series a batch
        readings = [Reading(sid(f"d{d}", p), NOW, 1.0) for d in devices for p in "abcd"]
        data, carried = enc.encode(batch(readings, seq), known=enc.digest)
        assert carried
        assert decode(data, hub).readings == readings
    assert len(enc._entries) == 4000  # the third batch would have made 12,000


def test_v1_batches_are_still_read() -> None:
    got = decode(encode_batch(batch(EVERY_KIND)), TableCache())
    assert got.readings == EVERY_KIND


def v2_message(**fields: Any) -> bytes:
    table = pack([["p1", "temperature", 0]])
    msg: dict[str, Any] = {
        "v": 2,
        "gw": "gw1",
        "site": "city",
        "epoch": "e1",
        "seq": 1,
        "tab": digest(table),
        "st": zlib.compress(table),
        "t0": NOW,
        "n": 1,
        "d": bytes([0, 0, 50]),  # series 0, kind 0; +0 ms; 25 tenths
    }
    msg.update(fields)
    return pack({k: v for k, v in msg.items() if v is not None})


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({}, None),  # the valid one the others break
        ({"n": 2}, "ends inside"),
        ({"d": bytes([0, 0, 50, 0])}, "after its 1 readings"),
        ({"d": bytes([4, 0, 50])}, "no series 1"),
        ({"d": bytes([0, 0x80] + [0xFF] * 10)}, "64 bits"),
        ({"d": bytes([3, 0, 0x30, 1, ord("x")])}, "bad flags"),
        ({"d": bytes([3, 0, 1, 0])}, "needs a reason"),
        ({"d": bytes([3, 0, 1, 2, 0xFF, 0xFE])}, "not UTF-8"),
        ({"d": bytes([0, *[0xFF] * 8, 0x01, 50])}, "bad time"),  # -2**56 ms
        ({"t0": 5}, "bad t0"),
        ({"n": 10**9}, "bad count"),
        ({"tab": b"short"}, "'tab'"),
        ({"st": b"not zlib"}, "not zlib"),
        ({"z": 1}, "'z'"),
        ({"d": zlib.compress(bytes(MAX_DATA_BYTES + 1)), "z": True}, "inflated"),
        ({"st": zlib.compress(bytes(10_000_000))}, "inflated"),
        ({"v": 3}, "protocol version"),
        ({"gw": "gw2"}, "published on"),
    ],
)
def test_a_hostile_v2_batch_is_refused_with_a_reason(
    fields: dict[str, Any], why: str | None
) -> None:
    data = v2_message(**fields)
    if why is None:
        assert decode(data, TableCache()).readings == [Reading(sid("p1", "temperature"), NOW, 2.5)]
        return
    with pytest.raises(ProtocolError, match=why):
        decode(data, TableCache())


def test_a_value_that_is_not_finite_makes_the_reading_bad_not_the_batch() -> None:
    nan = bytes([2, 0]) + b"\x7f\xf8" + bytes(6)  # series 0, kind 2 (float64): NaN
    got = decode(v2_message(d=nan), TableCache())
    (r,) = got.readings
    assert (r.quality, r.value) == (Quality.BAD, None)
    assert got.rejected_values["not_finite"] == 1


def test_a_table_past_the_bound_is_refused() -> None:
    table = pack([[f"d{i}", "t", 0] for i in range(MAX_BATCH_SERIES + 1)])
    with pytest.raises(ProtocolError):
        decode(v2_message(tab=digest(table), st=zlib.compress(table)), TableCache())


@FAST
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=40))
def test_any_readings_blob_gives_a_batch_or_a_protocol_error(blob: bytes, n: int) -> None:
    try:
        got = decode(v2_message(d=blob, n=n), TableCache())
    except ProtocolError:
        return
    assert len(got.readings) == n


@FAST
@given(st.binary(max_size=300))
def test_any_message_gives_a_batch_or_a_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(data, TableCache())
