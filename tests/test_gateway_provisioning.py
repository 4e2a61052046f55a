"""``coldchain gateway`` as a technician uses it, on a real Mosquitto with the dynamic
security plugin: a gateway provisioned with the command streams to the real hub with nothing
but its bundle (its own agent process, started from the bundle's files); ``list`` shows it;
``revoke`` takes it away; each change is audited without the password."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import sys
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from coldchain.config.loader import check_site_file
from coldchain.config.site import SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.revisions import ConfigAck
from coldchain.reading import SeriesId
from gateway.configpush import Change, Revisions
from gateway.keys import GatewayKeys
from hub.audit import AuditLog
from hub.service import Hub
from simulator.endpoints import simulated_config
from simulator.runtime import Simulation
from tests.hubkit import running_hub_service
from tests.services import SecuredBroker, until
from tests.simkit import load_site, one_bus_site
from tests.sites import shipped_profiles, tcp_bus

PROFILES = shipped_profiles()
PROBE = SeriesId("depot", "gw1", "probe", "temperature")


async def coldchain(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coldchain.cli",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def plain_site(tmp_path: Path) -> SiteConfig:
    """One gateway, gw1, with one XY-MD02 on a Modbus TCP bus polled every second."""
    doc = one_bus_site(tcp_bus("tcp"), [("probe", "xy-md02", 1)], poll_interval="1s")
    return load_site(tmp_path / "plain.yaml", doc, PROFILES)


@contextlib.asynccontextmanager
async def simulated_centre(
    tmp_path: Path, broker: SecuredBroker
) -> AsyncIterator[tuple[Path, SiteConfig]]:
    """The simulator serving gw1's probe, and the centre's site config for it on ``broker``
    (:func:`centre`): (its path, the config)."""
    plain = plain_site(tmp_path)
    async with Simulation(plain, PROFILES, seed=3) as sim:
        site = centre(tmp_path, broker, plain, sim)
        yield site, load_site(site, yaml.safe_load(site.read_text()), PROFILES)


async def until_stored(hub: Hub, failure: str) -> None:
    """Wait up to 30 s for gw1's probe in the hub's store."""
    for _ in range(300):
        if PROBE in await hub.store.latest([PROBE]):
            return
        await asyncio.sleep(0.1)
    pytest.fail(failure)


def hub_key(tmp_path: Path) -> bytes:
    keys = GatewayKeys(tmp_path / "hub" / "hub.db")
    try:
        key = keys.get("gw1")
    finally:
        keys.close()
    assert key is not None
    return key


def centre(tmp_path: Path, broker: SecuredBroker, plain: SiteConfig, sim: Simulation) -> Path:
    """The centre's site config, pointing at the simulator and the secured broker, with the
    hub's data dir holding the broker's admin password."""
    live = simulated_config(plain, sim.endpoints())
    data = tmp_path / "hub"
    live["uplink"] = {"broker": broker.url}
    live["agent"] = {"health_interval": "1s"}  # the test reads the agent's ack counters
    live["hub"] = {"data_dir": str(data), "username": broker.hub[0]}
    data.mkdir()
    (data / "broker-admin-password").write_text(broker.admin[1] + "\n")
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(live, sort_keys=False))
    return path


@pytest.mark.slow
async def test_a_gateway_provisioned_with_the_command_streams_from_its_bundle_alone(
    tmp_path: Path, secured_mosquitto: SecuredBroker
) -> None:
    broker = secured_mosquitto
    async with simulated_centre(tmp_path, broker) as (site, cfg):
        bundle = tmp_path / "gw1.tar.gz"
        rc, out, err = await coldchain(
            "gateway", str(site), "--by", "li-tech", "provision", "gw1", "--out", str(bundle)
        )
        assert rc == 0, err
        assert "gateway gw1: broker client gw1" in out
        assert os.stat(bundle).st_mode & 0o077 == 0  # it holds a password
        rc, _, err = await coldchain("gateway", str(site), "provision", "gw1", "--out", "x")
        assert rc == 1
        assert "gateway gw1 already has a broker identity (gw1): rotate it" in err

        pi = tmp_path / "pi"
        with tarfile.open(bundle) as tar:
            tar.extractall(pi, filter="data")
        files = pi / "coldchain-gw1"
        password = (files / "broker-password").read_text().strip()
        assert len(password) >= 32
        # the bundle's config and profiles are all the agent needs: valid on their own
        checked = check_site_file(files / "site.yaml", ProfileRegistry.load(files / "profiles"))
        assert checked.errors == []
        assert checked.config is not None
        assert [g.id for g in checked.config.gateways] == ["gw1"]
        assert checked.config.uplink.username == "gw1"
        assert checked.config.uplink.key_file == "/etc/coldchain/message-key"
        # the message key is shared with the hub, and with nobody else
        assert (files / "message-key").read_text().strip() == hub_key(tmp_path).hex()
        assert os.stat(files / "message-key").st_mode & 0o077 == 0

        async with running_hub_service(
            cfg, PROFILES, tmp_path / "hub", broker.url, password=broker.hub[1]
        ) as hub:
            agent = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "coldchain.cli", "agent", "run", "site.yaml",
                "--gateway", "gw1", "--profiles", "profiles",
                "--password-file", "broker-password", "--key-file", "message-key",
                "--data-dir", str(tmp_path / "outbox"),
                cwd=files,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                await until_stored(hub, "the bundle's agent never reached the hub's store")

                def online() -> bool:
                    state = hub.registry.get("gw1")
                    return state is not None and state.state == "online"

                await until(online, "gw1 online")

                def acked() -> bool:  # the agent's health: acks the hub signed, verified
                    state = hub.registry.get("gw1")
                    uplink = state.report.uplink if state and state.report else None
                    return uplink is not None and (uplink.readings_acked or 0) > 0

                await until(acked, "the agent's health reporting signed acks", within=30)
                report = hub.registry.get("gw1").report  # type: ignore[union-attr]
                assert report is not None
                assert report.uplink is not None
                assert report.uplink.forged_acks == 0

                rc, out, err = await coldchain("gateway", str(site), "list")
                assert rc == 0, err
                (row,) = [line for line in out.splitlines() if line.startswith("gw1 ")]
                assert row.split()[:3] == ["gw1", "depot", "online"]
                assert row.endswith("gw1")
                assert out.splitlines()[0].split()[-3:] == ["config", "broker", "clients"]
                assert row.endswith("1 applied  gw1"), row  # the hub's push at its start
                revisions = Revisions(tmp_path / "hub" / "hub.db")  # as config push records
                revisions.record(Change("gw1", 2, "{}", None), now_ms=1, actor="t")
                revisions.record(Change("gw1", 3, "{}", "{}"), now_ms=2, actor="t")
                revisions.ack("gw1", ConfigAck(rev=2, ok=True), now_ms=3)
                revisions.close()
                rc, out, err = await coldchain("gateway", str(site), "list")
                assert rc == 0, err
                (row,) = [line for line in out.splitlines() if line.startswith("gw1 ")]
                assert row.endswith("3 pending, runs 2  gw1"), row

                rc, out, err = await coldchain("gateway", str(site), "revoke", "gw1")
                assert rc == 0, err
                assert "gateway gw1: revoked (gw1)" in out
                # offline at once (the broker's kick carries no last will: the command says
                # so in the hub's registry), and cut off: nothing more arrives
                assert getattr(hub.registry.get("gw1"), "state", None) == "offline"
                await asyncio.sleep(1.0)
                last = (await hub.store.latest([PROBE]))[PROBE].ts_ms
                await asyncio.sleep(3.0)
                assert (await hub.store.latest([PROBE]))[PROBE].ts_ms == last
            finally:
                agent.terminate()
                await agent.wait()

    log = AuditLog(tmp_path / "hub" / "hub.db")
    records, _ = log.page(50, 0, action="gateway.")
    assert [(r.action, r.actor, r.object) for r in reversed(records)] == [
        ("gateway.provision", "li-tech", "gateway/gw1"),
        ("gateway.revoke", getpass.getuser(), "gateway/gw1"),
    ]
    assert records[-1].after == {"client": "gw1", "bundle": str(bundle)}
    raw = (tmp_path / "hub" / "hub.db").read_bytes()
    assert password.encode() not in raw  # never stored in clear
    keys = GatewayKeys(tmp_path / "hub" / "hub.db")
    assert keys.get("gw1") is None  # revoked: its key is gone too
    keys.close()
    log.close()


async def test_the_command_says_what_is_wrong_and_changes_nothing(
    tmp_path: Path, secured_mosquitto: SecuredBroker
) -> None:
    broker = secured_mosquitto
    doc = one_bus_site(tcp_bus("tcp"), [("probe", "xy-md02", 1)], poll_interval="1s")
    doc["uplink"] = {"broker": broker.url}
    doc["hub"] = {"data_dir": str(tmp_path / "hub")}
    site = tmp_path / "site.yaml"
    load_site(site, doc, PROFILES)
    bundle = tmp_path / "b.tar.gz"
    out = str(bundle)

    async def fails(*args: str) -> str:
        rc, stdout, err = await coldchain("gateway", str(site), *args)
        assert (rc, stdout) == (1, ""), err
        assert "Traceback" not in err
        return err

    assert "gateway 'gw9' is not in" in await fails("provision", "gw9", "--out", out)
    assert "(gw1)" in await fails("provision", "gw9", "--out", out)  # the ones it has
    assert "the broker's admin password" in await fails("provision", "gw1", "--out", out)
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "broker-admin-password").write_text("not the password\n")
    err = await fails("list")
    assert "cannot connect to the broker as its admin" in err
    bundle.write_text("something of the technician's")
    assert "exists: choose another --out" in await fails("provision", "gw1", "--out", out)
    assert bundle.read_text() == "something of the technician's"
    assert not (tmp_path / "hub" / "hub.db").exists()  # nothing done, nothing audited
