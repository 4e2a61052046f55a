"""A YAML document with positions: every key and value keeps its file line, and duplicate
keys (which PyYAML silently resolves to the last one) are recorded.

:func:`coldchain.config.yamlread.load_yaml` builds it within :class:`YamlLimits`; everything
that goes wrong while reading is a :class:`YamlSyntaxError` that says where, what and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PathT = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based line and column in a file."""

    line: int
    col: int


@dataclass
class YamlDoc:
    """Parsed YAML data and where each part of it stands in the file.

    Paths are those written in the file: a value reached through an alias (``*name``) or a
    merge (``<<:``) is positioned at the alias, not inside the anchored block.
    """

    file: str
    data: Any
    key_marks: dict[PathT, Mark] = field(default_factory=dict)
    value_marks: dict[PathT, Mark] = field(default_factory=dict)
    duplicates: list[tuple[PathT, Mark, Mark]] = field(default_factory=list)

    def mark(self, path: PathT) -> Mark:
        """Where ``path`` (or its nearest ancestor present in the file) stands."""
        p = tuple(path)
        while p:
            if p in self.key_marks:
                return self.key_marks[p]
            if p in self.value_marks:
                return self.value_marks[p]
            p = p[:-1]
        return self.value_marks.get((), Mark(1, 1))


@dataclass(frozen=True, slots=True)
class YamlLimits:
    """Bounds on what a config or profile file may ask of the reader.

    Within them, reading takes time and memory linear in the file's size; a file beyond
    one is refused at the place it crosses it, before its data is built. A real site config
    is well inside each: the shipped county network is 11 kB, 8 levels deep, with no alias.
    """

    max_bytes: int = 16 * 1024 * 1024
    """Largest file (the county example repeated to 16 MiB holds about 75,000 devices)."""
    max_depth: int = 32
    """Deepest nesting of lists and mappings (a site config uses 8)."""
    max_alias_nodes: int = 100_000
    """Values that aliases may repeat in total, counting every value inside a repeated block
    (what stops a 'billion laughs' file: 9 aliases of 9 aliases ... of 9 values)."""
    max_scalar_chars: int = 100_000
    """Longest single value, in characters."""
    max_number_chars: int = 100
    """Longest number (Python refuses to convert integers of more than 4,300 digits)."""


LIMITS = YamlLimits()


class YamlSyntaxError(ValueError):
    """The file cannot be read as YAML (or not within :class:`YamlLimits`): where, what, and
    the fix."""

    def __init__(self, file: str, mark: Mark, problem: str, fix: str | None = None) -> None:
        super().__init__(f"{file}:{mark.line}:{mark.col}: {problem}")
        self.file, self.mark, self.problem, self.fix = file, mark, problem, fix
