"""Signed actions (issue 17, part 2) on a running hub: a signature needs the signer's password
again and binds name, time, meaning and the record's digest; a wrong password signs nothing
and is audited; closing an alert needs a resolved alert, its cause and the corrective action;
a daily log's approval binds its content; the reports (CSV and PDF) show the signatures."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta
from datetime import time as daytime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.requests import Forwarder
from coldchain.config.site import SiteConfig
from coldchain.reading import Reading, SeriesId
from hub.auth import COOKIE
from hub.csrf import HEADER as CSRF_HEADER
from hub.service import Hub
from hub.signatures import alert_record, digest
from tests.alertkit import PROFILES, site
from tests.hubkit import TEST_PASSWORD, TEST_USER, call, running_hub_service
from tests.services import Broker, until
from tests.test_reports import csv_sections, pdf_lines

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

TEMP = SeriesId("s1", "gw1", "probe", "temperature")


def _config() -> SiteConfig:
    doc = site(policies=[{"id": "cold", "levels": [{"contacts": ["c1"]}]}])
    doc["alert_rules"] = [
        {
            "id": "temperature-high",
            "kind": "threshold",
            "direction": "above",
            "alarm": {"delay": "0s"},
        }
    ]
    return SiteConfig.model_validate(doc)


def headers_of(hub: Hub, name: str) -> dict[str, str]:
    cookie = hub.auth.sessions.issue(name)
    session = hub.auth.sessions.verify(cookie)
    assert session is not None
    return {"Cookie": f"{COOKIE}={cookie}", CSRF_HEADER: session.csrf_token}


def audited(hub: Hub, action: str, obj: str) -> list[Any]:
    return hub.audit.about(action, [obj])


async def test_signing_an_alert_its_close_and_a_daily_log(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with running_hub_service(_config(), PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        now = hub.alerts.clock()
        await hub.store.write([Reading(TEMP, now - 60_000, 3.0), Reading(TEMP, now, 9.5)])
        hub.alerts.on_readings([Reading(TEMP, now, 9.5)])
        status, alerts = await call("GET", f"{u}/api/alerts")
        [alert] = [a for a in alerts if a["rule"] == "temperature-high"]
        obj = f"alert/{alert['id']}"

        # a wrong password signs nothing (the alert stays unacknowledged) and is audited
        sign = {"object": obj, "meaning": "acknowledged", "password": "not-it-at-all"}
        status, body = await call("POST", f"{u}/api/signatures", sign)
        assert (status, body["detail"]) == (
            403,
            "the password is not this user's: nothing was signed",
        )
        assert hub.alerts.get(alert["id"]).acked_ms is None
        [refused] = audited(hub, "signature.refused", obj)
        assert (refused.actor, refused.comment) == (TEST_USER, "wrong password")
        assert audited(hub, "signature", obj) == []

        # the right one acknowledges it (escalation stops) and signs it
        sign |= {"password": TEST_PASSWORD, "comment": "door left open; closed it"}
        status, signed = await call("POST", f"{u}/api/signatures", sign)
        assert status == 201, signed
        row = hub.alerts.get(alert["id"])
        assert (row.acked_by, row.ack_via, row.ack_comment) == (
            TEST_USER,
            "signature",
            sign["comment"],
        )
        # the record as it stood when signed: the excursion and its acknowledgement
        assert signed["digest"] == digest(alert_record(row.public()))
        assert (signed["signer"], signed["role"], signed["meaning"]) == (
            TEST_USER,
            "admin",
            "acknowledged",
        )
        [record] = audited(hub, "signature", obj)
        assert record.id == signed["audit_id"]

        # closing needs a resolved alert, then its cause and the corrective action
        close = {"object": obj, "meaning": "closed", "password": TEST_PASSWORD}
        status, body = await call(
            "POST", f"{u}/api/signatures", close | {"cause": "x", "corrective_action": "y"}
        )
        assert (status, body["detail"]) == (
            409,
            f"alert {alert['id']} is acknowledged: close it once it is resolved",
        )
        later = now + 120_000
        await hub.store.write([Reading(TEMP, later, 2.5)])
        hub.alerts.on_readings([Reading(TEMP, later, 2.5)])
        await until(lambda: hub.alerts.get(alert["id"]).state == "resolved", "the alert resolved")
        status, body = await call("POST", f"{u}/api/signatures", close)
        assert (status, body["detail"]) == (
            422,
            "closing an alert needs its cause and the corrective action",
        )
        close |= {
            "cause": "door held open during loading",
            "corrective_action": "moved stock to room 2",
        }
        status, closed = await call("POST", f"{u}/api/signatures", close)
        assert status == 201, closed
        assert (closed["cause"], closed["corrective_action"]) == (
            close["cause"],
            close["corrective_action"],
        )

        # the day's log can be approved once the day is over, by a manager: the digest of its
        # content, the same twice over, another once a reading of that day was added
        tz = ZoneInfo("Asia/Shanghai")
        today = datetime.fromtimestamp(now / 1000, tz).date()
        day, yesterday = today.isoformat(), (today - timedelta(days=1)).isoformat()
        approve = {
            "object": f"daily/s1/chill/{day}",
            "meaning": "approved",
            "password": TEST_PASSWORD,
        }
        status, body = await call("POST", f"{u}/api/signatures", approve)
        assert (status, body["detail"]) == (
            409,
            f"{day} is not over: its log can be approved from tomorrow",
        )
        noon = int(datetime.combine(today - timedelta(days=1), daytime(12), tz).timestamp() * 1000)
        await hub.store.write([Reading(TEMP, noon + i * 60_000, 2.0 + i / 10) for i in range(30)])
        approve["object"] = f"daily/s1/chill/{yesterday}"
        status, first = await call("POST", f"{u}/api/signatures", approve)
        assert status == 201, first
        status, second = await call("POST", f"{u}/api/signatures", approve)
        assert second["digest"] == first["digest"]
        assert re.fullmatch(r"[0-9a-f]{64}", first["digest"])
        await hub.store.write([Reading(TEMP, noon - 60_000, 7.5)])  # the day changed since
        status, third = await call("POST", f"{u}/api/signatures", approve)
        assert third["digest"] != first["digest"]

        # the reports show them: the daily logs (CSV, PDF) and the excursion report
        title = "Signatures (password re-entered; record digest as signed)"
        q = f"{u}/reports/daily?site=s1&room=chill&lang=en&date="
        status, text = await call("GET", q + day + "&format=csv")
        rows = csv_sections(text.encode())[title]
        assert rows[0][:5] == ["Signed", "Signed by", "Role", "Record", "Meaning"]
        assert [(r[3], r[4]) for r in rows[1:]] == [(obj, "acknowledged"), (obj, "closed")]
        assert rows[2][5:8] == [close["cause"], close["corrective_action"], ""]
        assert rows[1][8] == signed["digest"]
        status, text = await call("GET", q + yesterday + "&format=csv")
        rows = csv_sections(text.encode())[title]
        assert [(r[3], r[4], r[8]) for r in rows[1:]] == [
            (approve["object"], "approved", s["digest"]) for s in (first, second, third)
        ]
        pdf = await asyncio.to_thread(_get_bytes, hub, q + day + "&format=pdf")
        words = " ".join(pdf_lines(pdf))  # the PDF wraps long cells onto more lines
        assert "moved stock to room 2" in words
        assert "Signatures (password re-entered; record digest as signed)" in words
        rep = f"{u}/reports/excursions?site=s1&from={yesterday}&to={day}&format=csv&lang=en"
        status, text = await call("GET", rep)
        rows = csv_sections(text.encode())[title]
        assert [r[4] for r in rows[1:]] == [
            "acknowledged",
            "closed",
            "approved",
            "approved",
            "approved",
        ]


def _get_bytes(hub: Hub, url: str) -> bytes:
    import urllib.request

    from tests.hubkit import session_header

    req = urllib.request.Request(url, headers=session_header(hub.url))
    with urllib.request.urlopen(req, timeout=30) as resp:
        data: bytes = resp.read()
    return data


async def test_a_signature_on_a_hub_that_does_not_lead_waits_for_the_leader_off_the_loop(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """Signing an acknowledgement on a hub that does not run the alerts hands the ack to the
    leader (alerts/requests.py) and waits in a thread: the hub keeps answering meanwhile, and
    with no leader the signature is refused as unavailable, nothing signed."""
    async with running_hub_service(_config(), PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        now = hub.alerts.clock()
        await hub.store.write([Reading(TEMP, now, 9.5)])
        hub.alerts.on_readings([Reading(TEMP, now, 9.5)])
        [alert] = [a for a in hub.alerts.open.values() if a.rule == "temperature-high"]
        await until(lambda: hub.leader.leading, "the hub leads (its start is over)")
        hub.alerts.leading = False  # another hub leads; here, none answers
        hub.alerts._forward = Forwarder(hub.alerts.store, hub.alerts.clock, wait_s=1.0)
        sign = {"object": f"alert/{alert.id}", "meaning": "acknowledged", "password": TEST_PASSWORD}
        gaps: list[float] = []

        async def beat() -> None:  # the event loop's pulse, every 20 ms
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.02)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        pulse = asyncio.create_task(beat())
        status, body = await call("POST", f"{u}/api/signatures", sign)
        pulse.cancel()
        assert max(gaps) < 0.5  # the hub's loop went on during the wait (1 s)
        assert (status, body["detail"][:28]) == (503, "no hub runs the alerts now (")
        assert audited(hub, "signature", f"alert/{alert.id}") == []
        assert hub.alerts.get(alert.id).acked_ms is None


async def test_who_may_sign_what_and_what_is_refused_before_the_password(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with running_hub_service(_config(), PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        hub.auth.users.add("li-op", "operator", "operator-password")
        op = headers_of(hub, "li-op")
        approve = {
            "object": "daily/s1/chill/2026-01-02",
            "meaning": "approved",
            "password": "operator-password",
        }
        status, body = await call("POST", f"{u}/api/signatures", approve, headers=op)
        assert (status, body["detail"]) == (403, "signing a daily log needs a manager or above")
        cases: list[tuple[dict[str, Any], int]] = [
            ({"object": "daily/s1/../x/2026-01-02"}, 422),
            ({"object": "daily/s1/nope/2026-01-02"}, 404),
            ({"object": "daily/s1/chill/2026-02-30"}, 404),
            ({"object": "daily/s1/chill/2099-01-01"}, 409),
            ({"object": "rule/no-such-rule"}, 404),
            ({"object": "alert/999999", "meaning": "reviewed"}, 404),
            ({"object": "rule/temperature-high", "meaning": "closed"}, 422),
            ({"object": "rule/temperature-high", "comment": "x" * 501}, 422),
            ({"object": "rule/temperature-high", "extra": 1}, 422),
        ]
        for bad, want in cases:
            body = {**approve, "password": TEST_PASSWORD, **bad}
            status, answer = await call("POST", f"{u}/api/signatures", body)
            assert status == want, (bad, answer)
        assert hub.audit.page(100, 0, action="signature")[1] == 0  # nothing signed or refused
        status, rule = await call(
            "POST",
            f"{u}/api/signatures",
            {**approve, "object": "rule/temperature-high", "password": TEST_PASSWORD},
        )
        assert status == 201, rule
        [in_force] = [r for r in hub.alerts.rules() if r.id == "temperature-high"]
        assert rule["digest"] == digest(in_force.model_dump(mode="json"))
        status, listed = await call("GET", f"{u}/api/signatures?object=rule/temperature-high")
        assert [s["audit_id"] for s in listed] == [rule["audit_id"]]

        # wrong passwords lock the account as wrong logins do (5 free), and are audited
        wrong = {**approve, "object": "rule/temperature-high", "password": "wrong-password"}
        answers = [await call("POST", f"{u}/api/signatures", wrong) for _ in range(6)]
        assert [a[0] for a in answers] == [403] * 5 + [429]
        assert answers[5][1]["detail"] == f"{TEST_USER}: too many wrong passwords; try again later"
        assert len(audited(hub, "signature.refused", "rule/temperature-high")) == 5


async def test_a_rule_is_changed_and_reverted_only_as_a_signature(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """With hub.sign_rule_edits (the default) the API edits a rule only as a signature: the
    manager's password again, the rule as it is to be; the edit and the signature are made
    together, and a refused signature changes nothing. Reverting is signed too."""
    async with running_hub_service(_config(), PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url

        def delay() -> Any:
            [rule] = [r for r in hub.alerts.rules() if r.id == "temperature-high"]
            return rule.model_dump(mode="json")["alarm"]["delay"]

        before = delay()
        wanted = {"kind": "threshold", "direction": "above", "alarm": {"delay": "5min"}}
        status, body = await call("PUT", f"{u}/api/alerts/rules/temperature-high", wanted)
        assert status == 409
        assert "POST /api/signatures" in body["detail"]
        status, body = await call("DELETE", f"{u}/api/alerts/rules/temperature-high")
        assert status == 409
        change = {
            "object": "rule/temperature-high",
            "meaning": "changed",
            "rule": wanted,
            "comment": "new stock needs five minutes to settle",
        }
        cases: list[tuple[dict[str, Any], int]] = [
            ({"rule": None}, 422),  # changed: the rule is needed
            ({"meaning": "approved"}, 422),  # approved: no rule
            ({"rule": {**wanted, "id": "other"}}, 422),
            ({"rule": {**wanted, "alarm": {"delay": 300}}}, 422),  # a bare number
            ({"meaning": "reverted", "rule": None}, 404),  # no edit to revert yet
        ]
        for bad, want in cases:
            status, answer = await call(
                "POST", f"{u}/api/signatures", {**change, "password": TEST_PASSWORD, **bad}
            )
            assert status == want, (bad, answer)
        assert hub.audit.page(100, 0, action="signature")[1] == 0  # before the password
        status, _ = await call(
            "POST", f"{u}/api/signatures", {**change, "password": "wrong-password"}
        )
        assert status == 403
        assert delay() == before
        assert audited(hub, "rule.edit", "rule/temperature-high") == []

        status, signed = await call(
            "POST", f"{u}/api/signatures", {**change, "password": TEST_PASSWORD}
        )
        assert status == 201, signed
        assert delay() == "5min"
        [in_force] = [r for r in hub.alerts.rules() if r.id == "temperature-high"]
        assert signed["digest"] == digest(in_force.model_dump(mode="json"))
        assert (signed["meaning"], signed["signer"]) == ("changed", TEST_USER)
        [edit] = audited(hub, "rule.edit", "rule/temperature-high")
        assert (edit.actor, edit.after["alarm"]["delay"]) == (TEST_USER, "5min")

        revert = {"object": "rule/temperature-high", "meaning": "reverted"}
        status, undone = await call(
            "POST", f"{u}/api/signatures", {**revert, "password": TEST_PASSWORD}
        )
        assert status == 201, undone
        assert delay() == before
        [in_force] = [r for r in hub.alerts.rules() if r.id == "temperature-high"]
        assert undone["digest"] == digest(in_force.model_dump(mode="json"))
        status, listed = await call("GET", f"{u}/api/signatures?object=rule/temperature-high")
        assert [s["meaning"] for s in listed] == ["changed", "reverted"]
        status, _ = await call("POST", f"{u}/api/signatures", {**revert, "password": TEST_PASSWORD})
        assert status == 404  # nothing left to revert
