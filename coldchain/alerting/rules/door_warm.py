"""door_open_warm: a door open while the room is already warmer than a limit — the cold is
leaving a room that has none to spare."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from coldchain.alerting.rules.base import (
    CLEAR,
    Graded,
    RuleBase,
    Verdict,
    Watch,
    WatchContext,
)
from coldchain.durations import Duration
from coldchain.profiles.schema import PointKind, PointRole

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo


class DoorOpenWarmRule(RuleBase, Graded):
    """Any door of the room open while any room-air temperature is above ``above``."""

    kind: Literal["door_open_warm"] = "door_open_warm"
    above: float | Literal["room"] = Field(
        "room", description="°C, or 'room': the room's high temperature limit"
    )
    delay: Duration = Field(60.0, description="how long both must hold")

    def watches(
        self, site: Site, room: Room, points: list[PointInfo], ctx: WatchContext
    ) -> Iterator[Watch]:
        limit = room.effective_limits.temperature.high if self.above == "room" else self.above
        doors = [str(p.sid) for p in points if p.kind is PointKind.DOOR]
        temps = [
            str(p.sid)
            for p in points
            if p.kind is PointKind.TEMPERATURE and p.role is PointRole.ROOM
        ]
        if limit is None or not doors or not temps:
            return
        yield Watch(
            key=f"{self.id}/{self.severity}/{site.id}/{room.id}",
            rule=self,
            tier=self.severity,
            severity=self.severity,
            policy=ctx.policy(self.severity, self.policy),
            site=site.id,
            room=room.id,
            gateway=None,
            series=None,
            quantity="temperature",
            unit="°C",
            delay_ms=round(self.delay * 1000),
            inputs=(*doors, *temps),
            limit=float(limit),
            direction="above",
        )

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        door_open = False
        warmest: float | None = None
        for name in w.inputs:
            s = views.series.get(name)
            if s is None or s.value is None or not s.good:
                continue
            if s.kind == "door":
                door_open = door_open or s.value >= 0.5
            elif warmest is None or s.value > warmest:
                warmest = s.value
        bad = door_open and warmest is not None and w.limit is not None and warmest > w.limit
        if not bad and not active:
            return CLEAR
        return Verdict(bad=bad, value=warmest, limit=w.limit)
