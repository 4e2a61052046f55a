"""The wire protocol: topics and the strict batch decoder."""

from __future__ import annotations

import pytest

from coldchain.protocol.messages import (
    Batch,
    ProtocolError,
    decode_ack,
    decode_batch,
    encode_ack,
    encode_batch,
    pack,
)
from coldchain.protocol.topics import TopicError, Topics
from coldchain.reading import Quality, Reading, SeriesId

NOW = 1_764_300_000_000


def batch() -> Batch:
    t = SeriesId("city", "gw-city", "cr1-probe", "temperature")
    h = SeriesId("city", "gw-city", "cr1-probe", "humidity")
    return Batch(
        "gw-city",
        "city",
        "e1",
        7,
        [
            Reading(t, NOW, 2.4, meta={"calibration": -0.3}),
            Reading(h, NOW, None, Quality.BAD, "probe open"),
            Reading(h, NOW + 1000, 80.5, Quality.UNCERTAIN, "stale"),
        ],
    )


def test_batch_round_trip() -> None:
    b = batch()
    assert decode_batch(encode_batch(b), gateway="gw-city", now_ms=NOW) == b


def test_topics() -> None:
    t = Topics()
    assert t.topic("gw-city", "telemetry") == "coldchain/v1/gw/gw-city/telemetry"
    assert t.all("telemetry", share="ingest") == "$share/ingest/coldchain/v1/gw/+/telemetry"
    assert t.parse("coldchain/v1/gw/gw-city/config/ack") == ("gw-city", "config/ack")
    with pytest.raises(TopicError, match="is not under coldchain/v1/gw/"):
        t.parse("other/v1/gw/x/telemetry")
    with pytest.raises(TopicError, match="is not a coldchain v1 topic"):
        t.parse("coldchain/v1/gw/gw-city/secrets")
    with pytest.raises(TopicError, match="cannot be a topic level"):
        t.topic("gw/+", "ack")


def raw(**changes: object) -> bytes:
    msg: dict[str, object] = {
        "v": 1,
        "gw": "gw-city",
        "site": "city",
        "epoch": "e1",
        "seq": 1,
        "series": [["cr1-probe", "temperature", 0]],
        "r": [[0, NOW, 2.5]],
    }
    msg.update(changes)
    return pack(msg)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xc1garbage", "not a MessagePack message"),
        (pack([1, 2]), "a batch must be a map"),
        (raw(v=2), "protocol version 2, expected 1"),
        (raw(gw="gw-town"), "gateway 'gw-town' published on 'gw-city''s topic"),
        (raw(seq=-1), "bad sequence number -1"),
        (raw(seq=True), "bad sequence number True"),
        (raw(series=[["cr1-probe", "Temp!", 0]]), "series[0] must be [device, point, calibration]"),
        (raw(r=[[1, NOW, 2.5]]), "r[0]: no series 1"),
        (raw(r=[[0, 12, 2.5]]), "r[0]: bad time 12"),
        (raw(r=[[0, NOW + 2 * 86_400_000, 2.5]]), "r[0]: bad time"),
        (raw(r=[[0, NOW, None]]), "r[0]: a good reading needs a value"),
        (raw(r=[[0, NOW, None, "x", "why"]]), "r[0]: bad quality 'x'"),
        (raw(r=[[0, NOW, None, "b", ""]]), "r[0]: bad reason ''"),
        (raw(r=[[0, NOW]]), "r[0] must have 3 or 5 items"),
        (raw(r="nope"), "'r' must be a list"),
    ],
)
def test_bad_batches_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_batch(data, gateway="gw-city", now_ms=NOW)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "label", "reason"),
    [
        (float("nan"), "not_finite", "hub refused value nan: not finite"),
        (float("inf"), "not_finite", "hub refused value inf: not finite"),
        ("2.5", "not_a_number", "hub refused value '2.5': not a number"),
        (True, "not_a_number", "hub refused value True: not a number"),
        ([1], "not_a_number", "hub refused value [1]: not a number"),
    ],
)
def test_a_value_that_is_not_a_number_wedged_the_whole_batch(
    value: object, label: str, reason: str
) -> None:
    """It made the batch a ProtocolError: never acknowledged, resent forever. Now that reading
    is bad, with no value and a reason naming the raw value; the rest of the batch stands."""
    data = raw(r=[[0, NOW, value], [0, NOW + 1, 2.5], [0, NOW + 2, value, "b", "probe open"]])
    b = decode_batch(data, gateway="gw-city", now_ms=NOW)
    first, good, already_bad = b.readings
    assert (first.value, first.quality, first.reason) == (None, Quality.BAD, reason)
    assert (good.value, good.quality) == (2.5, Quality.GOOD)
    assert (already_bad.value, already_bad.quality) == (None, Quality.BAD)
    assert already_bad.reason == f"{reason}; gateway: probe open"
    assert dict(b.rejected_values) == {label: 2}


def test_encode_refuses_foreign_readings() -> None:
    b = batch()
    foreign = Reading(SeriesId("town", "gw-town", "d", "t"), NOW, 1.0)
    with pytest.raises(ProtocolError, match="does not belong in gw-city's batch"):
        encode_batch(Batch(b.gateway, b.site, b.epoch, b.seq, [foreign]))


def test_ack_round_trip_and_errors() -> None:
    assert decode_ack(encode_ack("e1", [3, 4])) == ("e1", [3, 4])
    with pytest.raises(ProtocolError, match="bad seqs"):
        decode_ack(pack({"v": 1, "epoch": "e1", "seqs": [-1]}))
