"""Escalation, pure: given an alert's timeline and its policy, which levels are due now
and when to look again. Levels are due at ``fired + level.after``; once every due level
has been told, ``repeat`` re-notifies those reached until someone acknowledges; a snooze
holds everything until it ends. The caller persists ``level`` and ``notified_ms``."""

from __future__ import annotations

from dataclasses import dataclass

from coldchain.alerting.settings import Policy


@dataclass(frozen=True, slots=True)
class Step:
    """What to do now: notify ``levels`` (new levels reached) or remind ``reminder``
    levels; ``next_ms`` is when to look again (None: nothing more to do)."""

    levels: tuple[int, ...]
    reminder: tuple[int, ...]
    next_ms: int | None


def step(
    policy: Policy,
    *,
    fired_ms: int,
    level: int,
    notified_ms: int | None,
    snoozed_until: int | None,
    now_ms: int,
) -> Step:
    """The escalation step of a firing, unacknowledged alert at ``now_ms``."""
    if snoozed_until is not None and snoozed_until > now_ms:
        return Step((), (), snoozed_until)
    due = tuple(
        i
        for i, lv in enumerate(policy.levels)
        if i > level and fired_ms + round(lv.after * 1000) <= now_ms
    )
    reached = max(due) if due else level
    nexts: list[int] = []
    if reached + 1 < len(policy.levels):
        nexts.append(fired_ms + round(policy.levels[reached + 1].after * 1000))
    reminder: tuple[int, ...] = ()
    if policy.repeat is not None and level >= 0:
        repeat_ms = round(policy.repeat * 1000)
        last = notified_ms if notified_ms is not None else fired_ms
        if snoozed_until is not None and snoozed_until > last:
            last = snoozed_until - repeat_ms  # a snooze that ended: remind now
        if not due and last + repeat_ms <= now_ms:
            reminder = tuple(range(level + 1))
            last = now_ms
        nexts.append(last + repeat_ms)
    elif policy.repeat is not None and due:
        nexts.append(now_ms + round(policy.repeat * 1000))
    return Step(due, reminder, min(nexts) if nexts else None)
