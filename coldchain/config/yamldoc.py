"""YAML read with positions: every key and value keeps its file line, and duplicate keys
(which PyYAML silently resolves to the last one) are reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathT = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based line and column in a file."""

    line: int
    col: int


@dataclass
class YamlDoc:
    """Parsed YAML data and where each part of it stands in the file."""

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


class YamlSyntaxError(ValueError):
    """The file is not valid YAML."""

    def __init__(self, file: str, mark: Mark, problem: str) -> None:
        super().__init__(f"{file}:{mark.line}:{mark.col}: {problem}")
        self.file, self.mark, self.problem = file, mark, problem


def _mark(m: yaml.Mark) -> Mark:
    return Mark(m.line + 1, m.column + 1)


def _walk(node: yaml.Node, path: PathT, doc: YamlDoc) -> None:
    doc.value_marks[path] = _mark(node.start_mark)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, Mark] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
            here = _mark(k.start_mark)
            if key in seen:
                doc.duplicates.append(((*path, key), seen[key], here))
            seen[key] = here
            doc.key_marks[(*path, key)] = here
            _walk(v, (*path, key), doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), doc)


def load_yaml(path: str | Path, text: str | None = None) -> YamlDoc:
    """Read ``path`` (or ``text``, named ``path``) keeping positions."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise YamlSyntaxError(name, Mark(1, 1), f"cannot read: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise YamlSyntaxError(name, Mark(1, 1), f"not UTF-8 text: {exc.reason}") from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark or exc.context_mark
        where = _mark(m) if m is not None else Mark(1, 1)
        problem = exc.problem or str(exc)
        if exc.context:
            ctx = exc.context
            if exc.context_mark is not None and exc.context_mark.line != getattr(m, "line", None):
                ctx = f"{ctx} (opened at line {exc.context_mark.line + 1})"
            problem = f"{ctx}, {problem}"
        raise YamlSyntaxError(name, where, f"YAML syntax: {problem}") from exc
    finally:
        loader.dispose()
    doc = YamlDoc(name, data)
    if node is not None:
        _walk(node, (), doc)
    return doc
