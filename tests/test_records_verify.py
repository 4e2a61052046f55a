"""The audit trail is tamper-evident: each record linked to the one before (``hub/audit.py``),
and ``coldchain records verify`` recomputes the chain and names what was changed, removed or
slipped in, by someone holding the file who drops the append-only triggers to do it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from coldchain.statedb import StateConn
from hub.audit import AuditLog
from hub.records import verify_audit

DROP = """
DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;
DROP TRIGGER audit_chain_no_update; DROP TRIGGER audit_chain_no_delete;
"""


def trail(tmp_path: Path, n: int = 6) -> Path:
    """A hub database with ``n`` records, written as the hub writes them: on their own and
    inside another connection's write transaction (as the alert store does)."""
    db = tmp_path / "hub.db"
    log = AuditLog(db)
    other = sqlite3.connect(db, isolation_level=None)
    for i in range(n):
        if i % 2:
            log.record(actor="li.wei", action="alert.ack", obj=f"alert-{i}", comment="seen, 冷库")
        else:
            other.execute("BEGIN IMMEDIATE")
            row = log.row(actor="hub", action="alert.open", obj=f"alert-{i}", after={"v": i})
            log.insert_rows(StateConn.adopt(other), [row])
            other.execute("COMMIT")
    other.close()
    log.close()
    return db


def findings(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [str(f) for f in verify_audit(conn).findings]
    finally:
        conn.close()


def tamper(db: Path, sql: str) -> None:
    """What someone with the file does: drop the triggers, change things, put them back."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(DROP + sql)
    conn.close()
    AuditLog(db).close()  # the hub opens it again: the triggers are back


def test_an_untouched_trail_verifies_clean_and_its_head_is_the_last_link(tmp_path: Path) -> None:
    db = trail(tmp_path)
    conn = sqlite3.connect(db)
    check = verify_audit(conn)
    assert (check.records, check.findings) == (6, [])
    log = AuditLog(db)
    assert check.head == log.head()
    assert check.head is not None
    assert check.head[0] == 6
    log.close()
    conn.close()


def test_an_edited_record_is_named(tmp_path: Path) -> None:
    db = trail(tmp_path)
    tamper(db, "UPDATE audit SET comment = 'never happened' WHERE id = 4;")
    assert findings(db) == ["audit record 4: changed after it was written"]


def test_a_record_removed_with_or_without_its_link_is_named(tmp_path: Path) -> None:
    db = trail(tmp_path)
    tamper(db, "DELETE FROM audit WHERE id = 2;")
    assert findings(db) == ["audit record 2: removed (its link is still there)"]
    tamper(db, "DELETE FROM audit WHERE id IN (4, 5); DELETE FROM audit_chain WHERE id IN (4, 5);")
    assert findings(db) == [
        "audit record 2: removed (its link is still there)",
        "audit records 4-5: removed with their links: the chain breaks there",
    ]


def test_a_record_slipped_in_and_a_missing_trigger_are_named(tmp_path: Path) -> None:
    db = trail(tmp_path)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(
        "INSERT INTO audit (ts, actor, action, object) VALUES (0, 'li.wei', 'alert.ack', 'x')"
    )
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.close()
    assert findings(db) == [
        "trigger audit_no_delete: missing: the audit trail can be edited or deleted",
        "audit record 7: has no link: written around the hub",
    ]


def test_a_trail_from_before_the_chain_is_linked_once_and_says_so(tmp_path: Path) -> None:
    from hub.audit import SCHEMA

    db = tmp_path / "hub.db"
    old = sqlite3.connect(db, isolation_level=None)
    old.executescript(SCHEMA.ddl(0, "sqlite"))  # the trail as earlier hubs kept it: no chain
    for i in range(3):
        old.execute(
            "INSERT INTO audit (ts, actor, action, object) VALUES (?, 'hub', 'config.load', ?)",
            (i, f"site-{i}"),
        )
    old.close()
    assert findings(db) == ["audit trail: not chained (the hub has not opened it since)"]
    log = AuditLog(db)
    start = log.last("audit.chain.start", "audit")
    assert start is not None
    assert start.after == {"records_linked": 3}
    log.record(actor="hub", action="config.load", obj="site-3")
    log.close()
    AuditLog(db).close()  # opened again: nothing linked twice
    conn = sqlite3.connect(db)
    check = verify_audit(conn)
    conn.close()
    assert (check.records, check.findings) == (5, [])


def test_the_command_says_clean_or_names_what_differs(tmp_path: Path) -> None:
    db = trail(tmp_path)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coldchain.cli", "records", "verify", str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )

    ok = verify()
    assert ok.returncode == 0, ok.stderr
    assert "audit trail: 6 records, verifies clean; head: record 6, link " in ok.stdout
    tamper(db, "UPDATE audit SET actor = 'someone' WHERE id = 1;")
    bad = verify()
    assert bad.returncode == 1
    assert "differs: audit record 1: changed after it was written" in bad.stdout
    assert "1 finding;" in bad.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "coldchain.cli", "records", "verify", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "no such file: give the hub's data dir" in missing.stderr


def test_the_chain_still_refuses_edits_through_the_triggers(tmp_path: Path) -> None:
    db = trail(tmp_path, 2)
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="cannot be edited"):
        conn.execute("UPDATE audit_chain SET link = x'00' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="cannot be deleted"):
        conn.execute("DELETE FROM audit_chain")
    conn.close()


def test_a_rewritten_trail_is_caught_by_the_printed_head(tmp_path: Path) -> None:
    """Whoever knows the scheme can edit a record and compute every link again: the chain then
    holds, but the head printed before (on a daily log) no longer matches."""
    from hub.audit import COLUMNS, GENESIS, next_link

    db = trail(tmp_path)
    log = AuditLog(db)
    printed = log.head()
    log.close()
    assert printed is not None
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(DROP + "UPDATE audit SET comment = 'all fine' WHERE id = 2;")
    link = GENESIS
    for row in conn.execute(f"SELECT {COLUMNS} FROM audit ORDER BY id").fetchall():
        link = next_link(link, tuple(row))
        conn.execute("UPDATE audit_chain SET link = ? WHERE id = ?", (link, row[0]))
    conn.close()
    AuditLog(db).close()
    assert findings(db) == []  # the chain alone holds
    conn = sqlite3.connect(db)
    check = verify_audit(conn, {printed[0]: printed[1]})
    conn.close()
    assert [str(f) for f in check.findings] == [
        f"audit record {printed[0]}: its link is not the printed one: the trail up to it was "
        "rewritten"
    ]
    command = [sys.executable, "-m", "coldchain.cli", "records", "verify", str(tmp_path)]
    cli = subprocess.run(
        [*command, "--anchor", f"{printed[0]}:{printed[1]}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 1
    assert "its link is not the printed one" in cli.stdout
