"""The hub's records kept as evidence, wired into the hub (issue 17): the reports with the
audit trail's and the readings' heads and the signatures they show, the signatures' routes
(:mod:`hub.signatures`), the store's hourly sealing (every minute) and the daily backup
(:mod:`hub.backup_schedule`) with its state reported to the alert rules and the records page.

    records = RecordsService(cfg, profiles, data_dir=..., store=..., ...)
    for router in records.routers(guard): app.include_router(router)
    for name, coro in records.tasks(): tg.create_task(coro, name=name)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter

from alerts.service import AlertService
from coldchain.access import Guard
from coldchain.clock import Clock
from coldchain.config.site import InfluxStoreSettings, SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.statedb import PostgresTarget, state_target
from coldchain.store.base import Store, StoreError
from dashboards.reports.api import reports_router
from dashboards.web import WebContext
from hub.audit import AuditLog
from hub.auth import Auth
from hub.backup_schedule import BackupSchedule, BackupState
from hub.backup_vm import VictoriaSource
from hub.signatures import Signatures, daily_digester, signatures_router

log = logging.getLogger(__name__)
SEAL_EVERY_S = 60
FOLLOW_S = 60.0
"""How often a hub that does not lead reads the leader's backups from the audit trail."""


class RecordsService:
    """See the module doc. ``seal_head`` (id, hour in UTC ms, link) and ``backup_state`` are
    the latest the loops saw (None: nothing yet, or no schedule)."""

    def __init__(
        self,
        cfg: SiteConfig,
        profiles: ProfileRegistry,
        *,
        data_dir: Path,
        store: Store,
        audit: AuditLog,
        alerts: AlertService,
        auth: Auth,
        web: WebContext,
        clock: Clock,
    ) -> None:
        self.cfg, self.profiles, self.store, self.audit = cfg, profiles, store, audit
        self.alerts, self.clock = alerts, clock
        self.seal_head: tuple[int, int, str] | None = None
        self.backup_state: BackupState | None = None
        self.backups: BackupSchedule | None = None
        if cfg.hub.backup is not None:
            store_cfg, vm_data = cfg.hub.store, cfg.hub.backup.victoria_metrics_data
            victoria = None
            if isinstance(store_cfg, InfluxStoreSettings) and vm_data is not None:
                victoria = VictoriaSource(store_cfg.url, Path(vm_data))
            hub_state = state_target(cfg.hub.state, data_dir)  # on PostgreSQL: dumped too
            self.backups = BackupSchedule(
                cfg.hub.backup,
                data_dir,
                tz=ZoneInfo(cfg.sites[0].timezone if cfg.sites else "UTC"),
                audit=audit,
                clock=clock,
                on_state=self.on_backup_state,
                victoria=victoria,
                hub_state=hub_state if isinstance(hub_state, PostgresTarget) else None,
            )
        self.signatures = Signatures(
            auth, audit, require_second_factor=cfg.hub.require_second_factor
        )
        web.audit_head = audit.head
        web.seal_head = lambda: self.seal_head
        web.backup_state = lambda: self.backup_state
        web.signatures = self.signatures.of

    def routers(self, guard: Guard) -> list[APIRouter]:
        """The reports (both heads, the signatures) and the signatures' routes."""
        reports = reports_router(
            cfg=self.cfg,
            profiles=self.profiles,
            store=self.store,
            alerts=self.alerts.store,
            clock=self.clock,
            guard=guard,
            audit_head=self.audit.head,
            seal_head=lambda: self.seal_head,
            signatures=self.signatures.of,
        )
        digester = daily_digester(
            self.cfg, self.profiles, self.store, self.alerts.store, self.clock.now_ms
        )
        return [reports, signatures_router(self.signatures, self.alerts, digester, guard)]

    def tasks(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """The loops the alert leader runs (one hub at a time): sealing, and the daily backup
        if configured."""
        out: list[tuple[str, Coroutine[Any, Any, None]]] = [("store-seal", self.seal())]
        if self.backups is not None:
            out.append(("backup", self.backups.run()))
        return out

    async def follow(self) -> None:
        """On a hub that does not lead: the leader's backups as the audit trail has them, for
        the records page (every :data:`FOLLOW_S`)."""
        if self.backups is None:
            return
        while True:
            self.backup_state = await asyncio.to_thread(self.backups.read_state)
            await asyncio.sleep(FOLLOW_S)

    def on_backup_state(self, state: BackupState) -> None:
        """The daily backup's news: kept for the records page, judged by the alert rules."""
        self.backup_state = state
        self.alerts.on_backup(
            configured_ms=state.configured_ms, last_good_ms=state.good_ms, failed_ms=state.failed_ms
        )

    def resend_backup_state(self) -> None:
        """The backup's state again, for alerts that started leading after it came."""
        if self.backup_state is not None:
            self.on_backup_state(self.backup_state)

    async def seal(self) -> None:
        """Every minute: the store seals the hours that are over and late readings in
        addenda (coldchain/store/sqlite/seal.py); its newest seal goes on the daily log."""
        while True:
            try:
                result = await self.store.seal(self.clock.now_ms())
            except StoreError as exc:
                log.warning("sealing the store's readings failed: %s", exc)
            except Exception:  # a bug here must not take the hub (and its alarms) down
                log.exception("sealing the store's readings failed")
            else:
                self.seal_head = result.head
                if result.late:
                    log.info("sealed %d late readings in addenda of their hours", result.late)
            await self.clock.sleep(SEAL_EVERY_S)
