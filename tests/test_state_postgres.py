"""The hub's state on PostgreSQL from the operator's side: ``hub.state`` in the site config,
the password kept out of it, and the commands that work on the state (``coldchain users``,
``coldchain records verify``) pointed at the database with ``--state``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from coldchain.cli import main
from coldchain.config.site import HubSettings, PostgresStateSettings
from coldchain.statedb import PostgresTarget, StateConn, StateError, state_target
from hub.audit import AuditLog
from hub.auth import Users
from tests.services import free_port
from tests.test_broker_config import coldchain


def test_the_state_url_is_checked_and_holds_no_password(tmp_path: Path) -> None:
    ok = HubSettings.model_validate(
        {"state": {"type": "postgres", "url": "postgresql://coldchain@db.lan:5433/cc"}}
    )
    assert isinstance(ok.state, PostgresStateSettings)
    with pytest.raises(ValidationError, match="holds a password: put it in password_file"):
        HubSettings.model_validate(
            {"state": {"type": "postgres", "url": "postgresql://cc:secret@db.lan/cc"}}
        )
    for bad in ("http://db.lan/cc", "postgresql://db.lan", "postgresql://db.lan/a/b", "db.lan"):
        with pytest.raises(ValidationError, match="is not a postgresql://"):
            HubSettings.model_validate({"state": {"type": "postgres", "url": bad}})
    assert state_target(HubSettings().state, tmp_path) == tmp_path / "hub.db"
    several = "postgresql://cc@centre-a:5432,centre-b/cc?target_session_attrs=read-write"
    settings = HubSettings.model_validate({"state": {"type": "postgres", "url": several}})
    assert isinstance(settings.state, PostgresStateSettings)
    for bad in ("postgresql://a:99999/cc", "postgresql://a,,b/cc", "postgresql://a:/cc"):
        with pytest.raises(ValidationError, match="is not a postgresql://"):
            HubSettings.model_validate({"state": {"type": "postgres", "url": bad}})


def test_with_several_hosts_the_state_is_wherever_one_answers(postgres: PostgresTarget) -> None:
    """A primary and its standby as hosts of one URL: libpq tries each in turn (a hub's
    state after the database's machine failed over)."""
    user, _, rest = postgres.conninfo.removeprefix("postgresql://").partition("@")
    dead = f"127.0.0.1:{free_port()}"  # the old primary, down
    url = f"postgresql://{user}@{dead},{rest}"
    if "?" not in url:
        url += "?target_session_attrs=read-write"
    db = StateConn(PostgresTarget(url, postgres.password))
    try:
        assert db.execute("SELECT 1").fetchone()[0] == 1
    finally:
        db.close()


def test_the_password_comes_from_its_file(tmp_path: Path) -> None:
    (tmp_path / "pg-password").write_text("s3cret\n", encoding="utf-8")
    settings = PostgresStateSettings(
        type="postgres", url="postgresql://cc@db.lan/cc", password_file="pg-password"
    )
    target = state_target(settings, tmp_path)
    assert target == PostgresTarget("postgresql://cc@db.lan/cc", "s3cret")
    assert "s3cret" not in repr(target)
    missing = settings.model_copy(update={"password_file": "nope"})
    with pytest.raises(StateError, match=r"hub.state.password_file .*nope: No such file"):
        state_target(missing, tmp_path)


def _verify(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    return coldchain("records", "verify", str(tmp_path), "--state", url)


def test_records_verify_on_postgres_names_a_record_changed_around_the_triggers(
    tmp_path: Path, postgres: PostgresTarget
) -> None:
    log = AuditLog(postgres)
    for i in range(4):
        log.record(actor="li.wei", action="alert.ack", obj=f"alert/{i}", comment="seen, 冷库")
    log.close()
    ok = _verify(tmp_path, postgres.conninfo)
    assert ok.returncode == 0, ok.stderr
    assert "audit trail: 4 records, verifies clean" in ok.stdout
    # someone with the database's owner rights: triggers off, a record changed, one dropped
    db = StateConn(postgres)
    db.execute("ALTER TABLE audit DISABLE TRIGGER USER")
    db.execute("UPDATE audit SET actor = 'someone' WHERE id = 2")
    db.execute("DROP TRIGGER audit_no_truncate ON audit")
    db.close()
    bad = _verify(tmp_path, postgres.conninfo)
    assert bad.returncode == 1
    assert "differs: audit record 2: changed after it was written" in bad.stdout
    for trigger in ("audit_no_truncate", "audit_no_update", "audit_no_delete"):  # gone, or off
        assert f"differs: trigger {trigger}: missing" in bad.stdout
    unreachable = _verify(tmp_path, "postgresql://cc@127.0.0.1:1/cc")
    assert unreachable.returncode == 2
    assert "cannot connect to the hub's state database" in unreachable.stderr


def test_users_on_postgres(
    tmp_path: Path, postgres: PostgresTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("a-long-password\n", encoding="utf-8")
    url = postgres.conninfo
    add = ["users", str(tmp_path / "unused"), "--state", url, "add", "wang-li", "--role"]
    assert main([*add, "manager", "--password-file", str(secret)]) == 0
    assert f"added user wang-li (manager) to {url}" in capsys.readouterr().out
    users = Users(postgres)
    assert users.check("wang-li", "a-long-password") is not None
    users.close()
    assert not (tmp_path / "unused").exists()  # nothing written beside
    assert main(["users", str(tmp_path), "--state", "mysql://x/y", "list"]) == 1
    assert "is not a postgresql://" in capsys.readouterr().err
