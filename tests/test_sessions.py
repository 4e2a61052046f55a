"""Sessions end on the hub, not only in the browser: logging out, a password change, a
removed user and an admin's "log out everywhere" (the users page's button, the API) make
the old cookie worthless at once; a correctly signed cookie with malformed claims is no
session (401), never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest

from hub.auth import COOKIE, SessionClaims
from tests.alertkit import PROFILES
from tests.browser import add_user, chromium, logged_in
from tests.hubkit import TEST_PASSWORD, TEST_USER, running_hub_service
from tests.services import Broker
from tests.test_alerts_api import _config
from tests.webclient import raw, script_login

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")


async def _status(url: str, cookie: str) -> int:
    return (await raw("GET", url, cookie=cookie))[0]


async def test_logout_ends_the_session_on_the_hub(tmp_path: Path, mosquitto: Broker) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        _, _, s = await script_login(u, TEST_USER, TEST_PASSWORD)
        assert s is not None
        _, _, other = await script_login(u, TEST_USER, TEST_PASSWORD)
        assert other is not None
        assert await _status(f"{u}/api/sites", s.cookie) == 200
        status, headers, _ = await raw("POST", f"{u}/logout", headers=s.headers())
        assert (status, headers["location"]) == (303, "/login")
        # the old cookie, kept by whoever copied it, is no session any more
        status, _, body = await raw("GET", f"{u}/api/sites", cookie=s.cookie)
        assert (status, "log in first" in body) == (401, True)
        status, headers, _ = await raw("GET", f"{u}/alerts", cookie=s.cookie)
        assert (status, headers["location"]) == (303, "/login?next=%2Falerts")
        # the same user's other session goes on
        assert await _status(f"{u}/api/sites", other.cookie) == 200


async def test_log_out_on_the_login_page_answered_403(tmp_path: Path, mosquitto: Broker) -> None:
    """The bug: the login page passed its own form's token as ``csrf_token``, which replaced
    the session's in the page, so a logged-in user on /login got a nav "log out" form (and
    a ``<meta name="csrf-token">``) carrying the login token, and logging out there answered
    403. The page now carries both: the session's in the nav and the meta, the login form's
    in the login form."""
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        _, _, s = await script_login(u, TEST_USER, TEST_PASSWORD)
        assert s is not None
        status, headers, page = await raw("GET", f"{u}/login", cookie=s.cookie)
        assert status == 200
        (nav,) = re.findall(
            r'<form method="post" action="/logout"[^>]*>'
            r'<input type="hidden" name="csrf_token" value="([^"]*)">',
            page,
        )
        (meta,) = re.findall(r'<meta name="csrf-token" content="([^"]*)">', page)
        (login,) = re.findall(
            r'<form method="post" action="/login"[^>]*>.*?'
            r'<input type="hidden" name="csrf_token" value="([^"]*)">',
            page,
            re.DOTALL,
        )
        login_header = headers["x-csrf-token"]
        browser = {"Origin": u, "Sec-Fetch-Site": "same-origin"}
        status, headers, body = await raw(
            "POST", f"{u}/logout", cookie=s.cookie, form={"csrf_token": nav}, headers=browser
        )
        assert (status, headers.get("location")) == (303, "/login"), body[:200]
        assert await _status(f"{u}/api/sites", s.cookie) == 401
        assert (nav, meta) == (s.token, s.token)
        assert login == login_header != s.token


async def test_a_password_change_ends_the_users_sessions(tmp_path: Path, mosquitto: Broker) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        password = add_user(hub, "op", "operator")
        _, _, s = await script_login(u, "op", password)
        assert s is not None
        assert await _status(f"{u}/api/sites", s.cookie) == 200
        assert hub.auth.users.set_password("op", "a-new-password") == 1
        assert await _status(f"{u}/api/sites", s.cookie) == 401
        status, _, again = await script_login(u, "op", "a-new-password")
        assert status == 303
        assert again is not None


@pytest.mark.slow
async def test_an_admin_logs_a_user_out_everywhere(tmp_path: Path, mosquitto: Broker) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        password = add_user(hub, "op", "operator")
        _, _, admin = await script_login(u, TEST_USER, TEST_PASSWORD)
        assert admin is not None
        async with chromium() as browser:
            phone = await logged_in(browser, u, "op", password)
            desk = await logged_in(browser, u, "op", password)
            # the API: DELETE /api/users/{name}/sessions
            _, _, script = await script_login(u, "op", password)
            assert script is not None
            status, _, body = await raw(
                "DELETE", f"{u}/api/users/op/sessions", headers=script.headers()
            )
            assert status == 403, "an operator may not"
            assert "op is operator; this needs admin" in body
            status, _, body = await raw(
                "DELETE", f"{u}/api/users/op/sessions", headers=admin.headers()
            )
            assert status == 200
            assert json.loads(body) == {"user": "op", "ended": 3}
            for page in (phone, desk):
                await page.reload()
                assert "/login" in page.url
            status, _, body = await raw(
                "DELETE", f"{u}/api/users/nobody/sessions", headers=admin.headers()
            )
            assert (status, "no user 'nobody'" in body) == (404, True)

            # the users page's button, in the admin's browser
            phone = await logged_in(browser, u, "op", password)
            boss = await logged_in(browser, u, TEST_USER, TEST_PASSWORD)
            await boss.goto(f"{u}/users")
            assert await boss.text_content("#user-op .sessions") == "1"
            await boss.click("#user-op form.logout-everywhere button")
            await boss.wait_for_url(f"{u}/users")
            assert await boss.text_content("#user-op .sessions") == "0"
            await phone.reload()
            assert "/login" in phone.url
        records, _ = hub.audit.page(10, 0, action="user.logout")
        assert [(r.actor, r.object) for r in records] == [
            (TEST_USER, "user/op"),
            (TEST_USER, "user/op"),
        ]


def _signed(key: bytes, body: bytes) -> str:
    text = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest())
    return f"{text}.{mac.rstrip(b'=').decode()}"


MALFORMED_CLAIMS = [
    b"[]",
    b'"admin"',
    b"null",
    b'{"u": "admin", "exp": "tomorrow"}',
    b'{"u": ["admin"], "exp": 99999999999}',
    b'{"sid": 5, "exp": 99999999999}',
    b'{"sid": "' + b"a" * 43 + b'", "exp": 1e400}',
    b'{"sid": "' + b"a" * 43 + b'", "exp": 99999999999, "role": "admin"}',
    b"{not json",
    b"\xff\xfe",
    b"[" * 2_000,
]


async def test_a_signed_session_cookie_with_malformed_claims_is_401_not_500(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        for body in MALFORMED_CLAIMS:
            cookie = f"{COOKIE}={_signed(hub.auth.sessions.key, body)}"
            status, _, text = await raw("GET", f"{u}/api/sites", cookie=cookie)
            assert (status, "log in first" in text) == (401, True), body[:40]
            status, headers, _ = await raw("GET", f"{u}/alerts", cookie=cookie)
            assert (status, headers.get("location")) == (303, "/login?next=%2Falerts"), body[:40]


def test_session_claims_are_exactly_an_id_and_an_expiry() -> None:
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        SessionClaims.model_validate({"sid": "a" * 43, "exp": 1, "u": "admin"})
    with pytest.raises(ValueError, match="Input should be a valid integer"):
        SessionClaims.model_validate_json('{"sid": "' + "a" * 43 + '", "exp": "1"}')
    assert SessionClaims.model_validate_json('{"sid": "' + "a" * 43 + '", "exp": 5}').exp == 5
