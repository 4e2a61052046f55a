"""What the evaluator knows of the live state: each series' latest reading and how long
its value has held, each room's defrost, door, power and maintenance state, each gateway's
link. Updated from readings and gateway events; read by the rule kinds' ``check``."""

from __future__ import annotations

from dataclasses import dataclass, field

from coldchain.alerting.trend import RiseWindow
from coldchain.reading import Quality, Reading

RATE_WINDOW_MAX = 512  # samples kept per rate-of-rise window of a series


@dataclass(slots=True)
class SeriesView:
    """The latest of one series."""

    room: str
    kind: str
    ts_ms: int | None = None  # last reading (any quality)
    value: float | None = None  # last value of a good or uncertain reading (not bad)
    good: bool = True
    bad_since_ms: int | None = None  # first bad-quality reading of the current run
    changed_ms: int | None = None  # when the current value began (doors, power)
    windows: dict[int, RiseWindow] = field(default_factory=dict)  # rate-of-rise, by window ms

    def track(self, window_ms: int) -> RiseWindow:
        """The rate-of-rise window of ``window_ms`` over this series, kept from now on."""
        win = self.windows.get(window_ms)
        if win is None:
            win = self.windows[window_ms] = RiseWindow(window_ms, RATE_WINDOW_MAX)
        return win

    def update(self, r: Reading) -> bool:
        """Apply a reading; False for one older than what is known (ignored)."""
        if self.ts_ms is not None and r.ts_ms < self.ts_ms:
            return False
        self.ts_ms = r.ts_ms
        # An uncertain reading has a real value (e.g. its time is in doubt: the gateway's
        # clock unsynchronised): a room at 12 °C alarms whatever the clock says.
        if r.quality is not Quality.BAD and r.value is not None:
            if self.value != r.value or self.changed_ms is None:
                self.changed_ms = r.ts_ms
            self.value = r.value
            self.good = True
            self.bad_since_ms = None
            for win in self.windows.values():
                win.push(r.ts_ms, r.value)
        else:
            if self.good or self.bad_since_ms is None:
                self.bad_since_ms = r.ts_ms
            self.good = False
        return True


@dataclass(slots=True)
class RoomView:
    """A room's suppression-relevant state."""

    defrost_points: set[str] = field(default_factory=set)  # series now reading 1
    defrost_end_ms: int | None = None
    doors_open: dict[str, int] = field(default_factory=dict)  # series -> opened at
    door_closed_ms: int | None = None
    power_cut: dict[str, int] = field(default_factory=dict)  # series -> cut at
    power_restored_ms: int | None = None
    maintenance_until_ms: int | None = None
    maintenance_reason: str = ""
    maintenance_ended_ms: int | None = None
    last_ms: int | None = None  # the latest reading (any quality) of any of its series

    @property
    def defrosting(self) -> bool:
        return bool(self.defrost_points)

    @property
    def door_open(self) -> bool:
        return bool(self.doors_open)


@dataclass(slots=True)
class GatewayView:
    online: bool = True
    offline_since_ms: int | None = None
    clock_offset_ms: float | None = None  # the gateway's clock ahead of the hub's (measured)
    backlog_age_s: float | None = None  # its oldest unsent reading's age (health report)
    disk_free_pct: float | None = None  # free share of its outbox's filesystem (health)


@dataclass(slots=True)
class BackupView:
    """The hub's scheduled backups (hub/backup_schedule.py): since when a schedule runs
    (None: none), the last good backup and the last failed one."""

    configured_ms: int | None = None
    last_good_ms: int | None = None
    failed_ms: int | None = None


@dataclass
class Views:
    """All of it, keyed by series text, (site, room) and gateway id."""

    series: dict[str, SeriesView] = field(default_factory=dict)
    rooms: dict[tuple[str, str], RoomView] = field(default_factory=dict)
    gateways: dict[str, GatewayView] = field(default_factory=dict)
    backup: BackupView = field(default_factory=BackupView)
    started_ms: int = 0  # when evaluation began: silence before it is not a sensor's fault
    changed: set[str] = field(default_factory=set)
    """Series updated since a snapshot last copied them (the snapshot's builder clears it)."""

    def room_of(self, site: str, room: str) -> RoomView:
        view = self.rooms.get((site, room))
        if view is None:
            view = self.rooms[(site, room)] = RoomView()
        return view
