"""The hub measures each gateway's clock over MQTT (coldchain.protocol.timesync): a real
Mosquitto, the real hub in-process, an agent whose clock the test moves. On loopback the
measured offset is within 50 ms of the truth; moved past the rule's limit, the gateway's
clock raises a gateway_clock alert, which clears when the clock is put right."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from coldchain.clock import MsClock
from coldchain.config.site import SiteConfig
from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.timesync import (
    decode_time_probe,
    decode_time_reply,
    encode_time_probe,
    encode_time_reply,
)
from coldchain.protocol.topics import Topics
from edge_agent.agent import Agent
from gateway.dynsec import HUB_ROLE, DynSec, Fleet, gateway_role
from gateway.timesync import ClockProbes
from hub.service import Hub
from simulator.endpoints import simulated_config
from simulator.runtime import Simulation
from tests.hubkit import get, running_hub_service
from tests.services import Broker, SecuredBroker, until
from tests.simkit import load_site
from tests.sites import device, one_gateway_site, room, rtu_bus, shipped_profiles
from tests.test_gateway_provisioning import simulated_centre, until_stored

PROFILES = shipped_profiles()
TOPICS = Topics()
LIMIT_S = 2.0


def wall_ms() -> int:
    return int(time.time() * 1000)


class MovableClock:
    """Wall time plus an offset the test sets (a Pi whose clock is wrong)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return wall_ms() + self.offset_ms


@contextlib.asynccontextmanager
async def centre(tmp_path: Path, broker: Broker) -> AsyncIterator[tuple[SiteConfig, Hub]]:
    plain = one_gateway_site(
        rooms=[room("chill", "Chilled")],
        buses=[rtu_bus("rs485", "/dev/ttyUSB0")],
        devices=[device("probe", "xy-md02", bus="rs485", unit_id=1, room="chill")],
    )
    base = load_site(tmp_path / "plain.yaml", plain, PROFILES)
    async with Simulation(base, PROFILES, seed=3) as sim:
        live = simulated_config(base, sim.endpoints())
        live["uplink"] = {"broker": broker.url}
        live["agent"] = {"batch_interval": "200ms", "health_interval": "1s"}
        live["hub"] = {"data_dir": str(tmp_path / "hub"), "clock_probe_interval": "300ms"}
        live["alert_rules"] = [
            {
                "id": "gw-clock",
                "kind": "gateway_clock",
                "max_offset": f"{LIMIT_S:g}s",
                "severity": "warning",
            }
        ]
        (tmp_path / "site.yaml").write_text(yaml.safe_dump(live, sort_keys=False))
        cfg = load_site(tmp_path / "site.yaml", live, PROFILES)
        async with running_hub_service(cfg, PROFILES, tmp_path / "hub", broker.url) as hub:
            yield cfg, hub


def firing(hub: Hub) -> list[str]:
    return [a.kind for a in hub.alerts.store.query(states=["firing"], limit=10)]


@pytest.mark.slow
async def test_the_hub_measures_a_gateway_clock_and_alerts_when_it_is_off(
    tmp_path: Path, mosquitto: Broker
) -> None:
    pi = MovableClock()
    async with centre(tmp_path, mosquitto) as (cfg, hub):
        agent = Agent(cfg, "gw1", PROFILES, data_dir=tmp_path / "agent", clock=MsClock(pi))
        task = asyncio.create_task(agent.run(), name="agent")
        try:

            def offset() -> float | None:
                state = hub.registry.get("gw1")
                return None if state is None or state.clock is None else state.clock.offset_ms

            def delay() -> int | None:
                state = hub.registry.get("gw1")
                return None if state is None or state.clock is None else state.clock.delay_ms

            # The offset is known within half the round trip: wait for a quick exchange
            # (a loaded CI machine may take one or two probes to get one).
            await until(lambda: (delay() or 999) < 100, "a quick exchange", within=20)
            measured = offset()
            assert measured is not None
            assert abs(measured) < 50, f"{measured} ms on loopback, against a right clock"
            status, out = await get(f"{hub.url}/api/gateways/gw1")
            assert status == 200, out
            assert abs(out["clock_offset_ms"]) < 50
            assert firing(hub) == []

            pi.offset_ms = 5_000  # the Pi's clock jumps 5 s ahead
            await until(lambda: abs((offset() or 0) - 5_000) < 50, "the 5 s measured", within=20)
            await until(lambda: firing(hub) == ["gateway_clock"], "the alert", within=10)
            alert = hub.alerts.store.query(states=["firing"], limit=1)[0]
            assert alert.gateway == "gw1"
            assert alert.value == pytest.approx(5.0, abs=0.05)
            assert alert.limit_value == LIMIT_S
            status, page = await get(f"{hub.url}/gateways")
            assert status == 200
            assert re.search(r'<td class="clock">\+(4\.9[5-9]|5\.0[0-4])\d s ± \d+ ms</td>', page)

            pi.offset_ms = 0  # NTP put it right
            await until(lambda: abs(offset() or 99) < 50, "measured right again", within=20)
            await until(lambda: firing(hub) == [], "the alert resolved", within=10)
            assert agent.uplink.stats.probes_answered >= 3
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def test_offset_and_delay_from_the_four_timestamps() -> None:
    n, t1 = decode_time_probe(encode_time_probe(7, 1_000))
    assert (n, t1) == (7, 1_000)
    # the gateway is 500 ms ahead; 20 ms each way; it answers 5 ms after receiving
    reply = decode_time_reply(encode_time_reply(7, 1_000, 1_520, 1_525))
    assert reply.offset_ms(1_045) == 500
    assert reply.delay_ms(1_045) == 40
    with pytest.raises(ProtocolError, match="bad 't2'"):
        decode_time_reply(encode_time_probe(7, 1_000))
    with pytest.raises(ProtocolError, match=r"answered \(t3\) before it was asked"):
        decode_time_reply(encode_time_reply(7, 1_000, 1_520, 1_500))
    with pytest.raises(ProtocolError):
        decode_time_reply(b"\xff" * 300)


def test_a_reply_to_no_probe_of_ours_changes_nothing() -> None:
    now = [10_000]
    probes = ClockProbes(Topics(), lambda: now[0])
    topic, payload = probes.probe("gw1")
    assert topic == "coldchain/v1/gw/gw1/time"
    n, t1 = decode_time_probe(payload)
    forged = encode_time_reply(n + 1, t1, 99_000, 99_000)
    assert probes.on_reply("gw1", forged) is None
    assert probes.stray_replies == 1
    now[0] = 10_040
    sample = probes.on_reply("gw1", encode_time_reply(n, t1, 10_020, 10_020))
    assert sample is not None
    assert (sample.offset_ms, sample.delay_ms) == (0, 40)
    assert probes.on_reply("gw1", encode_time_reply(n, t1, 10_020, 10_020)) is None, "once"
    # a quicker exchange wins over a later, slower one (NTP's clock filter)
    _, p2 = probes.probe("gw1")
    n2, t2 = decode_time_probe(p2)
    now[0] = 10_240
    slow = probes.on_reply("gw1", encode_time_reply(n2, t2, 10_190, 10_190))
    assert slow is not None
    assert (slow.offset_ms, slow.delay_ms) == (0, 40), "the 200 ms exchange is not trusted"


@pytest.mark.slow
async def test_a_broker_whose_roles_predate_clock_probes_still_carries_telemetry(
    tmp_path: Path, secured_mosquitto: SecuredBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Roles made before the ``time`` topics existed refuse their subscriptions: the agent
    and the hub say so once and stream on, without clock measurement."""
    broker = secured_mosquitto
    async with simulated_centre(tmp_path, broker) as (_site, cfg):
        async with DynSec(broker.host, broker.port, *broker.admin) as ds:
            gw1 = await Fleet(ds, TOPICS).provision("gw1")
            await ds.call(  # the roles as an older coldchain made them
                {
                    "command": "removeRoleACL",
                    "rolename": gateway_role("gw1"),
                    "acltype": "subscribePattern",
                    "topic": TOPICS.topic("gw1", "time"),
                },
                {
                    "command": "removeRoleACL",
                    "rolename": HUB_ROLE,
                    "acltype": "subscribePattern",
                    "topic": TOPICS.all("time/reply"),
                },
            )
        async with running_hub_service(
            cfg, PROFILES, tmp_path / "hub", broker.url, password=broker.hub[1]
        ) as hub:
            agent = Agent(
                cfg, "gw1", PROFILES, data_dir=tmp_path / "outbox", uplink_password=gw1.password
            )
            task = asyncio.create_task(agent.run(), name="agent-gw1")
            try:
                await until_stored(hub, "gw1's readings never reached the hub")
                n = agent.uplink.stats.readings_acked
                await until(lambda: agent.uplink.stats.readings_acked > n, "more acks")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    said = [r.getMessage() for r in caplog.records]
    assert sum("no clock probes from the hub" in m for m in said) == 1, said
    assert not any("no commands from the hub" in m for m in said), "its role has cmd"
    assert sum("no gateway clock measurements" in m for m in said) == 1, said
    assert agent.uplink.stats.probes_answered == 0


def test_with_two_brokers_the_probe_that_reached_the_gateway_is_answered() -> None:
    """The hub probes through every broker; the gateway answers the probe that reached it
    (here the first of the round), which still counts; the other is forgotten with it."""
    now = [10_000]
    probes = ClockProbes(Topics(), lambda: now[0])
    n1, t1 = decode_time_probe(probes.probe("gw1")[1])  # through broker a: reaches the gateway
    n2, t2 = decode_time_probe(probes.probe("gw1")[1])  # through broker b: lost
    now[0] = 10_030
    sample = probes.on_reply("gw1", encode_time_reply(n1, t1, 10_015, 10_015))
    assert sample is not None
    assert sample.delay_ms == 30
    assert probes.on_reply("gw1", encode_time_reply(n2, t2, 10_016, 10_016)) is None
    assert probes.stray_replies == 1
