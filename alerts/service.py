"""The alerts part of the hub: the evaluator on the live stream, the alert lifecycle
(pending -> firing -> acknowledged -> resolved) persisted in the hub database, escalation,
and the dispatcher that texts people.

    svc = AlertService(cfg, profiles, db_path=..., audit=audit_log, notifiers=[...])
    svc.start(latest_readings)        # restore open alerts; seed the evaluator
    ingest.on_readings = svc.on_readings
    await svc.run()                   # clock: delays, escalation, sending

:class:`AlertService` is the facade the hub, pages and API use; each job lives in its own
module and shares one :class:`~alerts.context.AlertContext`:

* :mod:`alerts.lifecycle`: condition changes -> stored alerts, by target state;
* :mod:`alerts.escalation`: who is told, and when;
* :mod:`alerts.compose`: the text of each message, and what became of it;
* :mod:`alerts.actions`: acknowledge, snooze, SMS replies, delivery reports;
* :mod:`alerts.maintenance`: maintenance windows;
* :mod:`alerts.rule_edits`: rules edited at run time.

Every transition and notification is audited through ``audit`` (the hub's append-only log).
Each input (a batch of readings, a tick, a person's action, an agent's notices) is applied in
one transaction of the alert store: all the transitions one evaluation produces, their audit
records (when ``audit`` is the hub's :class:`~alerts.context.AuditTrail`, on the same
connection) and the notifications they queue commit together, once; notifications go to the
dispatcher after that commit. With ``writer_thread`` (the hub) the commit of an evaluation on
the event loop is made on the store's writer thread (:class:`~alerts.store.AlertStore`).
:meth:`AlertService.snapshot` publishes what the live board shows, as an immutable
:class:`~coldchain.alerting.snapshot.AlertSnapshot`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from alerts.actions import Actions
from alerts.compose import Composer
from alerts.context import AlertContext, AlertStats, Audit, AuditTrail, StoreAudit, wall_ms
from alerts.dispatch import Dispatcher, Notice
from alerts.escalation import Escalator
from alerts.lifecycle import Lifecycle
from alerts.maintenance import Maintenance
from alerts.notifiers.base import Notifier
from alerts.requests import POLL_S, Forwarder, serve
from alerts.rule_edits import RuleEdits, build_evaluator, current_rules
from alerts.store import AlertRow, AlertStore
from coldchain.alerting.evaluator import Evaluator, Transition
from coldchain.alerting.facts import AlertFacts
from coldchain.alerting.rules import AnyRule
from coldchain.alerting.snapshot import AlertSnapshot, OpenAlert, SnapshotBuilder
from coldchain.clock import Clock, as_clock
from coldchain.config.notify import SMS_TYPES
from coldchain.config.site import SiteConfig
from coldchain.config.topology import site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.reading import Reading
from coldchain.statedb import StateTarget

TICK_S = 0.1  # delays that run out between readings fire within this


class AlertService:
    """Alerts, from readings to people."""

    def __init__(
        self,
        cfg: SiteConfig,
        profiles: ProfileRegistry,
        *,
        db_path: StateTarget,
        audit: AuditTrail | Audit,
        notifiers: Iterable[Notifier] = (),
        link_key: bytes | None = None,
        twilio_token: str | None = None,
        clock: Clock | Callable[[], int] = wall_ms,
        writer_thread: bool = False,
    ) -> None:
        # ``clock``: the hub's Clock (a demo's scaled one), or a function of epoch ms (a
        # test's hand-moved clock). Rule delays, windows, hold-offs, escalation, linger and
        # the times in messages all read it; ``self.clock()`` is its epoch ms.
        self.timebase = as_clock(clock)
        self.clock: Callable[[], int] = self.timebase.now_ms
        self.cfg, self.profiles = cfg, profiles
        # ``writer_thread``: evaluations on the event loop commit on the store's writer thread
        self.store = AlertStore(db_path, writer_thread=writer_thread)
        self.audit = StoreAudit(self.store, audit)
        self.link_key = link_key or secrets.token_bytes(32)
        self.twilio_token = twilio_token  # verifies Twilio's callbacks
        self.points = site_points(cfg, profiles)
        evaluator = build_evaluator(cfg, self.points, current_rules(cfg, self.store), self.clock())
        self._ctx = ctx = AlertContext(
            cfg, self.points, self.store, self.audit, self.clock, evaluator
        )
        self.contacts, self.policies = ctx.contacts, ctx.policies
        self.sites, self.rooms = ctx.sites, ctx.rooms
        self.stats: AlertStats = ctx.stats
        self.open: dict[int, AlertRow] = ctx.open
        self.notifiers = notifiers = list(notifiers)
        channel_ids = {n.id for n in cfg.alerts.notifiers if n.type not in SMS_TYPES}
        self._snapshots = SnapshotBuilder()
        self._shown: dict[int, OpenAlert] = {}  # what the last snapshot listed, by id
        self._shown_tuple: tuple[OpenAlert, ...] = ()
        self._composer = Composer(ctx, self.link_key)
        self.dispatcher = Dispatcher(
            self.store,
            sms=[n for n in notifiers if n.texts_phones],
            channels={n.id: n for n in notifiers if n.id in channel_ids},
            compose=self._composer.compose,
            clock=self.timebase,
            linger_ms=round(cfg.alerts.linger * 1000),
            storm_window_ms=round(cfg.alerts.storm_window * 1000),
            storm_burst=cfg.alerts.storm_burst,
            max_per_hour=cfg.alerts.max_per_hour,
            retries=cfg.alerts.retries,
            on_sent=self._composer.sent,
        )
        self._escalator = Escalator(ctx, self.dispatcher)
        self._next = self._escalator.due  # alert id -> next escalation check
        self._lifecycle = Lifecycle(ctx, self._escalator)
        self._actions = Actions(ctx, self._escalator, self.link_key)
        self._maintenance = Maintenance(ctx, self._lifecycle)
        self._rule_edits = RuleEdits(ctx, self._lifecycle)
        # False on a hub that does not run the alerts (hub/leader.py: a standby, a web
        # worker): it judges nothing; readings only update the live views, the open alerts
        # are read from the database (follow()), and people's actions are handed to the
        # leader (alerts/requests.py). start() makes it lead, resumed from the database.
        self.leading = True
        self._forward = Forwarder(self.store, self.clock)
        self._followed = 0.0  # time.monotonic() of the last follow()

    @property
    def evaluator(self) -> Evaluator:
        """The evaluator judging readings now (a rule edit replaces it)."""
        return self._ctx.evaluator

    # --- set-up ---------------------------------------------------------------------------

    def rules(self) -> list[AnyRule]:
        return self._rule_edits.rules()

    def start(self, latest: Iterable[Reading] = ()) -> None:
        """Seed the evaluator with the last known readings and resume open alerts,
        maintenance and unsent notifications; from now on this service leads. One that
        followed another leader takes up what it did meanwhile: its rule edits, its open
        alerts (read afresh)."""
        ctx = self._ctx
        if not self.leading:
            for row in list(ctx.open.values()):
                ctx.closed(row)
            self._rule_edits.rebuild()
        self.leading = True
        for r in latest:
            self.evaluator.seed(r)
        now = self.clock()
        self._maintenance.restore(now)
        with self.store.transaction():
            for row in self.store.open_alerts():
                self._lifecycle.resume(row, now)
        for n in self.store.notifications(status="queued"):
            self.dispatcher.submit(
                Notice(
                    n.id, n.recipient, n.address, n.kind, n.alerts, self._site_of(n.alerts), n.level
                )
            )

    def _site_of(self, alert_ids: list[int]) -> str:
        row = self.store.get(alert_ids[0]) if alert_ids else None
        return row.site if row else ""

    def resume(self, row: AlertRow) -> None:
        """Take up an alert opened elsewhere (an agent's edge notice) as firing."""
        with self.store.transaction():
            self._lifecycle.resume(row, self.clock())

    def edge_notices(
        self, gateway: str, payload: bytes, *, key: bytes | None = None
    ) -> list[tuple[str, int]]:
        """An agent's ``alerts`` message: record what it texted; the (id, rev) to ack.
        Raises :class:`~coldchain.protocol.messages.ProtocolError` when malformed, or when
        ``key`` (the gateway's message key) is given and its MAC does not verify."""
        from alerts.edge import apply_notices
        from coldchain.protocol.edge import decode_notices

        msg = decode_notices(payload, gateway=gateway, now_ms=self.clock(), key=key)
        if not self.leading:  # the leader records and acknowledges them
            return []
        with self.store.transaction():
            return apply_notices(self, gateway, msg.notices)

    # --- inputs ---------------------------------------------------------------------------

    def on_readings(self, readings: list[Reading]) -> None:
        """New readings, stored: judge them now (called by the ingest after each commit).
        The transitions they cause are written in one transaction. A hub that does not lead
        only shows them (the live board's values)."""
        if not self.leading:
            for r in readings:
                self.evaluator.seed(r)
            return
        started = time.perf_counter()
        self._apply(self.evaluator.feed(readings))
        self.stats.evaluations_s += time.perf_counter() - started
        self.stats.readings += len(readings)

    def on_gateway(self, gateway: str, *, online: bool) -> None:
        if not self.leading:
            return
        self._apply(self.evaluator.gateway(gateway, online=online, ts_ms=self.clock()))

    def on_gateway_health(
        self, gateway: str, *, backlog_age_s: float | None, disk_free_pct: float | None
    ) -> None:
        """A gateway's health report: its outbox's backlog and free disk."""
        if not self.leading:
            return
        self._apply(
            self.evaluator.gateway_health(
                gateway,
                backlog_age_s=backlog_age_s,
                disk_free_pct=disk_free_pct,
                ts_ms=self.clock(),
            )
        )

    def on_gateway_clock(self, gateway: str, *, offset_ms: float) -> None:
        """The hub measured a gateway's clock offset (gateway/timesync.py)."""
        if not self.leading:
            return
        now = self.clock()
        self._apply(self.evaluator.gateway_clock(gateway, offset_ms=offset_ms, ts_ms=now))

    def on_backup(
        self, *, configured_ms: int | None, last_good_ms: int | None, failed_ms: int | None
    ) -> None:
        """The hub's backup schedule (hub/backup_schedule.py): since when it runs, its last
        good and last failed backup (the ``backup`` rule kind)."""
        if not self.leading:
            return
        self._apply(
            self.evaluator.backup(
                configured_ms=configured_ms,
                last_good_ms=last_good_ms,
                failed_ms=failed_ms,
                ts_ms=self.clock(),
            )
        )

    def tick(self) -> None:
        """Delays, hold-offs and escalation steps due now, in one transaction."""
        now = self.clock()
        with self.store.transaction(background=True):
            self._lifecycle.apply(self.evaluator.tick(now))
            self._escalator.escalate(now)

    def _apply(self, transitions: list[Transition]) -> None:
        if transitions:
            with self.store.transaction(background=True):
                self._lifecycle.apply(transitions)

    async def run(self) -> None:
        """The clock, the dispatcher and people's actions taken on other hubs
        (alerts/requests.py), until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.dispatcher.run(), name="alerts-dispatch")
            tg.create_task(self._serve_requests(), name="alerts-requests")
            while True:
                self.tick()
                await asyncio.sleep(TICK_S)

    async def _serve_requests(self) -> None:
        while True:
            if self.leading:
                serve(self)
            await asyncio.sleep(POLL_S)

    async def aclose(self) -> None:
        for n in self.notifiers:
            await n.aclose()
        self.store.close()

    # --- what is published ----------------------------------------------------------------

    def snapshot(self) -> AlertSnapshot:
        """The open alerts and the live state of series and rooms, as of now; immutable.
        Costs what changed since the previous snapshot (the alerts opened, closed or
        changed in state, the latest reading of each series updated), a copy of the open
        alerts' list and each room's state; no history."""
        self.follow()
        return self._snapshots.build(self._open_alerts(), self.evaluator.views)

    def follow(self, every_s: float = 1.0) -> None:
        """On a hub that does not lead: the open alerts as the leader stored them, read at
        most every ``every_s``; what changed is marked for the next snapshot."""
        if self.leading or time.monotonic() - self._followed < every_s:
            return
        self._followed = time.monotonic()
        ctx = self._ctx
        rows = {r.id: r for r in self.store.open_alerts()}
        for alert_id in ctx.open.keys() | rows.keys():
            if ctx.open.get(alert_id) != rows.get(alert_id):
                ctx.changed.add(alert_id)
        ctx.open.clear()
        ctx.open.update(rows)

    def _open_alerts(self) -> tuple[OpenAlert, ...]:
        """The open alerts as the board lists them, in id order, updated from
        ``ctx.changed``."""
        ctx, shown = self._ctx, self._shown
        if not ctx.changed:
            return self._shown_tuple
        resort = False
        for alert_id in ctx.changed:
            row = ctx.open.get(alert_id)
            if row is None:
                shown.pop(alert_id, None)
                continue
            if alert_id not in shown and shown and alert_id < next(reversed(shown)):
                resort = True  # an older alert taken up again: keep the id order
            shown[alert_id] = OpenAlert(
                id=row.id,
                rule=row.rule,
                kind=row.kind,
                quantity=row.quantity,
                direction=row.direction,
                severity=row.severity,
                state=row.state,
                site=row.site,
                room=row.room,
                since_ms=row.fired_ms or row.since_ms,
            )
        ctx.changed.clear()
        if resort:
            self._shown = shown = dict(sorted(shown.items()))
        self._shown_tuple = tuple(shown.values())
        return self._shown_tuple

    # --- messages -------------------------------------------------------------------------

    def facts(self, row: AlertRow) -> AlertFacts:
        return self._composer.facts(row)

    def link(self, alert_id: int, contact: str, now: int) -> str | None:
        return self._composer.link(alert_id, contact, now)

    # --- people ---------------------------------------------------------------------------

    def get(self, alert_id: int) -> AlertRow:
        return self._actions.get(alert_id)

    def ack(
        self, alert_id: int, *, by: str, comment: str | None = None, via: str = "api"
    ) -> AlertRow:
        """Acknowledge: escalation stops; the alert stays open until its condition clears."""
        if not self.leading:
            got = self._forward.call("ack", alert_id=alert_id, by=by, comment=comment, via=via)
            return self.get(got["alert"])
        with self.store.transaction():
            return self._actions.ack(alert_id, by=by, comment=comment, via=via)

    def snooze(self, alert_id: int, *, until_ms: int, by: str) -> AlertRow:
        if not self.leading:
            got = self._forward.call("snooze", alert_id=alert_id, until_ms=until_ms, by=by)
            return self.get(got["alert"])
        with self.store.transaction():
            return self._actions.snooze(alert_id, until_ms=until_ms, by=by)

    def reply(self, phone: str, text: str, *, via: str) -> AlertRow | None:
        """An SMS reply: "1234" (the code in the message) acknowledges that alert; a
        reply without a code acknowledges the sender's only open alert. On a hub that does
        not lead: handed to the leader, not waited for (None)."""
        if not self.leading:
            self._forward.call("reply", wait=False, phone=phone, text=text, via=via)
            return None
        with self.store.transaction():
            return self._actions.reply(phone, text, via=via)

    def delivery(self, ref: str, status: str) -> None:
        """A delivery report: ``ref`` is our notification ids ("12-13") or a provider's id.
        On a hub that does not lead: handed to the leader, not waited for."""
        if not self.leading:
            self._forward.call("delivery", wait=False, ref=ref, status=status)
            return
        with self.store.transaction():
            self._actions.delivery(ref, status)

    # --- maintenance and rules --------------------------------------------------------------

    def maintenance(
        self, site: str, room: str, *, until_ms: int | None, reason: str, by: str
    ) -> None:
        if not self.leading:
            self._forward.call(
                "maintenance", site=site, room=room, until_ms=until_ms, reason=reason, by=by
            )
            return
        with self.store.transaction():
            self._maintenance.set(site, room, until_ms=until_ms, reason=reason, by=by)

    def put_rule(self, body: dict[str, Any], *, by: str) -> AnyRule:
        if not self.leading:
            rule_id = self._forward.call("put_rule", body=body, by=by)["rule"]
            return next(r for r in self.rules() if r.id == rule_id)
        with self.store.transaction():
            return self._rule_edits.put(body, by=by)

    def reconfigure(self, cfg: SiteConfig) -> None:
        """A changed site config (the hub saw its file change): rooms, limits, rules and
        devices judged by it from now on; open alerts go on (one whose watch is gone is
        resolved). How alerts are sent (notifiers, storm and rate limits) stays as the
        hub started with until it restarts."""
        self.cfg = cfg
        self.points = site_points(cfg, self.profiles)
        with self.store.transaction():
            self._rule_edits.reconfigure(cfg, self.points)
        ctx = self._ctx
        self.contacts, self.policies = ctx.contacts, ctx.policies
        self.sites, self.rooms = ctx.sites, ctx.rooms

    def revert_rule(self, rule_id: str, *, by: str) -> None:
        if not self.leading:
            self._forward.call("revert_rule", rule_id=rule_id, by=by)
            return
        with self.store.transaction():
            self._rule_edits.revert(rule_id, by=by)
