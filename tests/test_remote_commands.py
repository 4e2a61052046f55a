"""Commissioning from the centre: ``coldchain gateway CONFIG scan|read ID`` (the real command
line) asks a running agent, over a real Mosquitto, to scan or read its own RS-485 line (the
simulator's pty). The agent stops polling that line while the command runs, and resumes."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from coldchain.config.site import SiteConfig
from coldchain.protocol.auth import new_key
from coldchain.protocol.commands import Request, decode_request, encode_request
from coldchain.protocol.messages import ProtocolError
from edge_agent.agent import Agent
from simulator.endpoints import simulated_config
from simulator.runtime import Simulation
from tests.browser import add_user, chromium, logged_in
from tests.hubkit import running_hub_service
from tests.services import Broker, until
from tests.simkit import load_site
from tests.sites import device, one_gateway_site, room, rtu_bus, shipped_profiles

PROFILES = shipped_profiles()


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, broker: Broker) -> AsyncIterator[tuple[Path, Agent]]:
    plain = one_gateway_site(
        rooms=[room("chill", "Chilled")],
        buses=[rtu_bus("rs485", "/dev/ttyUSB0", baud=9600)],
        devices=[
            device("probe", "xy-md02", bus="rs485", unit_id=1, room="chill", poll_interval="1s"),
            device("ctl", "dixell-xr60cx", bus="rs485", unit_id=3, room="chill"),
        ],
    )
    base = load_site(tmp_path / "plain.yaml", plain, PROFILES)
    async with Simulation(base, PROFILES, seed=3) as sim:
        live = simulated_config(base, sim.endpoints())
        live["uplink"] = {"broker": broker.url}
        live["agent"] = {"batch_interval": "200ms", "clock_check": False}
        live["hub"] = {"data_dir": str(tmp_path / "hub")}
        path = tmp_path / "site.yaml"
        path.write_text(yaml.safe_dump(live, sort_keys=False))
        cfg = SiteConfig.model_validate(live)
        agent = Agent(cfg, "gw1", PROFILES, data_dir=tmp_path / "agent")
        task = asyncio.create_task(agent.run(), name="agent")
        try:
            await until(lambda: agent.uplink.stats.connects >= 1, "the agent connected")
            yield path, agent
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def coldchain(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coldchain.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.slow
async def test_scan_and_read_a_gateway_line_from_the_centre(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with gateway(tmp_path, mosquitto) as (site, agent):
        probe = next(d for p in agent.pollers for d in p.devices if d.device.id == "probe")
        await until(lambda: probe.polls_ok >= 2, "the probe polled")
        code, out, err = await coldchain(
            "gateway", str(site), "scan", "gw1", "--bus", "rs485", "--units", "1-4"
        )
        assert code == 0, err
        assert "unit   1 at 9600 8N1: sure: xy-md02" in out
        assert "unit   3 at 9600 8N1: likely: dixell-xr60cx" in out
        assert "2 devices found; 4 probes in" in out
        polled = probe.polls_ok
        await until(lambda: probe.polls_ok > polled + 1, "polling resumed after the scan")

        code, out, err = await coldchain(
            "gateway", str(site), "read", "gw1", "--bus", "rs485", "--unit", "1",
            "--profile", "xy-md02",
        )  # fmt: skip
        assert code == 0, err
        assert out.startswith("temperature ")
        assert "config unit_id            1 " in out

        code, _, err = await coldchain("gateway", str(site), "scan", "gw1", "--bus", "nope")
        assert code == 1
        assert "gateway gw1 has no bus 'nope' (rs485)" in err
        code, _, err = await coldchain(
            "gateway", str(site), "read", "gw1", "--bus", "rs485", "--unit", "1",
            "--profile", "no-such-profile",
        )  # fmt: skip
        assert code == 1
        assert "gw1: " in err
        assert "no-such-profile" in err


def test_a_command_is_bounded_and_signed() -> None:
    key = new_key()
    req = Request("0123456789abcdef", "scan", "rs485", units="1-32", baud="9600")
    assert (
        decode_request(encode_request(req, key=key, gateway="gw1"), key=key, gateway="gw1") == req
    )
    with pytest.raises(ProtocolError, match="did not sign") as caught:
        decode_request(encode_request(req), key=key, gateway="gw1")
    assert caught.value.reason == "bad_mac"
    with pytest.raises(ProtocolError, match="did not sign"):
        decode_request(encode_request(req, key=key, gateway="gw2"), key=key, gateway="gw1")
    bad = Request("0123456789abcdef", "scan", "rs485", units="1-32; rm -rf /")
    with pytest.raises(ProtocolError, match="bad units"):
        decode_request(encode_request(bad))
    with pytest.raises(ProtocolError, match="read needs unit and profile"):
        decode_request(encode_request(Request("0123456789abcdef", "read", "rs485")))
    with pytest.raises(ProtocolError):
        decode_request(b"\x81" * 2000)


@pytest.mark.slow
async def test_a_technician_scans_a_gateway_bus_from_the_gateways_page(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with gateway(tmp_path, mosquitto) as (site, _agent):
        cfg = load_site(tmp_path / "centre.yaml", yaml.safe_load(site.read_text()), PROFILES)
        async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
            password = add_user(hub, "li-tech", "technician")
            async with chromium() as browser:
                page = await logged_in(browser, hub.url, "li-tech", password)
                await page.goto(f"{hub.url}/gateways")
                form = page.locator('form.scan[data-gateway="gw1"]')
                await form.locator("input[name=units]").fill("1-4")
                await form.locator("button").click()
                out = page.locator("#gw-gw1 pre.command-out")
                await out.wait_for(state="visible", timeout=60_000)
                text = await out.text_content() or ""
                assert "unit   1 at 9600 8N1: sure: xy-md02" in text
                # 4 probes, and a second one for a device slow to answer on a busy machine
                found = re.search(r"2 devices found; (\d+) probes in", text)
                assert found is not None, text
                assert int(found[1]) >= 4
                # the profiles of the devices configured on its buses are offered for a read
                read = page.locator('form.read[data-gateway="gw1"]')
                offered = await page.locator("#profiles-gw1 option").evaluate_all(
                    "os => os.map(o => o.value)"
                )
                assert offered == ["dixell-xr60cx", "xy-md02"]
                await read.locator("input[name=unit]").fill("1")
                await read.locator("input[name=profile]").fill("xy-md02")
                await read.locator("button").click()
                await page.wait_for_function(
                    "el => el.textContent.startsWith('temperature')",
                    arg=await out.element_handle(),
                    timeout=30_000,
                )
                assert "config unit_id            1 " in (await out.text_content() or "")
                await form.locator("input[name=units]").fill("1-300")
                await form.locator("button").click()
                err = form.locator(".err")
                await page.wait_for_function(
                    "el => el.textContent.includes('unit ids run from 1 to 247')",
                    arg=await err.element_handle(),
                    timeout=30_000,
                )
                viewer = add_user(hub, "wu-op", "operator")
                op = await logged_in(browser, hub.url, "wu-op", viewer)
                status = await op.evaluate(
                    """async () => (await fetch('/api/gateways/gw1/scan', {method: 'POST',
                        headers: {'Content-Type': 'application/json'},
                        body: JSON.stringify({bus: 'rs485'})})).status"""
                )
                assert status in (403, 401), "an operator may not scan"
            records, _ = hub.audit.page(10, 0, action="gateway.")
            assert [(r.actor, r.action, r.after.get("units")) for r in records] == [
                ("li-tech", "gateway.scan", "1-300"),
                ("li-tech", "gateway.read", None),
                ("li-tech", "gateway.scan", "1-4"),
            ]
