"""Correcting the time of readings a gateway took with a wrong clock (issue 14, part 3).

A gateway whose clock was not synchronised marks every reading it takes ``clock
unsynchronised`` (uncertain); once synchronised it reports how far its clock moved, when,
and how many readings it marked (health ``system.clock_step``). A manager can then move
those readings by that step: ``POST /api/gateways/{id}/clock-correction``. Only readings
still marked ``clock unsynchronised`` move (never a good one, never one moved before);
each keeps its value and stays uncertain, its reason says by how much it was moved and its
meta keeps the shift; marked readings of that window still to come (a backlog) are moved on
arrival. The correction is audited (``readings.retime``: who, why, the window, the shift,
how many moved), never silent. The SQLite store can do this; the line-protocol store
cannot move a point in place, and says so (409).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from coldchain.access import Guard, Principal, Role
from coldchain.store.base import StoreError
from hub.context import HubContext

YEAR_MS = 366 * 86_400_000
DEFAULT_WINDOW_MS = 7 * 86_400_000  # marked readings this long before the step, by default


class ClockCorrectionIn(BaseModel):
    """A clock correction. Without ``shift_ms`` and ``before_ms``: the step the gateway
    reported (how far its clock moved, and when, on its corrected clock)."""

    model_config = ConfigDict(extra="forbid")

    comment: Annotated[str, Field(min_length=1, max_length=500)]
    shift_ms: Annotated[int, Field(ge=-YEAR_MS, le=YEAR_MS)] | None = None
    before_ms: Annotated[int, Field(ge=0, le=2**53)] | None = None
    since_ms: Annotated[int, Field(ge=0, le=2**53)] | None = None


def clock_router(ctx: HubContext, guard: Guard) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["gateways"])
    manager = guard(Role.MANAGER)

    @router.post(
        "/gateways/{gateway_id}/clock-correction",
        summary="Move a gateway's readings taken with a wrong clock (audited)",
    )
    async def correct(
        gateway_id: str, body: ClockCorrectionIn, user: Principal = manager
    ) -> dict[str, Any]:
        state = ctx.registry.get(gateway_id)
        if state is None or gateway_id not in {g.id for g in ctx.cfg.gateways}:
            raise HTTPException(404, f"no gateway {gateway_id!r:.80}")
        system = state.report.system if state.report is not None else None
        step = system.clock_step if system is not None else None
        shift, before = body.shift_ms, body.before_ms
        if shift is None or before is None:
            if step is None or step.step_ms is None or step.at_ms is None:
                raise HTTPException(
                    409,
                    f"{gateway_id} has reported no clock step: give shift_ms and before_ms",
                )
            shift = step.step_ms if shift is None else shift
            # the gateway's readings before the step are stamped on the clock before it
            before = step.at_ms - step.step_ms if before is None else before
        if shift == 0:
            raise HTTPException(422, "a shift of 0 ms moves nothing")
        since = before - DEFAULT_WINDOW_MS if body.since_ms is None else body.since_ms
        if since >= before:
            raise HTTPException(422, "since_ms must be before before_ms")
        try:
            result = await ctx.store.retime(gateway_id, since, before, shift)
        except StoreError as exc:
            raise HTTPException(409, str(exc)) from None
        after = {
            "since_ms": since,
            "before_ms": before,
            "shift_ms": shift,
            "moved": result.moved,
            "conflicts": result.conflicts,
            "comment": body.comment,
            "reported_step": None if step is None else step.model_dump(mode="json"),
        }
        ctx.audit.record(
            actor=user.name, action="readings.retime", obj=f"gateway/{gateway_id}", after=after
        )
        return {"gateway": gateway_id, **after}

    return router
