"""The auditor role (issue 17): reads everything an admin may, changes nothing — every request
that is not a read is refused with a 403 that says so, and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldchain.access import Principal, Role
from coldchain.reading import Reading, SeriesId
from tests.alertkit import PROFILES
from tests.hubkit import call, running_hub_service
from tests.services import Broker
from tests.test_signatures import _config, headers_of

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

TEMP = SeriesId("s1", "gw1", "probe", "temperature")
REFUSED = "audit-li is an auditor: an auditor reads everything and changes nothing"


def test_the_role_reads_what_any_role_may_and_changes_nothing() -> None:
    auditor = Principal("audit-li", Role.AUDITOR)
    for needed in (Role.OPERATOR, Role.MANAGER, Role.ADMIN):
        assert auditor.refusal(needed, changes=False) is None
        assert auditor.refusal(needed) == REFUSED  # changes by default: fail closed
    assert Principal("op", Role.OPERATOR).refusal(Role.OPERATOR) is None
    assert not Role.ADMIN.covers(Role.AUDITOR)  # no rank reaches the auditor's


async def test_an_auditor_reads_every_page_and_changes_nothing(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with running_hub_service(_config(), PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u = hub.url
        hub.auth.users.add("audit-li", "auditor", "auditor-password")
        h = headers_of(hub, "audit-li")
        now = hub.alerts.clock()
        hub.alerts.on_readings([Reading(TEMP, now, 9.5)])
        [alert] = [a for a in hub.alerts.open.values() if a.rule == "temperature-high"]
        for path in (
            "/", "/alerts", "/gateways", "/reports", "/users", "/api/audit", "/api/alerts",
            "/api/gateways", "/api/alerts/rules", f"/api/signatures?object=alert/{alert.id}",
            "/reports/daily?site=s1&room=chill&date=2026-01-02&format=csv",
        ):  # fmt: skip
            status, _ = await call("GET", u + path, headers=h)
            assert status == 200, path
        before = hub.audit.page(1, 0)[1]
        changes = [
            ("POST", f"/api/alerts/{alert.id}/ack", {"comment": "seen"}),
            (
                "POST",
                "/api/signatures",
                {
                    "object": f"alert/{alert.id}",
                    "meaning": "reviewed",
                    "password": "auditor-password",
                },
            ),
            (
                "PUT",
                "/api/alerts/rules/temperature-high",
                {"kind": "threshold", "direction": "above"},
            ),
            ("DELETE", "/api/users/test-admin/sessions", None),
            ("POST", "/api/rooms/s1/chill/maintenance", {"reason": "x", "for": "1h"}),
        ]
        for method, path, body in changes:
            status, answer = await call(method, u + path, body, headers=h)
            assert (status, answer["detail"]) == (403, REFUSED), path
        assert hub.alerts.get(alert.id).acked_ms is None
        assert hub.audit.page(1, 0)[1] == before  # nothing happened, nothing audited
        # the admin still may (the refusal is the auditor's, not the route's)
        status, _ = await call("POST", f"{u}/api/alerts/{alert.id}/ack", {"comment": "seen"})
        assert status == 200
