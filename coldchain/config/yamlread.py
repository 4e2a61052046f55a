"""Reading a config or profile file as YAML, within bounds and in time linear in its size.

What stays true: :func:`load_yaml` returns a :class:`~coldchain.config.yamldoc.YamlDoc` or
raises a :class:`~coldchain.config.yamldoc.YamlSyntaxError` with the line, what is wrong and
the fix; never another exception, whatever the bytes. A file larger than ``max_bytes`` is
refused before it is read further; bytes that are not UTF-8 and characters YAML does not
allow (NUL, control characters) are refused at their line before parsing; the rest is bounded
by :mod:`coldchain.config.yamlcompose`. libyaml's parser is used when PyYAML has it (about
10x faster than the pure-Python one, which stays the fallback); both give the same messages.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.scanner import Scanner

from coldchain.config.yamlcompose import BoundedComposer, Events, GuardedConstructor
from coldchain.config.yamldoc import LIMITS, Mark, YamlDoc, YamlLimits, YamlSyntaxError
from coldchain.config.yamlsyntax import explain

HAVE_LIBYAML: bool = yaml.__with_libyaml__
_NOT_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BREAKS = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")


class _PyEvents(Reader, Scanner, Parser):
    """PyYAML's pure-Python parser as an event stream."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)


def _events(text: str, libyaml: bool | None) -> Events:
    if libyaml is None:
        libyaml = HAVE_LIBYAML
    if libyaml:
        from yaml._yaml import CParser

        return CParser(text)
    return _PyEvents(text)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bulk build of acyclic objects.

    Reading a config builds a few objects per byte (events, nodes, marks, the data) and no
    reference cycle. With the collector on, every full collection walks all of them again;
    on a 10 MB config that made composing 17x slower than on 1 MB instead of 10x.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_yaml(
    path: str | Path,
    text: str | None = None,
    limits: YamlLimits = LIMITS,
    *,
    libyaml: bool | None = None,
) -> YamlDoc:
    """Read ``path`` (or ``text``, named ``path``) keeping positions, within ``limits``.

    ``libyaml`` chooses the parser (default: libyaml when available).
    """
    name = str(path)
    if text is None:
        text = _read(Path(path), name, limits)
    elif len(text) > limits.max_bytes or len(_utf8(text)) > limits.max_bytes:
        raise _too_big(name, limits)
    _check_characters(name, text)
    doc = YamlDoc(name, None)
    events = _events(text, libyaml)
    try:
        with gc_paused():
            node = BoundedComposer(events, limits, doc).compose()
            doc.data = GuardedConstructor(name).build(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise explain(exc, text, limits, name) from exc
    except yaml.YAMLError as exc:  # an unmarked error: none is known to reach here
        raise YamlSyntaxError(
            name, Mark(1, 1), f"YAML cannot read the file: {exc}", "check that it is a YAML file"
        ) from exc
    finally:
        dispose = getattr(events, "dispose", None)
        if dispose is not None:
            dispose()
    return doc


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _too_big(name: str, limits: YamlLimits) -> YamlSyntaxError:
    mib = limits.max_bytes / 2**20
    return YamlSyntaxError(
        name,
        Mark(1, 1),
        f"the file is larger than {mib:g} MiB, the most a config file may be",
        "check that this is the right file: a network of hundreds of gateways fits in 1 MiB",
    )


def _read(path: Path, name: str, limits: YamlLimits) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(limits.max_bytes + 1)
    except OSError as exc:
        raise YamlSyntaxError(name, Mark(1, 1), f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > limits.max_bytes:
        raise _too_big(name, limits)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = raw[: exc.start].decode("utf-8", "replace")
        raise YamlSyntaxError(
            name,
            _position(head, len(head)),
            f"byte 0x{raw[exc.start]:02x} is not UTF-8 text ({exc.reason})",
            "save the file as UTF-8 (most editors offer it under 'Save as' or 'Encoding'); "
            "if it is not a config file, check the file name",
        ) from exc


def _position(text: str, index: int) -> Mark:
    """The line and column of ``text[index]``, counting line breaks as YAML does."""
    line, start = 1, 0
    for m in _BREAKS.finditer(text, 0, index):
        line, start = line + 1, m.end()
    return Mark(line, index - start + 1)


def _check_characters(name: str, text: str) -> None:
    bad = _NOT_YAML.search(text)
    if bad is None:
        return
    code = ord(bad.group())
    what = "a NUL character" if code == 0 else f"a control character (U+{code:04X})"
    if 0xD800 <= code <= 0xDFFF:
        what = f"an unpaired surrogate (U+{code:04X})"
    raise YamlSyntaxError(
        name,
        _position(text, bad.start()),
        f"{what}: YAML files are plain text and may not contain it",
        "remove it; if the file was damaged or is not a text file, restore it from a copy",
    )
