"""Login and roles, on a running hub: a wrong password says so (in Chromium); an operator
cannot reach a technician's or manager's page nor call a manager's API; nothing but the open
paths answers without a session; the session cookie is signed, HttpOnly and SameSite=Lax;
passwords are stored as scrypt hashes; zh-CN by default, en on request."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from coldchain.statedb import StateConn
from hub.auth import COOKIE, AuthError, Sessions, Users
from tests.alertkit import PROFILES
from tests.browser import add_user, chromium, logged_in
from tests.hubkit import TEST_USER, running_hub_service, session_header
from tests.services import Broker
from tests.test_alerts_api import _config
from tests.webclient import raw, script_login

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")


@pytest.mark.slow
async def test_login_failure_says_so_and_an_operator_is_kept_to_its_role(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        password = add_user(hub, "op", "operator")
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(f"{u}/alerts")
            assert "/login" in page.url, "a page without a session goes to the login"
            await page.fill("input[name=name]", "op")
            await page.fill("input[name=password]", "not-the-password")
            await page.click("button[type=submit]")
            error = await page.text_content("#login-error")
            assert error is not None
            assert "用户名或密码错误" in error

            page = await logged_in(browser, u, "op", password)
            assert "op (operator)" in (await page.text_content("nav") or "")
            assert await page.locator("nav a[href='/gateways']").count() == 0
            resp = await page.goto(f"{u}/gateways")
            assert resp is not None
            assert resp.status == 403
            assert "op is operator; this needs technician" in (await page.content())
            resp = await page.goto(f"{u}/users")
            assert resp is not None
            assert resp.status == 403
            # the manager's pages: reports (a page and its downloads)
            assert await page.locator("nav a[href='/reports']").count() == 0
            resp = await page.goto(f"{u}/reports")
            assert resp is not None
            assert resp.status == 403
            today = "2026-01-01"
            report = f"/reports/daily?site=s1&room=chill&date={today}&format=csv"
            assert await page.evaluate(f"async () => (await fetch('{report}')).status") == 403
            # a manager's API from the operator's own browser session
            status = await page.evaluate(
                """async () => (await fetch('/api/alerts/rules/door-open',
                     {method: 'PUT', headers: {'Content-Type': 'application/json'},
                      body: JSON.stringify({kind: 'door_open', longer_than: '5min'})})).status"""
            )
            assert status == 403
            assert await page.evaluate("async () => (await fetch('/api/audit')).status") == 403
            assert await page.evaluate("async () => (await fetch('/api/sites')).status") == 200

            # the language switch: zh-CN by default, en from the cookie
            assert "实时看板" in (await page.text_content("nav") or "")
            await page.click("#lang")
            assert "Live board" in (await page.text_content("nav") or "")


async def test_every_route_needs_a_session_but_the_open_ones(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        for path in ("/api/sites", "/api/alerts", "/api/latest", "/api/gateways", "/events"):
            status, _, body = await raw("GET", u + path)
            if path.startswith("/api/"):
                assert (status, "log in first" in body) == (401, True), path
            else:
                assert status == 303, path
        status, _, _ = await raw("POST", f"{u}/api/alerts/1/ack")
        assert status == 401
        status, headers, _ = await raw("GET", f"{u}/rooms/s1/chill")
        assert (status, headers["location"]) == (303, "/login?next=%2Frooms%2Fs1%2Fchill")
        assert (await raw("GET", f"{u}/healthz"))[0] == 200
        assert (await raw("GET", f"{u}/metrics"))[0] == 200
        # the one-tap link is open: it answers for its own signature, not for a session
        status, _, body = await raw("GET", f"{u}/a/forged.token")
        assert status == 403
        assert "link" in body.lower()
        assert (await raw("GET", f"{u}/static/app.css"))[0] == 200

        # the first admin: made at first start, its password in the data dir (0600)
        secret = tmp_path / "hub" / "admin-password"
        assert secret.stat().st_mode & 0o777 == 0o600
        password = secret.read_text().strip()
        status, headers, logged = await script_login(u, "admin", password, next="/alerts")
        assert (status, headers["location"]) == (303, "/alerts")
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
        assert logged is not None
        session = logged.cookie
        assert (await raw("GET", f"{u}/api/audit", cookie=session))[0] == 200
        # a tampered or foreign-key cookie is no session
        name, value = session.split("=", 1)
        assert (await raw("GET", f"{u}/api/sites", cookie=f"{name}={value[:-2]}xx"))[0] == 401
        forged = Sessions(b"another key", hub.auth.users).issue("admin")
        assert (await raw("GET", f"{u}/api/sites", cookie=f"{COOKIE}={forged}"))[0] == 401
        # an offsite next= is not followed
        status, headers, _ = await script_login(u, "admin", password, next="//evil")
        assert headers["location"] == "/"
        # a removed user's session ends at once
        add_user(hub, "gone", "manager")
        token = hub.auth.sessions.issue("gone")
        assert (await raw("GET", f"{u}/api/audit", cookie=f"{COOKIE}={token}"))[0] == 200
        hub.auth.users.remove("gone")
        assert (await raw("GET", f"{u}/api/audit", cookie=f"{COOKIE}={token}"))[0] == 401

    db = StateConn(hub.state)
    rows = db.execute("SELECT name, salt, hash FROM users").fetchall()
    db.close()
    assert {r[0] for r in rows} == {"admin", TEST_USER}
    salts = [r[1] for r in rows]
    assert len(set(salts)) == len(salts), "a salt per user"
    assert all(len(r[2]) == 32 and b"password" not in r[2] for r in rows)


def test_users_refuse_what_is_wrong(tmp_path: Path) -> None:
    users = Users(tmp_path / "hub.db")
    try:
        users.add("wang-li", "operator", "long enough")
        for args, message in [
            (("wang-li", "operator", "long enough"), "user 'wang-li' exists already"),
            (("x", "boss", "long enough"), "role 'boss': use one of operator, technician"),
            (("y", "admin", "short"), "use at least 8 characters"),
            (("a b", "admin", "long enough"), "user name 'a b'"),
        ]:
            with pytest.raises(AuthError, match=re.escape(message)):
                users.add(*args)
        assert users.check("wang-li", "long enough") is not None
        assert users.check("wang-li", "long enougH") is None
        assert users.check("nobody", "long enough") is None
    finally:
        users.close()


async def test_the_hub_stops_with_a_live_board_stream_open(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """uvicorn waits for open responses on shutdown: the hub must end the streams."""
    cfg = _config(tmp_path)
    service = running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url)
    hub = await service.__aenter__()
    host, port = hub.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    cookie = session_header(hub.url)["Cookie"]
    writer.write(f"GET /events HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"event: tile"), 5)
    assert b"200 OK" in head
    assert b"text/event-stream" in head
    await asyncio.wait_for(service.__aexit__(None, None, None), 10)
    writer.close()
