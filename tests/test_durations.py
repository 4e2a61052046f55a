from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from coldchain.durations import Duration, DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5min", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30min", 5400.0),
        ("1.5s", 1.5),
        (" 2 min ", 120.0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5m", "five minutes", "-5s", "5s garbage"])
def test_rejects_with_the_fix(text: str) -> None:
    with pytest.raises(DurationError, match=r"is not a duration; write a number and a unit"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (90, "1min30s"), (0.25, "250ms"), (86400 + 3600, "1d1h")]
)
def test_format_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


class _M(BaseModel):
    d: Duration


def test_bare_number_gets_a_hint() -> None:
    with pytest.raises(ValidationError) as info:
        _M(d=30)
    assert "a bare number is ambiguous; did you mean '30s'?" in str(info.value)


def test_json_schema_and_serialisation() -> None:
    schema = _M.model_json_schema()["properties"]["d"]
    assert schema["type"] == "string"
    assert "5min" in schema["description"]
    assert _M(d="90s").model_dump(mode="json") == {"d": "1min30s"}


def test_a_300_digit_duration_overflowed_to_infinity() -> None:
    # '9' * 300 + 'd' parsed to inf; format_duration(inf) then raised OverflowError and a
    # rule edit through the API answered 500.
    with pytest.raises(DurationError, match="longer than any setting needs; write at most"):
        parse_duration("9" * 300 + "d")
    assert parse_duration("36500d") == 36500 * 86400.0
    with pytest.raises(ValidationError, match="longer than any setting needs"):
        _M(d="36501d")
