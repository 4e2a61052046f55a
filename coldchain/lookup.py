"""Unknown names: the error that says what was not found and the closest known name.

HTTP-free: each API maps :class:`UnknownNameError` to its own answer (a 404).

    raise unknown("site", "s9", ["s1", "s2"])   # no site 's9'; did you mean 's1'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UnknownNameError(LookupError):
    """No ``what`` is called ``name``; ``close`` is the closest known name, if any."""

    def __init__(self, what: str, name: str, close: str | None) -> None:
        hint = f"; did you mean {close!r}?" if close else ""
        super().__init__(f"no {what} {name!r}{hint}")
        self.what, self.name, self.close = what, name, close


def unknown(what: str, name: str, known: Iterable[str]) -> UnknownNameError:
    """The error for ``name`` not among ``known``, with the closest known name (if close)."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return UnknownNameError(what, name, close[0] if close else None)
