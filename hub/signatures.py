"""Signed actions (issue 17, part 2; 21 CFR 11.50, 11.70, 11.200; EU GMP Annex 11 §14).

A signature binds a person, a time, a meaning and the digest of the record as it stood when
signed. The signer is the logged-in user, who re-enters their password for each signature
(a session alone does not sign); a wrong password signs nothing, is audited
(``signature.refused``) and counts towards the account's login lock (:mod:`hub.throttle`).
What can be signed, and by whom:

* an alert (``alert/ID``), by an operator or above: ``acknowledged`` (acknowledges it too,
  stopping its escalation, when it was not yet), ``reviewed``, or ``closed`` once it is
  resolved, with the excursion's cause and the corrective action taken (both required); the
  digest is of the alert's :data:`ALERT_FIELDS`;
* a room's daily log (``daily/SITE/ROOM/YYYY-MM-DD``) once the day is over, by a manager:
  ``approved``; the digest is of the log's content (the records, summaries, excursions and
  alerts as its CSV shows them, without the time it was made and the heads), so computing it
  again later shows whether the day changed since it was approved;
* an alert rule (``rule/ID``), by a manager: ``approved`` (a rule in force); ``changed``,
  with the rule as it is to be (``rule``): the edit takes effect with the signature, and only
  so while ``hub.sign_rule_edits`` is on (the default: ``PUT /api/alerts/rules/ID`` is then
  refused); ``reverted``: the rule's edits undone, back to the site config's; the digest is
  of the rule in force after the signature (of ``null`` when none is left).

A signature is an audit record (``action`` = ``signature``; the trail is chained,
:mod:`hub.audit`), so it cannot be edited or removed without ``coldchain records verify``
naming it. The reports show the signatures of what they cover (:mod:`dashboards.reports`).

Acknowledging by SMS reply or the one-tap link stays possible without a password (it stops
the escalation at 2 a.m.); such an acknowledgement is not a signature, and the alert's
``closed`` signature is where a named person answers for the excursion.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError

from alerts.api import http_status, validation_errors
from alerts.errors import AlertError, UnavailableError
from alerts.rule_edits import RULE
from alerts.service import AlertService
from alerts.store import AlertRow, AlertStore
from coldchain.access import Guard, Principal, Role
from coldchain.alerting.states import AlertState
from coldchain.config.site import SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.store.base import Store
from dashboards.reports import load
from dashboards.reports.build import day_window
from dashboards.reports.model import SignatureRow
from hub.audit import AuditLog
from hub.auth import Auth
from hub.second_factor import matching_step

log = logging.getLogger(__name__)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
OBJECT = re.compile(
    r"alert/(?P<alert>[0-9]{1,12})"
    r"|daily/(?P<site>[a-z0-9][a-z0-9_-]{0,63})/(?P<room>[a-z0-9][a-z0-9_-]{0,63})/"
    r"(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"|rule/(?P<rule>[A-Za-z0-9][A-Za-z0-9_.-]{0,127})"
)
MEANINGS = {
    "alert": ("acknowledged", "reviewed", "closed"),
    "daily": ("approved",),
    "rule": ("approved", "changed", "reverted"),
}
WHO = {"alert": Role.OPERATOR, "daily": Role.MANAGER, "rule": Role.MANAGER}
NAMES = {"alert": "an alert", "daily": "a daily log", "rule": "a rule"}


class SignIn(BaseModel):
    """A signature: what, its meaning, and the signer's password again."""

    model_config = ConfigDict(extra="forbid")

    object: Annotated[str, StringConstraints(max_length=200)] = Field(
        description="alert/ID, daily/SITE/ROOM/YYYY-MM-DD or rule/ID"
    )
    meaning: Literal["acknowledged", "reviewed", "closed", "approved", "changed", "reverted"]
    password: Annotated[SecretStr, Field(max_length=1024)]
    code: str | None = Field(
        None,
        pattern=r"^[0-9]{6}$",
        description="the authenticator app's current code, for a signer with a second factor",
    )
    comment: Text | None = Field(None, description="what the signer adds, in their words")
    cause: Text | None = Field(None, description="closing an alert: the excursion's cause")
    corrective_action: Text | None = Field(
        None, description="closing an alert: what was done about it"
    )
    rule: dict[str, Any] | None = Field(
        None, description="meaning changed: the rule as it is to be (as PUT /api/alerts/rules)"
    )


class SignatureError(Exception):
    """Nothing was signed: ``status`` (403 wrong password, 429 locked, 409/422 the record
    cannot take this meaning) and why."""

    def __init__(self, status: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.retry_after = status, detail, retry_after


ALERT_FIELDS = (
    "id", "key", "rule", "kind", "tier", "severity", "site", "room", "gateway", "series",
    "quantity", "unit", "direction", "state", "since_ms", "fired_ms", "resolved_ms", "value",
    "peak", "limit", "acked_ms", "acked_by", "ack_comment", "ack_via",
)  # fmt: skip
"""What an alert's signature binds: the excursion and its acknowledgement, not the
escalation's bookkeeping (level, last notified), which moves on after the signature."""


def alert_record(public: dict[str, Any]) -> dict[str, Any]:
    return {k: public.get(k) for k in ALERT_FIELDS}


def digest(value: Any) -> str:
    """SHA-256 (hex) of ``value`` as canonical JSON (sorted keys, compact, UTF-8)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Signed:
    """A signature made: its audit record's id and what it binds."""

    audit_id: int
    row: SignatureRow


class Signatures:
    """Checks the signer's password and records signatures in the audit trail."""

    def __init__(self, auth: Auth, audit: AuditLog, *, require_second_factor: bool = False) -> None:
        self.auth, self.audit = auth, audit
        self.require_second_factor = require_second_factor  # hub.require_second_factor
        self.now_s: Callable[[], float] = time.time  # the codes' clock (a test moves it)

    async def check_second_factor(
        self, user: Principal, code: str | None, obj: str, address: str
    ) -> str:
        """The signer's authenticator code, when they have a second factor (or the site
        requires one): the method the signature records (``password`` or
        ``password+totp``). A wrong or reused code is refused, audited and counted like a
        wrong password (hub/second_factor.py)."""
        secret = await asyncio.to_thread(self.auth.users.totp, user.name)
        if secret is None:
            if self.require_second_factor:
                raise SignatureError(
                    403,
                    f"{user.name} has no second factor, and this site signs with one: an "
                    f"admin enrols them (coldchain users DATA_DIR totp {user.name})",
                )
            return "password"
        if code is None:
            raise SignatureError(
                403, "sign with the code from your authenticator app too: nothing was signed"
            )
        refused, _ = self.auth.throttle.begin(user.name, address)
        if refused is not None:
            raise SignatureError(
                429, f"{user.name}: too many wrong codes; try again later", refused.seconds
            )
        step = matching_step(secret, code, self.now_s())
        spent = step is not None and await asyncio.to_thread(
            self.auth.users.use_totp_step, user.name, step
        )
        if not spent:
            why = "wrong code" if step is None else "code used already"
            self.audit.record(
                actor=user.name,
                action="signature.refused",
                obj=obj,
                after={"address": address},
                comment=why,
            )
            log.warning("signature of %s by %s refused: %s", obj, user.name, why)
            raise SignatureError(403, f"the code is not right ({why}): nothing was signed")
        self.auth.throttle.succeeded(user.name, address)
        return "password+totp"

    async def check_password(self, user: Principal, password: str, obj: str, address: str) -> None:
        """The signer's password, throttled like a login; a refusal is audited."""
        refused, earned = self.auth.throttle.begin(user.name, address)
        if refused is not None:
            raise SignatureError(
                429, f"{user.name}: too many wrong passwords; try again later", refused.seconds
            )
        checked = await asyncio.to_thread(self.auth.users.check, user.name, password)
        if checked is None:
            after: dict[str, Any] = {"address": address}
            if earned is not None:
                after["locked_s"] = earned.seconds
            self.audit.record(
                actor=user.name,
                action="signature.refused",
                obj=obj,
                after=after,
                comment="wrong password",
            )
            log.warning("signature of %s by %s refused: wrong password", obj, user.name)
            raise SignatureError(403, "the password is not this user's: nothing was signed")
        self.auth.throttle.succeeded(user.name, address)

    def record(
        self,
        user: Principal,
        obj: str,
        body: SignIn,
        record_digest: str,
        *,
        method: str = "password",
    ) -> Signed:
        after = {
            "meaning": body.meaning,
            "digest": record_digest,
            "role": str(user.role),
            "method": method,
            "cause": body.cause,
            "corrective_action": body.corrective_action,
        }
        after = {k: v for k, v in after.items() if v is not None}
        audit_id = self.audit.record(
            actor=user.name, action="signature", obj=obj, after=after, comment=body.comment
        )
        row = self.of([obj])
        return Signed(audit_id, next(r for r in row if r.audit_id == audit_id))

    def of(self, objects: Collection[str]) -> list[SignatureRow]:
        """The signatures of ``objects``, oldest first."""
        wanted = sorted(set(objects))
        out: list[SignatureRow] = []
        for i in range(0, len(wanted), 500):
            records = self.audit.about("signature", wanted[i : i + 500])
            out += [
                SignatureRow(
                    audit_id=r.id,
                    ts_ms=r.ts_ms,
                    signer=r.actor,
                    role=str(r.after.get("role", "")),
                    object=r.object,
                    meaning=str(r.after.get("meaning", "")),
                    digest=str(r.after.get("digest", "")),
                    comment=r.comment,
                    cause=r.after.get("cause"),
                    corrective_action=r.after.get("corrective_action"),
                )
                for r in records
                if isinstance(r.after, dict)
            ]
        return sorted(out, key=lambda s: s.audit_id)


DailyDigest = Callable[[str, str, str], Awaitable[str]]
"""(site, room, YYYY-MM-DD) -> the digest of that daily log's content; raises
:class:`LookupError` for a site, room or date that does not exist."""


def daily_digester(
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    store: Store,
    alerts: AlertStore | None,
    now_ms: Callable[[], int],
) -> DailyDigest:
    """The :data:`DailyDigest` of the daily logs the reports serve (the same loader)."""

    async def daily_digest(site_id: str, room_id: str, day_text: str) -> str:
        site = next((s for s in cfg.sites if s.id == site_id), None)
        room = next((r for r in site.rooms if r.id == room_id), None) if site else None
        if site is None or room is None:
            raise LookupError(f"no room {room_id} in site {site_id}")
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise LookupError(f"{day_text}: not a date") from None
        now = now_ms()
        if now < day_window(day, site.timezone)[1]:
            raise SignatureError(409, f"{day} is not over: its log can be approved from tomorrow")
        log = await load.daily_log(
            cfg=cfg,
            profiles=profiles,
            store=store,
            alerts=alerts,
            site=site,
            room=room,
            day=day,
            now_ms=now,
        )
        return load.content_digest(log)

    return daily_digest


def signatures_router(
    sig: Signatures,
    alerts: AlertService | None,
    daily_digest: DailyDigest,
    guard: Guard,
) -> APIRouter:
    """``POST /api/signatures`` (any user; what each may sign is checked per record) and
    ``GET /api/signatures?object=...``."""
    router = APIRouter(tags=["signatures"])
    operator = guard(Role.OPERATOR)

    @router.get("/api/signatures", summary="The signatures of a record")
    def list_signatures(
        object: Annotated[str, Field(max_length=200)], user: Principal = operator
    ) -> list[dict[str, Any]]:
        return [s.public() for s in sig.of([object])]

    @router.post("/api/signatures", summary="Sign a record (password again; audited)")
    async def sign(request: Request, body: SignIn, user: Principal = operator) -> JSONResponse:
        address = request.client.host if request.client else "unknown"
        try:
            signed = await _sign(sig, alerts, daily_digest, user=user, body=body, address=address)
        except SignatureError as exc:
            headers = {"Retry-After": str(math.ceil(exc.retry_after))} if exc.retry_after else None
            raise HTTPException(exc.status, exc.detail, headers=headers) from None
        return JSONResponse(signed.row.public(), status_code=201)

    return router


async def _sign(
    sig: Signatures,
    alerts: AlertService | None,
    daily_digest: DailyDigest,
    *,
    user: Principal,
    body: SignIn,
    address: str,
) -> Signed:
    m = OBJECT.fullmatch(body.object)
    if m is None:
        raise SignatureError(
            422, f"{body.object!r}: sign alert/ID, daily/SITE/ROOM/YYYY-MM-DD or rule/ID"
        )
    kind = body.object.split("/", 1)[0]
    if body.meaning not in MEANINGS[kind]:
        raise SignatureError(
            422, f"{NAMES[kind]} is signed as {' or '.join(MEANINGS[kind])}, not {body.meaning}"
        )
    if not user.allows(WHO[kind]):
        raise SignatureError(403, f"signing {NAMES[kind]} needs a {WHO[kind]} or above")
    _check_fields(body)
    if kind != "daily" and alerts is None:
        raise SignatureError(409, "this hub runs without alerts")
    day_digest = await _can_sign(alerts, daily_digest, m, body)  # before the password
    await sig.check_password(user, body.password.get_secret_value(), body.object, address)
    method = await sig.check_second_factor(user, body.code, body.object, address)
    if kind == "alert":
        assert alerts is not None
        alert_id = int(m["alert"])
        row = alerts.get(alert_id)
        if body.meaning == "acknowledged" and row.acked_ms is None:
            row = await _ack(alerts, alert_id, user, body)
        record_digest = digest(alert_record(row.public()))
    elif kind == "rule":
        assert alerts is not None
        if body.meaning != "approved":
            await _edit_rule(alerts, m["rule"], user, body)
        rule = next((r for r in alerts.rules() if r.id == m["rule"]), None)
        if rule is None and body.meaning == "approved":  # the config changed meanwhile
            raise SignatureError(404, f"no rule {m['rule']} in force")
        record_digest = digest(None if rule is None else rule.model_dump(mode="json"))
    else:
        assert day_digest is not None
        record_digest = day_digest
    return sig.record(user, body.object, body, record_digest, method=method)


async def _ack(alerts: AlertService, alert_id: int, user: Principal, body: SignIn) -> AlertRow:
    """The acknowledgement a signature makes; in a thread, as on a hub that does not lead
    the leader's answer is waited for (alerts/requests.py)."""
    try:
        return await asyncio.to_thread(
            alerts.ack, alert_id, by=user.name, comment=body.comment, via="signature"
        )
    except UnavailableError as exc:
        raise SignatureError(503, str(exc)) from None
    except AlertError as exc:
        raise SignatureError(409, str(exc)) from None


def _check_fields(body: SignIn) -> None:
    """The fields a meaning takes, and only those."""
    closing = body.meaning == "closed"
    if closing and (body.cause is None or body.corrective_action is None):
        raise SignatureError(422, "closing an alert needs its cause and the corrective action")
    if not closing and (body.cause is not None or body.corrective_action is not None):
        raise SignatureError(422, "cause and corrective_action belong to closing an alert")
    if (body.meaning == "changed") != (body.rule is not None):
        raise SignatureError(422, "a rule is changed with the rule as it is to be, in rule")


async def _edit_rule(alerts: AlertService, rule_id: str, user: Principal, body: SignIn) -> None:
    """The edit a ``changed`` or ``reverted`` signature makes; in a thread (a hub that does
    not lead waits for the leader's answer)."""
    try:
        if body.meaning == "changed":
            assert body.rule is not None
            rule = {**body.rule, "id": rule_id}
            await asyncio.to_thread(alerts.put_rule, rule, by=user.name)
        else:
            await asyncio.to_thread(alerts.revert_rule, rule_id, by=user.name)
    except UnavailableError as exc:
        raise SignatureError(503, str(exc)) from None
    except AlertError as exc:
        raise SignatureError(http_status(exc), str(exc)) from None
    except ValidationError as exc:  # checked before the password; the config moved since
        raise SignatureError(422, f"rule {rule_id}: {validation_errors(exc)}") from None


async def _can_sign(
    alerts: AlertService | None, daily_digest: DailyDigest, m: re.Match[str], body: SignIn
) -> str | None:
    """Refuse (404/409) a record that does not exist or cannot take the meaning; a daily
    log's digest (computed here once, the log read once)."""
    if m["alert"] is not None:
        assert alerts is not None
        try:
            row = alerts.get(int(m["alert"]))
        except AlertError:
            raise SignatureError(404, f"no alert {m['alert']}") from None
        if row.state == AlertState.CANCELLED:
            raise SignatureError(409, f"alert {row.id} was cancelled before it fired")
        if body.meaning == "closed" and row.state != AlertState.RESOLVED:
            raise SignatureError(
                409, f"alert {row.id} is {row.state}: close it once it is resolved"
            )
    elif m["rule"] is not None:
        assert alerts is not None
        _can_sign_rule(alerts, m["rule"], body)
    else:
        try:
            return await daily_digest(m["site"], m["room"], m["day"])
        except LookupError as exc:
            raise SignatureError(404, str(exc)) from None
    return None


def _can_sign_rule(alerts: AlertService, rule_id: str, body: SignIn) -> None:
    """A rule to change checks (422), a rule to revert has edits, one to approve is in
    force (404)."""
    if body.rule is not None:
        if body.rule.get("id", rule_id) != rule_id:
            raise SignatureError(422, f"the rule's id {body.rule.get('id')!r} is not {rule_id}")
        try:
            RULE.validate_python({**body.rule, "id": rule_id})
        except ValidationError as exc:
            raise SignatureError(422, f"rule {rule_id}: {validation_errors(exc)}") from None
    elif body.meaning == "reverted":
        if alerts.store.rule_edits().get(rule_id) is None:
            raise SignatureError(404, f"rule {rule_id} has no edit to revert")
    elif not any(r.id == rule_id for r in alerts.rules()):
        raise SignatureError(404, f"no rule {rule_id} in force")
