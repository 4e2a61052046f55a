"""Alert message text: golden cases, SMS length, template variables, bilingual names.

Golden cases: ``tests/cases/messages/<name>.yaml``, one message each, rendered in both
languages. ``message`` holds the Message with times as ISO 8601 strings with an offset (UTC
ms are what the code sees); ``expect`` the exact text, its length and its SMS part count per
language; ``why`` what the case guards and why the text is as it is.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from coldchain.alerting.facts import AlertFacts, Message
from coldchain.alerting.links import sign
from coldchain.alerting.messages import (
    TEMPLATE_VALUE_MAX,
    Language,
    display_name,
    fits_one_sms,
    render,
    sms_parts,
    template_params,
)

CASES = Path(__file__).parent / "cases" / "messages"
CASE_FILES = sorted(CASES.glob("*.yaml"))
COUNTY = Path(__file__).parent.parent / "firmware_configs" / "sites" / "county.yaml"
KEY = b"test-key-0123456789abcdef"
HUB = "http://10.0.0.5:8080/a/"
COMMA = "\uff0c"  # the full-width comma between Chinese clauses
NOW = "2025-05-03T10:30:00+08:00"


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _alert(alert_id: int, spec: dict[str, Any]) -> AlertFacts:
    fields = {"room": None, **spec}
    since = fields.pop("since", None)
    return AlertFacts(alert_id=alert_id, since_ms=_ms(since) if since else 0, **fields)


def _message(spec: dict[str, Any]) -> Message:
    return Message(
        kind=spec["kind"],
        alerts=tuple(_alert(i, a) for i, a in enumerate(spec["alerts"], start=1)),
        now_ms=_ms(spec["now"]),
        timezone=spec.get("timezone", "Asia/Shanghai"),
        link=spec.get("link"),
        reply_code=spec.get("reply_code"),
        extra=spec.get("extra", {}),
    )


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(case) == {"why", "message", "expect"}, f"{path.name}: keys {sorted(case)}"
    assert set(case["expect"]) == {"zh-CN", "en"}, f"{path.name}: expect both languages"
    return case


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_message_case(path: Path, language: Language) -> None:
    case = _load(path)
    want = case["expect"][language]
    text = render(_message(case["message"]), language)
    assert text == want["text"]
    assert (len(text), sms_parts(text)) == (want["chars"], want["parts"])


def test_every_kind_has_a_golden_case() -> None:
    kinds = {_load(p)["message"]["kind"] for p in CASE_FILES}
    rules = {a["rule_kind"] for p in CASE_FILES for a in _load(p)["message"]["alerts"]}
    assert kinds == {"alarm", "warning", "resolved", "grouped", "reminder", "test"}
    assert rules >= {
        "threshold", "rate_of_rise", "door_open", "door_open_warm", "stale", "sensor_fault",
        "gateway_offline", "power",
    }  # fmt: skip


# --- SMS length ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", 1),
        ("a" * 160, 1),  # GSM-7 single: 160 septets
        ("a" * 161, 2),  # then 153 per part
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters cost 2 septets: 160
        ("€" * 81, 2),
        ("a" * 159 + "[", 2),  # 161 septets
        ("a" * 152 + "{" + "a" * 10, 2),  # the escape is not split from its character
        ("中" * 70, 1),  # UCS-2 single: 70
        ("中" * 71, 2),  # then 67 per part
        ("中" * 134, 2),
        ("中" * 135, 3),
        ("a" * 69 + "°", 1),  # ° is not GSM-7: the whole text goes as UCS-2
        ("a" * 70 + "°", 2),
        ("6.2°C" * 14, 1),  # "°C" is 2 characters: 70
    ],
)
def test_sms_parts(text: str, parts: int) -> None:
    assert sms_parts(text) == parts
    assert fits_one_sms(text) is (parts == 1)


def _county() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COUNTY.read_text(encoding="utf-8"))
    return doc


def _typical_alarms(site: str, room: str) -> list[AlertFacts]:
    since = _ms("2025-05-02T22:10:00+08:00")  # yesterday: the date is shown when it fits
    common: dict[str, Any] = {"severity": "alarm", "site": site, "room": room, "since_ms": since}
    temp: dict[str, Any] = {"quantity": "temperature", "unit": "°C"}
    hum: dict[str, Any] = {"value": 80.4, "limit": 85, "direction": "below"}
    return [
        AlertFacts(1, "threshold", **common, **temp, value=-12.5, limit=-18, direction="above"),
        AlertFacts(2, "threshold", **common, **temp, value=-1.2, limit=0, direction="below"),
        AlertFacts(3, "threshold", **common, quantity="humidity", unit="%RH", **hum),
        AlertFacts(4, "rate_of_rise", **common, **temp, value=3.2, limit=2),
        AlertFacts(5, "door_open", **common, quantity="door"),
        AlertFacts(6, "door_open_warm", **common, **temp, value=-14.9, limit=-18),
        AlertFacts(7, "stale", **common, quantity="temperature", device="freeze-probe"),
        AlertFacts(8, "sensor_fault", **common, quantity="temperature", device="freeze-probe"),
        AlertFacts(9, "power", **common, quantity="power"),
    ]


def _county_alarms() -> list[AlertFacts]:
    return [
        a
        for s in _county()["sites"]
        for r in s["rooms"]
        for a in _typical_alarms(s["name"], r["name"])
    ]


def test_typical_alarms_without_a_link_fit_one_chinese_sms() -> None:
    for a in _county_alarms():
        msg = Message("alarm", (a,), _ms(NOW), reply_code="1234", extra={"window_s": "900"})
        text = render(msg, "zh-CN")
        assert fits_one_sms(text), f"{len(text)} characters: {text}"


def test_typical_alarms_with_a_link_take_the_fewest_parts() -> None:
    """With a real link, Chinese needs two parts (the link alone is ~50 of 70 characters)
    and never more, so nothing is dropped: the date of yesterday's start stays. English is
    GSM-7 (no degree sign) in one part, or in two with everything kept."""
    link = HUB + sign(1234, "zhang-wei", _ms(NOW) + 86_400_000, KEY)
    english_parts = []
    for a in _county_alarms():
        msg = Message("alarm", (a,), _ms(NOW), link=link, reply_code="1234")
        zh, en = render(msg, "zh-CN"), render(msg, "en")
        assert sms_parts(zh) == 2, zh
        assert "5月2日22:10起" in zh, zh
        assert zh.endswith(" " + link)
        assert en.endswith(" " + link)
        assert "°" not in en, en
        english_parts.append(sms_parts(en))
        if sms_parts(en) == 2:
            assert "since 2 May 22:10" in en, en
    assert set(english_parts) == {1, 2}


def test_compact_text_keeps_site_room_value_and_limit() -> None:
    link = HUB + sign(1234, "zhang-wei", _ms(NOW) + 86_400_000, KEY)
    for a in _county_alarms():
        msg = Message("reminder", (a,), _ms(NOW), link=link, reply_code="1234")
        for lang in ("zh-CN", "en"):
            text = render(msg, lang)
            assert a.room is not None
            assert display_name(a.site, lang) in text
            assert display_name(a.room, lang) in text
            for number in (a.value, a.limit):
                if number is not None:
                    assert f"{number:g}" in text, text


def test_rate_of_rise_window_must_be_seconds() -> None:
    a = _typical_alarms("S", "R")[3]
    msg = Message("alarm", (a,), _ms(NOW), extra={"window_s": "15min"})
    with pytest.raises(ValueError, match="alert 4: extra window_s must be whole seconds: '15min'"):
        render(msg, "en")


def test_a_message_about_an_alert_needs_one() -> None:
    with pytest.raises(ValueError, match="a reminder message needs an alert"):
        render(Message("reminder", (), _ms(NOW)), "zh-CN")


# --- template variables --------------------------------------------------------------------


def test_template_params_alarm() -> None:
    a = _typical_alarms("双溪镇禽类冷库 Shuangxi poultry cold store", "冷鲜禽 Chilled poultry")[0]
    link = HUB + "EWgW0SjosvwDzzMesg.zhang-wei"
    msg = Message("alarm", (a,), _ms(NOW), link=link, reply_code="0815")
    assert template_params(msg, "zh-CN") == {
        "site": "双溪镇禽类冷库",
        "room": "冷鲜禽",
        "what": "温度过高 -12.5°C",
        "value": "-12.5°C",
        "limit": "-18°C",
        "since": "5月2日22:10",
        "duration": "12小时20分",
        "link": link,
        "token": "EWgW0SjosvwDzzMesg.zhang-wei",
        "code": "0815",
        "count": "1",
        "rooms": "冷鲜禽 温度过高",
    }
    assert template_params(msg, "en") == {
        "site": "Shuangxi poultry cold store",
        "room": "Chilled poultry",
        "what": "too warm -12.5°C",
        "value": "-12.5°C",
        "limit": "-18°C",
        "since": "2 May 22:10",
        "duration": "12 h 20 min",
        "link": link,
        "token": "EWgW0SjosvwDzzMesg.zhang-wei",
        "code": "0815",
        "count": "1",
        "rooms": "Chilled poultry too warm",
    }


def test_template_params_absent_values_are_a_dash() -> None:
    """Aliyun rejects an empty variable."""
    a = AlertFacts(3, "gateway_offline", "alarm", "梅林镇茶叶冷库", None, "gateway")
    params = template_params(Message("alarm", (a,), _ms(NOW)), "zh-CN")
    assert params["what"] == "网关离线"
    for key in ("room", "value", "limit", "since", "duration", "link", "token", "code"):
        assert params[key] == "-", key


def test_template_params_test_message_has_every_key() -> None:
    params = template_params(Message("test", (), _ms(NOW), reply_code="0000"), "zh-CN")
    assert params == {
        "site": "-", "room": "-", "what": "coldchain 测试短信", "value": "-", "limit": "-",
        "since": "10:30", "duration": "-", "rooms": "-", "count": "0", "code": "0000",
        "link": "-", "token": "-",
    }  # fmt: skip


def test_template_params_resolved_what_has_no_value() -> None:
    a = _typical_alarms("S", "R")[0]
    params = template_params(Message("resolved", (a,), _ms(NOW)), "en")
    assert (params["what"], params["value"]) == ("too warm", "-12.5°C")


def test_template_params_are_cut_to_35_characters_but_the_link_is_not() -> None:
    site = "东塘镇果蔬冷库 Dongtang fruit and vegetable cold store (north bank, building 2)"
    rooms = ["水果库 Fruit room", "蔬菜库 Vegetable room", "预冷间 Pre-cooling room"] * 3
    alerts = tuple(AlertFacts(i, "power", "alarm", site, r, "power") for i, r in enumerate(rooms))
    link = HUB + sign(70_000, "a-contact-with-a-long-id", _ms(NOW) + 3_600_000, KEY)
    msg = Message("grouped", alerts, _ms(NOW), link=link)
    zh, en = template_params(msg, "zh-CN"), template_params(msg, "en")
    listed = ["水果库 断电", "蔬菜库 断电", "预冷间 断电", "水果库 断电", "另5个"]
    assert zh["rooms"] == COMMA.join(listed)
    assert zh["what"] == "9个告警"
    assert en["site"] == "Dongtang fruit and vegetable cold…"  # no space before "…"
    assert zh["site"] == "东塘镇果蔬冷库"
    assert en["rooms"] == "Fruit room power cut, and 8 more"
    assert en["link"] == link
    assert len(link) > TEMPLATE_VALUE_MAX
    assert all(len(v) <= TEMPLATE_VALUE_MAX for k, v in en.items() if k not in ("link", "token"))


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "zh", "en"),
    [
        ("城区物流中心 City logistics centre", "城区物流中心", "City logistics centre"),
        ("双溪镇禽类冷库 Shuangxi poultry cold store",
         "双溪镇禽类冷库", "Shuangxi poultry cold store"),
        ("东塘镇果蔬冷库 Dongtang fruit and vegetable cold store",
         "东塘镇果蔬冷库", "Dongtang fruit and vegetable cold store"),
        ("梅林镇茶叶冷库 Meilin green tea cold store",
         "梅林镇茶叶冷库", "Meilin green tea cold store"),
        ("分拣大厅 Sorting hall", "分拣大厅", "Sorting hall"),
        ("1号冷藏库 Cold room 1 (chilled)", "1号冷藏库", "Cold room 1 (chilled)"),
        ("2号冷冻库 Cold room 2 (frozen)", "2号冷冻库", "Cold room 2 (frozen)"),
        ("冷鲜禽 Chilled poultry", "冷鲜禽", "Chilled poultry"),
        ("冻品库 Frozen poultry", "冻品库", "Frozen poultry"),
        ("水果库 Fruit room", "水果库", "Fruit room"),
        ("蔬菜库 Vegetable room", "蔬菜库", "Vegetable room"),
        ("预冷间 Pre-cooling room", "预冷间", "Pre-cooling room"),
        ("绿茶冷藏库 Green tea (chilled)", "绿茶冷藏库", "Green tea (chilled)"),
        ("茶叶冷冻库 Green tea long-term (frozen)", "茶叶冷冻库", "Green tea long-term (frozen)"),
        # English first, letters inside the Chinese name, one language only
        ("Cold room 1 冷藏库", "冷藏库", "Cold room 1"),
        ("A区冷库 Zone A cold room", "A区冷库", "Zone A cold room"),
        ("冷库 1", "冷库 1", "冷库 1"),
        ("Cold store", "Cold store", "Cold store"),
        ("冷鲜禽（Chilled）", "冷鲜禽（Chilled）", "冷鲜禽（Chilled）"),  # noqa: RUF001
    ],
)  # fmt: skip
def test_display_name(name: str, zh: str, en: str) -> None:
    assert (display_name(name, "zh-CN"), display_name(name, "en")) == (zh, en)


def test_display_name_covers_every_county_name() -> None:
    doc = _county()
    rooms = [r["name"] for s in doc["sites"] for r in s["rooms"]]
    names = [s["name"] for s in doc["sites"]] + rooms
    for name in names:
        zh, en = display_name(name, "zh-CN"), display_name(name, "en")
        assert f"{zh} {en}" == name, name
