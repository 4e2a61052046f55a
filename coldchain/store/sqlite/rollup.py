"""Rollups of the SQLite store: how they are kept, and how ranged queries read them.

``rollup_1m`` and ``rollup_1h`` hold, per series and bucket (aligned to the epoch): the good
readings' count, sum, min, max and last value (with its time as an offset into the bucket),
and the count of other (bad, uncertain) readings. A trigger on ``reading`` folds each newly
inserted row into both, in the writer's transaction: a duplicate that INSERT OR IGNORE skips
fires nothing, and a backfilled reading updates its old bucket like any other.

Compact rows: a bucket with at most one good reading leaves ``min``, ``max`` and ``last``
NULL — they equal ``sum`` (so ``coalesce(min, sum)`` is the minimum). At one reading per
minute, most 1-min buckets hold one reading; this halves the 1-min rollup on disk.

The 1-h rollup is made an hour late. Each series has a **horizon** (``rollup_1h_horizon``,
an hour): a reading stamped before it folds into ``rollup_1h`` by the trigger; the series'
hours from it on have no 1-h row yet. When the newest reading written is two hours past a
series' horizon, the writer moves it on, in a write's transaction: the series' 1-min rows of
the hours passed are added up into their 1-h rows (:data:`ROLL_SQL`), at most
:data:`ROLL_SERIES` series a write, so the work of an hour spreads over the next writes
instead of stalling one. At one reading a minute that is one row written per series and hour
instead of sixty updates of the same row, which were a third of a write's cost. A series
without a horizon row folds every reading (a store from before, until its first write). Queries
read a series' hours from its horizon on from ``rollup_1m`` (the whole hours before it from
``rollup_1h``), in the same read transaction as the horizon, so they never see an hour twice
or not at all.

``range_query`` answers a step that is a multiple of 1 h from ``rollup_1h``, of 1 min from
``rollup_1m``, anything else from raw rows; the parts of the window that do not cover whole
rollup buckets are read from raw rows and merged, so every source gives the same answer (the
mean up to float rounding: a sum of sums is added in another order).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from itertools import starmap

from coldchain.store.base import Agg, Bucket

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
ROLL_SERIES = 1000
"""Series whose 1-h rows one write adds up, at most (~60,000 1-min rows, some 70 ms)."""

_COLUMNS = """
    series INTEGER NOT NULL, bucket INTEGER NOT NULL,
    count INTEGER NOT NULL, other INTEGER NOT NULL,
    sum REAL, min REAL, max REAL, last REAL, last_off INTEGER,
    PRIMARY KEY (series, bucket)"""


def _fold(table: str, grain: int) -> str:
    """Fold NEW (one reading) into its bucket of ``table``; all right-hand sides see the
    bucket as it was."""
    off = f"((NEW.ts % {grain}) + {grain}) % {grain}"  # floor modulo, also before 1970
    return f"""
    INSERT INTO {table} (series, bucket, count, other, sum, last_off)
    VALUES (NEW.series, NEW.ts - {off}, NEW.q = 0, NEW.q <> 0,
            CASE WHEN NEW.q = 0 THEN NEW.value END, CASE WHEN NEW.q = 0 THEN {off} END)
    ON CONFLICT (series, bucket) DO UPDATE SET
        count = count + excluded.count,
        other = other + excluded.other,
        sum = CASE WHEN excluded.count = 0 THEN sum WHEN count = 0 THEN excluded.sum
                   ELSE sum + excluded.sum END,
        min = CASE WHEN excluded.count = 0 OR count = 0 THEN min
                   ELSE min(coalesce(min, sum), excluded.sum) END,
        max = CASE WHEN excluded.count = 0 OR count = 0 THEN max
                   ELSE max(coalesce(max, sum), excluded.sum) END,
        last = CASE WHEN excluded.count = 0 OR count = 0 THEN last
                    WHEN excluded.last_off > last_off THEN excluded.sum
                    ELSE coalesce(last, sum) END,
        last_off = CASE WHEN excluded.count = 0 THEN last_off WHEN count = 0
                        THEN excluded.last_off ELSE max(last_off, excluded.last_off) END;"""  # noqa: S608 - ours


ROLLUP_DDL = f"""
CREATE TABLE IF NOT EXISTS rollup_1m ({_COLUMNS}) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_1h ({_COLUMNS}) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS reading_rollup_1m AFTER INSERT ON reading BEGIN
{_fold("rollup_1m", MINUTE_MS)}
END;
-- per series, the hour before which rollup_1h holds all its hours (none: it folds them all)
CREATE TABLE IF NOT EXISTS rollup_1h_horizon (
    series INTEGER PRIMARY KEY, horizon INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS reading_rollup_1h AFTER INSERT ON reading
WHEN NEW.ts < coalesce(
    (SELECT horizon FROM rollup_1h_horizon WHERE series = NEW.series), 9223372036854775807)
BEGIN
{_fold("rollup_1h", HOUR_MS)}
END;
"""  # noqa: S608 - ours

# The 1-h rows of the series :lo..:hi whose horizon is before :z, from their 1-min rows from
# their horizon to :z: the same counts, sum, min, max and last as folding their readings one by
# one (the sum up to float rounding: added in another order). Their horizons move on after.
_HOUR_OF = f"bucket - (((bucket % {HOUR_MS}) + {HOUR_MS}) % {HOUR_MS})"
ROLL_SQL = f"""
INSERT OR REPLACE INTO rollup_1h (series, bucket, count, other, sum, min, max, last, last_off)
SELECT g.series, g.h, g.c, g.o, g.s,
       CASE WHEN g.c > 1 THEN g.mn END,
       CASE WHEN g.c > 1 THEN g.mx END,
       CASE WHEN g.c > 1 THEN (
           SELECT coalesce(m.last, m.sum) FROM rollup_1m m
           WHERE m.series = g.series
             AND m.bucket = g.lt - (((g.lt % {MINUTE_MS}) + {MINUTE_MS}) % {MINUTE_MS})) END,
       g.lt - g.h
FROM (SELECT r.series AS series, {_HOUR_OF} AS h, sum(count) AS c, sum(other) AS o,
             sum(sum) AS s,
             min(CASE WHEN count > 0 THEN coalesce(min, sum) END) AS mn,
             max(CASE WHEN count > 0 THEN coalesce(max, sum) END) AS mx,
             max(CASE WHEN count > 0 THEN bucket + last_off END) AS lt
      FROM rollup_1h_horizon d CROSS JOIN rollup_1m r ON r.series = d.series  -- series by series
      WHERE d.series BETWEEN :lo AND :hi AND d.horizon < :z
        AND r.bucket >= d.horizon AND r.bucket < :z
      GROUP BY r.series, h) g"""  # noqa: S608 - ours
ROLLED_SQL = (
    "UPDATE rollup_1h_horizon SET horizon = :z WHERE series BETWEEN :lo AND :hi AND horizon < :z"
)


@dataclass(frozen=True, slots=True)
class Rollup:
    table: str
    grain_ms: int


ROLLUP_1M = Rollup("rollup_1m", MINUTE_MS)
ROLLUP_1H = Rollup("rollup_1h", HOUR_MS)


def choose_rollup(step_ms: int) -> Rollup | None:
    """The coarsest rollup whose buckets tile the step, or None (read raw rows)."""
    for rollup in (ROLLUP_1H, ROLLUP_1M):
        if step_ms % rollup.grain_ms == 0:
            return rollup
    return None


# Per step: (start, readings, good readings, x, t). x is the min, max, sum (mean) or last
# value; t is the time of that last value (LAST only). With exactly one max() in a query,
# SQLite takes the bare column (the last value) from the row holding the max.
_Part = tuple[int, int, int, float | None, int | None]
_PART_COLS = "b, n, c, x, t"

_RAW_X = {
    Agg.MIN: "min(CASE WHEN q = 0 THEN value END) AS x, NULL AS t",
    Agg.MAX: "max(CASE WHEN q = 0 THEN value END) AS x, NULL AS t",
    Agg.MEAN: "sum(CASE WHEN q = 0 THEN value END) AS x, NULL AS t",
    Agg.LAST: "CASE WHEN q = 0 THEN value END AS x, max(CASE WHEN q = 0 THEN ts END) AS t",
}
_ROLLUP_X = {
    Agg.MIN: "min(coalesce(min, sum)) AS x, NULL AS t",
    Agg.MAX: "max(coalesce(max, sum)) AS x, NULL AS t",
    Agg.MEAN: "sum(sum) AS x, NULL AS t",
    Agg.LAST: "coalesce(last, sum) AS x, max(CASE WHEN count > 0 THEN bucket + last_off END) AS t",
}
# One rollup row a step: its value straight from the row (NULL when it has no good reading).
_ROW_VALUE = {
    Agg.MIN: "coalesce(min, sum)",
    Agg.MAX: "coalesce(max, sum)",
    Agg.MEAN: "sum / count",
    Agg.LAST: "coalesce(last, sum)",
}


def _step_of(col: str) -> str:
    return f"{col} - ((({col} % :step) + :step) % :step)"


def _raw_sql(agg: Agg) -> str:
    return f"""SELECT {_step_of("ts")} AS b, count(*) AS n, sum(q = 0) AS c, {_RAW_X[agg]}
               FROM reading WHERE series = :sid AND ts >= :a AND ts < :z
               GROUP BY b"""  # noqa: S608 - our names


def _rollup_sql(r: Rollup, agg: Agg) -> str:
    return f"""SELECT {_step_of("bucket")} AS b, sum(count + other) AS n, sum(count) AS c,
                      {_ROLLUP_X[agg]}
               FROM {r.table} WHERE series = :sid AND bucket >= :a AND bucket < :z
               GROUP BY b"""  # noqa: S608 - our names


def _final(db: sqlite3.Connection, parts_sql: str, agg: Agg, args: dict[str, int]) -> list[Bucket]:
    """Buckets with the value computed by SQLite (no Python per step but the Bucket)."""
    value = "x / c" if agg is Agg.MEAN else "x"
    sql = f"SELECT b, {value}, c FROM ({parts_sql}) ORDER BY b"  # noqa: S608 - ours
    return list(starmap(Bucket, db.execute(sql, args)))


def _rows(db: sqlite3.Connection, r: Rollup, agg: Agg, args: dict[str, int]) -> list[Bucket]:
    """A step of one bucket: rollup rows as they are, in primary-key order (no grouping)."""
    sql = f"""SELECT bucket, {_ROW_VALUE[agg]}, count FROM {r.table}
              WHERE series = :sid AND bucket >= :a AND bucket < :z
              ORDER BY bucket"""  # noqa: S608 - our names
    return list(starmap(Bucket, db.execute(sql, args)))


def _combine(a: _Part, b: _Part, agg: Agg) -> _Part:
    n, good = a[1] + b[1], a[2] + b[2]
    if a[3] is None or b[3] is None:
        x, t = (a[3], a[4]) if b[3] is None else (b[3], b[4])
    elif agg is Agg.MIN:
        x, t = min(a[3], b[3]), None
    elif agg is Agg.MAX:
        x, t = max(a[3], b[3]), None
    elif agg is Agg.MEAN:
        x, t = a[3] + b[3], None
    else:
        x, t = (a[3], a[4]) if (a[4] or 0) > (b[4] or 0) else (b[3], b[4])  # last wins
    return (a[0], n, good, x, t)


def _merged(
    db: sqlite3.Connection, pieces: list[tuple[str, dict[str, int]]], agg: Agg
) -> list[Bucket]:
    """Steps that raw rows and rollup rows share (a window cutting a bucket), combined."""
    steps: dict[int, _Part] = {}
    for sql, args in pieces:
        for p in db.execute(f"SELECT {_PART_COLS} FROM ({sql})", args):  # noqa: S608 - ours
            seen = steps.get(p[0])
            steps[p[0]] = p if seen is None else _combine(seen, p, agg)
    out = []
    for b, _, c, x, _ in (steps[k] for k in sorted(steps)):
        value = None if x is None else x / c if agg is Agg.MEAN else x
        out.append(Bucket(b, value, c))
    return out


def range_query(
    db: sqlite3.Connection,
    sid: int,
    *,
    start: int,
    end: int,
    step: int,
    agg: Agg,
    use_rollups: bool = True,
) -> list[Bucket]:
    """Good readings of series ``sid`` in [start, end) per step (see the module doc)."""
    rollup = choose_rollup(step) if use_rollups else None
    g = rollup.grain_ms if rollup is not None else 1
    inner_a, inner_z = -(-start // g) * g, end // g * g  # whole buckets inside the window
    args = {"sid": sid, "a": start, "z": end, "step": step}
    if rollup is None or inner_a >= inner_z:
        return _final(db, _raw_sql(agg), agg, args)
    rolled_z = inner_z  # whole buckets of the rollup chosen; those after from rollup_1m
    if rollup is ROLLUP_1H:
        row = db.execute(
            "SELECT horizon FROM rollup_1h_horizon WHERE series = ?", (sid,)
        ).fetchone()
        if row is not None:
            rolled_z = max(inner_a, min(inner_z, row[0]))
    if inner_a == start and inner_z == end and rolled_z == inner_z:
        if step == g:
            return _rows(db, rollup, agg, args)
        return _final(db, _rollup_sql(rollup, agg), agg, args)
    pieces = []
    if inner_a < rolled_z:
        pieces.append((_rollup_sql(rollup, agg), {**args, "a": inner_a, "z": rolled_z}))
    if rolled_z < inner_z:  # hours not in rollup_1h yet
        pieces.append((_rollup_sql(ROLLUP_1M, agg), {**args, "a": rolled_z, "z": inner_z}))
    for a, z in ((start, inner_a), (inner_z, end)):
        if a < z:
            pieces.append((_raw_sql(agg), {**args, "a": a, "z": z}))
    return _merged(db, pieces, agg)
