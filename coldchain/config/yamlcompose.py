"""Composing a YAML document within :class:`~coldchain.config.yamldoc.YamlLimits`, then
building its data with PyYAML's safe constructor.

What stays true: the composer takes the parser's events one at a time and refuses, at the
event that crosses it, nesting deeper than ``max_depth``, aliases that would repeat more
than ``max_alias_nodes`` values in all, an alias of the block it is inside, a value longer
than ``max_scalar_chars`` or a number longer than ``max_number_chars``. It counts what an
alias repeats from the size of the block it names, so a "billion laughs" file costs a few
additions, not a billion values. It records where each key and value stands and every
duplicate key as it goes. Building the data afterwards never fails with anything but a
:class:`~coldchain.config.yamldoc.YamlSyntaxError` at the value that could not be built.
"""

from __future__ import annotations

from typing import Any, Protocol

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from coldchain.config.yamldoc import Mark, PathT, YamlDoc, YamlLimits, YamlSyntaxError

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_IS_NOT = {
    _INT: "is not a whole number",
    _FLOAT: "is not a number",
    "tag:yaml.org,2002:bool": "is not true or false",
    "tag:yaml.org,2002:timestamp": "is not a valid date",
    "tag:yaml.org,2002:binary": "is not base64 text",
}


class Events(Protocol):
    """A YAML event stream: PyYAML's parser, or libyaml's (``yaml._yaml.CParser``)."""

    def check_event(self, *choices: type[Event]) -> bool: ...
    def peek_event(self) -> Any: ...
    def get_event(self) -> Any: ...


def mark_of(m: Any) -> Mark:
    """The 1-based position of a PyYAML or libyaml mark."""
    return Mark(m.line + 1, m.column + 1)


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag


def too_deep(file: str, here: Mark, limits: YamlLimits) -> YamlSyntaxError:
    return YamlSyntaxError(
        file,
        here,
        f"lists and mappings nested more than {limits.max_depth} levels deep",
        "a site config nests about 8 levels: look for '[' or '{' that are never closed, or "
        "lines indented ever deeper",
    )


class BoundedComposer(Resolver):
    """Builds the node tree of one document from ``events`` within ``limits``, recording
    positions and duplicate keys in ``doc``."""

    def __init__(self, events: Events, limits: YamlLimits, doc: YamlDoc) -> None:
        super().__init__()
        self.events, self.limits, self.doc = events, limits, doc
        self.anchors: dict[str, tuple[Node, int]] = {}
        self.open_anchors: dict[str, Mark] = {}
        self.repeated = 0

    def compose(self) -> Node | None:
        """The document's root node (None for an empty file)."""
        ev = self.events
        ev.get_event()  # stream start
        if ev.check_event(StreamEndEvent):
            return None
        ev.get_event()  # document start
        node, _ = self._node((), 0)
        ev.get_event()  # document end
        if not ev.check_event(StreamEndEvent):
            extra = mark_of(ev.peek_event().start_mark)
            raise YamlSyntaxError(
                self.doc.file,
                extra,
                f"a second YAML document starts at line {extra.line} (after '---' or '...')",
                "a config file is one document: remove the '---' or '...' line and what "
                "follows it, or merge the two",
            )
        return node

    def _node(self, path: PathT, depth: int) -> tuple[Node, int]:
        """The node at ``path`` and how many values it stands for (aliases expanded)."""
        ev = self.events
        event = ev.peek_event()
        here = mark_of(event.start_mark)
        self.doc.value_marks[path] = here
        if isinstance(event, AliasEvent):
            ev.get_event()
            return self._alias(event.anchor or "", here)
        anchor: str | None = event.anchor
        if anchor is not None:
            self._new_anchor(anchor, here)
        if isinstance(event, ScalarEvent):
            node: Node = self._scalar(ev.get_event())
            size = 1
        elif isinstance(event, SequenceStartEvent):
            node, size = self._sequence(path, depth + 1)
        else:
            node, size = self._mapping(path, depth + 1)
        if anchor is not None:
            del self.open_anchors[anchor]
            self.anchors[anchor] = (node, size)
        return node, size

    def _resolved(self, kind: type[Node], value: str | None, implicit: Any) -> str:
        """The tag of an untagged node (PyYAML's resolver: int, float, bool, null, str...)."""
        # Resolver.resolve has no annotations in types-PyYAML
        tag: str = self.resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag

    def _new_anchor(self, name: str, here: Mark) -> None:
        first = self.open_anchors.get(name)
        if first is None and name in self.anchors:
            first = mark_of(self.anchors[name][0].start_mark)
        if first is not None:
            raise YamlSyntaxError(
                self.doc.file,
                here,
                f"anchor &{name} is defined twice (first at line {first.line})",
                "give each anchor its own name",
            )
        self.open_anchors[name] = here

    def _alias(self, name: str, here: Mark) -> tuple[Node, int]:
        if name in self.open_anchors:
            raise YamlSyntaxError(
                self.doc.file,
                here,
                f"*{name} repeats the block it is inside (&{name} at line "
                f"{self.open_anchors[name].line}), which would never end",
                "an alias can only repeat a block that is complete above it; write the values "
                "out here",
            )
        if name not in self.anchors:
            raise YamlSyntaxError(
                self.doc.file,
                here,
                f"*{name} refers to no anchor: nothing above is marked &{name}",
                f"mark the value to repeat with '&{name}' above this line, or quote the value "
                "if '*' is meant as text",
            )
        node, size = self.anchors[name]
        self.repeated += size
        if self.repeated > self.limits.max_alias_nodes:
            raise YamlSyntaxError(
                self.doc.file,
                here,
                f"aliases repeat more than {self.limits.max_alias_nodes:,} values in all "
                f"(*{name} alone repeats {size:,})",
                "write the values out instead of nesting aliases of aliases; a config uses "
                "aliases to repeat a few small blocks",
            )
        return node, size

    def _deeper(self, depth: int, here: Mark) -> None:
        if depth > self.limits.max_depth:
            raise too_deep(self.doc.file, here, self.limits)

    def _scalar(self, event: Any) -> ScalarNode:
        value: str = event.value
        here = mark_of(event.start_mark)
        limit = self.limits.max_scalar_chars
        if len(value) > limit:
            raise YamlSyntaxError(
                self.doc.file,
                here,
                f"a value of {len(value):,} characters; a value may have at most {limit:,}",
                "shorten it: a config value is a name, an id, a path or a number",
            )
        tag: str | None = event.tag
        if tag is None or tag == "!":
            tag = self._resolved(ScalarNode, value, event.implicit)
        if tag in (_INT, _FLOAT) and len(value) > self.limits.max_number_chars:
            raise YamlSyntaxError(
                self.doc.file,
                here,
                f"a number {len(value):,} characters long; numbers here have at most "
                f"{self.limits.max_number_chars}",
                "write the number the setting needs, e.g. 9600 or -18.5; quote it if it is "
                "meant as text",
            )
        return ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style)

    def _sequence(self, path: PathT, depth: int) -> tuple[SequenceNode, int]:
        ev = self.events
        start = ev.get_event()
        self._deeper(depth, mark_of(start.start_mark))
        tag = start.tag
        if tag is None or tag == "!":
            tag = self._resolved(SequenceNode, None, start.implicit)
        node = SequenceNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        size = 1
        while not ev.check_event(SequenceEndEvent):
            item, n = self._node((*path, len(node.value)), depth)
            node.value.append(item)
            size += n
        node.end_mark = ev.get_event().end_mark
        return node, size

    def _mapping(self, path: PathT, depth: int) -> tuple[MappingNode, int]:
        ev = self.events
        start = ev.get_event()
        self._deeper(depth, mark_of(start.start_mark))
        tag = start.tag
        if tag is None or tag == "!":
            tag = self._resolved(MappingNode, None, start.implicit)
        node = MappingNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        size = 1
        seen: dict[str, Mark] = {}
        while not ev.check_event(MappingEndEvent):
            key_node, key = self._key()
            here = mark_of(key_node.start_mark)
            if key in seen:
                self.doc.duplicates.append(((*path, key), seen[key], here))
            seen[key] = here
            self.doc.key_marks[(*path, key)] = here
            value, n = self._node((*path, key), depth)
            node.value.append((key_node, value))
            size += 1 + n
        node.end_mark = ev.get_event().end_mark
        return node, size

    def _key(self) -> tuple[ScalarNode, str]:
        """A mapping key: a scalar, or an alias of one."""
        event = self.events.peek_event()
        here = mark_of(event.start_mark)
        if isinstance(event, AliasEvent):
            self.events.get_event()
            node, _ = self._alias(event.anchor or "", here)
        elif isinstance(event, ScalarEvent):
            if event.anchor is not None:
                self._new_anchor(event.anchor, here)
            node = self._scalar(self.events.get_event())
            if event.anchor is not None:
                del self.open_anchors[event.anchor]
                self.anchors[event.anchor] = (node, 1)
        else:
            node = None
        if not isinstance(node, ScalarNode):
            kind = "mapping" if isinstance(event, MappingStartEvent) else "list"
            raise YamlSyntaxError(
                self.doc.file,
                here,
                f"a {kind} used as a key",
                "keys are names, e.g. 'rooms:'; quote the key if it contains '[', '{' or '?'",
            )
        return node, node.value


class GuardedConstructor(SafeConstructor):
    """PyYAML's safe constructor; a value it cannot build is a
    :class:`~coldchain.config.yamldoc.YamlSyntaxError` there."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (YamlSyntaxError, yaml.MarkedYAMLError):
            raise
        except (ValueError, LookupError, TypeError, AttributeError, ArithmeticError) as exc:
            raise _bad_value(self.file, node) from exc

    def build(self, node: Node) -> Any:
        """The data of the document ``node``."""
        try:
            return self.construct_document(node)
        except yaml.constructor.ConstructorError as exc:
            raise _constructor_problem(self.file, exc) from exc


def _bad_value(file: str, node: Node) -> YamlSyntaxError:
    is_not = _IS_NOT.get(node.tag, f"cannot be read as {show_tag(node.tag)}")
    text = _short(str(node.value))
    return YamlSyntaxError(
        file,
        mark_of(node.start_mark),
        f"{text!r} {is_not}",
        f'correct it, or quote it ("{text}") to keep it as text',
    )


def _constructor_problem(file: str, exc: yaml.constructor.ConstructorError) -> YamlSyntaxError:
    problem = exc.problem or ""
    mark = exc.problem_mark or exc.context_mark
    here = mark_of(mark) if mark is not None else Mark(1, 1)
    if problem.startswith("could not determine a constructor for the tag"):
        tag = show_tag(problem.rpartition(" ")[2].strip("'"))
        return YamlSyntaxError(
            file,
            here,
            f"the tag {tag} is not one a config uses",
            "remove the tag (the word starting with '!'), or quote the value if '!' is text",
        )
    if "for merging" in problem:
        return YamlSyntaxError(
            file,
            here,
            "'<<:' merges mappings, e.g. '<<: *defaults', but is given something else here",
            "give '<<:' an alias of a mapping, or a list of such aliases",
        )
    if problem.startswith("expected a") and "node, but found" in problem:
        return YamlSyntaxError(
            file, here, f"the tag here does not fit the value ({problem})", "remove the tag"
        )
    return YamlSyntaxError(
        file, here, f"cannot build this value: {_short(problem, 80)}", "remove the tag, or quote it"
    )
