"""What the agent logs about a failing Modbus device, against the simulator's real slaves (TCP,
and RTU on a pty): one line when it stops giving data, one when it gives data again, counts in
the health report in between, and none of pymodbus's raw frame dumps or late-reply warnings
(a Pi writes its log to an SD card)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from coldchain.config.site import AgentSettings, RtuBus, SiteConfig, TcpBus
from edge_agent.agent import modbus_states_of
from edge_agent.buffer import Stats
from edge_agent.health import report
from edge_agent.poller import BusPoller, DeviceState
from edge_agent.uplink import UplinkStats
from simulator.endpoints import simulated_config
from simulator.runtime import Simulation
from tests.services import until
from tests.simkit import load_site, one_bus_site
from tests.sites import shipped_profiles

INTERVAL = "300ms"
DEVICES = [("p1", "xy-md02", 1), ("ctl", "dixell-xr60cx", 2)]
BUSES: dict[str, dict[str, Any]] = {
    "rtu": {"type": "rtu", "id": "rs485", "port": "/dev/ttyUSB0", "baud": 19200},
    "tcp": {"type": "tcp", "id": "plc", "host": "10.0.0.9"},
}
# pymodbus's frame dump (">>>>> send: 0x2 0x3 ...") and its messages the agent says itself
NOISE = (
    ">>>>>",
    "send: 0x",
    "recv: 0x",
    "No response received",
    "without a corresponding",
    "request ask for id",
)


def site(bus: dict[str, Any], devices: list[tuple[str, str, int]]) -> dict[str, Any]:
    return one_bus_site(bus, devices, poll_interval=INTERVAL)


@contextlib.asynccontextmanager
async def polling(
    tmp_path: Path, doc: dict[str, Any]
) -> AsyncIterator[tuple[Simulation, BusPoller]]:
    """The simulated bus of ``doc`` polled by a real BusPoller, backoff capped at 0.5 s so that
    a failure spans many polls in a few seconds."""
    profiles = shipped_profiles()
    cfg = load_site(tmp_path / "site.yaml", doc, profiles)
    async with Simulation(cfg, profiles, seed=1) as sim:
        gw = SiteConfig.model_validate(simulated_config(cfg, sim.endpoints())).gateways[0]
        bus = gw.buses[0]
        assert isinstance(bus, RtuBus | TcpBus)
        states = modbus_states_of(gw, gw.devices, profiles, AgentSettings())
        p = BusPoller(bus, states, lambda _readings: None, backoff_max=0.5)
        task = asyncio.create_task(p.run())
        try:
            yield sim, p
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            p.link.close()


def state(p: BusPoller, device: str) -> DeviceState:
    return next(d for d in p.devices if d.device.id == device)


def health_of(p: BusPoller, device: str) -> dict[str, Any]:
    buffer = Stats(0, 0, 0, None, 0, 0, 0)
    doc = report(
        started=time.monotonic(),
        buffer=buffer,
        uplink=UplinkStats(),
        pollers=[p],
        inputs=[],
        suppressed=0,
    )
    entry: dict[str, Any] = doc["devices"][device]
    return entry


def lines(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]


def noise(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name} {r.levelname}: {r.getMessage()[:200]}"
        for r in caplog.records
        if any(n in r.getMessage() for n in NOISE)
    ]


@pytest.mark.parametrize("transport", ["rtu", "tcp"])
@pytest.mark.slow
async def test_a_silent_device_is_logged_once_when_it_fails_and_once_when_it_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    caplog.set_level(logging.INFO)
    bus = {**BUSES[transport], "timeout": "150ms"}
    async with polling(tmp_path, site(bus, DEVICES)) as (sim, p):
        ctl = state(p, "ctl")
        await until(lambda: ctl.polls >= 2 and ctl.failed_polls == 0, "the controller read")
        sim.inject("silent", "gw1/ctl")
        await until(lambda: ctl.failed_polls >= 12, "twelve polls without a reply", within=30)
        health = health_of(p, "ctl")
        assert health["failed_polls"] >= 12
        assert health["failing_since_ms"] is not None
        assert health["failures_in_a_row"] >= 12
        assert "unit 2" in health["last_error"]
        sim.clear("silent", "gw1/ctl")
        await until(lambda: ctl.failing_since_ms is None, "the controller back", within=10)
        ok = ctl.polls_ok
        await until(lambda: ctl.polls_ok >= ok + 3, "three good polls after", within=10)
    failed = lines(caplog, "ctl: no data")
    assert len(failed) == 1, failed
    live = p.bus
    endpoint = live.port if isinstance(live, RtuBus) else f"{live.host}:{live.port}"
    assert f"bus {bus['id']} ({endpoint}) unit 2 " in failed[0]
    assert failed[0].endswith(
        ": no reply; retried each cycle while the line has room, else with backoff; "
        "logged again when it gives data"
    )
    back = lines(caplog, "ctl: gives data again after")
    assert len(back) == 1, back
    assert f" and {ctl.failed_polls} failed polls; last error: bus {bus['id']}" in back[0]
    after = health_of(p, "ctl")
    assert after["failing_since_ms"] is None
    assert after["failed_polls"] >= 12
    assert not lines(caplog, "p1:"), "the neighbour never failed"
    assert noise(caplog) == []


@pytest.mark.slow
async def test_late_replies_on_a_slow_line_are_not_logged_at_every_poll(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # at 1200 baud a request and its reply take ~190 ms on the wire: with a 100 ms timeout
    # every reply comes late, which pymodbus warns about ("received pdu without a
    # corresponding request") after dumping its last frames for the timeout
    caplog.set_level(logging.INFO)
    bus = {**BUSES["rtu"], "baud": 1200, "timeout": "100ms"}
    async with polling(tmp_path, site(bus, [("slow", "xy-md02", 1)])) as (sim, p):
        slow = state(p, "slow")
        await until(lambda: slow.failed_polls >= 10, "ten polls timed out", within=30)
        # the slave answered every request, each after its timeout (none gave data)
        await until(lambda: sim.rtu[0].replies >= 10, "ten late replies sent", within=10)
    failed = lines(caplog, "slow: no data")
    assert len(failed) == 1, failed
    assert "unit 1 input 1..2: no reply" in failed[0]
    assert noise(caplog) == []


@pytest.mark.slow
async def test_a_late_reply_during_the_next_request_is_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a device that starts answering after the timeout: its reply arrives while the poller
    # asks the next unit, which pymodbus logs as an ERROR ("request ask for id=2 but got
    # id=1, Skipping.") at every poll
    caplog.set_level(logging.INFO)
    bus = {**BUSES["rtu"], "timeout": "150ms"}
    async with polling(tmp_path, site(bus, DEVICES)) as (sim, p):
        sim.plant.devices["gw1/p1"].latency = 0.2
        slow = state(p, "p1")
        await until(lambda: slow.failed_polls >= 5, "five polls of p1 timed out", within=30)
        await until(lambda: sim.rtu[0].replies >= 10, "late replies sent", within=10)
    assert noise(caplog) == []
