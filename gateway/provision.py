"""One change to a gateway's identity, as ``coldchain gateway`` and the hub's API make it:
provision or rotate (a broker client, the message key, a bundle), retire, revoke. Each
returns what the audit trail records of it (never a secret); the caller audits it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from coldchain.config.site import SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from gateway.bundle import write_bundle
from gateway.ca import CaError, issue_client, revoke_clients
from gateway.dynsec import Fleet, Identity
from gateway.keys import GatewayKeys
from gateway.registry import Registry

Action = Literal["provision", "rotate", "retire", "revoke"]
ACTIONS: tuple[Action, ...] = ("provision", "rotate", "retire", "revoke")


@dataclass
class Outcome:
    """What one change did: ``after`` for the audit trail; the new identity and the
    bundle's members (provision, rotate), or the clients deleted (retire, revoke)."""

    after: dict[str, Any]
    identity: Identity | None = None
    members: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


async def change(
    action: Action,
    gateway: str,
    *,
    fleet: Fleet,
    keys: GatewayKeys,
    registry: Registry,
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    out: Path | None = None,
    client_ca: Path | None = None,
) -> Outcome:
    """Make ``action`` for ``gateway``; ``out`` is where provision and rotate write the
    bundle (it must not exist). ``keys`` and ``registry``: the hub's, in its database.
    ``client_ca``: the CA of the broker's mutual TLS (:func:`gateway.broker.client_ca`):
    a new client gets a certificate, and a deleted one's certificates are revoked."""
    if action in ("retire", "revoke"):
        if action == "retire":
            deleted = await fleet.retire(gateway)
        else:
            deleted = await fleet.revoke(gateway)
            keys.delete(gateway)
            registry.revoked(gateway)
        after: dict[str, Any] = {"deleted": deleted}
        if client_ca is not None:
            after["certificates_revoked"] = revoke_clients(client_ca, deleted)
        return Outcome(after, deleted=deleted)
    if out is None:
        raise ValueError(f"{action} writes a bundle: give where")
    identity = await (fleet.provision(gateway) if action == "provision" else fleet.rotate(gateway))
    # provision: a new message key; rotate keeps the gateway's (its agent runs on it)
    key = (keys.get(gateway) if action == "rotate" else None) or keys.create(gateway)
    cert = None
    try:
        if client_ca is not None:
            cert = issue_client(client_ca, identity.username)
        members = write_bundle(out, cfg, profiles, gateway, identity, key=key, cert=cert)
    except (OSError, CaError):  # the secrets exist nowhere else: take the client back
        await fleet.take_back(identity.username)
        if cert is not None and client_ca is not None:
            revoke_clients(client_ca, [identity.username])
        raise
    after = {"client": identity.username, "bundle": str(out)}
    if cert is not None:
        after["certificate"] = f"{cert.serial:x}"
        after["certificate_until"] = cert.not_after.isoformat()
    return Outcome(after, identity=identity, members=members)
