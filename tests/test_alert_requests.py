"""People's actions on a hub that does not run the alerts (a web worker, a standby) are
applied by the leader, once, with the leader's answer or refusal (alerts/requests.py); such a
hub shows the open alerts as the leader stored them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from alerts.errors import ConflictError, NotFoundError, UnavailableError
from alerts.requests import Forwarder, serve
from alerts.store import AlertRow
from tests.alertscen import (
    LEVEL1,
    Hub,
    Hubs,
    cloud,
    site_doc,
    twilio_texts,
)
from tests.smsfakes import AliyunFake, TwilioFake, aliyun_fake, twilio_fake

__all__ = ["aliyun_fake", "twilio_fake"]

pytestmark = pytest.mark.usefixtures("hub_engine")

T = "probe/temperature"


@pytest.fixture
async def hubs(tmp_path: Path) -> AsyncIterator[Hubs]:
    h = Hubs(tmp_path)
    yield h
    await h.aclose()


def follower(hubs: Hubs, leader: Hub) -> Hub:
    """A hub on the same state that does not lead (as a web worker or a standby is)."""
    hub = Hub(
        leader_doc(leader), db_path=hubs.db, audit=hubs.audit, notifiers=[], clock=leader.clock
    )
    hub.svc.leading = False
    hubs.opened.append(hub)
    return hub


def leader_doc(hub: Hub) -> dict[str, Any]:
    return hub.cfg.model_dump(mode="json", by_alias=True, exclude_unset=True)


async def firing(hubs: Hubs, twilio: TwilioFake, aliyun: AliyunFake, tmp_path: Path) -> Hub:
    settings, notifiers = cloud(twilio, aliyun, tmp_path)
    leader = hubs.open(site_doc(settings), notifiers)
    await leader.run_until(20, {T: 9.0})
    assert leader.alert("temperature-high").state == "firing"
    return leader


@pytest.fixture
async def pair(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> tuple[Hub, AlertRow, Hub]:
    """The leader with its alarm firing, and a hub on the same state that does not lead."""
    leader = await firing(hubs, twilio_fake, aliyun_fake, tmp_path)
    return leader, leader.alert("temperature-high"), follower(hubs, leader)


async def serving(leader: Hub) -> AsyncIterator[None]:
    """The leader's request loop (as ``AlertService.run`` runs it)."""
    while True:
        serve(leader.svc)
        await asyncio.sleep(0.02)


async def test_an_ack_on_a_hub_that_does_not_lead_is_the_leaders_ack(
    hubs: Hubs, twilio_fake: TwilioFake, pair: tuple[Hub, AlertRow, Hub]
) -> None:
    leader, alarm, web = pair
    shown = web.svc.snapshot().alerts  # what the web worker's board lists: the leader's
    assert {a.id: a.state for a in shown} == {a.id: a.state for a in leader.svc.open.values()}
    assert {a.id: a.state for a in shown}[alarm.id] == "firing"

    task = asyncio.create_task(serving(leader))
    try:
        row = await asyncio.to_thread(web.svc.ack, alarm.id, by="wang-li", comment="门已关")
        assert (row.id, row.state, row.acked_by, row.ack_comment) == (
            alarm.id, "acknowledged", "wang-li", "门已关",
        )  # fmt: skip
        with pytest.raises(ConflictError, match="acknowledged by wang-li already"):
            await asyncio.to_thread(web.svc.ack, alarm.id, by="zhao")
        with pytest.raises(NotFoundError, match="no alert 999"):
            await asyncio.to_thread(web.svc.ack, 999, by="zhao")
    finally:
        task.cancel()
    assert leader.svc.open[alarm.id].state == "acknowledged"  # the leader's own view
    acks = [a for a in hubs.trail("alert.ack") if a.object == f"alert/{alarm.id}"]
    assert [a.actor for a in acks] == ["wang-li"]  # once, though asked three times
    await leader.run_until(60)  # escalation stopped: level 2 (c4, after 15 min) never sent
    assert "c4" not in twilio_texts(twilio_fake)
    assert all(len(twilio_texts(twilio_fake)[c]) == 1 for c in LEVEL1)
    web.svc.follow(every_s=0)
    assert {a.id: a.state for a in web.svc.snapshot().alerts}[alarm.id] == "acknowledged"


async def test_with_no_leader_the_request_is_withdrawn_and_never_applied(
    hubs: Hubs, twilio_fake: TwilioFake, pair: tuple[Hub, AlertRow, Hub]
) -> None:
    leader, alarm, web = pair
    web.svc._forward = Forwarder(web.svc.store, web.svc.clock, wait_s=0.2)
    with pytest.raises(UnavailableError, match="no hub runs the alerts now"):
        web.svc.ack(alarm.id, by="wang-li")
    assert serve(leader.svc) == 0  # a leader that comes later does not apply it
    assert leader.alert("temperature-high").acked_ms is None


async def test_each_request_is_applied_once_whichever_leader_takes_it(
    hubs: Hubs, twilio_fake: TwilioFake, pair: tuple[Hub, AlertRow, Hub]
) -> None:
    leader, alarm, web = pair
    web.svc.delivery("no-such-ref", "delivered")  # Twilio's callbacks: not waited for
    web.svc.reply("+8613800000001", "好的", via="sms-reply")
    standby = follower(hubs, leader)
    standby.svc.start()  # leads now too (as a standby that took over would)
    assert serve(leader.svc) == 2
    assert serve(standby.svc) == 0
    acks = [a for a in hubs.trail("alert.ack") if a.object == f"alert/{alarm.id}"]
    assert [(a.actor, a.after["via"]) for a in acks] == [("c1", "sms-reply")]


async def test_a_rule_edited_through_a_follower_is_judged_by_it_once_it_leads(
    hubs: Hubs, twilio_fake: TwilioFake, aliyun_fake: AliyunFake, tmp_path: Path
) -> None:
    leader = await firing(hubs, twilio_fake, aliyun_fake, tmp_path)
    web = follower(hubs, leader)
    [rule] = [r for r in web.svc.rules() if r.id == "temperature-high"]
    body = rule.model_dump(mode="json") | {"enabled": False}
    task = asyncio.create_task(serving(leader))
    try:
        edited = await asyncio.to_thread(web.svc.put_rule, body, by="manager")
    finally:
        task.cancel()
    assert edited.enabled is False
    await leader.close()
    web.svc.start()  # the leader is gone; this hub takes over
    assert [r.enabled for r in web.svc.rules() if r.id == "temperature-high"] == [False]
    judged = {st.watch.rule.id for st in web.svc.evaluator._states.values()}
    assert "temperature-high" not in judged
    assert "temperature-low" in judged
