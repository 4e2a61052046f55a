"""The poller against simulated slaves: a silent device costs its bus neighbours at most one
timeout per cycle, is tried every cycle while the line has room and backed off past it;
illegal-address splits are learned and remembered; a TCP
endpoint that goes away and comes back is reconnected."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from coldchain.config.site import AgentSettings, RtuBus, SiteConfig, TcpBus
from coldchain.profiles.schema import PointKind, Table
from coldchain.reading import Quality, Reading
from edge_agent.agent import modbus_states_of
from edge_agent.poller import BusPoller, BusyMeter, DeviceState
from simulator.endpoints import simulated_config
from simulator.runtime import Simulation
from tests.services import until
from tests.simkit import load_site, one_bus_site
from tests.sites import shipped_profiles

INTERVAL = 0.4
TIMEOUT = 0.15


def site(bus: dict[str, Any], devices: list[tuple[str, str, int]]) -> dict[str, Any]:
    return one_bus_site(bus, devices, poll_interval=f"{int(INTERVAL * 1000)}ms")


class Recorder:
    def __init__(self) -> None:
        self.got: list[tuple[float, Reading]] = []

    def __call__(self, readings: list[tuple[Reading, PointKind]]) -> None:
        now = time.monotonic()
        self.got += [(now, r) for r, _ in readings]

    def of(self, device: str) -> list[tuple[float, Reading]]:
        return [(t, r) for t, r in self.got if r.series.device == device]


@contextlib.asynccontextmanager
async def poller(
    tmp_path: Path, doc: dict[str, Any]
) -> AsyncIterator[tuple[Simulation, BusPoller, Recorder]]:
    profiles = shipped_profiles()
    cfg = load_site(tmp_path / "site.yaml", doc, profiles)
    async with Simulation(cfg, profiles, seed=1) as sim:
        live = SiteConfig.model_validate(simulated_config(cfg, sim.endpoints()))
        gw = live.gateways[0]
        bus = gw.buses[0]
        assert isinstance(bus, RtuBus | TcpBus)
        states = modbus_states_of(gw, gw.devices, profiles, AgentSettings())
        rec = Recorder()
        p = BusPoller(bus, states, rec, backoff_max=5.0)
        task = asyncio.create_task(p.run())
        try:
            yield sim, p, rec
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            p.link.close()


def state(p: BusPoller, device: str) -> DeviceState:
    return next(d for d in p.devices if d.device.id == device)


RTU = {
    "type": "rtu",
    "id": "rs485",
    "port": "/dev/ttyUSB0",
    "baud": 19200,
    "timeout": f"{int(TIMEOUT * 1000)}ms",
}


def attempts(rec: Recorder, device: str, point: str) -> list[float]:
    return [t for t, r in rec.of(device) if r.series.point == point]


@pytest.mark.slow
async def test_silent_devices_are_tried_each_cycle_while_the_line_has_room_else_backed_off(
    tmp_path: Path,
) -> None:
    """Two silent devices beside one that answers: the line's idle time has room for one
    timeout a cycle (half of 0.4 s idle holds one 0.15 s timeout, not two), so one is tried
    every cycle and found again within a cycle of answering, the other is backed off; the
    neighbour keeps its pace (at most one timeout a cycle)."""
    devices = [("p1", "xy-md02", 1), ("ctl", "dixell-xr60cx", 2), ("p3", "xy-md02", 3)]
    async with poller(tmp_path, site(RTU, devices)) as (sim, p, rec):
        await until(lambda: state(p, "p1").polls >= 3, "the line's own load measured", 10)
        sim.inject("silent", "gw1/ctl")
        sim.inject("silent", "gw1/p3")
        silent = [state(p, "ctl"), state(p, "p3")]
        ctl = silent[0]
        await until(lambda: ctl.failures >= 1, "the controller's first failed poll", 10)
        extra = ctl.requests - ctl.polls  # its blocks beyond one per poll, while it answered
        await until(lambda: min(d.failures for d in silent) >= 4, "four failed polls each", 15)
        # one request per failed turn although the controller has 3 blocks: a timeout ends
        # the device's turn, so its neighbours wait at most one timeout per cycle
        assert len(ctl.blocks) >= 3
        assert ctl.requests - ctl.polls == extra
        bad = [r for _, r in rec.of("ctl") if r.quality is not Quality.GOOD]
        assert bad
        assert all(r.quality is Quality.BAD and r.reason == "no reply" for r in bad)
        # one is tried each cycle, the other backed off: the gaps between its tries grow
        tried = {
            dev: [t for t, r in rec.of(dev) if r.series.point == pt and r.quality is Quality.BAD]
            for dev, pt in (("ctl", "probe_1"), ("p3", "temperature"))
        }
        gaps = {dev: [b - a for a, b in itertools.pairwise(ts)] for dev, ts in tried.items()}
        (each_cycle,) = [dev for dev in gaps if max(gaps[dev][1:]) < 2 * INTERVAL]
        (backed_off,) = [dev for dev in gaps if dev != each_cycle]
        assert p.probing == {each_cycle}
        assert gaps[backed_off] == sorted(gaps[backed_off])
        assert gaps[backed_off][-1] > 3 * INTERVAL
        # the neighbour keeps its pace: never more than interval + one timeout apart
        times = attempts(rec, "p1", "temperature")
        assert all(r.quality is Quality.GOOD for _, r in rec.of("p1"))
        worst = max(b - a for a, b in itertools.pairwise(times[-12:]))
        assert worst < INTERVAL + TIMEOUT + 0.1, f"p1 waited {worst:.3f}s"
        # the one tried each cycle is read within a cycle of answering again
        back = {"ctl": "gw1/ctl", "p3": "gw1/p3"}[each_cycle]
        sim.clear("silent", back)
        cleared = time.monotonic()
        again = state(p, each_cycle)
        await until(lambda: again.failures == 0, "the device back", within=10)
        assert time.monotonic() - cleared < INTERVAL + TIMEOUT + 0.2
        sim.clear("silent", {"ctl": "gw1/p3", "p3": "gw1/ctl"}[each_cycle])
        other = state(p, backed_off)
        await until(lambda: other.failures == 0, "the other one back (now tried each cycle)", 10)


async def test_an_illegal_address_split_is_learned_and_remembered(tmp_path: Path) -> None:
    async with poller(tmp_path, site(RTU, [("ctl", "dixell-xr60cx", 1)])) as (_sim, p, rec):
        ctl = state(p, "ctl")
        planned = len(ctl.blocks)
        await until(lambda: ctl.polls >= 3, "three polls", within=10)
        assert ctl.limits.barriers == {(Table.COIL, 528)}
        assert len(ctl.blocks) == planned + 1

        async def between_polls() -> tuple[int, int]:
            """(requests, polls) read while no poll is half done (a busy machine's snapshot
            could fall inside one)."""
            seen: list[tuple[int, int]] = []

            def idle() -> bool:
                if p.clock.monotonic() < ctl.next_due:  # the last poll done, the next not due
                    seen.append((ctl.requests, ctl.polls))
                return bool(seen)

            await until(idle, "the controller between two polls", within=10)
            return seen[0]

        requests_before, polls_before = await between_polls()
        await until(lambda: ctl.polls >= polls_before + 2, "two more polls", within=10)
        requests_after, polls_after = await between_polls()
        # remembered: no more refused requests, exactly one request per block per poll
        assert requests_after - requests_before == (polls_after - polls_before) * len(ctl.blocks)
        assert all(r.quality is Quality.GOOD for _, r in rec.of("ctl"))
        assert {r.series.point for _, r in rec.of("ctl")} == {pt.name for pt in ctl.points}


@pytest.mark.parametrize("outage", [1.0])
@pytest.mark.slow
async def test_a_tcp_endpoint_that_goes_away_is_reconnected(tmp_path: Path, outage: float) -> None:
    tcp = {"type": "tcp", "id": "plc", "host": "10.0.0.9", "timeout": "200ms"}
    async with poller(tmp_path, site(tcp, [("plc", "sorting-line-plc", 1)])) as (sim, p, rec):
        plc = state(p, "plc")
        await until(lambda: plc.polls_ok >= 2, "the PLC read", within=10)
        sim.inject("link_down", "gw1")
        await until(lambda: plc.failures >= 2, "the link noticed down", within=10)
        assert any(r.quality is Quality.BAD for _, r in rec.of("plc"))
        await asyncio.sleep(outage)
        sim.clear("link_down")
        ok_before = plc.polls_ok
        await until(lambda: plc.polls_ok > ok_before + 1, "the PLC read again", within=15)
        last = rec.of("plc")[-1][1]
        assert last.quality is Quality.GOOD


def test_the_busy_meter_keeps_a_minute_of_seconds_however_many_turns() -> None:
    """A thousand devices polled every second are 60,000 turns a minute: the meter keeps one
    sum per second, and still knows the share of the minute the line was busy."""
    now = time.monotonic()
    meter = BusyMeter(60.0, since=now - 100)
    for i in range(60_000):  # 0.5 ms turns, one every 0.98 ms, over the last 59 s: half busy
        end = now - 59 + i * 0.000983
        meter.add(end - 0.0005, end)
    assert len(meter) <= 61
    assert meter.share() == pytest.approx(0.5, abs=0.02)
    assert meter.share(width=4) == pytest.approx(0.125, abs=0.01)


def test_the_busy_meter_forgets_turns_older_than_its_window() -> None:
    now = time.monotonic()
    meter = BusyMeter(60.0, since=now - 100)
    meter.add(now - 70.5, now - 70)
    assert meter.share() == 0.0  # nothing answered for a minute: the line is idle
    assert len(meter) == 0
