"""Broker identities for the fleet, on Mosquitto's dynamic security plugin.

Every gateway connects to the centre's broker as its own client, whose role lets it publish
only its own ``{prefix}/v1/gw/{id}/{telemetry,status,health,alerts,config/ack,time/reply}``
and subscribe only to its own ``ack``, ``alerts/ack``, ``config`` and ``time``. The hub has a
role of its own (every gateway's uplink topics in, acks, config and clock probes out), and
local tools a read-only one.
The plugin stores each password as a salted PBKDF2-SHA512 hash; coldchain generates the
passwords (192 random bits), hands them out once, and keeps no copy.

Two ways in:

* :func:`initial_state`: the plugin's JSON file for a new broker (the admin identity, the
  hub's, the roles), written before the broker first starts;
* :class:`DynSec`: the plugin's control API (``$CONTROL/dynamic-security/v1``), used with the
  admin identity on a running broker; :class:`Fleet` builds the fleet's operations on it
  (provision, rotate, retire, revoke, list). The broker applies every change at once: a
  revoked gateway is disconnected and refused on reconnect.

A gateway's first client is named after it (``gw1``); a rotation adds ``gw1.2``, ``gw1.3``
and so on with the same role, so the old and the new password both work until the
technician retires the old ones (:meth:`Fleet.retire`): the overlap is theirs to choose.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt

from coldchain.config.site import broker_address
from coldchain.protocol.bounded import loads_bounded
from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.topics import Kind, Topics
from coldchain.supervise import Client

CONTROL = "$CONTROL/dynamic-security/v1"
RESPONSE = CONTROL + "/response"
ADMIN_ROLE = "coldchain-admin"
HUB_ROLE = "coldchain-hub"
READER_ROLE = "coldchain-reader"
GATEWAY_ROLE = "coldchain-gw-"  # + the gateway id
PASSWORD_BYTES = 24  # 192 bits
ITERATIONS = 101  # the plugin's own default: the passwords are random, not guessable words
_CLIENT = re.compile(r"^(?P<gw>[a-z0-9][a-z0-9_-]*)(?:\.(?P<n>[1-9][0-9]{0,5}))?$")

# what a gateway sends, and what it may hear (see coldchain.protocol.topics)
GATEWAY_SENDS: tuple[Kind, ...] = (
    "telemetry",
    "status",
    "health",
    "alerts",
    "config/ack",
    "time/reply",
    "cmd/reply",
)
GATEWAY_HEARS: tuple[Kind, ...] = ("ack", "alerts/ack", "config", "time", "cmd")
MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # a listClients of a large fleet fits


class DynSecError(RuntimeError):
    """The plugin refused a command, or did not answer."""


def new_password() -> str:
    """A generated broker password: 192 random bits, URL-safe text."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def gateway_role(gateway: str) -> str:
    return GATEWAY_ROLE + gateway


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "allow": True, "priority": 0}


def gateway_acls(topics: Topics, gateway: str) -> list[dict[str, Any]]:
    """A gateway's own topics: what it publishes, and what it subscribes to."""
    return [_acl("publishClientSend", topics.topic(gateway, k)) for k in GATEWAY_SENDS] + [
        _acl("subscribePattern", topics.topic(gateway, k)) for k in GATEWAY_HEARS
    ]


def hub_acls(topics: Topics) -> list[dict[str, Any]]:
    """The hub: every gateway's uplink topics in (also as a shared subscription, for
    several ingest workers: ``hub.share_group``), acks and config out; the hubs' own topic
    of readings stored, for the alert leader (:mod:`coldchain.protocol.stored`)."""
    return (
        [_acl("subscribePattern", topics.all(k)) for k in GATEWAY_SENDS]
        + [_acl("subscribePattern", topics.all(k, share="+")) for k in GATEWAY_SENDS]
        + [_acl("publishClientSend", topics.all(k)) for k in GATEWAY_HEARS]
        + [_acl("publishClientSend", topics.stored()), _acl("subscribePattern", topics.stored())]
    )


def reader_acls(topics: Topics) -> list[dict[str, Any]]:
    """Local tools (a dashboard, ``mosquitto_sub``): read everything of coldchain's."""
    return [_acl("subscribePattern", f"{topics.prefix}/#")]


def admin_acls() -> list[dict[str, Any]]:
    """The plugin's control topic, and nothing else."""
    return [
        _acl("publishClientSend", CONTROL + "/#"),
        _acl("publishClientReceive", CONTROL + "/#"),
        _acl("subscribePattern", CONTROL + "/#"),
    ]


def password_entry(password: str, *, iterations: int = ITERATIONS) -> dict[str, Any]:
    """A client's password as the plugin stores it: PBKDF2-SHA512 with a 12-byte salt."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
    }


def initial_state(
    topics: Topics,
    *,
    admin: tuple[str, str],
    hub: tuple[str, str],
    reader: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The plugin's JSON file for a new broker: (username, password) of the admin identity
    (the control API only), the hub's and optionally a read-only tools identity; their
    roles; and defaults that refuse what no role allows (publishing and subscribing)."""
    roles = [
        {"rolename": ADMIN_ROLE, "acls": admin_acls()},
        {"rolename": HUB_ROLE, "acls": hub_acls(topics)},
        {"rolename": READER_ROLE, "acls": reader_acls(topics)},
    ]
    who = [(admin, ADMIN_ROLE, "coldchain admin"), (hub, HUB_ROLE, "coldchain hub")]
    if reader is not None:
        who.append((reader, READER_ROLE, "coldchain read-only tools"))
    clients = [
        {
            "username": user,
            "textName": text,
            **password_entry(password),
            "roles": [{"rolename": role}],
        }
        for (user, password), role, text in who
    ]
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": roles,
    }


@dataclass(frozen=True)
class Identity:
    """A gateway's broker client: username and its password (shown once, never stored)."""

    gateway: str
    username: str
    password: str


@dataclass(frozen=True)
class GatewayClients:
    """The broker clients of one gateway (more than one during a rotation's overlap)."""

    gateway: str
    usernames: tuple[str, ...]  # oldest first


def client_gateway(username: str) -> tuple[str, int] | None:
    """(gateway, generation) of a gateway's client name: ``gw1`` is (gw1, 1), ``gw1.3`` is
    (gw1, 3); None for a name that is not one."""
    m = _CLIENT.match(username)
    if m is None:
        return None
    return m["gw"], int(m["n"] or 1)


class DynSec:
    """The plugin's control API on a running broker, as its admin identity.

    ``async with DynSec(host, port, user, password) as ds: await ds.call(...)``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        tls: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._client = Client(
            host,
            port,
            username=username,
            password=password,
            identifier=f"coldchain-admin-{uuid.uuid4().hex[:8]}",
            tls_context=tls,
            timeout=timeout,
        )
        self.timeout = timeout
        self.where = f"{host}:{port}"
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DynSec:
        try:
            await self._client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise DynSecError(
                f"cannot connect to the broker as its admin ({self.where}): {exc}"
            ) from exc
        try:
            await self._client.subscribe(RESPONSE, qos=1)
        except aiomqtt.MqttError as exc:
            await self._client.__aexit__(None, None, None)
            raise DynSecError(
                f"this identity may not use the broker's dynamic security API: {exc}"
            ) from exc
        self._reader = asyncio.create_task(self._read(), name="dynsec-responses")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for message in self._client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            try:
                body = loads_bounded(
                    bytes(payload), max_bytes=MAX_RESPONSE_BYTES, max_depth=8, what="response"
                )
            except ProtocolError:
                continue  # not the plugin's: ignore
            answers = body.get("responses") if isinstance(body, dict) else None
            for answer in answers if isinstance(answers, list) else ():
                if not isinstance(answer, dict):
                    continue
                fut = self._waiting.pop(str(answer.get("correlationData")), None)
                if fut is not None and not fut.done():
                    fut.set_result(answer)

    async def call(self, *commands: dict[str, Any], allow: Iterable[str] = ()) -> list[Any]:
        """Send ``commands`` in one message; each one's ``data`` (None where it has none).
        An error raises :class:`DynSecError`, unless its text contains one of ``allow``."""
        loop = asyncio.get_running_loop()
        futures = []
        sent = []
        for c in commands:
            tag = uuid.uuid4().hex
            fut: asyncio.Future[dict[str, Any]] = loop.create_future()
            self._waiting[tag] = fut
            futures.append(fut)
            sent.append({**c, "correlationData": tag})
        await self._client.publish(CONTROL, json.dumps({"commands": sent}), qos=1)
        try:
            async with asyncio.timeout(self.timeout):
                answers = await asyncio.gather(*futures)
        except TimeoutError:
            raise DynSecError(
                "the broker did not answer the dynamic security command "
                f"{', '.join(c['command'] for c in commands)} within {self.timeout:g} s: "
                "is the plugin loaded, and is this the admin identity?"
            ) from None
        finally:
            for c in sent:
                self._waiting.pop(c["correlationData"], None)
        allowed = tuple(allow)
        out = []
        for c, answer in zip(commands, answers, strict=True):
            error = answer.get("error")
            if error and not any(a in str(error) for a in allowed):
                subject = c.get("username") or c.get("rolename") or ""
                raise DynSecError(f"{c['command']} {subject}: {error}".replace("  ", " "))
            out.append(answer.get("data"))
        return out


class Fleet:
    """The fleet's identities on one broker (see the module docstring), and the same on
    each of ``mirrors``: the standby brokers (``uplink.standby_brokers``), where a gateway
    that moves must be let in with the same name and password. ``ds`` is the one read."""

    def __init__(self, ds: DynSec, topics: Topics, mirrors: Sequence[DynSec] = ()) -> None:
        self.ds, self.topics = ds, topics
        self.mirrors = list(mirrors)

    async def clients(self) -> dict[str, GatewayClients]:
        """Every gateway that has a client on the broker, by id."""
        (data,) = await self.ds.call({"command": "listClients", "verbose": True, "count": -1})
        found: dict[str, list[tuple[int, str]]] = {}
        for c in (data or {}).get("clients", []):
            username = str(c.get("username", ""))
            parsed = client_gateway(username)
            roles = {r.get("rolename") for r in c.get("roles", [])}
            if parsed is None or gateway_role(parsed[0]) not in roles:
                continue
            found.setdefault(parsed[0], []).append((parsed[1], username))
        return {
            gw: GatewayClients(gw, tuple(u for _, u in sorted(names)))
            for gw, names in sorted(found.items())
        }

    async def provision(self, gateway: str) -> Identity:
        """A gateway's role and first client; its password. Refused when it has one already
        (rotate it instead)."""
        existing = (await self.clients()).get(gateway)
        if existing is not None:
            raise DynSecError(
                f"gateway {gateway} already has a broker identity "
                f"({', '.join(existing.usernames)}): rotate it, or revoke it first"
            )
        await self._ensure_role(gateway)
        return await self._add_client(gateway, gateway)

    async def rotate(self, gateway: str) -> Identity:
        """A new client for ``gateway`` with a new password; the old ones keep working until
        :meth:`retire`."""
        existing = (await self.clients()).get(gateway)
        if existing is None:
            raise DynSecError(f"gateway {gateway} has no broker identity: provision it first")
        newest = max(client_gateway(u)[1] for u in existing.usernames)  # type: ignore[index]
        await self._ensure_role(gateway)
        return await self._add_client(gateway, f"{gateway}.{newest + 1}")

    async def retire(self, gateway: str) -> list[str]:
        """End a rotation's overlap: delete every client of ``gateway`` but the newest (each
        disconnected at once); the names deleted."""
        existing = (await self.clients()).get(gateway)
        if existing is None:
            raise DynSecError(f"gateway {gateway} has no broker identity")
        old = list(existing.usernames[:-1])
        await self._delete_clients(old)
        return old

    async def revoke(self, gateway: str) -> list[str]:
        """Delete every client of ``gateway`` and its role: each is disconnected at once and
        refused from then on. The names deleted (none when it had no identity)."""
        existing = (await self.clients()).get(gateway)
        names = list(existing.usernames) if existing else []
        await self._delete_clients(names)
        for ds in (self.ds, *self.mirrors):
            await ds.call(
                {"command": "deleteRole", "rolename": gateway_role(gateway)}, allow=["not found"]
            )
        return names

    async def take_back(self, username: str) -> None:
        """Delete a client just made (its bundle could not be written)."""
        await self._delete_clients([username])

    async def _delete_clients(self, names: list[str]) -> None:
        """Delete ``names`` on the broker and every mirror (where a mirror lacks one, as
        after an earlier failure, nothing is left to delete there)."""
        if not names:
            return
        await self.ds.call(*({"command": "deleteClient", "username": u} for u in names))
        for ds in self.mirrors:
            await ds.call(
                *({"command": "deleteClient", "username": u} for u in names),
                allow=["not found"],
            )

    async def _ensure_role(self, gateway: str) -> None:
        role = gateway_role(gateway)
        acls = gateway_acls(self.topics, gateway)
        for ds in (self.ds, *self.mirrors):
            await ds.call(
                {"command": "createRole", "rolename": role, "acls": acls},
                allow=["already exists"],
            )
            await ds.call(  # a role left from before: give it these rights too
                *({"command": "addRoleACL", "rolename": role, **a} for a in acls),
                allow=["already exists"],
            )

    async def _add_client(self, gateway: str, username: str) -> Identity:
        """The client on the broker and on every mirror, with one password; if a mirror
        refuses it, it is taken back from every broker that has it, and the error raised."""
        password = new_password()
        create = {
            "command": "createClient",
            "username": username,
            "password": password,
            "textname": f"coldchain gateway {gateway}",
            "roles": [{"rolename": gateway_role(gateway)}],
        }
        done: list[DynSec] = []
        try:
            for ds in (self.ds, *self.mirrors):
                await ds.call(create)
                done.append(ds)
        except DynSecError:
            for ds in done:
                await ds.call({"command": "deleteClient", "username": username})
            raise
        return Identity(gateway, username, password)


@contextlib.asynccontextmanager
async def fleet_on(
    brokers: Sequence[str],
    username: str,
    password: str,
    topics: Topics,
    tls: Callable[[], ssl.SSLContext],
) -> AsyncIterator[Fleet]:
    """The fleet on ``brokers`` (``Uplink.brokers_from``: each once, the first read), as the
    admin identity on each (``tls()`` for an ``mqtts://`` one); every one must answer, or
    :class:`DynSecError` names the one that does not."""
    async with contextlib.AsyncExitStack() as stack:
        sessions = []
        for url in brokers:
            host, port, use_tls = broker_address(url)
            ds = DynSec(host, port, username, password, tls=tls() if use_tls else None)
            sessions.append(await stack.enter_async_context(ds))
        yield Fleet(sessions[0], topics, sessions[1:])
