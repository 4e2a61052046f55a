"""The store interface every backend implements.

A reading's identity is (series, timestamp): ``write`` is idempotent, and the first copy
stored wins — a resent batch can never alter a stored record (GSP: records cannot be edited).
Times are UTC epoch milliseconds. Aggregates use good readings only; bad and uncertain ones
are kept with their reason and returned by ``latest`` and ``raw``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from coldchain.reading import Reading, SeriesId


class Agg(StrEnum):
    """How readings inside one step become one value."""

    MIN = "min"
    MAX = "max"
    MEAN = "mean"
    LAST = "last"


@dataclass(slots=True)
class Bucket:
    """One step of a ranged query: its start and the aggregate (None: no good reading)."""

    ts_ms: int
    value: float | None
    count: int  # good readings in the step


@dataclass(frozen=True, slots=True)
class DoorInterval:
    """A door open from ``opened_ms`` until ``closed_ms`` (None: still open at ``end``)."""

    series: SeriesId
    opened_ms: int
    closed_ms: int | None

    def duration_ms(self, until_ms: int) -> int:
        return (self.closed_ms if self.closed_ms is not None else until_ms) - self.opened_ms


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: readings newly stored, and copies of stored ones ignored."""

    stored: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class RetimeResult:
    """What a clock correction did: readings moved, and those left where they were because
    a reading of the same series already stood at the corrected time."""

    moved: int
    conflicts: int


@dataclass(frozen=True, slots=True)
class Footprint:
    """How far back the store's readings go and what they take on disk (None: cannot tell)."""

    oldest_ms: int | None
    bytes_on_disk: int | None


@dataclass(frozen=True, slots=True)
class SealResult:
    """What a sealing round did: hours sealed, late readings sealed in addenda, and the
    newest seal (id, hour in UTC ms, link in hex; None: nothing sealed yet)."""

    hours: int
    late: int
    head: tuple[int, int, str] | None


class StoreError(RuntimeError):
    """The store could not do what was asked (backend down, bad query); says which."""


class StoreConfigError(StoreError):
    """The backend answers but is set up so that this store cannot keep its promises (e.g.
    VictoriaMetrics started with a retention that drops readings on arrival): retrying does
    not help until someone restarts it as the message says."""


class Store(abc.ABC):
    """A time-series store of readings."""

    @abc.abstractmethod
    async def write(self, readings: Sequence[Reading]) -> WriteResult:
        """Store readings durably (committed when this returns); idempotent by
        (series, ts_ms), first copy wins."""

    @abc.abstractmethod
    async def latest(self, series: Sequence[SeriesId] | None = None) -> dict[SeriesId, Reading]:
        """The newest reading of each series (all series when ``series`` is None)."""

    @abc.abstractmethod
    async def raw(self, series: SeriesId, start_ms: int, end_ms: int) -> list[Reading]:
        """Every reading of ``series`` with start_ms <= ts < end_ms, oldest first."""

    @abc.abstractmethod
    async def range(
        self, series: SeriesId, start_ms: int, end_ms: int, step_ms: int, agg: Agg
    ) -> list[Bucket]:
        """Good readings in [start_ms, end_ms) aggregated per ``step_ms`` (aligned to
        multiples of step_ms since the epoch); steps without readings are omitted. Backends
        answer long ranges from rollups (1 min, 1 h) when the step allows."""

    @abc.abstractmethod
    async def door_intervals(
        self, series: SeriesId, start_ms: int, end_ms: int
    ) -> list[DoorInterval]:
        """Open/close intervals of a door series (value 1 open, 0 closed) overlapping
        [start_ms, end_ms); an interval open before ``start_ms`` starts at its real opening."""

    @abc.abstractmethod
    async def series(self) -> list[SeriesId]:
        """Every series the store holds."""

    async def retime(self, gateway: str, start_ms: int, end_ms: int, shift_ms: int) -> RetimeResult:
        """Correct a gateway's clock error: its readings marked ``clock unsynchronised``
        stamped in [start_ms, end_ms) move ``shift_ms`` later, reason ``clock corrected by
        ...``, meta ``clock_shift_ms``; such readings arriving afterwards are moved on
        arrival. Backends that cannot move a reading raise :class:`StoreError`."""
        del gateway, start_ms, end_ms, shift_ms
        raise StoreError(f"{type(self).__name__} cannot correct readings' timestamps in place")

    async def prune(self, now_ms: int) -> int:
        """Delete what is past its retention; returns rows deleted. Backends whose server
        enforces retention itself (VictoriaMetrics, InfluxDB) keep this no-op."""
        del now_ms
        return 0

    async def seal(self, now_ms: int) -> SealResult:
        """Seal the hours that are over (and late readings of hours sealed before) so that a
        later change shows (``coldchain records verify``); the hub calls it every minute.
        Backends that cannot seal keep this no-op."""
        del now_ms
        return SealResult(0, 0, None)

    async def upkeep(self) -> None:
        """Care the store needs in the background while the hub runs (the hub runs it beside
        ingest; it returns at once when there is none, the default)."""
        return

    async def footprint(self) -> Footprint:
        """The oldest reading kept and the bytes the store takes (the records page). Backends
        that cannot tell say None."""
        return Footprint(None, None)

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and release resources."""
