"""The centre's side of commissioning from afar (:mod:`coldchain.protocol.commands`): send a
gateway a command as the hub's broker identity and wait for its answer."""

from __future__ import annotations

import asyncio
import secrets
import ssl

from coldchain.config.site import Gateway, SiteConfig
from coldchain.protocol.commands import Reply, Request, decode_reply, encode_request
from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.topics import Topics
from coldchain.statedb import StateTarget, state_exists
from coldchain.supervise import Client
from gateway.keys import GatewayKeys


def new_command_id() -> str:
    return secrets.token_hex(8)


class UnknownTargetError(LookupError):
    """A gateway not in the site config, or a bus it does not have."""


def target(cfg: SiteConfig, gateway_id: str, bus: str) -> Gateway:
    """The gateway a command is for; :class:`UnknownTargetError` naming what is known."""
    gw = next((g for g in cfg.gateways if g.id == gateway_id), None)
    if gw is None:
        known = ", ".join(sorted(g.id for g in cfg.gateways))
        raise UnknownTargetError(f"gateway {gateway_id!r:.80} is not in the site config ({known})")
    if bus not in {b.id for b in gw.buses}:
        buses = ", ".join(b.id for b in gw.buses)
        raise UnknownTargetError(f"gateway {gw.id} has no bus {bus!r:.80} ({buses})")
    return gw


def message_key(state: StateTarget, gateway: str) -> bytes | None:
    """The gateway's message key from the hub's database, if it has one (commands are
    signed with it)."""
    if not state_exists(state):
        return None
    keys = GatewayKeys(state)
    try:
        return keys.get(gateway)
    finally:
        keys.close()


async def send_command(
    req: Request,
    *,
    gateway: str,
    host: str,
    port: int,
    topics: Topics,
    username: str | None,
    password: str | None,
    tls: ssl.SSLContext | None = None,
    key: bytes | None = None,
    wait: float = 300.0,
) -> Reply:
    """Publish ``req`` on ``gateway``'s ``cmd`` topic (signed with its message ``key``, if
    any) and return its reply; TimeoutError after ``wait`` seconds without one (the gateway
    offline, or its agent older than commands)."""
    async with Client(
        host,
        port,
        identifier=f"coldchain-cmd-{req.id}",
        username=username,
        password=password,
        tls_context=tls,
    ) as client:
        await client.subscribe(topics.topic(gateway, "cmd/reply"), qos=1)
        await client.publish(
            topics.topic(gateway, "cmd"), encode_request(req, key=key, gateway=gateway), qos=1
        )
        async with asyncio.timeout(wait):
            async for message in client.messages:
                payload = message.payload
                if not isinstance(payload, bytes | bytearray):
                    continue
                try:
                    reply = decode_reply(bytes(payload))
                except ProtocolError:
                    continue
                if reply.id == req.id:
                    return reply
    raise TimeoutError(f"no answer from {gateway}")  # the stream ended
