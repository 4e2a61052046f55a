"""Hostile and broken files given to ``coldchain config check``: a located error, fast, and
never a traceback (issue 10). The site config and the device profiles are read by the same
bounded reader (:mod:`coldchain.config.yamlread`)."""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from coldchain.config.errors import InvalidConfigError
from coldchain.config.loader import check_site_file, load_site_config
from coldchain.config.yamldoc import LIMITS, YamlLimits, YamlSyntaxError
from coldchain.config.yamlread import HAVE_LIBYAML, load_yaml
from coldchain.profiles.registry import ProfileRegistry

CASES = Path(__file__).parent / "cases" / "config"
HEAD = (
    "version: 1\nsites:\n  - id: city\n    name: City\n    rooms:\n"
    "      - {id: cr1, name: Cold room 1, class: chilled}\n"
)


def _bomb() -> bytes:
    lines = ["version: 1", 'lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, 10)]
    return ("\n".join([*lines, "sites: *lol9"]) + "\n").encode()


def _gateway(baud: str) -> bytes:
    bus = f"      - {{type: rtu, id: rs485-1, port: /dev/ttyUSB0, baud: {baud}}}\n"
    return (HEAD + "gateways:\n  - id: gw-1\n    site: city\n    buses:\n" + bus).encode()


# name -> (file content, a part of the expected error line)
HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "nesting-5000-deep-in-brackets": (
        lambda: b"version: 1\nsites: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        ":2:1007: lists and mappings nested more than 32 levels deep"
        if HAVE_LIBYAML
        else ":2:39: lists and mappings nested more than 32 levels deep",
    ),
    "nesting-2000-deep-in-blocks": (
        lambda: "".join("  " * i + f"k{i}:\n" for i in range(2000)).encode(),
        ":33:65: lists and mappings nested more than 32 levels deep",
    ),
    "integer-of-5000-digits": (
        lambda: _gateway("9" * 5000),
        ":11:60: a number 5,000 characters long; numbers here have at most 100",
    ),
    "sexagesimal-number-of-30000-parts": (  # 1:59:59:... is a YAML 1.1 integer
        lambda: _gateway("1" + ":59" * 30_000),
        ":11:60: a number 90,001 characters long; numbers here have at most 100",
    ),
    "nul-byte": (
        lambda: (HEAD + "gateways: []\n").replace("City", "Ci\x00ty", 1).encode(),
        ":4:13: a NUL character: YAML files are plain text and may not contain it",
    ),
    "billion-laughs": (_bomb, ":7:14: aliases repeat more than 100,000 values in all"),
    "alias-of-the-block-it-is-in": (
        lambda: b"version: 1\nsites: &s\n  - id: city\n    rooms: *s\n",
        ":4:12: *s repeats the block it is inside (&s at line 2)",
    ),
    "bytes-that-are-not-utf8": (
        lambda: HEAD.encode() + b"gateways:\n  - id: gw-\xff\n",
        ":8:12: byte 0xff is not UTF-8 text (invalid start byte)",
    ),
    "file-over-16-mib": (
        lambda: HEAD.encode() + b"#" * LIMITS.max_bytes,
        ":1:1: the file is larger than 16 MiB, the most a config file may be",
    ),
    "value-of-200000-characters": (
        lambda: HEAD.replace("City", "C" * 200_000, 1).encode(),
        ":4:11: a value of 200,000 characters; a value may have at most 100,000",
    ),
    "date-that-is-no-date": (
        lambda: HEAD.replace("City", "2024-13-01", 1).encode(),
        ":4:11: '2024-13-01' is not a valid date",
    ),
    "python-object-tag": (
        lambda: HEAD.replace("City", "!!python/object/apply:os.system [ls]", 1).encode(),
        ":4:11: the tag !!python/object/apply:os.system is not one a config uses",
    ),
    "bool-tag-on-a-word": (
        lambda: HEAD.replace("City", "!!bool maybe", 1).encode(),
        ":4:11: 'maybe' is not true or false",
    ),
    "mapping-as-a-key": (
        lambda: b"version: 1\n{a: 1}: 2\n",
        ":2:1: a mapping used as a key",
    ),
}


def _run(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "coldchain.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return result, time.monotonic() - t


@pytest.mark.parametrize("name", sorted(HOSTILE), ids=str)
def test_config_check_of_a_hostile_file_is_a_located_error_in_under_a_second(
    name: str, tmp_path: Path
) -> None:
    make, expected = HOSTILE[name]
    path = tmp_path / "site.yaml"
    path.write_bytes(make())
    t = time.process_time()
    result = check_site_file(path, ProfileRegistry([]))
    took = time.process_time() - t
    assert len(result.errors) == 1, [e.format() for e in result.errors]
    assert result.errors[0].format().startswith(f"{path}{expected}")
    assert "\n    fix: " in result.errors[0].format()  # every refusal says what to do
    assert took < 1.0, f"{name}: {took:.2f} CPU s"


@pytest.mark.parametrize(
    "name", ["nesting-5000-deep-in-brackets", "integer-of-5000-digits", "nul-byte",
             "billion-laughs"], ids=str
)  # fmt: skip
def test_config_check_command_prints_no_traceback_and_exits_1(name: str, tmp_path: Path) -> None:
    make, expected = HOSTILE[name]
    path = tmp_path / "site.yaml"
    path.write_bytes(make())
    result, took = _run("config", "check", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert f"error: {path}{expected}" in result.stderr
    assert "    fix: " in result.stderr
    assert f"{path}: 1 error; references are checked once these are fixed" in result.stderr
    assert took < 20, f"{took:.1f} s for the whole command"  # interpreter start included


def test_profiles_are_read_by_the_same_bounded_reader(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "bomb.yaml").write_bytes(_bomb())
    (profiles / "deep.yaml").write_bytes(b"id: deep\npoints: " + b"[" * 5000 + b"]" * 5000)
    with pytest.raises(InvalidConfigError) as caught:
        ProfileRegistry.load(profiles)
    text = str(caught.value)
    assert f"{profiles / 'bomb.yaml'}:7:14: aliases repeat more than 100,000 values" in text
    assert f"{profiles / 'deep.yaml'}:2:" in text
    assert "lists and mappings nested more than 32 levels deep" in text
    site = CASES / "slow-polling-and-lonely-probe-are-warnings" / "site.yaml"
    result, _ = _run("config", "check", "--profiles", str(profiles), str(site))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "aliases repeat more than 100,000 values" in result.stderr


def test_load_site_config_raises_only_invalid_config_error(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes(b"version: 1\nsites: " + b"[" * 5000)
    with pytest.raises(InvalidConfigError, match="nested more than 32 levels deep"):
        load_site_config(path, ProfileRegistry([]))


# --- the limits, at their edges -----------------------------------------------------------


def _error(text: str, limits: YamlLimits) -> str | None:
    try:
        load_yaml("t.yaml", text, limits)
    except YamlSyntaxError as exc:
        return str(exc)
    return None


def test_nesting_up_to_the_limit_is_read_and_one_more_is_refused() -> None:
    limits = YamlLimits(max_depth=5)
    assert _error("[" * 5 + "]" * 5, limits) is None
    assert _error("[" * 6 + "]" * 6, limits) == (
        "t.yaml:1:6: lists and mappings nested more than 5 levels deep"
    )
    assert _error("a:\n b:\n  c:\n   d: [1]\n", limits) is None
    assert _error("a:\n b:\n  c:\n   d: [[1]]\n", limits) == (
        "t.yaml:4:8: lists and mappings nested more than 5 levels deep"
    )


def test_aliases_may_repeat_up_to_the_limit_and_not_one_value_more() -> None:
    limits = YamlLimits(max_alias_nodes=8)
    block = "a: &a [1, 2, 3]\n"  # an alias of it repeats 4 values: the list and its items
    assert _error(block + "b: [*a, *a]\n", limits) is None
    assert _error(block + "b: [*a, *a, *a]\n", limits) == (
        "t.yaml:2:13: aliases repeat more than 8 values in all (*a alone repeats 4)"
    )
    assert load_yaml("t.yaml", block + "b: [*a, *a]\n").data == {
        "a": [1, 2, 3],
        "b": [[1, 2, 3], [1, 2, 3]],
    }


def test_size_value_and_number_limits_at_their_edges() -> None:
    limits = YamlLimits(max_bytes=20, max_scalar_chars=6, max_number_chars=3)
    assert _error("a: 'é'\n" + "#" * 12, limits) is None  # 20 bytes, 19 characters
    assert _error("a: 'é'\n" + "#" * 13, limits) == (
        "t.yaml:1:1: the file is larger than 1.90735e-05 MiB, the most a config file may be"
    )
    assert _error("a: abcdef", limits) is None
    assert _error("a: abcdefg", limits) == (
        "t.yaml:1:4: a value of 7 characters; a value may have at most 6"
    )
    assert _error("a: 999", limits) is None
    assert _error("a: 1000", limits) == (
        "t.yaml:1:4: a number 4 characters long; numbers here have at most 3"
    )
    assert _error("a: '1000'", limits) is None  # quoted: text, not a number


def test_reading_leaves_the_garbage_collector_as_it_was() -> None:
    assert gc.isenabled()
    load_yaml("t.yaml", "a: 1\n")
    assert gc.isenabled()
    with pytest.raises(YamlSyntaxError):
        load_yaml("t.yaml", "a: [\n")
    assert gc.isenabled()
    gc.disable()
    try:
        load_yaml("t.yaml", "a: 1\n")
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- both parsers say the same ------------------------------------------------------------

SYNTAX_CASES = [
    "alias-inside-its-own-anchor-is-refused",
    "billion-laughs-alias-bomb-is-refused",
    "broken-indentation-says-which-line-and-how-far",
    "colon-inside-unquoted-value",
    "date-like-value-that-is-no-date",
    "integer-of-5000-digits-is-refused-at-its-line",
    "key-at-the-column-of-list-items-needs-a-dash-or-indent",
    "key-indented-under-a-value",
    "key-without-colon",
    "list-item-where-a-key-was-expected",
    "nul-byte-is-refused-at-its-line",
    "quote-never-closed-says-where-it-opened",
    "second-document-in-the-file",
    "tab-indentation-is-named",
    "unclosed-list-says-where-it-opened",
    "unclosed-quote-says-where-it-opened",
    "undefined-alias",
    "yaml-syntax-error-has-line",
]


def _said(text: str, libyaml: bool) -> tuple[str, str | None]:
    try:
        load_yaml("site.yaml", text, libyaml=libyaml)
    except YamlSyntaxError as exc:
        return str(exc), exc.fix
    return "no error", None


@pytest.mark.parametrize("case", SYNTAX_CASES, ids=str)
def test_pure_python_parser_says_what_libyaml_says(case: str) -> None:
    assert HAVE_LIBYAML, "PyYAML without libyaml: install PyYAML's binary wheel"
    text = (CASES / case / "site.yaml").read_text(encoding="utf-8")
    said = _said(text, libyaml=True)
    assert said[0] != "no error"
    assert _said(text, libyaml=False) == said


@pytest.mark.parametrize(
    "broker",
    ["mqtts://[broker:8883", "mqtt://broker:99999", "mqtt://[::1:1883", "mqtt://[zz]:1883"],
)
def test_a_broker_url_python_cannot_split_is_a_located_error(broker: str) -> None:
    """Found by the property test: an edit that put '[' into the broker URL got past its
    pattern, and the config check's broker_address raised ValueError (a traceback)."""
    from coldchain.config.site import Uplink

    with pytest.raises(ValueError, match="broker") as caught:
        Uplink.model_validate({"broker": broker})
    assert "broker" in str(caught.value).splitlines()[1]  # located at the field
