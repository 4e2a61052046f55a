"""Backups of a hub's data dir (``hub/backup.py``): how long making one, restore-testing it
and restoring it take, and how big it is, for a store of ``--series`` sensors read every
``--every`` seconds over ``--days`` days (SQLite, written through the store as ingest does and
sealed hour by hour as the hub seals it, so the restore test verifies the seals too), with
the year's figures projected linearly from the bytes. With ``--s3``, also the copy to an
S3-compatible bucket (``hub/backup_s3.py``: upload, the copy downloaded again and
restore-tested) and a restore from it, against moto's S3 server on this machine
(``tests/s3.py``): the figures are the centre's own work over loopback, not a real link's.

    .venv/bin/python bench/bench_backup.py [--series 1000] [--days 7] [--every 300] [--s3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from pathlib import Path

from coldchain.reading import Reading, SeriesId
from coldchain.store.sqlite.store import SqliteStore
from hub import backup, backup_s3
from hub.audit import AuditLog
from tests.s3 import running_s3

T0 = 1_767_225_600_000  # 2026-01-01 UTC


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def fill(data_dir: Path, series: int, days: int, every: int) -> int:
    store = SqliteStore(data_dir / "store.db")
    ids = [SeriesId("s1", f"gw{i // 40}", f"d{i}", "temperature") for i in range(series)]
    steps = days * 86400 // every
    n = 0
    for step in range(steps):
        ts = T0 + step * every * 1000
        await store.write(
            [Reading(s, ts, round(2 + (step + k) % 30 / 10, 1)) for k, s in enumerate(ids)]
        )
        if (ts // 60_000) % 60 == 20:  # sealed as the hub seals it (an hour, once it is over)
            await store.seal(ts)
        n += series
    await store.close()
    log = AuditLog(data_dir / "hub.db")
    for i in range(1000):
        log.record(actor="hub", action="alert.open", obj=f"alert-{i}", after={"state": "firing"})
    log.close()
    return n


def copied(made: Path, tmp: Path) -> list[tuple[str, float]]:
    """The backup copied to a bucket, the copy restore-tested there, and restored from it:
    the seconds each took."""
    with running_s3(tmp) as s3:
        target = backup_s3.S3Target.parse(
            f"s3://{s3.bucket}/bench",
            endpoint=s3.endpoint,
            access_key_id=s3.keys[0],
            secret_access_key=s3.keys[1],
        )
        t = time.perf_counter()
        backup_s3.upload(made, target)
        t_upload = time.perf_counter() - t
        t = time.perf_counter()
        proved = backup_s3.prove(target, made.name, expect=None)
        t_prove = time.perf_counter() - t
        assert proved.good, proved.problems
        t = time.perf_counter()
        fetched = backup_s3.download(target, made.name, tmp / "fetched")
        restored = backup.restore(fetched, tmp / "restored-from-s3")
        t_restore = time.perf_counter() - t
        assert restored.good, restored.problems
    return [
        ("copy to S3 (s)", t_upload),
        ("its restore test (s)", t_prove),
        ("restore from S3 (s)", t_restore),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--every", type=int, default=300, help="seconds between readings")
    ap.add_argument("--s3", action="store_true", help="also copy to a bucket and restore from it")
    args = ap.parse_args()
    s3_rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="bench-backup-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "hub"
        data.mkdir()
        t = time.perf_counter()
        readings = asyncio.run(fill(data, args.series, args.days, args.every))
        filled = time.perf_counter() - t
        data_bytes = size(data)
        t = time.perf_counter()
        made, _ = backup.make(data, tmp / "backups")
        t_make = time.perf_counter() - t
        backup_bytes = size(made)
        t = time.perf_counter()
        checked = backup.check(made)
        t_check = time.perf_counter() - t
        assert checked.good, checked.problems
        t = time.perf_counter()
        restored = backup.restore(made, tmp / "restored")
        t_restore = time.perf_counter() - t
        assert restored.good, restored.problems
        if args.s3:
            s3_rows = copied(made, tmp)
    year = 365 * 86400 / (args.days * 86400)
    print(
        f"# backup of a hub data dir: {args.series:,} series every {args.every} s for "
        f"{args.days} days = {readings:,} readings (filled in {filled:.0f} s); "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{'':24}{'measured':>14}{'a year, projected':>20}")
    rows = [
        ("data dir (MB)", data_bytes / 1e6, data_bytes / 1e6 * year),
        ("backup (MB)", backup_bytes / 1e6, backup_bytes / 1e6 * year),
        ("make (s)", t_make, t_make * year),
        ("restore test (s)", t_check, t_check * year),
        ("restore (s)", t_restore, t_restore * year),
    ]
    rows += [(name, now, now * year) for name, now in s3_rows]
    for name, now, projected in rows:
        print(f"{name:24}{now:14,.1f}{projected:20,.0f}")
    per = (data_bytes / readings, backup_bytes / readings)
    print(f"bytes per reading: data dir {per[0]:.1f}, backup {per[1]:.1f}")


if __name__ == "__main__":
    main()
