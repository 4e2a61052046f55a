"""Backups of a hub whose state is on PostgreSQL (hub/backup_pg.py): pg_dump into the backup
with its digest, the restore test in a scratch database on the same server with the audit
chain verified there, and a restore into an empty database that answers every query as the
original did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alerts.store import AlertStore
from coldchain.statedb import PostgresTarget, StateConn
from gateway.registry import Registry
from hub import backup, backup_pg
from hub.audit import AuditLog
from hub.auth import Users
from tests.postgres import PostgresCluster
from tests.test_broker_config import coldchain

TABLES = (
    "alerts",
    "notifications",
    "audit",
    "audit_chain",
    "users",
    "sessions",
    "gateways",
    "schema_versions",
)


def fill(state: PostgresTarget) -> None:
    """A hub's state: audit records, an alert and its notification, a user and a session,
    a gateway."""
    log = AuditLog(state)
    for i in range(5):
        log.record(actor="wang-li", action="alert.ack", obj=f"alert-{i}", comment="冷库门已关")
    log.close()
    alerts = AlertStore(state)
    row = alerts.insert(
        key="hi/alarm/r1", rule="hi", kind="threshold", tier="alarm", severity="critical",
        policy=None, site="s", room="r1", gateway="gw", series="s/gw/p/t", quantity="t",
        unit="°C", direction="above", state="firing", since_ms=1, pending_ms=2, fired_ms=3,
        value=9.5, limit_value=8,
    )  # fmt: skip
    alerts.add_notification(
        alert_ids=[row.id], recipient="li", address="+8613800000000", kind="alarm", level=0,
        queued_ms=4, text="冷库 r1 9.5 °C",
    )  # fmt: skip
    alerts.close()
    users = Users(state)
    users.add("li.wei", "manager", "a-long-password")
    users.open_session("li.wei", now_ms=5, expires_ms=10**13)
    users.close()
    Registry(state, ["gw-1"], health_timeout_s=60).close()


def contents(state: PostgresTarget) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in order: what a query of the state can answer."""
    db = StateConn(state)
    try:
        return {
            t: [tuple(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()]
            for t in TABLES
        }
    finally:
        db.close()


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    d = tmp_path / "hub"
    d.mkdir()
    (d / "admin-password").write_text("not-a-real-secret\n")
    return d


@pytest.mark.slow
def test_backup_wipe_restore_gives_the_same_answers_on_postgres(
    hub_dir: Path, tmp_path: Path, postgres: PostgresTarget, postgres_cluster: PostgresCluster
) -> None:
    fill(postgres)
    before = contents(postgres)
    assert len(before["audit"]) == 5
    assert len(before["alerts"]) == 1
    made, digest = backup.make(hub_dir, tmp_path / "backups", state=postgres)
    manifest = json.loads((made / "manifest.json").read_text())
    kinds = {f["path"]: f["kind"] for f in manifest["files"]}
    assert kinds == {"admin-password": "file", backup_pg.FILE: "pgdump"}
    checked = backup.check(made, expect=digest, state=postgres)
    assert (checked.problems, checked.skipped) == ([], [])
    # without the server, the dump is not restore-tested, and that is said
    assert backup.check(made, expect=digest).skipped == [
        f"{backup_pg.FILE}: not restore-tested (give the PostgreSQL server: --state)"
    ]
    # the scratch databases are gone again
    admin = StateConn(PostgresTarget(postgres_cluster.url()))
    names = [r[0] for r in admin.execute("SELECT datname FROM pg_database").fetchall()]
    admin.close()
    assert not [n for n in names if n.startswith("coldchain_restore_test_")]

    wiped = postgres_cluster.database()  # the machine lost: a new, empty database
    result = backup.restore(made, tmp_path / "restored", expect=digest, state=wiped)
    assert (result.problems, result.skipped) == ([], [])
    assert contents(wiped) == before
    assert (tmp_path / "restored" / "admin-password").is_file()
    assert not (tmp_path / "restored" / backup_pg.FILE).exists()
    users = Users(wiped)  # the restored state is the hub's: a user logs in
    assert users.check("li.wei", "a-long-password") is not None
    users.close()
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.restore(made, tmp_path / "restored", state=wiped)
    again = backup.restore(made, tmp_path / "other", state=wiped)  # the database is not empty
    (problem,) = again.problems
    assert problem.startswith(f"{backup_pg.FILE}: {wiped.conninfo}: not empty (")
    assert problem.endswith(" tables): restore into an empty database")
    assert not (tmp_path / "other").exists()


def test_a_moved_byte_in_the_dump_is_named(
    hub_dir: Path, tmp_path: Path, postgres: PostgresTarget
) -> None:
    fill(postgres)
    made, digest = backup.make(hub_dir, tmp_path / "backups", state=postgres)
    dumped = made / backup_pg.FILE
    data = bytearray(dumped.read_bytes())
    data[len(data) // 2] ^= 0x01
    dumped.write_bytes(bytes(data))
    checked = backup.check(made, expect=digest, state=postgres)
    assert checked.problems == [
        f"{backup_pg.FILE}: its bytes differ from the manifest's digest: damaged"
    ]


def test_the_restore_test_runs_the_audit_chain_on_the_restored_state(
    hub_dir: Path, tmp_path: Path, postgres: PostgresTarget
) -> None:
    fill(postgres)
    db = StateConn(postgres)  # changed around the hub before the backup
    db.execute("ALTER TABLE audit DISABLE TRIGGER audit_no_update")
    db.execute("UPDATE audit SET comment = 'nothing happened' WHERE id = 3")
    db.execute("ALTER TABLE audit ENABLE TRIGGER audit_no_update")
    db.close()
    made, digest = backup.make(hub_dir, tmp_path / "backups", state=postgres)
    checked = backup.check(made, expect=digest, state=postgres)
    assert checked.problems == [f"{backup_pg.FILE}: audit record 3: changed after it was written"]


def test_the_commands_take_the_state(
    hub_dir: Path, tmp_path: Path, postgres: PostgresTarget, postgres_cluster: PostgresCluster
) -> None:
    fill(postgres)
    run = coldchain
    made = run("backup", str(hub_dir), "--to", str(tmp_path / "b"), "--state", postgres.conninfo)
    assert made.returncode == 0, made.stderr
    assert "restore test: ok, 2 files" in made.stdout
    where = next((tmp_path / "b").iterdir())
    wiped = postgres_cluster.database()
    restored = run("restore", str(where), "--into", str(tmp_path / "r"), "--state", wiped.conninfo)
    assert restored.returncode == 0, restored.stderr
    assert contents(wiped) == contents(postgres)
    bad = run("backup", str(hub_dir), "--to", str(tmp_path / "c"), "--state", "http://x/y")
    assert bad.returncode == 2
    assert "--state: 'http://x/y' is not a postgresql://" in bad.stderr
