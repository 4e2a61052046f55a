"""``coldchain config check`` and ``coldchain config schema`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).parent / "cases" / "config"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coldchain.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_check_reports_every_error_with_its_line_and_exits_1() -> None:
    case = CASES / "every-error-of-the-file-at-once" / "site.yaml"
    result = run("config", "check", str(case))
    assert result.returncode == 1
    assert f"error: {case}:3:5: sites[0].nam: unknown key 'nam'" in result.stderr
    assert f"error: {case}:25:9: gateways[0].devices[0].poll_interval:" in result.stderr
    assert result.stderr.count("error: ") == 7
    assert "7 errors; references are checked once these are fixed" in result.stderr


def test_check_passes_a_good_file_with_warnings_and_exits_0() -> None:
    case = CASES / "slow-polling-and-lonely-probe-are-warnings" / "site.yaml"
    result = run("config", "check", str(case))
    assert result.returncode == 0, result.stderr
    assert "ok: 1 sites, 1 rooms, 1 gateways, 1 devices, 2 warnings" in result.stdout
    assert "warning: " in result.stderr


def test_check_a_missing_file(tmp_path: Path) -> None:
    result = run("config", "check", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert "nope.yaml:1:1: cannot read: No such file or directory" in result.stderr


@pytest.mark.parametrize("extra", [[], ["--profile"]])
def test_schema_is_json_schema(extra: list[str]) -> None:
    result = run("config", "schema", *extra)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("2020-12/schema")
    text = result.stdout
    if extra:
        assert '"protocol"' in text
        assert "sentinels" in text
    else:
        assert schema["additionalProperties"] is False
        assert "poll_interval" in text
        assert "a duration such as 500ms" in text


def test_check_says_what_is_wrong_with_an_indentation_and_the_fix_not_pyyamls_words() -> None:
    case = CASES / "key-at-the-column-of-list-items-needs-a-dash-or-indent" / "site.yaml"
    result = run("config", "check", str(case))
    assert result.returncode == 1
    assert "expected <block end>" not in result.stderr
    assert "did not find expected" not in result.stderr
    assert (
        f"error: {case}:7:3: 'timezone' on line 7 stands where the list of line 3 expects "
        "another '- ' item\n    fix: start it with '- ' if it is a new item, or indent it by "
        "4 spaces if it belongs to the item above\n"
    ) in result.stderr
