"""Gateway identities on a real Mosquitto with the dynamic security plugin: each gateway
publishes and hears only its own topics, nobody connects anonymously, a revoked gateway is
cut off at once and refused after, a rotation overlaps until the technician retires the old
password, and the hub's, the tools' and the admin's identities do only their own jobs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from coldchain.protocol.topics import Topics
from coldchain.supervise import Client as SupervisedClient
from gateway.dynsec import (
    CONTROL,
    DynSec,
    DynSecError,
    Fleet,
    Identity,
    client_gateway,
    fleet_on,
)
from tests.services import Broker, SecuredBroker, identities, secured_broker

TOPICS = Topics()
FAILED = 128  # the SUBACK code of a refused subscription (MQTT 3.1.1)


@contextlib.asynccontextmanager
async def admin(broker: SecuredBroker) -> AsyncIterator[Fleet]:
    async with DynSec(broker.host, broker.port, *broker.admin, timeout=5) as ds:
        yield Fleet(ds, TOPICS)


def client(broker: SecuredBroker, who: tuple[str, str] | Identity | None) -> aiomqtt.Client:
    if isinstance(who, Identity):
        who = (who.username, who.password)
    user, password = who if who else (None, None)
    return aiomqtt.Client(broker.host, broker.port, username=user, password=password, timeout=5)


async def sub(c: aiomqtt.Client, topic: str) -> int:
    """Subscribe at QoS 1: the QoS granted, or 128 when refused."""
    (code,) = await c.subscribe(topic, qos=1)
    return code if isinstance(code, int) else int(code.value)


async def dropped(c: aiomqtt.Client, within: float) -> bool:
    """Whether the broker closes ``c``'s connection within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            async for _ in c.messages:
                pass
    except aiomqtt.MqttError:
        return True
    except TimeoutError:
        return False
    return False


async def refused(broker: SecuredBroker, who: tuple[str, str] | Identity | None) -> bool:
    """Whether the broker refuses to let ``who`` connect, as not authorised."""
    try:
        async with client(broker, who):
            return False
    except aiomqtt.MqttError as exc:
        return bool(re.search(r"[Nn]ot authori[sz]ed|[Bb]ad user", str(exc)))


async def next_message(c: aiomqtt.Client, within: float = 5) -> aiomqtt.Message:
    async with asyncio.timeout(within):
        async for m in c.messages:
            return m
    raise AssertionError("no message")


async def test_each_gateway_publishes_and_hears_only_its_own_topics(
    secured_mosquitto: SecuredBroker,
) -> None:
    broker = secured_mosquitto
    async with admin(broker) as fleet:
        a = await fleet.provision("gw-a")
        b = await fleet.provision("gw-b")
        assert (a.username, b.username) == ("gw-a", "gw-b")
        assert len(a.password) >= 32  # 192 random bits
        assert a.password != b.password
        listed = await fleet.clients()
        assert {g: c.usernames for g, c in listed.items()} == {
            "gw-a": ("gw-a",),
            "gw-b": ("gw-b",),
        }
    async with client(broker, broker.hub) as hub, client(broker, a) as ga, client(broker, b) as gb:
        for kind in ("telemetry", "status", "health", "alerts", "config/ack", "time/reply"):
            assert await sub(hub, TOPICS.all(kind)) == 1
        # B forges A's telemetry: dropped by the broker; B's own goes through
        await gb.publish(TOPICS.topic("gw-a", "telemetry"), b"forged", qos=1)
        await gb.publish(TOPICS.topic("gw-a", "status"), b"offline", qos=1, retain=True)
        await gb.publish(TOPICS.topic("gw-b", "telemetry"), b"own", qos=1)
        m = await next_message(hub)
        assert (str(m.topic), m.payload) == (TOPICS.topic("gw-b", "telemetry"), b"own")

        # B may not hear A's acks or config, nor anyone's telemetry; A hears its own
        assert await sub(gb, TOPICS.topic("gw-a", "ack")) == FAILED
        assert await sub(gb, TOPICS.topic("gw-a", "config")) == FAILED
        assert await sub(gb, TOPICS.all("telemetry")) == FAILED
        assert await sub(gb, TOPICS.all("telemetry", share="sniff")) == FAILED
        # the hub may share its subscriptions among ingest workers (hub.share_group)
        assert await sub(hub, TOPICS.all("status", share="ingest")) == 1
        assert await sub(ga, TOPICS.topic("gw-a", "ack")) == 1
        # nobody but the hub acks: B forging A's ack, A acking itself, both dropped
        await gb.publish(TOPICS.topic("gw-a", "ack"), b"forged by b", qos=1)
        await ga.publish(TOPICS.topic("gw-a", "ack"), b"forged by a", qos=1)
        await hub.publish(TOPICS.topic("gw-a", "ack"), b"from the hub", qos=1)
        m = await next_message(ga)
        assert m.payload == b"from the hub"
        # clock probes: only the hub asks, and B cannot answer for A
        assert await sub(ga, TOPICS.topic("gw-a", "time")) == 1
        assert await sub(gb, TOPICS.topic("gw-a", "time")) == FAILED
        await gb.publish(TOPICS.topic("gw-a", "time"), b"probe by b", qos=1)
        await hub.publish(TOPICS.topic("gw-a", "time"), b"probe by the hub", qos=1)
        assert (await next_message(ga)).payload == b"probe by the hub"
        assert await sub(hub, TOPICS.all("time/reply")) == 1
        await gb.publish(TOPICS.topic("gw-a", "time/reply"), b"forged reply", qos=1)
        await ga.publish(TOPICS.topic("gw-a", "time/reply"), b"a's reply", qos=1)
        m = await next_message(hub)
        assert (str(m.topic), m.payload) == (TOPICS.topic("gw-a", "time/reply"), b"a's reply")
        # commissioning commands: only the hub sends them, only A answers its own
        assert await sub(ga, TOPICS.topic("gw-a", "cmd")) == 1
        await gb.publish(TOPICS.topic("gw-a", "cmd"), b"command by b", qos=1)
        await hub.publish(TOPICS.topic("gw-a", "cmd"), b"command by the hub", qos=1)
        assert (await next_message(ga)).payload == b"command by the hub"
        assert await sub(hub, TOPICS.all("cmd/reply")) == 1
        await gb.publish(TOPICS.topic("gw-a", "cmd/reply"), b"forged answer", qos=1)
        await ga.publish(TOPICS.topic("gw-a", "cmd/reply"), b"a's answer", qos=1)
        m = await next_message(hub)
        assert (str(m.topic), m.payload) == (TOPICS.topic("gw-a", "cmd/reply"), b"a's answer")

        # a gateway cannot use the control API: its commands are dropped unanswered
        assert await sub(gb, CONTROL + "/response") == FAILED
        await gb.publish(
            CONTROL,
            json.dumps({"commands": [{"command": "deleteClient", "username": "gw-a"}]}),
            qos=1,
        )
    async with admin(broker) as fleet:
        assert "gw-a" in await fleet.clients()


@pytest.mark.parametrize(
    "who", [None, ("gw-a", "wrong password"), ("nobody", "x")], ids=["anonymous", "bad", "unknown"]
)
async def test_a_client_without_a_valid_identity_is_refused(
    secured_mosquitto: SecuredBroker, who: tuple[str, str] | None
) -> None:
    async with admin(secured_mosquitto) as fleet:
        await fleet.provision("gw-a")
    assert await refused(secured_mosquitto, who)


async def test_the_tools_identity_reads_and_cannot_write(
    secured_mosquitto: SecuredBroker,
) -> None:
    broker = secured_mosquitto
    async with admin(broker) as fleet:
        a = await fleet.provision("gw-a")
    async with (
        client(broker, broker.reader) as tools,
        client(broker, a) as ga,
        client(broker, broker.hub) as hub,
    ):
        assert await sub(tools, f"{broker.prefix}/#") == 1
        assert await sub(hub, TOPICS.all("health")) == 1
        await tools.publish(TOPICS.topic("gw-a", "health"), b"forged by tools", qos=1)
        await ga.publish(TOPICS.topic("gw-a", "health"), b"real", qos=1)
        assert (await next_message(hub)).payload == b"real"
        assert (await next_message(tools)).payload == b"real"
        # the admin identity administers only: it cannot publish as a gateway
    async with client(broker, broker.admin) as adm, client(broker, broker.hub) as hub:
        await sub(hub, TOPICS.all("telemetry"))
        await adm.publish(TOPICS.topic("gw-a", "telemetry"), b"forged by admin", qos=1)
        async with client(broker, a) as ga:
            await ga.publish(TOPICS.topic("gw-a", "telemetry"), b"real", qos=1)
        assert (await next_message(hub)).payload == b"real"


async def test_a_revoked_gateway_is_cut_off_at_once_and_refused_after(
    secured_mosquitto: SecuredBroker,
) -> None:
    broker = secured_mosquitto
    async with admin(broker) as fleet:
        a = await fleet.provision("gw-a")
        b = await fleet.provision("gw-b")
        async with client(broker, a) as ga, client(broker, b) as gb:
            await sub(ga, TOPICS.topic("gw-a", "config"))
            t0 = time.monotonic()
            assert await fleet.revoke("gw-a") == ["gw-a"]
            assert await dropped(ga, within=2)
            assert time.monotonic() - t0 < 2
            await gb.publish(TOPICS.topic("gw-b", "health"), b"still here", qos=1)  # B is not
        assert "gw-a" not in await fleet.clients()
        assert await fleet.revoke("gw-a") == []  # again: nothing left, no error
    assert await refused(broker, a)


async def test_a_rotation_overlaps_until_the_old_password_is_retired(
    secured_mosquitto: SecuredBroker,
) -> None:
    broker = secured_mosquitto
    async with admin(broker) as fleet:
        old = await fleet.provision("gw-a")
        with pytest.raises(DynSecError, match="already has a broker identity"):
            await fleet.provision("gw-a")
        new = await fleet.rotate("gw-a")
        assert new.username == "gw-a.2"
        assert new.password != old.password
        assert (await fleet.clients())["gw-a"].usernames == ("gw-a", "gw-a.2")
        async with client(broker, broker.hub) as hub:
            await sub(hub, TOPICS.all("telemetry"))
            async with client(broker, old) as g_old, client(broker, new) as g_new:
                # both work during the overlap, with the same rights
                await g_old.publish(TOPICS.topic("gw-a", "telemetry"), b"old", qos=1)
                assert (await next_message(hub)).payload == b"old"
                await g_new.publish(TOPICS.topic("gw-a", "telemetry"), b"new", qos=1)
                assert (await next_message(hub)).payload == b"new"
                assert await fleet.retire("gw-a") == ["gw-a"]
                assert await dropped(g_old, within=2)
                await g_new.publish(TOPICS.topic("gw-a", "telemetry"), b"still new", qos=1)
                assert (await next_message(hub)).payload == b"still new"
        assert (await fleet.clients())["gw-a"].usernames == ("gw-a.2",)
        assert (await fleet.rotate("gw-a")).username == "gw-a.3"
        with pytest.raises(DynSecError, match="no broker identity"):
            await fleet.rotate("gw-nobody")
    assert await refused(broker, old)


async def test_a_wrong_admin_identity_is_a_clear_error(secured_mosquitto: SecuredBroker) -> None:
    broker = secured_mosquitto
    with pytest.raises(DynSecError, match="cannot connect to the broker as its admin"):
        async with DynSec(broker.host, broker.port, "coldchain-admin", "wrong", timeout=5):
            pass
    # the hub's identity connects but may not use the control API
    with pytest.raises(DynSecError, match="may not use the broker's dynamic security API"):
        async with DynSec(broker.host, broker.port, *broker.hub, timeout=1):
            pass


def test_client_names_map_to_gateways() -> None:
    assert client_gateway("gw1") == ("gw1", 1)
    assert client_gateway("gw1.12") == ("gw1", 12)
    assert client_gateway("coldchain-hub") == ("coldchain-hub", 1)  # role decides, not name
    for bad in ("GW1", "gw1.0", "gw1.x", "", ".2", "gw1.2.3"):
        assert client_gateway(bad) is None


async def test_a_refused_subscription_is_an_error_not_silence(
    secured_mosquitto: SecuredBroker,
) -> None:
    """coldchain's own MQTT client (agent uplink, hub ingest) raises when the broker refuses
    a subscription, so a wrong role shows in the log and the reconnect loop instead of a
    client that hears nothing."""
    broker = secured_mosquitto
    async with admin(broker) as fleet:
        b = await fleet.provision("gw-b")
    async with SupervisedClient(broker.host, broker.port, username=b.username,
                                password=b.password, timeout=5) as gb:  # fmt: skip
        await gb.subscribe(TOPICS.topic("gw-b", "ack"), qos=1)  # its own: fine
        with pytest.raises(aiomqtt.MqttError, match=r"refused the subscription to .*gw-a/ack"):
            await gb.subscribe(TOPICS.topic("gw-a", "ack"), qos=1)


async def test_a_broker_without_the_plugin_is_named_as_such(mosquitto: Broker) -> None:
    async with DynSec(mosquitto.host, mosquitto.port, "coldchain-admin", "x", timeout=1) as ds:
        with pytest.raises(DynSecError, match=r"did not answer .* is the plugin loaded"):
            await Fleet(ds, TOPICS).clients()


async def test_with_a_standby_broker_every_change_is_made_on_both(tmp_path: Path) -> None:
    """A gateway that moves to the standby broker must be let in there with the same name
    and password, and cut off there too: provision, rotate, retire and revoke act on both
    brokers (set up with the same admin, as ``docs/availability.md`` says). A client the
    standby refuses is taken back from the first broker, and the error names it."""
    who = identities()
    with secured_broker(tmp_path / "a", who) as a, secured_broker(tmp_path / "b", who) as b:
        urls = [a.url, b.url]
        async with fleet_on(urls, *a.admin, TOPICS, ssl.create_default_context) as fleet:
            first = await fleet.provision("gw1")
            assert not await refused(a, first)
            assert not await refused(b, first)
            second = await fleet.rotate("gw1")
            assert await fleet.retire("gw1") == ["gw1"]
            for broker in (a, b):
                assert await refused(broker, first)
                assert not await refused(broker, second)
            async with DynSec(b.host, b.port, *b.admin, timeout=5) as only_b:
                await Fleet(only_b, TOPICS).provision("gw2")  # left on the standby alone
            with pytest.raises(DynSecError, match="createClient gw2"):
                await fleet.provision("gw2")
            assert "gw2" not in await fleet.clients()  # taken back from the first broker
            assert await fleet.revoke("gw1") == ["gw1.2"]
            for broker in (a, b):
                assert await refused(broker, second)
    with pytest.raises(DynSecError, match=re.escape(f"as its admin ({a.host}:{a.port})")):
        async with fleet_on(urls, *a.admin, TOPICS, ssl.create_default_context):
            pass
