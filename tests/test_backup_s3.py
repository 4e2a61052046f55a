"""Backups copied to an S3-compatible bucket (issue 17, part 3; hub/backup_s3.py), against a
real S3 API that checks every request's signature (tests/s3.py): a copy made and
restore-tested there, the centre's disk wiped, the copy restored with the same answers; wrong
keys, a damaged or incomplete copy caught and named; the daily schedule's copies, their
failure alerting, and their thinning out."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coldchain.clock import WALL
from coldchain.config.site import BackupSettings
from coldchain.store.sqlite.store import SqliteStore
from hub import backup_s3
from hub.audit import AuditLog
from hub.backup import MANIFEST_DIGEST, PREFIX
from hub.backup_schedule import STAMP, BackupSchedule, gfs_keep
from tests.s3 import BUCKET, S3Service, s3_service
from tests.test_backup import answers, data_dir
from tests.test_backup_schedule import SH
from tests.test_backup_schedule import data_dir as hours_dir

__all__ = ["data_dir", "s3_service"]  # fixtures: a month in a hub's data dir, the S3 API


def run(s3: S3Service, *argv: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
    env = s3.env()
    if secret is not None:
        env["AWS_SECRET_ACCESS_KEY"] = secret
    return subprocess.run(
        [sys.executable, "-m", "coldchain.cli", *argv],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


@pytest.mark.slow
async def test_a_copy_in_s3_restores_the_same_answers_after_the_centre_is_lost(
    data_dir: Path, tmp_path: Path, s3_service: S3Service
) -> None:
    s3 = s3_service
    store = SqliteStore(data_dir / "store.db")
    before = await answers(store)
    await store.close()
    made = run(
        s3,
        "backup",
        str(data_dir),
        "--to",
        str(tmp_path / "local"),
        "--s3",
        f"s3://{BUCKET}/centre",
        "--s3-endpoint",
        s3.endpoint,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    [local] = (tmp_path / "local").iterdir()
    url = f"s3://{BUCKET}/centre/{local.name}"
    assert f"copied to {url}\n" in made.stdout
    assert "restore test of the copy in S3: ok, 3 files checked" in made.stdout
    objects = s3.objects()
    assert set(objects) == {f"centre/{local.name}/{p.name}" for p in local.iterdir()}
    assert (
        objects[f"centre/{local.name}/{MANIFEST_DIGEST}"] == (local / MANIFEST_DIGEST).read_bytes()
    )
    digest = made.stdout.split("manifest SHA-256: ")[1].split()[0]

    shutil.rmtree(data_dir)  # the centre's disk is gone, and the backup on it
    shutil.rmtree(local)
    into = tmp_path / "restored"
    restored = run(
        s3, "restore", url, "--into", str(into), "--expect", digest, "--s3-endpoint", s3.endpoint
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    store = SqliteStore(into / "store.db")
    assert await answers(store) == before
    await store.close()
    assert (into / "admin-password").read_text() == "not-a-real-secret\n"


async def test_wrong_keys_a_damaged_and_an_incomplete_copy_are_named(
    data_dir: Path, tmp_path: Path, s3_service: S3Service
) -> None:
    s3 = s3_service
    args = ("backup", str(data_dir), "--to", str(tmp_path / "local"))
    where = ("--s3", f"s3://{BUCKET}/centre", "--s3-endpoint", s3.endpoint)
    refused = run(s3, *args, *where, secret="not-the-secret")
    assert refused.returncode == 2
    assert "copy to S3 failed: s3://coldchain-backups/centre: copying" in refused.stderr
    assert "SignatureDoesNotMatch" in refused.stderr
    assert "the backup is kept in" in refused.stderr
    assert s3.objects() == {}
    bad_url = run(s3, *args, "--s3", "s3://No_Such/x")
    assert bad_url.returncode == 2
    assert "--s3: 's3://No_Such/x': not s3://BUCKET/PREFIX" in bad_url.stderr

    await _next_second()  # the refused copy's backup was made this second
    made = run(s3, *args, *where)
    assert made.returncode == 0, made.stdout + made.stderr
    name = max(p.name for p in (tmp_path / "local").iterdir())
    url = f"s3://{BUCKET}/centre/{name}"
    test = ("restore", url, "--test", "--s3-endpoint", s3.endpoint)
    assert run(s3, *test).returncode == 0
    c = s3.client()
    key = f"centre/{name}/hub.db.gz"
    data = bytearray(c.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[100] ^= 0xFF
    c.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))
    damaged = run(s3, *test)
    assert damaged.returncode == 1
    assert (
        "differs: hub.db.gz: its bytes differ from the manifest's digest: damaged" in damaged.stdout
    )

    c.delete_object(Bucket=BUCKET, Key=f"centre/{name}/{MANIFEST_DIGEST}")  # broke off
    incomplete = run(s3, *test)
    assert incomplete.returncode == 2
    assert f"{url}: no complete backup there (no {MANIFEST_DIGEST})" in incomplete.stderr
    target = backup_s3.S3Target.parse(
        f"s3://{BUCKET}/centre",
        endpoint=s3.endpoint,
        access_key_id=s3.keys[0],
        secret_access_key=s3.keys[1],
    )
    assert backup_s3.names(target) == []  # not listed as a backup either
    wrong = run(s3, *test, secret="not-the-secret")
    assert wrong.returncode == 2
    assert "SignatureDoesNotMatch" in wrong.stderr

    # a copy swapped for another backup, whole and consistent: only the digest kept tells
    first = made.stdout.split("manifest SHA-256: ")[1].split()[0]
    await _next_second()
    other = run(s3, *args)
    assert other.returncode == 0, other.stderr
    newest = max((tmp_path / "local").iterdir())
    swapped = tmp_path / "swap" / name
    shutil.copytree(newest, swapped)
    backup_s3.upload(swapped, target)  # under the first one's name
    assert backup_s3.prove(target, name, expect=None).good  # consistent in itself
    proved = backup_s3.prove(target, name, expect=first)
    assert not proved.good
    assert "manifest" in proved.problems[0], proved.problems


async def test_the_schedule_copies_alerts_on_a_failed_copy_and_thins_out(
    tmp_path: Path, s3_service: S3Service
) -> None:
    s3 = s3_service
    data = await hours_dir(tmp_path)
    (tmp_path / "s3-key").write_text(s3.keys[0] + "\n")
    (tmp_path / "s3-secret").write_text(s3.keys[1] + "\n")
    copy = {
        "url": f"s3://{BUCKET}/daily",
        "endpoint": s3.endpoint,
        "access_key_id": f"file:{tmp_path / 's3-key'}",
        "secret_access_key": f"file:{tmp_path / 's3-secret'}",
    }
    target = backup_s3.S3Target.parse(
        copy["url"], endpoint=s3.endpoint, access_key_id=s3.keys[0], secret_access_key=s3.keys[1]
    )
    start = datetime(2026, 1, 1, 18, 30, tzinfo=UTC)  # older copies, to be thinned out
    old = [start + timedelta(days=i) for i in range(20)]
    for t in old:
        for rel in ("hub.db.gz", MANIFEST_DIGEST):
            key = target.key(f"{PREFIX}{t.strftime(STAMP)}", rel)
            s3.client().put_object(Bucket=BUCKET, Key=key, Body=b"old")
    audit = AuditLog(data / "hub.db")
    settings = BackupSettings.model_validate(
        {
            "to": str(tmp_path / "local"),
            "keep_daily": 3,
            "keep_weekly": 2,
            "keep_monthly": 1,
            "s3": copy,
        }
    )
    sched = BackupSchedule(settings, data, tz=SH, audit=audit, clock=WALL, on_state=lambda s: None)
    state = sched.run_once()
    assert state.failed_ms is None, state.failed_why
    assert state.good_path is not None
    name = Path(state.good_path).name
    [made] = audit.about("backup.made", ["backup"])
    assert made.after["copy"] == f"s3://{BUCKET}/daily/{name}"
    listed = backup_s3.names(target)
    assert name in listed
    when = {
        t: n
        for n in listed
        if (t := datetime.strptime(n[len(PREFIX) :], STAMP).replace(tzinfo=UTC))
    }
    assert set(when) == gfs_keep([*old, *when], daily=3, weekly=2, monthly=1, tz=SH), (
        "the copies GFS keeps, and only those"
    )
    pruned = audit.about("backup.pruned", ["backup"])
    assert pruned[-1].comment == f"s3://{BUCKET}/daily"
    assert len(pruned[-1].after) == 20 + 1 - len(listed)

    # keys that the service refuses: the day failed (the alert), the backup on disk kept
    (tmp_path / "s3-secret").write_text("not-the-secret\n")
    await _next_second()
    bad = sched.run_once()
    assert bad.failed_ms is not None
    assert bad.good_ms is not None
    assert bad.failed_ms >= bad.good_ms
    assert bad.failed_why is not None
    assert "copy to S3: s3://coldchain-backups/daily: copying" in bad.failed_why
    assert "SignatureDoesNotMatch" in bad.failed_why
    assert "(the backup on disk is good:" in bad.failed_why
    assert bad.good_path is not None
    assert bad.good_path != state.good_path  # today's, on disk
    audit.close()


async def _next_second() -> None:
    import asyncio
    import time

    await asyncio.sleep(1.01 - time.time() % 1)  # backups are named to the second
