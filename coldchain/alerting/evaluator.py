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

What stays true of the cost: a reading is judged only by the watches of its own series (and
of its room when it changes the room's defrost, door or power state). Most of those need no
judging on most readings: a watch whose rule gives a quiet range (``RuleLogic.quiet_range``:
a threshold's side of its limit, any value for a sensor fault or a silent sensor) stays idle
on a good reading inside it, so while all such watches of a series are idle, a good reading
inside the intersection of their ranges is judged only by the series' other watches (a rate
of rise) and by a silent-sensor watch that has no timer yet: one comparison instead of a call
per watch. A good reading outside it (past a high limit, say) still skips the idle watches
whose own range holds it (the low limits, the sensor fault): a comparison each instead of a
judgement.

The tick judges only what is due: every deadline (a delay running out, a hold-off or
maintenance ending, a series falling silent) sits in a heap keyed by its due time, with lazy
deletion (an entry that is no longer a watch's current one is skipped when popped). A tick
with nothing due pops nothing and judges nothing, whatever the number of watches;
:attr:`Evaluator.judgements` counts the judgements made, so tests can prove it. Watches the
clock re-checks (``Watch.timed``: stale, gateway offline) are judged on the scan cadence
(``scan_interval_ms``) only when their deadline (``RuleLogic.due_ms``) has come, or while
they are pending or firing (a firing stale alert's figure, how long the sensor has been
silent, grows with the clock).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
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
# Watches judged on what the hub learns of a gateway (its link, clock and health reports)
# rather than on readings: see coldchain/alerting/rules/gateway.py ("data": stale's).
GATEWAY_QUANTITIES = frozenset({"gateway", "data", "clock", "backlog", "disk"})
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
    timer_ms: int | None = None  # the live entry of a timed watch in Evaluator._timers
    order: int = 0  # when it was added: due timed watches are judged in this order
    quiet: _Quiet | None = None  # its series' quiet path, if the watch has a quiet range
    lo: float = -math.inf  # its quiet range (with ``quiet`` only)
    hi: float = math.inf


@dataclass(slots=True)
class _Quiet:
    """A series' quiet path: while none of the watches with a quiet range is pending or
    firing (``busy`` counts those that are), a good reading within ``lo``..``hi`` (the
    intersection of their ranges) needs judging only by the series' ``rest``."""

    lo: float = -math.inf
    hi: float = math.inf
    rest: list[_State] = field(default_factory=list)
    timed: list[_State] = field(default_factory=list)  # those with a range that are timed
    busy: int = 0


def _by_order(st: _State) -> int:
    return st.order


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
        self._views = Views(started_ms=now_ms)
        self._site_room: dict[str, tuple[str, str]] = {}
        self._schedules: dict[tuple[str, str], tuple[DefrostSchedule, ZoneInfo]] = {}
        for site in cfg.sites:
            for room in site.rooms:
                self.views.room_of(site.id, room.id)
                if room.defrost is not None:
                    self._schedules[(site.id, room.id)] = (room.defrost, ZoneInfo(site.timezone))
        watches = list(watches)
        for p in points:
            key = str(p.sid)
            self.views.series[key] = SeriesView(room=p.room, kind=str(p.kind))
            self._site_room[key] = (p.site, p.room)
        for w in watches:
            window_ms = w.rule.window_ms()
            view = self.views.series.get(w.series or "")
            if window_ms is not None and view is not None:
                view.track(window_ms)
        for g in cfg.gateways:
            self.views.gateways[g.id] = GatewayView()
        self._states: dict[str, _State] = {}
        self._by_input: dict[str, list[_State]] = defaultdict(list)
        self._by_room: dict[tuple[str, str], list[_State]] = defaultdict(list)
        self._by_gateway: dict[str, list[_State]] = defaultdict(list)
        self._backups: list[_State] = []  # the backup watches, one per site
        self._quiet: dict[str, _Quiet] = defaultdict(_Quiet)  # by series
        self._timed_active: dict[str, _State] = {}  # timed watches pending or firing
        self._timers: list[tuple[int, int, str]] = []  # (due, seq, key) of idle timed watches
        self._wakes: list[tuple[int, int, str]] = []  # (due, seq, key): delays, hold-offs
        self._maintenance_ends: list[tuple[int, str, str]] = []  # (until, site, room)
        self._seq = itertools.count()
        self._scan_interval_ms = scan_interval_ms
        self._next_scan_ms = now_ms
        self.judgements = 0
        """Judgements made so far (one per watch judged); tests count them, not time."""
        for w in watches:
            self.add(w)

    # --- set-up -----------------------------------------------------------------------

    def add(self, w: Watch) -> None:
        st = _State(w, order=len(self._states))
        self._states[w.key] = st
        for name in dict.fromkeys(w.inputs):  # once per series, so feed needs no dedup
            self._by_input[name].append(st)
        quiet = None if w.inputs != (w.series,) else w.rule.quiet_range(w)
        if quiet is not None and w.series is not None:
            q = st.quiet = self._quiet[w.series]
            st.lo, st.hi = quiet
            if w.timed:
                q.timed.append(st)
            q.lo, q.hi = max(q.lo, st.lo), min(q.hi, st.hi)
        else:
            for name in dict.fromkeys(w.inputs):
                self._quiet[name].rest.append(st)
        if w.room is not None:
            self._by_room[(w.site, w.room)].append(st)
        if w.gateway is not None and w.quantity in GATEWAY_QUANTITIES:
            self._by_gateway[w.gateway].append(st)
        if w.quantity == "backup":
            self._backups.append(st)
        if w.timed:
            self._arm(st)

    @property
    def views(self) -> Views:
        """The live state the rules read."""
        return self._views

    @views.setter
    def views(self, views: Views) -> None:
        """Take over live state kept elsewhere (an evaluator rebuilt after a rule edit keeps
        its predecessor's): the deadlines it implies (maintenance ends, silent series) are
        read from it again."""
        self._views = views
        self._maintenance_ends = [
            (v.maintenance_until_ms, site, room)
            for (site, room), v in views.rooms.items()
            if v.maintenance_until_ms is not None
        ]
        heapq.heapify(self._maintenance_ends)
        self._timers.clear()
        for st in self._states.values():
            if st.watch.timed:
                st.timer_ms = None
                self._arm(st)

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
        self._set_phase(st, phase)
        st.since_ms, st.value, st.peak = since_ms, value, peak
        if phase == "pending":
            self._wake(st, since_ms + st.watch.delay_ms)
        if st.watch.timed:
            self._arm(st)
        return True

    def seed(self, r: Reading) -> None:
        """Know a series' last reading (from the store, at start) without judging it."""
        name = str(r.series)
        view = self._views.series.get(name)
        if view is not None and view.update(r):
            self._views.changed.add(name)
            room = self._views.room_of(*self._site_room[name])
            if room.last_ms is None or r.ts_ms > room.last_ms:
                room.last_ms = r.ts_ms
            for st in self._by_input.get(name, ()):
                if st.watch.timed:
                    self._arm(st)

    # --- inputs -----------------------------------------------------------------------

    def feed(self, readings: Iterable[Reading]) -> list[Transition]:
        """Judge new readings, each at its own timestamp."""
        out: list[Transition] = []
        changed = self._views.changed
        for r in readings:
            name = str(r.series)
            view = self._views.series.get(name)
            if view is None or not view.update(r):
                continue
            changed.add(name)
            own = self._by_input.get(name, ())
            place = self._site_room[name]
            if not self._room_event(place, view, name, r.ts_ms):
                self._judge_series(name, view, own, r.ts_ms, out)
                continue
            seen: set[str] = set()
            for st in (*own, *self._by_room.get(place, ())):
                if st.watch.key not in seen:
                    seen.add(st.watch.key)
                    self._judge(st, r.ts_ms, out)
        return out

    def _judge_series(
        self, name: str, view: SeriesView, own: Iterable[_State], t: int, out: list[Transition]
    ) -> None:
        """Judge a reading of ``name`` by its own watches, skipping the quiet ones (see the
        module's docstring)."""
        q = self._quiet.get(name)
        value = view.value
        if q is None or not view.good or value is None:
            for st in own:
                self._judge(st, t, out)
        elif not q.busy and q.lo <= value <= q.hi:
            for st in q.rest:
                self._judge(st, t, out)
            for st in q.timed:
                if st.timer_ms is None:  # not armed: judging arms it
                    self._judge(st, t, out)
        else:  # past some limit: skip only the idle watches it leaves quiet
            for st in own:
                if (
                    st.quiet is None
                    or st.phase != "idle"
                    or not st.lo <= value <= st.hi
                    or (st.timer_ms is None and st.watch.timed)
                ):
                    self._judge(st, t, out)

    def gateway(self, gateway: str, *, online: bool, ts_ms: int) -> list[Transition]:
        """A gateway's link went up or down."""
        view = self._views.gateways.get(gateway)
        if view is None or view.online == online:
            return []
        view.online = online
        view.offline_since_ms = None if online else ts_ms
        return self._judge_gateway(gateway, ts_ms)

    def gateway_clock(self, gateway: str, *, offset_ms: float, ts_ms: int) -> list[Transition]:
        """The hub measured how far a gateway's clock is from its own."""
        view = self._views.gateways.get(gateway)
        if view is None:
            return []
        view.clock_offset_ms = offset_ms
        return self._judge_gateway(gateway, ts_ms)

    def gateway_health(
        self,
        gateway: str,
        *,
        backlog_age_s: float | None,
        disk_free_pct: float | None,
        ts_ms: int,
    ) -> list[Transition]:
        """A gateway's health report: its outbox's oldest unsent reading and free disk."""
        view = self._views.gateways.get(gateway)
        if view is None:
            return []
        view.backlog_age_s, view.disk_free_pct = backlog_age_s, disk_free_pct
        return self._judge_gateway(gateway, ts_ms)

    def backup(
        self,
        *,
        configured_ms: int | None,
        last_good_ms: int | None,
        failed_ms: int | None,
        ts_ms: int,
    ) -> list[Transition]:
        """The hub's backup schedule: since when it runs, its last good and failed backups."""
        b = self._views.backup
        b.configured_ms, b.last_good_ms, b.failed_ms = configured_ms, last_good_ms, failed_ms
        out: list[Transition] = []
        for st in self._backups:
            self._judge(st, ts_ms, out)
        return out

    def _judge_gateway(self, gateway: str, ts_ms: int) -> list[Transition]:
        out: list[Transition] = []
        for st in self._by_gateway.get(gateway, ()):
            self._judge(st, ts_ms, out)
        return out

    def set_maintenance(
        self, site: str, room: str, *, until_ms: int | None, reason: str, now_ms: int
    ) -> list[Transition]:
        """Start (``until_ms``) or end (None) maintenance of a room."""
        view = self._views.room_of(site, room)
        if until_ms is None and view.maintenance_until_ms is not None:
            view.maintenance_ended_ms = min(now_ms, view.maintenance_until_ms)
        view.maintenance_until_ms, view.maintenance_reason = until_ms, reason if until_ms else ""
        if until_ms is not None:
            heapq.heappush(self._maintenance_ends, (until_ms, site, room))
        out: list[Transition] = []
        for st in self._by_room.get((site, room), ()):
            self._judge(st, now_ms, out)
        return out

    def tick(self, now_ms: int) -> list[Transition]:
        """Judge what the clock decides: delays run out, hold-offs end, sensors fall silent."""
        out: list[Transition] = []
        ends = self._maintenance_ends
        while ends and ends[0][0] <= now_ms:
            at, site, room = heapq.heappop(ends)
            view = self._views.room_of(site, room)
            if view.maintenance_until_ms == at:  # else ended or moved since: a stale entry
                view.maintenance_ended_ms = at
                view.maintenance_until_ms, view.maintenance_reason = None, ""
        while self._wakes and self._wakes[0][0] <= now_ms:
            at, _, key = heapq.heappop(self._wakes)
            st = self._states[key]
            if st.wake_ms == at:
                st.wake_ms = None
                self._judge(st, now_ms, out)
        if now_ms >= self._next_scan_ms:
            self._next_scan_ms = now_ms + self._scan_interval_ms
            self._scan(now_ms, out)
        return out

    def active(self) -> list[tuple[Watch, Phase, int]]:
        """Every watch now pending or firing, with when its condition began."""
        return [(s.watch, s.phase, s.since_ms) for s in self._states.values() if s.phase != "idle"]

    # --- the machine --------------------------------------------------------------------

    def _room_event(self, place: tuple[str, str], view: SeriesView, name: str, ts: int) -> bool:
        """Update the room's defrost/door/power state (and its latest reading's time); True
        if that state changed."""
        room = self._views.room_of(*place)
        if room.last_ms is None or ts > room.last_ms:
            room.last_ms = ts
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
        room = self._views.room_of(w.site, w.room)
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

    def _scan(self, now_ms: int, out: list[Transition]) -> None:
        """Judge the timed watches that are due: those whose deadline has come, and those
        pending or firing (their figure moves with the clock)."""
        due: dict[str, _State] = dict(self._timed_active)
        timers = self._timers
        while timers and timers[0][0] <= now_ms:
            at, _, key = heapq.heappop(timers)
            st = self._states[key]
            if st.timer_ms != at:
                continue  # superseded by a later arming
            st.timer_ms = None
            deadline = st.watch.rule.due_ms(st.watch, self._views)
            if deadline is not None and deadline > now_ms:
                self._arm(st)  # fresh readings moved it on since: re-armed, not judged
            elif deadline is not None:
                due[key] = st
        for st in sorted(due.values(), key=_by_order):  # as the full scan used to order them
            self._judge(st, now_ms, out)

    def _arm(self, st: _State, judged_ms: int | None = None) -> None:
        """Keep a timed watch where the scan finds it: among the active ones while pending or
        firing, else in the heap at the time its rule says it could turn bad (one live entry
        per watch, never later than that time). An idle watch judged at or after that time
        was held (maintenance): its wake re-judges it, the heap does not."""
        w = st.watch
        if st.phase != "idle":
            self._timed_active[w.key] = st
            return
        self._timed_active.pop(w.key, None)
        deadline = w.rule.due_ms(w, self._views)
        if deadline is None or (st.timer_ms is not None and st.timer_ms <= deadline):
            return  # never by time alone, or an entry at or before it will come up first
        if judged_ms is not None and deadline <= judged_ms:
            return  # held at its deadline: the wake at the hold's end re-judges it
        st.timer_ms = deadline
        heapq.heappush(self._timers, (deadline, next(self._seq), w.key))

    def _wake(self, st: _State, at: int) -> None:
        if st.wake_ms is not None and st.wake_ms <= at:
            return
        st.wake_ms = at
        heapq.heappush(self._wakes, (at, next(self._seq), st.watch.key))

    @staticmethod
    def _set_phase(st: _State, phase: Phase) -> None:
        q = st.quiet
        if q is not None:
            q.busy += (phase != "idle") - (st.phase != "idle")
        st.phase = phase

    def _emit(self, st: _State, to: AlertState, t: int, out: list[Transition]) -> None:
        out.append(Transition(st.watch, to, t, st.since_ms, st.value, st.limit, st.peak))

    def _judge(self, st: _State, t: int, out: list[Transition]) -> None:
        self.judgements += 1
        self._decide(st, t, out)
        if st.watch.timed:
            self._arm(st, t)

    def _decide(self, st: _State, t: int, out: list[Transition]) -> None:
        w = st.watch
        if st.phase != "idle" and t < st.since_ms:
            # a reading from before the condition began (a backlog replayed after an alert
            # was resumed from disk or from an agent's notice) says nothing about it now
            return
        v = w.rule.check(w, self._views, t, st.phase != "idle")
        st.value = st.value if v.value is None else v.value
        st.limit = st.limit if v.limit is None else v.limit
        if not v.bad:
            if st.phase != "idle":
                change = AlertState.RESOLVED if st.phase == "firing" else AlertState.CANCELLED
                self._set_phase(st, "idle")
                self._emit(st, change, t, out)
            return
        if st.phase == "firing":
            st.peak = _worse(w, st.peak, v.value)
            return
        held = self._suppression(w, t, ended=False)
        if held > t:
            if st.phase == "pending":
                self._set_phase(st, "idle")
                self._emit(st, AlertState.CANCELLED, t, out)
            if held < FOREVER:
                self._wake(st, held)
            return
        if st.phase == "idle":
            since = v.since_ms if v.since_ms is not None else t
            st.since_ms = max(since, self._suppression(w, t, ended=True))
            self._set_phase(st, "pending")
            st.peak = v.value
            self._emit(st, AlertState.PENDING, t, out)
        else:
            st.peak = _worse(w, st.peak, v.value)
        due = st.since_ms + w.delay_ms
        if t < due:
            self._wake(st, due)
        elif v.past:  # inside the recovery band it stays pending: see Verdict.past
            self._set_phase(st, "firing")
            self._emit(st, AlertState.FIRING, t, out)
