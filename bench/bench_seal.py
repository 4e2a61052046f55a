"""Sealed readings (``coldchain/store/sqlite/seal.py``): what sealing costs the store, side by
side with sealing off in the same run, and how long ``records verify`` takes.

Two SQLite stores get the same readings (``--series`` sensors every ``--every`` seconds for
``--hours`` hours, written a minute's batch at a time as ingest does), hour by hour in turn:
one is sealed as the hub seals it (``seal()`` each simulated minute, i.e. every hour's part 0
and nothing else most rounds), the other never. The process's CPU (all threads: the store's
writer and sealer threads too) is charged to whichever store is working. Then one gateway's
``--late-hours`` of readings arrive as a backlog after their hours were sealed (an addendum
each), and the sealed store is verified, every hour, with the year's verify time projected
linearly for this site.

    .venv/bin/python bench/bench_seal.py [--series 1000] [--hours 24] [--every 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

from coldchain.reading import Reading, SeriesId
from coldchain.store.sqlite.store import SqliteStore
from coldchain.store.sqlite.verify import verify_readings

T0 = 1_767_225_600_000  # 2026-01-01 UTC
HOUR = 3_600_000
LATE_GW = "gw0"


def batch(ids: list[SeriesId], ts: int, step: int) -> list[Reading]:
    return [Reading(s, ts, round(2 + (step + k) % 30 / 10, 1)) for k, s in enumerate(ids)]


async def run(args: argparse.Namespace, tmp: Path) -> None:
    ids = [SeriesId("s1", f"gw{i // 40}", f"d{i}", "temperature") for i in range(args.series)]
    sealed, plain = SqliteStore(tmp / "sealed.db"), SqliteStore(tmp / "plain.db")
    cpu = {"sealed": 0.0, "plain": 0.0, "seal": 0.0}
    per_hour = 3600 // args.every
    held: list[Reading] = []  # the late gateway's readings of its outage
    written = 0
    for hour in range(args.hours):
        outage = args.hours - args.late_hours - 1 <= hour < args.hours - 1
        for which, store in (("plain", plain), ("sealed", sealed)):
            t = time.process_time()
            for k in range(per_hour):
                ts = T0 + hour * HOUR + k * args.every * 1000
                readings = batch(ids, ts, hour * per_hour + k)
                if outage:
                    if which == "sealed":
                        held += [r for r in readings if r.series.gateway == LATE_GW]
                    readings = [r for r in readings if r.series.gateway != LATE_GW]
                await store.write(readings)
                if which == "sealed":
                    s = time.process_time()
                    await store.seal(ts + args.every * 1000)
                    cpu["seal"] += time.process_time() - s
                written += len(readings) if which == "sealed" else 0
            cpu[which] += time.process_time() - t
    late: dict[str, tuple[float, float]] = {}
    for which, store in (("plain", plain), ("sealed", sealed)):
        t, wall = time.process_time(), time.perf_counter()
        for i in range(0, len(held), len(ids)):
            await store.write(held[i : i + len(ids)])
        result = await store.seal(T0 + args.hours * HOUR) if which == "sealed" else None
        late[which] = (time.process_time() - t, time.perf_counter() - wall)
    assert result is not None
    assert result.late == len(held), (result.late, len(held))
    await sealed.close()
    await plain.close()

    db = sqlite3.connect(f"file:{tmp / 'sealed.db'}?mode=ro", uri=True, isolation_level=None)
    t, wall = time.process_time(), time.perf_counter()
    check = verify_readings(db)
    v_cpu, v_wall = time.process_time() - t, time.perf_counter() - wall
    db.close()
    assert not check.findings, check.findings[:3]
    sizes = {n: (tmp / f"{n}.db").stat().st_size for n in ("sealed", "plain")}

    print(
        f"# sealed readings: {args.series:,} series every {args.every} s for {args.hours} h "
        f"= {written + len(held):,} readings ({len(held):,} of them late: one gateway's last "
        f"{args.late_hours} h); {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    scale = 1000 / written
    print(f"{'CPU ms per 1,000 readings':40}{'sealing off':>14}{'sealing on':>14}{'ratio':>8}")
    print(
        f"{'  written, and sealed each hour':40}{cpu['plain'] * 1000 * scale:14.2f}"
        f"{cpu['sealed'] * 1000 * scale:14.2f}{cpu['sealed'] / cpu['plain']:8.3f}"
    )
    print(f"{'  of which sealing (seal() calls)':40}{'':14}{cpu['seal'] * 1000 * scale:14.2f}")
    print(
        f"{'  a backlog of late readings':40}{late['plain'][0] * 1e6 / len(held):14.2f}"
        f"{late['sealed'][0] * 1e6 / len(held):14.2f}{late['sealed'][0] / late['plain'][0]:8.3f}"
    )
    print(
        f"disk: {sizes['plain'] / 1e6:.1f} MB plain, {sizes['sealed'] / 1e6:.1f} MB sealed "
        f"({(sizes['sealed'] / sizes['plain'] - 1) * 100:+.1f} %)"
    )
    year = 8760 / check.hours
    print(
        f"records verify: {check.hours} hours, {check.readings:,} readings in {v_wall:.1f} s "
        f"({v_cpu:.1f} CPU-s, {v_cpu * 1e6 / check.readings:.2f} µs a reading); "
        f"a year of this site projected: {v_wall * year / 60:.0f} min"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--every", type=int, default=60, help="seconds between readings")
    ap.add_argument("--late-hours", type=int, default=6)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="bench-seal-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
