"""The technicians' alerts from a gateway's health report: an outbox that is not draining
(gateway_backlog) and a disk nearly full (gateway_disk), raised and resolved by the real hub
from health messages a gateway publishes on a real Mosquitto; by default they are warnings,
routed to the warning policy, not the managers' alarm SMS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiomqtt

from coldchain.alerting.defaults import DEFAULT_RULES
from coldchain.alerting.evaluator import Transition
from coldchain.config.site import SiteConfig
from coldchain.protocol.topics import Topics
from hub.service import Hub
from tests.alertkit import T0, changes, evaluator
from tests.hubkit import running_hub_service
from tests.services import Broker, until
from tests.sites import shipped_profiles
from tests.test_config_warnings import DOOR, site

GIB = 1024**3
TOPICS = Topics()


def health(*, backlog_s: float, free_gib: float) -> bytes:
    doc: dict[str, Any] = {
        "v": 1,
        "ts": T0,
        "version": "0.1.0",
        "buffer": {"pending": 10, "oldest_unsent_age_s": backlog_s},
        "system": {"disk": {"free_bytes": int(free_gib * GIB), "total_bytes": 32 * GIB}},
    }
    return json.dumps(doc).encode()


def fired(ts: list[Transition]) -> list[tuple[str, str]]:
    """(rule/tier, firing or resolved) of each transition, sorted (pending is passed)."""
    return sorted((k, str(to)) for k, to in changes(ts) if to in ("firing", "resolved"))


def firing(hub: Hub) -> dict[str, tuple[float | None, float | None, str]]:
    return {
        a.kind: (a.value, a.limit_value, a.severity)
        for a in hub.alerts.store.query(states=["firing"], limit=20)
    }


def test_the_rules_judge_the_health_facts() -> None:
    ev = evaluator()
    assert ev.gateway_health("gw1", backlog_age_s=5.0, disk_free_pct=60.0, ts_ms=T0) == []
    got = ev.gateway_health("gw1", backlog_age_s=3600.0, disk_free_pct=3.0, ts_ms=T0 + 1)
    assert fired(got) == [("gateway-backlog/warning", "firing"), ("gateway-disk/warning", "firing")]
    got = ev.gateway_health("gw1", backlog_age_s=2.0, disk_free_pct=3.0, ts_ms=T0 + 2)
    assert fired(got) == [("gateway-backlog/warning", "resolved")]
    # offline, its last report says nothing of the backlog now: gateway_offline speaks
    ev.gateway_health("gw1", backlog_age_s=3600.0, disk_free_pct=3.0, ts_ms=T0 + 3)
    got = ev.gateway("gw1", online=False, ts_ms=T0 + 4)
    assert ("gateway-backlog/warning", "resolved") in fired(got)
    assert {r.id for r in DEFAULT_RULES} >= {"gateway-backlog", "gateway-disk", "gateway-clock"}


async def test_a_gateway_behind_or_out_of_disk_raises_a_warning(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cfg = SiteConfig.model_validate(site([DOOR]))
    async with (
        running_hub_service(cfg, shipped_profiles(), tmp_path / "hub", mosquitto.url) as hub,
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="gw1") as gw,
    ):
        topic = TOPICS.topic("gw1", "health")
        await until(lambda: hub.ingest.stats.connected, "the hub subscribed")
        await gw.publish(topic, health(backlog_s=1.5, free_gib=20), qos=1)
        await until(
            lambda: getattr(hub.registry.get("gw1"), "report", None) is not None, "the report"
        )
        assert firing(hub) == {}

        await gw.publish(topic, health(backlog_s=45 * 60, free_gib=1), qos=1)
        await until(lambda: len(firing(hub)) == 2, "two warnings", within=10)
        assert firing(hub) == {
            "gateway_backlog": (45.0, 30.0, "warning"),
            "gateway_disk": (3.1, 5.0, "warning"),
        }
        await gw.publish(topic, health(backlog_s=0.8, free_gib=20), qos=1)
        await until(lambda: firing(hub) == {}, "both resolved", within=10)
