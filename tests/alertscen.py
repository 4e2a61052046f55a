"""A harness for scenario tests of the hub's alerting: an :class:`AlertService` on the test
site of :mod:`tests.alertkit` (plus a duty contact ``c5`` and, on demand, more rooms), with
escalation policies, real notifiers (pointed at the SMS stand-ins or a GSM modem emulator),
the hub's audit log in the same database, and a clock the test moves.

Time moves only when the test says so: :meth:`Hub.run_until` advances the clock in steps,
feeding the values the test holds (as a poller would every step), then ``tick()`` and
``dispatcher.flush()``: everything the hub wants to send at a moment is sent (and recorded by
the stand-in) before the clock moves on. A test of the real linger runs
``dispatcher.run()`` instead and waits on the stand-in's records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.notifiers.base import Notifier
from alerts.notifiers.cloud import build
from alerts.service import AlertService
from alerts.store import AlertRow, NotificationRow
from coldchain.config.notify import Notifier as NotifierSettings
from coldchain.config.site import SiteConfig
from coldchain.reading import Reading
from coldchain.statedb import StateTarget
from hub.audit import AuditLog, AuditRecord
from tests.alertkit import MIN, PROFILES, T0, r, site
from tests.postgres import state_for
from tests.smsfakes import AliyunFake, TwilioFake

KEY = bytes(range(32))
"""The link key: reply codes stay the same across a restart, as with the hub's key file."""

PHONE = {f"c{i}": f"+861380000000{i}" for i in range(1, 6)}
NAME = {phone: contact for contact, phone in PHONE.items()}
LEVEL1 = ("c1", "c2", "c3")  # GSP: an alarm reaches at least three named people

COLD: dict[str, Any] = {
    "id": "cold",
    "levels": [{"contacts": list(LEVEL1)}, {"after": "15min", "contacts": ["c4"]}],
    "repeat": "30min",
    "notify_resolved": True,
}
COLD_ONCE: dict[str, Any] = {"id": "cold", "levels": [{"contacts": list(LEVEL1)}]}
WARN: dict[str, Any] = {"id": "warn", "levels": [{"contacts": ["c5"]}]}

CODE = re.compile(r"回复(\d{4})确认")
"""The reply code in a Chinese message."""

ROOM = "冷鲜禽"  # the chilled room's name in Chinese messages
SITE = "双溪禽类冷库"


def minutes(m: float) -> int:
    """The clock ``m`` minutes after T0."""
    return T0 + round(m * MIN)


def site_doc(
    notifiers: Sequence[Mapping[str, Any]],
    *,
    policies: Sequence[Mapping[str, Any]] = (COLD, WARN),
    rooms: int = 0,
    room_name: str | None = None,
    **alerts: Any,
) -> dict[str, Any]:
    """The test site with alarms to policy ``cold`` and warnings to ``warn``; ``rooms``
    more chilled rooms ``r1``.. named "1号库 Room 1".., each with a DI module (mains sense on
    DI8, doors off); ``room_name`` renames the chilled room; ``alerts`` override settings."""
    settings: dict[str, Any] = {
        "default_policy": {"alarm": "cold", "warning": "warn"},
        "policies": [dict(p) for p in policies],
        "notifiers": [dict(n) for n in notifiers],
        "linger": "50ms",
    }
    doc = site(**(settings | alerts))
    doc["contacts"].append({"id": "c5", "name": "值班室 Duty desk", "phone": PHONE["c5"]})
    the_site = doc["sites"][0]
    if room_name is not None:
        the_site["rooms"][0]["name"] = room_name
    devices = doc["gateways"][0]["devices"]
    for i in range(1, rooms + 1):
        the_site["rooms"].append({"id": f"r{i}", "name": f"{i}号库 Room {i}", "class": "chilled"})
        devices.append(
            {
                "id": f"di-r{i}",
                "profile": "waveshare-modbus-rtu-io-8ch-mains",
                "bus": "bus",
                "unit_id": 10 + i,
                "room": f"r{i}",
                "points": {f"door_{d}": {"enabled": False} for d in range(1, 8)},
            }
        )
    return doc


def cloud(
    twilio: TwilioFake, aliyun: AliyunFake, secret_dir: Path, *, twilio_secret: str | None = None
) -> tuple[list[dict[str, Any]], list[Notifier]]:
    """Twilio first, Aliyun second: their settings (for the config) and the notifiers."""
    settings: list[NotifierSettings] = [
        twilio.settings(secret_dir, secret=twilio_secret),
        aliyun.settings(secret_dir),
    ]
    return [s.model_dump(mode="json") for s in settings], [build(s) for s in settings]


@dataclass
class Clock:
    """The hub's clock, in UTC ms; moved by the test only."""

    ms: int = T0

    def __call__(self) -> int:
        return self.ms

    @property
    def minutes(self) -> float:
        return (self.ms - T0) / MIN


class Hub:
    """One AlertService instance and the values its sensors report."""

    def __init__(
        self,
        doc: dict[str, Any],
        *,
        db_path: StateTarget,
        audit: AuditLog,
        notifiers: Sequence[Notifier],
        clock: Clock,
    ) -> None:
        self.cfg = SiteConfig.model_validate(doc)
        self.clock = clock
        self.svc = AlertService(
            self.cfg,
            PROFILES,
            db_path=db_path,
            audit=audit,
            notifiers=notifiers,
            link_key=KEY,
            clock=clock,
        )
        self.values: dict[str, float] = {}
        self.closed = False

    def set(self, values: Mapping[str, float]) -> None:
        """Sensors report these values (``device/point``) from now on, every step."""
        self.values.update(values)

    def feed(self, values: Mapping[str, float] | None = None) -> None:
        """One poll now: ``values``, or every held value."""
        now = self.clock.ms
        items = (values if values is not None else self.values).items()
        self.svc.on_readings([r(series, now, v) for series, v in items])

    async def step(self) -> None:
        """Feed, tick, and send what is due."""
        self.feed()
        self.svc.tick()
        await self.svc.dispatcher.flush()

    async def run_until(
        self, m: float, values: Mapping[str, float] | None = None, *, step: float = 0.5
    ) -> None:
        """Hold ``values`` (and what is held already) until minute ``m``, a poll every
        ``step`` minutes."""
        if values:
            self.set(values)
        end = minutes(m)
        while self.clock.ms < end:
            self.clock.ms = min(end, self.clock.ms + round(step * MIN))
            await self.step()

    # --- what the hub did ----------------------------------------------------------------

    def alerts(self, rule: str | None = None) -> list[AlertRow]:
        """Alerts (not cancelled ones), oldest first, of ``rule`` when given."""
        rows = self.svc.store.query(limit=1000)[::-1]
        return [a for a in rows if rule is None or a.rule == rule]

    def alert(self, rule: str, tier: str = "alarm") -> AlertRow:
        [row] = [a for a in self.alerts(rule) if a.tier == tier]
        return row

    def notes(self, recipient: str | None = None, kind: str | None = None) -> list[NotificationRow]:
        return [
            n
            for n in self.svc.store.notifications()
            if (recipient is None or n.recipient == recipient) and (kind is None or n.kind == kind)
        ]

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.svc.aclose()


class Hubs:
    """Hubs on one database (``hub.db`` in the test's directory, or the test's PostgreSQL
    database under ``hub_engine``) and its audit log."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.db = state_for(directory)
        self.audit = AuditLog(self.db)
        self.opened: list[Hub] = []

    def open(
        self,
        doc: dict[str, Any],
        notifiers: Sequence[Notifier],
        *,
        clock: Clock | None = None,
        latest: Sequence[Reading] = (),
    ) -> Hub:
        """A started hub (``latest``: the last stored readings it is seeded with)."""
        hub = Hub(
            doc, db_path=self.db, audit=self.audit, notifiers=notifiers, clock=clock or Clock()
        )
        hub.svc.start(latest)
        self.opened.append(hub)
        return hub

    def trail(self, action: str | None = None) -> list[AuditRecord]:
        """The audit trail, oldest first (of ``action`` when given)."""
        records, _ = self.audit.page(100_000, 0)
        return [a for a in records[::-1] if action is None or a.action == action]

    async def aclose(self) -> None:
        for hub in self.opened:
            await hub.close()
        self.audit.close()


def twilio_texts(fake: TwilioFake) -> dict[str, list[str]]:
    """What each contact received through Twilio, in order."""
    out: dict[str, list[str]] = {}
    for rec in fake.records:
        out.setdefault(NAME.get(rec["to"], rec["to"]), []).append(rec["text"])
    return out


def aliyun_sent(fake: AliyunFake) -> dict[str, list[dict[str, Any]]]:
    """What each contact received through Aliyun (template, params, ref), in order; Aliyun
    gets mainland numbers without +86."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in fake.records:
        phone = "+86" + rec["to"]
        out.setdefault(NAME.get(phone, phone), []).append(rec)
    return out


def code_in(text: str) -> str:
    """The reply code of a message."""
    match = CODE.search(text)
    assert match is not None, f"no reply code in {text!r}"
    return match.group(1)
