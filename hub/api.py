"""The REST API (FastAPI): sites, rooms, devices, points, latest values, history, door
events, gateways and their health, the audit trail, and Prometheus /metrics for the hub.

Every input is validated and every refusal says what was wrong: an unknown id is a 404 that
names it (and the closest known one), a malformed time or step is a 422 that shows the form
expected, and a number out of its range (:mod:`coldchain.params`: times 1970 to 9999, offsets,
limits) is a 422 that states the range. Lists are paginated (``limit``, ``offset``).

Every ``/api`` route needs a logged-in user: an operator reads, a technician also sees the
gateways, a manager also the audit trail (docs/web.md). The routes ask for a role with the
guard :func:`api_router` is given (:meth:`hub.auth.Auth.require`). ``/healthz`` and
``/metrics`` are open.

    app = create_app(ctx, auth.require)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.responses import PlainTextResponse

from coldchain import __version__, params
from coldchain.access import Guard, Role
from coldchain.lookup import UnknownNameError, unknown
from coldchain.profiles.schema import PointKind
from coldchain.reading import Reading, SeriesId
from coldchain.store.base import Agg
from hub.context import HubContext
from hub.metrics import render_metrics
from hub.model import (
    AuditOut,
    BucketOut,
    DeviceOut,
    DoorIntervalOut,
    GatewayConfigOut,
    GatewayOut,
    HistoryOut,
    LimitsOut,
    Page,
    PointOut,
    ReadingOut,
    RoomOut,
    SiteOut,
)

MAX_BUCKETS = 10_000
DAY_MS = 86_400_000

Limit = Annotated[params.Limit, Query(description="items per page")]
Offset = Annotated[params.Offset, Query(description="items to skip")]
Time = Annotated[params.TimeText | None, Query(description="epoch ms or ISO 8601")]


@contextmanager
def known_names() -> Iterator[None]:
    """An unknown name (:class:`coldchain.lookup.UnknownNameError`) becomes a 404 that says
    it, with the closest known name."""
    try:
        yield
    except UnknownNameError as exc:
        raise HTTPException(404, str(exc)) from None


def series_id(ctx: HubContext, text: str) -> SeriesId:
    """A known series, else a 422 (not a series id) or a 404 (no such point)."""
    try:
        with known_names():
            return ctx.series_id(text)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def parse_time(text: str | None, default: int, name: str) -> int:
    """UTC ms from epoch milliseconds or an ISO 8601 time with an offset, within the range
    of :data:`coldchain.params.EpochMs` (else a 422 that says so)."""
    if text is None:
        return default
    try:
        return params.parse_epoch_ms(text, name)
    except params.ParamError as exc:
        raise HTTPException(422, str(exc)) from None


def page_of(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    return {
        "items": items[offset : offset + limit],
        "total": len(items),
        "limit": limit,
        "offset": offset,
    }


def reading_out(r: Reading) -> ReadingOut:
    return ReadingOut(
        series=str(r.series),
        ts_ms=r.ts_ms,
        value=r.value,
        quality=str(r.quality),
        reason=r.reason,
        calibration=r.meta.get("calibration", 0.0),
    )


def site_out(ctx: HubContext, site_id: str) -> SiteOut:
    """A configured site with its rooms; :class:`~coldchain.lookup.UnknownNameError` else."""
    site = next((s for s in ctx.cfg.sites if s.id == site_id), None)
    if site is None:
        raise unknown("site", site_id, (s.id for s in ctx.cfg.sites))
    rooms = []
    for r in site.rooms:
        lim = r.effective_limits
        rooms.append(
            RoomOut(
                site=site.id,
                id=r.id,
                name=r.name,
                room_class=str(r.room_class),
                area_m2=r.area_m2,
                limits=LimitsOut(
                    temperature_low=lim.temperature.low,
                    temperature_high=lim.temperature.high,
                    humidity_low=lim.humidity.low if lim.humidity else None,
                    humidity_high=lim.humidity.high if lim.humidity else None,
                ),
            )
        )
    return SiteOut(id=site.id, name=site.name, timezone=site.timezone, rooms=rooms)


def gateway_out(ctx: HubContext, gateway_id: str) -> GatewayOut:
    """A configured gateway with its state; :class:`~coldchain.lookup.UnknownNameError`
    else."""
    state = ctx.registry.get(gateway_id)
    gw = next((g for g in ctx.cfg.gateways if g.id == gateway_id), None)
    if state is None or gw is None:
        raise unknown("gateway", gateway_id, (g.id for g in ctx.cfg.gateways))
    return GatewayOut(
        id=state.id,
        site=gw.site,
        state=state.state,
        state_since_ms=state.state_since_ms,
        last_seen_ms=state.last_seen_ms,
        version=state.version,
        backlog=state.backlog,
        poll_success=state.poll_success(),
        health=state.health,
        clock_offset_ms=state.clock.offset_ms if state.clock else None,
        clock_uncertainty_ms=state.clock.delay_ms / 2 if state.clock else None,
        clock_measured_ms=state.clock.at_ms if state.clock else None,
        config=(
            GatewayConfigOut(**ctx.config_state(gateway_id).fields())
            if ctx.config_state is not None
            else None
        ),
    )


def api_router(ctx: HubContext, guard: Guard) -> APIRouter:
    """The ``/api`` routes of the hub's own data over ``ctx``, each behind ``guard``: an
    operator for all, a technician for the gateways, a manager for the audit trail."""
    router = APIRouter(prefix="/api", dependencies=[guard(Role.OPERATOR)])
    _config_routes(router, ctx)
    _reading_routes(router, ctx)
    _gateway_routes(router, ctx, guard)
    _audit_routes(router, ctx, guard)
    return router


def _config_routes(router: APIRouter, ctx: HubContext) -> None:
    """Sites, rooms, devices and points, as configured."""

    @router.get("/sites", response_model=list[SiteOut], summary="Sites and their rooms")
    def sites() -> list[SiteOut]:
        return [site_out(ctx, s.id) for s in ctx.cfg.sites]

    @router.get("/sites/{site_id}", response_model=SiteOut, summary="One site")
    def site(site_id: str) -> SiteOut:
        with known_names():
            return site_out(ctx, site_id)

    @router.get("/sites/{site_id}/rooms/{room_id}", response_model=RoomOut, summary="One room")
    def room(site_id: str, room_id: str) -> RoomOut:
        with known_names():
            s = site_out(ctx, site_id)
            found = next((r for r in s.rooms if r.id == room_id), None)
            if found is None:
                raise unknown(f"room in {site_id}", room_id, (r.id for r in s.rooms))
        return found

    @router.get("/devices", response_model=Page[DeviceOut], summary="Devices, filtered")
    def devices(
        *,
        site: str | None = None,
        room: str | None = None,
        gateway: str | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        with known_names():
            ctx.check_filters(site=site, room=room, gateway=gateway)
        out = [
            DeviceOut(
                site=gw.site,
                room=d.room,
                gateway=gw.id,
                id=d.id,
                name=d.name,
                profile=d.profile,
                model=ctx.profiles.get(d.profile).model,
                bus=d.bus,
                unit_id=d.unit_id,
                poll_interval_s=d.poll_interval,
                points=[p.name for p in ctx.profiles.get(d.profile).points],
            )
            for gw in ctx.cfg.gateways
            for d in gw.devices
            if (site in (None, gw.site) and room in (None, d.room) and gateway in (None, gw.id))
        ]
        return page_of(out, limit, offset)

    @router.get("/points", response_model=Page[PointOut], summary="Points (series), filtered")
    def points(
        *,
        site: str | None = None,
        room: str | None = None,
        gateway: str | None = None,
        kind: PointKind | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        with known_names():
            ctx.check_filters(site=site, room=room, gateway=gateway)
        out = [
            p
            for p in ctx.points()
            if site in (None, p.site)
            and room in (None, p.room)
            and gateway in (None, p.gateway)
            and kind in (None, p.kind)
        ]
        return page_of(out, limit, offset)


def _reading_routes(router: APIRouter, ctx: HubContext) -> None:
    """Latest values, history and door intervals, from the store."""

    @router.get("/latest", response_model=list[ReadingOut], summary="Latest value of each series")
    async def latest(
        *,
        site: str | None = None,
        room: str | None = None,
        series: Annotated[list[str] | None, Query(description="site/gateway/device/point")] = None,
    ) -> list[ReadingOut]:
        with known_names():
            ctx.check_filters(site=site, room=room)
        wanted = (
            [series_id(ctx, s) for s in series]
            if series
            else [
                SeriesId.parse(p.series)
                for p in ctx.points()
                if site in (None, p.site) and room in (None, p.room)
            ]
        )
        found = await ctx.store.latest(wanted)
        return [reading_out(found[s]) for s in wanted if s in found]

    @router.get("/history", response_model=HistoryOut, summary="History of one series")
    async def history(
        *,
        series: Annotated[str, Query(description="site/gateway/device/point")],
        start: Annotated[
            params.TimeText | None, Query(description="epoch ms or ISO 8601; default end - 24h")
        ] = None,
        end: Annotated[
            params.TimeText | None, Query(description="epoch ms or ISO 8601; default now")
        ] = None,
        step: Annotated[
            params.DurationText | None, Query(description="e.g. 1min, 1h; absent: raw readings")
        ] = None,
        agg: Agg = Agg.MEAN,
    ) -> HistoryOut:
        sid = series_id(ctx, series)
        end_ms = parse_time(end, ctx.clock.now_ms(), "end")
        start_ms = parse_time(start, end_ms - DAY_MS, "start")
        if start_ms >= end_ms:
            raise HTTPException(422, f"start ({start_ms}) must be before end ({end_ms})")
        if step is None:
            if end_ms - start_ms > 31 * DAY_MS:
                raise HTTPException(
                    422, "raw readings over more than 31 days: give a step, e.g. 1h"
                )
            raw = await ctx.store.raw(sid, start_ms, end_ms)
            return HistoryOut(
                series=series,
                start_ms=start_ms,
                end_ms=end_ms,
                step_ms=None,
                agg=None,
                readings=[reading_out(r) for r in raw],
            )
        try:
            step_ms = params.duration_ms(step, "step")
        except params.ParamError as exc:
            raise HTTPException(422, str(exc)) from None
        if step_ms < 1000:
            raise HTTPException(422, f"step {step!r} is under a second; use 1s or more")
        if (end_ms - start_ms) // step_ms > MAX_BUCKETS:
            least = -(-(end_ms - start_ms) // MAX_BUCKETS) // 1000
            raise HTTPException(
                422,
                f"step {step!r} gives more than {MAX_BUCKETS} buckets over this "
                f"range; use a step of at least {least}s",
            )
        buckets = await ctx.store.range(sid, start_ms, end_ms, step_ms, agg)
        return HistoryOut(
            series=series,
            start_ms=start_ms,
            end_ms=end_ms,
            step_ms=step_ms,
            agg=str(agg),
            buckets=[BucketOut(ts_ms=b.ts_ms, value=b.value, count=b.count) for b in buckets],
        )

    @router.get("/doors", response_model=list[DoorIntervalOut], summary="Door open intervals")
    async def doors(
        *,
        series: Annotated[str, Query(description="a door point's series")],
        start: Time = None,
        end: Time = None,
    ) -> list[DoorIntervalOut]:
        sid = series_id(ctx, series)
        if ctx.kind_of(sid) is not PointKind.DOOR:
            raise HTTPException(422, f"{series} is a {ctx.kind_of(sid)} point, not a door")
        end_ms = parse_time(end, ctx.clock.now_ms(), "end")
        start_ms = parse_time(start, end_ms - DAY_MS, "start")
        if start_ms >= end_ms:
            raise HTTPException(422, f"start ({start_ms}) must be before end ({end_ms})")
        intervals = await ctx.store.door_intervals(sid, start_ms, end_ms)
        return [
            DoorIntervalOut(
                series=series,
                opened_ms=i.opened_ms,
                closed_ms=i.closed_ms,
                duration_s=i.duration_ms(end_ms) / 1000,
            )
            for i in intervals
        ]


def _gateway_routes(router: APIRouter, ctx: HubContext, guard: Guard) -> None:
    """The gateways and their health: technicians and above."""

    @router.get(
        "/gateways",
        response_model=list[GatewayOut],
        summary="Gateways and their health",
        dependencies=[guard(Role.TECHNICIAN)],
    )
    def gateways() -> list[GatewayOut]:
        return [gateway_out(ctx, g.id) for g in ctx.cfg.gateways]

    @router.get(
        "/gateways/{gateway_id}",
        response_model=GatewayOut,
        summary="One gateway",
        dependencies=[guard(Role.TECHNICIAN)],
    )
    def gateway(gateway_id: str) -> GatewayOut:
        with known_names():
            return gateway_out(ctx, gateway_id)


def _audit_routes(router: APIRouter, ctx: HubContext, guard: Guard) -> None:
    """The audit trail: managers and above."""

    @router.get(
        "/audit",
        response_model=Page[AuditOut],
        summary="The audit trail, newest first",
        dependencies=[guard(Role.MANAGER)],
    )
    def audit(
        limit: Limit = 100,
        offset: Offset = 0,
        action: Annotated[str | None, Query(description="action prefix, e.g. alert.")] = None,
    ) -> dict[str, Any]:
        records, total = ctx.audit.page(limit, offset, action=action)
        items = [
            AuditOut(
                id=r.id,
                ts_ms=r.ts_ms,
                actor=r.actor,
                action=r.action,
                object=r.object,
                before=r.before,
                after=r.after,
                comment=r.comment,
            )
            for r in records
        ]
        return {"items": items, "total": total, "limit": limit, "offset": offset}


def create_app(ctx: HubContext, guard: Guard, *, api: bool = True) -> FastAPI:
    """The hub's app with its ``/api`` routes (behind ``guard``; not without ``api``: a hub
    without the web role), ``/metrics`` and ``/healthz``; the hub adds the other routers and
    the access middleware."""
    app = FastAPI(
        title="coldchain hub",
        version=__version__,
        description="Cold-chain monitoring: sites, rooms, readings, gateways. Times are UTC "
        "epoch milliseconds unless given as ISO 8601.",
    )
    if api:
        app.include_router(api_router(ctx, guard))

    @app.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
    def metrics() -> str:
        return render_metrics(ctx)

    @app.get("/healthz", summary="Liveness, the roles this hub runs, and whether it leads")
    def healthz() -> dict[str, Any]:
        leading = ctx.alerts is None or ctx.alerts.leading
        return {
            "status": "ok",
            "version": __version__,
            "roles": list(ctx.roles),
            "alerts": "leader" if leading else "standby" if "alerts" in ctx.roles else "off",
        }

    return app
