"""Acks and edge notices authenticated with the gateway's message key (defence in depth,
docs/protocol.md): even on an open broker, an agent deletes nothing on an ack the hub did not
sign, and the hub records no notice the gateway did not sign; without a key both behave as
protocol v1 always did."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest

from coldchain.protocol.auth import MAC_BYTES, new_key, read_key
from coldchain.protocol.edge import decode_notices, encode_notices
from coldchain.protocol.messages import (
    ProtocolError,
    decode_ack,
    encode_ack,
    pack,
    unpack,
)
from coldchain.protocol.topics import Topics
from coldchain.protocol.wire2 import TableCache, decode_any
from tests.agentkit import Recording, agents, county
from tests.alertkit import PROFILES, T0
from tests.services import Broker, until
from tests.test_edge_fallback import NOTICE, fallback_config
from tests.testhub import running_hub

GW = "gw-centre-cold"
KEY = new_key()
T = T0 + 3_600_000  # the hub's clock when the notices arrive


def test_a_signed_ack_verifies_only_for_its_gateway_key_and_content() -> None:
    signed = encode_ack("e1", [3, 4], key=KEY, gateway="gw1")
    assert decode_ack(signed, key=KEY, gateway="gw1") == ("e1", [3, 4])
    assert decode_ack(signed) == ("e1", [3, 4])  # an agent without a key ignores the MAC
    unsigned = encode_ack("e1", [3, 4])
    forged = [
        (unsigned, "no MAC"),
        (encode_ack("e1", [3, 4], key=new_key(), gateway="gw1"), "another key"),
        (encode_ack("e1", [3, 4], key=KEY, gateway="gw2"), "another gateway's"),
        (pack({"v": 1, "epoch": "e1", "seqs": [3, 4, 5], "mac": b"\0" * MAC_BYTES}), "zeros"),
    ]
    for payload, what in forged:
        with pytest.raises(ProtocolError, match="MAC is missing or does not verify") as err:
            decode_ack(payload, key=KEY, gateway="gw1")
        assert err.value.reason == "bad_mac", what
    # the MAC covers the content: the same MAC on other seqs does not verify
    msg = {"v": 1, "epoch": "e1", "seqs": [3, 4]}
    mac = unpack(signed, max_bytes=1000, max_items=100)["mac"]
    tampered = pack({**msg, "seqs": [3, 4, 99], "mac": mac})
    with pytest.raises(ProtocolError, match="MAC"):
        decode_ack(tampered, key=KEY, gateway="gw1")


def test_signed_notices_verify_and_forged_ones_are_refused() -> None:
    n = NOTICE
    signed = encode_notices("gw1", [n], key=KEY)
    assert decode_notices(signed, gateway="gw1", now_ms=T, key=KEY).notices == (n,)
    for payload in (encode_notices("gw1", [n]), encode_notices("gw1", [n], key=new_key())):
        with pytest.raises(ProtocolError, match="MAC is missing or does not verify") as err:
            decode_notices(payload, gateway="gw1", now_ms=T, key=KEY)
        assert err.value.reason == "bad_mac"
    # without a key at the hub (a gateway not provisioned) notices are taken as before
    assert decode_notices(encode_notices("gw1", [n]), gateway="gw1", now_ms=T).notices == (n,)


def test_a_key_file_that_is_not_a_key_is_refused_by_name(tmp_path: Path) -> None:
    good = tmp_path / "message-key"
    good.write_text(KEY.hex() + "\n")
    assert read_key(good) == KEY
    for text in ("", "zz" * 32, KEY.hex()[:-2]):
        bad = tmp_path / "bad"
        bad.write_text(text)
        with pytest.raises(ValueError, match="not a message key"):
            read_key(bad)


async def test_an_agent_with_a_key_deletes_nothing_on_a_forged_ack_even_on_an_open_broker(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """The attack of issue 13: a client sniffs the telemetry and acks every batch while the
    hub is down. With the gateway's key, the agent ignores those acks and counts them; once
    the real hub acks (signed), everything arrives and nothing was lost."""
    topics = Topics()
    async with (
        county(tmp_path, mosquitto, poll="1s", ack_timeout="1s") as c,
        running_hub(mosquitto.host, mosquitto.port) as hub,
        agents(c, tmp_path, only=[GW], message_key=KEY) as (agent,),
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="forger") as forger,
    ):
        hub.acking = False  # the hub is down
        rec = Recording(agent)
        tables = TableCache()  # the forger reads v2 as the hub would
        await forger.subscribe(topics.topic(GW, "telemetry"), qos=1)
        forged = 0
        async with asyncio.timeout(20):
            async for m in forger.messages:
                batch = decode_any(bytes(m.payload), gateway=GW, now_ms=T * 2, tables=tables)
                for payload in (
                    encode_ack(batch.epoch, [batch.seq]),
                    encode_ack(batch.epoch, [batch.seq], key=new_key(), gateway=GW),
                ):
                    await forger.publish(topics.topic(GW, "ack"), payload, qos=1)
                    forged += 1
                if forged >= 6:
                    break
        await until(lambda: agent.uplink.stats.forged_acks >= 6, "forged acks counted")
        assert agent.uplink.stats.readings_acked == 0
        assert (await agent.outbox.unacked()) != []  # nothing deleted

        hub.keys[GW] = KEY  # the real hub comes back and signs its acks
        hub.acking = True
        await until(lambda: agent.uplink.stats.readings_acked > 0, "signed acks", within=20)
        await until(lambda: set(rec.readings) <= set(hub.store), "every reading stored", 20)
        assert agent.uplink.stats.bad_acks == 0


async def test_the_hub_records_only_notices_the_gateway_signed(tmp_path: Path) -> None:
    """The forged edge notice of issue 13 ("the gateway already texted the first level"),
    against the real hub with gw1's key: refused, counted and logged; the signed one is
    recorded and acknowledged."""
    from hub.service import Hub

    hub = Hub(
        fallback_config("/dev/null"),
        PROFILES,
        data_dir=tmp_path / "hub",
        broker="mqtt://127.0.0.1:1",
        listen="127.0.0.1:0",
    )
    key = hub.keys.create("gw1")
    topic = hub.topics.topic("gw1", "alerts")
    assert hub.on_message(topic, encode_notices("gw1", [NOTICE])) is None
    assert hub.on_message(topic, encode_notices("gw1", [NOTICE], key=new_key())) is None
    assert hub.ingest.stats.rejected_messages[("alerts", "bad_mac")] == 2
    assert hub.alerts.store.query(states=None, limit=10) == []
    replies = hub.on_message(topic, encode_notices("gw1", [NOTICE], key=key))
    assert replies is not None
    assert [t for t, _ in replies] == [hub.topics.topic("gw1", "alerts/ack")]
    (stored,) = hub.alerts.store.query(states=None, limit=10)
    assert stored.key == NOTICE.key
    hub.keys.delete("gw1")  # not provisioned (any more): unsigned notices as in v1
    assert hub.on_message(topic, encode_notices("gw1", [NOTICE])) is not None
    await hub.alerts.aclose()


async def test_an_agent_with_a_key_applies_only_config_revisions_the_hub_signed(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """A forged config revision (unsigned, or signed with another key) on an open broker is
    counted and dropped: the agent polls on as it was; a signed one is applied."""
    from coldchain.config.slices import gateway_slice, slice_text
    from coldchain.protocol.revisions import encode_revision

    topics = Topics()
    async with (
        county(tmp_path, mosquitto, poll="1s") as c,
        agents(c, tmp_path, only=[GW], message_key=KEY) as (agent,),
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="forger") as forger,
    ):
        await until(lambda: agent.uplink.stats.connected, "connected")
        doc = gateway_slice(c.cfg, GW, c.profiles)
        doc["gateway"]["devices"] = []  # stop polling everything
        text = slice_text(doc)
        forged = (encode_revision(9, text), encode_revision(9, text, key=new_key(), gateway=GW))
        for n, payload in enumerate(forged, 1):  # one at a time: a retained one replaces
            await forger.publish(topics.topic(GW, "config"), payload, qos=1, retain=True)

            def counted(n: int = n) -> bool:
                return agent.uplink.stats.bad_revisions >= n

            await until(counted, "forged one counted")
        assert agent.reconfig.last_rev == 0
        assert agent.pollers  # polling on
        signed = encode_revision(9, text, key=KEY, gateway=GW)
        await forger.publish(topics.topic(GW, "config"), signed, qos=1, retain=True)
        await until(lambda: agent.reconfig.applied_rev == 9, "the signed revision applied")
        assert not agent.pollers
