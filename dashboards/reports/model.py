"""What a report holds, ready to render: plain data, times in UTC epoch ms, the site's
zone to show them in."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from dashboards.reports.excursions import Excursion
from dashboards.reports.series import LeftOut, Stats


@dataclass(frozen=True, slots=True)
class RoomInfo:
    site_id: str
    site_name: str
    room_id: str
    room_name: str
    room_class: str
    temperature: str  # the band as text, e.g. "0 … 4 °C"
    humidity: str | None
    timezone: str


@dataclass(frozen=True, slots=True)
class PointSummary:
    """One room-air point (a temperature or humidity series) over the report's window."""

    series: str
    label: str  # device/point
    quantity: str
    unit: str
    stats: Stats
    gaps: tuple[tuple[int, int], ...]
    left_out: tuple[LeftOut, ...] = ()  # good readings not usable in any figure, by reason


@dataclass(frozen=True, slots=True)
class Record:
    """A line of the daily log: each point's value in force at ``ts_ms`` (None: no data)."""

    ts_ms: int
    out_of_range: bool
    values: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class SignatureRow:
    """A signature (hub/signatures.py): who, when, as which role, what it means, on which
    record (``alert/ID``, ``daily/SITE/ROOM/DAY``, ``rule/ID``) and that record's digest as
    it stood when signed (SHA-256, hex)."""

    audit_id: int
    ts_ms: int
    signer: str
    role: str
    object: str
    meaning: str
    digest: str
    comment: str | None = None
    cause: str | None = None
    corrective_action: str | None = None

    def public(self) -> dict[str, str | int | None]:
        return {
            "audit_id": self.audit_id,
            "ts_ms": self.ts_ms,
            "signer": self.signer,
            "role": self.role,
            "object": self.object,
            "meaning": self.meaning,
            "digest": self.digest,
            "comment": self.comment,
            "cause": self.cause,
            "corrective_action": self.corrective_action,
        }


@dataclass(frozen=True, slots=True)
class Ack:
    """An alert of the room that day, with its acknowledgement and comment."""

    alert_id: int
    rule: str
    severity: str
    state: str
    since_ms: int
    fired_ms: int | None
    resolved_ms: int | None
    peak: float | None
    limit: float | None
    unit: str
    acked_ms: int | None
    acked_by: str | None
    via: str | None
    comment: str | None


@dataclass(frozen=True, slots=True)
class DailyLog:
    room: RoomInfo
    day: date
    start_ms: int
    end_ms: int
    points: tuple[PointSummary, ...]
    records: tuple[Record, ...]
    excursions: tuple[Excursion, ...]
    acks: tuple[Ack, ...] | None  # None: the hub runs without alerts
    generated_ms: int
    # the audit trail's last record and link (hex) when the log was made: printed, it anchors
    # the trail outside the system (``coldchain records verify --anchor ID:LINK``)
    audit_head: tuple[int, str] | None = None
    # the newest seal of the readings (id, the hour it seals in UTC ms, link in hex), the
    # same for the readings (``coldchain records verify --seal-anchor ID:LINK``)
    seal_head: tuple[int, int, str] | None = None
    # the signatures of the log itself (approved) and of the room's alerts that day
    signatures: tuple[SignatureRow, ...] = ()


@dataclass(frozen=True, slots=True)
class RoomPeriod:
    room: RoomInfo
    points: tuple[PointSummary, ...]
    excursions: tuple[Excursion, ...]


@dataclass(frozen=True, slots=True)
class ExcursionReport:
    site_id: str
    site_name: str
    timezone: str
    first: date
    last: date  # inclusive
    start_ms: int
    end_ms: int
    rooms: tuple[RoomPeriod, ...]
    generated_ms: int
    # the signatures of the site's alerts in the period and of its rooms' daily logs
    signatures: tuple[SignatureRow, ...] = ()


def local(ts_ms: int, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``ts_ms`` as local time in ``tz``; a time no calendar date can show (before year 1,
    after 9999) as its epoch milliseconds, so a stored nonsense time cannot break a report."""
    try:
        return datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz)).strftime(fmt)
    except (OverflowError, OSError, ValueError):
        return f"{ts_ms} ms since 1970 UTC"


def minutes(ms: int) -> str:
    """A duration as whole minutes (rounded), e.g. '95'."""
    return str(round(ms / 60_000))


BIG = 1e9
"""Values this large (in magnitude) are shown in scientific notation: no reading of a cold
room is, but the store can hold any float, and 1e308 written out is 309 digits."""


def num(value: float | None, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals ("" for None); very large ones as e.g. 1.00e+308,
    inf and nan as themselves."""
    if value is None:
        return ""
    if math.isfinite(value) and abs(value) >= BIG:
        return f"{value:.2e}"
    return f"{value:.{digits}f}"
