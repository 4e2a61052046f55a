"""The edge fallback: an agent texts alarms itself through its GSM modem when the uplink has
been down too long, remembers what it sent across restarts, and tells the hub afterwards.

Texts go through the real driver (:class:`coldchain.sms.gsm.GsmNotifier`) to the GSM modem
emulator on a pseudo-terminal, which decodes every PDU it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiomqtt
import msgpack
import pytest
import yaml

from alerts.dispatch import Batch
from alerts.dispatch import Notice as Queued
from alerts.service import AlertService
from coldchain.alerting.states import AlertState
from coldchain.config.loader import load_site_config
from coldchain.config.site import SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.edge import (
    Notice,
    Sent,
    decode_notice_ack,
    decode_notices,
    encode_notice_ack,
    encode_notices,
)
from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.topics import Kind, Topics
from coldchain.reading import Reading, SeriesId
from edge_agent.agent import Agent
from edge_agent.fallback import EdgeFallback, wall_ms
from firmware_configs import SITES_DIR
from simulator.endpoints import simulated_config
from simulator.gsm_modem import GsmModemEmulator
from simulator.runtime import Simulation
from tests.agentkit import FAST_AGENT
from tests.alertkit import MIN, PROFILES, T0, site
from tests.services import MosquittoProcess, until

# --- a small site with a fake clock ------------------------------------------------------


def fallback_config(port: str, after: str = "10min") -> SiteConfig:
    """The alert tests' site (s1: a chilled and a frozen room on gw1) plus a second site,
    contacts covering one, the other or both, and a GSM modem on ``port``."""
    doc = site(
        default_policy={"alarm": "cold", "warning": "duty"},
        policies=[
            {"id": "cold", "levels": [{"contacts": ["c1", "c2", "c3"]}, {"contacts": ["c4"]}]},
            {"id": "duty", "levels": [{"contacts": ["c1"]}]},
        ],
    )
    doc["sites"].append(
        {"id": "s2", "name": "梅林 Meilin", "rooms": [{"id": "r", "name": "R", "class": "chilled"}]}
    )
    doc["contacts"] = [
        {"id": "c1", "name": "王莉", "phone": "+8613800000001"},
        {"id": "c2", "name": "Li Na", "phone": "+8613700000002", "language": "en", "sites": ["s1"]},
        {"id": "c3", "name": "陈军", "phone": "+8613900000003", "sites": ["s2"]},
        {"id": "c4", "name": "何建", "phone": "+8613600000004"},
    ]
    doc["gateways"][0]["fallback"] = {"modem": {"id": "gsm", "port": port}, "after": after}
    return SiteConfig.model_validate(doc)


class Drive:
    """Feeds a fallback minute by minute on a fake clock and steps it."""

    def __init__(self, cfg: SiteConfig, data: Path, t_ms: int = T0) -> None:
        self.cfg, self.data, self.t = cfg, data, t_ms
        self.fb = self.start()

    def start(self) -> EdgeFallback:
        return EdgeFallback(self.cfg, "gw1", PROFILES, data_dir=self.data, clock_ms=lambda: self.t)

    async def restart(self) -> None:
        await self.fb.aclose()
        self.fb = self.start()

    async def at(self, minutes: float, **values: float) -> None:
        """At ``minutes`` after T0: readings (device__point=value), then a step."""
        self.t = T0 + round(minutes * MIN)
        self.fb.feed(
            Reading(SeriesId("s1", "gw1", *k.split("__")), self.t, v) for k, v in values.items()
        )
        await self.fb.step()

    async def until(self, minutes: float, **values: float) -> None:
        m = (self.t - T0) / MIN
        while m < minutes:
            m = min(minutes, m + 0.5)
            await self.at(m, **values)


@pytest.fixture
async def modem() -> AsyncIterator[GsmModemEmulator]:
    async with GsmModemEmulator() as emulator:
        yield emulator


def firing_alarms(fb: EdgeFallback) -> list[str]:
    return sorted(
        w.key
        for w, phase, _ in fb.evaluator.active()
        if phase == "firing" and w.severity == "alarm"
    )


def says(text: str, *parts: str) -> None:
    """Assert that ``text`` says every one of ``parts``."""
    missing = [p for p in parts if p not in text]
    assert not missing, f"{missing} not in {text!r}"


def texts(modem: GsmModemEmulator) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in modem.messages:
        out.setdefault(m.destination, []).append(m.text)
    return out


async def test_no_text_while_the_uplink_has_been_down_less_than_after(
    tmp_path: Path, modem: GsmModemEmulator
) -> None:
    run = Drive(fallback_config(modem.path), tmp_path)
    try:
        run.fb.link(up=True)
        await run.until(5, probe__temperature=2.0)
        await run.until(12, probe__temperature=6.0)  # above 4 °C from minute 5.5
        run.fb.link(up=False)  # down from minute 12; the alarm fires at 20.5
        await run.until(21, probe__temperature=6.0)
        assert firing_alarms(run.fb) == ["temperature-high/alarm/s1/gw1/probe/temperature"]
        run.fb.link(up=True)  # back after 9 minutes: the hub takes it from here
        await run.until(30, probe__temperature=6.0)
        assert modem.messages == []
        assert run.fb.store.unacked() == []
        assert not run.fb.stats.active
    finally:
        await run.fb.aclose()


async def test_an_alarm_in_fallback_texts_the_first_level_then_resolved_and_not_twice(
    tmp_path: Path, modem: GsmModemEmulator
) -> None:
    run = Drive(fallback_config(modem.path), tmp_path)
    try:
        run.fb.link(up=True)
        await run.until(2, probe__temperature=2.0)
        run.fb.link(up=False)
        await run.until(12, probe__temperature=2.0)
        assert run.fb.stats.active
        assert modem.messages == []  # in fallback, with nothing to say
        await run.until(26, probe__temperature=6.2)  # above from 12.5: fires at 27.5
        assert modem.messages == []
        await run.until(28, probe__temperature=6.2)
        got = texts(modem)
        # c1 covers every site (zh-CN), c2 covers s1 (en); c3 covers only s2; c4 is level 2
        assert sorted(got) == ["+8613700000002", "+8613800000001"]
        assert all(len(t) == 1 for t in got.values()), got
        (zh,), (en,) = got["+8613800000001"], got["+8613700000002"]
        says(zh, "告警", "冷鲜禽", "6.2°C", "上限4°C")
        says(en, "ALARM", "Chilled poultry", "6.2", "limit 4")
        (notice,) = run.fb.store.unacked()
        assert notice.key == "temperature-high/alarm/s1/gw1/probe/temperature"
        assert (notice.since_ms, notice.fired_ms) == (
            T0 + round(12.5 * MIN),
            T0 + 27 * MIN + MIN // 2,
        )
        assert (notice.value, notice.limit, notice.resolved_ms) == (6.2, 4.0, None)
        assert {(s.contact, s.message) for s in notice.sent} == {("c1", "alarm"), ("c2", "alarm")}
        assert all(s.status in ("accepted", "delivered") and s.ref for s in notice.sent)

        # killed and restarted during the outage: the alarm is resumed, not texted again
        await run.restart()
        await run.until(40, probe__temperature=6.5)
        assert len(modem.messages) == 2
        assert run.fb.stats.active  # the outage is remembered too

        await run.until(42, probe__temperature=3.2)  # back inside by the hysteresis
        got = texts(modem)
        assert [len(t) for t in got.values()] == [2, 2]
        zh, en = got["+8613800000001"][1], got["+8613700000002"][1]
        says(zh, "已恢复", "冷鲜禽", "3.2")
        says(en, "Back to normal", "Chilled poultry", "3.2")
        (notice,) = run.fb.store.unacked()
        assert notice.resolved_ms == T0 + round(40.5 * MIN)
        assert sorted(s.message for s in notice.sent) == ["alarm", "alarm", "resolved", "resolved"]

        # acknowledged by the hub: over and known, so it is gone
        assert run.fb.receive_ack(encode_notice_ack([(notice.id, notice.rev)])) == 1
        assert run.fb.store.count() == 0
        await run.restart()
        await run.until(50, probe__temperature=3.0)
        assert len(modem.messages) == 4
    finally:
        await run.fb.aclose()


async def test_the_hub_and_the_fallback_say_the_same_of_the_same_alarm(
    tmp_path: Path, modem: GsmModemEmulator
) -> None:
    # The facts of an alert were computed twice and drifted: the fallback put the door's
    # "1" into a door-open text (the hub shows no value without a unit), and only the
    # fallback said over what window a temperature rose. Both now use one implementation.
    cfg = fallback_config(modem.path).model_copy(deep=True)
    rise = {"id": "temperature-rise", "kind": "rate_of_rise", "severity": "alarm"}
    cfg = SiteConfig.model_validate(
        cfg.model_dump(mode="json", by_alias=True, exclude_unset=True)
        | {"alert_rules": [rise | {"rise": 3.0, "window": "15min"}]}
    )
    run = Drive(cfg, tmp_path / "agent")
    hub = AlertService(
        cfg, PROFILES, db_path=tmp_path / "hub.db", audit=lambda **_: 0, clock=lambda: run.t
    )
    try:
        for m in range(40):
            temp = 2.0 if m < 20 else 2.0 + 0.4 * (m - 20)  # a rise, then past the limit
            values = {"probe__temperature": temp, "di__door_1": 1.0 if m >= 5 else 0.0}
            await run.at(m, **values)
            now = run.t
            hub.on_readings(
                [Reading(SeriesId("s1", "gw1", *k.split("__")), now, v) for k, v in values.items()]
            )
            hub.tick()
        edge = run.fb._firing  # what the fallback would text, by watch key
        kinds = {t.watch.rule.kind for t in edge.values()}
        assert {"door_open", "door_open_warm", "rate_of_rise"} <= kinds, sorted(edge)
        for key, t in edge.items():
            row = hub.store.open_by_key(key)
            assert row is not None, key
            assert row.state == AlertState.FIRING, key
            facts = replace(run.fb._facts(t, t.value), alert_id=row.id)
            assert facts == hub.facts(row), key
            if t.watch.rule.kind == "door_open":
                assert (facts.value, facts.limit, facts.device) == (None, None, "di")
            texted = run.fb._message("alarm", [t], run.t)
            note = Queued(1, "c1", "+8613800000001", "alarm", [row.id], "s1", 0)
            sms = hub._composer.compose(Batch("c1", note.address, "s1", [note]), run.t)
            assert sms is not None
            assert texted.extra == ({"window_s": "900"} if "rise" in key else {}), key
            if "rise" in key:
                says(sms.text, "15分钟升")
    finally:
        await run.fb.aclose()
        await hub.aclose()


async def test_alarms_firing_when_fallback_begins_are_texted_as_one_message(
    tmp_path: Path, modem: GsmModemEmulator
) -> None:
    run = Drive(fallback_config(modem.path, after="5min"), tmp_path)
    try:
        run.fb.link(up=True)
        await run.until(20, probe__temperature=6.0, fz__temperature=-12.0)
        firing = firing_alarms(run.fb)
        assert len(firing) == 2  # the chilled and the frozen room, told by the hub
        run.fb.link(up=False)
        await run.until(24, probe__temperature=6.0, fz__temperature=-12.0)
        assert modem.messages == []
        await run.until(26, probe__temperature=6.0, fz__temperature=-12.0)
        got = texts(modem)
        assert sorted(got) == ["+8613700000002", "+8613800000001"]
        (zh,), (en,) = got["+8613800000001"], got["+8613700000002"]
        says(zh, "2个告警", "冷鲜禽", "冻品库")
        says(en, "2 alarms", "Chilled poultry", "Frozen")
        notices = run.fb.store.unacked()
        assert len(notices) == 2
        assert all({s.message for s in n.sent} == {"grouped"} for n in notices)
        # the hub has the first revision only: a later change is not settled by it
        old = [(n.id, n.rev - 1) for n in notices]
        assert run.fb.receive_ack(encode_notice_ack(old)) == 0
        run.fb.link(up=True)
        published: list[bytes] = []

        async def publish(payload: bytes) -> None:
            published.append(payload)

        assert await run.fb.publish_notices(publish, everything=True) == 2
        (batch,) = [decode_notices(p, gateway="gw1", now_ms=run.t) for p in published]
        assert sorted(n.key for n in batch.notices) == sorted(firing)
        ack = encode_notice_ack([(n.id, n.rev) for n in batch.notices])
        assert run.fb.receive_ack(ack) == 2
        assert run.fb.store.unacked() == []
        assert run.fb.store.count() == 2  # still firing: kept, so a restart does not re-text
        assert run.fb.receive_ack(b"\x93garbage") == 0
        assert run.fb.stats.bad_acks == 1
    finally:
        await run.fb.aclose()


async def test_a_failed_send_is_recorded_and_tried_again(
    tmp_path: Path, modem: GsmModemEmulator
) -> None:
    run = Drive(fallback_config(modem.path, after="1min"), tmp_path)
    try:
        modem.fail_next(42, n=2)  # congestion: worth trying again
        await run.until(16, probe__temperature=6.0)  # above from 0.5: fires at 15.5
        assert len(modem.messages) == 0
        (notice,) = run.fb.store.unacked()
        assert [s.status for s in notice.sent] == ["failed", "failed"]
        assert all("congestion" in (s.error or "") for s in notice.sent), notice.sent
        await run.until(16.5, probe__temperature=6.0)  # a minute later
        assert sorted(m.destination for m in modem.messages) == ["+8613700000002", "+8613800000001"]
        (notice,) = run.fb.store.unacked()
        assert sorted(s.status != "failed" for s in notice.sent) == [False, False, True, True]
    finally:
        await run.fb.aclose()


# --- the protocol ------------------------------------------------------------------------

NOTICE = Notice(
    id="5f0c9a3b1e2d4c6f8a7b9c0d1e2f3a4b",
    rev=3,
    key="temperature-high/alarm/s1/gw1/probe/temperature",
    rule="temperature-high",
    kind="threshold",
    severity="alarm",
    site="s1",
    room="chill",
    series="s1/gw1/probe/temperature",
    since_ms=T0,
    fired_ms=T0 + 15 * MIN,
    value=6.2,
    limit=4.0,
    resolved_ms=T0 + 40 * MIN,
    sent=(
        Sent("c1", "+8613800000001", "alarm", T0 + 15 * MIN, "delivered", "17"),
        Sent("c2", "+8613700000002", "alarm", T0 + 15 * MIN, "failed", None, "+CMS ERROR: 42"),
    ),
)


def test_notices_round_trip() -> None:
    data = encode_notices("gw1", [NOTICE])
    batch = decode_notices(data, gateway="gw1", now_ms=T0 + 60 * MIN)
    assert batch.gateway == "gw1"
    assert batch.notices == (NOTICE,)
    assert decode_notice_ack(encode_notice_ack([(NOTICE.id, 3)])) == [(NOTICE.id, 3)]


def notice_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = msgpack.unpackb(encode_notices("gw1", [NOTICE]))
    doc["notices"][0].update(changes)
    return doc


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ({"v": 2, "gw": "gw1", "notices": []}, "protocol version 2, expected 1"),
        ([1, 2], "a notices message must be a map, got list"),
        ({"v": 1, "gw": "GW 1", "notices": []}, "bad gateway id 'GW 1'"),
        ({"v": 1, "gw": "gw2", "notices": []}, "gateway 'gw2' published on the topic of 'gw1'"),
        ({"v": 1, "gw": "gw1", "notices": {}}, "'notices' must be a list"),
        ({"v": 1, "gw": "gw1", "notices": [7]}, "notices[0] must be a map, got int"),
        (notice_doc(rev=0), "notices[0].rev: must be a whole number from 1, got 0"),
        (notice_doc(key=""), "notices[0].key: must be a string of 1 to 400 characters"),
        (notice_doc(severity="critical"), "notices[0].severity: must be one of warning, alarm"),
        (notice_doc(fired=T0 - 1), f"notices[0].fired: must not be before 'since' ({T0})"),
        (notice_doc(since=1000), "notices[0].since: must be UTC ms between 2020"),
        (notice_doc(value="6.2"), "notices[0].value: must be a finite number or null"),
        (notice_doc(room="Cold Room"), "notices[0].room: must match"),
        (notice_doc(sent="c1"), "notices[0].sent: must be a list, got 'c1'"),
    ],
)
def test_malformed_notices_are_rejected_with_what_is_wrong(doc: Any, error: str) -> None:
    with pytest.raises(ProtocolError) as e:
        decode_notices(msgpack.packb(doc), gateway="gw1", now_ms=T0 + 60 * MIN)
    assert error in str(e.value)


def test_malformed_recipients_and_duplicates_are_rejected() -> None:
    now = T0 + 60 * MIN
    doc = notice_doc()
    del doc["notices"][0]["sent"][1]["phone"]
    with pytest.raises(ProtocolError, match=r"notices\[0\]\.sent\[1\]: 'phone' is missing"):
        decode_notices(msgpack.packb(doc), now_ms=now)
    doc = notice_doc()
    doc["notices"][0]["sent"][0]["phone"] = "13800000001"
    with pytest.raises(ProtocolError, match=r"sent\[0\]\.phone: must match .*'13800000001'"):
        decode_notices(msgpack.packb(doc), now_ms=now)
    doc = notice_doc()
    doc["notices"][0]["sent"][0]["status"] = "sent"
    with pytest.raises(ProtocolError, match="status: must be one of accepted, delivered, failed"):
        decode_notices(msgpack.packb(doc), now_ms=now)
    doc = notice_doc()
    doc["notices"].append(doc["notices"][0])
    with pytest.raises(ProtocolError, match=f"notice id '{NOTICE.id}' appears twice"):
        decode_notices(msgpack.packb(doc), now_ms=now)
    with pytest.raises(ProtocolError, match="not a MessagePack message"):
        decode_notices(b"\xc1", now_ms=now)


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ({"v": 1, "seqs": [1]}, "'notices' must be a list of [id, rev], got None"),
        ({"v": 1, "notices": [["abc"]]}, "notices[0] must be [id, rev], got ['abc']"),
        ({"v": 1, "notices": [["abc", 0]]}, "notices[0] must be [id, rev], got ['abc', 0]"),
        ({"v": 1, "notices": [["a/b", 1]]}, "notices[0] must be [id, rev], got ['a/b', 1]"),
        ({"notices": []}, "a notice ack must be a v1 map"),
    ],
)
def test_malformed_notice_acks_are_rejected(doc: Any, error: str) -> None:
    with pytest.raises(ProtocolError) as e:
        decode_notice_ack(msgpack.packb(doc))
    assert error in str(e.value)


def test_the_alerts_topics() -> None:
    t = Topics()
    assert t.topic("gw1", "alerts") == "coldchain/v1/gw/gw1/alerts"
    assert t.parse("coldchain/v1/gw/gw1/alerts/ack") == ("gw1", "alerts/ack")
    assert t.all("alerts") == "coldchain/v1/gw/+/alerts"


# --- end to end: simulator, Mosquitto, agent, modem emulator -------------------------------

GW = "gw-centre-cold"
SPEED = 600.0  # a failed compressor warms a chilled room ~2.3 °C per simulated hour
FIRST_LEVEL = {"+8613800000001", "+8613800000002", "+8613700000006"}  # chengqu's covering


KINDS: tuple[Kind, ...] = ("telemetry", "alerts")


class Watcher:
    """A test client with a persistent session on the gateway's telemetry and alerts
    topics: it misses nothing while the broker is down and keeps the order things came in."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.seen: list[tuple[str, bytes]] = []
        self.connected = False

    async def run(self) -> None:
        topics = Topics()
        while True:
            try:
                async with aiomqtt.Client(
                    self.host, self.port, identifier="fallback-watcher", clean_session=False
                ) as client:
                    for kind in KINDS:
                        await client.subscribe(topics.topic(GW, kind), qos=1)
                    self.connected = True
                    async for m in client.messages:
                        kind = topics.parse(str(m.topic))[1]
                        assert isinstance(m.payload, bytes)
                        self.seen.append((kind, m.payload))
            except aiomqtt.MqttError:
                self.connected = False
                await asyncio.sleep(0.1)  # the broker is down: try again shortly

    def kinds(self, start: int = 0) -> list[str]:
        return [k for k, _ in self.seen[start:]]


@contextlib.asynccontextmanager
async def running(task: Any) -> AsyncIterator[asyncio.Task[None]]:
    t = asyncio.create_task(task)
    try:
        yield t
    finally:
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t


def e2e_config(tmp_path: Path, sim: Simulation, broker: str, modem: str) -> SiteConfig:
    doc = simulated_config(sim.config, sim.endpoints())
    doc["agent"] = FAST_AGENT
    doc["uplink"] = {"broker": broker}
    doc["alerts"]["default_rules"] = False
    doc["alert_rules"] = [
        {"id": "temperature-high", "kind": "threshold", "direction": "above"}
        | {"alarm": {"delay": "3s"}}
    ]
    gw = next(g for g in doc["gateways"] if g["id"] == GW)
    gw["fallback"] = {"modem": {"id": "gsm", "port": modem}, "after": "2s"}
    for d in gw["devices"]:
        d["poll_interval"] = "1s"
        if d["id"] == "cr1-probe-back":  # one probe in the room: one alert
            d["points"] = {"temperature": {"enabled": False}}
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return load_site_config(path, PROFILES)


@pytest.mark.timeout(90)
@pytest.mark.slow
async def test_agent_texts_a_compressor_failure_during_an_outage_and_tells_the_hub_first(
    tmp_path: Path,
    restartable_mosquitto: MosquittoProcess,
    modem: GsmModemEmulator,
    profiles: ProfileRegistry,
) -> None:
    broker = restartable_mosquitto.broker
    assert broker is not None
    county = load_site_config(SITES_DIR / "county.yaml", profiles)
    watcher = Watcher(broker.host, broker.port)
    async with (
        Simulation(county, profiles, seed=3, speed=SPEED, broker=broker.url) as sim,
        running(watcher.run()),
    ):
        cfg = e2e_config(tmp_path, sim, broker.url, modem.path)
        agent = Agent(cfg, GW, profiles, data_dir=tmp_path / "agent")
        fb = agent.fallback
        assert fb is not None
        probe = f"chengqu-centre/{GW}/cr1-probe-door/temperature"
        async with running(agent.run()):
            await until(lambda: agent.uplink.stats.connected, "the uplink", 20)
            await until(lambda: "telemetry" in watcher.kinds(), "telemetry at the watcher", 20)
            assert fb.evaluator.views.series[probe].value is not None
            assert firing_alarms(fb) == [], "the room is cold before the fault"

            restartable_mosquitto.stop()
            await until(lambda: not agent.uplink.stats.connected, "the uplink lost", 10)
            await until(lambda: fb.stats.active, "the fallback to begin", 10)
            mark = len(watcher.seen)
            sim.inject("compressor_failure", "chengqu-centre/cold-room-1")
            await until(lambda: len(modem.messages) >= 3, "three texts", 45)
            got = texts(modem)
            assert set(got) == FIRST_LEVEL
            assert all(len(t) == 1 for t in got.values()), got
            for phone, (text,) in got.items():
                room = "Cold room 1" if phone == "+8613700000006" else "1号冷藏库"
                says(text, room)
                assert re.search(r"\d°?C", text), text
            (notice,) = fb.store.unacked()
            report = (await agent.health())["fallback"]
            assert report["active"] is True
            assert report["texts_sent"] == 3

            restartable_mosquitto.start()
            await until(lambda: "alerts" in watcher.kinds(mark), "the notice at the hub", 45)
            await until(lambda: "telemetry" in watcher.kinds(mark), "the backlog", 20)
            after = watcher.kinds(mark)
            assert after.index("alerts") < after.index("telemetry"), after
            payload = next(p for k, p in watcher.seen[mark:] if k == "alerts")
            (seen,) = decode_notices(payload, gateway=GW, now_ms=wall_ms()).notices
            assert seen.id == notice.id
            assert seen.key == f"temperature-high/alarm/{probe}"
            assert {s.phone for s in seen.sent} == FIRST_LEVEL
            assert seen.value is not None
            assert seen.limit == 4.0

            async with aiomqtt.Client(broker.host, broker.port) as hub:
                pending = fb.store.unacked()  # a delivery report may have raised the revision
                ack = encode_notice_ack([(n.id, n.rev) for n in pending])
                await hub.publish(Topics().topic(GW, "alerts/ack"), ack, qos=1)
            await until(lambda: fb.store.unacked() == [], "the hub's ack to settle it", 10)
            assert fb.stats.notices_acked == 1
            assert len(modem.messages) == 3  # nothing texted twice
