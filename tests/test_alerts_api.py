"""The alerts API on a running hub: alerts raised from readings, listed and acknowledged;
the signed one-tap page; maintenance; rules edited and audited; Twilio callbacks signed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from alerts.notifiers.twilio import twilio_signature
from coldchain.alerting.links import sign
from coldchain.config.site import SiteConfig
from coldchain.reading import Reading, SeriesId
from tests.alertkit import PROFILES, site
from tests.hubkit import TEST_USER, call, get, running_hub_service
from tests.services import Broker, until

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

TEMP = SeriesId("s1", "gw1", "probe", "temperature")


def _config(tmp_path: Path) -> SiteConfig:
    token = tmp_path / "twilio.token"
    token.write_text("secret-token-123", encoding="utf-8")
    doc = site(
        policies=[{"id": "cold", "levels": [{"contacts": ["c1", "c2", "c3"]}]}],
        default_policy={"alarm": "cold"},
        public_url="http://hub.example.cn",
        linger="50ms",
        notifiers=[
            {"type": "file", "id": "outbox", "path": str(tmp_path / "sms.jsonl")},
            {
                "type": "twilio",
                "id": "tw",
                "account_sid": "AC" + "0" * 32,
                "auth_token": f"file:{token}",
                "from_number": "+15005550006",
                "endpoint": "http://127.0.0.1:9",
            },
        ],
    )
    doc["alert_rules"] = [
        {
            "id": "temperature-high",
            "kind": "threshold",
            "direction": "above",
            "alarm": {"delay": "0s"},
        },
    ]
    doc.setdefault("hub", {})["sign_rule_edits"] = False  # unsigned edits (signed: test_signatures)
    return SiteConfig.model_validate(doc)


async def test_alerts_api_end_to_end(tmp_path: Path, mosquitto: Broker) -> None:
    cfg = _config(tmp_path)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        now = hub.alerts.clock()
        hub.alerts.on_readings([Reading(TEMP, now, 9.5)])
        status, alerts = await call("GET", f"{u}/api/alerts")
        assert status == 200
        [alert] = [a for a in alerts if a["rule"] == "temperature-high"]
        assert (alert["state"], alert["value"], alert["limit"]) == ("firing", 9.5, 4.0)
        aid = alert["id"]
        outbox = tmp_path / "sms.jsonl"

        def three_sent() -> bool:
            return outbox.exists() and len(outbox.read_text().splitlines()) == 3

        await until(three_sent, "three SMS in the file notifier's outbox")
        lines = [json.loads(x) for x in outbox.read_text(encoding="utf-8").splitlines()]
        assert sorted(x["to"] for x in lines) == [
            "+8613800000001",
            "+8613800000002",
            "+8613800000003",
        ]
        link = re.search(r"http://hub.example.cn/a/(\S+)", lines[0]["text"])
        assert link is not None, lines[0]["text"]

        # the one-tap page: a forged token is refused, the real one acknowledges
        status, page = await call("GET", f"{u}/a/{link.group(1)[:-3]}xyz")
        assert status == 403
        status, page = await call("GET", f"{u}/a/{link.group(1)}")
        assert status == 200
        assert "冷鲜禽" in page or "Chilled" in page
        status, page = await call("POST", f"{u}/a/{link.group(1)}", form={"comment": "door shut"})
        assert status == 200, page
        status, one = await call("GET", f"{u}/api/alerts/{aid}")
        assert one["state"] == "acknowledged"
        assert one["ack_via"] == "link"
        assert one["ack_comment"] == "door shut"
        assert len(one["notifications"]) == 3
        assert {n["status"] for n in one["notifications"]} == {"delivered"}
        status, again = await call("POST", f"{u}/api/alerts/{aid}/ack", {"by": "op"})
        assert status == 409
        assert "acknowledged by" in again["detail"]
        status, _ = await call("GET", f"{u}/api/alerts/999999")
        assert status == 404

        # maintenance: validated, held, audited
        status, body = await call(
            "POST", f"{u}/api/rooms/s1/chill/maintenance", {"by": "tech", "reason": "x"}
        )
        assert status == 422
        status, body = await call(
            "POST",
            f"{u}/api/rooms/s1/chill/maintenance",
            {"by": "tech", "reason": "seal repair", "for": "2h"},
        )
        assert status == 200, body
        status, body = await call("GET", f"{u}/api/maintenance")
        assert [m["reason"] for m in body] == ["seal repair"]
        status, body = await call(
            "POST",
            f"{u}/api/rooms/s1/nowhere/maintenance",
            {"by": "tech", "reason": "seal repair", "for": "2h"},
        )
        assert status == 404

        # rules: a bad edit says what is wrong; a good one is audited with before and after
        status, body = await call(
            "PUT",
            f"{u}/api/alerts/rules/door-open?by=mgr",
            {"kind": "door_open", "longer_than": 300},
        )
        assert status == 422
        assert "longer_than" in body["detail"]
        assert "bare number" in body["detail"]
        status, body = await call(
            "PUT",
            f"{u}/api/alerts/rules/door-open?by=mgr",
            {"kind": "door_open", "longer_than": "5min"},
        )
        assert status == 200, body
        status, rules = await call("GET", f"{u}/api/alerts/rules")
        door = next(r for r in rules if r["id"] == "door-open")
        assert (door["longer_than"], door["edited"]) == ("5min", True)
        status, audit = await get(f"{u}/api/audit?action=rule.")
        # the logged-in user, not the request's ?by=
        assert audit["items"][0]["actor"] == TEST_USER
        assert audit["items"][0]["before"]["longer_than"] == "10min"
        status, audit = await get(f"{u}/api/audit?action=alert.")
        actions = {i["action"] for i in audit["items"]}
        assert {"alert.pending", "alert.firing", "alert.notify", "alert.ack"} <= actions

        # Twilio callbacks must carry Twilio's signature
        url = f"{u}/api/alerts/twilio/inbound"
        form = {"From": "+8613800000002", "Body": "1", "To": "+15005550006", "MessageSid": "SM1"}
        status, _ = await call("POST", url, form=form, headers={"X-Twilio-Signature": "bad"})
        assert status == 403
        good = twilio_signature(url, form, "secret-token-123")
        status, _ = await call("POST", url, form=form, headers={"X-Twilio-Signature": good})
        assert status == 200

        # an expired link is refused with the reason
        token = sign(aid, "c1", now - 1000, hub.alerts.link_key)
        status, page = await call("GET", f"{u}/a/{token}")
        assert status == 403
        assert "expired" in page
