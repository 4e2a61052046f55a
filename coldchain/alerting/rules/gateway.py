"""gateway_offline: a gateway whose link (status, last will, health) has been down longer
than a set time. Evaluated by the hub only: an agent knows its own link is down."""

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

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo


class GatewayOfflineRule(RuleBase, Graded):
    """A gateway of the site offline for longer than ``longer_than``."""

    kind: Literal["gateway_offline"] = "gateway_offline"
    longer_than: Duration = Field(description="how long offline before alerting, e.g. 5min")

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
                quantity="gateway",
                unit="",
                delay_ms=round(self.longer_than * 1000),
                timed=True,
            )

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        gw = views.gateways.get(w.gateway or "")
        if gw is None or gw.online:
            return CLEAR
        return Verdict(bad=True, since_ms=gw.offline_since_ms)
