"""The text of alert messages in zh-CN and en. Pure: a :class:`Message` in, text out.

:func:`render` writes the SMS (and robot) text; :func:`template_params` gives the same facts
as short variables for providers that only send approved templates (Aliyun, Tencent).

Order of facts: site, room, what (condition, value, limit), time (since when, how long),
then the reply code and the acknowledge link last, so a phone's link detector cannot glue
the following words onto the URL. No 【签名】 prefix: Chinese SMS providers add the signature.

Length: a message with any character outside the GSM 7-bit alphabet goes as UCS-2, 70
characters in one SMS and 67 per part of a long one (GSM-7: 160 / 153). :func:`render` writes
the text in a few styles, from full to compact (for en: ``C`` instead of ``°C``, which is not
in GSM-7; shorter words; no date; no start time and no device id), and returns the fullest one
that needs no more SMS parts than the most compact. Site, room, value and limit are always
there. A grouped message lists as many rooms as fit the same way, then "另N个" / "and N more"
("等N个" would read as the total in Chinese).

Numbers: one decimal, a trailing ".0" dropped ("6.2°C", "-18°C", "88%"); %RH is written "%".
Times: HH:MM in the message's time zone, with the date when it is not today there.
``rate_of_rise``: ``value`` is the rise in °C over the rule's window, ``limit`` the allowed
rise, and ``msg.extra["window_s"]`` the window in whole seconds (shown when present).
``forecast``: ``value`` is the estimate in minutes until the room reaches ``limit`` (°C).
``line``: ``quantity`` is the event; a chute's says which chute (from the point); a fault's
``value`` is its code, explained by ``msg.extra["code/N"]`` where the rule gives it.
``resolved``: ``now_ms`` is when it ended, ``value`` the value then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from coldchain.alerting.facts import AlertFacts, Message
from coldchain.sms.pdu import segments

Language = Literal["zh-CN", "en"]

MAX_LISTED = 12
"""Rooms named at most in a grouped SMS (more would not fit in a few parts anyway; trying
every count of a 100-room storm cost ~100 ms per recipient)."""

TEMPLATE_VALUE_MAX = 35
"""Aliyun's limit for an "other" template variable, in characters."""
_NONE = "-"  # Aliyun rejects an empty variable
# Full-width Chinese punctuation, named so that no ASCII look-alike slips in.
_COMMA, _COLON, _OPEN, _CLOSE = "\uff0c", "\uff1a", "\uff08", "\uff09"

# --- SMS length -------------------------------------------------------------------------


def sms_parts(text: str) -> int:
    """How many SMS ``text`` is sent as (GSM-7 160/153 with extension characters as 2,
    else UCS-2 70/67), counted by :func:`coldchain.sms.pdu.segments`."""
    return len(segments(text))


def fits_one_sms(text: str) -> bool:
    """True when ``text`` goes as a single SMS."""
    return sms_parts(text) == 1


# --- names --------------------------------------------------------------------------------


def _is_cjk(c: str) -> bool:
    # CJK ideographs, kana, hangul, full-width punctuation; not the ideographic space.
    return not c.isspace() and (
        "\u2e80" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" or "\uff00" <= c <= "\uffef"
    )


def display_name(name: str, language: Language) -> str:
    """The part of a bilingual name for ``language``: "双溪镇禽类冷库 Shuangxi poultry cold
    store" gives "双溪镇禽类冷库" (zh-CN) or "Shuangxi poultry cold store" (en); so does
    "Shuangxi poultry cold store 双溪镇禽类冷库". A name is bilingual when a space splits it
    into a side with CJK characters and a side with none that has Latin letters (the
    Chinese side may hold digits and letters: "1号冷藏库", "A区"). Otherwise the whole name."""
    cjk = [i for i, c in enumerate(name) if _is_cjk(c)]
    if not cjk:
        return name
    zh, en = _split_after(name, cjk[-1]) or _split_before(name, cjk[0]) or (name, name)
    return zh if language == "zh-CN" else en


def _has_latin(s: str) -> bool:
    return any(c.isascii() and c.isalpha() for c in s)


def _split_after(name: str, last_cjk: int) -> tuple[str, str] | None:
    """Chinese first: split at the first space after the last CJK character."""
    cut = name.find(" ", last_cjk)
    if cut < 0 or not _has_latin(name[cut:]):
        return None
    return name[:cut].strip(), name[cut:].strip()


def _split_before(name: str, first_cjk: int) -> tuple[str, str] | None:
    """Latin first: split at the last space before the first CJK character."""
    cut = name.rfind(" ", 0, first_cjk)
    if cut < 0 or not _has_latin(name[:cut]):
        return None
    return name[cut:].strip(), name[:cut].strip()


# --- words --------------------------------------------------------------------------------

_CONDITIONS: dict[Language, dict[str, str]] = {
    "zh-CN": {
        "temperature/above": "温度过高",
        "temperature/below": "温度过低",
        "humidity/above": "湿度过高",
        "humidity/below": "湿度过低",
        "rate_of_rise": "升温过快",
        "forecast": "预计超温",
        "door_open": "门未关",
        "door_open_warm": "门未关且升温",
        "stale": "传感器无数据",
        "sensor_fault": "传感器故障",
        "gateway_offline": "网关离线",
        "gateway_clock": "网关时钟偏差",
        "gateway_backlog": "网关数据积压",
        "gateway_disk": "网关存储将满",
        "backup": "备份缺失或失败",
        "power": "断电",
        "line/jam": "分拣线卡件",
        "line/e_stop": "分拣线急停",
        "line/fault": "分拣线故障",
        "line/chute_full": "格口已满",
        "line/chute_warm": "格口温度过高",
        "line/stopped": "分拣线在运行时段停机",
    },
    "en": {
        "temperature/above": "too warm",
        "temperature/below": "too cold",
        "humidity/above": "humidity high",
        "humidity/below": "humidity low",
        "rate_of_rise": "rising fast",
        "forecast": "reaches its limit",
        "door_open": "door open",
        "door_open_warm": "door open and warming",
        "stale": "no data from sensor",
        "sensor_fault": "sensor fault",
        "gateway_offline": "gateway offline",
        "gateway_clock": "gateway clock off",
        "gateway_backlog": "gateway backlog",
        "gateway_disk": "gateway disk nearly full",
        "backup": "no good backup",
        "power": "power cut",
        "line/jam": "sorting line jammed",
        "line/e_stop": "sorting line emergency stop",
        "line/fault": "sorting line fault",
        "line/chute_full": "full",
        "line/chute_warm": "too warm",
        "line/stopped": "sorting line stopped in its running hours",
    },
}
_LABELS: dict[Language, dict[str, str]] = {
    "zh-CN": {
        "alarm": "告警",
        "warning": "预警",
        "resolved": "已恢复",
        "still": "仍未确认",
        "still/short": "仍未确认",
    },
    "en": {
        "alarm": "ALARM",
        "warning": "Warning",
        "resolved": "Back to normal",
        "still": "still not acknowledged",
        "still/short": "not acked",
    },
}


@dataclass(frozen=True, slots=True)
class _Style:
    """How much a rendering says; see :data:`_LADDERS`."""

    degree: bool = True  # "°C"; else "C" (° is not in GSM-7)
    long_words: bool = True  # "15分钟" rather than "15分"
    date: bool = True  # the date of a start time that is not today
    since: bool = True  # the start time at all
    detail: bool = True  # the device or gateway id of stale/sensor_fault/gateway_*


def _ladder(*steps: dict[str, bool]) -> tuple[_Style, ...]:
    styles = [_Style()]
    for step in steps:
        styles.append(replace(styles[-1], **step))
    return tuple(styles)


_COMPACT = ({"long_words": False}, {"date": False}, {"since": False, "detail": False})
_LADDERS: dict[Language, tuple[_Style, ...]] = {
    # Chinese text is UCS-2 anyway: "°C" costs 2 characters but reads better than "C".
    "zh-CN": _ladder(*_COMPACT),
    # Dropping ° first turns a UCS-2 message (70 per SMS) into GSM-7 (160 per SMS).
    "en": _ladder({"degree": False}, *_COMPACT),
}


@dataclass(frozen=True, slots=True)
class _Ctx:
    msg: Message
    lang: Language
    style: _Style

    @property
    def zh(self) -> bool:
        return self.lang == "zh-CN"


# --- facts as words ----------------------------------------------------------------------


def _num(v: float) -> str:
    s = f"{v:.1f}"
    s = "0.0" if s == "-0.0" else s
    return s.removesuffix(".0")


def _amount(v: float, unit: str, style: _Style) -> str:
    if unit == "°C":
        return _num(v) + ("°C" if style.degree else "C")
    if unit in ("%RH", "%"):
        return _num(v) + "%"
    return _num(v) + unit


def _duration(seconds: int, ctx: _Ctx) -> str:
    """Elapsed time: 45秒 15分钟 2小时5分 1天3小时 / 45 s, 15 min, 2 h 5 min, 1 d 3 h."""
    s = max(seconds, 0)
    m, h, d = s // 60 % 60, s // 3600 % 24, s // 86400
    if ctx.zh:
        if s < 60:
            return f"{s}秒"
        if s < 3600:
            return f"{m}分钟" if ctx.style.long_words else f"{m}分"
        if s < 86400:
            return f"{h}小时" + (f"{m}分" if m else "")
        return f"{d}天" + (f"{h}小时" if h else "")
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{m} min"
    if s < 86400:
        return f"{h} h" + (f" {m} min" if m else "")
    return f"{d} d" + (f" {h} h" if h else "")


def _local(ms: int, ctx: _Ctx) -> datetime:
    return datetime.fromtimestamp(ms // 1000, ZoneInfo(ctx.msg.timezone))


def _clock(ms: int, ctx: _Ctx) -> str:
    """HH:MM in the message's time zone, with the date when that is not today."""
    at = _local(ms, ctx)
    hm = f"{at:%H:%M}"
    if not ctx.style.date or at.date() == _local(ctx.msg.now_ms, ctx).date():
        return hm
    return f"{at.month}月{at.day}日{hm}" if ctx.zh else f"{at.day} {at:%b} {hm}"


_CHUTE = re.compile(r"chute_(\d+)_")


def _condition(a: AlertFacts, ctx: _Ctx) -> str:
    key = f"{a.quantity}/{a.direction}" if a.rule_kind == "threshold" else a.rule_kind
    if a.rule_kind == "line":
        key = f"line/{a.quantity}"
    words = _CONDITIONS[ctx.lang]
    chute = _CHUTE.match(a.point or "") if a.quantity.startswith("chute") else None
    if chute and key in words:  # which chute: "2号格口已满", "chute 2 full"
        n = chute.group(1)
        return f"{n}号{words[key]}" if ctx.zh else f"chute {n} {words[key]}"
    if key in words:
        return words[key]
    if a.rule_kind == "threshold":
        return f"{a.quantity}超限" if ctx.zh else f"{a.quantity} out of range"
    return a.rule_kind


def _detail(a: AlertFacts, ctx: _Ctx) -> str:
    """The condition with the device or gateway it concerns, when the style allows."""
    cond = _condition(a, ctx)
    what = a.gateway if a.rule_kind in _GATEWAY_KINDS else a.device
    if not ctx.style.detail or what is None or a.rule_kind not in _DETAILED:
        return cond
    return f"{cond}{_OPEN}{what}{_CLOSE}" if ctx.zh else f"{cond} ({what})"


_GATEWAY_KINDS = frozenset({"gateway_offline", "gateway_clock", "gateway_backlog", "gateway_disk"})
_DETAILED = frozenset({"stale", "sensor_fault", *_GATEWAY_KINDS})


def _value(a: AlertFacts, ctx: _Ctx) -> str | None:
    if a.value is None:
        return None
    if a.rule_kind == "line" and a.quantity == "fault":  # the code, and what it means
        code = round(a.value)
        meaning = ctx.msg.extra.get(f"code/{code}")
        if ctx.zh:
            return f"代码{code}" + (f"{_OPEN}{meaning}{_CLOSE}" if meaning else "")
        return f"code {code}" + (f" ({meaning})" if meaning else "")
    if a.rule_kind == "forecast":  # value: minutes to the limit (none once resolved)
        if ctx.msg.kind == "resolved":
            return None
        minutes = max(0, round(a.value))
        return f"约{minutes}分钟后" if ctx.zh else f"in ~{minutes} min"
    amount = _amount(a.value, a.unit, ctx.style)
    if a.rule_kind != "rate_of_rise":
        return amount
    window = ctx.msg.extra.get("window_s")
    if window is None:
        return f"升{amount}" if ctx.zh else f"+{amount}"
    if not window.isdigit():
        raise ValueError(f"alert {a.alert_id}: extra window_s must be whole seconds: {window!r}")
    span = _duration(int(window), ctx)
    return f"{span}升{amount}" if ctx.zh else f"+{amount} in {span}"


def _limit(a: AlertFacts, ctx: _Ctx) -> str | None:
    if a.limit is None:
        return None
    amount = _amount(a.limit, a.unit, ctx.style)
    if not ctx.zh:
        return f"limit {amount}"
    side = {"above": "上限", "below": "下限"}.get(a.direction or "", "限值")
    return side + amount


def _times(a: AlertFacts, ctx: _Ctx, *, lasted: bool) -> list[str]:
    """Since when and for how long; nothing when the start is unknown (``since_ms`` 0)."""
    if a.since_ms <= 0:
        return []
    span = _duration((ctx.msg.now_ms - a.since_ms) // 1000, ctx)
    start = _clock(a.since_ms, ctx) if ctx.style.since else None
    if ctx.zh:
        head = [f"{start}起"] if start else []
        return [*head, f"持续{span}" if lasted else f"已{span}"]
    if lasted:
        return [f"lasted {span}" + (f" (from {start})" if start else "")]
    return [f"since {start} ({span})" if start else f"for {span}"]


def _ack(ctx: _Ctx) -> str:
    """The reply code, then the link (last, nothing after it)."""
    code = ctx.msg.reply_code
    reply = (f"回复{code}确认" if ctx.zh else f"Reply {code} to ack") if code else None
    return " ".join(x for x in (reply, ctx.msg.link) if x)


def _compose(ctx: _Ctx, label: str, names: list[str], clauses: list[str]) -> str:
    """zh: label, colon, names, clauses joined by full-width commas, "。", reply and link;
    en: "ALARM: site, room, clause, clause. Reply 1234 to ack http://..."."""
    tail = _ack(ctx)
    if ctx.zh:
        head = f"{label}{_COLON}" + " ".join(names)
        return f"{head} {_COMMA.join(clauses)}。{tail}"
    text = f"{label}: " + ", ".join([*names, *clauses]) + "."
    return f"{text} {tail}" if tail else text


# --- the kinds ----------------------------------------------------------------------------


def _names(a: AlertFacts, lang: Language) -> list[str]:
    return [display_name(n, lang) for n in (a.site, a.room) if n]


def _first(msg: Message) -> AlertFacts:
    if not msg.alerts:
        raise ValueError(f"a {msg.kind} message needs an alert")
    return msg.alerts[0]


def _alarm(ctx: _Ctx) -> str:
    """alarm, warning and reminder: the condition now."""
    a, words = _first(ctx.msg), _LABELS[ctx.lang]
    label = words[a.severity if ctx.msg.kind == "reminder" else ctx.msg.kind]
    if ctx.msg.kind == "reminder":
        still = words["still" if ctx.style.long_words else "still/short"]
        label = f"{label}{still}" if ctx.zh else f"{label} {still}"
    value = _value(a, ctx)
    what = _detail(a, ctx) + (f" {value}" if value else "")
    clauses = [what, *filter(None, [_limit(a, ctx)]), *_times(a, ctx, lasted=False)]
    return _compose(ctx, label, _names(a, ctx.lang), clauses)


def _resolved(ctx: _Ctx) -> str:
    """resolved: which condition ended, the value now, how long it lasted."""
    a = _first(ctx.msg)
    value = _value(a, ctx)
    now = (f"现{value}" if ctx.zh else f"now {value}") if value else None
    clauses = [_detail(a, ctx), *filter(None, [now, _limit(a, ctx)])]
    clauses += _times(a, ctx, lasted=True)
    return _compose(ctx, _LABELS[ctx.lang]["resolved"], _names(a, ctx.lang), clauses)


def _item(a: AlertFacts, ctx: _Ctx) -> str:
    """One entry of a grouped message: room and condition."""
    room = display_name(a.room, ctx.lang) if a.room else None
    return f"{room} {_condition(a, ctx)}" if room else _condition(a, ctx)


def _listing(ctx: _Ctx, shown: int) -> str:
    """The first ``shown`` entries, then how many more."""
    alerts = ctx.msg.alerts
    items = [_item(a, ctx) for a in alerts[:shown]]
    rest = len(alerts) - shown
    if rest:
        items.append(f"另{rest}个" if ctx.zh else f"and {rest} more")
    return (_COMMA if ctx.zh else ", ").join(items)


def _count(msg: Message, lang: Language) -> str:
    """3个告警 / 3 alarms. Chinese 告警 also means alerts in general, so it stands for a mix;
    English says alerts. 预警 / warnings when no alert of the group is an alarm."""
    n = len(msg.alerts)
    kinds = {a.severity for a in msg.alerts}
    if lang == "zh-CN":
        return f"{n}个{_LABELS[lang]['alarm' if 'alarm' in kinds else 'warning']}"
    noun = kinds.pop() if len(kinds) == 1 else "alert"
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _grouped(ctx: _Ctx, shown: int) -> str:
    """Several alerts of one site: the site, how many, the rooms with their conditions."""
    alerts = ctx.msg.alerts
    site = display_name(_first(ctx.msg).site, ctx.lang)
    starts = [a.since_ms for a in alerts if a.since_ms > 0]
    start = _clock(min(starts), ctx) if starts and ctx.style.since else None
    tail = _ack(ctx)
    if ctx.zh:
        text = f"{site} {_count(ctx.msg, ctx.lang)}{_COLON}{_listing(ctx, shown)}。"
        text += f"{start}起。" if start else ""
        return text + tail
    text = f"{site}, {_count(ctx.msg, ctx.lang)}: {_listing(ctx, shown)}."
    text += f" Since {start}." if start else ""
    return f"{text} {tail}" if tail else text


def _test(ctx: _Ctx) -> str:
    at = _clock(ctx.msg.now_ms, ctx)
    text = f"coldchain 测试短信 {at}" if ctx.zh else f"coldchain test message {at}"
    tail = _ack(ctx)
    return f"{text} {tail}" if tail else text


def _renderings(msg: Message, language: Language) -> list[str]:
    """Every rendering, in order of preference."""
    ladder = _LADDERS[language]
    if msg.kind == "grouped":
        _first(msg)
        return [
            _grouped(_Ctx(msg, language, style), shown)
            for shown in range(min(len(msg.alerts), MAX_LISTED), 0, -1)
            for style in ladder
        ]
    make = {"resolved": _resolved, "test": _test}.get(msg.kind, _alarm)
    return [make(_Ctx(msg, language, style)) for style in ladder]


def render(msg: Message, language: Language) -> str:
    """The SMS (or robot) text of ``msg``: the fullest rendering that needs no more SMS
    parts than the most compact one (for grouped: the most rooms, then the fullest)."""
    texts = _renderings(msg, language)
    parts = [sms_parts(t) for t in texts]
    return texts[parts.index(min(parts))]


# --- template variables ---------------------------------------------------------------


def _cap(s: str) -> str:
    """At most :data:`TEMPLATE_VALUE_MAX` characters, cut with "…"; "-" for empty."""
    if not s:
        return _NONE
    return s if len(s) <= TEMPLATE_VALUE_MAX else s[: TEMPLATE_VALUE_MAX - 1].rstrip() + "…"


def _rooms(ctx: _Ctx) -> str:
    """As many entries as fit one variable, then how many more."""
    n = len(ctx.msg.alerts)
    for shown in range(n, 0, -1):
        text = _listing(ctx, shown)
        if len(text) <= TEMPLATE_VALUE_MAX:
            return text
    return _listing(ctx, 1)  # cut by _cap


def template_params(msg: Message, language: Language) -> dict[str, str]:
    """The facts of ``msg`` as template variables, in ``language``: site, room, what (the
    condition with its value, "温度过高 6.2°C"; resolved: the condition alone; grouped:
    "3个告警"), value, limit, since (HH:MM, dated when not today), duration, code, count,
    rooms (room and condition of as many alerts as fit, then how many more), link, token.

    Every value is at most 35 characters (Aliyun's limit for an "other" variable), cut with
    "…", and "-" when absent (Aliyun rejects empty variables). Not cut: ``link`` (a cut link
    is useless) and ``token``, the link's last path segment (28 characters for a typical
    one), for Aliyun templates, which must carry the URL itself as fixed text:
    "…回复${code}确认 http://hub.example.cn/a/${token}"."""
    ctx = _Ctx(msg, language, _Style())
    zh = language == "zh-CN"
    keys = ("site", "room", "what", "value", "limit", "since", "duration", "rooms")
    out = dict.fromkeys(keys, "")
    out |= {"count": str(len(msg.alerts)), "code": msg.reply_code or ""}
    if msg.alerts:
        a = msg.alerts[0]
        value = _value(a, ctx)
        out["site"] = display_name(a.site, language)
        out["room"] = display_name(a.room, language) if a.room else ""
        out["rooms"], out["value"] = _rooms(ctx), value or ""
        out["limit"] = _amount(a.limit, a.unit, ctx.style) if a.limit is not None else ""
        with_value = value and msg.kind != "resolved"  # resolved: value is the value now
        out["what"] = _detail(a, ctx) + (f" {value}" if with_value else "")
        if a.since_ms > 0:
            out["since"] = _clock(a.since_ms, ctx)
            out["duration"] = _duration((msg.now_ms - a.since_ms) // 1000, ctx)
    if msg.kind == "grouped":
        out["what"] = _count(msg, language)
    elif msg.kind == "test":
        out["what"] = "coldchain 测试短信" if zh else "coldchain test message"
        out["since"] = _clock(msg.now_ms, ctx)
    capped = {k: _cap(v) for k, v in out.items()}
    link = msg.link or ""
    token = link.rstrip("/").rsplit("/", 1)[-1] if link else ""
    return capped | {"link": link or _NONE, "token": token or _NONE}
