"""The edge fallback and the hub together: a gateway cut off from the centre texts a
compressor failure itself; when the link returns the hub records what it sent, acknowledges
the notice, and pages nobody of the first level again — although the replayed backlog shows
the same excursion to its own evaluator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coldchain.config.loader import load_site_config
from coldchain.profiles.registry import ProfileRegistry
from edge_agent.agent import Agent
from firmware_configs import SITES_DIR
from simulator.gsm_modem import GsmModemEmulator
from simulator.runtime import Simulation
from tests import test_edge_fallback as edge
from tests.hubkit import running_hub_service
from tests.services import MosquittoProcess, until

modem = edge.modem
GW, SPEED, FIRST_LEVEL = edge.GW, edge.SPEED, edge.FIRST_LEVEL


@pytest.mark.timeout(120)
@pytest.mark.slow
async def test_the_hub_takes_over_an_edge_alarm_without_paging_twice(
    tmp_path: Path,
    restartable_mosquitto: MosquittoProcess,
    modem: GsmModemEmulator,
    profiles: ProfileRegistry,
) -> None:
    broker = restartable_mosquitto.broker
    assert broker is not None
    county = load_site_config(SITES_DIR / "county.yaml", profiles)
    async with Simulation(county, profiles, seed=3, speed=SPEED, broker=broker.url) as sim:
        cfg = edge.e2e_config(tmp_path, sim, broker.url, modem.path)
        agent = Agent(cfg, GW, profiles, data_dir=tmp_path / "agent")
        fb = agent.fallback
        assert fb is not None
        hub_dir = tmp_path / "hub"
        async with (
            running_hub_service(cfg, profiles, hub_dir, broker.url) as hub,
            edge.running(agent.run()),
        ):
            await until(lambda: agent.uplink.stats.connected, "the uplink", 20)
            await until(lambda: hub.ingest.stats.readings > 0, "readings at the hub", 20)

            restartable_mosquitto.stop()
            await until(lambda: fb.stats.active, "the fallback to begin", 15)
            sim.inject("compressor_failure", "chengqu-centre/cold-room-1")
            await until(lambda: len(modem.messages) >= 3, "three texts from the gateway", 45)
            assert set(edge.texts(modem)) == FIRST_LEVEL

            restartable_mosquitto.start()
            await until(lambda: fb.store.unacked() == [], "the hub to acknowledge the notice", 45)
            key = f"temperature-high/alarm/chengqu-centre/{GW}/cr1-probe-door/temperature"
            row = hub.alerts.store.open_by_key(key)
            assert row is not None
            assert row.state == "firing"
            phones = {c.id: c.phone for c in cfg.contacts}
            assert {phones[c] for c in row.edge_contacts()} == FIRST_LEVEL
            # the backlog replays through the hub's evaluator: still one alert, nobody paged
            backlog_done = hub.ingest.stats.readings
            await until(
                lambda: hub.ingest.stats.readings > backlog_done + 50, "the backlog at the hub", 30
            )
            assert [a.key for a in hub.alerts.store.open_alerts()] == [key]
            notes = hub.alerts.store.notifications(alert_id=row.id)
            assert {n.address for n in notes if n.status == "edge"} == FIRST_LEVEL
            paged = [n for n in notes if n.status != "edge" and n.address in FIRST_LEVEL]
            assert paged == [], [(n.address, n.kind, n.status) for n in paged]
            outbox = hub_dir / "sms-outbox.jsonl"
            sent = (
                [json.loads(x) for x in outbox.read_text().splitlines()] if outbox.exists() else []
            )
            assert not [s for s in sent if s["to"] in FIRST_LEVEL and s["kind"] == "alarm"]
            assert len(modem.messages) == 3
