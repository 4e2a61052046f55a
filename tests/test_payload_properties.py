"""Properties of every decoder of outside input: any bytes give a valid result or a located
:class:`~coldchain.protocol.messages.ProtocolError`, never another exception; and the size
bounds the agent and the hub share hold."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.config.site import AgentSettings
from coldchain.logsafe import RateLimitedLog, clip
from coldchain.protocol.bounded import loads_bounded
from coldchain.protocol.edge import decode_notice_ack, decode_notices
from coldchain.protocol.limits import (
    AGENT_MAX_BATCH_SIZE,
    MAX_BATCH_BYTES,
    MAX_BATCH_READINGS,
    MAX_BATCH_SERIES,
    MAX_ID_CHARS,
    MAX_REASON_BYTES,
)
from coldchain.protocol.messages import (
    Batch,
    ProtocolError,
    decode_ack,
    decode_batch,
    encode_batch,
    pack,
)
from coldchain.protocol.status import decode_health, decode_status
from coldchain.reading import Quality, Reading, SeriesId

NOW = 1_764_300_000_000
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any MessagePack-able value, nested a little: what a hostile sender can put in a payload.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
rows = st.lists(
    st.one_of(
        st.tuples(st.integers(-1, 2), st.integers(NOW - 10, NOW + 10), values).map(list),
        st.tuples(
            st.integers(0, 1),
            st.just(NOW),
            values,
            st.sampled_from(["b", "u", "x", 1]),
            values,
        ).map(list),
        values,
    ),
    max_size=5,
)
batches = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 2, True]),
        "gw": st.sampled_from(["gw-city", "GW", 5]),
        "site": st.sampled_from(["city", ""]),
        "epoch": st.sampled_from(["e1", "", 3]),
        "seq": st.sampled_from([0, 1, -1, True, 2**64 - 1]),
        "series": st.lists(
            st.one_of(
                st.just(["cr1-probe", "temperature", 0]),
                st.tuples(values, values, values).map(list),
                values,
            ),
            max_size=3,
        ),
        "r": rows,
    }
)


def _decodes_or_says_why(decode: Any, data: bytes) -> Any:
    try:
        return decode(data)
    except ProtocolError as exc:
        error = exc
    assert str(error)  # located: never an empty message
    assert error.reason in ("schema", "too_large", "too_deep", "not_json")
    return None


@FAST
@given(st.binary(max_size=200))
def test_decode_batch_of_any_bytes(data: bytes) -> None:
    _decodes_or_says_why(lambda d: decode_batch(d, gateway="gw-city", now_ms=NOW), data)


@FAST
@given(batches)
def test_decode_batch_of_any_batch_shape(msg: dict[str, Any]) -> None:
    batch = _decodes_or_says_why(
        lambda d: decode_batch(d, gateway="gw-city", now_ms=NOW), pack(msg)
    )
    if batch is None:
        return
    for r in batch.readings:  # whatever came, what is stored is a number or nothing
        assert r.value is None or (type(r.value) is float and math.isfinite(r.value))
        assert r.quality is Quality.GOOD or r.reason
        assert r.reason is None or len(r.reason.encode()) <= MAX_REASON_BYTES


@FAST
@given(st.binary(max_size=200) | values.map(pack))
def test_decode_ack_of_any_input(data: bytes) -> None:
    _decodes_or_says_why(decode_ack, data)


@FAST
@given(
    st.binary(max_size=200)
    | values.map(pack)
    | st.fixed_dictionaries(
        {"v": st.just(1), "gw": st.just("gw-city"), "notices": st.lists(values, max_size=3)}
    ).map(pack)
)
def test_decode_notices_of_any_input(data: bytes) -> None:
    _decodes_or_says_why(lambda d: decode_notices(d, gateway="gw-city", now_ms=NOW), data)
    _decodes_or_says_why(decode_notice_ack, data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "v",
                    "state",
                    "ts",
                    "version",
                    "buffer",
                    "pending",
                    "devices",
                    "p1",
                    "success",
                    "uplink",
                    "polls",
                    "bus",
                    "last_error",
                    "uptime_s",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@FAST
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_decode_status_and_health_of_any_input(data: bytes) -> None:
    status = _decodes_or_says_why(decode_status, data)
    if status is not None:
        assert status.state in ("online", "offline")
    health = _decodes_or_says_why(decode_health, data)
    if health is not None:  # what readers use never raises
        assert health.backlog is None or health.backlog >= 0
        health.poll_success()
        health.model_dump_json(exclude_unset=True)


@FAST
@given(
    st.text(alphabet='[]{}"\\ ,:ab1', max_size=300),
    st.integers(min_value=0, max_value=10),
)
def test_bounded_json_of_any_brackets(text: str, depth: int) -> None:
    try:
        loads_bounded(text.encode(), max_bytes=1000, max_depth=depth, what="x")
    except ProtocolError as exc:
        error = str(exc)
    else:
        return
    assert error.startswith("x: ")


def test_nesting_a_million_deep_is_refused_without_recursion() -> None:
    with pytest.raises(ProtocolError, match="nested deeper than 8 at character 8") as info:
        loads_bounded(b"[" * 1_000_000, max_bytes=2_000_000, max_depth=8, what="x")
    assert info.value.reason == "too_deep"
    with pytest.raises(ProtocolError, match="not a MessagePack message") as info:
        decode_batch(b"\x91" * 1_000_000, now_ms=NOW)


def test_the_agent_never_sends_more_than_the_hub_takes() -> None:
    """The config's bound on ``agent.batch_size`` is the protocol's, half the hub's."""
    (le,) = [m.le for m in AgentSettings.model_fields["batch_size"].metadata if hasattr(m, "le")]
    assert le == AGENT_MAX_BATCH_SIZE
    assert AGENT_MAX_BATCH_SIZE * 2 <= MAX_BATCH_READINGS


def _largest_legal_batch() -> bytes:
    """The largest batch the bounds allow: every series id and reason at its longest, every
    value and time at its widest encoding."""
    gw = "g" * MAX_ID_CHARS
    site = "s" * MAX_ID_CHARS
    series = [[f"{i:0{MAX_ID_CHARS}d}", "p" * MAX_ID_CHARS, -1.5] for i in range(MAX_BATCH_SERIES)]
    reason = "r" * MAX_REASON_BYTES
    rows = [[i % MAX_BATCH_SERIES, NOW, -1.25e300, "b", reason] for i in range(MAX_BATCH_READINGS)]
    return pack(
        {
            "v": 1,
            "gw": gw,
            "site": site,
            "epoch": "e" * 64,
            "seq": 2**64 - 1,
            "series": series,
            "r": rows,
        },
    )


def test_the_largest_legal_batch_is_within_the_byte_bound() -> None:
    data = _largest_legal_batch()
    assert len(data) <= MAX_BATCH_BYTES
    assert len(data) > 0.95 * MAX_BATCH_BYTES  # the bound is the batch, not a guess
    batch = decode_batch(data, now_ms=NOW)
    assert len(batch.readings) == MAX_BATCH_READINGS
    with pytest.raises(ProtocolError, match="bytes; a message is at most") as info:
        decode_batch(data + b"\x00" * (MAX_BATCH_BYTES - len(data) + 1), now_ms=NOW)
    assert info.value.reason == "too_large"


def test_a_long_reason_made_the_agents_batch_unacceptable_forever() -> None:
    """The agent sent reasons of any length; the hub refused the batch whole (over 200
    characters), and the agent resent it forever. The encoder now shortens them."""
    sid = SeriesId("city", "gw-city", "cr1-probe", "temperature")
    long_reason = "设备超时 " * 100
    b = Batch("gw-city", "city", "e1", 1, [Reading(sid, NOW, None, Quality.BAD, long_reason)])
    (r,) = decode_batch(encode_batch(b), now_ms=NOW).readings
    assert r.reason is not None
    assert r.reason.startswith("设备超时 设备超时")
    assert r.reason.endswith("…")
    assert len(r.reason.encode()) <= MAX_REASON_BYTES


def test_clip_makes_one_short_line() -> None:
    assert clip("x" * 50_000_000, 100) == "x" * 100 + "… (49999900 more characters)"
    assert clip("a\nb\x00c") == "a\\nb\\x00c"
    assert clip(b"\xff" * 10) == repr(b"\xff" * 10)


def test_rejections_logged_once_then_summarised(caplog: pytest.LogCaptureFixture) -> None:
    """A flood of 100k junk messages wrote a line each (64 MB of logs)."""
    now = [0.0]
    limiter = RateLimitedLog(logging.getLogger("t"), interval_s=60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="t")
    for _ in range(100_000):
        limiter.warning(("gw1", "schema"), "rejected (%s): %s", "schema", "junk" * 1000)
    limiter.warning(("gw2", "schema"), "rejected (%s): %s", "schema", "other gateway")
    now[0] = 61.0
    limiter.warning(("gw1", "schema"), "rejected (%s): %s", "schema", "junk")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert len(lines[0]) < 400  # clipped
    assert lines[1] == "rejected (schema): other gateway"
    assert lines[2] == "rejected (schema): junk (and 99999 more like it in the last 61s)"


def test_invented_sources_share_one_key(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimitedLog(logging.getLogger("t"), max_keys=10, clock=lambda: 0.0)
    caplog.set_level(logging.WARNING, logger="t")
    for i in range(1000):
        limiter.warning((f"gw{i}", "schema"), "rejected %s", i)
    assert len(caplog.records) == 11
