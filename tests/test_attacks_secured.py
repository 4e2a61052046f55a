"""Issue 13's attacks, replayed against the secured setup: a real Mosquitto with the dynamic
security plugin, the real hub, gw1's agent streaming with its identity and message key, and
an attacker holding another gateway's identity (a Pi stolen from another store) or none.
Every attack fails: nothing is stored from the forger, nothing deleted from gw1's outbox,
no false alarm raised, no notice recorded, gw1 stays online."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiomqtt
import pytest

from coldchain.protocol.edge import encode_notices
from coldchain.protocol.messages import Batch, encode_ack, encode_batch
from coldchain.protocol.topics import Topics
from coldchain.reading import Reading
from coldchain.supervise import Client
from edge_agent.agent import Agent
from gateway.dynsec import DynSec, Fleet
from gateway.keys import GatewayKeys
from tests.agentkit import Recording
from tests.hubkit import running_hub_service
from tests.services import SecuredBroker, until
from tests.test_edge_fallback import NOTICE
from tests.test_gateway_provisioning import PROBE, PROFILES, simulated_centre, until_stored

TOPICS = Topics()
MIN = 60_000


@pytest.mark.slow
async def test_the_attacks_of_issue_13_fail_against_the_secured_setup(
    tmp_path: Path, secured_mosquitto: SecuredBroker
) -> None:
    broker = secured_mosquitto
    async with simulated_centre(tmp_path, broker) as (_site, cfg):
        async with DynSec(broker.host, broker.port, *broker.admin) as ds:
            fleet = Fleet(ds, TOPICS)
            gw1 = await fleet.provision("gw1")
            thief = await fleet.provision("gw-stolen")  # another store's Pi, in other hands
        keys = GatewayKeys(tmp_path / "hub" / "hub.db")
        key = keys.create("gw1")
        keys.close()
        async with running_hub_service(
            cfg, PROFILES, tmp_path / "hub", broker.url, password=broker.hub[1]
        ) as hub:
            agent = Agent(
                cfg,
                "gw1",
                PROFILES,
                data_dir=tmp_path / "outbox",
                uplink_password=gw1.password,
                message_key=key,
            )
            rec = Recording(agent)
            task = asyncio.create_task(agent.run(), name="agent-gw1")
            try:
                await until_stored(hub, "gw1's agent never reached the hub")
                await until(
                    lambda: getattr(hub.registry.get("gw1"), "state", None) == "online", "online"
                )
                await attack(broker, thief.username, thief.password)
                await asyncio.sleep(2.0)  # time for anything forged to land, if it could

                # nothing stored from the forger: no 40 °C, nothing stamped ahead
                now = int(time.time() * 1000)
                stored = await hub.store.raw(PROBE, now - 30 * MIN, now + 24 * 60 * MIN)
                assert stored, "gw1's own readings"
                assert all(r.value != 40.0 and r.ts_ms <= now + 5000 for r in stored)
                # no false alarm, no forged notice recorded, gw1 still online
                assert hub.alerts.store.query(states=None, limit=10) == []
                assert getattr(hub.registry.get("gw1"), "state", None) == "online"
                # nothing deleted on a forged ack: every reading gw1 took reaches the store
                n = len(rec.readings)
                await until(
                    lambda: agent.uplink.stats.readings_acked >= n, "gw1's own acks", within=20
                )
                assert agent.uplink.stats.forged_acks == 0  # the broker dropped them first
                for (series, ts), r in list(rec.readings.items())[:n]:
                    got = await hub.store.raw(series, ts, ts + 1)
                    assert [x.value for x in got] == [r.value], (series, ts)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


async def attack(broker: SecuredBroker, user: str, password: str) -> None:
    """What the issue's attacker did on the open broker, with a stolen gateway's identity."""
    # anonymous: refused outright
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(broker.host, broker.port, timeout=5):
            pass
    now = int(time.time() * 1000)
    forged = [Reading(PROBE, now - m * MIN, 40.0) for m in range(20, 0, -1)]
    forged.append(Reading(PROBE, now + 23 * 60 * MIN, 40.0))  # stamped 23 h ahead
    async with aiomqtt.Client(
        broker.host, broker.port, username=user, password=password, timeout=5
    ) as c:
        batch = Batch("gw1", "depot", "forger-epoch", 1, forged)
        await c.publish(TOPICS.topic("gw1", "telemetry"), encode_batch(batch), qos=1)
        offline = json.dumps({"v": 1, "state": "offline", "ts": now, "version": "0.1.0"})
        await c.publish(TOPICS.topic("gw1", "status"), offline.encode(), qos=1, retain=True)
        await c.publish(TOPICS.topic("gw1", "alerts"), encode_notices("gw1", [NOTICE]), qos=1)
        # acks for gw1's batches, as a sniffer would send them while the hub is down
        for seq in range(1, 50):
            await c.publish(TOPICS.topic("gw1", "ack"), encode_ack("any", [seq]), qos=1)
        # and it cannot sniff gw1's telemetry to learn the real epoch and seqs
        with pytest.raises(aiomqtt.MqttError, match="refused"):
            async with Client(
                broker.host, broker.port, username=user, password=password, timeout=5
            ) as sniffer:
                await sniffer.subscribe(TOPICS.topic("gw1", "telemetry"), qos=1)
