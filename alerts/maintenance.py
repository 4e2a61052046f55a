"""Maintenance windows: a room taken out of alerting for a while, with a reason.

While a room is in maintenance its watches start no alert and pending ones drop back (a
firing one stays firing: see :mod:`coldchain.alerting.evaluator`). A window is stored, so a
restart resumes it; it ends at its ``until`` time or when someone ends it. What must stay
true: a window ends in the future and says why (three characters at least); ending one that
is not running is refused; both are audited (``room.maintenance`` / ``room.maintenance_end``).
"""

from __future__ import annotations

from alerts.context import AlertContext
from alerts.errors import ConflictError, InvalidError, NotFoundError
from alerts.lifecycle import Lifecycle


class Maintenance:
    """Starts, ends and restores maintenance windows."""

    def __init__(self, ctx: AlertContext, lifecycle: Lifecycle) -> None:
        self.ctx, self.lifecycle = ctx, lifecycle

    def restore(self, now: int) -> None:
        """Tell the evaluator of the windows stored (at start)."""
        for m in self.ctx.store.maintenance(now):
            self.ctx.evaluator.set_maintenance(
                m["site"], m["room"], until_ms=m["until_ms"], reason=m["reason"], now_ms=now
            )

    def set(self, site: str, room: str, *, until_ms: int | None, reason: str, by: str) -> None:
        """Start (``until_ms``) or end (None) the maintenance of a room."""
        ctx = self.ctx
        if (site, room) not in ctx.rooms:
            raise NotFoundError(f"no room {site}/{room}")
        now = ctx.clock()
        if until_ms is not None:
            if until_ms <= now:
                raise InvalidError("maintenance must end in the future")
            if len(reason.strip()) < 3:
                raise InvalidError("say why the room is in maintenance (reason)")
            ctx.store.start_maintenance(
                site, room, now_ms=now, until_ms=until_ms, reason=reason, by=by
            )
        elif not ctx.store.end_maintenance(site, room, now_ms=now):
            raise ConflictError(f"room {site}/{room} is not in maintenance")
        ctx.audit(
            actor=by,
            action="room.maintenance" if until_ms else "room.maintenance_end",
            obj=f"room/{site}/{room}",
            after={"until_ms": until_ms, "reason": reason},
        )
        self.lifecycle.apply(
            ctx.evaluator.set_maintenance(site, room, until_ms=until_ms, reason=reason, now_ms=now)
        )
