"""The centre's side of commissioning from afar (:mod:`coldchain.protocol.commands`): send a
gateway a command as the hub's broker identity and wait for its answer."""

from __future__ import annotations

import asyncio
import secrets
import ssl

from coldchain.protocol.commands import Reply, Request, decode_reply, encode_request
from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.topics import Topics
from coldchain.supervise import Client


def new_command_id() -> str:
    return secrets.token_hex(8)


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
