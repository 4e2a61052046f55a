"""The hub's keys (session cookies, acknowledge links and reply codes) live in its state, the
same for every hub on it; a key file of an earlier version is taken up, not replaced."""

from __future__ import annotations

from pathlib import Path

from coldchain.statedb import StateTarget
from hub.auth import Auth
from hub.hub_keys import shared_key


def test_every_hub_on_one_state_gets_the_same_key(state: StateTarget, tmp_path: Path) -> None:
    first = shared_key(state, "link", tmp_path / "a" / "link.key")
    assert len(first) == 32
    assert shared_key(state, "link", tmp_path / "b" / "link.key") == first  # another hub
    assert shared_key(state, "session") != first  # each key its own


def test_the_key_file_of_an_earlier_version_is_taken_up(state: StateTarget, tmp_path: Path) -> None:
    old = tmp_path / "session.key"
    old.write_bytes(bytes(range(32)))
    assert shared_key(state, "session", old) == bytes(range(32))
    old.write_bytes(bytes(32))  # once in the state, the state's is the key
    assert shared_key(state, "session", old) == bytes(range(32))


def test_a_login_on_one_web_worker_holds_on_another(state: StateTarget, tmp_path: Path) -> None:
    one, two = Auth(tmp_path / "one", state=state), Auth(tmp_path / "two", state=state)
    try:
        one.users.add("wang-li", "operator", "a long enough password")
        cookie = one.sessions.issue("wang-li")
        session = two.sessions.verify(cookie)
        assert session is not None
        assert session.user.name == "wang-li"
    finally:
        one.users.close()
        two.users.close()
