"""The hub's daily backup (issue 17, part 3): grandfather-father-son retention, the next run
time, a day's backup made and restore-tested (a tampered store fails it, and the failed
backup is not kept), everything audited; the backup rule alerts on a failure at once and on a
missing backup after max_age, never without a schedule; the hub shows it on the records page
and raises the warning."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coldchain.clock import WALL, ManualClock
from coldchain.config.site import BackupSettings, PostgresStateSettings
from coldchain.reading import Reading, SeriesId
from coldchain.statedb import PostgresTarget
from coldchain.store.sqlite.store import SqliteStore
from hub import backup_pg, records_service
from hub.audit import AuditLog
from hub.backup import PREFIX
from hub.backup_schedule import STAMP, BackupSchedule, BackupState, gfs_keep, next_run
from tests.alertkit import PROFILES, T0, changes, evaluator
from tests.hubkit import running_hub_service, session_header
from tests.services import Broker, until
from tests.test_records_page import records_rows
from tests.test_signatures import _config
from tests.webclient import raw

SH = ZoneInfo("Asia/Shanghai")
HOUR = 3_600_000


def test_gfs_keeps_the_newest_of_each_day_week_and_month() -> None:
    start = datetime(2025, 1, 1, 18, 30, tzinfo=UTC)  # 02:30 in Shanghai, the next day
    made = [start + timedelta(days=i) for i in range(400)]
    made += [start + timedelta(days=399, hours=2)]  # a second backup on the last day
    keep = gfs_keep(made, daily=7, weekly=5, monthly=60, tz=SH)
    local = sorted(t.astimezone(SH) for t in keep)
    days = {t.date() for t in local}
    last = made[-1].astimezone(SH).date()
    assert {last - timedelta(days=i) for i in range(7)} <= days  # the last 7 days
    assert made[-2] not in keep  # the last day's earlier backup: not the newest of its day
    assert len(local) == len(days)  # one a day at most
    # the newest of each of 14 months (Jan 2025 to Feb 2026), each a month's last day
    # (but the current month's newest, the last backup)
    months = {(t.year, t.month) for t in local}
    assert len(months) == 14
    # the last local day is Thursday 2026-02-05: 7 days (Jan 30 - Feb 5); of the 5 ISO weeks,
    # those of Jan 5, 12 and 19 add their Sundays; of the 14 months, the 12 before January
    # 2026 add their last days (January's and February's newest are among the days)
    assert len(keep) == 7 + 3 + 12
    assert gfs_keep(made, daily=1, weekly=0, monthly=0, tz=SH) == {made[-1]}


def test_the_next_run_is_the_next_local_time_of_day() -> None:
    now = int(datetime(2026, 3, 1, 1, 0, tzinfo=SH).timestamp() * 1000)
    assert next_run(now, "02:30", SH) == int(
        datetime(2026, 3, 1, 2, 30, tzinfo=SH).timestamp() * 1000
    )
    later = int(datetime(2026, 3, 1, 2, 30, tzinfo=SH).timestamp() * 1000)
    assert next_run(later, "02:30", SH) == int(
        datetime(2026, 3, 2, 2, 30, tzinfo=SH).timestamp() * 1000
    )


async def data_dir(tmp_path: Path) -> Path:
    """A hub data dir with an audit trail and a store of three hours, the last sealed (the
    first round of sealing seals the last hour that is over)."""
    data = tmp_path / "hub"
    data.mkdir()
    store = SqliteStore(data / "store.db")
    s = SeriesId("s1", "gw1", "probe", "temperature")
    await store.write([Reading(s, T0 + i * 60_000, 3.0 + i % 7 / 10) for i in range(180)])
    await store.seal(T0 + 3 * HOUR + 20 * 60_000)
    await store.close()
    AuditLog(data / "hub.db").close()
    return data


async def test_a_days_backup_is_made_tested_and_kept_and_a_bad_one_is_not(tmp_path: Path) -> None:
    data = await data_dir(tmp_path)
    audit = AuditLog(data / "hub.db")
    states: list[BackupState] = []
    settings = BackupSettings(
        to=str(tmp_path / "backups"), keep_daily=2, keep_weekly=0, keep_monthly=0
    )
    sched = BackupSchedule(settings, data, tz=SH, audit=audit, clock=WALL, on_state=states.append)
    assert sched.state.configured_ms is not None
    assert sched.state.good_ms is None
    good = sched.run_once()
    assert good.good_path is not None
    assert (tmp_path / "backups" / Path(good.good_path).name).is_dir()
    assert good.failed_ms is None
    [made] = audit.about("backup.made", ["backup"])
    assert made.after["manifest_sha256"] == good.good_digest

    # a reading changed behind the store's back: the restore test finds it, nothing is kept
    db = sqlite3.connect(data / "store.db")
    db.execute("UPDATE reading SET value = 9.9 WHERE ts = ?", (T0 + 150 * 60_000,))  # hour 2
    db.commit()
    db.close()
    await asyncio.sleep(1.01 - time.time() % 1)  # backups are named to the second
    bad = sched.run_once()
    assert bad.failed_ms is not None
    assert bad.good_path == good.good_path  # the last good one is still the last good one
    assert bad.failed_why is not None
    assert "changed after it was sealed" in bad.failed_why
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == [Path(good.good_path).name]
    [failed] = audit.about("backup.failed", ["backup"])
    assert failed.comment == bad.failed_why

    # a restart reads the state back from the audit trail; the schedule is audited once
    again = BackupSchedule(settings, data, tz=SH, audit=audit, clock=WALL, on_state=states.append)
    assert again.state == bad
    assert len(audit.about("backup.schedule", ["backup"])) == 1
    audit.close()


async def test_prune_keeps_what_gfs_keeps_and_audits_the_rest(tmp_path: Path) -> None:
    data = await data_dir(tmp_path)
    audit = AuditLog(data / "hub.db")
    to = tmp_path / "backups"
    start = datetime(2026, 1, 1, 18, 30, tzinfo=UTC)
    made = [start + timedelta(days=i) for i in range(40)]
    for t in made:
        (to / f"{PREFIX}{t.strftime(STAMP)}").mkdir(parents=True)
    (to / "notes").mkdir()  # not a backup: left alone
    settings = BackupSettings(to=str(to), keep_daily=3, keep_weekly=2, keep_monthly=2)
    sched = BackupSchedule(settings, data, tz=SH, audit=audit, clock=WALL, on_state=lambda s: None)
    gone = sched.prune()
    kept = gfs_keep(made, daily=3, weekly=2, monthly=2, tz=SH)
    assert sorted(p.name for p in to.iterdir()) == sorted(
        [f"{PREFIX}{t.strftime(STAMP)}" for t in kept] + ["notes"]
    )
    assert len(gone) == 40 - len(kept)
    [pruned] = audit.about("backup.pruned", ["backup"])
    assert pruned.after == gone
    audit.close()


def test_the_backup_rule_fires_on_a_failure_at_once_and_on_a_missing_backup_in_time() -> None:
    assert evaluator().tick(T0 + 1000 * HOUR) == []  # no schedule: never (the demo, the sites)
    ev = evaluator()
    assert ev.backup(configured_ms=T0, last_good_ms=None, failed_ms=None, ts_ms=T0) == []
    assert ev.tick(T0 + 26 * HOUR - 1000) == []
    got = ev.tick(T0 + 26 * HOUR)
    assert changes(got)[-1] == ("backup-missing/warning", "firing")
    got = ev.backup(
        configured_ms=T0, last_good_ms=T0 + 27 * HOUR, failed_ms=None, ts_ms=T0 + 27 * HOUR
    )
    assert changes(got) == [("backup-missing/warning", "resolved")]
    got = ev.backup(
        configured_ms=T0,
        last_good_ms=T0 + 27 * HOUR,
        failed_ms=T0 + 28 * HOUR,
        ts_ms=T0 + 28 * HOUR,
    )
    assert changes(got)[-1] == ("backup-missing/warning", "firing")  # a failure: at once


@pytest.mark.usefixtures("hub_engine")  # on PostgreSQL the state is dumped into each backup
async def test_the_hub_shows_its_backups_and_warns_of_a_failed_one(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = _config()
    hub_settings = cfg.hub.model_copy(update={"backup": BackupSettings(to=str(tmp_path / "b"))})
    cfg = cfg.model_copy(update={"hub": hub_settings})
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        assert hub.records.backups is not None
        headers = session_header(hub.url)
        headers["Cookie"] += "; coldchain_lang=en"

        async def row() -> str:
            status, _, body = await raw("GET", f"{hub.url}/reports", headers=headers)
            assert status == 200
            return records_rows(body)["Last good backup"]

        await until(lambda: hub.records.backup_state is not None, "the schedule's state at start")
        assert await row() == "scheduled, none made yet"
        state = await asyncio.to_thread(hub.records.backups.run_once)
        hub.records.on_backup_state(state)
        assert state.good_ms is not None
        assert state.good_path is not None
        dumped = (Path(state.good_path) / backup_pg.FILE).is_file()
        assert dumped == isinstance(hub.state, PostgresTarget)
        assert await row() == (
            f"{datetime.fromtimestamp(state.good_ms / 1000, SH):%Y-%m-%d %H:%M} "
            f"{state.good_path} (SHA-256 {state.good_digest})"
        )
        hub.records.backups.to = tmp_path / "hub" / "inside"  # into the data dir: refused
        state = await asyncio.to_thread(hub.records.backups.run_once)
        hub.records.on_backup_state(state)
        assert (await row()).startswith("Backup failed: ")
        [alert] = [a for a in hub.alerts.open.values() if a.rule == "backup-missing"]
        assert (alert.state, alert.severity) == ("firing", "warning")


@pytest.mark.slow
async def test_only_the_alert_leader_backs_up_and_the_standby_shows_its_backups(
    tmp_path: Path, mosquitto: Broker, postgres: PostgresTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hubs on one PostgreSQL state: the daily backup (and the store's pruning and
    sealing) runs on the one that leads the alerts, not twice; the other's records page
    shows the leader's backups, read from the audit trail."""
    monkeypatch.setattr(records_service, "FOLLOW_S", 0.05)
    cfg = _config()
    hub_settings = cfg.hub.model_copy(
        update={
            "backup": BackupSettings(to=str(tmp_path / "b")),
            "state": PostgresStateSettings(type="postgres", url=postgres.conninfo),
        }
    )
    cfg = cfg.model_copy(update={"hub": hub_settings})

    def running(name: str) -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if t.get_name() == name]

    async with (
        running_hub_service(cfg, PROFILES, tmp_path / "a", mosquitto.url) as a,
        running_hub_service(cfg, PROFILES, tmp_path / "b-hub", mosquitto.url) as b,
    ):
        await until(lambda: a.alerts.leading != b.alerts.leading, "one leads, one stands by")
        leader, standby = (a, b) if a.alerts.leading else (b, a)
        await until(lambda: len(running("backup")) == 1, "the leader's schedule up")
        assert len(running("store-prune")) == len(running("store-seal")) == 1
        assert leader.records.backups is not None
        state = await asyncio.to_thread(leader.records.backups.run_once)
        assert state.good_ms is not None

        def shown() -> bool:
            got = standby.records.backup_state
            return got is not None and got.good_digest == state.good_digest

        await until(shown, "the standby shows the leader's backup")


async def test_the_schedule_runs_at_its_time_and_survives_its_own_bug(tmp_path: Path) -> None:
    """At ``at`` each day; an unexpected error is a failed backup (audited, alerted), not a
    dead hub: the loop goes on to the next day."""
    data = await data_dir(tmp_path)
    audit = AuditLog(data / "hub.db")
    start = datetime(2026, 3, 1, 1, 0, tzinfo=SH).timestamp()
    clock = ManualClock(start)
    states: list[BackupState] = []
    settings = BackupSettings(to=str(tmp_path / "backups"), at="02:30")
    sched = BackupSchedule(settings, data, tz=SH, audit=audit, clock=clock, on_state=states.append)
    runs: list[float] = []

    def broken() -> BackupState:
        runs.append(clock.now())
        raise RuntimeError("a bug")

    sched.run_once = broken  # type: ignore[method-assign]
    task = asyncio.create_task(sched.run())
    await until(lambda: clock.sleeping() == 1, "the schedule waiting for 02:30")
    clock.advance(3600 + 1800)  # 02:30
    await until(lambda: len(states) == 2 and clock.sleeping() == 1, "a failed run, then waiting")
    assert runs == [start + 5400]
    assert states[-1].failed_why == "unexpected: RuntimeError('a bug')"
    clock.advance(86400)  # the next day's 02:30: it runs again
    await until(lambda: len(runs) == 2, "the next day's run")
    task.cancel()
    audit.close()


def test_a_victoria_metrics_copy_needs_a_victoria_metrics_store() -> None:
    from coldchain.config.site import HubSettings

    backup_vm = {"to": "/srv/backups", "victoria_metrics_data": "/var/lib/victoria-metrics"}
    with pytest.raises(ValueError, match="is for a VictoriaMetrics store"):
        HubSettings.model_validate({"backup": backup_vm})
    vm = {"type": "influx", "url": "http://127.0.0.1:8428"}
    assert HubSettings.model_validate({"store": vm, "backup": backup_vm}).backup is not None
