"""TLS between the gateways and the centre's broker, made with ``coldchain ca`` and
``coldchain broker config --tls-cert/--tls-key``, on a real Mosquitto: a provisioned gateway
connects with its bundle's CA file and identity (through the agent's own uplink client);
a wrong CA, an expired server certificate, a plain-TCP client and a revoked gateway are each
refused."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
import yaml

from coldchain.config.site import AgentSettings, Uplink
from edge_agent.uplink import UplinkLoop
from gateway.ca import issue_server
from tests.services import MOSQUITTO, free_port, port_open, wait_for
from tests.simkit import one_bus_site
from tests.sites import tcp_bus


def coldchain(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "coldchain.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@contextlib.contextmanager
def broker(conf: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    run_conf = conf.with_name("run.conf")  # as root in a test: stay root (see test_broker_config)
    run_conf.write_text("user root\n" + conf.read_text())
    with conf.with_name("mosquitto.log").open("ab") as log:
        proc = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(run_conf)], stderr=log, stdout=subprocess.DEVNULL
        )
    try:
        wait_for(lambda: port_open("127.0.0.1", port), f"mosquitto on {port}")
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def uplink_client(ca_file: Path | None, user: str, password: str, port: int) -> aiomqtt.Client:
    """The agent's own uplink client for a gateway with this CA file and identity."""
    scheme = "mqtts" if ca_file else "mqtt"
    uplink = Uplink(
        broker=f"{scheme}://127.0.0.1:{port}",
        ca_file=None if ca_file is None else str(ca_file),
        username=user,
    )
    loop = UplinkLoop(
        outbox=None,  # type: ignore[arg-type]  # only its client is used
        gateway="gw1",
        uplink=uplink,
        settings=AgentSettings(),
        password=password,
    )
    return loop._client(loop.uplink.broker)


def connects(ca_file: Path | None, user: str, password: str, port: int) -> str:
    """'ok', or why the agent's uplink client failed to connect."""
    return asyncio.run(_connects(ca_file, user, password, port))


async def _connects(ca_file: Path | None, user: str, password: str, port: int) -> str:
    client = uplink_client(ca_file, user, password, port)
    try:
        async with asyncio.timeout(3), client:
            return "ok"
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        return str(exc) or type(exc).__name__


@pytest.mark.slow
def test_gateways_connect_over_tls_with_the_bundles_ca_and_nothing_else_gets_in(
    tmp_path: Path,
) -> None:
    port = free_port()
    ca = tmp_path / "ca"
    done = coldchain("ca", "init", str(ca))
    assert done.returncode == 0, done.stderr
    done = coldchain("ca", "issue", str(ca), "--host", "127.0.0.1", "--out", str(tmp_path / "srv"))
    assert done.returncode == 0, done.stderr
    assert coldchain("ca", "init", str(ca)).returncode == 1  # never replaced

    doc = one_bus_site(tcp_bus("tcp", port=1502), [("probe", "xy-md02", 1)], poll_interval="1s")
    doc["uplink"] = {"broker": f"mqtts://127.0.0.1:{port}", "ca_file": str(ca / "ca.crt")}
    doc["hub"] = {"data_dir": str(tmp_path / "hub"), "listen": "127.0.0.1:0"}
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(doc))
    out = tmp_path / "broker"
    done = coldchain(
        "broker", "config", str(site), "--out", str(out), "--listen", f"127.0.0.1:{port}",
        "--persistence", str(tmp_path), "--tls-cert", str(tmp_path / "srv.crt"),
        "--tls-key", str(tmp_path / "srv.key"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    conf = (out / "mosquitto.conf").read_text()
    assert f"certfile {tmp_path / 'srv.crt'}" in conf
    assert "tls_version tlsv1.2" in conf

    # an expired certificate from the same CA, for a second broker below
    expired = issue_server(
        ca, ["127.0.0.1"], tmp_path / "old", days=30,
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=60),
    )  # fmt: skip
    assert expired.not_after < dt.datetime.now(dt.UTC)

    with broker(out / "mosquitto.conf", port):
        # the admin reaches the broker over TLS with the config's CA file
        bundle = tmp_path / "gw1.tar.gz"
        done = coldchain("gateway", str(site), "provision", "gw1", "--out", str(bundle))
        assert done.returncode == 0, done.stderr
        with tarfile.open(bundle) as tar:
            tar.extractall(tmp_path / "pi", filter="data")
        files = tmp_path / "pi" / "coldchain-gw1"
        assert (files / "ca.crt").read_bytes() == (ca / "ca.crt").read_bytes()
        password = (files / "broker-password").read_text().strip()

        assert connects(files / "ca.crt", "gw1", password, port) == "ok"
        # the hub too connects over TLS, checked against uplink.ca_file
        hub = subprocess.Popen(
            [sys.executable, "-m", "coldchain.cli", "hub", str(site)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert hub.stdout is not None
            assert "coldchain hub: API" in hub.stdout.readline()  # its start-up check passed
            log = out / "mosquitto.log"
            # as its client id: coldchain-hub- and the hex digits it keeps in its data dir
            hub_ingest = re.compile(r"as coldchain-hub-[0-9a-f]{8} \(")
            wait_for(lambda: hub_ingest.search(log.read_text()) is not None, "the hub's ingest", 30)
        finally:
            hub.terminate()
            hub.wait(timeout=30)
        # a CA the broker's certificate does not come from
        assert coldchain("ca", "init", str(tmp_path / "other")).returncode == 0
        why = connects(tmp_path / "other" / "ca.crt", "gw1", password, port)
        assert "certificate verify failed" in why, why
        # plain MQTT to the TLS listener
        assert connects(None, "gw1", password, port) != "ok"
        # revoked: refused over TLS too
        assert coldchain("gateway", str(site), "revoke", "gw1").returncode == 0
        why = connects(files / "ca.crt", "gw1", password, port)
        assert "authori" in why.lower(), why

    old_port = free_port()
    old_conf = out / "expired.conf"
    old_conf.write_text(
        conf.replace(f"listener {port} ", f"listener {old_port} ")
        .replace(str(tmp_path / "srv.crt"), str(expired.cert))
        .replace(str(tmp_path / "srv.key"), str(expired.key))
    )
    with broker(old_conf, old_port):
        why = connects(ca / "ca.crt", "gw1", password, old_port)
        assert "certificate has expired" in why, why


def test_the_ca_commands_say_what_is_wrong(tmp_path: Path) -> None:
    done = coldchain("ca", "issue", str(tmp_path / "nothing"), "--host", "h", "--out", "x")
    assert done.returncode == 1
    assert "not a CA made by `coldchain ca init`" in done.stderr
    assert coldchain("ca", "init", str(tmp_path / "ca"), "--days", "0").returncode == 2
    site = tmp_path / "site.yaml"
    doc = one_bus_site(tcp_bus("tcp", port=1502), [("probe", "xy-md02", 1)], poll_interval="1s")
    site.write_text(yaml.safe_dump(doc))
    args = ["broker", "config", str(site), "--out", str(tmp_path / "b"), "--tls-cert", "c.crt"]
    done = coldchain(*args)
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "coldchain broker: give --tls-cert and --tls-key together",
    )
    done = coldchain(*args, "--tls-key", "c.key")
    assert done.returncode == 1
    assert "c.crt: no such file" in done.stderr
    assert not (tmp_path / "b").exists()
    done = coldchain(*args[:-2], "--client-ca", str(tmp_path / "ca"))
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "coldchain broker: --client-ca needs --tls-cert and --tls-key",
    )


def test_a_client_certificate_names_its_identity_and_its_revocation_reaches_the_crl(
    tmp_path: Path,
) -> None:
    from cryptography import x509

    from gateway.ca import init_ca, revoke_clients

    ca = tmp_path / "ca"
    init_ca(ca)
    done = coldchain(
        "ca", "client", str(ca), "--name", "grafana-mqtt", "--out", str(tmp_path / "t")
    )
    assert done.returncode == 0, done.stderr
    cert = x509.load_pem_x509_certificate((tmp_path / "t.crt").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=grafana-mqtt"
    assert (tmp_path / "t.key").stat().st_mode & 0o077 == 0
    again = coldchain("ca", "client", str(ca), "--name", "x", "--out", str(tmp_path / "t"))
    assert again.returncode == 1
    assert "exists" in again.stderr

    assert revoke_clients(ca, ["grafana-mqtt"]) == [f"{cert.serial_number:x}"]
    assert revoke_clients(ca, ["grafana-mqtt"]) == []  # once
    crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    ca_cert = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    assert crl.is_signature_valid(ca_cert.public_key())  # type: ignore[arg-type]
    # valid as long as the CA: an expired CRL would lock every client out
    assert crl.next_update_utc == ca_cert.not_valid_after_utc
