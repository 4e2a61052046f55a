"""Rows queued in a transaction of the hub database (:meth:`TransactionalDb.append`, as the
alert side's audit records are) are written together just before it commits, in order, and
not at all when it rolls back; on the writer thread a failure to write them rolls the whole
transaction back. The audit log's encoding reads back as it was recorded."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from alerts.transactions import TransactionalDb
from coldchain.statedb import Schema, StateConn, StateTarget
from hub.audit import AuditLog

SCHEMA = Schema(
    "test",
    (
        """
CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);
""",
    ),
)


class Log:
    """A ``write`` for :meth:`TransactionalDb.append` that counts its calls."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []  # rows per call
        self.fail = fail

    def write(self, db: StateConn, rows: list[Any]) -> None:
        self.calls.append(len(rows))
        if self.fail:
            raise OSError("disk I/O error")
        db.executemany("INSERT INTO log (line) VALUES (?)", rows)


def committed(target: StateTarget, table: str) -> list[str]:
    """What another connection sees: only what is committed."""
    other = StateConn(target)
    try:
        col = "name" if table == "item" else "line"
        return [v for (v,) in other.execute(f"SELECT {col} FROM {table} ORDER BY id")]
    finally:
        other.close()


def test_queued_rows_are_written_in_one_call_just_before_the_commit(state: StateTarget) -> None:
    db = TransactionalDb(state, SCHEMA)
    log = Log()
    with db.transaction():
        db._write("INSERT INTO item (name) VALUES (?)", ("a",))
        db.append(log.write, ("first",))
        with db.transaction():  # a nested block joins the outer one
            db.append(log.write, ("second",))
        db.append(log.write, ("third",))
        assert log.calls == []  # nothing written yet
        assert committed(state, "log") == []
    assert log.calls == [3]
    assert committed(state, "log") == ["first", "second", "third"]
    assert committed(state, "item") == ["a"]
    assert db.commits == 1
    db.close()


def test_queued_rows_roll_back_with_their_transaction(state: StateTarget) -> None:
    db = TransactionalDb(state, SCHEMA)
    log = Log()

    def fail_midway() -> None:
        with db.transaction():
            db._write("INSERT INTO item (name) VALUES (?)", ("a",))
            db.append(log.write, ("lost",))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    assert log.calls == []
    with db.transaction():  # the next transaction does not carry them
        db.append(log.write, ("kept",))
    assert committed(state, "log") == ["kept"]
    assert committed(state, "item") == []
    db.close()


def test_a_row_queued_outside_a_transaction_commits_at_once(state: StateTarget) -> None:
    db = TransactionalDb(state, SCHEMA)
    log = Log()
    db.append(log.write, ("alone",))
    assert committed(state, "log") == ["alone"]
    assert db.commits == 1
    db.close()


def test_a_failed_write_rolls_the_transaction_back_and_drops_its_work(state: StateTarget) -> None:
    db = TransactionalDb(state, SCHEMA)
    log, after = Log(fail=True), list[str]()

    def write() -> None:
        with db.transaction():
            db._write("INSERT INTO item (name) VALUES (?)", ("a",))
            db.append(log.write, ("x",))
            db.after_commit(lambda: after.append("paged"))

    with pytest.raises(OSError, match="disk I/O error"):
        write()
    assert log.calls == [1]
    assert committed(state, "item") == []
    assert after == []
    assert db.commits == 0
    db.close()


async def test_on_the_writer_thread_the_rows_are_written_with_the_commit(
    state: StateTarget, caplog: pytest.LogCaptureFixture
) -> None:
    db = TransactionalDb(state, SCHEMA, writer_thread=True)
    log, after = Log(), list[str]()
    with db.transaction(background=True):
        db._write("INSERT INTO item (name) VALUES (?)", ("a",))
        db.append(log.write, ("one",))
        db.append(log.write, ("two",))
        db.after_commit(lambda: after.append("paged"))
    await db.settled()
    assert log.calls == [2]
    assert committed(state, "log") == ["one", "two"]
    assert after == ["paged"]

    failing = Log(fail=True)  # a write that fails there: logged, nothing of it stays
    with caplog.at_level(logging.ERROR, logger="alerts.transactions"):
        with db.transaction(background=True):
            db._write("INSERT INTO item (name) VALUES (?)", ("b",))
            db.append(failing.write, ("x",))
            db.after_commit(lambda: after.append("paged again"))
        await db.settled()
        await asyncio.sleep(0)
    assert failing.calls == [1]
    assert committed(state, "item") == ["a"]
    assert after == ["paged"]
    assert "rolled back" in caplog.text
    with db.transaction():  # the connection is usable afterwards
        db._write("INSERT INTO item (name) VALUES (?)", ("c",))
    assert committed(state, "item") == ["a", "c"]
    db.close()


def test_audit_records_read_back_as_recorded(state: StateTarget) -> None:
    """Written singly or queued in a transaction, a record's values come back equal, text
    in Chinese included, and stored as UTF-8 rather than escaped."""
    path = state
    log = AuditLog(path)
    after = {"key": "温度过高/alarm/s1", "value": 6.5, "limit": 4, "ok": True, "none": None}
    log.record(actor="张工", action="alert.ack", obj="alert/1", after=after, comment="已处理")
    db = TransactionalDb(path, Schema("none", ()))
    with db.transaction():
        db.append(log.insert_rows, log.row(actor="hub", action="alert.firing", obj="alert/2"))
        row = log.row(actor="hub", action="alert.resolved", obj="alert/2", before=[1, 2.5])
        db.append(log.insert_rows, row)
    records, total = log.page(10, 0)
    assert total == 3
    resolved, firing, ack = records
    assert (ack.actor, ack.after, ack.comment, ack.before) == ("张工", after, "已处理", None)
    assert (firing.action, firing.after) == ("alert.firing", None)
    assert resolved.before == [1, 2.5]
    raw = StateConn(path).execute("SELECT after FROM audit WHERE id = 1").fetchone()[0]
    assert "温度过高" in raw
    db.close()
    log.close()
