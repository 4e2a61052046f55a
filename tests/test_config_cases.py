"""Golden config error cases: ``tests/cases/config/<name>/site.yaml`` and the exact report
``expected.txt`` that ``coldchain config check`` prints for it (errors, then warnings).

Each case is named after the mistake it guards. To add one, write its site.yaml, run with
``UPDATE_GOLDEN=1`` and read the new expected.txt before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coldchain.config.loader import check_site_file
from coldchain.profiles.registry import ProfileRegistry

CASES = Path(__file__).parent / "cases" / "config"


def report(case: Path, profiles: ProfileRegistry) -> str:
    text = (case / "site.yaml").read_text(encoding="utf-8")
    result = check_site_file("site.yaml", profiles, text=text)
    lines = [f"error: {e.format()}" for e in result.errors]
    lines += [f"warning: {w.format()}" for w in result.warnings]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir()), ids=str)
def test_config_case(case: str, profiles: ProfileRegistry) -> None:
    got = report(CASES / case, profiles)
    expected_file = CASES / case / "expected.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(got, encoding="utf-8")
    assert got == expected_file.read_text(encoding="utf-8")
