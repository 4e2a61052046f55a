"""Alerts end to end on the simulator with an accelerated clock: simulated rooms served as
real Modbus slaves and MQTT sensors -> the agent -> Mosquitto -> the hub -> a Twilio
stand-in that checks every request as Twilio would. A compressor fails in one room, a door
sticks open in another: the three people covering the site get the first alarm at once and
the rest folded into one more message at the end of the storm window."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from coldchain.config.loader import load_site_config
from coldchain.profiles.registry import ProfileRegistry
from edge_agent.agent import Agent
from firmware_configs import SITES_DIR
from simulator.endpoints import simulated_config
from simulator.runtime import Simulation
from tests import smsfakes
from tests.agentkit import FAST_AGENT
from tests.hubkit import running_hub_service
from tests.services import Broker, until
from tests.smsfakes import TwilioFake
from tests.test_edge_fallback import running

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

twilio_fake = smsfakes.twilio_fake
GW = "gw-centre-cold"
# chengqu-centre is covered by wang-li and zhao-min (all sites) and li-na (this site only)
FIRST_LEVEL = {"+8613800000001", "+8613800000002", "+8613700000006"}


@pytest.mark.timeout(120)
@pytest.mark.slow
async def test_a_failed_compressor_and_a_stuck_door_reach_the_three_people_of_the_site(
    tmp_path: Path, mosquitto: Broker, twilio_fake: TwilioFake, profiles: ProfileRegistry
) -> None:
    county = load_site_config(SITES_DIR / "county.yaml", profiles)
    async with Simulation(county, profiles, seed=5, speed=600.0, broker=mosquitto.url) as sim:
        doc = simulated_config(sim.config, sim.endpoints())
        doc["agent"] = FAST_AGENT
        doc["uplink"] = {"broker": mosquitto.url}
        doc["alerts"]["default_rules"] = False
        doc["alerts"]["linger"] = "100ms"
        # what fires within the window after a person's first SMS comes as one more message
        doc["alerts"]["storm_window"] = "5s"
        doc["alerts"]["notifiers"] = [
            twilio_fake.settings(tmp_path).model_dump(mode="json", exclude_none=True)
        ]
        doc["alert_rules"] = [
            {
                "id": "temperature-high",
                "kind": "threshold",
                "direction": "above",
                "alarm": {"delay": "3s"},
                "rooms": ["cold-room-1"],
            },
            {"id": "door-open", "kind": "door_open", "longer_than": "3s", "rooms": ["cold-room-2"]},
        ]
        for g in doc["gateways"]:
            for d in g["devices"]:
                d["poll_interval"] = "1s"
        path = tmp_path / "sim.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        cfg = load_site_config(path, profiles)
        agent = Agent(cfg, GW, profiles, data_dir=tmp_path / "agent")
        async with (
            running_hub_service(cfg, profiles, tmp_path / "hub", mosquitto.url) as hub,
            running(agent.run()),
        ):
            await until(lambda: hub.ingest.stats.readings > 20, "readings at the hub", 30)
            assert twilio_fake.records == [], "the rooms are fine before the faults"

            sim.inject("compressor_failure", "chengqu-centre/cold-room-1")
            sim.inject("door_stuck_open", "chengqu-centre/cold-room-2")
            try:
                await until(lambda: len(twilio_fake.records) >= 6, "six SMS at Twilio", 60)
            except BaseException:
                print("RECORDS", twilio_fake.records, twilio_fake.rejections)
                print("OPEN", [(r.key, r.state, r.value) for r in hub.alerts.store.open_alerts()])
                print(
                    "NOTES",
                    [(n.recipient, n.status, n.error) for n in hub.alerts.store.notifications()],
                )
                v = hub.alerts.evaluator.views
                print(
                    "SERIES", {k: (x.value, x.ts_ms) for k, x in v.series.items() if "chengqu" in k}
                )
                raise
            per_phone = Counter(r["to"] for r in twilio_fake.records)
            assert per_phone == dict.fromkeys(FIRST_LEVEL, 2)
            texts: dict[str, list[str]] = {r["to"]: [] for r in twilio_fake.records}
            for r in twilio_fake.records:
                texts[r["to"]].append(r["text"])
            for phone, got in texts.items():
                joined = " | ".join(got)
                room1, room2 = (
                    ("Cold room 1", "Cold room 2")
                    if phone == "+8613700000006"
                    else ("1号冷藏库", "2号冷冻库")
                )
                assert room1 in joined, joined
                assert room2 in joined, joined
            rows = hub.alerts.store.open_alerts()
            assert {r.rule for r in rows} >= {"temperature-high", "door-open"}
            assert all(r.level == 0 for r in rows if r.state == "firing")
