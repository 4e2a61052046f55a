"""Status and health messages at the hub: parsed with bounded size and depth into validated
models before anything else sees them; only validated reports are stored, and stored rows of
any hub version read back without breaking a page; one bad message never drops the ingest's
MQTT session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest

from coldchain.config.loader import load_site_config
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.messages import Batch, ProtocolError, decode_ack, encode_batch
from coldchain.protocol.status import decode_health, decode_status
from coldchain.protocol.topics import Topics
from coldchain.reading import Reading, SeriesId
from coldchain.store.sqlite.store import SqliteStore
from edge_agent.buffer import Stats
from edge_agent.health import report
from edge_agent.uplink import UplinkStats
from firmware_configs import SITES_DIR
from gateway.ingest import Ingest, Replies, run_ingest
from gateway.registry import Registry
from tests.services import Broker, until


def agent_report() -> dict[str, object]:
    """A health report exactly as the agent writes it, with one Modbus and one MQTT device."""
    buffer = Stats(
        pending=12,
        batches=3,
        batches_in_flight=1,
        oldest_ts_ms=time.time_ns() // 1_000_000 - 5000,
        used_bytes=4096,
        thinned_total=0,
        dropped_total=0,
    )
    doc = report(
        started=time.monotonic(),
        buffer=buffer,
        uplink=UplinkStats(),
        pollers=[],
        inputs=[],
        suppressed=3,
    )
    doc["devices"] = {
        "cr1-probe": {
            "bus": "rs485-1",
            "polls": 10,
            "ok": 9,
            "success": 0.9,
            "requests": 10,
            "blocks": 1,
            "failures_in_a_row": 0,
            "last_error": "timeout " * 200,
        },
        "door-1": {
            "bus": "zigbee",
            "messages": 4,
            "malformed": 0,
            "last_seen_ms": 1764300000000,
            "last_error": None,
        },
    }
    return doc


def test_the_agents_own_health_report_validates() -> None:
    health = decode_health(json.dumps(agent_report()).encode())
    assert health.backlog == 12
    assert health.poll_success() == {"cr1-probe": 0.9}
    assert health.devices is not None
    error = health.devices["cr1-probe"].last_error
    assert error is not None
    assert len(error) == 500  # shortened, not refused
    assert error.endswith("…")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"buffer":[1]}', "health: buffer: Input should be a valid dictionary"),
        (b'{"buffer":{"pending":true}}', "health: buffer.pending: Input should be a valid integer"),
        (
            b'{"buffer":{"pending":-1}}',
            "buffer.pending: Input should be greater than or equal to 0",
        ),
        (b'{"devices":{"Bad Id":{}}}', "devices.Bad Id.[key]: String should match pattern"),
        (b'{"devices":{"p1":{"success":1.5}}}', "devices.p1.success: Input should be less than"),
        (b'{"v":2}', "health: v: Input should be 1"),
        (b"[1]", "health: Input should be a valid dictionary"),
        (b'{"uptime_s": NaN}', "health: not JSON: NaN is not a JSON number"),
        (b"[" * 9 + b"]" * 9, "health: nested deeper than 8 at character 8"),
        (b'{"a": "' + b"\xff" + b'"}', "health: not UTF-8 (invalid start byte at byte 7)"),
    ],
)
def test_a_health_report_of_the_wrong_shape_was_stored(payload: bytes, message: str) -> None:
    """Any JSON map was stored, and read back by the gateways page and /metrics as if it
    had the agent's shape: ``{"buffer":[1]}`` made them answer 500."""
    with pytest.raises(ProtocolError) as info:
        decode_health(payload)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"v":1,"state":"hacked"}', "status: state: Input should be 'online' or 'offline'"),
        (b'{"v":1,"state":"online","x":1}', "status: x: Extra inputs are not permitted"),
        (b'{"v":1,"state":"online","version":true}', "status: version: Input should be"),
        (b"[" * 100_000, "status: 100000 bytes, at most 4096"),
        (b'{"v":1,"state":' + b"[" * 1000, "status: nested deeper than 2 at character 16"),
    ],
)
def test_a_status_message_of_the_wrong_shape_is_refused(payload: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_status(payload)
    assert message in str(info.value)


def test_a_wrong_health_report_changes_nothing(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "hub.db", ["gw1"], health_timeout_s=60)
    reg.on_health("gw1", json.dumps(agent_report()).encode())
    with pytest.raises(ProtocolError, match="health: buffer: Input should be a valid dictionary"):
        reg.on_health("gw1", b'{"buffer":[1]}')
    state = reg.get("gw1")
    assert state is not None
    assert (state.backlog, state.poll_success()) == (12, {"cr1-probe": 0.9})
    reg.close()


def test_a_health_row_stored_by_an_older_hub_broke_every_reader(tmp_path: Path) -> None:
    """An older hub stored whatever JSON map came; such a row made /api/gateways, /gateways
    and /metrics answer 500 (``GatewayState.backlog`` on ``{"buffer": [1]}``)."""
    reg = Registry(tmp_path / "hub.db", ["gw1", "gw2", "gw3"], health_timeout_s=60)
    reg.close()
    db = sqlite3.connect(tmp_path / "hub.db")
    with db:
        db.execute("UPDATE gateways SET health = ? WHERE id = 'gw1'", ('{"buffer": [1]}',))
        db.execute("UPDATE gateways SET health = ? WHERE id = 'gw2'", ("[" * 50_000,))
        old = {"v": 1, "buffer": {"pending": 5}, "devices": {"p1": {"success": 0.5}}}
        db.execute("UPDATE gateways SET health = ? WHERE id = 'gw3'", (json.dumps(old),))
    db.close()
    reg = Registry(tmp_path / "hub.db", ["gw1", "gw2", "gw3"], health_timeout_s=60)
    gw1, gw2, gw3 = reg.all()
    assert (gw1.backlog, gw1.poll_success(), gw1.health) == (None, {}, None)
    assert (gw2.backlog, gw2.poll_success(), gw2.health) == (None, {}, None)
    assert (gw3.backlog, gw3.poll_success()) == (5, {"p1": 0.5})  # a good old row still reads
    reg.close()


@contextlib.asynccontextmanager
async def ingest_running(
    broker: Broker, ingest: Ingest, on_message: Callable[[str, bytes], Replies]
) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(
        run_ingest(ingest, host=broker.host, port=broker.port, on_message=on_message),
        name="ingest",
    )
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_an_exception_in_a_message_handler_dropped_the_mqtt_session(
    tmp_path: Path, mosquitto: Broker, profiles: ProfileRegistry
) -> None:
    """A handler raising (RecursionError from a deep retained status) ended the session;
    the retained message came back on every reconnect: a reconnect loop every ~0.5 s."""
    cfg = load_site_config(SITES_DIR / "county.yaml", profiles)
    store = SqliteStore(tmp_path / "store.db")
    ingest = Ingest(cfg, profiles, store)
    seen: list[str] = []

    def on_message(topic: str, payload: bytes) -> Replies:
        seen.append(topic)
        raise RecursionError("maximum recursion depth exceeded")

    t = Topics()
    probe = SeriesId("chengqu-centre", "gw-centre-cold", "cr1-probe-door", "temperature")
    reading = Reading(probe, time.time_ns() // 1_000_000, 4.0)
    async with (
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="gw-centre-cold") as gw,
        ingest_running(mosquitto, ingest, on_message),
    ):
        await gw.subscribe(t.topic("gw-centre-cold", "ack"), qos=1)
        await gw.publish(t.topic("gw-centre-cold", "status"), b"[[[", qos=1, retain=True)
        await until(lambda: ingest.stats.message_errors == 1, "the handler's error counted")
        batch = Batch("gw-centre-cold", "chengqu-centre", "e1", 1, [reading])
        await gw.publish(t.topic("gw-centre-cold", "telemetry"), encode_batch(batch), qos=1)
        async with asyncio.timeout(10):
            async for message in gw.messages:
                assert decode_ack(bytes(message.payload)) == ("e1", [1])
                break
        assert (ingest.stats.sessions, ingest.stats.connected) == (1, True)
        assert seen == [t.topic("gw-centre-cold", "status")]  # once: no reconnect replayed it
    await store.close()
