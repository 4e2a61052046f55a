"""Sealed readings (issue 17, part 1): the SQLite store seals each hour once it is over, late
readings in addenda, and :func:`verify_readings` recomputes every seal and names the hour,
series and part of what was changed, removed or slipped in — and nothing when nothing was."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coldchain.reading import CLOCK_UNSYNCHRONISED, Quality, Reading, SeriesId
from coldchain.store.sqlite.seal import TRIGGER_DDL
from coldchain.store.sqlite.store import SqliteStore
from coldchain.store.sqlite.verify import verify_readings
from hub import backup
from hub.audit import AuditLog

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
MIN = 60_000
HOUR = 3_600_000
SITE = "chengqu-centre"
SERIES = [SeriesId(SITE, f"gw-{g}", f"probe-{d}", "temperature") for g in "ab" for d in range(3)]
LATE_GW = "gw-b"  # its link is down for hours 30-33 of the week


def reading(s: SeriesId, ts: int) -> Reading:
    return Reading(s, ts, 2.0 + (ts // MIN % 17) / 10 + SERIES.index(s) / 100)


def check(
    path: Path, start_ms: int | None = None, end_ms: int | None = None
) -> tuple[list[str], int, int]:
    """Findings as text, hours and readings checked, on a read-only connection."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        out = verify_readings(db, start_ms, end_ms)
    finally:
        db.close()
    return [f"{w}: {what}" for w, what in out.findings], out.hours, out.readings


async def _build_week(path: Path) -> None:
    store = SqliteStore(path)
    backlog: list[Reading] = []
    for hour in range(168):
        start = T0 + hour * HOUR
        batch = [reading(s, start + m * MIN) for m in range(60) for s in SERIES]
        if 30 <= hour < 34:
            backlog += [r for r in batch if r.series.gateway == LATE_GW]
            batch = [r for r in batch if r.series.gateway != LATE_GW]
        await store.write(batch)
        if hour == 40:
            result = await store.write(backlog)
            assert result.stored == len(backlog)
        for minute in (5, 20, 50):
            await store.seal(start + minute * MIN)
    await store.close()


@pytest.fixture(scope="module")
def week_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The week's store, built once for the module (each test gets its own copy)."""
    path = tmp_path_factory.mktemp("week") / "store.db"
    asyncio.run(_build_week(path))
    return path


@pytest.fixture
async def week(week_file: Path, tmp_path: Path) -> AsyncIterator[tuple[Path, SqliteStore]]:
    """A store (in ``tmp_path/data``) holding a week of six series at one reading a minute,
    sealed as the hub does (every few minutes); one gateway's hours 30-33 arrive as a
    backlog at hour 40."""
    (tmp_path / "data").mkdir()
    shutil.copyfile(week_file, tmp_path / "data" / "store.db")
    store = SqliteStore(tmp_path / "data" / "store.db")
    yield tmp_path / "data" / "store.db", store
    await store.close()


async def test_a_week_with_a_backlog_verifies_clean(week: tuple[Path, SqliteStore]) -> None:
    path, store = week
    found, hours, readings = check(path)
    assert found == []
    # the first round (00:05) seals the last hour over by 15 minutes, 22:00 the day before;
    # the last round (hour 167 + 50 min) seals hour 166
    assert hours == 2 + 167
    assert readings == 167 * 60 * len(SERIES)
    db = sqlite3.connect(path)
    addenda = db.execute("SELECT hour, readings FROM seal WHERE part > 0 ORDER BY hour").fetchall()
    assert addenda == [(T0 + h * HOUR, 180) for h in range(30, 34)]  # 3 series x 60
    assert db.execute("SELECT count(*) FROM seal_late WHERE seal IS NULL").fetchone() == (0,)
    # a resend of sealed readings changes nothing and seals nothing
    again = await store.write([reading(s, T0 + 50 * HOUR) for s in SERIES])
    assert (again.stored, again.duplicates) == (0, len(SERIES))
    assert (await store.seal(T0 + 167 * HOUR + 5 * MIN)).late == 0
    assert check(path)[0] == []


async def test_a_changed_reading_is_named_by_hour_series_and_seal(
    week: tuple[Path, SqliteStore],
) -> None:
    path, _ = week
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "UPDATE reading SET value = 1.5 WHERE series = 2 AND ts = ?", (T0 + 99 * HOUR + 7 * MIN,)
    )
    found, _, _ = check(path)
    assert found == [
        "readings 2026-01-05 03:00Z, chengqu-centre/gw-a/probe-1/temperature (the hour's seal, "
        "#106): changed after it was sealed (60 readings, as many as sealed)"
    ]


async def test_removed_and_slipped_in_readings_are_counted(
    week: tuple[Path, SqliteStore],
) -> None:
    path, _ = week
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "DELETE FROM reading WHERE series = 1 AND ts >= ? AND ts < ?",
        (T0 + 10 * HOUR, T0 + 10 * HOUR + 2 * MIN),
    )
    db.execute(
        "INSERT INTO reading VALUES (4, ?, 3.0, 0, NULL, NULL, NULL)", (T0 + 31 * HOUR + 30_000,)
    )
    found, _, _ = check(path)
    assert found == [
        "readings 2026-01-01 10:00Z, chengqu-centre/gw-a/probe-0/temperature (the hour's seal, "
        "#13): 2 of 60 readings sealed removed",
        # hour 31 of gw-b came in an addendum: a reading not noted as late is counted
        # against the hour's own seal, which had none of that series
        "readings 2026-01-02 07:00Z, chengqu-centre/gw-b/probe-0/temperature (the hour's "
        "seal, #34): 1 reading more than the 0 sealed: written around the hub",
    ]


async def test_seals_rewritten_around_the_triggers_are_named(
    week: tuple[Path, SqliteStore],
) -> None:
    """Dropping the triggers shows while they are gone; re-adding them hides nothing."""
    path, _ = week
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER seal_no_update")
    assert check(path)[0] == [
        "trigger seal_no_update: missing: sealed readings can be edited or deleted"
    ]
    db.execute("UPDATE seal SET readings = 359 WHERE id = 50")
    with pytest.raises(sqlite3.IntegrityError, match="sealed readings cannot be changed"):
        db.execute("DELETE FROM seal_series WHERE seal = 60 AND series = 3")
    db.execute("DROP TRIGGER seal_series_no_delete")
    db.execute("DELETE FROM seal_series WHERE seal = 60 AND series = 3")
    db.execute("DROP TRIGGER seal_no_delete")
    db.execute("DELETE FROM seal WHERE id IN (70, 71)")
    db.executescript(TRIGGER_DDL)
    found, _, _ = check(path)
    assert found == [
        "reading seal #50 (2026-01-02 19:00Z): changed after it was written",
        "reading seals #70-#71: removed: the chain breaks there",
        "readings 2026-01-03 05:00Z (the hour's seal, #60): its list of series, or a series' "
        "name, changed after it was sealed",
        "readings 2026-01-03 05:00Z, chengqu-centre/gw-a/probe-2/temperature (the hour's seal, "
        "#60): 60 readings more than the 0 sealed: written around the hub",
        "readings 2026-01-03 15:00Z: no seal: it was removed",
        "readings 2026-01-03 16:00Z: no seal: it was removed",
    ]


async def test_a_renamed_series_is_named(week: tuple[Path, SqliteStore]) -> None:
    path, _ = week
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE series SET device = 'probe-9' WHERE id = 6")
    found, hours, _ = check(path)
    assert len(found) == hours - 2  # every seal of an hour with readings names the series
    assert found[0] == (
        "readings 2026-01-01 00:00Z (the hour's seal, #3): its list of series, or a series' "
        "name, changed after it was sealed"
    )


def marked(s: SeriesId, ts: int) -> Reading:
    return Reading(s, ts, 3.5, Quality.UNCERTAIN, CLOCK_UNSYNCHRONISED, {"calibration": 0.2})


async def test_clock_corrections_across_sealed_hours_verify_clean(tmp_path: Path) -> None:
    """A gateway's readings marked clock-unsynchronised are moved out of sealed hours, into
    sealed hours (late there) and into hours not sealed yet; every hour still verifies."""
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    a, b = SERIES[0], SERIES[3]  # gw-a's readings are corrected; gw-b's are good
    for hour in range(6):
        start = T0 + hour * HOUR
        await store.write(
            [marked(a, start + m * MIN) for m in range(0, 60, 10)]
            + [reading(b, start + m * MIN) for m in range(0, 60, 10)]
        )
        await store.seal(start + 20 * MIN)  # seals the hour before last
    assert check(path)[0] == []
    # hours 0-1: 2 h 5 min later (into sealed hours 2-3); then hours 2-3 (their own marked
    # readings): 3 h 2 min later (into hour 5, sealed in this round, and hour 6, not yet)
    assert (await store.retime("gw-a", T0, T0 + 2 * HOUR, 2 * HOUR + 5 * MIN)).moved == 12
    assert (
        await store.retime("gw-a", T0 + 2 * HOUR, T0 + 4 * HOUR, 3 * HOUR + 2 * MIN)
    ).moved == 12
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM seal_moved").fetchone() == (24,)
    assert db.execute("SELECT count(*) FROM seal_late WHERE seal IS NULL").fetchone() == (12,)
    await store.seal(T0 + 6 * HOUR + 20 * MIN)
    assert db.execute("SELECT count(*) FROM seal_late WHERE seal IS NULL").fetchone() == (0,)
    found, hours, readings = check(path)
    assert found == []
    # hours 0-5, each as sealed (12, the moved-away rows included), then 12 late arrivals
    # in hours 2-3 and 6 arrivals in hour 5
    assert (hours, readings) == (7, 6 * 12 + 12 + 6)
    # the row a correction left behind is evidence too
    db.execute("DROP TRIGGER seal_moved_no_update")
    db.execute("UPDATE seal_moved SET value = 2.0 WHERE ts = ?", (T0 + 10 * MIN,))
    db.commit()
    assert check(path)[0] == [
        "trigger seal_moved_no_update: missing: sealed readings can be edited or deleted",
        "readings 2026-01-01 00:00Z, chengqu-centre/gw-a/probe-0/temperature (the hour's "
        "seal, #2): changed after it was sealed (6 readings, as many as sealed)",
    ]
    await store.close()


async def test_sealing_resumes_after_a_restart_and_a_crash_between_steps(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    for hour in range(3):
        await store.write(
            [reading(s, T0 + hour * HOUR + m * MIN) for s in SERIES for m in range(60)]
        )
    assert (await store.seal(T0 + 2 * HOUR + 20 * MIN)).hours == 1  # hour 1
    await store.close()
    # the hub dies after moving the late horizon past hour 2, before sealing it
    store = SqliteStore(path)
    store._writer.sealing.advance_late(T0 + 2 * HOUR)
    await store.close()
    store = SqliteStore(path)
    late = await store.write([reading(SERIES[0], T0 + 2 * HOUR + 30 * MIN + 1)])
    assert late.stored == 1
    result = await store.seal(T0 + 5 * HOUR + 20 * MIN)  # down for three hours
    assert (result.hours, result.late) == (3, 1)  # hours 2, 3, 4; the late one in hour 2
    db = sqlite3.connect(path)
    assert db.execute("SELECT hour, part, readings FROM seal ORDER BY id").fetchall() == [
        (T0 + HOUR, 0, 360),
        (T0 + 2 * HOUR, 0, 360),
        (T0 + 3 * HOUR, 0, 0),
        (T0 + 4 * HOUR, 0, 0),
        (T0 + 2 * HOUR, 1, 1),
    ]
    assert result.head is not None
    assert result.head[0] == 5
    assert check(path)[0] == []
    # readings before sealing began are not sealed, and not reported
    db.execute("UPDATE reading SET value = 9.9 WHERE ts < ?", (T0 + HOUR,))
    db.commit()
    assert check(path)[0] == []
    await store.close()


async def test_pruned_hours_are_not_checked_and_ranges_are(
    week: tuple[Path, SqliteStore],
) -> None:
    path, store = week
    # retention of 4 days at the week's end: hours before day 3, 23:00 go
    store.raw_retention_days = store.rollup_1m_retention_days = 4
    await store.prune(T0 + 167 * HOUR + 30 * MIN)
    found, hours, _ = check(path)
    assert found == []
    # hours 72-166: hour 71, which the floor falls in, is partly pruned: not checked
    assert hours == 167 - 72
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DELETE FROM reading WHERE ts = ?", (T0 + 100 * HOUR,))
    assert len(check(path)[0]) == len(SERIES)
    assert check(path, start_ms=T0 + 101 * HOUR) == ([], 66, 66 * 360)
    assert len(check(path, end_ms=T0 + 101 * HOUR)[0]) == len(SERIES)


async def test_a_restored_week_verifies_and_the_restore_test_checks_the_seals(
    week: tuple[Path, SqliteStore], tmp_path: Path
) -> None:
    path, _ = week
    made, _ = backup.make(path.parent, tmp_path / "backups")  # the store open, as in the hub
    restored = tmp_path / "restored"
    assert backup.restore(made, restored).problems == []
    assert check(restored / "store.db")[0] == []
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "UPDATE reading SET q = 2, reason = 'x' WHERE series = 5 AND ts = ?", (T0 + 3 * HOUR,)
    )
    made, _ = backup.make(path.parent, tmp_path / "backups2")
    assert backup.check(made).problems == [
        "store.db: readings 2026-01-01 03:00Z, chengqu-centre/gw-b/probe-1/temperature (the "
        "hour's seal, #6): changed after it was sealed (60 readings, as many as sealed)"
    ]


async def test_the_command_checks_the_readings_beside_the_audit_trail(
    week: tuple[Path, SqliteStore],
) -> None:
    path, store = week
    AuditLog(path.parent / "hub.db").close()
    head = (await store.seal(T0 + 167 * HOUR)).head
    assert head is not None

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "coldchain.cli", "records", "verify", str(path.parent)]
        return subprocess.run([*command, *extra], capture_output=True, text=True, check=False)

    ok = verify("--seal-anchor", f"{head[0]}:{head[2]}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert (
        f"readings: 169 hours, {167 * 360} readings checked (sealed from 2025-12-31 22:00Z), "
        f"verifies clean; head: seal {head[0]} (2026-01-07 22:00Z), link {head[2]}"
    ) in ok.stdout
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DELETE FROM reading WHERE series = 1 AND ts = ?", (T0 + 24 * HOUR,))
    bad = verify("--from", "2026-01-02", "--to", "2026-01-02T01:00")
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[0] == (
        "differs: readings 2026-01-02 00:00Z, chengqu-centre/gw-a/probe-0/temperature (the "
        "hour's seal, #27): 1 of 60 readings sealed removed"
    )
    assert "readings: 1 hour, 359 readings checked" in bad.stdout
    assert verify("--from", "2026-01-02T01:00").returncode == 0
    wrong = verify("--seal-anchor", f"{head[0]}:{'0' * 64}")
    assert "reading seal #173: its link is not the printed one" in wrong.stdout
    assert verify("--from", "yesterday").returncode == 2


async def test_against_a_backup_the_readings_themselves_are_named(
    week: tuple[Path, SqliteStore], tmp_path: Path
) -> None:
    path, _ = week
    AuditLog(path.parent / "hub.db").close()
    db = sqlite3.connect(path, isolation_level=None)
    early = T0 + 5 * HOUR + 3 * MIN  # changed before the backup: the backup cannot speak for it
    db.execute("UPDATE reading SET value = 8.8 WHERE series = 3 AND ts = ?", (early,))
    made, _ = backup.make(path.parent, tmp_path / "backups")
    changed, removed = T0 + 50 * HOUR + 7 * MIN, T0 + 60 * HOUR + 9 * MIN
    db.execute("UPDATE reading SET value = 1.5, q = 2 WHERE series = 2 AND ts = ?", (changed,))
    db.execute("DELETE FROM reading WHERE series = 5 AND ts = ?", (removed,))
    db.execute("INSERT INTO reading VALUES (1, ?, 3.25, 0, NULL, NULL, NULL)", (removed + 1,))
    command = [sys.executable, "-m", "coldchain.cli", "records", "verify", str(path.parent)]
    out = await asyncio.to_thread(
        subprocess.run,
        [*command, "--against", str(made)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1
    named = [line for line in out.stdout.splitlines() if line.startswith("differs: reading ")]
    was = reading(SERIES[1], changed).value
    gone = reading(SERIES[4], removed).value
    assert named == [
        "differs: reading chengqu-centre/gw-a/probe-1/temperature at 2026-01-03 02:07:00Z: "
        f"changed: value {was} as sealed, 1.5 now; quality good as sealed, uncertain now",
        "differs: reading chengqu-centre/gw-a/probe-0/temperature at 2026-01-03 12:09:00.001Z: "
        "not as sealed: slipped in (value 3.25, quality good)",
        "differs: reading chengqu-centre/gw-b/probe-1/temperature at 2026-01-03 12:09:00Z: "
        f"removed (as sealed: value {gone}, quality good)",
    ]
    assert "its copy of 2026-01-01 05:00Z does not match the seal either" in out.stderr
