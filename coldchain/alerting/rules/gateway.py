"""The technicians' rules, one watch per gateway, evaluated by the hub only (an agent knows
its own link is down, and cannot measure its own clock):

* gateway_offline: its link (status, last will, health) down longer than a set time;
* gateway_clock: its clock further from the hub's than a set offset, as the hub measures it
  (coldchain.protocol.timesync);
* gateway_backlog: the oldest reading in its outbox waiting longer than a set age (its
  health report): the uplink is not keeping up;
* gateway_disk: the outbox's filesystem with less than a set share free (its health
  report)."""

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


class GatewayBacklogRule(_GatewayRule):
    """An online gateway whose oldest unsent reading has waited longer than ``max_age``."""

    kind: Literal["gateway_backlog"] = "gateway_backlog"
    max_age: Duration = Field(
        description="how long the oldest reading may wait in the outbox, e.g. 30min; longer "
        "and the uplink is not keeping up (a slow or metered link, acks not coming)"
    )
    _quantity = "backlog"
    _unit = "min"

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        gw = views.gateways.get(w.gateway or "")
        # offline: its last report is stale, and gateway_offline says what matters
        if gw is None or not gw.online or gw.backlog_age_s is None:
            return CLEAR
        if gw.backlog_age_s <= self.max_age:
            return CLEAR
        return Verdict(bad=True, value=round(gw.backlog_age_s / 60, 1), limit=self.max_age / 60)


class GatewayDiskRule(_GatewayRule):
    """A gateway whose outbox's filesystem has less than ``min_free`` % free."""

    kind: Literal["gateway_disk"] = "gateway_disk"
    min_free: float = Field(
        ge=0.0, le=100.0, description="% of the outbox's filesystem that must stay free, e.g. 5"
    )
    _quantity = "disk"
    _unit = "%"

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        gw = views.gateways.get(w.gateway or "")
        if gw is None or gw.disk_free_pct is None or gw.disk_free_pct >= self.min_free:
            return CLEAR
        return Verdict(bad=True, value=round(gw.disk_free_pct, 1), limit=self.min_free)
