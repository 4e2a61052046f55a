"""The centre's broker configuration, generated from the site config (``coldchain broker
config``): Mosquitto's ``mosquitto.conf`` and the dynamic security plugin's initial state,
with generated passwords for the broker's admin identity and the hub's, which the hub and
``coldchain gateway`` read from the hub's data dir.

What the numbers are, and why:

* ``max_packet_size``: the largest legal telemetry batch (``MAX_BATCH_BYTES``, about 5.7 MiB,
  :mod:`coldchain.protocol.limits`) plus 64 KiB for the topic and MQTT headers: anything
  larger cannot be a legal message, and the broker refuses it before anyone sees it.
* ``persistent_client_expiration 2d``: a gateway (or the hub) whose link is down for a day
  keeps its session: the acks and config waiting for it are delivered when it returns.
* ``max_queued_messages`` and ``max_queued_bytes``, per client: what waits for a client
  that is away. The hub's session is the big one: while the hub is down, every gateway keeps
  ``agent.max_in_flight`` batches unacknowledged and resends them every ``agent.ack_timeout``;
  the queue holds four rounds of that for every gateway (at least 1,000 messages and 64 MiB).
  Past the bound the broker drops what is queued, which loses nothing: an agent keeps every
  reading on disk until the hub acknowledges it, and resends.
* ``set_tcp_nodelay true``: a batch and its ack are small messages each waiting for the other
  (``docs/hub.md``).

With a server certificate and key (``coldchain ca issue``, or the user's own) the listener is
TLS 1.2 or later; without, plain MQTT, and the file says so. With ``client_ca`` (a CA made by
``coldchain ca init``) it is mutual TLS: every client must present a certificate from that
CA, the broker takes the certificate's common name as the client's identity (no password is
asked), and refuses the certificates the CA's revocation list names. The admin's and the
hub's certificates are then issued into the hub's data dir (``broker-admin.crt``/``.key``,
``broker-hub.crt``/``.key``), the tools identity's beside ``mosquitto.conf``, and the data dir
records the CA (``broker-client-ca``), so ``coldchain gateway provision`` gives each gateway a
certificate of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiomqtt

from coldchain.config.site import SiteConfig
from coldchain.protocol.limits import MAX_BATCH_BYTES
from coldchain.protocol.topics import Topics
from gateway.ca import CRL, issue_client, load_ca, pair, write_client, write_crl
from gateway.dynsec import initial_state, new_password

PLUGIN_GLOB = "*/mosquitto_dynamic_security.so"  # under /usr/lib (Debian's mosquitto)
ADMIN_USER = "coldchain-admin"
HUB_USER = "coldchain-hub"
READER_USER = "coldchain-reader"
ADMIN_PASSWORD_FILE = "broker-admin-password"  # noqa: S105 - a file name in the hub's data dir
HUB_PASSWORD_FILE = "broker-hub-password"  # noqa: S105 - a file name
CLIENT_CA_FILE = "broker-client-ca"  # in the hub's data dir: the CA of mutual TLS, if any
ROUNDS_QUEUED = 4  # resend rounds of every gateway's in-flight batches the hub's queue holds
PACKET_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class BrokerFiles:
    """What :func:`write_broker_config` wrote, and the tools identity's password (shown once,
    written nowhere; None when an existing state was kept)."""

    conf: Path
    state: Path
    admin_password: Path
    hub_password: Path
    reader: tuple[str, str] | None


def find_plugin(root: Path = Path("/usr/lib")) -> Path | None:
    found = sorted(root.glob(PLUGIN_GLOB))
    return found[0] if found else None


def queue_limits(cfg: SiteConfig) -> tuple[int, int]:
    """(max_queued_messages, max_queued_bytes) per client (see the module docstring)."""
    batches = max(1, len(cfg.gateways)) * cfg.agent.max_in_flight * ROUNDS_QUEUED
    # a reading is ~20-40 bytes on the wire; a batch's header and series table ~1 KiB
    batch_bytes = cfg.agent.batch_size * 40 + 1024
    return max(1000, batches), max(64 * 1024 * 1024, batches * batch_bytes)


def mosquitto_conf(
    cfg: SiteConfig,
    *,
    state: Path,
    plugin: Path,
    listen: tuple[str, int],
    persistence: Path,
    source: str,
    tls: tuple[Path, Path] | None = None,
    client_ca: Path | None = None,
) -> str:
    """The text of ``mosquitto.conf`` (see the module docstring); ``tls``: the server's
    (certificate, key) files; ``client_ca``: the CA directory of mutual TLS."""
    messages, queued_bytes = queue_limits(cfg)
    host, port = listen
    if tls is None:
        transport = """\
# Plain MQTT: no certificate was given (coldchain broker config --tls-cert/--tls-key; make
# them with coldchain ca). Use it on a network you trust only.
"""
    else:
        transport = """\
# TLS: gateways connect with mqtts:// and check this certificate against their CA file.
"""
    listener = f"listener {port} {host}\n"
    if tls is not None:
        listener += f"certfile {tls[0]}\nkeyfile {tls[1]}\ntls_version tlsv1.2\n"
    if tls is not None and client_ca is not None:
        transport += """\
# Mutual TLS: every client presents a certificate from the CA below, whose common name is its
# identity (coldchain gateway provision issues each gateway's); revoked ones are in the CRL,
# which the broker reads again on SIGHUP (systemctl reload).
"""
        listener += (
            f"cafile {client_ca / 'ca.crt'}\nrequire_certificate true\n"
            f"use_identity_as_username true\ncrlfile {client_ca / CRL}\n"
        )
    return f"""\
# Generated by `coldchain broker config` from {source} on {time.strftime("%Y-%m-%d")}.
# Regenerate it rather than edit it. The centre's broker for coldchain: every client
# authenticates through the dynamic security plugin, nobody connects anonymously, and each
# identity may publish and subscribe only where its role allows (docs/security.md).

per_listener_settings false
allow_anonymous false
plugin {plugin}
plugin_opt_config_file {state}

{transport}{listener}set_tcp_nodelay true
# the largest legal telemetry batch ({MAX_BATCH_BYTES:,} bytes) and 64 KiB of headers
max_packet_size {MAX_BATCH_BYTES + PACKET_OVERHEAD}

persistence true
persistence_location {persistence}/
autosave_interval 60
# a gateway or the hub away for a day keeps its session and what waits for it
persistent_client_expiration 2d
# what waits for a client that is away: {ROUNDS_QUEUED} resend rounds of every gateway's in-flight
# batches ({len(cfg.gateways)} gateways x {cfg.agent.max_in_flight}) for the hub
max_queued_messages {messages}
max_queued_bytes {queued_bytes}

connection_messages true
log_type error
log_type warning
log_type notice
"""


def write_broker_config(
    cfg: SiteConfig,
    out: Path,
    data_dir: Path,
    *,
    listen: tuple[str, int] = ("0.0.0.0", 1883),  # noqa: S104 - the gateways dial in
    persistence: Path = Path("/var/lib/mosquitto"),
    plugin: Path | None = None,
    source: str = "the site config",
    force: bool = False,
    tls: tuple[Path, Path] | None = None,
    client_ca: Path | None = None,
) -> BrokerFiles:
    """Write ``out/mosquitto.conf`` and ``out/dynamic-security.json`` (a new broker's
    identities: admin, hub, read-only tools), and the admin's and the hub's passwords into
    ``data_dir`` (mode 0600). An existing state is kept (every gateway's identity is in
    it): only ``mosquitto.conf`` is written again, and no password changes (``reader`` is
    None then); ``force`` makes a new state, and every gateway must be provisioned again.
    ``client_ca`` (with ``tls``): mutual TLS, and the certificates it needs (module docstring)."""
    if client_ca is not None:
        if tls is None:
            raise ValueError("mutual TLS needs the broker's own certificate too (--tls-cert)")
        client_ca = client_ca.resolve()
        load_ca(client_ca)  # a CA we can issue from, or a clear error now
    plugin = plugin or find_plugin()
    if plugin is None:
        raise FileNotFoundError(
            "mosquitto_dynamic_security.so not found under /usr/lib: install Debian's "
            "mosquitto package, or give its path with --plugin"
        )
    state = out / "dynamic-security.json"
    keep = state.exists() and not force
    out.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = out / "mosquitto.conf"
    conf.write_text(
        mosquitto_conf(
            cfg,
            state=state.resolve(),
            plugin=plugin,
            listen=listen,
            persistence=persistence,
            source=source,
            tls=None if tls is None else (tls[0].resolve(), tls[1].resolve()),
            client_ca=client_ca,
        ),
        encoding="utf-8",
    )
    admin_file = data_dir / ADMIN_PASSWORD_FILE
    hub_file = data_dir / HUB_PASSWORD_FILE
    hub_user = cfg.hub.username or HUB_USER
    record = data_dir / CLIENT_CA_FILE
    if client_ca is None:
        record.unlink(missing_ok=True)
    else:
        if not (client_ca / CRL).exists():
            write_crl(client_ca)
        for who, user in (("admin", ADMIN_USER), ("hub", hub_user)):
            if force or not (data_dir / f"broker-{who}.crt").exists():
                write_client(data_dir / f"broker-{who}", issue_client(client_ca, user))
        if not keep:
            write_client(out / READER_USER, issue_client(client_ca, READER_USER))
        _write_private(record, f"{client_ca}\n")
    if keep:
        return BrokerFiles(conf, state, admin_file, hub_file, None)
    admin = (ADMIN_USER, new_password())
    hub = (hub_user, new_password())
    reader = (READER_USER, new_password())
    doc = initial_state(Topics(cfg.uplink.prefix), admin=admin, hub=hub, reader=reader)
    _write_private(state, json.dumps(doc, indent=2) + "\n")
    _write_private(admin_file, admin[1] + "\n")
    _write_private(hub_file, hub[1] + "\n")
    return BrokerFiles(conf, state, admin_file, hub_file, reader)


def client_ca(data_dir: Path) -> Path | None:
    """The CA directory of the broker's mutual TLS, as ``coldchain broker config`` recorded
    it in the hub's data dir; None when the broker asks for passwords only."""
    try:
        text = (data_dir / CLIENT_CA_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return Path(text) if text else None


def identity_tls(
    ca_file: str | None, data_dir: Path, who: Literal["admin", "hub"]
) -> ssl.SSLContext:
    """A TLS context for the centre's own broker identity ``who``: the broker verified
    against ``ca_file`` (or the system's CAs) and, under mutual TLS, the identity's
    certificate from the hub's data dir."""
    context = ssl.create_default_context(cafile=ca_file)
    if client_ca(data_dir) is not None:
        context.load_cert_chain(*pair(data_dir / f"broker-{who}"))
    return context


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (replacing it)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


PROBE_GATEWAY = "coldchain-open-broker-check"  # a gateway id no site uses


async def anonymous_publish_reaches(
    host: str,
    port: int,
    topics: Topics,
    *,
    tls: ssl.SSLContext | None = None,
    username: str | None = None,
    password: str | None = None,
    within: float = 2.0,
) -> bool | None:
    """Whether a client with no credentials can publish on a gateway's topic and be heard:
    it connects anonymously and publishes a probe on a gateway's ``status`` topic, which the
    hub's identity (``username``) listens to. True: the broker is open; False: the anonymous
    client was refused, or its publish dropped; None: the hub's identity could not connect
    (the broker down, or the identity refused)."""
    topic = topics.topic(PROBE_GATEWAY, "status")
    token = secrets.token_hex(8).encode()
    try:
        async with aiomqtt.Client(
            host, port, username=username, password=password, tls_context=tls, timeout=within
        ) as listener:
            await listener.subscribe(topic, qos=1)
            try:
                async with aiomqtt.Client(host, port, tls_context=tls, timeout=within) as anon:
                    await anon.publish(topic, token, qos=1)
            except aiomqtt.MqttError:
                return False  # refused, or cut off for publishing there
            try:
                async with asyncio.timeout(within):
                    async for message in listener.messages:
                        if message.payload == token:
                            return True
            except TimeoutError:
                return False
    except (aiomqtt.MqttError, OSError):
        return None
    return False
