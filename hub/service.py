"""The hub process: ingest (with the gateway registry), the store, alerts, the REST API, the
audit trail; one task group, stopped by cancellation (SIGTERM / Ctrl-C in the CLI).

    hub = Hub(cfg, profiles, data_dir=Path("demo-data"), config_path=path)
    await hub.run()            # until cancelled
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import socket
import ssl
from collections.abc import Awaitable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from alerts.api import alerts_router
from alerts.notifiers.base import Notifier
from alerts.notifiers.factory import build_all
from alerts.service import AlertService
from coldchain.clock import WALL, Clock
from coldchain.config.notify import TwilioSms
from coldchain.config.site import (
    InfluxStoreSettings,
    SiteConfig,
    SqliteStoreSettings,
    broker_address,
)
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.edge import encode_notice_ack
from coldchain.protocol.messages import Batch, ProtocolError
from coldchain.protocol.stored import decode_stored, encode_stored
from coldchain.protocol.topics import TopicError, Topics
from coldchain.reading import Reading, SeriesId
from coldchain.secrets import resolve
from coldchain.statedb import StateTarget, state_target
from coldchain.store.base import Store, StoreConfigError, StoreError
from dashboards.fonts import WebFont, find_cjk_font, ui_text
from dashboards.reports import pdfout
from dashboards.web import Renderer, WebContext, mount_ui
from dashboards.web.live import Board, LiveEvents
from gateway.api import identities_router
from gateway.broker import identity_tls
from gateway.commands_api import commands_router
from gateway.ingest import Ingest
from gateway.keys import GatewayKeys
from gateway.registry import Registry
from gateway.timesync import ClockProbes
from hub.accounts import accounts_router
from hub.api import create_app
from hub.audit import AuditLog
from hub.auth import AccessMiddleware, Auth
from hub.brokers import BrokerSessions
from hub.clock_api import clock_router
from hub.config_watch import ConfigWatch
from hub.context import HubContext
from hub.hub_keys import shared_key
from hub.leader import AlertLeadership, LeadershipLost
from hub.ordering import GatewayOrder
from hub.records_service import RecordsService

log = logging.getLogger(__name__)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def open_store(settings: SqliteStoreSettings | InfluxStoreSettings, data_dir: Path) -> Store:
    """The configured time-series store."""
    if isinstance(settings, SqliteStoreSettings):
        from coldchain.store.sqlite.store import SqliteStore

        days = max(1, round(settings.retention / 86400))
        return SqliteStore(
            data_dir / settings.path, raw_retention_days=days, rollup_1m_retention_days=days
        )
    from coldchain.store.lineproto.store import InfluxStore

    return InfluxStore.from_settings(settings, base_dir=data_dir)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the hub's owner stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


ROLES = ("ingest", "alerts", "web")
"""What a hub process can run (``coldchain hub --role``); all of them by default."""


def client_id(data_dir: Path, roles: Iterable[str] = ROLES) -> str:
    """The hub's MQTT client id: ``coldchain-hub-`` and 8 hex digits kept in
    ``DATA_DIR/hub-id``, made on the first start, and the roles it runs unless it runs all
    (``-ingest``, ``-alerts-web``). Its own per hub, so a standby on the same broker does not
    take the leader's session over (a broker keeps one session per id), nor a web worker the
    session (and telemetry subscription) of an ingest worker on the same data dir; the same
    across restarts, so the broker keeps what came for it while it was down."""
    path = data_dir / "hub-id"
    try:
        suffix = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        suffix = ""
    if len(suffix) != 8 or any(ch not in "0123456789abcdef" for ch in suffix):
        suffix = secrets.token_hex(4)
        tmp = path.with_name("hub-id.new")
        tmp.write_text(suffix + "\n", encoding="ascii")
        tmp.replace(path)  # whole or not at all
    roles = sorted(set(roles))
    tail = "" if roles == sorted(ROLES) else "-" + "-".join(roles)
    return f"coldchain-hub-{suffix}{tail}"


def listen_socket(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    # IPPROTO_TCP named: asyncio turns TCP_NODELAY on only for sockets that say so, and
    # without it every kept-alive answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(128)
    sock.setblocking(False)  # noqa: FBT003 - the socket API
    return sock


class Hub:
    """Everything the centre runs."""

    def __init__(
        self,
        cfg: SiteConfig,
        profiles: ProfileRegistry,
        *,
        data_dir: Path,
        broker: str | None = None,
        config_path: Path | None = None,
        store: Store | None = None,
        username: str | None = None,
        password: str | None = None,
        listen: str | None = None,
        clock: Clock = WALL,
        roles: Iterable[str] = ROLES,
    ) -> None:
        self.cfg, self.profiles = cfg, profiles
        self.roles = frozenset(roles)
        if not self.roles or not self.roles <= set(ROLES):
            raise ValueError(f"roles: one or more of {', '.join(ROLES)}, not {sorted(self.roles)}")
        # the stored batches go to the alerts through the broker ({prefix}/v1/hub/stored) when
        # hubs split the telemetry (hub.share_group) or this process does not run every role
        self.split = cfg.hub.share_group is not None or self.roles != set(ROLES)
        # the clock: ingest's timestamp checks, gateway expiry, alerts, pruning
        self.clock, self.data_dir = clock, data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        # the client id: its own per hub, so two on one broker do not take each other's session
        self.broker, self.client_id = broker or cfg.uplink.broker, client_id(data_dir, self.roles)
        broker_address(self.broker)  # a malformed --broker is refused here, not when run
        # with standby brokers: subscribed to each, acks back through the one a batch came by
        self.sessions = BrokerSessions(self, self.broker)
        self.brokers = self.sessions.brokers
        self.username = username or cfg.hub.username  # the hub's broker identity
        self.password = password
        self.store = store or open_store(cfg.hub.store, data_dir)
        # alerts, audit, users, gateways, keys, revisions: hub.db or PostgreSQL
        self.state = state = state_target(cfg.hub.state, data_dir)
        self.registry = Registry(
            state,
            [g.id for g in cfg.gateways],
            health_timeout_s=cfg.hub.health_timeout,
            clock_ms=clock.now_ms,
        )
        self.audit = AuditLog(state)
        self.audit_retention(cfg.hub.store)
        self.keys = GatewayKeys(state)  # message keys: acks and notices signed
        self.topics = Topics(cfg.uplink.prefix)
        self.clocks = ClockProbes(self.topics, clock.now_ms)  # each gateway's clock offset
        self.ingest = Ingest(
            cfg,
            profiles,
            self.store,
            topics=self.topics,
            on_readings=self._on_readings,
            on_batches=self._on_batches if self.split else None,
            clock_ms=clock.now_ms,
            key_of=self.keys.get,
        )
        # the site config pushed to the gateways, and the file watched (hub/config_watch.py)
        self.config_watch = ConfigWatch(self, config_path)
        self.revisions = self.config_watch.revisions
        retired = self.config_watch.retired_series(cfg)
        if retired:  # a push before a restart: its dropped series are still in their grace
            self.ingest.reconfigure(cfg, profiles, retired)
        self.ctx = HubContext(
            cfg, profiles, self.store, self.registry, self.audit, self.ingest.stats, clock=clock
        )
        self.alerts = AlertService(
            cfg,
            profiles,
            db_path=state,
            audit=self.audit,
            notifiers=self._notifiers(),
            link_key=self._link_key(),
            twilio_token=self._twilio_token(),
            clock=clock,
            writer_thread=True,  # a storm's commit must not hold the ingest's event loop
        )
        self.leader, self.order = self._leading(state, data_dir)
        self.ctx.alerts, self.ctx.config_state = self.alerts, self.revisions.state
        self._build_web(cfg, data_dir, state, clock)
        self.socket = listen_socket(listen or cfg.hub.listen)
        host, port = self.socket.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        if config_path is not None:
            self.config_watch.sha = self.audit_config(config_path)

    def _build_web(self, cfg: SiteConfig, data_dir: Path, state: StateTarget, clock: Clock) -> None:
        """The web UI and API (served with the ``web`` role; ``/healthz`` and ``/metrics``
        alone without), and the records service (reports, signatures, sealing, backups)."""
        # login for the web UI and every API route; ``guard`` is the one role check every
        # router is built with (hub/auth.py)
        self.auth = Auth(data_dir, state=state)
        self.auth.bootstrap()
        guard = self.auth.require
        self.ctx.roles = tuple(r for r in ROLES if r in self.roles)
        web_role = "web" in self.roles
        self.app = create_app(self.ctx, guard, api=web_role)
        routers = [alerts_router(self.alerts, guard), clock_router(self.ctx, guard)]
        routers.append(
            identities_router(
                cfg=cfg,
                profiles=self.profiles,
                brokers=self.brokers,
                tls=lambda: identity_tls(cfg.uplink.ca_file, data_dir, "admin"),
                data_dir=data_dir,
                state=state,
                registry=self.registry,
                audit=lambda actor, action, obj, after: self.audit.record(
                    actor=actor, action=action, obj=obj, after=after
                ),
                guard=guard,
            )
        )
        routers.append(
            commands_router(
                cfg=cfg,
                broker=self.broker,
                tls=self.tls_context,
                username=self.username if self.password else None,
                password=self.password,
                state=state,
                audit=lambda actor, action, obj, after: self.audit.record(
                    actor=actor, action=action, obj=obj, after=after
                ),
                guard=guard,
            )
        )
        self.events = LiveEvents()  # wakes the live board's streams on each ingest
        board = Board(cfg, self.profiles, self.registry, self.alerts)
        self.web = web = WebContext(
            cfg, self.store, self.registry, self.alerts, self.events, board, clock
        )
        web.config_state = lambda gw: self.revisions.state(gw).fields()
        self.ui = ui = self._renderer(cfg, data_dir)
        routers.append(accounts_router(self.auth, self.audit, ui))
        # reports, signatures, sealing, the daily backup (hub/records_service.py)
        self.records = RecordsService(
            cfg,
            self.profiles,
            data_dir=data_dir,
            store=self.store,
            audit=self.audit,
            alerts=self.alerts,
            auth=self.auth,
            web=web,
            clock=clock,
        )
        if web_role:  # else /healthz and /metrics alone
            for router in [*routers, *self.records.routers(guard)]:
                self.app.include_router(router)
            mount_ui(self.app, web, guard, ui)
        self.app.add_middleware(AccessMiddleware, auth=self.auth)

    def _leading(self, state: StateTarget, data_dir: Path) -> tuple[AlertLeadership, GatewayOrder]:
        """Exactly one hub runs the alerts: the leader, by a lock on the state
        (hub/leader.py); with hub.share_group it judges each gateway's batches in the
        gateway's order, whichever hub stored them (hub/ordering.py; its figures on
        /metrics)."""
        order = GatewayOrder(self.alerts.on_readings)
        self.ctx.order = order if self.split else None
        return AlertLeadership(state, data_dir), order

    def _notifiers(self) -> list[Notifier]:
        base = self.cfg.alerts.public_url
        callback = f"{base.rstrip('/')}/api/alerts/twilio/status" if base else None
        return build_all(
            self.cfg.alerts.notifiers,
            base_dir=self.data_dir,
            status_callback=callback,
            # self.alerts is built after its notifiers: look it up when a report arrives
            on_delivery=lambda ref, status: self.alerts.delivery(ref, status),  # noqa: PLW0108
            on_incoming=self._sms_reply,
        )

    def _sms_reply(self, sender: str, text: str) -> None:
        self.alerts.reply(sender, text, via="sms-reply")

    def _link_key(self) -> bytes:
        """The key of signed acknowledge links and SMS reply codes: configured, or made once
        and kept in the state, the same for every hub on it (hub/hub_keys.py)."""
        if self.cfg.alerts.link_secret is not None:
            return resolve(self.cfg.alerts.link_secret).get_secret_value().encode()
        return shared_key(self.state, "link", self.data_dir / "link.key")

    def _twilio_token(self) -> str | None:
        for n in self.cfg.alerts.notifiers:
            if isinstance(n, TwilioSms):
                return resolve(n.auth_token, base_dir=self.data_dir).get_secret_value()
        return None

    def _gateway_changed(self, gateway: str) -> None:
        state = self.registry.get(gateway)
        if state is not None:
            self.alerts.on_gateway(gateway, online=state.state == "online")
            if state.state != "online":  # it may come back rebooted: measure afresh
                self.clocks.forget(gateway)
                self.registry.on_clock(gateway, None)
        self.events.publish()

    def audit_config(self, path: Path, text: str | None = None) -> str:
        """Record the config the hub runs with, when it differs from the last one recorded;
        return its digest."""
        text = path.read_text(encoding="utf-8") if text is None else text
        digest = hashlib.sha256(text.encode()).hexdigest()
        last = self.audit.last("config.load", "site-config")
        if last is not None and isinstance(last.after, dict) and last.after.get("sha256") == digest:
            return digest
        before = None
        if last is not None and isinstance(last.after, dict):
            before = {"sha256": last.after.get("sha256"), "text": last.after.get("text")}
        self.audit.record(
            actor="hub",
            action="config.load",
            obj="site-config",
            before=before,
            after={"sha256": digest, "path": str(path), "text": text},
        )
        return digest

    def audit_retention(self, settings: SqliteStoreSettings | InfluxStoreSettings) -> None:
        """Record the retention waiver the store runs under, when it differs from the last one
        recorded (a new waiver, a changed one, or none any more)."""
        waiver = getattr(settings, "retention_waiver", None)
        after = None
        if isinstance(settings, SqliteStoreSettings) and waiver is not None:
            after = {"retention_days": settings.retention / 86400, **waiver.model_dump()}
        last = self.audit.last("store.retention_waiver", "store")
        before = last.after if last is not None else None
        if before == after:
            return
        self.audit.record(
            actor="hub", action="store.retention_waiver", obj="store", before=before, after=after
        )

    def reconfigure(self, cfg: SiteConfig) -> None:
        """Run on ``cfg`` (its file changed): ingest accepts its series at once (and those it
        dropped for ``hub.config_grace``), alerts judge by its rooms, limits and rules, the
        API and pages show it. What the hub was started with stays until it restarts: the
        broker, the store, notifiers, where it listens, the profiles it loaded."""
        self.cfg = cfg
        self.ingest.reconfigure(cfg, self.profiles, self.config_watch.retired_series(cfg))
        self.registry.know([g.id for g in cfg.gateways])
        self.alerts.reconfigure(cfg)
        self.ctx.reconfigure(cfg)
        self.web.cfg = cfg
        self.web.board = Board(cfg, self.profiles, self.registry, self.alerts)
        self.ui.font = self._web_font(cfg)  # the new names' glyphs
        self.events.publish()

    def _on_readings(self, readings: list[Reading]) -> None:
        for gw in {r.series.gateway for r in readings}:
            self.registry.on_telemetry(gw)
            self._gateway_changed(gw)
        if not self.split:
            self.alerts.on_readings(readings)  # this hub received every batch
        self.events.publish()

    def _on_batches(self, batches: list[Batch]) -> Awaitable[object]:
        """With hub.share_group or a role of its own, the ingest hands what it stored to the
        leader (coldchain/protocol/stored.py), batch by batch, for it to judge in order; the
        batches are acknowledged once every message is on the broker (the ingest awaits
        this)."""
        taken = [
            self.sessions.share(payload)
            for b in batches
            for payload in encode_stored(
                b.readings, self.client_id, gateway=b.gateway, epoch=b.epoch, seq=b.seq
            )
        ]
        return asyncio.gather(*taken)

    def _stored(self, payload: bytes) -> None:
        """A batch a hub stored (this one included), for the alert leader to judge in its
        gateway's order (hub/ordering.py); on a hub that does not lead, for its live board
        (and, without the ingest role, its gateways page)."""
        try:
            batch = decode_stored(payload)
        except ProtocolError as exc:
            self._refused("stored", "(hub)", exc.reason, str(exc))
            return
        if "ingest" not in self.roles:  # this process saw no telemetry: the batch says it came
            self.registry.on_telemetry(batch.gateway)
            self._gateway_changed(batch.gateway)
        if self.alerts.leading:
            self.order.add(batch, self.clock.now_ms())
        else:
            self.alerts.on_readings(batch.readings)  # shown, not judged
        self.events.publish()  # after the readings: the board shows them

    def on_message(self, topic: str, payload: bytes) -> list[tuple[str, bytes]] | None:
        """A status, health or alerts message. Each is parsed with bounded size and depth
        and validated before anything else sees it (the registry, the alert service); a
        malformed one changes nothing and is counted by (kind, reason) in
        ``ingest.stats.rejected_messages`` and logged, rate-limited per gateway and reason."""
        if topic == self.topics.stored():
            self._stored(payload)
            return None
        try:
            gateway, kind = self.topics.parse(topic)
        except TopicError:
            return None
        if gateway not in self.ingest.allowed:
            self._refused(kind, "(unknown)", "unknown_gateway", f"gateway {gateway!r} unknown")
            return None
        try:
            if kind == "time/reply":
                self._clock_reply(gateway, payload)
                return None
            if kind == "config/ack":
                self.config_watch.on_ack(gateway, payload)
                self.events.publish()
                return None
            if kind == "alerts":
                return self._edge_notices(gateway, payload)
            if kind == "status":
                self.registry.on_status(gateway, payload)
            elif kind == "health":
                self.registry.on_health(gateway, payload)
                self._health_facts(gateway)
            else:
                return None
        except ProtocolError as exc:
            self._refused(kind, gateway, exc.reason, str(exc))
            return None
        self._gateway_changed(gateway)
        return None

    def _health_facts(self, gateway: str) -> None:
        """What the alert rules read of a health report just stored: the outbox's oldest
        unsent reading and its filesystem's free share (gateway_backlog, gateway_disk)."""
        state = self.registry.get(gateway)
        report = state.report if state is not None else None
        if report is None:
            return
        buffer, system = report.buffer, report.system
        disk = system.disk if system is not None else None
        free = (
            100 * disk.free_bytes / disk.total_bytes
            if disk is not None and disk.free_bytes is not None and disk.total_bytes
            else None
        )
        self.alerts.on_gateway_health(
            gateway,
            backlog_age_s=buffer.oldest_unsent_age_s if buffer is not None else None,
            disk_free_pct=free,
        )

    def _clock_reply(self, gateway: str, payload: bytes) -> None:
        """A gateway's answer to a clock probe: its best recent offset to the registry (the
        gateways page and API) and to the alert rules (gateway_clock)."""
        sample = self.clocks.on_reply(gateway, payload)
        if sample is None:
            return
        self.registry.on_clock(gateway, sample)
        self.alerts.on_gateway_clock(gateway, offset_ms=sample.offset_ms)
        self.events.publish()

    def online(self) -> list[str]:
        """The gateways online now (the clock probes go to them)."""
        return [g.id for g in self.registry.all() if g.state == "online"]

    def _refused(self, kind: str, source: str, reason: str, detail: str) -> None:
        self.ingest.stats.rejected_messages[(kind, reason)] += 1
        self.ingest.rejections.warning(
            (source, f"{kind}:{reason}"), "refused a %s message (%s): %s", kind, reason, detail
        )

    def _edge_notices(self, gateway: str, payload: bytes) -> list[tuple[str, bytes]] | None:
        """An agent's edge-fallback notices: record them, acknowledge what was stored.
        Raises :class:`ProtocolError` (nothing stored, nothing acknowledged) when malformed."""
        if not self.alerts.leading:  # the leader records and acknowledges them
            return None
        stored = self.alerts.edge_notices(gateway, payload, key=self.keys.get(gateway))
        log.info("gateway %s: %d edge notices recorded", gateway, len(stored))
        return [(self.topics.topic(gateway, "alerts/ack"), encode_notice_ack(stored))]

    async def _expire(self) -> None:
        while True:
            for gw in self.registry.expire():
                log.warning("gateway %s silent for %.0fs: offline", gw, self.cfg.hub.health_timeout)
                self._gateway_changed(gw)
            self.order.expire(self.clock.now_ms())  # batches that waited long enough for turn
            await self.clock.sleep(min(5.0, self.cfg.hub.health_timeout / 4))

    def _take_over(self, latest: dict[SeriesId, Reading]) -> None:
        """Start the alert lifecycle, resumed from the state (open alerts, escalation steps,
        queued notifications) and the store's newest readings, ``latest``."""
        self.alerts.start(latest.values())
        for g in self.cfg.gateways:
            self._gateway_changed(g.id)
        self.records.resend_backup_state()

    async def _lead(self) -> None:
        """The alert lifecycle, and the store's sealing and pruning and the daily backup
        (in one place too), once this hub is the leader (hub/leader.py), until the hub stops;
        :class:`~hub.leader.LeadershipLost` ends the hub."""
        if not self.leader.leading:  # a standby at start: until the leader goes
            async with asyncio.TaskGroup() as tg:
                following = tg.create_task(self.records.follow(), name="records-follow")
                await self.leader.acquire()
                following.cancel()
            self._take_over(await self._store_latest())
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.alerts.run(), name="alerts-run")
            tg.create_task(self.leader.hold(), name="alerts-leader")
            tg.create_task(self._prune(), name="store-prune")
            for name, coro in self.records.tasks():
                tg.create_task(coro, name=name)

    async def _store_latest(self) -> dict[SeriesId, Reading]:
        """The newest reading of every series, for the alerts to start from. A store that
        does not answer is waited for, with backoff (the gateways keep their readings
        meanwhile); one that answers but is set up wrongly is not: ``StoreConfigError``
        stops the hub with the store's own message."""
        backoff = 1.0
        while True:
            try:
                return await self.store.latest()
            except StoreConfigError:
                raise
            except StoreError as exc:
                log.warning(
                    "store: %s; the hub waits for it (the gateways keep their readings), "
                    "retrying in %.0fs",
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _prune(self) -> None:
        """Daily: delete readings past their retention (in small transactions)."""
        while True:
            try:
                deleted = await self.store.prune(self.clock.now_ms())
            except StoreError as exc:
                log.warning("pruning the store failed: %s", exc)
            else:
                if deleted:
                    log.info("pruned %d rows past their retention", deleted)
            await self.clock.sleep(86400)

    async def _serve_api(self) -> None:
        server = _Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve(sockets=[self.socket]), name="api")
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            server.should_exit = True
            self.events.close()  # an open live-board stream would hold the server
            await task
            raise

    def _renderer(self, cfg: SiteConfig, data_dir: Path) -> Renderer:
        """The pages' renderer, with the Chinese font (``hub.cjk_font``, else one of
        Debian's) served to the web UI as a subset; the PDF reports embed the same face."""
        self.cjk_font = find_cjk_font(cfg.hub.cjk_font)  # a configured one missing: an error
        if self.cjk_font is None and cfg.hub.cjk_font != "none":
            log.warning(
                "no Chinese TrueType font on this machine: the web UI relies on the browser's "
                "fonts and PDF reports on the viewer's (apt-get install fonts-wqy-microhei)"
            )
        pdfout.configure(self.cjk_font)
        renderer = Renderer(cfg, self._web_font(cfg), data_dir / "fonts")
        # every page says when no hub runs the alerts (no alarm is sent)
        renderer.no_leader = lambda: not self.alerts.leading and not self.leader.leader_runs()
        return renderer

    def _web_font(self, cfg: SiteConfig) -> WebFont | None:
        """The UI's font subset: its own text and every name in ``cfg``."""
        if self.cjk_font is None:
            return None
        names = [v for v in _strings(cfg.model_dump(mode="json")) if not v.isascii()]
        return WebFont.plan(self.cjk_font, ui_text(names))

    def tls_context(self) -> ssl.SSLContext:
        """For an ``mqtts://`` broker: verified against ``uplink.ca_file`` (the CA the
        gateways use too), or the system's CAs; under mutual TLS with the hub's certificate
        (``coldchain broker config --client-ca``)."""
        return identity_tls(self.cfg.uplink.ca_file, self.data_dir, "hub")

    async def run(self) -> None:
        log.info(
            "hub: %s; API on %s, broker %s, store %s",
            ", ".join(r for r in ROLES if r in self.roles),
            self.url,
            " and ".join(self.brokers),
            type(self.store).__name__,
        )
        latest = await self._store_latest()  # the store answers (or the hub waits for it)
        # before any broker session: the usual case leads before the first batch comes; a
        # standby only shows what comes until it takes the leader's lock
        alerts = "alerts" in self.roles
        if alerts and await self.leader.try_once():
            self._take_over(latest)
        else:
            self.alerts.leading = False
            self.alerts.on_readings(list(latest.values()))  # the live board's values
        try:
            async with asyncio.TaskGroup() as tg:
                if alerts:  # the alert lifecycle, sealing, backups, pruning: where it leads
                    tg.create_task(self._lead(), name="alerts")
                else:
                    tg.create_task(self.records.follow(), name="records-follow")
                tg.create_task(self.store.upkeep(), name="store-upkeep")
                for name, coro in self.sessions.tasks():
                    tg.create_task(coro, name=name)
                tg.create_task(self._expire(), name="registry-expiry")
                tg.create_task(self._serve_api(), name="api")
        except BaseExceptionGroup as group:  # a lost leadership ends the hub in one line
            lost: BaseException | None = group.subgroup(LeadershipLost)
            if lost is None:
                raise
            while isinstance(lost, BaseExceptionGroup):
                lost = lost.exceptions[0]
            raise lost from None
        finally:
            self.leader.release()
            await asyncio.shield(self.alerts.aclose())
            await asyncio.shield(self.store.close())
            self.registry.close()
            self.audit.close()
            self.keys.close()
            self.auth.users.close()
            self.socket.close()
