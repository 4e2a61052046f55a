"""The outbox: durable appends, batches, acks, resend after restart, the size-bound policy."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coldchain.reading import Quality, Reading, SeriesId
from edge_agent.buffer import Outbox, Policy

T0 = 1_764_300_000_000


def reading(device: str, point: str, ts: int, value: float | None = 1.0) -> Reading:
    sid = SeriesId("city", "gw1", device, point)
    if value is None:
        return Reading(sid, ts, None, Quality.BAD, "probe open")
    return Reading(sid, ts, value, meta={"calibration": -0.3} if point == "temperature" else {})


def open_box(path: Path, **policy: float) -> Outbox:
    return Outbox(path, site="city", gateway="gw1", policy=Policy(**policy))  # type: ignore[arg-type]


def test_batches_round_trip_and_ack_removes(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db")
    written = [reading("p1", "temperature", T0 + i * 1000, i / 10) for i in range(10)]
    written.append(reading("p1", "humidity", T0, None))
    box.append(written)
    batch = box.next_batch(100)
    assert batch is not None
    assert batch.seq == 1
    assert sorted(batch.readings, key=lambda r: (r.series, r.ts_ms)) == sorted(
        written, key=lambda r: (r.series, r.ts_ms)
    )
    assert box.next_batch(100) is None
    assert box.stats().pending == 11
    assert box.ack("another-epoch", [1]) == 0
    assert box.ack(box.epoch, [1]) == 11
    assert box.ack(box.epoch, [1]) == 0  # a duplicate ack changes nothing
    assert box.stats().pending == 0


def test_unacked_batches_survive_a_restart_identically(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db")
    box.append([reading("p1", "temperature", T0 + i, float(i)) for i in range(5)])
    first = box.next_batch(3)
    assert first is not None
    box.close()
    again = open_box(tmp_path / "o.db")
    assert again.epoch == box.epoch
    assert again.unacked() == [first.seq]
    assert again.load_batch(first.seq) == first
    rest = again.next_batch(10)
    assert rest is not None
    assert rest.seq == first.seq + 1
    assert len(first.readings) + len(rest.readings) == 5


def test_live_readings_ride_along_with_the_backlog(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db", live_share=0.25)
    box.append([reading("p1", "temperature", T0 + i, float(i)) for i in range(1000)])
    batch = box.next_batch(100)
    assert batch is not None
    ts = sorted(r.ts_ms - T0 for r in batch.readings)
    assert ts[:75] == list(range(75))  # oldest first ...
    assert ts[75:] == list(range(975, 1000))  # ... and the newest quarter


def test_size_bound_thins_old_readings_and_counts(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db", max_bytes=2_000_000, keep_recent_s=3600)
    minute = 60_000
    # three days of one reading per minute for 20 series, oldest first
    for day_minute in range(0, 3 * 24 * 60, 60):
        box.append(
            [
                reading(f"p{s}", "temperature", T0 + (day_minute + m) * minute, 2.0)
                for m in range(60)
                for s in range(20)
            ]
        )
    stats = box.stats()
    assert stats.used_bytes <= 2_000_000
    assert stats.thinned_total > 0
    newest = T0 + (3 * 24 * 60 - 1) * minute
    rows = box._db.execute("SELECT ts FROM readings WHERE series = 1 ORDER BY ts").fetchall()
    recent = [t for (t,) in rows if t >= newest - 3600_000]
    assert len(recent) == 61  # every reading of the newest hour is kept
    first_day = [t for (t,) in rows if t < T0 + 24 * 60 * minute]
    # the oldest: one reading per series per clock half-hour (T0 is 20 min into one)
    assert all((t - T0) % (30 * minute) == 10 * minute for t in first_day[1:])
    assert {b - a for a, b in itertools.pairwise(first_day[1:])} == {30 * minute}
    # every reading is accounted for: kept, thinned or dropped, and counted
    assert stats.pending + stats.thinned_total + stats.dropped_total == 3 * 24 * 60 * 20


WRITER = textwrap.dedent(
    """
    import sys
    from coldchain.reading import Reading, SeriesId
    from edge_agent.buffer import Outbox
    box = Outbox(sys.argv[1], site="city", gateway="gw1")
    i = 0
    while True:
        box.append([Reading(SeriesId("city", "gw1", "p1", "t"), 1764300000000 + i * 10 + k,
                            float(i)) for k in range(10)])
        print(i, flush=True)
        i += 1
    """
)


@pytest.mark.parametrize("after_lines", [5, 50])
def test_kill_9_mid_burst_loses_nothing_committed(tmp_path: Path, after_lines: int) -> None:
    path = tmp_path / "o.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    last = -1
    for _ in range(after_lines):
        last = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    box = open_box(path)
    values = sorted({v for (v,) in box._db.execute("SELECT value FROM readings")})
    assert values[: last + 1] == [float(i) for i in range(last + 1)]
    counts = box._db.execute("SELECT count(*) FROM readings GROUP BY value").fetchall()
    assert {c for (c,) in counts} == {10}  # whole transactions only


def test_a_late_duplicate_ack_never_deletes_a_newer_batch(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db")
    box.append([reading("p1", "temperature", T0, 1.0)])
    first = box.next_batch(10)
    assert first is not None
    assert box.ack(box.epoch, [first.seq]) == 1
    box.append([reading("p1", "temperature", T0 + 1000, 2.0)])
    second = box.next_batch(10)
    assert second is not None
    assert second.seq > first.seq  # numbers are never reused, even once the table is empty
    assert box.ack(box.epoch, [first.seq]) == 0  # the hub acked the first batch twice
    assert box.unacked() == [second.seq]
    box.close()
    reopened = open_box(tmp_path / "o.db")
    reopened.append([reading("p1", "temperature", T0 + 2000, 3.0)])
    assert reopened.ack(reopened.epoch, [second.seq]) == 1
    third = reopened.next_batch(10)
    assert third is not None
    assert third.seq > second.seq  # not reused across a restart either
