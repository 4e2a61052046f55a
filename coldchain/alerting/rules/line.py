"""line: the sorting line's events, from its PLC (``docs/sorting-line-plc.md``): a jam that
lasts, an emergency stop, a latched fault (its code explained), a full chute, a chute too
warm for the cold parcels waiting in it, and the line stopped while it is scheduled to run.

One rule is one ``event``; each watches the points of that event in the rooms it applies to,
found by their names in the PLC's map (``jam``, ``e_stop``, ``fault`` with ``fault_code``,
``chute_N_full``, ``chute_N_temperature``, ``conveyor_running``). Line events are the floor's
business: a line rule is a warning by default, so ``alerts.default_policy`` sends it to the
duty operator's policy, not to the managers' cold-chain alarm.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, PrivateAttr, field_validator, model_validator

from coldchain.alerting.rules.base import (
    CLEAR,
    Graded,
    RuleBase,
    Severity,
    Verdict,
    Watch,
    WatchContext,
    series_watch,
)
from coldchain.durations import Duration
from coldchain.reading import SeriesId

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo

LineEvent = Literal["jam", "e_stop", "fault", "chute_full", "chute_warm", "stopped"]
POINTS: dict[str, re.Pattern[str]] = {
    "jam": re.compile(r"jam"),
    "e_stop": re.compile(r"e_stop"),
    "fault": re.compile(r"fault"),
    "chute_full": re.compile(r"chute_(\d+)_full"),
    "chute_warm": re.compile(r"chute_(\d+)_temperature"),
    "stopped": re.compile(r"conveyor_running"),
}
"""The point names of each event in the PLC's map (the whole name matches)."""
LONGER_THAN: dict[str, float] = {
    "jam": 15 * 60.0,  # the floor clears a jam in 2-10 min; one that lasts needs a hand
    "e_stop": 0.0,
    "fault": 0.0,
    "chute_full": 2 * 60.0,
    "chute_warm": 5 * 60.0,
    "stopped": 20 * 60.0,  # longer than any jam the floor clears (the jam rule tells of those)
}
"""How long each event may last before it is an alert, when the rule does not say."""
EXPLAINED = ("jam", "e_stop", "fault")
"""Points whose alarm explains a stopped line (each has its own event): no "stopped" then."""
_SPAN = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
DAY_MS = 86_400_000


def _span(text: str) -> tuple[time, time]:
    m = _SPAN.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = map(int, m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r} is not a time of day")
    return time(h1, m1), time(0, 0) if h2 == 24 else time(h2, m2)


class LineRule(RuleBase, Graded):
    """One sorting-line event, in the rooms with a line (docs/alerts.md)."""

    kind: Literal["line"] = "line"
    event: LineEvent = Field(
        description="jam, e_stop, fault, chute_full, chute_warm or stopped (while scheduled)"
    )
    severity: Severity = Field("warning", description="warning (default: the duty) or alarm")
    longer_than: Duration | None = Field(
        None,
        description="how long the event may last before it is an alert; default: jam 15min, "
        "e_stop and fault at once, chute_full 2min, chute_warm 5min, stopped 20min",
    )
    above: float | None = Field(
        None, description="chute_warm: the warmest the chutes' air may be, °C (required)"
    )
    chutes: list[int] = Field(
        default_factory=list, description="chute_full, chute_warm: which chutes; empty: all"
    )
    schedule: list[str] = Field(
        default_factory=list,
        description="stopped: when the line is meant to run, HH:MM-HH:MM in the site's time "
        "zone, every day (24:00 for midnight; a span past midnight runs into the next day)",
    )
    codes: dict[int, str] = Field(
        default_factory=dict,
        description="fault: what each fault code means (from the PLC's manual), for the text",
    )
    _zones: dict[str, ZoneInfo] = PrivateAttr(default_factory=dict)

    @field_validator("schedule")
    @classmethod
    def _spans(cls, value: list[str]) -> list[str]:
        for text in value:
            _span(text)
        return value

    @model_validator(mode="after")
    def _needs(self) -> LineRule:
        if self.event == "chute_warm" and self.above is None:
            raise ValueError("a chute_warm rule needs 'above': the warmest the chutes may be")
        if self.event == "stopped" and not self.schedule:
            raise ValueError("a stopped rule needs a 'schedule': when the line should run")
        return self

    def after_s(self) -> float:
        return self.longer_than if self.longer_than is not None else LONGER_THAN[self.event]

    def watches(
        self, site: Site, room: Room, points: list[PointInfo], ctx: WatchContext
    ) -> Iterator[Watch]:
        self._zones[site.id] = ZoneInfo(site.timezone)
        names = {(p.sid.gateway, p.sid.device, p.sid.point) for p in points}
        for p in points:
            m = POINTS[self.event].fullmatch(p.sid.point)
            if m is None or (self.chutes and m.groups() and int(m.group(1)) not in self.chutes):
                continue
            w = series_watch(
                self,
                p,
                ctx,
                severity=self.severity,
                explicit_policy=self.policy,
                quantity=self.event,
                delay_s=self.after_s(),
                unit="°C" if self.event == "chute_warm" else "",
                limit=self.above,
                direction="above" if self.event == "chute_warm" else None,
                timed=self.event == "stopped",
            )
            also = {"fault": ("fault_code",), "stopped": EXPLAINED}.get(self.event, ())
            more = tuple(
                str(SeriesId(p.sid.site, p.sid.gateway, p.sid.device, name))
                for name in also
                if (p.sid.gateway, p.sid.device, name) in names
            )
            if more:  # a fault's code, a stop's explanation: each re-judges it too
                w = dataclasses.replace(w, inputs=(*w.inputs, *more))
            yield w

    def _sibling(self, w: Watch, point: str) -> str:
        """The series of ``point`` on the watch's device."""
        sid = SeriesId.parse(w.series or "")
        return str(SeriesId(sid.site, sid.gateway, sid.device, point))

    def _explained(self, w: Watch, views: Views) -> bool:
        """A jam, an emergency stop or a fault on the device holds the line: that event's
        own rule tells of it, the stop needs no other word."""
        for name in EXPLAINED:
            v = views.series.get(self._sibling(w, name))
            if v is not None and v.value is not None and v.value >= 0.5:
                return True
        return False

    def _window_start(self, w: Watch, now_ms: int) -> int | None:
        """The start (ms) of the schedule's span ``now_ms`` falls in, or None."""
        zone = self._zones.get(w.site)
        if zone is None:
            return None
        local = datetime.fromtimestamp(now_ms / 1000, zone)
        for text in self.schedule:
            start, end = _span(text)
            for day in (local.date() - timedelta(days=1), local.date()):
                begin = datetime.combine(day, start, zone)
                finish = datetime.combine(day, end, zone)
                if finish <= begin:
                    finish += timedelta(days=1)
                if begin <= local < finish:
                    return round(begin.timestamp() * 1000)
        return None

    def _next_start(self, w: Watch, now_ms: int) -> int | None:
        zone = self._zones.get(w.site)
        if zone is None:
            return None
        local = datetime.fromtimestamp(now_ms / 1000, zone)
        starts = [
            datetime.combine(local.date() + timedelta(days=d), _span(text)[0], zone)
            for text in self.schedule
            for d in (0, 1)
        ]
        later = [s for s in starts if s > local]
        return round(min(later).timestamp() * 1000) if later else None

    def due_ms(self, w: Watch, views: Views) -> int | None:
        """``stopped``: a line that stands still outside its schedule turns bad when the
        next scheduled span begins."""
        if self.event != "stopped":
            return None
        s = views.series.get(w.series or "")
        if s is None or s.value is None or s.value >= 0.5 or s.ts_ms is None:
            return None
        if self._explained(w, views):
            return None  # its clearing is a reading: the watch is judged again then
        now = max(s.ts_ms, views.started_ms)
        if self._window_start(w, now) is not None:
            return now
        return self._next_start(w, now)

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        s = views.series.get(w.series or "")
        if s is None or s.value is None:
            return Verdict(bad=active)  # no data yet: keep what is known
        if self.event == "chute_warm":
            assert self.above is not None
            if s.value > self.above:
                return Verdict(bad=True, value=s.value, limit=self.above, since_ms=s.changed_ms)
            return Verdict(bad=False, value=s.value, limit=self.above) if active else CLEAR
        if self.event == "stopped":
            stopped = s.value < 0.5 and not self._explained(w, views)
            begun = self._window_start(w, now_ms) if stopped else None
            if begun is None:
                return Verdict(bad=False, value=s.value) if active else CLEAR
            # since the stop, the span's start, or the end of what explained it, the latest
            cleared = [
                v.changed_ms
                for name in EXPLAINED
                if (v := views.series.get(self._sibling(w, name))) is not None
                and v.changed_ms is not None
            ]
            since = max(s.changed_ms or begun, begun, *cleared)
            return Verdict(bad=True, value=0.0, since_ms=since)
        if s.value < 0.5:
            return Verdict(bad=False, value=0.0) if active else CLEAR
        value: float | None = 1.0
        if self.event == "fault":  # the value is the latched code, where the PLC gives one
            code = views.series.get(self._sibling(w, "fault_code"))
            value = code.value if code is not None else None
        return Verdict(bad=True, value=value, since_ms=s.changed_ms)
