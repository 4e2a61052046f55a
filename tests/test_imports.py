"""The architecture's one-way imports, checked on the source: ``coldchain`` (but its
composition root: the CLI, the demo and the hub process) imports none of the other packages;
``edge_agent`` imports only ``coldchain`` (it installs alone on a Pi); nothing imports the
simulator but the composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"coldchain", "hub", "edge_agent", "gateway", "alerts", "dashboards", "simulator"}
COMPOSITION_ROOT = ("coldchain/cli.py", "hub/")
ALLOWED = {
    "coldchain": set(),
    "edge_agent": {"coldchain"},
    "gateway": {"coldchain"},
    "alerts": {"coldchain"},
    "dashboards": {"coldchain", "gateway", "alerts", "hub"},  # reports/api: the next commit
    "simulator": {"coldchain"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & PACKAGES


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(COMPOSITION_ROOT):
            continue
        extra = imported_packages(path) - ALLOWED[package] - {package}
        if extra:
            bad.append(f"{rel} imports {', '.join(sorted(extra))}")
    assert not bad, "\n".join(bad)
