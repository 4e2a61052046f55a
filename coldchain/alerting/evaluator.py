"""The alert evaluator: readings and gateway events in, condition changes out. Pure — the
caller passes the time — so the hub, an agent's edge fallback and the tests drive the same
code with their own clocks.

Each :class:`~coldchain.alerting.rules.base.Watch` moves idle -> pending (its condition
holds) -> firing (it held for the rule's delay) -> idle again (resolved, or cancelled
before firing). While pending or firing a condition is judged with its hysteresis, so a
value wobbling around a limit is one alert. Suppressed watches (defrost, door, power-up,
maintenance) never start pending and drop back from pending; a firing alert stays firing.

Readings are judged at their own timestamps, so a backlog replayed after an outage fires
only for excursions that lasted the delay; :meth:`Evaluator.tick` judges pending delays,
hold-off ends and silent sensors against the clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from coldchain.alerting.rules.base import Watch
from coldchain.alerting.settings import Suppression
from coldchain.alerting.states import AlertState
from coldchain.alerting.suppress import FOREVER, suppressed_until, suppression_ended
from coldchain.alerting.views import GatewayView, SeriesView, Views
from coldchain.config.site import DefrostSchedule, SiteConfig
from coldchain.config.topology import PointInfo
from coldchain.profiles.schema import PointKind
from coldchain.reading import Reading

Phase = Literal["idle", "pending", "firing"]
"""Where a watch is in the evaluator (idle: its condition does not hold)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """A watch's condition changed: ``to`` pending, firing, resolved or cancelled (never
    acknowledged: that is a person's doing, not the data's)."""

    watch: Watch
    to: AlertState
    ts_ms: int
    since_ms: int
    value: float | None
    limit: float | None
    peak: float | None

    @property
    def key(self) -> str:
        return self.watch.key


@dataclass(slots=True)
class _State:
    watch: Watch
    phase: Phase = "idle"
    since_ms: int = 0
    value: float | None = None
    limit: float | None = None
    peak: float | None = None
    wake_ms: int | None = None


def _worse(w: Watch, a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return a if b is None else b
    return min(a, b) if w.direction == "below" else max(a, b)


class Evaluator:
    """Evaluates watches on the live stream."""

    def __init__(
        self,
        cfg: SiteConfig,
        points: Iterable[PointInfo],
        watches: Iterable[Watch],
        *,
        now_ms: int,
        scan_interval_ms: int = 1000,
    ) -> None:
        self.suppression: Suppression = cfg.alerts.suppression
        self.views = Views(started_ms=now_ms)
        self._site_room: dict[str, tuple[str, str]] = {}
        self._schedules: dict[tuple[str, str], tuple[DefrostSchedule, ZoneInfo]] = {}
        for site in cfg.sites:
            for room in site.rooms:
                self.views.room_of(site.id, room.id)
                if room.defrost is not None:
                    self._schedules[(site.id, room.id)] = (room.defrost, ZoneInfo(site.timezone))
        watches = list(watches)
        rate_series = {w.series for w in watches if w.rule.kind == "rate_of_rise"}
        for p in points:
            key = str(p.sid)
            self.views.series[key] = SeriesView(
                room=p.room, kind=str(p.kind), keep_history=key in rate_series
            )
            self._site_room[key] = (p.site, p.room)
        for g in cfg.gateways:
            self.views.gateways[g.id] = GatewayView()
        self._states: dict[str, _State] = {}
        self._by_input: dict[str, list[_State]] = defaultdict(list)
        self._by_room: dict[tuple[str, str], list[_State]] = defaultdict(list)
        self._by_gateway: dict[str, list[_State]] = defaultdict(list)
        self._timed: list[_State] = []
        self._wakes: list[tuple[int, int, str]] = []
        self._seq = itertools.count()
        self._scan_interval_ms = scan_interval_ms
        self._next_scan_ms = now_ms
        for w in watches:
            self.add(w)

    # --- set-up -----------------------------------------------------------------------

    def add(self, w: Watch) -> None:
        st = _State(w)
        self._states[w.key] = st
        for name in w.inputs:
            self._by_input[name].append(st)
        if w.room is not None:
            self._by_room[(w.site, w.room)].append(st)
        if w.gateway is not None and w.quantity in ("gateway", "data"):
            self._by_gateway[w.gateway].append(st)
        if w.timed:
            self._timed.append(st)

    def watch(self, key: str) -> Watch | None:
        st = self._states.get(key)
        return None if st is None else st.watch

    def restore(
        self, key: str, phase: Phase, since_ms: int, *, value: float | None, peak: float | None
    ) -> bool:
        """Resume a condition known before a restart (False: no such watch any more)."""
        st = self._states.get(key)
        if st is None:
            return False
        st.phase, st.since_ms, st.value, st.peak = phase, since_ms, value, peak
        if phase == "pending":
            self._wake(st, since_ms + st.watch.delay_ms)
        return True

    def seed(self, r: Reading) -> None:
        """Know a series' last reading (from the store, at start) without judging it."""
        view = self.views.series.get(str(r.series))
        if view is not None:
            view.update(r)

    # --- inputs -----------------------------------------------------------------------

    def feed(self, readings: Iterable[Reading]) -> list[Transition]:
        """Judge new readings, each at its own timestamp."""
        out: list[Transition] = []
        for r in readings:
            name = str(r.series)
            view = self.views.series.get(name)
            if view is None or not view.update(r):
                continue
            dirty = list(self._by_input.get(name, ()))
            place = self._site_room[name]
            if self._room_event(place, view, name, r.ts_ms):
                dirty.extend(self._by_room.get(place, ()))
            seen: set[str] = set()
            for st in dirty:
                if st.watch.key not in seen:
                    seen.add(st.watch.key)
                    self._judge(st, r.ts_ms, out)
        return out

    def gateway(self, gateway: str, *, online: bool, ts_ms: int) -> list[Transition]:
        """A gateway's link went up or down."""
        view = self.views.gateways.get(gateway)
        if view is None or view.online == online:
            return []
        view.online = online
        view.offline_since_ms = None if online else ts_ms
        out: list[Transition] = []
        for st in self._by_gateway.get(gateway, ()):
            self._judge(st, ts_ms, out)
        return out

    def set_maintenance(
        self, site: str, room: str, *, until_ms: int | None, reason: str, now_ms: int
    ) -> list[Transition]:
        """Start (``until_ms``) or end (None) maintenance of a room."""
        view = self.views.room_of(site, room)
        if until_ms is None and view.maintenance_until_ms is not None:
            view.maintenance_ended_ms = min(now_ms, view.maintenance_until_ms)
        view.maintenance_until_ms, view.maintenance_reason = until_ms, reason if until_ms else ""
        out: list[Transition] = []
        for st in self._by_room.get((site, room), ()):
            self._judge(st, now_ms, out)
        return out

    def tick(self, now_ms: int) -> list[Transition]:
        """Judge what the clock decides: delays run out, hold-offs end, sensors fall silent."""
        out: list[Transition] = []
        for view in self.views.rooms.values():
            if view.maintenance_until_ms is not None and view.maintenance_until_ms <= now_ms:
                view.maintenance_ended_ms = view.maintenance_until_ms
                view.maintenance_until_ms, view.maintenance_reason = None, ""
        while self._wakes and self._wakes[0][0] <= now_ms:
            at, _, key = heapq.heappop(self._wakes)
            st = self._states[key]
            if st.wake_ms == at:
                st.wake_ms = None
                self._judge(st, now_ms, out)
        if now_ms >= self._next_scan_ms:
            self._next_scan_ms = now_ms + self._scan_interval_ms
            for st in self._timed:
                self._judge(st, now_ms, out)
        return out

    def active(self) -> list[tuple[Watch, Phase, int]]:
        """Every watch now pending or firing, with when its condition began."""
        return [(s.watch, s.phase, s.since_ms) for s in self._states.values() if s.phase != "idle"]

    # --- the machine --------------------------------------------------------------------

    def _room_event(self, place: tuple[str, str], view: SeriesView, name: str, ts: int) -> bool:
        """Update the room's defrost/door/power state; True if it changed."""
        room = self.views.room_of(*place)
        on = view.good and view.value is not None and view.value >= 0.5
        if view.kind == PointKind.DEFROST:
            was = room.defrosting
            (room.defrost_points.add if on else room.defrost_points.discard)(name)
            if was and not room.defrosting:
                room.defrost_end_ms = ts
            return was != room.defrosting
        if view.kind == PointKind.DOOR:
            was = room.door_open
            if on:
                room.doors_open.setdefault(name, ts)
            else:
                room.doors_open.pop(name, None)
            if was and not room.door_open:
                room.door_closed_ms = ts
            return was != room.door_open and self.suppression.while_door_open
        if view.kind == PointKind.POWER and view.good and view.value is not None:
            was = bool(room.power_cut)
            if view.value < 0.5:
                room.power_cut.setdefault(name, ts)
            else:
                room.power_cut.pop(name, None)
            if was and not room.power_cut:
                room.power_restored_ms = ts
            return was != bool(room.power_cut)
        return False

    def _suppression(self, w: Watch, t: int, *, ended: bool) -> int:
        if w.room is None:
            return 0 if ended else t
        room = self.views.room_of(w.site, w.room)
        sched = self._schedules.get((w.site, w.room))
        schedule, tz = sched if sched is not None else (None, None)
        fn = suppression_ended if ended else suppressed_until
        return fn(
            room,
            self.suppression,
            t,
            schedule=schedule,
            tz=tz,
            suppressible=w.suppressible,
        )

    def _wake(self, st: _State, at: int) -> None:
        if st.wake_ms is not None and st.wake_ms <= at:
            return
        st.wake_ms = at
        heapq.heappush(self._wakes, (at, next(self._seq), st.watch.key))

    def _emit(self, st: _State, to: AlertState, t: int, out: list[Transition]) -> None:
        out.append(Transition(st.watch, to, t, st.since_ms, st.value, st.limit, st.peak))

    def _judge(self, st: _State, t: int, out: list[Transition]) -> None:
        w = st.watch
        if st.phase != "idle" and t < st.since_ms:
            # a reading from before the condition began (a backlog replayed after an alert
            # was resumed from disk or from an agent's notice) says nothing about it now
            return
        v = w.rule.check(w, self.views, t, st.phase != "idle")
        st.value = st.value if v.value is None else v.value
        st.limit = st.limit if v.limit is None else v.limit
        if not v.bad:
            if st.phase != "idle":
                change = AlertState.RESOLVED if st.phase == "firing" else AlertState.CANCELLED
                st.phase = "idle"
                self._emit(st, change, t, out)
            return
        if st.phase == "firing":
            st.peak = _worse(w, st.peak, v.value)
            return
        held = self._suppression(w, t, ended=False)
        if held > t:
            if st.phase == "pending":
                st.phase = "idle"
                self._emit(st, AlertState.CANCELLED, t, out)
            if held < FOREVER:
                self._wake(st, held)
            return
        if st.phase == "idle":
            since = v.since_ms if v.since_ms is not None else t
            st.since_ms = max(since, self._suppression(w, t, ended=True))
            st.phase, st.peak = "pending", v.value
            self._emit(st, AlertState.PENDING, t, out)
        else:
            st.peak = _worse(w, st.peak, v.value)
        due = st.since_ms + w.delay_ms
        if t < due:
            self._wake(st, due)
        elif v.past:  # inside the recovery band it stays pending: see Verdict.past
            st.phase = "firing"
            self._emit(st, AlertState.FIRING, t, out)
