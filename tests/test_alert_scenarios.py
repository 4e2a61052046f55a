"""The hub's alerting end to end, scenario by scenario: readings in, SMS out through real
notifiers to the provider stand-ins (or the GSM modem emulator), with a clock the test
moves. Asserts on what the stand-ins received (numbers and texts as decoded there), the
alert and notification rows, and the audit trail. See :mod:`tests.alertscen`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest

from alerts.errors import InvalidError
from coldchain.alerting.links import reply_code
from coldchain.config.notify import GsmModem
from coldchain.sms.gsm import GsmNotifier
from coldchain.sms.types import DeliveryStatus
from simulator.gsm_modem import GsmModemEmulator
from tests import smsfakes
from tests.alertkit import r
from tests.alertscen import (
    COLD_ONCE,
    KEY,
    LEVEL1,
    PHONE,
    ROOM,
    SITE,
    WARN,
    Clock,
    Hubs,
    aliyun_sent,
    cloud,
    code_in,
    minutes,
    site_doc,
    twilio_texts,
)
from tests.services import until
from tests.smsfakes import AliyunFake, TwilioFake

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

aliyun_fake = smsfakes.aliyun_fake
twilio_fake = smsfakes.twilio_fake

T = "probe/temperature"
LONG_ROOM = (
    "冷鲜禽一号库（出口分拣区东侧靠近三号装卸月台的双温冷藏间，鸡鸭鹅分割品及冰鲜禽类专用）"  # noqa: RUF001
    " Chilled poultry room 1"
)  # an alarm about it takes two SMS parts


@pytest.fixture
async def hubs(tmp_path: Path) -> AsyncIterator[Hubs]:
    h = Hubs(tmp_path)
    yield h
    await h.aclose()


async def test_a_failed_compressor_pages_level_1_once_after_the_alarm_delay(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings), notifiers)
    await hub.run_until(10, {T: 2.0})
    m = 10.0
    while m < 30:  # the compressor stops: the air warms 0.4 °C a minute, up to 8 °C
        m += 0.5
        await hub.run_until(m, {T: min(2.0 + 0.4 * (m - 10), 8.0)})  # above 4 from 15.5
    sent = twilio_texts(twilio_fake)
    assert not any(c in sent for c in (*LEVEL1, "c4")), sent  # 14.5 min: nobody yet
    assert sent["c5"]  # warnings: to the duty desk
    assert all(t.startswith("预警：") for t in sent["c5"])  # noqa: RUF001
    warm = "温度过高 6.2°C，上限4°C，08:15起，已5分钟"  # noqa: RUF001
    assert any(warm in t for t in sent["c5"]), sent

    await hub.run_until(30.5)  # 15 min above the limit
    alarm = hub.alert("temperature-high")
    assert (alarm.state, alarm.level, alarm.value) == ("firing", 0, 8.0)
    assert (alarm.since_ms, alarm.fired_ms) == (minutes(15.5), minutes(30.5))
    text = (
        f"告警：{SITE} {ROOM} 温度过高 8°C，上限4°C，08:15起，已15分钟。"  # noqa: RUF001
        f"回复{reply_code(alarm.id, KEY)}确认"
    )
    sent = twilio_texts(twilio_fake)
    assert {c: sent.get(c) for c in LEVEL1} == {c: [text] for c in LEVEL1}
    assert "c4" not in sent  # level 2 only after 15 more minutes
    assert aliyun_fake.records == []  # the first provider worked
    notes = hub.notes(kind="alarm")
    assert [(n.recipient, n.address, n.status, n.notifier, n.attempts) for n in notes] == [
        (c, PHONE[c], "accepted", "twilio-test", 1) for c in LEVEL1
    ]
    assert all(n.alerts == [alarm.id] and n.sent_ms == minutes(30.5) for n in notes)
    obj = f"alert/{alarm.id}"
    assert [a.action for a in hubs.trail() if a.object == obj][:2] == [
        "alert.pending",
        "alert.firing",
    ]
    told = [a.after["to"] for a in hubs.trail("alert.notify") if a.object == obj]
    # the three messages go out concurrently: each is audited when its provider answers
    assert sorted(told) == sorted(LEVEL1)


async def test_warnings_without_a_policy_reach_nobody(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings, default_policy={"alarm": "cold"}), notifiers)
    await hub.run_until(1, {T: 2.0})
    await hub.run_until(15, {T: 4.6})  # warning tier firing from 6; the alarm not yet
    warning = hub.alert("temperature-high", "warning")
    assert (warning.state, warning.policy, warning.level) == ("firing", None, -1)
    assert twilio_fake.records == aliyun_fake.records == []
    assert hub.notes() == []
    await hub.run_until(16.5)  # the alarm tier still pages level 1
    assert sorted(twilio_texts(twilio_fake)) == list(LEVEL1)


async def test_a_defrost_and_its_hold_off_page_nobody(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings), notifiers)
    cold = {"ctl/defrost": 0.0, "ctl/probe_1": 2.0, T: 2.0}
    await hub.run_until(2, cold)
    await hub.run_until(25, {"ctl/defrost": 1.0, "ctl/probe_1": 9.0, T: 9.0})  # defrosting
    await hub.run_until(50, {"ctl/defrost": 0.0, "ctl/probe_1": 6.0, T: 6.0})  # hold-off
    await hub.run_until(80, cold)  # pulled down before the hold-off (30 min) ended
    assert twilio_fake.records == aliyun_fake.records == []
    assert hub.alerts() == []
    assert hub.notes() == []
    assert not [a for a in hubs.trail() if a.action.startswith("alert.")]


async def test_a_door_left_open_for_10_min_pages_level_1(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings), notifiers)
    await hub.run_until(2, {T: 2.0, "di/door_1": 0.0})
    await hub.run_until(11.5, {"di/door_1": 1.0})  # opened at 2.5
    assert twilio_fake.records == []
    await hub.run_until(12.5)
    door = hub.alert("door-open")
    assert (door.state, door.since_ms, door.fired_ms) == ("firing", minutes(2.5), minutes(12.5))
    text = f"告警：{SITE} {ROOM} 门未关，08:02起，已10分钟。回复{reply_code(door.id, KEY)}确认"  # noqa: RUF001
    assert twilio_texts(twilio_fake) == {c: [text] for c in LEVEL1}

    await hub.run_until(13, {"di/door_1": 0.0})  # shut: the second message of the window
    assert hub.alert("door-open").state == "resolved"
    sent = twilio_texts(twilio_fake)
    resolved = f"已恢复：{SITE} {ROOM} 门未关，08:02起，持续10分钟。"  # noqa: RUF001
    assert {c: sent[c][1:] for c in LEVEL1} == {c: [resolved] for c in LEVEL1}


async def test_a_silent_sensor_pages_as_stale_naming_the_device_without_numbers(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings), notifiers)
    await hub.run_until(1, {T: 2.0})
    hub.values.clear()  # the probe stops answering
    await hub.run_until(6)
    stale = hub.alert("sensor-stale")
    code = reply_code(stale.id, KEY)
    text = f"告警：{SITE} {ROOM} 传感器无数据（probe），08:01起，已5分钟。回复{code}确认"  # noqa: RUF001
    assert twilio_texts(twilio_fake) == {c: [text] for c in LEVEL1}


async def test_escalation_reminders_until_acknowledged_then_resolved_to_those_told(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings), notifiers)
    await hub.run_until(1, {T: 2.0})
    await hub.run_until(16, {T: 6.0}, step=1)  # above from minute 2
    assert twilio_texts(twilio_fake).keys() == {"c5"}  # the warning
    await hub.run_until(17, step=1)
    alarm = hub.alert("temperature-high")
    fired = 17.0
    assert alarm.fired_ms == minutes(fired)

    def kinds(contact: str) -> list[tuple[str, float]]:
        return [
            (n.kind, ((n.sent_ms or 0) - minutes(0)) / 60_000)
            for n in hub.notes(contact)
            if alarm.id in n.alerts
        ]

    await hub.run_until(fired + 14.5, step=1)
    assert [n.recipient for n in hub.notes(kind="alarm")] == list(LEVEL1)
    await hub.run_until(fired + 15, step=1)
    assert [n.recipient for n in hub.notes(kind="alarm")] == [*LEVEL1, "c4"]
    await hub.run_until(fired + 80, step=1)  # reminders at +45 and +75
    for c in (*LEVEL1, "c4"):
        first = fired if c != "c4" else fired + 15
        assert kinds(c) == [("alarm", first), ("reminder", fired + 45), ("reminder", fired + 75)]
    reminder = twilio_texts(twilio_fake)["c1"][-1]
    assert reminder.startswith(f"告警仍未确认：{SITE} {ROOM} 温度过高 6°C")  # noqa: RUF001

    told = len(hub.notes())
    hub.svc.ack(alarm.id, by="c2", comment="compressor fuse replaced", via="api")
    await hub.run_until(fired + 150, step=1)  # nothing more while it stays warm
    assert len(hub.notes()) == told
    await hub.run_until(fired + 152, {T: 2.0}, step=1)  # back inside: resolved
    assert hub.alert("temperature-high").state == "resolved"
    for c in (*LEVEL1, "c4"):
        assert [k for k, _ in kinds(c)] == ["alarm", "reminder", "reminder", "resolved"]
        assert twilio_texts(twilio_fake)[c][-1].startswith(f"已恢复：{SITE} {ROOM} 温度过高")  # noqa: RUF001
    [ack] = hubs.trail("alert.ack")
    assert (ack.actor, ack.object, ack.comment) == (
        "c2",
        f"alert/{alarm.id}",
        "compressor fuse replaced",
    )
    assert ack.after == {"state": "acknowledged", "via": "api"}


async def test_a_restarted_hub_neither_repages_nor_forgets_the_escalation(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    doc = site_doc(settings)
    first = hubs.open(doc, notifiers)
    await first.run_until(1, {T: 2.0})
    await first.run_until(20, {T: 6.0}, step=1)  # above from 2: fired at 17
    alarm = first.alert("temperature-high")
    assert alarm.fired_ms == minutes(17)
    before = list(twilio_fake.records)
    assert sorted(twilio_texts(twilio_fake)) == ["c1", "c2", "c3", "c5"]
    await first.close()

    # Down for three minutes: a new process with its own clock on the same database.
    _, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    clock = Clock(minutes(23))
    second = hubs.open(doc, notifiers, clock=clock, latest=[r(T, minutes(20), 6.0)])
    await second.run_until(31.5, {T: 6.0})
    assert twilio_fake.records == before  # level 1 (and the warning) not paged again
    await second.run_until(32)  # fired + 15 min
    *earlier, last = twilio_fake.records
    assert earlier == before
    assert last["to"] == PHONE["c4"]
    assert last["text"].startswith(f"告警：{SITE} {ROOM} 温度过高 6°C")  # noqa: RUF001
    [c4] = second.notes("c4")
    assert (c4.alerts, c4.level, c4.sent_ms) == ([alarm.id], 1, minutes(32))
    again = second.alert("temperature-high")
    assert (again.id, again.state, again.level, again.fired_ms) == (
        alarm.id,
        "firing",
        1,
        minutes(17),
    )
    assert len([a for a in hubs.trail("alert.firing") if a.object == f"alert/{alarm.id}"]) == 1


async def test_a_power_cut_of_six_rooms_is_one_grouped_sms_per_person(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings, rooms=6, linger="100ms"), notifiers)
    mains = [f"di-r{i}/mains" for i in range(1, 7)]
    hub.feed(dict.fromkeys(mains, 1.0))
    dispatch = asyncio.create_task(hub.svc.dispatcher.run(), name="alerts-dispatch")
    try:
        for i, series in enumerate(mains):  # 08:01: the supply fails; modules polled 1 s apart
            hub.clock.ms = minutes(1) + i * 1000
            hub.feed({series: 0.0})
            hub.svc.tick()
        for s in range(30, 37):  # each room's alarm fires 30 s after its cut, on its own tick
            hub.clock.ms = minutes(1) + s * 1000
            hub.svc.tick()
            await asyncio.sleep(0)  # let the dispatcher wake at the first and linger
        await until(
            lambda: len(twilio_fake.records) >= 3 and hub.svc.dispatcher.pending() == 0,
            "the grouped SMS to level 1",
            within=5,
        )
    finally:
        dispatch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dispatch
    cuts = hub.alerts("power-cut")
    assert [(a.room, a.state) for a in cuts] == [(f"r{i}", "firing") for i in range(1, 7)]
    rooms = "，".join(f"{i}号库 断电" for i in range(1, 7))  # noqa: RUF001
    text = f"{SITE} 6个告警：{rooms}。08:01起。"  # noqa: RUF001
    assert twilio_texts(twilio_fake) == {c: [text] for c in LEVEL1}
    for c in LEVEL1:
        notes = hub.notes(c)
        assert sorted(a for n in notes for a in n.alerts) == sorted(a.id for a in cuts)
        assert len({(n.provider_ref, n.text, n.sent_ms) for n in notes}) == 1  # one message


async def test_the_power_returning_to_six_rooms_is_told_for_every_room(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings, rooms=6), notifiers)
    mains = [f"di-r{i}/mains" for i in range(1, 7)]
    await hub.run_until(1, dict.fromkeys(mains, 1.0))
    await hub.run_until(10, dict.fromkeys(mains, 0.0))  # one grouped alarm at 1.5
    await hub.run_until(12, dict.fromkeys(mains, 1.0))  # all six back at 10.5
    assert {a.state for a in hub.alerts("power-cut")} == {"resolved"}
    for c in LEVEL1:
        alarm, resolved = twilio_texts(twilio_fake)[c]
        assert all(f"{i}号库" in alarm and f"{i}号库" in resolved for i in range(1, 7)), resolved


async def test_flapping_around_the_limit_for_an_hour_is_one_alert_and_one_sms_each(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings, policies=(COLD_ONCE, WARN)), notifiers)
    await hub.run_until(1, {T: 3.9})
    for i in range(120):  # 4.2, 3.9, 4.2 ... every 30 s: inside the 0.5 °C hysteresis
        await hub.run_until(1.5 + i / 2, {T: 4.2 if i % 2 == 0 else 3.9})
    rows = hub.alerts("temperature-high")
    assert [(a.tier, a.state, a.since_ms) for a in rows] == [
        ("warning", "firing", minutes(1.5)),
        ("alarm", "firing", minutes(1.5)),
    ]
    assert hubs.trail("alert.cancelled") == []
    assert hubs.trail("alert.resolved") == []
    sent = twilio_texts(twilio_fake)
    assert {c: len(t) for c, t in sent.items()} == {"c1": 1, "c2": 1, "c3": 1, "c5": 1}
    assert sent["c1"][0].startswith(f"告警：{SITE} {ROOM} 温度过高")  # noqa: RUF001
    assert sent["c5"][0].startswith(f"预警：{SITE} {ROOM} 温度过高")  # noqa: RUF001


async def test_a_failing_provider_fails_over_to_the_next_after_its_retries(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings), notifiers)
    hub.svc.dispatcher.backoff_s = 0.0  # real seconds between tries; not what is tested here
    twilio_fake.fail_next(100, "error")  # Twilio answers 503 to everything
    await hub.run_until(2, {T: 2.0, "di/door_1": 0.0})
    await hub.run_until(12.5, {"di/door_1": 1.0})
    door = hub.alert("door-open")
    assert twilio_fake.records == []
    assert twilio_fake.calls == 9  # three tries for each of three people
    sent = aliyun_sent(aliyun_fake)
    assert sorted(sent) == list(LEVEL1)
    for c in LEVEL1:
        [rec] = sent[c]
        [note] = hub.notes(c)
        assert (rec["template"], rec["sign_name"]) == (aliyun_fake.templates["alarm"], "城区物流")
        assert rec["ref"] == str(note.id)
        params = rec["params"]
        assert (params["site"], params["room"], params["what"]) == (SITE, ROOM, "门未关")
        assert (params["since"], params["code"]) == ("08:02", reply_code(door.id, KEY))
        assert (note.notifier, note.status, note.attempts) == ("aliyun-test", "accepted", 4)
        assert note.provider_ref == rec["provider_ref"]
        assert note.error is not None
        assert note.error.count("HTTP 503") == 3, note.error
    assert {a.after["notifier"] for a in hubs.trail("alert.notify")} == {"aliyun-test"}


async def test_a_refused_secret_skips_straight_to_the_next_provider(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path, twilio_secret="not-the-token")
    hub = hubs.open(site_doc(settings), notifiers)
    await hub.run_until(2, {T: 2.0, "di/door_1": 0.0})
    await hub.run_until(12.5, {"di/door_1": 1.0})
    assert twilio_fake.calls == 3  # once per message: a 401 is not worth a retry
    assert [x["code"] for x in twilio_fake.rejections] == ["20003"] * 3
    assert sorted(aliyun_sent(aliyun_fake)) == list(LEVEL1)
    for note in hub.notes():
        assert (note.notifier, note.attempts, note.status) == ("aliyun-test", 2, "accepted")
        assert (
            note.error == f"twilio-test: Twilio refused {note.id} (HTTP 401): 20003: Authenticate"
        )


async def test_an_sms_reply_with_the_code_acknowledges_that_alert(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings), notifiers)
    await hub.run_until(2, {T: 2.0, "di/door_1": 0.0})
    await hub.run_until(15, {"di/door_1": 1.0, "di/mains": 1.0})  # door alarm at 12.5
    await hub.run_until(16, {"di/mains": 0.0})  # power cut at 15.5: alarm at 16
    door, cut = hub.alert("door-open"), hub.alert("power-cut")
    door_sms, cut_sms = twilio_texts(twilio_fake)["c1"]
    door_code, cut_code = code_in(door_sms), code_in(cut_sms)
    assert (door_code, cut_code) == (reply_code(door.id, KEY), reply_code(cut.id, KEY))
    assert door_code != cut_code
    other = next(f"{n:04d}" for n in range(10_000) if f"{n:04d}" not in (door_code, cut_code))

    assert hub.svc.reply("+8613999999999", door_code, via="twilio") is None  # a stranger
    assert hub.svc.reply(PHONE["c1"], "收到", via="twilio") is None  # which of the two?
    assert hub.svc.reply(PHONE["c1"], other, via="twilio") is None  # no such code
    assert hub.alert("door-open").acked_ms is None
    assert hub.alert("power-cut").acked_ms is None
    assert hubs.trail("alert.ack") == []

    acked = hub.svc.reply(PHONE["c1"], f"{door_code} 已关门", via="twilio")
    assert acked is not None
    assert acked.id == door.id
    row = hub.alert("door-open")
    assert (row.state, row.acked_by, row.ack_via, row.acked_ms) == (
        "acknowledged",
        "c1",
        "twilio",
        minutes(16),
    )
    assert hub.alert("power-cut").acked_ms is None
    only = hub.svc.reply(PHONE["c2"], "好的", via="twilio")  # c2's only unacknowledged alert
    assert only is not None
    assert only.id == cut.id
    assert [(a.actor, a.object, a.comment) for a in hubs.trail("alert.ack")] == [
        ("c1", f"alert/{door.id}", f"SMS reply: {door_code} 已关门"),
        ("c2", f"alert/{cut.id}", "SMS reply: 好的"),
    ]
    told = len(twilio_fake.records)
    await hub.run_until(80)  # no escalation of either after the acknowledgements
    assert len(twilio_fake.records) == told


async def test_maintenance_silences_a_room_and_is_audited(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings), notifiers)
    await hub.run_until(1, {T: 2.0})
    with pytest.raises(InvalidError, match=r"say why the room is in maintenance \(reason\)"):
        hub.svc.maintenance("s1", "chill", until_ms=minutes(40), reason=" ", by="tech-li")
    hub.svc.maintenance(
        "s1", "chill", until_ms=minutes(40), reason="evaporator coil replacement", by="tech-li"
    )
    await hub.run_until(39.5, {T: 8.0})  # emptied and warm for the repair
    assert twilio_fake.records == aliyun_fake.records == []
    assert hub.alerts() == []
    assert hub.notes() == []
    [audit] = hubs.trail("room.maintenance")
    assert (audit.actor, audit.object) == ("tech-li", "room/s1/chill")
    assert audit.after == {"until_ms": minutes(40), "reason": "evaporator coil replacement"}

    await hub.run_until(55, {T: 8.0})  # still warm when it ends: counted from its end
    alarm = hub.alert("temperature-high")
    assert (alarm.since_ms, alarm.fired_ms) == (minutes(40), minutes(55))
    assert sorted(twilio_texts(twilio_fake)) == ["c1", "c2", "c3", "c5"]


@pytest.mark.parametrize("report", ["delivered", "failed"])
async def test_the_gsm_modem_texts_the_chinese_alarm_and_its_delivery_is_recorded(
    hubs: Hubs, report: Literal["delivered", "failed"]
) -> None:
    async with GsmModemEmulator(reports=report) as emulator:
        modem = GsmModem.model_validate({"id": "modem", "port": emulator.path, "timeout": "2s"})

        def on_delivery(ref: str, status: DeliveryStatus) -> None:
            hub.svc.delivery(ref, status)  # the hub is opened below, with the notifier

        notifier = GsmNotifier(modem, on_delivery=on_delivery)
        doc = site_doc(
            [modem.model_dump(mode="json")], policies=(COLD_ONCE, WARN), room_name=LONG_ROOM
        )
        hub = hubs.open(doc, [notifier])
        try:
            await hub.run_until(1, {T: 2.0, "di/door_1": 0.0})
            await hub.run_until(11.5, {"di/door_1": 1.0})  # door alarm at 11.5
            await until(
                lambda: all(n.status == report for n in hub.notes()) and len(hub.notes()) == 3,
                f"the {report} reports of three messages",
                within=5,
            )
            door, notes = hub.alert("door-open"), hub.notes()
        finally:
            await hub.close()  # the modem's port, before the emulator goes
    room = LONG_ROOM.split(" ", maxsplit=1)[0]
    text = f"告警：{SITE} {room} 门未关，08:01起，已10分钟。回复{reply_code(door.id, KEY)}确认"  # noqa: RUF001
    assert [(m.destination, m.text, m.parts) for m in emulator.messages] == [
        (PHONE[c], text, 2) for c in LEVEL1
    ]
    assert all(p.status_report for p in emulator.parts)
    assert [(n.recipient, n.notifier, n.parts, n.text) for n in notes] == [
        (c, "modem", 2, text) for c in LEVEL1
    ]
    refs = [",".join(map(str, m.references)) for m in emulator.messages]
    assert [n.provider_ref for n in notes] == refs
    assert [(a.object, a.after) for a in hubs.trail("alert.delivery")] == [
        (f"notification/{n.id}", {"ids": [n.id], "status": report}) for n in notes
    ]


async def test_the_hourly_limit_folds_the_rest_into_one_later_sms(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings, policies=(COLD_ONCE, WARN), max_per_hour=2), notifiers)
    await hub.run_until(1, {T: 2.0, "di/door_1": 0.0, "di/mains": 1.0})
    await hub.run_until(20, {"di/door_1": 1.0})  # door alarm at 11.5
    await hub.run_until(30, {"di/mains": 0.0})  # power cut alarm at 21
    await hub.run_until(72, {T: 6.0})  # door open and warm at 32.5, too warm at 45.5
    for c in LEVEL1:
        assert [(n.kind, n.status) for n in hub.notes(c)] == [("alarm", "accepted")] * 2 + [
            ("alarm", "queued")
        ] * 2
        assert len(twilio_texts(twilio_fake)[c]) == 2
    await hub.run_until(73)  # the first message left the hour at 71.5; checked every 5 min
    rooms = f"{ROOM} 温度过高，{ROOM} 门未关且升温"  # noqa: RUF001
    for c in LEVEL1:
        sent = twilio_texts(twilio_fake)[c]
        assert [t.split("：")[0] for t in sent[:2]] == ["告警", "告警"]  # noqa: RUF001
        assert sent[2] == f"{SITE} 2个告警：{rooms}。08:30起。"  # noqa: RUF001
        notes = hub.notes(c)
        assert {n.status for n in notes} == {"accepted"}  # none lost
        times = sorted({((n.sent_ms or 0) - minutes(0)) / 60_000 for n in notes})
        assert times == [11.5, 21.0, 72.5]


async def test_a_grouped_sms_counts_once_against_the_hourly_limit(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    doc = site_doc(settings, policies=(COLD_ONCE, WARN), rooms=2, max_per_hour=2)
    hub = hubs.open(doc, notifiers)
    await hub.run_until(1, {T: 2.0, "di/door_1": 0.0, "di-r1/mains": 1.0, "di-r2/mains": 1.0})
    await hub.run_until(2, {"di-r1/mains": 0.0, "di-r2/mains": 0.0})  # one grouped SMS at 2
    assert [len(t) for t in twilio_texts(twilio_fake).values()] == [1, 1, 1]
    await hub.run_until(13, {"di/door_1": 1.0})  # door alarm at 12: the 2nd SMS of the hour
    assert [len(t) for t in twilio_texts(twilio_fake).values()] == [2, 2, 2]


async def test_an_alarm_queued_while_a_retry_round_fails_again_is_not_lost(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    settings, notifiers = cloud(twilio_fake, aliyun_fake, tmp_path)
    hub = hubs.open(site_doc(settings, policies=(COLD_ONCE, WARN), retries=1), notifiers)
    for fake in (twilio_fake, aliyun_fake):
        fake.fail_next(6, "error")  # both down for two rounds of three messages
    await hub.run_until(1, {T: 2.0, "di/door_1": 0.0, "di/mains": 1.0})
    await hub.run_until(11.5, {"di/door_1": 1.0})  # door alarm at 11.5: every provider fails
    await hub.run_until(12, {"di/mains": 0.0})  # cut at 12: its alarm at 12.5, with the retry
    await hub.run_until(30)  # the providers are back from the round at 13.5
    assert [n.status for n in hub.notes("c1")] == ["accepted", "accepted"]
    assert any("断电" in t for t in twilio_texts(twilio_fake)["c1"])
