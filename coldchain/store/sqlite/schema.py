"""The SQLite store's tables and connections (see docs/store.md for why each is so).

* ``series`` interns site/gateway/device/point to a small integer id (1-2 bytes a row).
* ``reading`` holds every reading, keyed (series, ts) in a WITHOUT ROWID table: the primary
  key *is* the clustered index, so a series' readings lie together in time order and a range
  read, a latest read and the duplicate check are one B-tree seek each.
* ``rollup_1m`` / ``rollup_1h`` (see :mod:`coldchain.store.sqlite.rollup`) are kept up to date
  by triggers on ``reading``, so they change exactly when a row is newly inserted (the 1-h
  rollup's recent hours are added up by the writer an hour late).
* ``meta`` holds the prune floor: readings older than it are not stored any more.
* ``retime`` holds the clock corrections made at the centre (:meth:`Writer.retime`).
* ``seal``, ``seal_series``, ``seal_late``, ``seal_moved`` seal the readings hour by hour
  (:mod:`coldchain.store.sqlite.seal`); append-only by triggers.

Connections: WAL, and ``synchronous=FULL`` because the hub acknowledges a batch as soon as
``write`` returns — with NORMAL, a power cut may roll back the last commits in the WAL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from coldchain.reading import Quality
from coldchain.store.base import StoreError
from coldchain.store.sqlite.rollup import ROLLUP_DDL
from coldchain.store.sqlite.seal import SEAL_DDL, TRIGGER_DDL

SCHEMA_VERSION = 3  # 2: the seal tables; 3: rollup_1h made an hour late (two triggers)

Q_CODE = {Quality.GOOD: 0, Quality.BAD: 1, Quality.UNCERTAIN: 2}
Q_BACK = {v: k for k, v in Q_CODE.items()}

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, gateway TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL,
    UNIQUE (site, gateway, device, point));
-- q: 0 good, 1 bad, 2 uncertain (0 and 1 cost no bytes in a record); cal: the calibration
-- offset (NULL when none was recorded); extra: any other meta, JSON (NULL almost always).
CREATE TABLE IF NOT EXISTS reading (
    series INTEGER NOT NULL, ts INTEGER NOT NULL,
    value REAL, q INTEGER NOT NULL, reason TEXT, cal REAL, extra TEXT,
    PRIMARY KEY (series, ts)) WITHOUT ROWID;
-- clock corrections (Writer.retime): a gateway's readings marked 'clock unsynchronised'
-- stamped in [start_ms, end_ms) belong shift_ms later; kept so that such readings arriving
-- afterwards (a backlog, a resend) are corrected on arrival too
CREATE TABLE IF NOT EXISTS retime (
    id INTEGER PRIMARY KEY, gateway TEXT NOT NULL,
    start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, shift_ms INTEGER NOT NULL);
"""

# A store from before version 3 folded every reading into rollup_1h at once: its single
# trigger gives way to the two of ROLLUP_DDL; its series have no horizon (every reading folds)
# until the writer gives each one past its last 1-h row.
_UPGRADE_TO_3 = "DROP TRIGGER IF EXISTS reading_rollup;"

# 64 MiB of page cache per connection: the pages a write touches (the newest page of every
# live series in three tables) stay in memory instead of being re-read each commit.
_CACHE_KIB = 64 * 1024
# Checkpoint the WAL every ~40 MB instead of every 4 MB: a page rewritten by many commits
# is copied back to the database once per checkpoint, so fewer checkpoints write less.
_WAL_AUTOCHECKPOINT_PAGES = 10_000


def _uri(path: Path, mode: str) -> str:
    return f"{path.resolve().as_uri()}?mode={mode}"


def connect_writer(path: Path) -> sqlite3.Connection:
    """The one read-write connection: creates or upgrades the schema."""
    try:
        db = sqlite3.connect(
            _uri(path, "rwc"), uri=True, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA secure_delete=OFF")  # prune need not zero what it frees
        db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        db.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
        db.execute("PRAGMA journal_size_limit=67108864")  # truncate a grown WAL to 64 MB
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise StoreError(
                f"sqlite store {path}: schema version {version} is newer than this "
                f"coldchain's ({SCHEMA_VERSION}); upgrade coldchain"
            )
        upgrade = _UPGRADE_TO_3 if 0 < version < 3 else ""
        db.executescript(
            f"BEGIN IMMEDIATE; {TABLES} {upgrade} {ROLLUP_DDL} {SEAL_DDL} {TRIGGER_DDL} "
            f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
        )
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite store {path}: cannot open: {exc}") from exc
    return db


def connect_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection (WAL lets it read while the writer commits)."""
    try:
        db = sqlite3.connect(
            _uri(path, "ro"), uri=True, isolation_level=None, check_same_thread=False
        )
        db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        db.execute("PRAGMA query_only=ON")
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite store {path}: cannot open for reading: {exc}") from exc
    return db
