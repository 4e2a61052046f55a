"""``coldchain users``: add, list and remove the hub's users, set a password, log a user out
everywhere; every subcommand's help works; each action says what it did; bad input says
what is wrong."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from coldchain.access import ROLES
from coldchain.cli import main
from hub import users_cli
from hub.auth import Users


def test_users_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "pw"
    secret.write_text("a-long-password\n", encoding="utf-8")
    data = str(tmp_path)
    assert (
        main(["users", data, "add", "wang-li", "--role", "manager", "--password-file", str(secret)])
        == 0
    )
    assert main(["users", data, "list"]) == 0
    assert "wang-li\tmanager\t0" in capsys.readouterr().out
    users = Users(tmp_path / "hub.db")
    try:
        user = users.check("wang-li", "a-long-password")
        assert user is not None
        assert user.role == "manager"
    finally:
        users.close()
    assert main(["users", data, "remove", "wang-li"]) == 0
    assert capsys.readouterr().out == "removed user wang-li (0 sessions ended)\n"
    assert main(["users", data, "remove", "wang-li"]) == 1
    assert "error: no user 'wang-li'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["users", "--help"], "Manage the hub's users"),
        (["users", "-h"], "operator (live board, rooms, acknowledge"),
        (["users", "DIR", "add", "--help"], "--generate"),
        (["users", "DIR", "list", "--help"], "name, role and live sessions"),
        (["users", "DIR", "remove", "--help"], "their sessions end at once"),
        (["users", "DIR", "password", "--help"], "every session of the user ends"),
        (["users", "DIR", "logout", "--help"], "End every session of a user"),
    ],
)
def test_coldchain_users_help_fails_with_unrecognized_arguments(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    captured = capsys.readouterr()
    assert "unrecognized arguments" not in captured.err
    assert says in " ".join(captured.out.split())


def test_users_add_prints_nothing_on_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path)
    assert main(["users", data, "add", "li", "--role", "operator", "--generate"]) == 0
    out = capsys.readouterr().out
    path = tmp_path / "li-password"
    assert out == (
        f"added user li (operator) to {tmp_path / 'hub.db'}; the password is in {path} "
        "(0600): hand it over, then delete the file\n"
    )
    assert path.stat().st_mode & 0o777 == 0o600
    users = Users(tmp_path / "hub.db")
    try:
        assert users.check("li", path.read_text().strip()) is not None
    finally:
        users.close()
    secret = tmp_path / "pw"
    secret.write_text("zhao-password\n", encoding="utf-8")
    assert (
        main(["users", data, "add", "zhao", "--role", "admin", "--password-file", str(secret)]) == 0
    )
    assert capsys.readouterr().out == f"added user zhao (admin) to {tmp_path / 'hub.db'}\n"


def test_users_password_and_logout_end_the_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path)
    users = Users(tmp_path / "hub.db")
    try:
        users.add("li", "operator", "li-password")
        now = time.time_ns() // 1_000_000
        for _ in range(2):
            users.open_session("li", now_ms=now, expires_ms=now + 3_600_000)
        assert main(["users", data, "list"]) == 0
        assert capsys.readouterr().out == "li\toperator\t2\n"
        assert main(["users", data, "logout", "li"]) == 0
        assert capsys.readouterr().out == "logged li out everywhere (2 sessions ended)\n"
        users.open_session("li", now_ms=now, expires_ms=now + 3_600_000)
        assert main(["users", data, "password", "li", "--generate"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("set the password of li (1 session ended); the password is in ")
        assert users.check("li", (tmp_path / "li-password").read_text().strip()) is not None
        assert users.check("li", "li-password") is None
    finally:
        users.close()


def test_users_refuses_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", str(tmp_path / "nowhere"), "list"]) == 1
    assert "nowhere is not a directory: give the hub's data dir" in capsys.readouterr().err
    short = tmp_path / "pw"
    short.write_text("short\n", encoding="utf-8")
    data = str(tmp_path)
    assert main(["users", data, "add", "li", "--role", "admin", "--password-file", str(short)]) == 1
    assert "password for li: use at least 8 characters" in capsys.readouterr().err
    assert main(["users", data, "password", "nobody", "--generate"]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err
    assert not (tmp_path / "nobody-password").exists()
    with pytest.raises(SystemExit):
        main(["users", data, "add", "li", "--role", "boss"])
    assert "invalid choice: 'boss'" in capsys.readouterr().err


def test_the_cli_knows_the_roles_of_the_hub() -> None:
    parser = argparse.ArgumentParser()
    users_cli.add_arguments(parser)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    role = next(a for a in sub.choices["add"]._actions if a.dest == "role")
    assert role.choices is not None
    assert list(role.choices) == [r.value for r in ROLES]  # what hub.auth.Users accepts


def test_users_add_generate_for_an_existing_user_deleted_its_password_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bug: ``add admin --generate`` for an existing admin unlinked and rewrote
    DATA_DIR/admin-password before the add failed, then the rollback unlinked it: the hub's
    bootstrap password was gone. An existing user is now refused before any file is
    touched."""
    data = str(tmp_path)
    assert main(["users", data, "add", "admin", "--role", "admin", "--generate"]) == 0
    capsys.readouterr()
    path = tmp_path / "admin-password"
    password = path.read_text(encoding="utf-8")
    for _ in range(2):
        assert main(["users", data, "add", "admin", "--role", "admin", "--generate"]) == 1
        assert capsys.readouterr().err == "error: user 'admin' exists already\n"
        assert path.read_text(encoding="utf-8") == password
    users = Users(tmp_path / "hub.db")
    try:
        assert users.check("admin", password.strip()) is not None
    finally:
        users.close()


def test_users_add_generate_with_a_path_as_name_unlinked_a_file_outside_the_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bug: NAME was joined into a path before it was checked, so ``add ../x/y
    --generate`` unlinked (and rewrote) ``../x/y-password``. The name is now checked first
    and nothing outside (or inside) DATA_DIR is touched."""
    data = tmp_path / "data"
    data.mkdir()
    victim = tmp_path / "x" / "y-password"
    victim.parent.mkdir()
    victim.write_text("keep me\n", encoding="utf-8")
    argv = ["users", str(data), "add", "../x/y", "--role", "operator", "--generate"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == "error: user name '../x/y': use letters, digits, '-', '_' or '.'\n"
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in data.iterdir()) == ["hub.db"]


def test_users_generate_overwrote_a_password_file_not_yet_handed_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bug: --generate unlinked DATA_DIR/NAME-password before creating it anew. A file
    that is there now stays as it is and the command says why it stopped; the user and
    the password are unchanged."""
    data = str(tmp_path)
    path = tmp_path / "li-password"
    path.write_text("someone else's\n", encoding="utf-8")
    assert main(["users", data, "add", "li", "--role", "operator", "--generate"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: {path} exists already: hand its password over or delete it, then run again\n"
    )
    assert path.read_text(encoding="utf-8") == "someone else's\n"
    users = Users(tmp_path / "hub.db")
    try:
        assert users.get("li") is None
        users.add("li", "operator", "li-password")
    finally:
        users.close()
    assert main(["users", data, "password", "li", "--generate"]) == 1
    assert f"error: {path} exists already" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == "someone else's\n"
    users = Users(tmp_path / "hub.db")
    try:
        assert users.check("li", "li-password") is not None
    finally:
        users.close()
