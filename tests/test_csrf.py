"""Cross-site request forgery, against the real hub: a page served from another port of the
hub's host (same site, another origin: SameSite=Lax cookies go along) must not change
anything through a logged-in browser (real headless Chromium), nor log a browser in as the
attacker; every state-changing request needs its session's token and the hub's own origin,
but for the signed SMS links and Twilio's callbacks."""

from __future__ import annotations

import contextlib
import html
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.auth import COOKIE, LOGIN_COOKIE
from hub.csrf import FIELD, HEADER
from tests.alertkit import PROFILES
from tests.browser import add_user, chromium, logged_in
from tests.hubkit import TEST_PASSWORD, TEST_USER, running_hub_service
from tests.services import Broker
from tests.test_alerts_api import _config
from tests.webclient import login_form, raw, script_login


@contextlib.contextmanager
def attacker_site(page: str) -> Iterator[str]:
    """Serve ``page`` at / on another port of 127.0.0.1 (the hub's host): its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="attacker-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def auto_submit(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return (
        f'<!doctype html><html><body><form id="f" method="post" action="{html.escape(action)}">'
        f'{inputs}</form><script>document.getElementById("f").submit()</script></body></html>'
    )


@pytest.mark.slow
async def test_a_page_on_another_port_cannot_create_an_admin_through_a_logged_in_browser(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        attack = auto_submit(
            f"{u}/users", {"name": "mallory", "role": "admin", "password": "mallory-password"}
        )
        async with chromium() as browser:
            page = await logged_in(browser, u, TEST_USER, TEST_PASSWORD)
            with attacker_site(attack) as evil:
                assert evil.split(":")[-1] != u.split(":")[-1]
                await page.goto(evil)
                await page.wait_for_url(f"{u}/users")
            assert hub.auth.users.get("mallory") is None, "the attacker's admin was created"
            detail = await page.text_content("#detail")
            assert detail is not None
            assert "cross-origin request refused" in detail
            assert "Sec-Fetch-Site is 'same-site'" in detail
            # the admin's own form on the hub's page still works (it carries the token)
            await page.goto(f"{u}/users")
            await page.fill("#add-user input[name=name]", "li-ming")
            await page.select_option("#add-user select[name=role]", "operator")
            await page.fill("#add-user input[name=password]", "li-ming-password")
            await page.click("#add-user button[type=submit]")
            await page.wait_for_selector("#user-li-ming")
            user = hub.auth.users.get("li-ming")
            assert user is not None
            assert user.role == "operator"


@pytest.mark.slow
async def test_a_page_on_another_port_cannot_log_a_browser_in_as_the_attacker(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """Login CSRF: the victim would work (and type) in the attacker's account."""
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        password = add_user(hub, "mallory", "operator")
        # even with a login token of its own: the attacker fetched /login itself
        _, headers, _ = await raw("GET", f"{u}/login")
        token = headers.get(HEADER.lower(), "")
        attack = auto_submit(
            f"{u}/login", {"name": "mallory", "password": password, "next": "/", FIELD: token}
        )
        async with chromium() as browser:
            context = await browser.new_context()
            page = await context.new_page()
            with attacker_site(attack) as evil:
                await page.goto(evil)
                await page.wait_for_url(f"{u}/**")
            cookies = {c["name"] for c in await context.cookies(u)}
            assert COOKIE not in cookies, "the browser was logged in as the attacker"
            assert "cross-origin request refused" in (await page.text_content("#detail") or "")
            await context.close()


async def test_a_state_changing_request_needs_its_sessions_token(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        _, _, s = await script_login(u, TEST_USER, TEST_PASSWORD)
        assert s is not None
        form = {"name": "zhao", "role": "operator", "password": "zhao-password"}
        # the cookie alone: what a forged form from anywhere sends
        status, _, body = await raw("POST", f"{u}/users", cookie=s.cookie, form=form)
        assert status == 403
        assert "missing or wrong CSRF token" in body
        bad = {**form, FIELD: s.token[:-2] + "xx"}
        status, _, body = await raw("POST", f"{u}/users", cookie=s.cookie, form=bad)
        assert (status, "missing or wrong CSRF token" in body) == (403, True)
        # another session's token is not this one's
        _, _, other = await script_login(u, TEST_USER, TEST_PASSWORD)
        assert other is not None
        assert other.token != s.token
        wrong = {**form, FIELD: other.token}
        assert (await raw("POST", f"{u}/users", cookie=s.cookie, form=wrong))[0] == 403
        assert hub.auth.users.get("zhao") is None
        # the API: JSON with the cookie and no token
        for method, path in [
            ("POST", "/api/alerts/1/ack"),
            ("DELETE", "/api/alerts/rules/door-open"),
            ("PUT", "/api/alerts/rules/door-open"),
            ("DELETE", f"/api/users/{TEST_USER}/sessions"),
        ]:
            status, _, body = await raw(
                method, u + path, cookie=s.cookie, headers={"Content-Type": "application/json"}
            )
            assert (status, "missing or wrong CSRF token" in body) == (403, True), path
        # with the token: in the form, or in the header; no Origin (a script) is fine
        status, _, _ = await raw(
            "POST", f"{u}/users", cookie=s.cookie, form={**form, FIELD: s.token}
        )
        assert status == 303
        assert hub.auth.users.get("zhao") is not None
        form2 = {"name": "qian", "role": "operator", "password": "qian-password"}
        status, _, _ = await raw(
            "POST", f"{u}/users", cookie=s.cookie, form=form2, headers={HEADER: s.token}
        )
        assert status == 303
        assert hub.auth.users.get("qian") is not None


async def test_a_request_from_another_origin_is_refused_even_with_the_token(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        _, _, s = await script_login(u, TEST_USER, TEST_PASSWORD)
        assert s is not None
        port = int(u.rsplit(":", 1)[1])
        form = {"name": "sun", "role": "admin", "password": "sun-password", FIELD: s.token}
        for headers, why in [
            ({"Origin": f"http://127.0.0.1:{port + 1}"}, "is not this hub"),
            ({"Origin": "null"}, "Origin 'null' is not this hub"),
            ({"Origin": f"http://localhost:{port}"}, "is not this hub"),
            ({"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site is 'same-site'"),
            ({"Sec-Fetch-Site": "cross-site", "Origin": u}, "Sec-Fetch-Site is 'cross-site'"),
        ]:
            status, _, body = await raw(
                "POST", f"{u}/users", cookie=s.cookie, form=form, headers=headers
            )
            body = html.unescape(body)
            assert (status, "cross-origin request refused" in body, why in body) == (
                403,
                True,
                True,
            ), headers
        assert hub.auth.users.get("sun") is None
        # the hub's own origin, as a browser sends it
        same = {"Origin": u, "Sec-Fetch-Site": "same-origin"}
        status, _, _ = await raw("POST", f"{u}/users", cookie=s.cookie, form=form, headers=same)
        assert status == 303
        assert hub.auth.users.get("sun") is not None


async def test_the_login_form_needs_the_token_of_its_own_cookie(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        form = {"name": TEST_USER, "password": TEST_PASSWORD}
        status, headers, body = await raw("POST", f"{u}/login", form=form)
        assert (status, "no login form token" in body) == (403, True)
        assert "set-cookie" not in headers
        pre, token = await login_form(u)
        _, other = await login_form(u)
        assert other != token, "a token per login cookie"
        status, _, body = await raw("POST", f"{u}/login", cookie=pre, form={**form, FIELD: other})
        assert (status, "missing or wrong CSRF token" in body) == (403, True)
        status, headers, _ = await raw(
            "POST", f"{u}/login", cookie=pre, form={**form, FIELD: token}
        )
        assert status == 303
        assert COOKIE in headers["set-cookie"]
        # the pre-session cookie: HttpOnly, SameSite=Strict, only for /login
        _, headers, _ = await raw("GET", f"{u}/login")
        assert LOGIN_COOKIE in headers["set-cookie"]
        assert "HttpOnly" in headers["set-cookie"]
        assert "samesite=strict" in headers["set-cookie"].lower()
        assert "Path=/login" in headers["set-cookie"]
        del hub


async def test_the_signed_sms_links_and_twilio_callbacks_need_no_csrf_token(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """They carry their own signature: a refusal is theirs (link, X-Twilio-Signature)."""
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        cross = {"Origin": "https://api.twilio.com", "Sec-Fetch-Site": "cross-site"}
        status, _, body = await raw("POST", f"{u}/a/forged.token", form={"comment": "x"})
        assert status == 403
        assert "this link cannot be used" in body
        assert "CSRF" not in body
        status, _, body = await raw(
            "POST", f"{u}/api/alerts/twilio/status", form={"MessageSid": "SM1"}, headers=cross
        )
        assert "cross-origin" not in body
        assert "CSRF" not in body
        assert status in (403, 503), body  # the signature's answer, not the CSRF check's
        del hub


@pytest.mark.slow
async def test_a_logged_in_browser_logs_in_again_from_the_login_page(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """The login form carries its own token, whether or not the browser has a session;
    the session it had ends."""
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        password = add_user(hub, "op", "operator")
        async with chromium() as browser:
            page = await logged_in(browser, u, "op", password)
            before = await page.context.cookies(u)
            old = next(c["value"] for c in before if c["name"] == COOKIE)
            await page.goto(f"{u}/login")
            await page.fill("input[name=name]", TEST_USER)
            await page.fill("input[name=password]", TEST_PASSWORD)
            await page.click("form.login button[type=submit]")
            await page.wait_for_url(f"{u}/")
            assert f"{TEST_USER} (admin)" in (await page.text_content("nav") or "")
        status, _, _ = await raw("GET", f"{u}/api/sites", cookie=f"{COOKIE}={old}")
        assert status == 401, "the session before the new login has ended"
