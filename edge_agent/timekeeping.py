"""Whether the gateway's clock can be trusted to stamp readings.

A Raspberry Pi has no real-time clock: after a power cut with the 4G link down it boots with
the time it last saved (fake-hwclock, or systemd's timesync clock file) and keeps counting
from there until NTP answers. The kernel knows: until a time service has set and disciplined
the clock, ``adjtimex(2)`` answers ``TIME_ERROR`` (what ``timedatectl`` shows as "System
clock synchronized: no"). While it does, the agent marks every good reading it takes
``uncertain`` with the reason :data:`UNSYNCHRONISED`: the value is real (the alert rules act
on it), its time is not to be trusted as a record (charts, reports and the stores' rollups
leave it out, as they leave out every reading that is not good). When the clock becomes
synchronised, the check notes how far it moved (:class:`ClockStep`): the error those
readings were stamped with, reported in the health report for the technician.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from coldchain.profiles.schema import PointKind
from coldchain.reading import CLOCK_UNSYNCHRONISED, Quality, Reading

UNSYNCHRONISED = CLOCK_UNSYNCHRONISED
TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


class _Timex(ctypes.Structure):
    # struct timex's leading fields (adjtimex(2)); the rest is room for the kernel to fill
    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_byte * 256),
    )


_LIBC: list[ctypes.CDLL] = []  # the C library, once found


def _libc() -> ctypes.CDLL:
    """The C library the process runs on, looked up once: the symbols already loaded
    (``dlopen(NULL)``), else by name. (``ctypes.util.find_library`` runs ``ldconfig -p`` in a
    child process at every call: once a second, for the clock check, on a Pi.)"""
    if not _LIBC:
        lib = ctypes.CDLL(None, use_errno=True)
        if not hasattr(lib, "adjtimex"):
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _LIBC.append(lib)
    return _LIBC[0]


def kernel_synchronised() -> bool | None:
    """Whether the kernel's clock is synchronised (NTP), as ``timedatectl`` reports it:
    ``adjtimex(2)`` with nothing to change, which answers TIME_ERROR while it is not. None
    where that cannot be asked (not Linux)."""
    try:
        state = _libc().adjtimex(ctypes.byref(_Timex()))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != TIME_ERROR)


def unknown() -> bool | None:
    """The clock check turned off (``agent.clock_check: false``): nothing is marked."""
    return None


@dataclass(frozen=True, slots=True)
class ClockStep:
    """A synchronisation seen: when (the corrected clock, UTC ms), how far the clock moved
    then beyond the time that passed (the error the readings before it were stamped with;
    near 0 when the time service slews the clock instead of stepping it), and how many
    readings were marked uncertain in the span that ended."""

    at_ms: int
    step_ms: int
    marked: int


class ClockCheck:
    """Asks ``probe`` (default: the kernel) at most once per ``every`` seconds whether the
    clock is synchronised, and marks readings taken while it is not."""

    def __init__(
        self,
        probe: Callable[[], bool | None] = kernel_synchronised,
        *,
        every: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.probe, self.every, self._monotonic, self._wall = probe, every, monotonic, wall
        self._asked: float | None = None
        self._asked_wall = 0.0
        self._state: bool | None = None
        self.marked = 0  # readings marked uncertain since start (the health report)
        self._marked_before = 0  # ``marked`` when the clock was last seen unsynchronised first
        self.last_step: ClockStep | None = None  # the last synchronisation seen, and its step

    @property
    def state(self) -> bool | None:
        """Synchronised (True), not (False), or cannot be told (None): asked again when the
        last answer is older than ``every``."""
        now = self._monotonic()
        if self._asked is None or now - self._asked >= self.every:
            wall, before = self._wall(), self._state
            state = self.probe()
            if state is False and before is not False:
                self._marked_before = self.marked
            if state is True and before is False and self._asked is not None:
                # what the wall clock moved beyond the time that passed: the error it had
                step = (wall - self._asked_wall) - (now - self._asked)
                self.last_step = ClockStep(
                    at_ms=int(wall * 1000),
                    step_ms=round(step * 1000),
                    marked=self.marked - self._marked_before,
                )
            self._state, self._asked, self._asked_wall = state, now, wall
        return self._state

    def mark(
        self, readings: Sequence[tuple[Reading, PointKind]]
    ) -> Sequence[tuple[Reading, PointKind]]:
        """``readings``, the good ones marked uncertain if the clock is not synchronised."""
        if self.state is not False:
            return readings
        out = []
        for r, kind in readings:
            if r.quality is Quality.GOOD:
                doubt = Reading(
                    r.series, r.ts_ms, r.value, Quality.UNCERTAIN, UNSYNCHRONISED, r.meta
                )
                out.append((doubt, kind))
                self.marked += 1
            else:
                out.append((r, kind))
        return out
