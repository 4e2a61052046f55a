"""gateway_offline: a gateway whose link (status, last will, health) has been down longer
than a set time. gateway_clock: a gateway whose clock is further from the hub's than a set
offset, as the hub measures it (coldchain.protocol.timesync). Evaluated by the hub only: an
agent knows its own link is down, and cannot measure its own clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, Literal

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

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo


class _GatewayRule(RuleBase, Graded):
    """A rule with one watch per gateway of the site, judged on the gateway's view."""

    kind: str
    _quantity: ClassVar[str]
    _unit: ClassVar[str] = ""
    _timed: ClassVar[bool] = False

    def _delay_ms(self) -> int:
        return 0

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        raise NotImplementedError

    def watches(
        self,
        site: Site,
        room: Room,
        points: list[PointInfo],
        ctx: WatchContext,
    ) -> Iterator[Watch]:
        for gw in ctx.gateways:
            yield Watch(
                key=f"{self.id}/{self.severity}/{gw}",
                rule=self,
                tier=self.severity,
                severity=self.severity,
                policy=ctx.policy(self.severity, self.policy),
                site=site.id,
                room=None,
                gateway=gw,
                series=None,
                quantity=self._quantity,
                unit=self._unit,
                delay_ms=self._delay_ms(),
                timed=self._timed,
            )


class GatewayOfflineRule(_GatewayRule):
    """A gateway of the site offline for longer than ``longer_than``."""

    kind: Literal["gateway_offline"] = "gateway_offline"
    longer_than: Duration = Field(description="how long offline before alerting, e.g. 5min")
    _quantity = "gateway"
    _timed = True

    def _delay_ms(self) -> int:
        return round(self.longer_than * 1000)

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        gw = views.gateways.get(w.gateway or "")
        if gw is None or gw.online:
            return CLEAR
        return Verdict(bad=True, since_ms=gw.offline_since_ms)


class GatewayClockRule(_GatewayRule):
    """A gateway of the site whose clock is off the hub's by more than ``max_offset``; each
    offset is the best of several exchanges already, so it alerts at once."""

    kind: Literal["gateway_clock"] = "gateway_clock"
    max_offset: Duration = Field(
        description="how far the gateway's clock may be from the hub's, e.g. 2s; beyond it "
        "the readings it stamps are at the wrong time"
    )
    _quantity = "clock"
    _unit = "s"

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        gw = views.gateways.get(w.gateway or "")
        if gw is None or gw.clock_offset_ms is None:
            return CLEAR
        off = gw.clock_offset_ms / 1000
        if abs(off) <= self.max_offset:
            return CLEAR
        return Verdict(bad=True, value=round(off, 3), limit=self.max_offset)
