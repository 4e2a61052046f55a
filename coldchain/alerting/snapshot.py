"""What the alert side publishes for the live board: an immutable picture of the open
alerts, each series' latest reading and each room's defrost and maintenance state.

Readers (the live board) see only this, never the evaluator's working state, and may keep a
snapshot as long as they like: nothing in it changes afterwards. Building one costs a copy of
the latest reading of every series, the state of every room and the open alerts (never the
readings' history), the same order of work as drawing the board from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from coldchain.alerting.states import AlertState
from coldchain.alerting.views import Views


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


@dataclass(frozen=True, slots=True)
class SeriesNow:
    """The latest of one series: its last reading's time (any quality), the last good value,
    whether that last reading was good, and since when the value has held."""

    ts_ms: int | None
    value: float | None
    good: bool
    changed_ms: int | None


@dataclass(frozen=True, slots=True)
class RoomNow:
    """A room's defrost and maintenance state (maintenance ends at ``maintenance_until_ms``)."""

    defrosting: bool
    maintenance_until_ms: int | None


EMPTY_ROOM = RoomNow(defrosting=False, maintenance_until_ms=None)


@dataclass(frozen=True, slots=True)
class AlertSnapshot:
    """Open alerts (by id), series by their id text, rooms by (site, room)."""

    alerts: tuple[OpenAlert, ...]
    series: Mapping[str, SeriesNow]
    rooms: Mapping[tuple[str, str], RoomNow]

    @classmethod
    def build(cls, alerts: Iterable[OpenAlert], views: Views) -> AlertSnapshot:
        series = {
            name: SeriesNow(v.ts_ms, v.value, v.good, v.changed_ms)
            for name, v in views.series.items()
        }
        rooms = {
            key: RoomNow(r.defrosting, r.maintenance_until_ms) for key, r in views.rooms.items()
        }
        return cls(
            alerts=tuple(sorted(alerts, key=lambda a: a.id)),
            series=MappingProxyType(series),
            rooms=MappingProxyType(rooms),
        )

    def room(self, site: str, room: str) -> RoomNow:
        return self.rooms.get((site, room), EMPTY_ROOM)
