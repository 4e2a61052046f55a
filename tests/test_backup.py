"""Backups that are proven (``hub/backup.py``): made online while the store is open, restored
into an empty data dir with the same answers to every query, and a damaged or altered backup
named by the restore test, which then restores nothing."""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.base import Agg
from coldchain.store.sqlite.store import SqliteStore
from hub import backup
from hub.audit import AuditLog

DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01 UTC
SERIES = [SeriesId("s1", "gw1", f"d{i}", p) for i in range(10) for p in ("temperature", "humidity")]


def month() -> list[Reading]:
    """30 days of 20 series, a reading every 10 min (86,400), a few bad ones among them."""
    out = []
    for k, s in enumerate(SERIES):
        for i in range(30 * 144):
            ts = T0 + i * 600_000
            if i % 997 == k:
                out.append(Reading(s, ts, None, Quality.BAD, "no reply"))
            else:
                out.append(Reading(s, ts, round(2.0 + (i * 7 + k) % 30 / 10, 1)))
    return out


async def answers(store: SqliteStore) -> list[object]:
    """What the store says: every raw reading, hourly means, the latest of each series."""
    out: list[object] = [sorted(await store.series())]
    for s in SERIES:
        out.append(await store.raw(s, T0, T0 + 30 * DAY_MS))
        out.append(await store.range(s, T0, T0 + 30 * DAY_MS, 3_600_000, Agg.MEAN))
    out.append(sorted((await store.latest()).items()))
    return out


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    """A hub's data dir: a month in store.db, audit records in hub.db, a password file."""
    d = tmp_path / "hub"
    d.mkdir()
    store = SqliteStore(d / "store.db")
    readings = month()
    for i in range(0, len(readings), 5000):
        await store.write(readings[i : i + 5000])
    await store.close()
    log = AuditLog(d / "hub.db")
    for i in range(5):
        log.record(actor="wang-li", action="alert.ack", obj=f"alert-{i}", comment="冷库门已关")
    log.close()
    (d / "admin-password").write_text("not-a-real-secret\n")
    return d


@pytest.mark.slow
async def test_backup_wipe_restore_gives_the_same_answers(data_dir: Path, tmp_path: Path) -> None:
    store = SqliteStore(data_dir / "store.db")  # the hub runs: the store is open, its WAL live
    await store.write([Reading(SERIES[0], T0 + 30 * DAY_MS - 1, 9.9)])  # in the WAL only
    before = await answers(store)
    made, digest = backup.make(data_dir, tmp_path / "backups")
    await store.close()
    manifest = json.loads((made / "manifest.json").read_text())
    assert {f["path"]: f["kind"] for f in manifest["files"]} == {
        "admin-password": "file",
        "hub.db": "sqlite",
        "store.db": "sqlite",
    }
    assert digest == hashlib.sha256((made / "manifest.json").read_bytes()).hexdigest()
    checked = backup.check(made, expect=digest)
    assert checked.problems == []
    assert checked.files == 3

    restored = tmp_path / "restored"
    result = backup.restore(made, restored, expect=digest)
    assert result.good
    again = SqliteStore(restored / "store.db")
    try:
        assert await answers(again) == before
    finally:
        await again.close()
    log = AuditLog(restored / "hub.db")
    records, total = log.page(10, 0)
    log.close()
    assert total == 5
    assert records[0].comment == "冷库门已关"
    assert (restored / "admin-password").read_text() == "not-a-real-secret\n"
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.restore(made, restored)
    with pytest.raises(backup.BackupError, match="inside the data dir"):
        backup.make(data_dir, data_dir / "backups")
    deep = tmp_path / "a" / "b" / "c"  # parents made as needed
    assert backup.restore(made, deep).good


def flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


async def test_a_moved_byte_is_named_and_nothing_is_restored(
    data_dir: Path, tmp_path: Path
) -> None:
    made, digest = backup.make(data_dir, tmp_path / "backups")
    flip_byte(made / "store.db.gz", 4000)
    checked = backup.check(made, expect=digest)
    assert checked.problems == ["store.db.gz: its bytes differ from the manifest's digest: damaged"]
    into = tmp_path / "restored"
    assert not backup.restore(made, into).good
    assert not into.exists()  # nothing half restored

    flip_byte(made / "manifest.json", 10)
    with pytest.raises(backup.BackupError, match="not the one beside it: changed"):
        backup.restore(made, tmp_path / "elsewhere")


async def test_a_consistent_forgery_is_caught_by_the_kept_digest(
    data_dir: Path, tmp_path: Path
) -> None:
    """Whoever rewrites a file and every digest after it leaves a backup that checks out by
    itself; the manifest digest kept elsewhere does not match it."""
    made, digest = backup.make(data_dir, tmp_path / "backups")
    packed = made / "admin-password.gz"
    with gzip.open(packed, "wb") as f:
        f.write(b"an attacker's password\n")
    manifest = json.loads((made / "manifest.json").read_text())
    [entry] = [e for e in manifest["files"] if e["path"] == "admin-password"]
    entry["sha256"] = hashlib.sha256(b"an attacker's password\n").hexdigest()
    entry["packed_sha256"] = hashlib.sha256(packed.read_bytes()).hexdigest()
    text = json.dumps(manifest).encode()
    (made / "manifest.json").write_bytes(text)
    (made / "manifest.sha256").write_text(hashlib.sha256(text).hexdigest() + "  manifest.json\n")
    assert backup.check(made).good  # consistent with itself
    checked = backup.check(made, expect=digest)
    assert [p.split(": ", 1)[1] for p in checked.problems] == [
        f"its SHA-256 is not the one kept: {digest}"
    ]


async def test_the_restore_test_runs_the_audit_chain(data_dir: Path, tmp_path: Path) -> None:
    db = sqlite3.connect(data_dir / "hub.db", isolation_level=None)
    db.executescript(
        "DROP TRIGGER audit_no_update; UPDATE audit SET comment = 'nothing' WHERE id = 3;"
    )
    db.close()
    made, _ = backup.make(data_dir, tmp_path / "backups")
    assert backup.check(made).problems == [
        "hub.db: trigger audit_no_update: missing: the audit trail can be edited or deleted",
        "hub.db: audit record 3: changed after it was written",
    ]


async def test_the_commands(data_dir: Path, tmp_path: Path) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coldchain.cli", *argv],
            capture_output=True,
            text=True,
            check=False,
        )

    made = run("backup", str(data_dir), "--to", str(tmp_path / "b"))
    assert made.returncode == 0, made.stderr
    assert "restore test: ok, 3 files" in made.stdout
    [target] = (tmp_path / "b").iterdir()
    digest = made.stdout.split("manifest SHA-256: ")[1].split()[0]
    test = run("restore", str(target), "--test", "--expect", digest)
    assert test.returncode == 0, test.stdout + test.stderr
    into = tmp_path / "new"
    restored = run("restore", str(target), "--into", str(into))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert (into / "store.db").is_file()
    flip_byte(target / "hub.db.gz", 100)
    bad = run("restore", str(target), "--test")
    assert bad.returncode == 1
    assert "differs: hub.db.gz: its bytes differ from the manifest's digest: damaged" in bad.stdout
    refused = run("restore", str(target), "--into", str(into))
    assert refused.returncode == 2
    assert "not empty" in refused.stderr
