"""An accelerated run over the real parts behaves as a real one: the simulator serving the
example site over real Modbus (RTU on ptys, TCP) and a real Mosquitto, a real agent per
gateway and the real hub, all given ONE scaled clock, as ``coldchain demo --speed`` does.

Before the shared clock, agents polled and the hub judged in wall time while the physics ran
``--speed`` times faster: at 60x a 20-minute defrost lasted 20 s and a 60 s poll missed it,
so its rise raised "rising fast"; the hub refused readings stamped in simulated time.
Here a couple of simulated hours, with defrosts, pass in under a minute of wall time: every
defrost reaches the hub, readings carry simulated time and are accepted, and nothing alarms.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
import yaml

from coldchain.clock import ScaledClock
from coldchain.config.loader import load_site_config
from coldchain.config.topology import site_points
from coldchain.profiles.schema import PointKind
from edge_agent.agent import Agent
from firmware_configs import SITES_DIR
from hub.service import Hub
from simulator.endpoints import simulated_config
from simulator.runtime import Simulation
from tests.services import Broker, until
from tests.sites import shipped_profiles

SPEED = 120.0  # 2 simulated minutes per wall second
SIM_HOURS = 2.0  # 60 s of wall time
POLL = "60s"  # GSP's one-minute sampling; at 120x the 9600 baud lines stay about half busy
SEED = 28  # two rooms defrost 1.4 h in (a first defrost comes 0.2-1 interval in)
START = 1_767_571_200.0  # Monday 2026-01-05 08:00 in Shanghai: doors open, defrosts due


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_an_accelerated_run_over_real_parts_keeps_one_time(
    tmp_path: Path, mosquitto: Broker
) -> None:
    profiles = shipped_profiles()
    config = load_site_config(SITES_DIR / "county.yaml", profiles)
    clock = ScaledClock(speed=SPEED, start=START)  # the same morning whenever it runs
    start_ms = clock.now_ms()
    async with Simulation(
        config,
        profiles,
        seed=SEED,
        broker=mosquitto.url,
        clock=clock,
        mqtt_interval=120.0,  # simulated seconds, within the 5-minute stale limit
    ) as sim:
        doc = simulated_config(config, sim.endpoints())
        for gw in doc["gateways"]:
            for d in gw["devices"]:
                d.setdefault("poll_interval", POLL)
        doc["uplink"] = {"broker": mosquitto.url}
        path = tmp_path / "sim.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), "utf-8")
        cfg = load_site_config(path, profiles)
        hub = Hub(
            cfg,
            profiles,
            data_dir=tmp_path / "hub",
            broker=mosquitto.url,
            listen="127.0.0.1:0",
            clock=clock,
        )
        agents = [
            Agent(cfg, gw.id, profiles, data_dir=tmp_path / "agents", clock=clock)
            for gw in cfg.gateways
        ]
        tasks = [asyncio.create_task(hub.run(), name="hub")]
        tasks += [asyncio.create_task(a.run(), name=f"agent-{a.gw.id}") for a in agents]
        try:
            end = start_ms + round(SIM_HOURS * 3_600_000)
            await until(lambda: clock.now_ms() >= end, "the simulated hours", within=100)
            flags = [p.sid for p in site_points(cfg, profiles) if p.kind is PointKind.DEFROST]
            stored = {sid: await hub.store.raw(sid, start_ms, end + 60_000) for sid in flags}
            rows = hub.alerts.store.query(limit=1000)
            rejected = dict(hub.ingest.stats.rejected)
            now_ms = clock.now_ms()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        truth = sim.journal

    assert rejected == {}, f"the hub refused readings stamped in simulated time: {rejected}"
    # readings carry simulated time: the newest is minutes from the shared clock's now
    # (months from the wall clock's), hours after the start
    newest = max(r.ts_ms for rs in stored.values() for r in rs)
    assert now_ms - 300_000 <= newest <= now_ms, (newest, now_ms)
    assert abs(newest - time.time_ns() // 1_000_000) > 86_400_000
    # every defrost the controllers ran reached the hub (a poll every simulated minute sees
    # a 20-30 minute defrost; on wall time at 120x it lasted 10-15 s and was mostly missed)
    served = {
        str(sid): [e for e in truth.entries(str(sid), since_wall_ms=None) if e.value == 1.0]
        for sid in flags
    }
    defrosting = sorted(s for s, on in served.items() if on)
    assert len(defrosting) >= 2, f"the seed gave too few defrosts to prove anything: {served}"
    for series in defrosting:
        seen = [r for r in stored[next(s for s in flags if str(s) == series)] if r.value == 1.0]
        assert seen, f"{series}: the controller defrosted but the hub never saw it"
    # ... and each was suppressed: no alarm, no warning, no SMS
    fired = [f"{a.rule}/{a.tier} {a.series} {a.value}" for a in rows if a.fired_ms is not None]
    assert fired == [], "alerts in a normal accelerated run:\n" + "\n".join(fired)
    outbox = tmp_path / "hub" / "sms-outbox.jsonl"
    assert not outbox.exists() or outbox.read_text("utf-8") == ""
