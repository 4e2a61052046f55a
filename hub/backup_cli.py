"""``coldchain backup DATA_DIR --to DIR`` and ``coldchain restore BACKUP --into DATA_DIR``
(:mod:`hub.backup`): a backup is restore-tested as soon as it is made."""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coldchain.statedb import PostgresTarget, cli_target

if TYPE_CHECKING:
    from hub.backup_s3 import S3Target

BACKUP_DESCRIPTION = """\
Back up the hub's data dir (DATA_DIR: hub.db, the SQLite store, passwords and keys) into a
new directory under DIR: each database copied online with SQLite's backup API (the hub may
keep running), every file gzip-compressed, and a manifest with the SHA-256 of every file
before and after compression. The backup is then restore-tested: restored into a scratch
dir, every digest checked, SQLite's integrity check run on each database and the audit
trail's chain and the store's sealed readings verified; exit status 1 if that finds
anything. With --victoria-metrics, that server is backed up too (vmbackup, run where its data
lies), every file of the copy in the manifest, and the restore test restores it with
vmrestore. With --state, the hub's state on PostgreSQL is dumped too (pg_dump) and the restore
test restores it into a scratch database on that server and verifies its audit trail.
Prints the manifest's SHA-256: keep it somewhere else, 'coldchain restore --expect' checks
it. With --s3 s3://BUCKET/PREFIX the backup is then copied to that S3-compatible bucket
(--s3-endpoint for Aliyun OSS, Tencent COS, MinIO and the like), and the copy there is
downloaded again and restore-tested the same way."""

RESTORE_DESCRIPTION = """\
Restore a backup made by 'coldchain backup' into DATA_DIR, which must be empty or absent:
every digest is checked, SQLite's integrity check runs on each database and the audit
trail's chain is verified before anything is put in place; if anything differs nothing is
restored and the command names the file. A VictoriaMetrics copy in the backup is restored
with vmrestore into --victoria-metrics-data (a stopped server's empty data path), and a dump
of the hub's state with pg_restore into --state (an empty PostgreSQL database), or left
out. With --test, restore into a scratch dir, check, and throw it away (the restore
test). BACKUP may be a copy in an S3-compatible bucket, s3://BUCKET/PREFIX/coldchain-backup-...
(keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials): it is downloaded
into a scratch dir first."""


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="the hub's data dir")
    parser.add_argument(
        "--to", type=Path, required=True, metavar="DIR", help="where the backup dir is made"
    )
    parser.add_argument(
        "--no-test", action="store_true", help="skip the restore test (not recommended)"
    )
    parser.add_argument(
        "--victoria-metrics",
        metavar="URL",
        help="also back up this VictoriaMetrics (the line-protocol store) with vmbackup; "
        "needs --victoria-metrics-data, on the machine that holds its data",
    )
    parser.add_argument(
        "--victoria-metrics-data",
        type=Path,
        metavar="PATH",
        help="that VictoriaMetrics' -storageDataPath",
    )
    _s3_arguments(parser)
    parser.add_argument(
        "--s3",
        metavar="s3://BUCKET/PREFIX",
        help="then copy the backup to this S3-compatible bucket (AWS S3, Aliyun OSS, MinIO, "
        "...; keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials) and "
        "restore-test the copy there",
    )
    parser.add_argument(
        "--state",
        metavar="URL",
        help="also back up the hub's state on PostgreSQL (hub.state url; pg_dump, the "
        "password from ~/.pgpass or PGPASSWORD); the restore test restores it into a scratch "
        "database on that server (the role needs CREATEDB)",
    )


def _s3_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="the S3-compatible service's endpoint (e.g. https://oss-cn-hangzhou.aliyuncs.com); "
        "absent: AWS",
    )
    parser.add_argument("--s3-region", metavar="REGION", help="the bucket's region")


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "backup",
        metavar="BACKUP",
        help="a backup's directory, or its copy s3://BUCKET/PREFIX/coldchain-backup-...",
    )
    _s3_arguments(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--into", type=Path, metavar="DATA_DIR", help="the empty data dir to restore into"
    )
    where.add_argument(
        "--test", action="store_true", help="restore into a scratch dir, check, throw it away"
    )
    parser.add_argument(
        "--expect",
        metavar="SHA256",
        help="the manifest's SHA-256 as kept when the backup was made",
    )
    parser.add_argument(
        "--victoria-metrics-data",
        type=Path,
        metavar="PATH",
        help="restore the backup's VictoriaMetrics copy (vmrestore) into this stopped "
        "server's empty -storageDataPath",
    )
    parser.add_argument(
        "--state",
        metavar="URL",
        help="restore the backup's dump of the hub's state into this empty PostgreSQL "
        "database (with --test: the server its scratch database is made on)",
    )


def _bar(total: int, what: str) -> tuple[Any, Callable[[int, str], None]]:
    """A progress bar on stderr (tqdm), and the progress function that moves it."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, desc=what, file=sys.stderr, leave=False)

    def step(n: int, _what: str) -> None:
        bar.update(n)

    return bar, step


def _state(url: str | None) -> PostgresTarget | None:
    """``--state URL``: the hub's state on PostgreSQL (ValueError for a URL that is not one)."""
    if url is None:
        return None
    target = cli_target(Path(), url)
    assert isinstance(target, PostgresTarget)
    return target


def run_backup(args: argparse.Namespace) -> int:
    from hub import backup, backup_vm

    data_dir: Path = args.data_dir
    if not data_dir.is_dir():
        print(f"{data_dir}: not a directory: give the hub's data dir", file=sys.stderr)
        return 2
    if (args.victoria_metrics is None) != (args.victoria_metrics_data is None):
        print(
            "give both --victoria-metrics URL and --victoria-metrics-data PATH, or neither",
            file=sys.stderr,
        )
        return 2
    victoria = None
    if args.victoria_metrics is not None:
        victoria = backup_vm.VictoriaSource(args.victoria_metrics, args.victoria_metrics_data)
    try:
        state = _state(args.state)
    except ValueError as exc:
        print(f"--state: {exc}", file=sys.stderr)
        return 2
    s3 = None
    if args.s3 is not None:
        from hub import backup_s3

        try:
            s3 = backup_s3.S3Target.parse(args.s3, endpoint=args.s3_endpoint, region=args.s3_region)
        except ValueError as exc:
            print(f"--s3: {exc}", file=sys.stderr)
            return 2
    total = sum(p.stat().st_size * (2 if p.suffix == ".db" else 1) for p in backup.files(data_dir))
    bar, step = _bar(total, "backup")
    try:
        target, digest = backup.make(
            data_dir, args.to, progress=step, victoria=victoria, state=state
        )
    except (backup.BackupError, OSError, sqlite3.Error) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(f"backup: {target}")
    print(f"manifest SHA-256: {digest} (keep it elsewhere)")
    if not args.no_test:
        checked = backup.check(target, expect=digest, state=state)
        for problem in checked.problems:
            print(f"differs: {problem}")
        if not checked.good:
            print(f"restore test: FAILED, {len(checked.problems)} problems")
            return 1  # a backup that fails its test is not copied anywhere
        print(
            f"restore test: ok, {checked.files} files, {checked.bytes:,} bytes restored and checked"
        )
    if s3 is None:
        return 0
    return _copy_to_s3(s3, target, digest, state, test=not args.no_test)


def _copy_to_s3(
    s3: S3Target, made: Path, digest: str, state: PostgresTarget | None, *, test: bool
) -> int:
    """``--s3``: the backup just made copied to the bucket, and that copy restore-tested."""
    from hub import backup_s3

    total = sum(p.stat().st_size for p in made.rglob("*") if p.is_file())
    bar, step = _bar(total, "copy to S3")
    try:
        url = backup_s3.upload(made, s3, progress=step)
    except backup_s3.S3Error as exc:
        print(f"copy to S3 failed: {exc} (the backup is kept in {made})", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(f"copied to {url}")
    if not test:
        return 0
    checked = backup_s3.prove(s3, made.name, expect=digest, state=state)
    for problem in checked.problems:
        print(f"differs: {problem}")
    if not checked.good:
        print(f"restore test of the copy in S3: FAILED, {len(checked.problems)} problems")
        return 1
    print(f"restore test of the copy in S3: ok, {checked.files} files checked")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from hub import backup, backup_s3

    scratch: Path | None = None
    try:
        state = _state(args.state)
        source = Path(args.backup)
        if args.backup.startswith("s3://"):  # fetched into a scratch dir first
            source, scratch = backup_s3.scratch_copy(
                args.backup, endpoint=args.s3_endpoint, region=args.s3_region
            )
        if args.test:
            checked = backup.check(source, expect=args.expect, state=state)
        else:
            checked = backup.restore(
                source,
                args.into,
                expect=args.expect,
                victoria_data=args.victoria_metrics_data,
                state=state,
            )
    except (backup.BackupError, OSError, ValueError) as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 2
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    for problem in checked.problems:
        print(f"differs: {problem}")
    for skipped in checked.skipped:
        print(f"left out: {skipped}")
    if not checked.good:
        print("restore: nothing restored" if not args.test else "restore test: FAILED")
        return 1
    where = "a scratch dir (thrown away)" if args.test else str(args.into)
    print(f"restored into {where}: {checked.files} files, {checked.bytes:,} bytes, all checked")
    return 0
