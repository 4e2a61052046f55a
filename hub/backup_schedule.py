"""The hub's daily backup (issue 17, part 3): at ``hub.backup.at`` (the first site's local
time) the hub backs up its data dir (:func:`hub.backup.make`, online), restore-tests the
backup against the digest it was made with (:func:`hub.backup.check`: every file, SQLite's
integrity check, the audit chain, the sealed readings), and keeps it only if it passes. Then
it thins the backups out, grandfather-father-son: the newest backup of each of the last
``keep_daily`` days, ``keep_weekly`` ISO weeks and ``keep_monthly`` months stay (60 months:
the five years GSP asks), the others are deleted. A failed backup is deleted at once (it is
not a backup) and its problems audited.

With ``hub.backup.s3``, each good backup is then copied to an S3-compatible bucket and the
copy there restore-tested (:mod:`hub.backup_s3`); ``backup.made`` names the copy. A copy that
fails is a failed day (``backup.failed``, the alert) although the backup on disk is kept and
good. The copies in the bucket are thinned out by the same rule.

Everything it does is audited (``backup.schedule`` when the schedule is first seen or changes,
``backup.made``, ``backup.failed``, ``backup.pruned``), and its state (since when it runs, the
last good and the last failed backup) is restored from the audit trail at start: the
``backup`` alert rule fires when the last run failed or no backup was good for its
``max_age`` (26 h by default), whether or not the hub restarted in between. The records page
shows the last good backup and its manifest's digest.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from coldchain.clock import Clock
from coldchain.config.site import BackupSettings
from coldchain.secrets import SecretError, resolve
from coldchain.statedb import PostgresTarget
from hub import backup, backup_s3, backup_vm
from hub.audit import AuditLog

log = logging.getLogger(__name__)
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class BackupState:
    """Since when the schedule runs, its last good backup (when, where, the manifest's
    SHA-256) and its last failure (when, why); None where there is none."""

    configured_ms: int | None = None
    good_ms: int | None = None
    good_path: str | None = None
    good_digest: str | None = None
    failed_ms: int | None = None
    failed_why: str | None = None


def made_at(path: Path) -> datetime | None:
    """When a backup directory was made (UTC, from its name); None: not a backup's name."""
    if not path.name.startswith(backup.PREFIX):
        return None
    try:
        return datetime.strptime(path.name[len(backup.PREFIX) :], STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def gfs_keep(
    made: Iterable[datetime], *, daily: int, weekly: int, monthly: int, tz: ZoneInfo
) -> set[datetime]:
    """Which of the backups made at ``made`` to keep: the newest of each of the last
    ``daily`` local days, ``weekly`` ISO weeks and ``monthly`` months that have one."""
    newest: dict[tuple[str, object], datetime] = {}
    for t in made:
        day = t.astimezone(tz).date()
        iso = day.isocalendar()
        for key in (("d", day), ("w", (iso.year, iso.week)), ("m", (day.year, day.month))):
            if key not in newest or t > newest[key]:
                newest[key] = t
    keep: set[datetime] = set()
    for kind, count in (("d", daily), ("w", weekly), ("m", monthly)):
        periods = sorted((k for k in newest if k[0] == kind), key=lambda k: newest[k])
        keep |= {newest[k] for k in periods[len(periods) - count :]} if count else set()
    return keep


def next_run(now_ms: int, at: str, tz: ZoneInfo) -> int:
    """The next ``at`` (HH:MM, local in ``tz``) after ``now_ms``, in UTC ms."""
    hour, minute = map(int, at.split(":"))
    now = datetime.fromtimestamp(now_ms / 1000, tz)
    day: date = now.date()
    for _ in range(3):  # today, else tomorrow (a day that skips the hour: the day after)
        when = datetime.combine(day, time(hour, minute), tzinfo=tz)
        if when > now:
            return round(when.timestamp() * 1000)
        day += timedelta(days=1)
    raise AssertionError(f"no {at} in the next days")


class BackupSchedule:
    """Runs the daily backup of ``data_dir`` (see the module doc)."""

    def __init__(
        self,
        settings: BackupSettings,
        data_dir: Path,
        *,
        tz: ZoneInfo,
        audit: AuditLog,
        clock: Clock,
        on_state: Callable[[BackupState], None],
        victoria: backup_vm.VictoriaSource | None = None,
        hub_state: PostgresTarget | None = None,
    ) -> None:
        self.settings, self.data_dir, self.tz = settings, data_dir, tz
        self.victoria = victoria  # the VictoriaMetrics store, copied too (hub/backup_vm.py)
        self.hub_state = hub_state  # the hub's state on PostgreSQL, dumped too (backup_pg.py)
        to = Path(settings.to)
        self.to = to if to.is_absolute() else data_dir.resolve().parent / to
        self.audit, self.clock, self.on_state = audit, clock, on_state
        self.state = self._restore()

    def _restore(self) -> BackupState:
        """The state as the audit trail has it; the schedule audited when new or changed."""
        wanted = {**self.settings.model_dump(mode="json"), "to": str(self.to)}
        last = self.audit.last("backup.schedule", "backup")
        if last is None or last.after != wanted:
            self.audit.record(
                actor="hub",
                action="backup.schedule",
                obj="backup",
                before=None if last is None else last.after,
                after=wanted,
            )
        return self.read_state()

    def read_state(self) -> BackupState:
        """The state as the audit trail has it now (a hub that does not run the schedule
        shows the leader's backups so)."""
        first = self.audit.about("backup.schedule", ["backup"])[0]  # since when it runs
        good = self.audit.last("backup.made", "backup")
        failed = self.audit.last("backup.failed", "backup")
        return BackupState(
            configured_ms=first.ts_ms,
            good_ms=None if good is None else good.ts_ms,
            good_path=None if good is None else good.after.get("path"),
            good_digest=None if good is None else good.after.get("manifest_sha256"),
            failed_ms=None if failed is None else failed.ts_ms,
            failed_why=None if failed is None else failed.comment,
        )

    def run_once(self) -> BackupState:
        """Make, restore-test, keep or delete, thin out: one day's backup (blocking: run it
        in a thread). The new state."""
        try:
            made, digest = backup.make(
                self.data_dir, self.to, victoria=self.victoria, state=self.hub_state
            )
        except (backup.BackupError, OSError) as exc:
            return self._failed(f"not made: {exc}")
        checked = backup.check(made, expect=digest, state=self.hub_state)
        if not checked.good:
            shutil.rmtree(made, ignore_errors=True)
            return self._failed("restore test: " + "; ".join(checked.problems[:5]))
        copy, copy_failed = self._copy(made, digest)
        after = {
            "path": str(made),
            "manifest_sha256": digest,
            "files": checked.files,
            "bytes": checked.bytes,
        }
        if copy is not None:
            after["copy"] = copy
        rid = self.audit.record(actor="hub", action="backup.made", obj="backup", after=after)
        record = self.audit.last("backup.made", "backup")
        assert record is not None  # just written
        log.info("backup %s made and restore-tested (audit #%d)", made, rid)
        self.state = BackupState(
            configured_ms=self.state.configured_ms,
            good_ms=record.ts_ms,
            good_path=str(made),
            good_digest=digest,
            failed_ms=self.state.failed_ms,
            failed_why=self.state.failed_why,
        )
        self.prune()
        if copy_failed is not None:
            return self._failed(copy_failed)
        return self.state

    def s3_target(self) -> backup_s3.S3Target | None:
        """Where copies go (the keys read now: a rotated file is taken up), or None."""
        c = self.settings.s3
        if c is None:
            return None
        base = self.data_dir.resolve().parent
        keys = (
            (None, None)
            if c.access_key_id is None or c.secret_access_key is None
            else (
                resolve(c.access_key_id, base_dir=base).get_secret_value(),
                resolve(c.secret_access_key, base_dir=base).get_secret_value(),
            )
        )
        return backup_s3.S3Target.parse(
            c.url,
            endpoint=c.endpoint,
            region=c.region,
            access_key_id=keys[0],
            secret_access_key=keys[1],
        )

    def _copy(self, made: Path, digest: str) -> tuple[str | None, str | None]:
        """With ``hub.backup.s3``: ``made`` copied to the bucket and the copy restore-tested;
        (the copy's URL, None) or (None, why it failed); (None, None) without."""
        try:
            target = self.s3_target()
            if target is None:
                return None, None
            url = backup_s3.upload(made, target)
            checked = backup_s3.prove(target, made.name, expect=digest, state=self.hub_state)
        except (backup_s3.S3Error, SecretError) as exc:
            return None, f"copy to S3: {exc} (the backup on disk is good: {made})"
        if not checked.good:
            return None, (
                f"restore test of the copy in S3: {'; '.join(checked.problems[:5])} "
                f"(the backup on disk is good: {made})"
            )
        log.info("backup %s copied to %s and restore-tested there", made.name, url)
        return url, None

    def _failed(self, why: str) -> BackupState:
        log.error("the daily backup failed: %s", why)
        self.audit.record(actor="hub", action="backup.failed", obj="backup", comment=why[:2000])
        record = self.audit.last("backup.failed", "backup")
        assert record is not None  # just written
        self.state = BackupState(
            configured_ms=self.state.configured_ms,
            good_ms=self.state.good_ms,
            good_path=self.state.good_path,
            good_digest=self.state.good_digest,
            failed_ms=record.ts_ms,
            failed_why=why,
        )
        return self.state

    def prune(self) -> list[str]:
        """Delete the backups GFS does not keep; their names (audited)."""
        found = {t: p for p in self.to.iterdir() if p.is_dir() and (t := made_at(p)) is not None}
        s = self.settings
        keep = gfs_keep(
            found, daily=s.keep_daily, weekly=s.keep_weekly, monthly=s.keep_monthly, tz=self.tz
        )
        gone = sorted(p.name for t, p in found.items() if t not in keep)
        for name in gone:
            shutil.rmtree(self.to / name, ignore_errors=True)
        if gone:
            self.audit.record(actor="hub", action="backup.pruned", obj="backup", after=gone)
        self._prune_copies()
        return gone

    def _prune_copies(self) -> None:
        """The copies in the bucket GFS does not keep, deleted (audited); a bucket that
        cannot be reached is logged and tried again tomorrow."""
        try:
            target = self.s3_target()
            if target is None:
                return
            names = backup_s3.names(target)
            found = {t: n for n in names if (t := made_at(Path(n))) is not None}
            s = self.settings
            keep = gfs_keep(
                found, daily=s.keep_daily, weekly=s.keep_weekly, monthly=s.keep_monthly, tz=self.tz
            )
            gone = sorted(n for t, n in found.items() if t not in keep)
            for name in gone:
                backup_s3.delete(target, name)
        except (backup_s3.S3Error, SecretError) as exc:
            log.warning("thinning out the copies in S3: %s", exc)
            return
        if gone:
            self.audit.record(
                actor="hub", action="backup.pruned", obj="backup", after=gone, comment=target.url()
            )

    async def run(self) -> None:
        """Forever: wait for the next ``at``, back up in a thread, report the state."""
        self.on_state(self.state)
        while True:
            now = self.clock.now_ms()
            await self.clock.sleep((next_run(now, self.settings.at, self.tz) - now) / 1000)
            try:
                state = await asyncio.to_thread(self.run_once)
            except Exception as exc:  # a bug here must not take the hub's alarms down
                log.exception("the daily backup failed")
                state = await asyncio.to_thread(self._failed, f"unexpected: {exc!r}")
            self.on_state(state)
