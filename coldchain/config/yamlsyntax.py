"""YAML syntax errors in plain words: what is wrong at which line, and how to fix it.

PyYAML's parser and libyaml's word the same mistake differently ("expected <block end>, but
found '?'" / "did not find expected '-' indicator") and sometimes point at different
columns. :func:`explain` reads the kind of error from either and the text around it, and
says the same thing for both: the common mistakes in a hand-written config (indentation,
tabs, a key without ':', ': ' inside a value, unclosed quotes and brackets, stray closing
brackets, undefined aliases, a second document) each get their own message; anything else
keeps the parser's words, located, with a general fix.
"""

from __future__ import annotations

import re

import yaml

from coldchain.config.yamlcompose import mark_of, too_deep
from coldchain.config.yamldoc import Mark, YamlLimits, YamlSyntaxError

_BREAKS = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
_CLOSER = {"[": "]", "{": "}"}
_OPENER = {"]": "[", "}": "{"}
_KEY_AT_START = re.compile(r"^\s*(?:-\s+)*((?:-(?=\S)|[^-\s#'\"\[\]{},:])[^:#]*?)\s*:(?:\s|$)")


class _Text:
    """The lines of the file, to look at what stands at a mark."""

    def __init__(self, text: str) -> None:
        self.lines = _BREAKS.split(text)

    def line(self, n: int) -> str:
        """Line ``n`` (1-based), or '' past the end."""
        return self.lines[n - 1] if 0 < n <= len(self.lines) else ""

    def char(self, m: Mark) -> str:
        line = self.line(m.line)
        return line[m.col - 1] if 0 < m.col <= len(line) else ""

    def indent(self, n: int) -> int:
        line = self.line(n)
        return len(line) - len(line.lstrip(" "))

    def is_blank(self, n: int) -> bool:
        s = self.line(n).strip()
        return not s or s.startswith("#")


def _key_indent(line: str) -> int:
    """Spaces before the first key of ``line`` (after any '- ' list markers)."""
    i = len(line) - len(line.lstrip(" "))
    while line[i : i + 2] == "- " or line[i:] == "-":
        i += 1
        while i < len(line) and line[i] == " ":
            i += 1
    return i


def _open_indents(t: _Text, n: int) -> list[int]:
    """Indents (in spaces) of the keys of the blocks that may hold line ``n``: walking up from
    the line above it, each key line less indented than every line between is one."""
    out: set[int] = {0}
    floor: int | None = None
    for k in range(n - 1, 0, -1):
        if t.is_blank(k):
            continue
        ind = t.indent(k)
        if floor is None or ind < floor:
            floor = ind
            if _KEY_AT_START.match(t.line(k)):
                out.add(_key_indent(t.line(k)))
        if floor == 0:
            break
    return sorted(out, reverse=True)


def _word(line: str, col: int) -> str:
    """The key or word that starts at column ``col`` (1-based), shortened."""
    m = re.match(r"[^\s:,\[\]{}#]+", line[col - 1 :])
    return _shorten(m.group(0) if m else line[col - 1 : col])


def _spaces(n: int) -> str:
    return f"{n} space{'s' if n != 1 else ''}"


def _choices(indents: list[int]) -> str:
    words = [str(i) for i in indents]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def explain(exc: yaml.MarkedYAMLError, text: str, limits: YamlLimits, file: str) -> YamlSyntaxError:
    """The plain account of ``exc`` (raised by either parser while reading ``text``)."""
    t = _Text(text)
    ctx, problem = exc.context or "", exc.problem or ""
    pm = mark_of(exc.problem_mark) if exc.problem_mark is not None else None
    cm = mark_of(exc.context_mark) if exc.context_mark is not None else None
    at = pm or cm or Mark(1, 1)
    if "nesting depth" in problem:  # libyaml's own bound, met while looking ahead for a key
        return too_deep(file, at, limits)
    for rule in (_tab, _colon_in_value, _no_colon, _quote, _flow, _block, _misc):
        found = rule(t, ctx, problem, at, cm)
        if found is not None:
            return YamlSyntaxError(file, *found)
    words = f"{ctx}, {problem}" if ctx else problem
    return YamlSyntaxError(
        file,
        at,
        f"YAML cannot read this line ({words})",
        "check this line and the one above it: indentation (spaces only), a ': ' after each "
        "key, quotes and brackets that are closed",
    )


Rule = tuple[Mark, str, str] | None


def _tab(t: _Text, ctx: str, problem: str, at: Mark, cm: Mark | None) -> Rule:
    if "cannot start any token" not in problem and "tab" not in problem:
        return None
    line = t.line(at.line)
    if "tab" in problem or t.char(at) == "\t":
        col = line.find("\t") + 1 if "\t" in line else at.col
        return (
            Mark(at.line, col),
            f"a tab character on line {at.line}: YAML indents with spaces only",
            "replace the tab with spaces (set your editor to insert spaces for Tab)",
        )
    ch = t.char(at)
    value = _shorten(line[at.col - 1 :].split(" #")[0].strip())
    return (
        at,
        f"a value cannot start with {ch!r} (YAML reserves it)",
        f'put the value in quotes: "{value}"',
    )


def _colon_in_value(t: _Text, ctx: str, problem: str, at: Mark, cm: Mark | None) -> Rule:
    if not problem.startswith("mapping values are not allowed"):
        return None
    line = t.line(at.line)
    key = _KEY_AT_START.match(line)
    if key is not None and key.end(1) < at.col - 1 and line.find(":", key.end(1)) < at.col - 1:
        # 'name: Cold room: 1': the second ': ' is in the value
        name, value = _shorten(key.group(1)), _shorten(line[key.end(0) :].split(" #")[0].strip())
        return (
            at,
            f"the value of {name!r} contains ': ', which YAML reads as another key",
            f'put the value in quotes: {name}: "{value}"',
        )
    # the key of this line is indented deeper than the line above, which has a value
    above = next((k for k in range(at.line - 1, 0, -1) if not t.is_blank(k)), 0)
    word = _word(line, t.indent(at.line) + 1).rstrip(":")
    if above == 0:
        return (at, f"{word!r} cannot be a key here", f'quote it: "{word}"')
    above_line = t.line(above)
    above_key = _KEY_AT_START.match(above_line)
    if above_key is None:
        return (
            at,
            f"'{word}:' on line {at.line} is indented deeper than line {above}, so YAML reads "
            f"it as more text of the value on line {above}",
            f"indent '{word}:' like the other keys of its block",
        )
    name, col = _shorten(above_key.group(1)), _key_indent(above_line)
    return (
        at,
        f"'{word}:' is indented deeper than '{name}:' on line {above}, which already has a "
        "value, so YAML reads it as more of that value",
        f"indent '{word}:' like '{name}:' ({_spaces(col)}); or, if it belongs under "
        f"'{name}', remove the value after '{name}:'",
    )


def _no_colon(t: _Text, ctx: str, problem: str, at: Mark, cm: Mark | None) -> Rule:
    if "could not find expected ':'" not in problem or cm is None:
        return None
    text = t.line(cm.line).strip()
    first, _, rest = text.partition(" ")
    example = f"{first}: {rest}" if rest else f"{first}: ..."
    return (
        cm,
        f"line {cm.line} ({_shorten(text)!r}) is not 'key: value': the ':' after the key "
        "is missing",
        f"write a ':' and a space after the key, e.g. '{_shorten(example)}'; or, if the line "
        "continues the value above, indent it deeper than that value's key",
    )


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _quote(t: _Text, ctx: str, problem: str, at: Mark, cm: Mark | None) -> Rule:
    if "quoted scalar" not in ctx or cm is None:
        return None
    if "escape" in problem:
        line = t.line(at.line)
        col = at.col if t.char(at) == "\\" else max(at.col - 1, 1)
        seq = line[col - 1 : col + 1]
        return (
            Mark(at.line, col),
            f"'{seq}' is not an escape YAML knows inside double quotes",
            "write '\\\\' for a backslash, or use single quotes, which keep backslashes as "
            "they are",
        )
    quote = t.char(cm) or '"'
    if "end of stream" in problem or "document" in problem:
        return (
            cm,
            f"the quote {quote} opened on line {cm.line} is never closed",
            f"end the value with {quote}; to write {quote} inside it, "
            + ("double it ('it''s')" if quote == "'" else 'write \\"'),
        )
    return None


def _flow(t: _Text, ctx: str, problem: str, at: Mark, cm: Mark | None) -> Rule:
    if "flow" not in ctx or cm is None:
        return None
    opener = t.char(cm)
    if opener not in _CLOSER:
        return None
    closer = _CLOSER[opener]
    found = t.char(at)
    if at.line != cm.line or "stream end" in problem or found == "":
        return (
            cm,
            f"the '{opener}' on line {cm.line} is not closed before line {at.line}",
            f"close it with '{closer}' at the end of the line, e.g. "
            + ("[a, b]" if opener == "[" else "{id: a, name: b}"),
        )
    if found in _OPENER:
        return (
            at,
            f"'{found}' closes the '{opener}' at column {cm.col}",
            f"close it with '{closer}' instead",
        )
    if found == ":":
        return (
            at,
            f"a ': ' inside '{opener} {closer}' where ',' or '{closer}' was expected: a value "
            "contains ': '",
            'put that value in quotes, e.g. {name: "Room: 1"}',
        )
    return (
        at,
        f"{found!r} where ',' or '{closer}' was expected (in the '{opener}' at column {cm.col})",
        f"separate the entries with ', ' and close with '{closer}'; quote values that contain "
        "',', '[', ']', '{' or '}'",
    )


def _block(t: _Text, ctx: str, problem: str, at: Mark, cm: Mark | None) -> Rule:
    if not ctx.startswith(("while parsing a block mapping", "while parsing a block collection")):
        return None
    if cm is None or not problem.startswith(("expected <block end>", "did not find expected")):
        return None
    line, found = t.line(at.line), t.char(at)
    if found in _OPENER:
        return (
            at,
            f"a '{found}' with no '{_OPENER[found]}' before it",
            f"remove it, or open the list or mapping with '{_OPENER[found]}'",
        )
    before = line[: at.col - 1].rstrip()
    if before.endswith(("'", '"')) and before.lstrip(" -"):
        return _after_quote(t, at, before[-1])
    word = _word(line, at.col)
    if found in ":?":
        return (
            at,
            f"a '{found}' with no key before it on line {at.line}",
            "write the key before the colon, e.g. 'name: value', or quote the value if it "
            f"starts with '{found}'",
        )
    if found == "-" and "mapping" in ctx:
        return (
            at,
            f"a list item ('- ') on line {at.line} where 'key: value' lines were expected",
            "if the list belongs to the key above, leave that key's value empty and indent "
            "the items under it; otherwise write 'key: value'",
        )
    if "collection" in ctx and at.col == cm.col:
        inner = _key_indent(t.line(cm.line))
        return (
            at,
            f"'{word}' on line {at.line} stands where the list of line {cm.line} expects "
            "another '- ' item",
            f"start it with '- ' if it is a new item, or indent it by {_spaces(inner)} if it "
            "belongs to the item above",
        )
    indents = [i for i in _open_indents(t, at.line) if i != at.col - 1]
    if not indents:
        return (
            at,
            f"line {at.line} does not fit the block that starts on line {cm.line}",
            "check this line and the one above it: a ': ' after each key, '- ' before each "
            "list item, the same indentation for the keys of one block",
        )
    return (
        at,
        f"bad indentation: line {at.line} is indented by {_spaces(at.col - 1)}, which lines up "
        f"with no block around it (the keys around it are indented by {_choices(indents)})",
        f"indent '{word}' by exactly as many spaces as the other keys of its block "
        f"({_choices(indents)}), with spaces only",
    )


def _after_quote(t: _Text, at: Mark, quote: str) -> tuple[Mark, str, str]:
    """Text after a closing quote: a value with more after its quotes, or a quote left open
    on an earlier line and closed by the first quote of this one."""
    before = t.line(at.line)[: at.col - 1].replace('\\"', "")
    if before.count(quote) % 2 == 1:
        opened = next(
            (k for k in range(at.line - 1, 0, -1) if t.line(k).count(quote) % 2 == 1), None
        )
        if opened is not None:
            return (
                Mark(opened, t.line(opened).rfind(quote) + 1),
                f"the quote {quote} opened on line {opened} is not closed on that line, so the "
                f"value runs on to the {quote} on line {at.line}",
                f"end the value on line {opened} with {quote}",
            )
    return (
        at,
        f"text after the closing quote {quote} on line {at.line}",
        "put all of the value inside the quotes",
    )


def _misc(t: _Text, ctx: str, problem: str, at: Mark, cm: Mark | None) -> Rule:
    found = t.char(at)
    if "node content" in problem and found in _OPENER:
        return (
            at,
            f"a '{found}' with no '{_OPENER[found]}' before it",
            f"remove it, or open the list or mapping with '{_OPENER[found]}'",
        )
    if "undefined alias" in problem:
        name = _word(t.line(at.line), at.col + 1)
        return (
            at,
            f"*{name} refers to no anchor: nothing above is marked &{name}",
            f"mark the value to repeat with '&{name}' above this line, or quote the value if "
            "'*' is meant as text",
        )
    if ("anchor" in ctx or "alias" in ctx) and cm is not None:
        sign = t.char(cm) or "&"
        return (
            cm,
            f"'{sign}' must be followed by a name",
            f"write a name after '{sign}' (e.g. '{sign}defaults'), or quote the value if "
            f"'{sign}' is text",
        )
    if "<document start>" in problem:
        return (
            at,
            f"line {at.line} is indented less than the first line of the file",
            "start every top-level key at the beginning of its line, with no spaces before it",
        )
    if "single document" in ctx:
        return (
            at,
            f"a second YAML document starts at line {at.line} (after '---' or '...')",
            "a config file is one document: remove the '---' or '...' line and what follows "
            "it, or merge the two",
        )
    if "block scalar" in ctx:
        return (
            at,
            "after '|' or '>' only '-', '+' or an indentation digit may follow on the same line",
            "start the text on the next line, indented",
        )
    if "directive" in ctx or "tag" in ctx:
        sign = "%" if "directive" in ctx else "!"
        return (
            cm or at,
            f"'{sign}' starts a YAML {'directive' if sign == '%' else 'tag'} that cannot be "
            "read here",
            f"quote the value if '{sign}' is text; a config needs no directives or tags",
        )
    return None
