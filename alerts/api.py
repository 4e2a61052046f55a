"""The alerts API (mounted by the hub): alerts and their notifications, acknowledge and
snooze, maintenance per room, rules edited at run time (audited), the one-tap acknowledge
page behind the link in each SMS, and Twilio's delivery and inbound-SMS callbacks (signed).

Every route but the one-tap page and Twilio's callbacks (they carry their own signatures)
needs a logged-in user with a role, asked of the guard :func:`alerts_router` is given (the
hub's :meth:`hub.auth.Auth.require`); who does something is that user (a ``by`` in the
request is ignored), and every change is written to the audit trail with it. A refusal of
the alert lifecycle (:mod:`alerts.errors`) is answered with :func:`http_status`.

    app.include_router(alerts_router(service, auth.require))
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, Field, ValidationError

from alerts.errors import (
    AlertError,
    ConflictError,
    InvalidError,
    NotFoundError,
    UnavailableError,
)
from alerts.notifiers.twilio import (
    TwilioCallbackError,
    parse_inbound,
    parse_status_callback,
    verify_twilio_signature,
)
from alerts.service import AlertService
from coldchain.access import Guard, Principal, Role
from coldchain.alerting.links import LinkError, verify
from coldchain.alerting.messages import Language, display_name
from coldchain.params import (
    EPOCH_MS_MAX,
    DurationText,
    EpochMs,
    Limit,
    Offset,
    ParamError,
    RowId,
    duration_ms,
)

AlertId = Annotated[RowId, Path(description="the alert's id")]


def http_status(exc: AlertError) -> int:
    """The HTTP status of a refusal of the alert lifecycle (:mod:`alerts.errors`)."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, InvalidError):
        return 422
    if isinstance(exc, UnavailableError):
        return 503
    return 400


def validation_errors(exc: ValidationError) -> str:
    """A rule's validation errors on one line: ``where: what; ...``."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except AlertError as exc:
        raise HTTPException(http_status(exc), str(exc)) from None


def _until(now_ms: int, until_ms: int | None, duration: str | None) -> int:
    """The end of a snooze or a maintenance: ``until_ms``, or now + ``for``; either way a
    time of :data:`coldchain.params.EpochMs` (else a 422 that says the range)."""
    if (until_ms is None) == (duration is None):
        raise HTTPException(422, "give either until_ms or for (a duration such as '2h')")
    if duration is not None:
        try:
            return now_ms + duration_ms(duration, "for", at_most_ms=EPOCH_MS_MAX - now_ms)
        except ParamError as exc:
            raise HTTPException(422, str(exc)) from None
    assert until_ms is not None
    return until_ms


class AckIn(BaseModel):
    by: str | None = Field(None, description="ignored: the logged-in user acknowledges")
    comment: str | None = Field(None, description="what was done about it")


class SnoozeIn(BaseModel):
    by: str | None = Field(None, description="ignored: the logged-in user snoozes")
    until_ms: EpochMs | None = Field(None, description="UTC ms")
    duration: DurationText | None = Field(None, alias="for", description="e.g. 30min")


class MaintenanceIn(BaseModel):
    by: str | None = Field(None, description="ignored: the logged-in user")
    reason: str = Field(min_length=3, description="why the room's alerts are held")
    until_ms: EpochMs | None = Field(None, description="UTC ms")
    duration: DurationText | None = Field(None, alias="for", description="e.g. 4h")


def alerts_router(svc: AlertService, guard: Guard) -> APIRouter:
    """The alerts' routes over ``svc``: reading needs an operator, snoozing and
    acknowledging too, a room's maintenance a technician, rule edits a manager (each asked
    of ``guard``); the one-tap page and Twilio's callbacks answer for their own signatures."""
    router = APIRouter()
    _alert_routes(router, svc, guard)
    _maintenance_routes(router, svc, guard)
    _one_tap_routes(router, svc)
    _twilio_routes(router, svc)
    return router


def _alert_routes(router: APIRouter, svc: AlertService, guard: Guard) -> None:
    """Alerts, their notifications, ack and snooze; the rules in force and their edits."""
    operator, manager = guard(Role.OPERATOR), guard(Role.MANAGER)

    @router.get("/api/alerts", summary="Alerts, newest first")
    def list_alerts(
        *,
        state: Annotated[str, Query(description="open, all, or a state")] = "open",
        site: str | None = None,
        room: str | None = None,
        limit: Annotated[Limit, Query(description="items per page")] = 100,
        offset: Annotated[Offset, Query(description="items to skip")] = 0,
        user: Principal = operator,
    ) -> list[dict[str, Any]]:
        states = {
            "open": ["pending", "firing", "acknowledged"],
            "all": None,
        }.get(state, [state])
        valid = {"pending", "firing", "acknowledged", "resolved", "cancelled"}
        if states is not None and not set(states) <= valid:
            raise HTTPException(422, f"state {state!r}: use open, all or one of {sorted(valid)}")
        rows = svc.store.query(states=states, site=site, room=room, limit=limit, offset=offset)
        return [r.public() for r in rows]

    @router.get("/api/alerts/rules", summary="The rules in force (config, defaults, edits)")
    def list_rules(user: Principal = operator) -> list[dict[str, Any]]:
        edits = svc.store.rule_edits()
        return [
            {**r.model_dump(mode="json"), "edited": edits.get(r.id) is not None}
            for r in svc.rules()
        ]

    def unsigned_edits(rule_id: str) -> None:
        if svc.cfg.hub.sign_rule_edits:
            raise HTTPException(
                409,
                f"rule edits are signed here (hub.sign_rule_edits): POST /api/signatures with "
                f"object rule/{rule_id}, meaning changed (and the rule) or reverted, and your "
                "password; nothing was changed",
            )

    @router.put("/api/alerts/rules/{rule_id}", summary="Add or replace a rule (audited)")
    def put_rule(
        rule_id: str, body: Annotated[dict[str, Any], Body()], by: Principal = manager
    ) -> dict[str, Any]:
        unsigned_edits(rule_id)
        if body.get("id", rule_id) != rule_id:
            raise HTTPException(422, f"the body's id {body.get('id')!r} differs from {rule_id!r}")
        try:
            rule = _call(svc.put_rule, {**body, "id": rule_id}, by=by.name)
        except ValidationError as exc:
            raise HTTPException(422, f"rule {rule_id}: {validation_errors(exc)}") from None
        out: dict[str, Any] = rule.model_dump(mode="json")
        return out

    @router.delete("/api/alerts/rules/{rule_id}", summary="Undo the edits of a rule (audited)")
    def revert_rule(rule_id: str, by: Principal = manager) -> dict[str, str]:
        unsigned_edits(rule_id)
        _call(svc.revert_rule, rule_id, by=by.name)
        return {"rule": rule_id, "status": "reverted"}

    @router.get("/api/alerts/{alert_id}", summary="One alert, with who was told when")
    def get_alert(alert_id: AlertId, user: Principal = operator) -> dict[str, Any]:
        row = _call(svc.get, alert_id)
        out: dict[str, Any] = row.public()
        out["notifications"] = [n.public() for n in svc.store.notifications(alert_id=alert_id)]
        return out

    @router.post("/api/alerts/{alert_id}/ack", summary="Acknowledge (stops escalation)")
    def ack(alert_id: AlertId, body: AckIn, by: Principal = operator) -> dict[str, Any]:
        row = _call(svc.ack, alert_id, by=by.name, comment=body.comment, via="api")
        out: dict[str, Any] = row.public()
        return out

    @router.post("/api/alerts/{alert_id}/snooze", summary="Hold escalation until a time")
    def snooze(alert_id: AlertId, body: SnoozeIn, by: Principal = operator) -> dict[str, Any]:
        until = _until(svc.clock(), body.until_ms, body.duration)
        out: dict[str, Any] = _call(svc.snooze, alert_id, until_ms=until, by=by.name).public()
        return out


def _maintenance_routes(router: APIRouter, svc: AlertService, guard: Guard) -> None:
    """Rooms in maintenance (their alerts held): listed for operators, set by technicians."""
    operator, technician = guard(Role.OPERATOR), guard(Role.TECHNICIAN)

    @router.get("/api/maintenance", summary="Rooms in maintenance now")
    def maintenance_list(user: Principal = operator) -> list[dict[str, Any]]:
        return svc.store.maintenance(svc.clock())

    @router.post("/api/rooms/{site}/{room}/maintenance", summary="Hold a room's alerts (audited)")
    def maintenance_start(
        site: str, room: str, body: MaintenanceIn, by: Principal = technician
    ) -> dict[str, Any]:
        until = _until(svc.clock(), body.until_ms, body.duration)
        _call(svc.maintenance, site, room, until_ms=until, reason=body.reason, by=by.name)
        return {"site": site, "room": room, "until_ms": until, "reason": body.reason}

    @router.delete("/api/rooms/{site}/{room}/maintenance", summary="End a room's maintenance")
    def maintenance_end(site: str, room: str, by: Principal = technician) -> dict[str, str]:
        _call(svc.maintenance, site, room, until_ms=None, reason="", by=by.name)
        return {"site": site, "room": room, "status": "ended"}


# --- the one-tap page ------------------------------------------------------------------

_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>body{{font:18px system-ui,sans-serif;margin:1.5em;max-width:32em}}
button{{font-size:1.2em;padding:.7em 1.4em}}textarea{{width:100%;font-size:1em}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, lang: Language = "zh-CN", status: int = 200) -> HTMLResponse:
    text = _PAGE.format(lang=lang, title=html.escape(title), body=body)
    return HTMLResponse(text, status_code=status)


def _claim(svc: AlertService, token: str) -> tuple[Any, Language]:
    try:
        claim = verify(token, svc.link_key, svc.clock())
    except LinkError as exc:
        raise HTTPException(403, f"this link cannot be used: {exc}") from None
    contact = svc.contacts.get(claim.contact_id)
    lang: Language = contact.language if contact else "zh-CN"
    return claim, lang


def _one_tap_page(svc: AlertService, token: str) -> HTMLResponse:
    try:
        claim, lang = _claim(svc, token)
    except HTTPException as exc:
        return _page(
            "链接无效 / Link not valid", f"<p>{html.escape(str(exc.detail))}</p>", status=403
        )
    row = _call(svc.get, claim.alert_id)
    zh = lang == "zh-CN"
    site = svc.sites.get(row.site)
    room = svc.rooms.get((row.site, row.room or ""))
    where = " ".join(
        display_name(n, lang)
        for n in (site.name if site else row.site, room.name if room else "")
        if n
    )
    value = "" if row.value is None else f"{row.value:g} {row.unit}"
    what = " · ".join(x for x in (row.rule, value, row.state) if x)
    facts = f"<p><b>{html.escape(where)}</b></p><p>{html.escape(what)}</p>"
    if row.acked_ms is not None:
        done = ("已由 %s 确认" if zh else "Acknowledged by %s") % html.escape(row.acked_by or "")
        return _page("告警" if zh else "Alert", facts + f"<p>{done}</p>", lang)
    form = (
        f'<form method="post"><textarea name="comment" rows="3" placeholder="'
        f'{"处理情况(可选)" if zh else "What was done (optional)"}"></textarea><p>'
        f'<button type="submit">{"确认告警" if zh else "Acknowledge"}</button></p></form>'
    )
    return _page("告警确认" if zh else "Acknowledge alert", facts + form, lang)


def _one_tap_routes(router: APIRouter, svc: AlertService) -> None:
    """The page behind the link in each SMS: no login, the link's signature instead."""

    @router.get("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
    def one_tap(token: str) -> HTMLResponse:
        return _one_tap_page(svc, token)

    @router.post("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
    def one_tap_ack(token: str, comment: Annotated[str | None, Form()] = None) -> HTMLResponse:
        claim, lang = _claim(svc, token)
        zh = lang == "zh-CN"
        try:
            svc.ack(claim.alert_id, by=claim.contact_id, comment=comment or None, via="link")
        except AlertError as exc:
            return _page("告警" if zh else "Alert", f"<p>{html.escape(str(exc))}</p>", lang, 409)
        return _page("已确认" if zh else "Acknowledged", "<p>✔</p>", lang)


# --- Twilio callbacks ------------------------------------------------------------------


async def _twilio_form(request: Request, svc: AlertService) -> dict[str, str]:
    form = {k: str(v) for k, v in (await request.form()).items()}
    token = svc.twilio_token
    signature = request.headers.get("X-Twilio-Signature", "")
    url = str(request.url)
    if token is None or not verify_twilio_signature(url, form, signature, token):
        raise HTTPException(403, "X-Twilio-Signature does not match")
    return form


def _twilio_routes(router: APIRouter, svc: AlertService) -> None:
    """Twilio's delivery reports and inbound SMS: no login, Twilio's signature instead."""

    @router.post("/api/alerts/twilio/status", include_in_schema=False)
    async def twilio_status(request: Request) -> PlainTextResponse:
        form = await _twilio_form(request, svc)
        try:
            status = parse_status_callback(form)
        except TwilioCallbackError as exc:
            raise HTTPException(422, str(exc)) from None
        svc.delivery(status.message_sid, status.status)
        return PlainTextResponse("", status_code=204)

    @router.post("/api/alerts/twilio/inbound", include_in_schema=False)
    async def twilio_inbound(request: Request) -> PlainTextResponse:
        form = await _twilio_form(request, svc)
        try:
            sms = parse_inbound(form)
        except TwilioCallbackError as exc:
            raise HTTPException(422, str(exc)) from None
        svc.reply(sms.sender, sms.text, via="sms-reply")
        return PlainTextResponse(
            '<?xml version="1.0" encoding="UTF-8"?><Response/>', media_type="text/xml"
        )
