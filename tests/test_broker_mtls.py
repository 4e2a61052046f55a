"""Mutual TLS on a real Mosquitto, as ``coldchain broker config --client-ca`` generates it:
every client presents a certificate from the centre's CA whose common name is its broker
identity. A gateway provisioned with the command streams to the hub with its bundle's
certificate alone (its own agent process); its password without the certificate, a
certificate from another CA, an expired one, and another gateway's topics are refused; a
revoked gateway is cut off at once and, once the broker reloads the CRL, refused at the
handshake."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import ssl
import sys
import tarfile
from pathlib import Path

import aiomqtt
import httpx
import pytest
import yaml
from cryptography import x509

from coldchain.config.loader import check_site_file
from coldchain.profiles.registry import ProfileRegistry
from gateway.broker import identity_tls
from gateway.ca import issue_client, write_client
from simulator.endpoints import simulated_config
from simulator.runtime import Simulation
from tests.hubkit import running_hub_service, session_header
from tests.services import free_port, until
from tests.simkit import load_site
from tests.test_broker_tls import broker
from tests.test_gateway_identities_api import bundle_files
from tests.test_gateway_provisioning import PROFILES, coldchain, plain_site, until_stored


def context(ca: Path, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


class _Errors(logging.Handler):
    """The MQTT client's logged errors (a TLS 1.3 server refuses a client certificate after
    the handshake: the client hears it as a failed read, which it logs, and then waits for a
    CONNACK that never comes)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())
        self.event.set()


async def attempt(
    port: int,
    ctx: ssl.SSLContext,
    *,
    password: tuple[str, str] | None = None,
    subscribe: str | None = None,
) -> str:
    """'ok' (and the subscription's reason code, if one was asked for), or why the
    connection failed."""
    user, pw = password or (None, None)
    errors = _Errors()
    logger = logging.getLogger(f"mtls-attempt-{id(errors)}")
    logger.addHandler(errors)
    logger.propagate = False

    async def connect() -> str:
        async with aiomqtt.Client(
            "127.0.0.1", port, tls_context=ctx, username=user, password=pw, logger=logger
        ) as c:
            if subscribe is None:
                return "ok"
            (code,) = await c.subscribe(subscribe, qos=1)
            return f"ok, subscribe: {code}"

    task = asyncio.ensure_future(connect())
    refused = asyncio.ensure_future(errors.event.wait())
    try:
        await asyncio.wait({task, refused}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task.done() and task.exception() is None:
            return task.result()
        if task.done():
            errors.seen.append(str(task.exception()))
        return " | ".join(errors.seen) or "no answer in 10 s"
    finally:
        for t in (task, refused):
            t.cancel()
        await asyncio.gather(task, refused, return_exceptions=True)
        logger.removeHandler(errors)


@pytest.mark.slow
async def test_mutual_tls_a_gateway_streams_with_its_certificate_and_nothing_else_gets_in(
    tmp_path: Path,
) -> None:
    port = free_port()
    ca, hub_dir = tmp_path / "ca", tmp_path / "hub"
    for args in (
        ("ca", "init", str(ca)),
        ("ca", "issue", str(ca), "--host", "127.0.0.1", "--out", str(tmp_path / "srv")),
    ):
        rc, _, err = await coldchain(*args)
        assert rc == 0, err

    plain = plain_site(tmp_path)
    async with Simulation(plain, PROFILES, seed=3) as sim:
        doc = simulated_config(plain, sim.endpoints())
        doc["uplink"] = {"broker": f"mqtts://127.0.0.1:{port}", "ca_file": str(ca / "ca.crt")}
        doc["agent"] = {"health_interval": "1s"}
        doc["hub"] = {"data_dir": str(hub_dir), "listen": "127.0.0.1:0"}
        site = tmp_path / "site.yaml"
        site.write_text(yaml.safe_dump(doc, sort_keys=False))
        cfg = load_site(site, doc, PROFILES)
        out = tmp_path / "broker"
        rc, printed, err = await coldchain(
            "broker", "config", str(site), "--out", str(out), "--listen", f"127.0.0.1:{port}",
            "--persistence", str(tmp_path), "--tls-cert", str(tmp_path / "srv.crt"),
            "--tls-key", str(tmp_path / "srv.key"), "--client-ca", str(ca),
        )  # fmt: skip
        assert rc == 0, err
        assert "mutual TLS" in printed
        conf = (out / "mosquitto.conf").read_text()
        for line in ("require_certificate true", "use_identity_as_username true"):
            assert line in conf
        assert f"crlfile {ca / 'crl.pem'}" in conf

        with broker(out / "mosquitto.conf", port) as mosquitto:
            bundle = tmp_path / "gw1.tar.gz"
            rc, printed, err = await coldchain(
                "gateway", str(site), "provision", "gw1", "--out", str(bundle)
            )
            assert rc == 0, err
            assert "client certificate is valid until" in printed
            with tarfile.open(bundle) as tar:
                tar.extractall(tmp_path / "pi", filter="data")
                assert tar.getmember("coldchain-gw1/client.key").mode == 0o600
            files = tmp_path / "pi" / "coldchain-gw1"
            checked = check_site_file(files / "site.yaml", ProfileRegistry.load(files / "profiles"))
            assert checked.config is not None, checked.errors
            assert checked.config.uplink.client_cert == "/etc/coldchain/client.crt"
            # the agent runs from the bundle's files, where the install puts them
            text = (files / "site.yaml").read_text().replace("/etc/coldchain/", f"{files}/")
            (files / "site.yaml").write_text(text)
            mine = (files / "client.crt", files / "client.key")
            password = ("gw1", (files / "broker-password").read_text().strip())

            async with running_hub_service(cfg, PROFILES, hub_dir, cfg.uplink.broker) as hub:
                agent = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "coldchain.cli", "agent", "run", "site.yaml",
                    "--gateway", "gw1", "--profiles", "profiles",
                    "--data-dir", str(tmp_path / "outbox"),
                    cwd=files, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    # the hub (its certificate from the data dir) and the agent (the bundle's)
                    await until_stored(hub, "the gateway's readings never reached the hub")
                    log = (out / "mosquitto.log").read_text()
                    assert "u'coldchain-hub'" in log
                    assert "u'gw1'" in log

                    root = ca / "ca.crt"
                    # the certificate is the identity: gw1's own acks, not another's
                    own = await attempt(
                        port, context(root, mine), subscribe="coldchain/v1/gw/gw1/ack"
                    )
                    assert own == "ok, subscribe: Granted QoS 1", own
                    other = await attempt(
                        port, context(root, mine), subscribe="coldchain/v1/gw/gw2/ack"
                    )
                    assert "Unspecified error" in other, other
                    # its password without the certificate
                    why = await attempt(port, context(root, None), password=password)
                    assert "certificate required" in why, why
                    # the same name from another CA
                    rc, _, err = await coldchain("ca", "init", str(tmp_path / "rogue"))
                    assert rc == 0, err
                    rogue = write_client(
                        tmp_path / "rogue-gw1", issue_client(tmp_path / "rogue", "gw1")
                    )
                    why = await attempt(port, context(root, rogue))
                    assert "unknown ca" in why.lower(), why
                    # expired, from the right CA
                    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
                    old = write_client(
                        tmp_path / "old-gw1", issue_client(ca, "gw1", days=1, not_before=past)
                    )
                    why = await attempt(port, context(root, old))
                    assert "expired" in why.lower(), why

                    # the API rotates with the admin's certificate: a bundle with gw1.2's own
                    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as http:
                        r = await http.post(
                            "/api/gateways/gw1/rotate", headers=session_header(hub.url)
                        )
                    assert r.status_code == 200, r.text
                    rotated = bundle_files(r.content)
                    pem = rotated["coldchain-gw1/client.crt"]
                    subject = x509.load_pem_x509_certificate(pem).subject
                    assert subject.rfc4514_string() == "CN=gw1.2"
                    new = tmp_path / "gw1.2"
                    new.mkdir()
                    for name in ("client.crt", "client.key"):
                        (new / name).write_bytes(rotated[f"coldchain-gw1/{name}"])
                    new_pair = (new / "client.crt", new / "client.key")
                    assert await attempt(port, context(root, new_pair)) == "ok"

                    rc, printed, err = await coldchain("gateway", str(site), "revoke", "gw1")
                    assert rc == 0, err
                    assert "certificates revoked" in printed

                    def cut_off() -> bool:
                        state = hub.registry.get("gw1")
                        return state is not None and state.state == "offline"

                    await until(cut_off, "the revoked gateway offline", within=2)
                    # until the broker reloads the CRL, the certificate gets in but no role
                    why = await attempt(
                        port, context(root, mine), subscribe="coldchain/v1/gw/gw1/ack"
                    )
                    assert "Unspecified error" in why, why
                    mosquitto.send_signal(signal.SIGHUP)  # what `systemctl reload` does
                    await asyncio.sleep(0.5)
                    why = await attempt(port, context(root, mine))
                    assert "certificate revoked" in why, why
                    why = await attempt(port, context(root, new_pair))  # rotated: revoked too
                    assert "certificate revoked" in why, why
                    # the hub's own identity is untouched
                    hub_ctx = identity_tls(str(root), hub_dir, "hub")
                    assert await attempt(port, hub_ctx) == "ok"
                finally:
                    agent.terminate()
                    await agent.wait()
