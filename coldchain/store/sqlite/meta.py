"""Small helpers on a SQLite store's connection: the integers kept in its ``meta`` table (the
prune floor, the sealing marks) and a write transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


def read_meta(db: sqlite3.Connection, key: str) -> int | None:
    """An integer kept in ``meta`` (None: not set)."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else int(row[0])


def write_meta(db: sqlite3.Connection, key: str, value: int) -> None:
    db.execute(
        "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction on the writer's connection (autocommit otherwise)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # some errors (disk full, I/O) have rolled back already
            db.execute("ROLLBACK")
        raise
