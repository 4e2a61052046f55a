"""Logging what came from outside without letting it flood the log.

* :func:`clip` makes any value one short line: control characters escaped, at most
  ``limit`` characters, saying how much was cut. Everything derived from a payload or from
  a peer's error is passed through it before it reaches a log record.
* :class:`RateLimitedLog` logs the first occurrence of each (source, reason) at once, then
  at most one line per ``interval_s`` saying how many more there were meanwhile. A flood of
  junk costs a few lines a minute, not a line per message; the exact counts live in the
  metrics, not in the log. The number of distinct keys is bounded (a sender can invent
  sources): beyond ``max_keys`` new sources share one key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

CLIP = 300


def clip(value: object, limit: int = CLIP) -> str:
    """``value`` as one line of at most about ``limit`` characters."""
    text = value if isinstance(value, str) else _text(value)
    head = text[:limit]
    line = head.encode("unicode_escape").decode("ascii") if not head.isprintable() else head
    if len(text) > limit:
        return f"{line}… ({len(text) - limit} more characters)"
    return line


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return repr(bytes(value[: CLIP * 2]))
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not break logging
        return f"<{type(value).__name__}>"


class RateLimitedLog:
    """Log lines per (source, reason), the first at once and then a summary per interval."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = 60.0,
        max_keys: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.clock = clock
        self._seen: dict[tuple[str, str], list[float]] = {}  # key -> [last logged, held]

    def log(
        self, level: int, key: tuple[str, str], msg: str, *args: object, exc_info: bool = False
    ) -> bool:
        """Log ``msg % args`` (each argument :func:`clip`-ped) unless ``key`` was logged less
        than ``interval_s`` ago; then only count it. True when a line was written."""
        now = self.clock()
        if key not in self._seen and len(self._seen) >= self.max_keys:
            key = ("(others)", key[1])
        state = self._seen.get(key)
        safe = tuple(a if isinstance(a, int | float) else clip(a) for a in args)
        if state is None:
            self._seen[key] = [now, 0]
            self.logger.log(level, msg, *safe, exc_info=exc_info)
            return True
        last, held = state
        if now - last < self.interval_s:
            state[1] = held + 1
            return False
        state[0], state[1] = now, 0
        if held:
            summary = msg + " (and %d more like it in the last %.0fs)"
            self.logger.log(level, summary, *safe, held, now - last, exc_info=exc_info)
        else:
            self.logger.log(level, msg, *safe, exc_info=exc_info)
        return True

    def warning(
        self, key: tuple[str, str], msg: str, *args: object, exc_info: bool = False
    ) -> bool:
        return self.log(logging.WARNING, key, msg, *args, exc_info=exc_info)
