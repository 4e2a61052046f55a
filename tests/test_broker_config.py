"""``coldchain broker config`` writes a broker configuration that a real Mosquitto runs as
written: nobody anonymous, the hub connecting with the password it left in the hub's data
dir (``coldchain hub`` finds it on its own), ``coldchain gateway`` administering with the
admin's, the tools identity read-only with the password shown once; the limits it sets are
those docs/security.md explains; run again, it rewrites the config and keeps every identity
and password, and only --force makes new ones."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
import yaml

from coldchain.protocol.limits import MAX_BATCH_BYTES
from coldchain.protocol.topics import Topics
from tests.services import MOSQUITTO, free_port, port_open, wait_for
from tests.simkit import one_bus_site
from tests.sites import tcp_bus

TOPICS = Topics()


def coldchain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coldchain.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def mosquitto(conf: Path, log: Path) -> Iterator[None]:
    """Run the generated config; as root in a test, Mosquitto must be told to stay root to
    read the test's private files (a deployment runs it as its own user)."""
    run_conf = conf.with_name("run.conf")
    run_conf.write_text("user root\n" + conf.read_text())
    with log.open("w") as out:
        proc = subprocess.Popen([str(MOSQUITTO), "-c", str(run_conf)], stderr=out)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def write_site(tmp_path: Path, port: int) -> Path:
    doc = one_bus_site(tcp_bus("tcp", port=1502), [("probe", "xy-md02", 1)], poll_interval="1s")
    doc["uplink"] = {"broker": f"mqtt://127.0.0.1:{port}"}
    doc["hub"] = {"data_dir": str(tmp_path / "hub"), "listen": "127.0.0.1:0"}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_generated_broker_runs_secured_and_the_hub_and_tools_find_their_passwords(
    tmp_path: Path,
) -> None:
    port = free_port()
    site = write_site(tmp_path, port)
    out = tmp_path / "broker"
    args = ["broker", "config", str(site), "--out", str(out), "--listen", f"127.0.0.1:{port}"]
    args += ["--persistence", str(tmp_path / "persist")]
    done = coldchain(*args)
    assert done.returncode == 0, done.stderr
    hub_dir = tmp_path / "hub"
    admin_pw = (hub_dir / "broker-admin-password").read_text().strip()
    hub_pw = (hub_dir / "broker-hub-password").read_text().strip()
    (reader_line,) = [x for x in done.stdout.splitlines() if x.startswith("read-only tools")]
    reader_pw = reader_line.split("password ")[1].split()[0]
    assert len({admin_pw, hub_pw, reader_pw}) == 3
    assert all(len(p) >= 32 for p in (admin_pw, hub_pw, reader_pw))  # 192 random bits
    for private in (out / "dynamic-security.json", *hub_dir.glob("broker-*-password")):
        assert os.stat(private).st_mode & 0o077 == 0, private
    state = (out / "dynamic-security.json").read_text()
    assert not any(p in state for p in (admin_pw, hub_pw, reader_pw))  # hashes only
    conf = (out / "mosquitto.conf").read_text()
    for line in (
        "allow_anonymous false",
        f"listener {port} 127.0.0.1",
        "set_tcp_nodelay true",
        f"max_packet_size {MAX_BATCH_BYTES + 64 * 1024}",
        "persistent_client_expiration 2d",
        "max_queued_messages 1000",  # 1 gateway x 8 in flight x 4 rounds, at least 1,000
        f"max_queued_bytes {64 * 1024 * 1024}",
        f"persistence_location {tmp_path / 'persist'}/",
    ):
        assert line in conf.splitlines(), line

    log = tmp_path / "mosquitto.log"
    (tmp_path / "persist").mkdir()
    with mosquitto(out / "mosquitto.conf", log):
        wait_for(lambda: port_open("127.0.0.1", port), f"mosquitto on {port}")
        asyncio.run(_identities(port, hub_pw, reader_pw))
        listed = coldchain("gateway", str(site), "list")
        assert listed.returncode == 0, listed.stderr  # the admin's password, found
        assert "gw1" in listed.stdout
        # `coldchain hub` connects as coldchain-hub with the password from its data dir
        before = len(log.read_text())
        hub = subprocess.Popen(
            [sys.executable, "-m", "coldchain.cli", "hub", str(site)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # its ingest connects as the hub's identity, once its start-up check found
            # the broker refusing an anonymous client
            # (its client id: coldchain-hub- and the hex digits it keeps in its data dir)
            wait_for((hub_dir / "hub-id").exists, "the hub's client id", 30)
            client = f"as coldchain-hub-{(hub_dir / 'hub-id').read_text().strip()} ("
            wait_for(lambda: client in log.read_text()[before:], "the hub connected", 30)
            seen = log.read_text()[before:]
            assert "u'coldchain-hub')" in seen.split(client)[1].splitlines()[0]
            assert "not authorised" in seen.split(client)[0]  # the probe
            time.sleep(0.5)
            assert hub.poll() is None  # running
        finally:
            hub.terminate()
            hub.wait(timeout=30)

    again = coldchain(*args, "--listen", f"127.0.0.1:{port + 1}")  # a changed listener:
    assert again.returncode == 0, again.stderr  # the conf written again, identities kept
    assert "kept" in again.stdout
    assert (out / "dynamic-security.json").read_text() == state
    assert f"listener {port + 1} 127.0.0.1" in (out / "mosquitto.conf").read_text()
    assert (hub_dir / "broker-admin-password").read_text().strip() == admin_pw
    forced = coldchain(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (hub_dir / "broker-admin-password").read_text().strip() != admin_pw


async def _identities(port: int, hub_pw: str, reader_pw: str) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", port, timeout=5):
            pass
    async with (
        aiomqtt.Client(
            "127.0.0.1", port, username="coldchain-hub", password=hub_pw, timeout=5
        ) as hub,
        aiomqtt.Client(
            "127.0.0.1", port, username="coldchain-reader", password=reader_pw, timeout=5
        ) as tools,
    ):
        (granted,) = await hub.subscribe(TOPICS.all("telemetry"), qos=1)
        assert int(getattr(granted, "value", 1)) == 1
        (granted,) = await tools.subscribe("coldchain/#", qos=1)
        assert int(getattr(granted, "value", 1)) == 1
        await tools.publish(TOPICS.topic("gw1", "telemetry"), b"forged by tools", qos=1)
        await hub.publish(TOPICS.topic("gw1", "ack"), b"ack", qos=1)
        async with asyncio.timeout(5):
            async for m in tools.messages:  # the tools hear the hub's ack, not their own
                assert m.payload == b"ack"
                break
