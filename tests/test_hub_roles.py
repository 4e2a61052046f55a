"""``coldchain hub --role``: an ingest worker, the alert leader and a web worker as three
processes on one broker, one PostgreSQL state and one VictoriaMetrics store. The ingest worker
stores and acknowledges, the leader judges what it stored and pages, the web worker shows the
leader's alerts and hands a person's acknowledgement to it (alerts/requests.py), which stops
the escalation; with the leader gone, every page of the web worker says no alarm is sent."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from coldchain.statedb import PostgresTarget
from hub.auth import COOKIE, Auth
from hub.csrf import HEADER as CSRF_HEADER
from tests.agentkit import agents, county
from tests.hubprocs import HubProcesses, door_paging
from tests.services import Broker, until
from tests.smsfakes import TwilioFake, twilio_fake
from tests.victoria import VictoriaMetrics

__all__ = ["twilio_fake"]

LEVEL1 = {"+8613800000001": 1, "+8613700000006": 1}  # wang-li, li-na


def login(state: PostgresTarget, tmp_path: Path) -> dict[str, str]:
    """An admin's session on every hub of ``state`` (their session key is the state's)."""
    auth = Auth(tmp_path / "login", state=state)
    try:
        auth.users.add("test-admin", "admin", "a long test password")
        cookie = auth.sessions.issue("test-admin")
        session = auth.sessions.verify(cookie)
        assert session is not None
        return {"Cookie": f"{COOKIE}={cookie}; coldchain_lang=en", CSRF_HEADER: session.csrf_token}
    finally:
        auth.users.close()


def call(url: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers=headers, method="GET" if data is None else "POST"
    )
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_ingest_alerts_and_web_as_three_processes(
    tmp_path: Path,
    mosquitto: Broker,
    twilio_fake: TwilioFake,
    postgres: PostgresTarget,
    victoria_metrics: VictoriaMetrics,
) -> None:
    async with county(tmp_path, mosquitto, poll="500ms") as c:
        doc = yaml.safe_load(c.path.read_text(encoding="utf-8"))
        doc["hub"] = {
            "state": {"type": "postgres", "url": postgres.conninfo},
            "store": {"type": "influx", "url": victoria_metrics.url},
        }
        door_paging(
            doc,
            twilio_fake.settings(tmp_path).model_dump(mode="json", exclude_none=True),
            [{"contacts": ["wang-li", "li-na"]}, {"after": "15s", "contacts": ["he-jian"]}],
        )
        config = tmp_path / "hub.yaml"
        config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        hubs = HubProcesses(tmp_path, config, mosquitto.url)
        headers = login(postgres, tmp_path)

        def sent() -> Counter[str]:
            return Counter(r["to"] for r in twilio_fake.records)

        def web(path: str, body: Any = None) -> tuple[int, Any]:
            return call(hubs.url("web") + path, headers, body)

        def door_alerts() -> list[dict[str, Any]]:
            status, alerts = web("/api/alerts")
            assert status == 200, alerts
            return [a for a in alerts if a["rule"] == "door-open"]

        try:
            hubs.start("alerts", ["alerts"])
            hubs.start("ingest", ["ingest"])
            hubs.start("web", ["web"])
            await until(lambda: hubs.alerts("alerts") == "leader", "the leader up", 30)
            for name in ("ingest", "web"):
                await until(lambda n=name: hubs.alerts(n) == "off", f"{name} up", 30)  # type: ignore[misc]
            assert hubs.health("ingest")["roles"] == ["ingest"]  # type: ignore[index]
            assert hubs.health("web")["roles"] == ["web"]  # type: ignore[index]
            # no UI or API without the web role: only /healthz and /metrics
            assert call(hubs.url("ingest") + "/api/alerts", headers)[0] == 404
            async with agents(c, tmp_path, only=["gw-centre-cold"]):
                await asyncio.sleep(3)
                assert twilio_fake.records == [], "the rooms are fine before the fault"
                c.sim.inject("door_stuck_open", "chengqu-centre/cold-room-2")
                await until(lambda: sent() == LEVEL1, "level 1 paged by the leader", 30)
                paged = time.monotonic()
                # the web worker lists the leader's alert, and its acknowledgement is the leader's
                [alert] = await asyncio.to_thread(door_alerts)
                assert alert["state"] == "firing"
                status, acked = await asyncio.to_thread(
                    web, f"/api/alerts/{alert['id']}/ack", {"comment": "门已关上"}
                )
                assert status == 200, acked
                assert (acked["state"], acked["acked_by"]) == ("acknowledged", "test-admin")
                assert time.monotonic() - paged < 10  # before level 2 was due
                # in the leader's own memory too (its escalation, its next evaluation)
                metrics = (hubs.get("alerts", "/metrics") or b"").decode().splitlines()
                shown = [m for m in metrics if m.startswith("coldchain_alerts_open{")]
                severity = alert["severity"]
                assert shown == [
                    f'coldchain_alerts_open{{severity="{severity}",state="acknowledged"}} 1.0'
                ]
                await asyncio.sleep(17 - (time.monotonic() - paged))  # past level 2's 15 s
                assert sent() == LEVEL1  # escalation stopped: he-jian never paged
                assert (await asyncio.to_thread(door_alerts))[0]["state"] == "acknowledged"
                stored = hubs.metric("ingest", "coldchain_ingest_readings_total") or 0
                assert stored > 0
                assert hubs.metric("web", "coldchain_ingest_readings_total") == 0  # stores none
                judged = hubs.metric("alerts", "coldchain_alerts_readings_judged_total") or 0
                assert judged > 0  # what the ingest worker stored, through the broker
                assert hubs.metric("web", "coldchain_alerts_readings_judged_total") == 0

                hubs.kill("alerts")  # no leader, no standby

                def banner() -> bool:
                    status, page = web("/")
                    return status == 200 and "No hub runs the alerts now" in page

                await until(lambda: asyncio.to_thread(banner), "the web worker warns", 15)
        finally:
            stopped = hubs.stop()
        assert stopped["ingest"] == 0
        assert stopped["web"] == 0
