"""Failed logins are throttled per account and per address, with a clear message, answered
without a password check while locked (a flood costs no scrypt), and audited. Time is a
clock the tests move."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldchain.access import Principal
from dashboards.web.i18n import wait
from hub.throttle import LoginThrottle, Policy
from tests.alertkit import PROFILES
from tests.browser import add_user
from tests.hubkit import running_hub_service
from tests.services import Broker
from tests.test_alerts_api import _config
from tests.webclient import raw, script_login


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_account_is_locked_after_five_failures_doubling_up_to_fifteen_minutes() -> None:
    clock = Clock()
    t = LoginThrottle(clock=clock)
    for _ in range(4):
        assert t.begin("wang", "10.0.0.1") == (None, None)
    refused, earned = t.begin("Wang ", "10.0.0.1")  # the same account, spelt differently
    assert refused is None
    assert earned is not None
    assert (earned.scope, earned.seconds, earned.failures) == ("account", 30.0, 5)
    refused, _ = t.begin("wang", "10.0.0.2")  # another address: the account is locked
    assert refused is not None
    assert (refused.scope, refused.seconds) == ("account", 30.0)
    assert t.refused == 1
    clock.now += 29.5
    refused, _ = t.begin("wang", "10.0.0.1")
    assert refused is not None
    assert refused.seconds == 0.5
    clock.now += 0.5
    waits = []
    for _ in range(8):
        refused, earned = t.begin("wang", "10.0.0.1")
        assert refused is None
        assert earned is not None
        waits.append(earned.seconds)
        clock.now += earned.seconds
    assert waits == [60, 120, 240, 480, 900, 900, 900, 900]
    # another account from the same address is not locked (the address allows 20)
    assert t.begin("li", "10.0.0.1") == (None, None)


def test_a_success_clears_the_account_but_not_the_address() -> None:
    clock = Clock()
    t = LoginThrottle(clock=clock, address=Policy(free=6))
    for _ in range(4):
        t.begin("wang", "10.0.0.1")
    t.begin("wang", "10.0.0.1")  # the 5th: right this time
    t.succeeded("wang", "10.0.0.1")
    assert t.begin("wang", "10.0.0.1") == (None, None)
    # the address kept 4 of its 5 (the success forgiven once), +1: this 6th locks it
    refused, earned = t.begin("li", "10.0.0.1")
    assert refused is None
    assert earned is not None
    assert earned.scope == "address"
    refused, _ = t.begin("zhao", "10.0.0.1")
    assert refused is not None
    assert refused.scope == "address"


def test_failures_are_forgotten_after_the_window() -> None:
    clock = Clock()
    t = LoginThrottle(clock=clock)
    for _ in range(4):
        t.begin("wang", "a")
    clock.now += 3601
    for _ in range(4):
        assert t.begin("wang", "a") == (None, None)


def test_a_burst_of_parallel_attempts_is_counted_before_any_password_check() -> None:
    """Each attempt counts when it starts: the 6th of a burst is refused at once."""
    t = LoginThrottle(clock=Clock())
    starts = [t.begin("wang", "a") for _ in range(10)]
    assert [r is None for r, _ in starts] == [True] * 5 + [False] * 5


def test_the_number_of_remembered_keys_is_bounded() -> None:
    clock = Clock()
    t = LoginThrottle(clock=clock, max_keys=100)
    for i in range(1000):
        t.begin(f"name-{i}", f"10.0.{i // 250}.{i % 250}")
    assert len(t._accounts.records) <= 100
    assert len(t._addresses.records) <= 100


def test_waits_read_well() -> None:
    assert [wait(s, "en") for s in (0.2, 30, 90, 900)] == ["1 s", "30 s", "1 min 30 s", "15 min"]
    assert [wait(s, "zh-CN") for s in (30, 90, 900)] == ["30秒", "1分30秒", "15分钟"]


async def test_login_has_no_rate_limit_nor_lockout(
    tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug: ~17 scrypt checks a second from one client, without end. Now the fifth
    wrong password (still checked, 401) locks the account for 30 s; while locked even the
    right password is refused at once (429, Retry-After, the wait in words) without a
    password check (``Users.check`` is not called); failures and the lock are audited, the
    refused attempts are not (a flood writes nothing)."""
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        clock = Clock()
        hub.auth.throttle.clock = clock
        password = add_user(hub, "op", "operator")
        checks: list[str] = []
        check = hub.auth.users.check

        def counted(name: str, password: str) -> Principal | None:
            checks.append(name)
            return check(name, password)

        monkeypatch.setattr(hub.auth.users, "check", counted)
        for _ in range(4):
            status, _, _ = await script_login(u, "op", "wrong-password")
            assert status == 401
        status, headers, _ = await script_login(u, "op", "wrong-password")
        assert status == 401
        records, _ = hub.audit.page(50, 0, action="login.locked")
        assert len(records) == 1
        assert records[0].object == "user/op"
        assert records[0].after["seconds"] == 30.0
        assert checks == ["op"] * 5, "the five failures before the lock are checked"
        # locked: the right password too, at once, and without a password check
        for _ in range(20):
            status, headers, _ = await script_login(u, "op", password)
            assert status == 429
            assert headers["retry-after"] == "30"
        status, headers, _ = await raw("GET", f"{u}/login")
        pre = headers["set-cookie"].split(";")[0]
        token = headers["x-csrf-token"]
        form = {"name": "op", "password": password, "csrf_token": token}
        status, _, body = await raw(
            "POST", f"{u}/login", cookie=f"{pre}; coldchain_lang=en", form=form
        )
        assert status == 429
        assert "Too many failed logins for this user: try again in 30 s" in body
        status, _, body = await raw("POST", f"{u}/login", cookie=pre, form=form)
        assert "该账号登录失败次数过多" in body
        assert "30秒后再试" in body
        assert hub.auth.throttle.refused == 22
        assert checks == ["op"] * 5, "no password check while the account is locked"
        failed, _ = hub.audit.page(50, 0, action="login.failed")
        assert len(failed) == 5, "refused attempts are not audited one by one"
        assert {r.object for r in failed} == {"user/op"}
        assert {r.after["address"] for r in failed} == {"127.0.0.1"}
        clock.now += 30
        status, _, s = await script_login(u, "op", password)
        assert status == 303
        assert s is not None
        assert checks == ["op"] * 6, "the lock over, the password is checked again"
        done, _ = hub.audit.page(50, 0, action="login")
        logins = [(r.actor, r.object) for r in done if r.action == "login"]
        assert logins == [("op", "user/op")]


async def test_one_address_trying_many_accounts_is_locked(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        hub.auth.throttle.clock = Clock()
        for i in range(20):
            status, _, _ = await script_login(u, f"guess-{i}", "wrong-password")
            assert status == 401
        status, headers, _ = await raw("GET", f"{u}/login")
        pre = headers["set-cookie"].split(";")[0]
        form = {"name": "someone", "password": "x" * 8, "csrf_token": headers["x-csrf-token"]}
        status, _, body = await raw(
            "POST", f"{u}/login", cookie=f"{pre}; coldchain_lang=en", form=form
        )
        assert status == 429
        assert "Too many failed logins from this address: try again in 30 s" in body
        locks, _ = hub.audit.page(50, 0, action="login.locked")
        assert [r.object for r in locks] == ["address/127.0.0.1"]
