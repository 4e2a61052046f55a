"""``coldchain users``: add, list and remove the hub's users; bad input says what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldchain.cli import main
from dashboards.auth import Users


def test_users_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "pw"
    secret.write_text("a-long-password\n", encoding="utf-8")
    data = str(tmp_path)
    assert (
        main(["users", data, "add", "wang-li", "--role", "manager", "--password-file", str(secret)])
        == 0
    )
    assert main(["users", data, "list"]) == 0
    assert "wang-li\tmanager" in capsys.readouterr().out
    users = Users(tmp_path / "hub.db")
    try:
        user = users.check("wang-li", "a-long-password")
        assert user is not None
        assert user.role == "manager"
    finally:
        users.close()
    assert main(["users", data, "remove", "wang-li"]) == 0
    assert main(["users", data, "remove", "wang-li"]) == 1
    assert "no user 'wang-li'" in capsys.readouterr().out
