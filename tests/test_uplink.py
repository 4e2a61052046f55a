"""The uplink's delivery guarantees beyond reconnects: batches the hub never acknowledged are
resent after the ack timeout; TLS with a CA file and username/password work, and a wrong
password keeps the gateway out without losing anything."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agentkit import County, Recording, agents, county
from tests.services import MOSQUITTO, Broker, free_port, port_open, until, wait_for
from tests.testhub import running_hub

GW = "gw-centre-cold"


@pytest.mark.slow
async def test_unacknowledged_batches_are_resent_after_the_timeout(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with (
        county(tmp_path, mosquitto, poll="1s", ack_timeout="1s") as c,
        running_hub(mosquitto.host, mosquitto.port) as hub,
        agents(c, tmp_path, only=[GW]) as (agent,),
    ):
        hub.drop_first = True  # every batch's first copy is lost before the store commits
        rec = Recording(agent)
        await until(lambda: len(hub.batches) >= 3, "three batches stored", within=20)
        assert agent.uplink.stats.batches_resent >= 3
        await until(lambda: set(rec.readings) <= set(hub.store), "every reading stored", 20)
        assert all(n == 1 for n in hub.batches.values())  # acked once: never resent again


def _tls_material(tmp: Path) -> tuple[Path, Path, Path]:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (tmp / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    )
    return tmp / "ca.crt", tmp / "server.crt", tmp / "server.key"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, int, Path]]:
    """Mosquitto with a plain anonymous listener (sensors, the hub) and a TLS listener that
    wants a username and password (the gateways' uplink)."""
    if not MOSQUITTO.exists():
        pytest.fail("mosquitto not found: apt-get install mosquitto")
    d = tmp_path / "tls"
    d.mkdir()
    ca, cert, key = _tls_material(d)
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(d / "passwd"), GW, "s3cret"], check=True)
    plain, tls = free_port(), free_port()
    (d / "mosquitto.conf").write_text(
        "per_listener_settings true\n"
        "user root\n"  # as root, keep root: the key and password files stay private
        f"listener {plain} 127.0.0.1\nallow_anonymous true\n"
        f"listener {tls} 127.0.0.1\nallow_anonymous false\npassword_file {d / 'passwd'}\n"
        f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
    )
    log = (d / "mosquitto.log").open("wb")
    proc = subprocess.Popen([str(MOSQUITTO), "-c", str(d / "mosquitto.conf")], stderr=log)
    try:
        wait_for(lambda: port_open("127.0.0.1", plain) and port_open("127.0.0.1", tls), "broker")
        yield Broker("127.0.0.1", plain), tls, ca
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def with_uplink(c: County, **uplink: str) -> County:
    cfg = c.cfg.model_copy(update={"uplink": c.cfg.uplink.model_copy(update=uplink)})
    return County(c.sim, cfg, c.path, c.profiles)


async def test_uplink_over_tls_with_a_password(
    tmp_path: Path, tls_broker: tuple[Broker, int, Path]
) -> None:
    plain, tls_port, ca = tls_broker
    (tmp_path / "pw").write_text("s3cret\n")
    async with (
        county(tmp_path, plain, poll="1s") as c0,
        running_hub(plain.host, plain.port) as hub,
    ):
        c = with_uplink(c0, broker=f"mqtts://127.0.0.1:{tls_port}", ca_file=str(ca))
        async with agents(c, tmp_path / "good", only=[GW], password="s3cret") as (agent,):
            await until(lambda: any(k[0].gateway == GW for k in hub.store), "readings via TLS")
            assert agent.uplink.stats.connected
        async with agents(c, tmp_path / "bad", only=[GW], password="wrong") as (intruder,):
            await until(lambda: intruder.uplink.stats.last_error is not None, "refusal", 10)
            assert not intruder.uplink.stats.connected
            assert "authoriz" in (intruder.uplink.stats.last_error or "").lower()

            async def kept() -> bool:  # its readings wait for the day it is let in
                return (await intruder.outbox.stats()).pending > 0

            await until(kept, "readings kept in the refused gateway's outbox")
            assert not intruder.uplink.stats.connected
