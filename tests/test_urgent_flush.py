"""State changes at once (issue 16, part 4): a door, alarm, defrost, power or status point
that changes, or a room's air crossing its limit, is news the agent sends without waiting
for its batch; a first value or a repeated state is not; a flapping input cannot make it
send more than a bounded number of batches a second; end to end, with a 20 s batch
interval, a door the simulator opens reaches the hub while the ordinary readings still
wait for their batch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coldchain.config.topology import site_points
from coldchain.reading import Quality, Reading, SeriesId
from edge_agent.urgency import URGENT_BURST, URGENT_PER_S, Budget, Urgency
from tests.agentkit import agents, county
from tests.alertkit import PROFILES, config
from tests.services import Broker, until
from tests.testhub import running_hub

DOOR = SeriesId("s1", "gw1", "di", "door_1")
AIR = SeriesId("s1", "gw1", "probe", "temperature")  # the chilled room: 0 ... 4 °C


def urgency() -> Urgency:
    cfg = config()
    return Urgency(cfg, site_points(cfg, PROFILES))


def news(u: Urgency, series: SeriesId, *values: float) -> list[bool]:
    return [u.news([Reading(series, i * 1000, v)]) for i, v in enumerate(values)]


def test_a_change_of_state_or_of_side_of_a_limit_is_news() -> None:
    u = urgency()
    # the first value is nothing to change from; a repeat is no change
    assert news(u, DOOR, 0.0, 0.0, 1.0, 1.0, 0.0) == [False, False, True, False, True]
    # the room's air: inside, still inside, above 4 °C, still above, back inside, below 0
    assert news(u, AIR, 2.0, 3.9, 4.2, 5.0, 3.0, -0.5) == [False, False, True, False, True, True]
    bad = Reading(AIR, 9_000, None, Quality.BAD, "probe open")
    assert u.news([bad]) is False  # a bad reading is no crossing


def test_a_flapping_input_cannot_flood_the_link() -> None:
    budget = Budget()
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < 1.0:  # a door flapping as fast as it can for a second
        sent += budget.take()
    assert sent <= URGENT_BURST + URGENT_PER_S * 1.1
    assert sent >= URGENT_BURST  # the first ones do go at once


@pytest.mark.slow
async def test_a_door_opening_goes_out_at_once_while_readings_batch(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with (
        county(tmp_path, mosquitto, poll="1s", batch_interval="20s") as c,
        running_hub(mosquitto.host, mosquitto.port) as hub,
        agents(c, tmp_path, only=["gw-shuangxi"]) as (agent,),
    ):
        await until(lambda: agent.waiting > 20, "readings polled", 10)
        assert not hub.series(), "ordinary readings wait for their commit window (20 s)"
        c.sim.inject("door_stuck_open", "shuangxi-poultry/chilled-1")
        opened = time.monotonic()

        def door_open_at_hub() -> bool:
            return any(
                s.device == "chill-door" and any(r.value == 1.0 for r in hub.readings(s))
                for s in hub.series()
            )

        await until(door_open_at_hub, "the opened door at the hub", within=10)
        assert time.monotonic() - opened < 15  # well before the 20 s batch would have gone
        assert agent.uplink.stats.urgent_batches >= 1
