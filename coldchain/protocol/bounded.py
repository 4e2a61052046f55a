"""Bounded JSON parsing for messages from outside: a payload too large or nested too deep is
refused with a :class:`~coldchain.protocol.messages.ProtocolError` before ``json.loads``
sees it, so no message can exhaust memory or raise ``RecursionError`` in the caller.

The depth check scans the text once, without recursion: it skips string literals (a bracket
inside a string does not nest) and counts the brackets between them.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from coldchain.protocol.messages import ProtocolError

# A JSON string literal (escapes included), a bracket, or a quote that opens no string.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|"', re.DOTALL)


def check_depth(text: str, max_depth: int) -> None:
    """Raise :class:`ProtocolError` when ``text`` nests arrays and objects deeper than
    ``max_depth``. One pass over ``text``, no recursion, stopping at the first bracket too
    deep or at a string that never ends (which no JSON has)."""
    depth = 0
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok[0] == '"':
            if len(tok) == 1:
                raise ProtocolError(
                    f"a string at character {m.start()} never ends", reason="not_json"
                )
        elif tok in "[{":
            depth += 1
            if depth > max_depth:
                raise ProtocolError(
                    f"nested deeper than {max_depth} at character {m.start()}", reason="too_deep"
                )
        else:
            depth -= 1


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def loads_bounded(data: bytes, *, max_bytes: int, max_depth: int, what: str) -> Any:
    """The JSON value in ``data``, or :class:`ProtocolError` saying why not: more than
    ``max_bytes`` bytes, not UTF-8, nested deeper than ``max_depth``, not JSON, or a
    ``NaN``/``Infinity`` constant (not JSON, though Python's parser takes it)."""
    if len(data) > max_bytes:
        raise ProtocolError(f"{what}: {len(data)} bytes, at most {max_bytes}", reason="too_large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"{what}: not UTF-8 ({exc.reason} at byte {exc.start})", reason="not_json"
        ) from None
    try:
        check_depth(text, max_depth)
    except ProtocolError as exc:
        raise ProtocolError(f"{what}: {exc}", reason=exc.reason) from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, a 5,000-digit integer, NaN
        raise ProtocolError(f"{what}: not JSON: {exc}"[:300], reason="not_json") from None
