"""Property: whatever a site config file holds, checking it gives a valid config or located
errors (:class:`~coldchain.config.errors.ConfigError`; ``load_site_config`` raises only
:class:`~coldchain.config.errors.InvalidConfigError`), never another exception (issue 10)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from coldchain.config.errors import InvalidConfigError
from coldchain.config.loader import CheckResult, check_site_file, load_site_config
from tests.sites import shipped_profiles

COUNTY = Path(__file__).parent.parent / "firmware_configs" / "sites" / "county.yaml"
PROFILES = shipped_profiles()
YAML_BREAKS = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_config_or_located_errors(result: CheckResult, name: str, text: str) -> None:
    if result.config is not None:
        assert result.errors == []
        return
    assert result.errors, "no config and no error"
    lines = len(YAML_BREAKS.findall(text)) + 2  # the end of the text may be a line further
    for e in result.errors + result.warnings:
        assert e.file == name
        assert 1 <= e.mark.line <= lines, e
        assert e.mark.col >= 1, e
        assert e.message.strip(), e
        assert e.format().startswith(f"{name}:{e.mark.line}:{e.mark.col}: ")


def check_text(text: str) -> None:
    result = check_site_file("site.yaml", PROFILES, text=text)
    assert_config_or_located_errors(result, "site.yaml", text)


# --- any text ----------------------------------------------------------------------------


@SETTINGS
@given(st.text())
@example("\x00")
@example("\ud800")
@example("a: 2001-13-45")
@example("&a [*a]")
@example("? [a]\n: b")
@example("version: 1\nsites: " + "[" * 5000)
def test_any_text_gives_a_config_or_located_errors(text: str) -> None:
    check_text(text)


# fmt: off
TOKENS = [
    "\n", " ", "  ", "    ", "\t", "- ", ": ", ":", "? ", "[", "]", "{", "}", ", ", "'", '"',
    "#", "&a ", "*a", "&b ", "*b", "<<: ", "!!int ", "!!float ", "!!str ", "!!bool ",
    "!!binary ", "!!set ", "!!omap ", "!!timestamp ", "!foo ", "|", ">", "---\n", "...\n",
    "%YAML 1.1\n", "\\", "1", "-1", "0x1F", "1:30", "1e400", ".nan", "9" * 60, "null", "~",
    "true", "yes", "2024-13-01", "2024-01-01", "version", "sites", "gateways", "rooms", "id",
    "name", "class", "chilled", "city", "buses", "type", "rtu", "devices", "unit_id", "baud",
    "poll_interval", "30s", "\x00", "\x07", "\ufeff", "\r\n", "\u2028", "é", "冷",
]
# fmt: on


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map("".join))
def test_yaml_like_text_gives_a_config_or_located_errors(text: str) -> None:
    check_text(text)


# --- edits of the example site -----------------------------------------------------------

COUNTY_TEXT = COUNTY.read_text(encoding="utf-8")
Edit = tuple[int, int, str]


@st.composite
def edits(draw: st.DrawFn) -> list[Edit]:
    n = len(COUNTY_TEXT)
    out: list[Edit] = []
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, n))
        cut = draw(st.integers(0, 12))
        put = draw(st.lists(st.sampled_from(TOKENS), max_size=3).map("".join) | st.text(max_size=4))
        out.append((at, cut, put))
    return out


def apply(text: str, changes: list[Edit]) -> str:
    for at, cut, put in sorted(changes, reverse=True):
        text = text[:at] + put + text[at + cut :]
    return text


@SETTINGS
@given(edits())
def test_edited_example_site_gives_a_config_or_located_errors(changes: list[Edit]) -> None:
    check_text(apply(COUNTY_TEXT, changes))


@SETTINGS
@given(
    st.sampled_from(["baud", "port", "unit_id", "area_m2", "poll_interval", "calibration"]),
    st.integers(min_value=-(10**4000), max_value=10**4000).map(str)
    | st.from_regex(r"\A[-+]?[0-9][0-9_:.]{0,6000}(e[-+]?[0-9]{1,400})?\Z")
    | st.floats().map(str),
)
def test_any_number_in_a_setting_gives_a_config_or_located_errors(key: str, number: str) -> None:
    text = COUNTY_TEXT.replace(f"{key}: ", f"{key}: {number} #", 1)
    check_text(text)


# --- nesting and bytes ---------------------------------------------------------------------


@SETTINGS
@given(
    st.integers(0, 6000),
    st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", ""), ("a:\n", "")]),
    st.booleans(),
)
def test_any_nesting_gives_a_config_or_located_errors(
    depth: int, brackets: tuple[str, str], closed: bool
) -> None:
    opening, closing = brackets
    if opening.endswith("\n"):  # block mappings nest by indentation
        body = "".join(" " * i + opening for i in range(depth)) + " " * depth + "x"
    else:
        body = opening * depth + "x" + (closing * depth if closed else "")
    check_text("version: 1\nsites: " + body + "\n")


@SETTINGS
@given(st.binary(max_size=400) | st.text(max_size=200).map(lambda t: t.encode("utf-8")))
def test_any_bytes_in_a_file_give_a_config_or_located_errors(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "site.yaml"
        path.write_bytes(data)
        result = check_site_file(path, PROFILES)
        assert_config_or_located_errors(result, str(path), data.decode("utf-8", "replace"))
        if result.config is None:
            with pytest.raises(InvalidConfigError) as caught:
                load_site_config(path, PROFILES)
            assert caught.value.errors == result.errors
