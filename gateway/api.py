"""The gateways' broker identities through the hub's API, for technicians: what
``coldchain gateway`` does (``docs/security.md``), audited under the logged-in user's name.

    GET  /api/gateway-identities           the broker clients of every gateway
    POST /api/gateways/{id}/provision      its identity and key; the bundle as a download
    POST /api/gateways/{id}/rotate         a new password (the old one kept); the bundle
    POST /api/gateways/{id}/retire         the older clients deleted
    POST /api/gateways/{id}/revoke         every client, its role and its key deleted

The hub reaches its broker as the admin identity whose password ``coldchain broker config``
left in its data dir; without it these routes answer 503 and say so. A bundle is made in a
private temporary directory, sent once (``Cache-Control: no-store``) and deleted.
"""

from __future__ import annotations

import contextlib
import re
import ssl
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Response

from coldchain.access import Guard, Principal, Role
from coldchain.config.site import SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.topics import Topics
from coldchain.statedb import StateTarget
from gateway.broker import ADMIN_PASSWORD_FILE, ADMIN_USER, client_ca
from gateway.ca import CaError
from gateway.dynsec import DynSecError, Fleet, fleet_on
from gateway.keys import GatewayKeys
from gateway.provision import ACTIONS, Action, change
from gateway.registry import Registry

# records a change in the hub's audit trail: (actor, action, object, after)
AuditFn = Callable[[str, str, str, dict[str, Any]], object]
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def identities_router(
    *,
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    brokers: Sequence[str],
    tls: Callable[[], ssl.SSLContext],
    data_dir: Path,
    state: StateTarget,
    registry: Registry,
    audit: AuditFn,
    guard: Guard,
) -> APIRouter:
    """``data_dir``: the broker admin's password and the CA; ``state``: the hub's state (the
    gateways' message keys)."""
    router = APIRouter(prefix="/api", tags=["gateway identities"])
    technician = guard(Role.TECHNICIAN)
    topics = Topics(cfg.uplink.prefix)
    known = {g.id for g in cfg.gateways}

    def admin_password() -> str:
        path = data_dir / ADMIN_PASSWORD_FILE
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError:
            raise HTTPException(
                503,
                "broker administration is not set up: coldchain broker config writes the "
                f"admin's password to {path}",
            ) from None

    def admin() -> contextlib.AbstractAsyncContextManager[Fleet]:
        """The fleet on every broker (the standby brokers too), as their admin."""
        return fleet_on(brokers, ADMIN_USER, admin_password(), topics, tls)

    @router.get("/gateway-identities", summary="The broker clients of every gateway")
    async def identities(user: Principal = technician) -> dict[str, list[str]]:
        try:
            async with admin() as fleet:
                found = await fleet.clients()
        except DynSecError as exc:
            raise HTTPException(502, str(exc)) from None
        return {gw: list(c.usernames) for gw, c in found.items()}

    async def act(action: Action, gateway_id: str, user: Principal) -> Any:
        if not _ID.match(gateway_id):
            raise HTTPException(422, f"{gateway_id!r:.80} is not a gateway id")
        if action in ("provision", "rotate") and gateway_id not in known:
            raise HTTPException(404, f"gateway {gateway_id} is not in the site config")
        keys = GatewayKeys(state)
        try:
            with tempfile.TemporaryDirectory(prefix="coldchain-bundle-") as tmp:
                out = Path(tmp) / f"coldchain-{gateway_id}.tar.gz"
                async with admin() as fleet:
                    done = await change(
                        action,
                        gateway_id,
                        fleet=fleet,
                        keys=keys,
                        registry=registry,
                        cfg=cfg,
                        profiles=profiles,
                        out=out,
                        client_ca=client_ca(data_dir),
                    )
                if done.identity is not None:
                    done.after["bundle"] = out.name  # sent to the caller, not kept
                    body = out.read_bytes()
        except DynSecError as exc:
            conflict = "already has" in str(exc) or "no broker identity" in str(exc)
            raise HTTPException(409 if conflict else 502, str(exc)) from None
        except (OSError, CaError) as exc:  # no bundle: its client was taken back
            raise HTTPException(503, f"the bundle could not be made: {exc}") from None
        finally:
            keys.close()
        audit(user.name, f"gateway.{action}", f"gateway/{gateway_id}", done.after)
        if done.identity is None:
            return {"gateway": gateway_id, "deleted": done.deleted}
        return Response(
            body,
            media_type="application/gzip",
            headers={
                "Content-Disposition": f'attachment; filename="{out.name}"',
                "Cache-Control": "no-store",
            },
        )

    for action in ACTIONS:
        router.add_api_route(
            f"/gateways/{{gateway_id}}/{action}",
            _endpoint(act, action, technician),
            methods=["POST"],
            summary=f"{action.capitalize()} a gateway's broker identity (audited)",
        )
    return router


def _endpoint(act: Callable[..., Any], action: str, technician: Any) -> Callable[..., Any]:
    async def endpoint(gateway_id: str, user: Principal = technician) -> Any:
        return await act(action, gateway_id, user)

    endpoint.__name__ = f"gateway_{action}"
    return endpoint
