"""The records section of the reports page: how far back the readings go, what the store
takes on disk and will take a year, the retention and any waiver of it, and the audit
trail's and the readings' seals' heads (issue 17: retention visible, the records anchored)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from coldchain.config.site import SiteConfig, SqliteStoreSettings
from coldchain.store.base import Footprint

DAY_MS = 86_400_000
YEAR_DAYS = 365.25


@dataclass(frozen=True, slots=True)
class RecordsView:
    oldest: str | None  # the oldest reading kept, local time; None: none, or cannot tell
    covered_days: float | None
    disk_mb: float | None
    per_year_mb: float | None  # projected from the days covered; None below a day of data
    retention_days: float | None  # None: kept by the store's server (VictoriaMetrics)
    waiver: tuple[str, str] | None  # (reason, approved by)
    audit_head: tuple[int, str] | None
    seal_head: tuple[int, str, str] | None  # id, the hour it seals (local), link
    # the daily backup: (state, what) — state ok, failed or none; what: when, where, digest
    backup: tuple[str, str] | None = None


def backup_row(state: Any, cfg: SiteConfig) -> tuple[str, str]:
    """The daily backup's line (``state``: hub.backup_schedule.BackupState, None when the
    hub runs no schedule): ok (the last good one: when, where, its manifest's SHA-256),
    failed (when, why; and the last good one) or none."""
    if state is None:
        return "none", ""
    tz = ZoneInfo(cfg.sites[0].timezone) if cfg.sites else UTC

    def when(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz).strftime("%Y-%m-%d %H:%M")

    good = (
        f"{when(state.good_ms)} {state.good_path} (SHA-256 {state.good_digest})"
        if state.good_ms is not None
        else ""
    )
    if state.failed_ms is not None and (state.good_ms is None or state.failed_ms > state.good_ms):
        return "failed", f"{when(state.failed_ms)}: {state.failed_why}" + (
            f" | {good}" if good else ""
        )
    return ("ok", good) if good else ("waiting", "")


def records_view(
    cfg: SiteConfig,
    footprint: Footprint,
    now_ms: int,
    audit_head: tuple[int, str] | None,
    seal_head: tuple[int, int, str] | None = None,
) -> RecordsView:
    tz = ZoneInfo(cfg.sites[0].timezone) if cfg.sites else UTC
    oldest = covered = per_year = None
    if footprint.oldest_ms is not None:
        when = datetime.fromtimestamp(footprint.oldest_ms / 1000, tz)
        oldest = when.strftime("%Y-%m-%d %H:%M")
        covered = max(0.0, (now_ms - footprint.oldest_ms) / DAY_MS)
    disk = None if footprint.bytes_on_disk is None else footprint.bytes_on_disk / 1e6
    if disk is not None and covered is not None and covered >= 1:
        per_year = disk / covered * YEAR_DAYS
    store = cfg.hub.store
    retention = waiver = None
    if isinstance(store, SqliteStoreSettings):
        retention = store.retention / 86400
        if store.retention_waiver is not None:
            waiver = (store.retention_waiver.reason, store.retention_waiver.approved_by)
    sealed = None
    if seal_head is not None:
        hour = datetime.fromtimestamp(seal_head[1] / 1000, tz).strftime("%Y-%m-%d %H:%M")
        sealed = (seal_head[0], hour, seal_head[2])
    return RecordsView(oldest, covered, disk, per_year, retention, waiver, audit_head, sealed)
