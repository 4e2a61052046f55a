"""What a message about an alert says, independent of language and channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["warning", "alarm"]
MessageKind = Literal["alarm", "warning", "resolved", "grouped", "reminder", "test"]


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """One alert, as a person should read it.

    ``rule_kind`` is the rule's kind (threshold, rate_of_rise, door_open, door_open_warm,
    stale, sensor_fault, gateway_offline, power); ``quantity`` what it watches
    (temperature, humidity, door, power, gateway); ``value``/``limit`` in ``unit``;
    ``since_ms`` when the condition began (UTC ms); ``direction`` above/below for limits.
    """

    alert_id: int
    rule_kind: str
    severity: Severity
    site: str  # site display name
    room: str | None  # room display name
    quantity: str
    value: float | None = None
    limit: float | None = None
    unit: str = ""
    direction: Literal["above", "below"] | None = None
    since_ms: int = 0
    gateway: str | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A message to render: one alert (alarm/warning/resolved/reminder) or several of one
    site (grouped), for one recipient."""

    kind: MessageKind
    alerts: tuple[AlertFacts, ...]
    now_ms: int
    timezone: str = "Asia/Shanghai"
    link: str | None = None  # signed one-tap acknowledge link
    reply_code: str | None = None  # reply with this code to acknowledge
    extra: dict[str, str] = field(default_factory=dict)
