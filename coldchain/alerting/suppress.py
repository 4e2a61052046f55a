"""When a room's temperature rules hold their fire: during a defrost (reported by the
controller or scheduled) and a hold-off after it, optionally while a door is open and a
hold-off after it closes, after the supply returns, and during maintenance.

:func:`suppressed_until` answers "until when is this room suppressed, seen at ``t``"
(``t`` itself: not suppressed; :data:`FOREVER`: until something changes, e.g. a defrost
flag drops). :func:`suppression_ended` answers "when did the last suppression end", so a
condition never counts its delay from inside a suppression window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from coldchain.alerting.settings import Suppression
from coldchain.alerting.views import RoomView
from coldchain.config.site import DefrostSchedule

FOREVER = 2**62


def _schedule_windows(schedule: DefrostSchedule, tz: ZoneInfo, t_ms: int) -> list[tuple[int, int]]:
    """Scheduled defrost windows (start, end) in UTC ms from yesterday to tomorrow."""
    local = datetime.fromtimestamp(t_ms / 1000, tz)
    out = []
    for day in (-1, 0, 1):
        d = (local + timedelta(days=day)).date()
        for at in schedule.at:
            hh, mm = (int(x) for x in at.split(":"))
            start = datetime(d.year, d.month, d.day, hh, mm, tzinfo=tz)
            s = int(start.timestamp() * 1000)
            out.append((s, s + round(schedule.duration * 1000)))
    return sorted(out)


def _holdoff_ends(
    room: RoomView,
    settings: Suppression,
    t_ms: int,
    schedule: DefrostSchedule | None,
    tz: ZoneInfo | None,
) -> list[int]:
    """When the hold-offs after past defrosts, door closings and power returns end."""
    ends: list[int] = []
    defrost_ms = round(settings.defrost_holdoff * 1000)
    if room.defrost_end_ms is not None:
        ends.append(room.defrost_end_ms + defrost_ms)
    if schedule is not None and tz is not None:
        ends += [
            end + defrost_ms
            for start, end in _schedule_windows(schedule, tz, t_ms)
            if start <= t_ms
        ]
    if settings.while_door_open and room.door_closed_ms is not None:
        ends.append(room.door_closed_ms + round(settings.door_holdoff * 1000))
    if room.power_restored_ms is not None:
        ends.append(room.power_restored_ms + round(settings.power_up_holdoff * 1000))
    return ends


def suppressed_until(
    room: RoomView,
    settings: Suppression,
    t_ms: int,
    *,
    schedule: DefrostSchedule | None = None,
    tz: ZoneInfo | None = None,
    suppressible: bool = True,
) -> int:
    """Until when rules of the room are held at ``t_ms`` (``t_ms`` when they are not)."""
    until = t_ms
    if room.maintenance_until_ms is not None and room.maintenance_until_ms > t_ms:
        until = room.maintenance_until_ms
    if not suppressible:
        return until
    if room.defrosting or (settings.while_door_open and room.door_open):
        return FOREVER
    return max([until, *_holdoff_ends(room, settings, t_ms, schedule, tz)])


def suppression_ended(
    room: RoomView,
    settings: Suppression,
    t_ms: int,
    *,
    schedule: DefrostSchedule | None = None,
    tz: ZoneInfo | None = None,
    suppressible: bool = True,
) -> int:
    """When the last suppression before ``t_ms`` ended (0: none known)."""
    ends = [0]
    # maintenance_until_ms counts once it has passed (filtered below)
    ends += [e for e in (room.maintenance_ended_ms, room.maintenance_until_ms) if e is not None]
    if suppressible:
        ends += _holdoff_ends(room, settings, t_ms, schedule, tz)
    return max(e for e in ends if e <= t_ms)
