"""What an agent's edge fallback tells the hub: the alarms it texted itself while its uplink
was down, so the hub neither pages the same people again when the backlog replays through its
own evaluator, nor forgets who was told.

A notice is one alert episode as the gateway saw it, with every text sent about it::

    {"v": 1, "gw": "gw-city",
     "notices": [{"id": "5f0c9a...", "rev": 2,
                  "key": "temperature-high/alarm/city/gw-city/cr1-probe/temperature",
                  "rule": "temperature-high", "kind": "threshold", "severity": "alarm",
                  "site": "city", "room": "cold-room-1",
                  "series": "city/gw-city/cr1-probe/temperature",
                  "since": 1764300000000, "fired": 1764300900000,
                  "value": 6.2, "limit": 4.0, "resolved": null,
                  "sent": [{"contact": "wang-li", "phone": "+8613800000001",
                            "message": "alarm", "ts": 1764300901000,
                            "status": "accepted", "ref": "17", "error": null}]}]}

``key`` is the evaluator's watch key, the same on the hub (``rule/tier/subject``).
``since`` is when the condition began, ``fired`` when it fired, ``resolved`` when it cleared
(null while it lasts), all UTC ms. ``sent`` lists each text: ``message`` alarm, grouped (one
text about several alerts) or resolved; ``status`` accepted, delivered or failed (then
``error`` says why); ``ref`` the modem's message reference(s).

A notice changes while it lives (a delivery report, the resolved text): each change raises
``rev`` and the whole notice is sent again; the hub stores the newest revision of each id.
The hub acknowledges ``[id, rev]`` pairs once stored::

    {"v": 1, "notices": [["5f0c9a...", 2]]}

An ack of an older revision does not settle a newer one. Decoding is strict, as for
telemetry: a bad payload raises :class:`~coldchain.protocol.messages.ProtocolError` naming
the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from coldchain.protocol import VERSION
from coldchain.protocol.auth import signed, verifies
from coldchain.protocol.limits import MAX_NOTICES_BYTES
from coldchain.protocol.messages import MIN_TS_MS, ProtocolError, pack, unpack

NoticeMessage = Literal["alarm", "grouped", "resolved"]
SendStatus = Literal["accepted", "delivered", "failed"]
Severity = Literal["warning", "alarm"]
SEVERITIES: tuple[Severity, ...] = ("warning", "alarm")
NOTICE_MESSAGES: tuple[NoticeMessage, ...] = ("alarm", "grouped", "resolved")
SEND_STATUSES: tuple[SendStatus, ...] = ("accepted", "delivered", "failed")
MAX_NOTICES = 1000  # per message; an agent sends fewer per message (see edge_agent.fallback)

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_NOTICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PHONE = re.compile(r"^\+\d{6,15}$")
_S = TypeVar("_S", bound=str)


@dataclass(frozen=True, slots=True)
class Sent:
    """One text the gateway sent about an alert, and what became of it."""

    contact: str
    phone: str
    message: NoticeMessage
    ts_ms: int
    status: SendStatus
    ref: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """One alert the gateway texted about while its uplink was down."""

    id: str
    rev: int
    key: str
    rule: str
    kind: str
    severity: Severity
    site: str
    room: str | None
    series: str | None
    since_ms: int
    fired_ms: int
    value: float | None
    limit: float | None
    resolved_ms: int | None = None
    sent: tuple[Sent, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Notices:
    """The notices of one gateway, as one message carries them."""

    gateway: str
    notices: tuple[Notice, ...]


def _sent(s: Sent) -> dict[str, Any]:
    return {
        "contact": s.contact,
        "phone": s.phone,
        "message": s.message,
        "ts": s.ts_ms,
        "status": s.status,
        "ref": s.ref,
        "error": s.error,
    }


def _notice(n: Notice) -> dict[str, Any]:
    return {
        "id": n.id,
        "rev": n.rev,
        "key": n.key,
        "rule": n.rule,
        "kind": n.kind,
        "severity": n.severity,
        "site": n.site,
        "room": n.room,
        "series": n.series,
        "since": n.since_ms,
        "fired": n.fired_ms,
        "value": n.value,
        "limit": n.limit,
        "resolved": n.resolved_ms,
        "sent": [_sent(s) for s in n.sent],
    }


def encode_notices(gateway: str, notices: Sequence[Notice], *, key: bytes | None = None) -> bytes:
    """The ``alerts`` message of ``gateway`` carrying ``notices``; with its message ``key``,
    authenticated (:mod:`.auth`)."""
    if not _ID.match(gateway):
        raise ProtocolError(f"bad gateway id {gateway!r}")
    if len(notices) > MAX_NOTICES:
        raise ProtocolError(f"{len(notices)} notices in one message; at most {MAX_NOTICES}")
    fields = {"v": VERSION, "gw": gateway, "notices": [_notice(n) for n in notices]}
    return pack(signed(key, gateway, fields))


# --- strict decoding -----------------------------------------------------------------------


class _Fields:
    """Typed access to one map of the message; every failure names ``where``."""

    def __init__(self, raw: Any, where: str) -> None:
        if not isinstance(raw, dict):
            raise ProtocolError(f"{where} must be a map, got {type(raw).__name__}")
        self.raw, self.where = raw, where

    def fail(self, key: str, what: str) -> ProtocolError:
        return ProtocolError(f"{self.where}.{key}: {what}, got {self.raw.get(key)!r:.80}")

    def get(self, key: str) -> Any:
        if key not in self.raw:
            raise ProtocolError(f"{self.where}: '{key}' is missing")
        return self.raw[key]

    def text(self, key: str, *, pattern: re.Pattern[str] | None = None, max_len: int = 200) -> str:
        v = self.get(key)
        if type(v) is not str or not 0 < len(v) <= max_len:
            raise self.fail(key, f"must be a string of 1 to {max_len} characters")
        if pattern is not None and not pattern.match(v):
            raise self.fail(key, f"must match {pattern.pattern}")
        return v

    def opt_text(
        self, key: str, *, pattern: re.Pattern[str] | None = None, max_len: int = 200
    ) -> str | None:
        return None if self.get(key) is None else self.text(key, pattern=pattern, max_len=max_len)

    def choice(self, key: str, allowed: Sequence[_S]) -> _S:
        v = self.get(key)
        for a in allowed:
            if v == a:
                return a
        raise self.fail(key, f"must be one of {', '.join(allowed)}")

    def time(self, key: str, now_ms: int) -> int:
        v = self.get(key)
        if type(v) is not int or not MIN_TS_MS <= v <= now_ms + 86_400_000:
            raise self.fail(key, "must be UTC ms between 2020 and a day ahead of the hub")
        return v

    def opt_time(self, key: str, now_ms: int) -> int | None:
        return None if self.get(key) is None else self.time(key, now_ms)

    def number(self, key: str) -> float | None:
        v = self.get(key)
        if v is None:
            return None
        if type(v) not in (int, float) or not math.isfinite(v):
            raise self.fail(key, "must be a finite number or null")
        return float(v)


def _decode_sent(raw: Any, where: str, now_ms: int) -> Sent:
    f = _Fields(raw, where)
    return Sent(
        contact=f.text("contact", pattern=_ID, max_len=64),
        phone=f.text("phone", pattern=_PHONE, max_len=16),
        message=f.choice("message", NOTICE_MESSAGES),
        ts_ms=f.time("ts", now_ms),
        status=f.choice("status", SEND_STATUSES),
        ref=f.opt_text("ref"),
        error=f.opt_text("error", max_len=500),
    )


def _decode_notice(raw: Any, where: str, now_ms: int) -> Notice:
    f = _Fields(raw, where)
    rev = f.get("rev")
    if type(rev) is not int or rev < 1:
        raise f.fail("rev", "must be a whole number from 1")
    since, fired = f.time("since", now_ms), f.time("fired", now_ms)
    if fired < since:
        raise f.fail("fired", f"must not be before 'since' ({since})")
    resolved = f.opt_time("resolved", now_ms)
    if resolved is not None and resolved < since:
        raise f.fail("resolved", f"must not be before 'since' ({since})")
    sent = f.get("sent")
    if not isinstance(sent, list):
        raise f.fail("sent", "must be a list")
    return Notice(
        id=f.text("id", pattern=_NOTICE_ID, max_len=64),
        rev=rev,
        key=f.text("key", max_len=400),
        rule=f.text("rule", pattern=_ID, max_len=64),
        kind=f.text("kind", pattern=_ID, max_len=64),
        severity=f.choice("severity", SEVERITIES),
        site=f.text("site", pattern=_ID, max_len=64),
        room=f.opt_text("room", pattern=_ID, max_len=64),
        series=f.opt_text("series", max_len=400),
        since_ms=since,
        fired_ms=fired,
        value=f.number("value"),
        limit=f.number("limit"),
        resolved_ms=resolved,
        sent=tuple(_decode_sent(s, f"{where}.sent[{i}]", now_ms) for i, s in enumerate(sent)),
    )


def decode_notices(
    data: bytes, *, gateway: str | None = None, now_ms: int, key: bytes | None = None
) -> Notices:
    """Decode and check an ``alerts`` message; ``gateway`` is the one whose topic it came on.
    Larger than :data:`~coldchain.protocol.limits.MAX_NOTICES_BYTES`: refused undecoded.
    With that gateway's message ``key``, a message whose MAC is missing or does not verify
    is refused (reason ``bad_mac``, :mod:`.auth`)."""
    msg = unpack(data, max_bytes=MAX_NOTICES_BYTES, max_items=MAX_NOTICES + 1)
    if not isinstance(msg, dict):
        raise ProtocolError(f"a notices message must be a map, got {type(msg).__name__}")
    if msg.get("v") != VERSION:
        raise ProtocolError(f"protocol version {msg.get('v')!r:.40}, expected {VERSION}")
    gw = msg.get("gw")
    if type(gw) is not str or not _ID.match(gw):
        raise ProtocolError(f"bad gateway id {gw!r:.80}")
    if gateway is not None and gw != gateway:
        raise ProtocolError(f"gateway {gw!r:.80} published on the topic of {gateway!r}")
    if key is not None and not verifies(key, gw, msg):
        raise ProtocolError(
            f"notices of {gw}: the MAC is missing or does not verify", reason="bad_mac"
        )
    raw = msg.get("notices")
    if not isinstance(raw, list):
        raise ProtocolError(f"'notices' must be a list, got {raw!r:.80}")
    if len(raw) > MAX_NOTICES:
        raise ProtocolError(f"{len(raw)} notices in one message; at most {MAX_NOTICES}")
    notices = tuple(_decode_notice(n, f"notices[{i}]", now_ms) for i, n in enumerate(raw))
    ids = [n.id for n in notices]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ProtocolError(f"notice id {dup!r:.80} appears twice")
    return Notices(gw, notices)


def encode_notice_ack(stored: Sequence[tuple[str, int]]) -> bytes:
    """The hub's ``alerts/ack``: the ``(id, rev)`` of every notice it stored."""
    return pack({"v": VERSION, "notices": [[i, rev] for i, rev in stored]})


def decode_notice_ack(data: bytes) -> list[tuple[str, int]]:
    """The ``(id, rev)`` pairs of an ``alerts/ack``; :class:`ProtocolError` when malformed."""
    msg = unpack(data, max_bytes=MAX_NOTICES_BYTES, max_items=MAX_NOTICES + 1)
    if not isinstance(msg, dict) or msg.get("v") != VERSION:
        raise ProtocolError("a notice ack must be a v1 map")
    raw = msg.get("notices")
    if not isinstance(raw, list):
        raise ProtocolError(f"'notices' must be a list of [id, rev], got {raw!r:.80}")
    out: list[tuple[str, int]] = []
    for i, pair in enumerate(raw):
        ok = type(pair) is list and len(pair) == 2
        if ok:
            nid, rev = pair
            ok = type(nid) is str and bool(_NOTICE_ID.match(nid)) and type(rev) is int and rev > 0
        if not ok:
            raise ProtocolError(f"notices[{i}] must be [id, rev], got {pair!r:.80}")
        out.append((nid, rev))
    return out
