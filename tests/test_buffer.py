"""The outbox: durable appends as numbered batches, acks, resend after restart, the
size-bound policy, and an outbox of the first layout (a row per reading) converted."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import deque
from pathlib import Path

import pytest

from coldchain.reading import Quality, Reading, SeriesId
from edge_agent.buffer import Outbox, Policy
from edge_agent.uplink import LIVE_EVERY, take_next

T0 = 1_764_300_000_000


def reading(device: str, point: str, ts: int, value: float | None = 1.0) -> Reading:
    sid = SeriesId("city", "gw1", device, point)
    if value is None:
        return Reading(sid, ts, None, Quality.BAD, "probe open")
    return Reading(sid, ts, value, meta={"calibration": -0.3} if point == "temperature" else {})


def open_box(path: Path, **policy: float) -> Outbox:
    return Outbox(path, site="city", gateway="gw1", policy=Policy(**policy))  # type: ignore[arg-type]


def everything(box: Outbox) -> list[Reading]:
    return [r for seq in box.unacked() for r in box.load_batch(seq).readings]


def test_batches_round_trip_exactly_and_ack_removes(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db")
    written = [reading("p1", "temperature", T0 + i * 1000, i / 10) for i in range(10)]
    written += [
        reading("p1", "humidity", T0, None),  # bad, with its reason
        reading("p2", "humidity", T0 - 5, 65.30000305175781),  # a float32, earlier
        reading("p2", "temperature", T0 + 7, -21.05),  # not whole tenths
        reading("p2", "temperature", T0 + 9, -3276.8),
    ]
    assert box.append(written) == [1]
    assert box.load_batch(1).readings == written  # values, order, quality, calibration
    assert box.stats().pending == 14
    assert box.ack("another-epoch", [1]) == 0
    assert box.ack(box.epoch, [1]) == 14
    assert box.ack(box.epoch, [1]) == 0  # a duplicate ack changes nothing
    assert box.stats().pending == 0
    assert box.unacked() == []
    with pytest.raises(KeyError):
        box.load_batch(1)


def test_a_window_is_cut_into_batches_of_at_most_max_batch(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db")
    seqs = box.append([reading("p1", "t", T0 + i) for i in range(1200)], max_batch=500)
    assert [len(box.load_batch(s).readings) for s in seqs] == [500, 500, 200]
    assert [r.ts_ms - T0 for r in everything(box)] == list(range(1200))


def test_acks_are_deleted_with_the_next_commit_and_survive_a_crash_as_resends(
    tmp_path: Path,
) -> None:
    box = open_box(tmp_path / "o.db")
    (first,) = box.append([reading("p1", "t", T0)])
    assert box.ack(box.epoch, [first]) == 1
    assert box._db.execute("SELECT count(*) FROM batches").fetchone()[0] == 1  # not yet
    box.append([reading("p1", "t", T0 + 1000)])  # the next window's transaction deletes it
    assert box._db.execute("SELECT count(*) FROM batches").fetchone()[0] == 1
    (third,) = box.append([reading("p1", "t", T0 + 2000)])
    box.ack(box.epoch, [third])
    box._db.close()  # the power goes before another commit: the ack is forgotten
    again = open_box(tmp_path / "o.db")
    assert len(again.unacked()) == 2  # so that batch is sent again; the hub's writes upsert
    assert third in again.unacked()


def test_unacked_batches_survive_a_restart_identically(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db")
    seqs = box.append([reading("p1", "temperature", T0 + i, float(i)) for i in range(5)])
    first = box.load_batch(seqs[0])
    box.close()
    again = open_box(tmp_path / "o.db")
    assert again.epoch == box.epoch
    assert again.unacked() == seqs
    assert again.load_batch(seqs[0]) == first
    assert again.append([reading("p1", "temperature", T0 + 9, 9.0)]) == [seqs[-1] + 1]


def test_live_batches_ride_along_with_the_backlog() -> None:
    queue = deque(range(1, 101))  # a day's backlog, oldest first, and the newest at the end
    order = [take_next(queue, n) for n in range(1, 13)]
    assert LIVE_EVERY == 4
    assert order == [1, 2, 3, 100, 4, 5, 6, 99, 7, 8, 9, 98]


def test_size_bound_thins_old_readings_and_counts(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db", max_bytes=400_000, keep_recent_s=3600)
    minute = 60_000
    # three days of one reading per minute for 20 series, an hour a commit, oldest first
    for day_minute in range(0, 3 * 24 * 60, 60):
        box.append(
            [
                reading(f"p{s}", "temperature", T0 + (day_minute + m) * minute, 2.0)
                for m in range(60)
                for s in range(20)
            ]
        )
    stats = box.stats()
    assert stats.used_bytes <= 400_000
    assert stats.thinned_total > 0
    newest = T0 + (3 * 24 * 60 - 1) * minute
    series = SeriesId("city", "gw1", "p1", "temperature")
    kept = sorted(r.ts_ms for r in everything(box) if r.series == series)
    recent = [t for t in kept if t >= newest - 3600_000]
    assert len(recent) == 61  # every reading of the newest hour is kept
    first_day = [t for t in kept if t < T0 + 24 * 60 * minute]
    # the oldest: one reading per series per clock half-hour (T0 is 20 min into one)
    assert first_day
    assert all((t - T0) % (30 * minute) == 10 * minute for t in first_day[1:])
    assert {b - a for a, b in itertools.pairwise(first_day[1:])} == {30 * minute}
    # every reading is accounted for: kept, thinned or dropped, and counted
    assert stats.pending + stats.thinned_total + stats.dropped_total == 3 * 24 * 60 * 20


def test_batches_in_flight_are_neither_thinned_nor_dropped(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db", max_bytes=60_000, keep_recent_s=60)
    minute = 60_000
    (oldest,) = box.append([reading("p1", "t", T0 + m * 1000, 2.0) for m in range(120)])
    sent = box.load_batch(oldest)  # out on the wire, the hub may be committing it
    for hour in range(1, 24 * 3):
        box.append([reading(f"p{s}", "t", T0 + hour * 60 * minute + s, 2.0) for s in range(400)])
    assert box.stats().dropped_total > 0
    assert box.load_batch(oldest) == sent


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
    values = [r.value for r in everything(box) if r.value is not None]
    assert sorted(set(values))[: last + 1] == [float(i) for i in range(last + 1)]
    assert {values.count(v) for v in values} == {10}  # whole transactions only


def test_a_late_duplicate_ack_never_deletes_a_newer_batch(tmp_path: Path) -> None:
    box = open_box(tmp_path / "o.db")
    (first,) = box.append([reading("p1", "temperature", T0, 1.0)])
    assert box.ack(box.epoch, [first]) == 1
    box.flush_acks()
    (second,) = box.append([reading("p1", "temperature", T0 + 1000, 2.0)])
    assert second > first  # numbers are never reused, even once the table is empty
    assert box.ack(box.epoch, [first]) == 0  # the hub acked the first batch twice
    assert box.unacked() == [second]
    box.close()
    reopened = open_box(tmp_path / "o.db")
    (third,) = reopened.append([reading("p1", "temperature", T0 + 2000, 3.0)])
    assert third > second  # not reused across a restart either
    assert reopened.ack(reopened.epoch, [second]) == 1


FIRST_LAYOUT = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE series (
    id INTEGER PRIMARY KEY, device TEXT NOT NULL, point TEXT NOT NULL, cal REAL NOT NULL,
    UNIQUE (device, point, cal));
CREATE TABLE readings (
    id INTEGER PRIMARY KEY, series INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL,
    q INTEGER NOT NULL, reason TEXT, batch INTEGER);
CREATE INDEX readings_batch ON readings (batch) WHERE batch IS NOT NULL;
CREATE INDEX readings_unbatched ON readings (id) WHERE batch IS NULL;
CREATE TABLE batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER NOT NULL);
INSERT INTO meta VALUES ('epoch', 'e1'), ('thinned', 3);
INSERT INTO series VALUES (1, 'p1', 'temperature', -0.3), (2, 'p1', 'humidity', 0.0);
INSERT INTO batches VALUES (6, 0), (7, 0);
DELETE FROM sqlite_sequence; INSERT INTO sqlite_sequence VALUES ('batches', 9);
INSERT INTO readings (series, ts, value, q, reason, batch) VALUES
    (1, 1764300000000, 2.5, 0, NULL, 7), (2, 1764300000000, NULL, 1, 'probe open', 7),
    (1, 1764300001000, 2.6, 0, NULL, NULL), (1, 1764300002000, 2.7, 0, NULL, NULL),
    (1, 1764300000500, 9.9, 0, NULL, 6);
"""


def test_an_outbox_of_the_first_layout_is_converted_keeping_everything(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    with sqlite3.connect(path) as con:
        con.executescript(FIRST_LAYOUT)
    box = open_box(path)
    assert box.epoch == "e1"
    assert box.unacked() == [6, 7, 10]  # batch numbers kept; the loose readings: a new one
    t, h = SeriesId("city", "gw1", "p1", "temperature"), SeriesId("city", "gw1", "p1", "humidity")
    assert box.load_batch(7).readings == [
        Reading(t, T0, 2.5, meta={"calibration": -0.3}),
        Reading(h, T0, None, Quality.BAD, "probe open"),
    ]
    assert [r.value for r in box.load_batch(10).readings] == [2.6, 2.7]
    assert box.stats().thinned_total == 3
    assert box.append([reading("p1", "temperature", T0 + 5000)]) == [11]  # never reused
    tables = {n for (n,) in box._db.execute("SELECT name FROM sqlite_master")}
    assert "readings" not in tables
