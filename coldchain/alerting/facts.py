"""What a message about an alert says, independent of language and channel, and the one
place that derives it from an alert: :func:`alert_facts` serves the hub (from a stored alert)
and an agent's edge fallback (from a watch and its transition) alike, so the same alarm reads
the same whoever texts it.

What must stay true of :func:`alert_facts`:

* a condition without a unit (door open, power cut, stale or faulty sensor, gateway offline)
  shows no value and no limit: the condition is the news, a bare "1" or "0" is noise;
* the device is the series id's device, parsed by :meth:`~coldchain.reading.SeriesId.parse`;
  a series that does not parse names no device (the text goes out without that detail);
* site and room are their display names from the config, or their ids when the config no
  longer has them.

:func:`message_extra` gives what a message adds besides the facts (a rate-of-rise rule's
window, shown as "10分钟升3.2°C").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from coldchain.reading import SeriesId

if TYPE_CHECKING:
    from coldchain.alerting.rules.base import RuleLogic
    from coldchain.config.site import SiteConfig

Severity = Literal["warning", "alarm"]
MessageKind = Literal["alarm", "warning", "resolved", "grouped", "reminder", "test"]


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """One alert, as a person should read it.

    ``rule_kind`` is the rule's kind (threshold, rate_of_rise, door_open, door_open_warm,
    stale, sensor_fault, gateway_offline, gateway_clock, gateway_backlog, gateway_disk,
    power, backup); ``quantity`` what it watches (temperature, humidity, door, power, gateway,
    clock, backlog, disk, backup); ``value``/``limit`` in ``unit``;
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
    point: str | None = None  # the series' point (a sorting line's chute_2_full)


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


class Subject(Protocol):
    """What an alert is about: a stored alert (``alerts.store.AlertRow``) or a watch
    (:class:`~coldchain.alerting.rules.base.Watch`) both have these."""

    @property
    def severity(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def room(self) -> str | None: ...
    @property
    def gateway(self) -> str | None: ...
    @property
    def series(self) -> str | None: ...
    @property
    def quantity(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def direction(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Places:
    """Display names and time zones of a config's sites and rooms."""

    sites: dict[str, str]  # site id -> name
    rooms: dict[tuple[str, str], str]  # (site, room) -> name
    timezones: dict[str, str]  # site id -> IANA zone

    @classmethod
    def of(cls, cfg: SiteConfig) -> Places:
        return cls(
            sites={s.id: s.name for s in cfg.sites},
            rooms={(s.id, r.id): r.name for s in cfg.sites for r in s.rooms},
            timezones={s.id: s.timezone for s in cfg.sites},
        )

    def timezone(self, site: str) -> str:
        return self.timezones.get(site, "Asia/Shanghai")


def _parsed(series: str | None) -> SeriesId | None:
    if not series:
        return None
    try:
        return SeriesId.parse(series)
    except ValueError:
        return None


def point_of(series: str | None) -> str | None:
    """The point of a series id; None without one."""
    sid = _parsed(series)
    return sid.point if sid else None


def device_of(series: str | None) -> str | None:
    """The device of a series id ("site/gateway/device/point"); None without one."""
    sid = _parsed(series)
    return sid.device if sid else None


def alert_facts(
    a: Subject,
    places: Places,
    *,
    alert_id: int,
    rule_kind: str,
    value: float | None,
    limit: float | None,
    since_ms: int,
) -> AlertFacts:
    """The facts of alert ``a`` for a message (see the module docstring for what holds)."""
    # a line fault's value is its code, unitless but the news
    shown = bool(a.unit) or (rule_kind == "line" and a.quantity == "fault")
    direction = a.direction
    return AlertFacts(
        alert_id=alert_id,
        rule_kind=rule_kind,
        severity="alarm" if a.severity == "alarm" else "warning",
        site=places.sites.get(a.site, a.site),
        room=places.rooms.get((a.site, a.room), a.room) if a.room else a.room,
        quantity=a.quantity,
        value=value if shown else None,
        limit=limit if shown else None,
        unit=a.unit,
        direction="below" if direction == "below" else ("above" if direction else None),
        since_ms=since_ms,
        gateway=a.gateway,
        device=device_of(a.series),
        point=point_of(a.series),
    )


def message_extra(rules: Iterable[RuleLogic | None]) -> dict[str, str]:
    """What a message about alerts of ``rules`` adds to their facts: ``window_s``, the
    window of a rate-of-rise rule among them (the last one's, in a grouped message), and
    ``code/N``, what a line rule says fault code N means."""
    from coldchain.alerting.rules import LineRule, RateOfRiseRule

    extra: dict[str, str] = {}
    for rule in rules:
        if isinstance(rule, RateOfRiseRule):
            extra["window_s"] = str(round(rule.window))
        if isinstance(rule, LineRule):  # what a line fault's code means
            extra.update({f"code/{code}": text for code, text in rule.codes.items()})
    return extra
