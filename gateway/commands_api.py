"""Commissioning commands to a gateway through the hub's API, for technicians: what
``coldchain gateway CONFIG scan|read ID`` does (``docs/commissioning.md``), recorded in the
audit trail under the logged-in user's name (what was asked, not what was found).

    POST /api/gateways/{id}/scan   {"bus", "units"?, "baud"?, "parity"?}   the scan's report
    POST /api/gateways/{id}/read   {"bus", "unit", "profile"}              the read's report

The request waits for the gateway's answer (tens of seconds for a scan) and returns it, with
the lines ``coldchain modbus`` prints; 504 when the gateway does not answer in time, 502 when
the broker cannot be reached, 409 with the agent's reason when it could not run it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Annotated, Any

import aiomqtt
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from coldchain.access import Guard, Principal, Role
from coldchain.config.site import SiteConfig, broker_address
from coldchain.protocol.commands import Request, read_lines, scan_lines
from coldchain.protocol.topics import Topics
from coldchain.statedb import StateTarget
from gateway.remote import (
    UnknownTargetError,
    message_key,
    new_command_id,
    send_command,
    target,
)

AuditFn = Callable[[str, str, str, dict[str, Any]], object]
WAIT_S = 120.0
_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_ARG = r"^[0-9A-Za-z,\-]{1,64}$"


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bus: Annotated[str, Field(pattern=_NAME)]
    units: Annotated[str, Field(pattern=_ARG)] | None = None
    baud: Annotated[str, Field(pattern=_ARG)] | None = None
    parity: Annotated[str, Field(pattern=_ARG)] | None = None


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bus: Annotated[str, Field(pattern=_NAME)]
    unit: Annotated[int, Field(ge=1, le=247)]
    profile: Annotated[str, Field(pattern=_NAME)]


def commands_router(
    *,
    cfg: SiteConfig,
    broker: str,
    tls: Callable[[], ssl.SSLContext],
    username: str | None,
    password: str | None,
    state: StateTarget,
    audit: AuditFn,
    guard: Guard,
) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["commissioning"])
    technician = guard(Role.TECHNICIAN)
    host, port, use_tls = broker_address(broker)
    topics = Topics(cfg.uplink.prefix)

    async def run(gateway_id: str, req: Request, user: Principal) -> dict[str, Any]:
        try:
            gw = target(cfg, gateway_id, req.bus)
        except UnknownTargetError as exc:
            raise HTTPException(404, str(exc)) from None
        key = message_key(state, gw.id)
        audit(user.name, f"gateway.{req.action}", f"gateway/{gw.id}", req.fields())
        try:
            reply = await send_command(
                req,
                gateway=gw.id,
                host=host,
                port=port,
                topics=topics,
                username=username,
                password=password,
                tls=tls() if use_tls else None,
                key=key,
                wait=WAIT_S,
            )
        except TimeoutError:
            raise HTTPException(
                504, f"no answer from {gw.id} in {WAIT_S:g} s: is it online?"
            ) from None
        except aiomqtt.MqttError as exc:
            raise HTTPException(502, f"the broker: {exc}") from None
        if not reply.ok:
            raise HTTPException(409, f"{gw.id}: {reply.error}")
        result = reply.result or {}
        lines = scan_lines(result) if req.action == "scan" else read_lines(result)
        return {"gateway": gw.id, "action": req.action, "result": result, "lines": lines}

    @router.post("/gateways/{gateway_id}/scan", summary="Scan a gateway's bus (audited)")
    async def scan(gateway_id: str, body: ScanIn, user: Principal = technician) -> dict[str, Any]:
        req = Request(
            new_command_id(), "scan", body.bus, units=body.units, baud=body.baud,
            parity=body.parity,
        )  # fmt: skip
        return await run(gateway_id, req, user)

    @router.post("/gateways/{gateway_id}/read", summary="Read a device on a gateway's bus")
    async def read(gateway_id: str, body: ReadIn, user: Principal = technician) -> dict[str, Any]:
        req = Request(new_command_id(), "read", body.bus, unit=body.unit, profile=body.profile)
        return await run(gateway_id, req, user)

    return router
