"""Helpers for the agent tests: the simulated county with a site config pointing at it (fast
polling, short batch intervals), in-process agents, and recording what agents buffer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coldchain.config.loader import load_site_config
from coldchain.config.site import SiteConfig
from coldchain.config.topology import site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.reading import Reading, SeriesId
from edge_agent.agent import Agent
from edge_agent.buffer import MAX_BATCH
from firmware_configs import SITES_DIR
from simulator.endpoints import simulated_config
from simulator.runtime import Simulation
from tests.services import Broker
from tests.sites import shipped_profiles

# clock_check off: the test machine's own clock state must not decide a test; the tests of
# the check inject the answer (tests/test_agent_clock.py).
FAST_AGENT = {
    "batch_interval": "200ms",
    "health_interval": "1s",
    "ack_timeout": "3s",
    "clock_check": False,
}


@dataclass
class County:
    sim: Simulation
    cfg: SiteConfig
    path: Path  # the site config file agents (also in subprocesses) run with
    profiles: ProfileRegistry


@contextlib.asynccontextmanager
async def county(
    tmp_path: Path,
    broker: Broker,
    *,
    poll: str = "2s",
    uplink: dict[str, Any] | None = None,
    **agent: Any,
) -> AsyncIterator[County]:
    """The example county simulated; its sensors publish to ``broker``, its agents' uplink
    points at ``broker`` too, unless ``uplink`` says otherwise."""
    profiles = shipped_profiles()
    config = load_site_config(SITES_DIR / "county.yaml", profiles)
    async with Simulation(
        config, profiles, seed=3, broker=broker.url, mqtt_interval=1.0, control_port=0
    ) as sim:
        doc = simulated_config(config, sim.endpoints())
        for gw in doc["gateways"]:
            for d in gw["devices"]:
                d["poll_interval"] = poll
        doc["agent"] = {**FAST_AGENT, **agent}
        doc["uplink"] = uplink or {"broker": broker.url}
        path = tmp_path / "sim.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        yield County(sim, load_site_config(path, profiles), path, profiles)


def all_series(
    cfg: SiteConfig, profiles: ProfileRegistry, gateway: str | None = None
) -> set[SeriesId]:
    return {p.sid for p in site_points(cfg, profiles) if gateway in (None, p.gateway)}


class Recording:
    """Every reading an agent put in its outbox."""

    def __init__(self, agent: Agent) -> None:
        self.readings: dict[tuple[SeriesId, int], Reading] = {}
        original = agent.outbox.append

        async def append(readings: Sequence[Reading], max_batch: int = MAX_BATCH) -> list[int]:
            seqs = await original(readings, max_batch)
            for r in readings:
                self.readings[(r.series, r.ts_ms)] = r
            return seqs

        agent.outbox.append = append  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def agents(
    c: County,
    tmp_path: Path,
    only: Sequence[str] | None = None,
    password: str | None = None,
    message_key: bytes | None = None,
    clock_synchronised: Callable[[], bool | None] | None = None,
) -> AsyncIterator[list[Agent]]:
    running = [
        Agent(
            c.cfg,
            gw.id,
            c.profiles,
            data_dir=tmp_path / "agents" / gw.id,
            uplink_password=password,
            message_key=message_key,
            clock_synchronised=clock_synchronised,
        )
        for gw in c.cfg.gateways
        if only is None or gw.id in only
    ]
    tasks = [asyncio.create_task(a.run(), name=f"agent-{a.gw.id}") for a in running]
    try:
        yield running
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
