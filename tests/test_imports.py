"""The architecture's one-way imports (docs/architecture.md), checked on module names read
from the source (every ``import``, at module level or inside a function):

* ``coldchain`` (the core) imports no other top-level package, except the ``coldchain``
  command's subcommand dispatch (``coldchain.cli``), and only lazily, inside functions;
* nothing imports ``hub`` (the composition root), that dispatch aside;
* ``edge_agent`` imports only ``coldchain``, and everything it reaches, transitively, needs
  nothing beyond the agent's install (the standard library, the base dependencies and the
  ``agent`` extra): it installs alone on a Pi;
* no cycle between top-level packages, nor between the core's subpackages but two known
  pairs (:data:`KNOWN_CORE_CYCLES`): ``coldchain.config`` composes the alert rules' settings
  models into the site model while the rules read the site model, and the profile registry
  reads its YAML with the config's reader and errors.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("coldchain", "hub", "edge_agent", "gateway", "alerts", "dashboards", "simulator")
DATA_PACKAGES = ("firmware_configs",)  # device profiles and example sites, in every install
ALLOWED: dict[str, set[str]] = {
    "coldchain": set(),
    "edge_agent": {"coldchain"},
    "gateway": {"coldchain"},
    "alerts": {"coldchain"},
    "dashboards": {"coldchain", "gateway", "alerts"},
    "simulator": {"coldchain"},
    "hub": {"coldchain", "edge_agent", "gateway", "alerts", "dashboards", "simulator"},
}
DISPATCH = "coldchain.cli"  # the `coldchain` command: may import any package, lazily
# What an agent-only install has beside the standard library (pyproject: dependencies and
# the `agent` extra, with what those bring): pydantic (+ its core), PyYAML, msgpack,
# pymodbus with pyserial, aiomqtt on paho-mqtt, tqdm.
AGENT_THIRD_PARTY = {
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "annotated_types",
    "yaml",
    "msgpack",
    "pymodbus",
    "serial",
    "aiomqtt",
    "paho",
    "tqdm",
}
# The cycles the core has today: the edges named here are left out of the check, so any
# other cycle (or a new path closing one of these elsewhere) still fails it.
KNOWN_CORE_CYCLES = {
    ("coldchain.config", "coldchain.alerting"),
    ("coldchain.profiles", "coldchain.config"),
}


@dataclass(frozen=True)
class Edge:
    source: str  # module importing
    target: str  # module (or name within a module) imported
    lazy: bool  # inside a function, not at module level
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _lazy_nodes(tree: ast.Module) -> set[int]:
    """ids of import nodes inside a function body."""
    out: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            out |= {id(n) for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom)}
    return out


def edges_of(name: str, path: Path) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lazy = _lazy_nodes(tree)
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield Edge(name, a.name, id(node) in lazy, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for a in node.names:
                yield Edge(name, f"{module}.{a.name}", id(node) in lazy, node.lineno)


@functools.cache
def all_edges() -> tuple[Edge, ...]:
    """Every import of the tree, parsed once per test session (the tree does not change)."""
    return tuple(e for name, path in modules().items() for e in edges_of(name, path))


def top(name: str) -> str:
    return name.split(".", maxsplit=1)[0]


def resolve(target: str, known: dict[str, Path]) -> str | None:
    """The project module ``target`` names (``a.b.c`` may be the name ``c`` in ``a.b``)."""
    while target:
        if target in known:
            return target
        target = target.rpartition(".")[0]
    return None


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package: str) -> None:
    bad = []
    for e in all_edges():
        if top(e.source) != package or top(e.target) not in PACKAGES:
            continue
        if top(e.target) in ALLOWED[package] | {package}:
            continue
        if e.source == DISPATCH and e.lazy:
            continue
        bad.append(f"{e.source} (line {e.line}) imports {e.target}")
    assert not bad, "\n".join(bad)


def test_the_dispatch_imports_lazily_and_nothing_imports_the_hub() -> None:
    bad = [
        f"{e.source} (line {e.line}) imports {e.target}"
        for e in all_edges()
        if top(e.target) == "hub"
        and top(e.source) != "hub"
        and not (e.source == DISPATCH and e.lazy)
    ]
    bad += [
        f"{e.source} (line {e.line}) imports {e.target} at module level"
        for e in all_edges()
        if e.source == DISPATCH and not e.lazy and top(e.target) in set(PACKAGES) - {"coldchain"}
    ]
    assert not bad, "\n".join(bad)


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for e in all_edges():
        a, b = top(e.source), top(e.target)
        if b in PACKAGES and a != b and not (e.source == DISPATCH and e.lazy):
            graph.setdefault(a, set()).add(b)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_no_cycle_between_the_cores_subpackages() -> None:
    known = modules()

    def unit(module: str) -> str:  # coldchain.store.sqlite.store -> coldchain.store
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for e in all_edges():
        target = resolve(e.target, known)
        if top(e.source) != "coldchain" or target is None or top(target) != "coldchain":
            continue
        a, b = unit(e.source), unit(target)
        if a != b and a != DISPATCH and (a, b) not in KNOWN_CORE_CYCLES:
            graph.setdefault(a, set()).add(b)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_the_agent_needs_only_the_agent_install() -> None:
    """Every module the agent reaches (from ``edge_agent``, through ``coldchain``) imports
    only project modules of those two packages, the standard library and the agent's
    third-party dependencies: an install from requirements/agent.lock runs it."""
    known = modules()
    by_source: dict[str, list[Edge]] = {}
    for e in all_edges():
        by_source.setdefault(e.source, []).append(e)
    todo = [m for m in known if top(m) == "edge_agent"]
    seen = set(todo)
    bad = []
    while todo:
        module = todo.pop()
        for e in by_source.get(module, []):
            first = top(e.target)
            target = resolve(e.target, known)
            if target is not None:
                if top(target) not in {"coldchain", "edge_agent"}:
                    bad.append(f"{module} (line {e.line}) imports {e.target}")
                elif module == DISPATCH:
                    continue  # the command's other subcommands are not the agent's
                elif target not in seen:
                    seen.add(target)
                    todo.append(target)
            elif first in DATA_PACKAGES:
                continue
            elif first not in sys.stdlib_module_names and first not in AGENT_THIRD_PARTY:
                bad.append(f"{module} (line {e.line}) needs {first}, not in the agent install")
    assert not bad, "\n".join(sorted(set(bad)))


def test_the_checker_sees_what_it_must() -> None:
    """The rules above are only as good as the parse: a lazy import, a relative import and a
    cycle are each found (on a known module of this tree, and on a made-up graph)."""
    edges = list(edges_of(DISPATCH, ROOT / "coldchain" / "cli.py"))
    assert any(e.lazy and top(e.target) == "hub" for e in edges)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None
    rel = ROOT / "coldchain" / "store" / "sqlite" / "__init__.py"
    assert module_name(rel) == "coldchain.store.sqlite"
