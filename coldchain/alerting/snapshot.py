"""What the alert side publishes for the live board: an immutable picture of the open
alerts, each series' latest reading, each room's defrost and maintenance state and the time
of its latest reading.

Readers (the live board) see only this, never the evaluator's working state, and may keep a
snapshot as long as they like: nothing in it changes afterwards. :class:`SnapshotBuilder`
builds successive ones at the cost of the series that changed in between (plus a copy of a
mapping), the state of every room and the open alerts, never the readings' history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from coldchain.alerting.states import AlertState
from coldchain.alerting.views import SeriesView, Views


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An open alert as the board lists it; ``since_ms`` is when it fired (when it began,
    while pending)."""

    id: int
    rule: str
    kind: str  # the rule's kind
    quantity: str
    direction: str | None
    severity: str
    state: AlertState
    site: str
    room: str | None
    since_ms: int


class SeriesNow(NamedTuple):
    """The latest of one series: its last reading's time (any quality), the last value (of a
    good or uncertain reading), whether that last reading had one, and since when the value
    has held. A named tuple, not a frozen dataclass: a snapshot builds one per series
    updated, about one per reading ingested, and a tuple is several times cheaper to build."""

    ts_ms: int | None
    value: float | None
    good: bool
    changed_ms: int | None


@dataclass(frozen=True, slots=True)
class RoomNow:
    """A room's defrost and maintenance state (maintenance ends at ``maintenance_until_ms``)
    and the time of the latest reading of any of its series (None: none yet)."""

    defrosting: bool
    maintenance_until_ms: int | None
    last_ms: int | None = None


EMPTY_ROOM = RoomNow(defrosting=False, maintenance_until_ms=None)


def _series_now(v: SeriesView) -> SeriesNow:
    return SeriesNow(v.ts_ms, v.value, v.good, v.changed_ms)


def _rooms_now(views: Views) -> Mapping[tuple[str, str], RoomNow]:
    return MappingProxyType(
        {
            key: RoomNow(r.defrosting, r.maintenance_until_ms, r.last_ms)
            for key, r in views.rooms.items()
        }
    )


@dataclass(frozen=True, slots=True)
class AlertSnapshot:
    """Open alerts (by id), series by their id text, rooms by (site, room)."""

    alerts: tuple[OpenAlert, ...]
    series: Mapping[str, SeriesNow]
    rooms: Mapping[tuple[str, str], RoomNow]

    def room(self, site: str, room: str) -> RoomNow:
        return self.rooms.get((site, room), EMPTY_ROOM)


class SnapshotBuilder:
    """Successive snapshots of one live state, each at the cost of the series updated since
    the previous one (``Views.changed``) plus a copy of the previous series mapping, not a
    copy of every series: the live board asks for one on every commit. The first snapshot
    of a :class:`Views` (or of another one, after it was replaced) copies every series."""

    def __init__(self) -> None:
        self._views: Views | None = None
        self._series: dict[str, SeriesNow] = {}

    def build(self, alerts: tuple[OpenAlert, ...], views: Views) -> AlertSnapshot:
        """The snapshot of ``alerts`` (in id order) and ``views``."""
        if views is not self._views:
            self._views = views
            series = {name: _series_now(v) for name, v in views.series.items()}
        elif not views.changed:
            series = self._series  # nothing changed: shared with the previous snapshot
        else:
            series = self._series.copy()  # the previous snapshot keeps its own, unchanged
            for name in views.changed:
                v = views.series.get(name)
                if v is not None:
                    series[name] = _series_now(v)
        views.changed.clear()
        self._series = series
        return AlertSnapshot(
            alerts=alerts, series=MappingProxyType(series), rooms=_rooms_now(views)
        )
