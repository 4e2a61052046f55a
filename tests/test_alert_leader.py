"""Exactly one hub runs the alerts (hub/leader.py): the lock on SQLite and on PostgreSQL, a
standby that takes over when the leader lets go or dies, a leader that stops when it can no
longer show it holds the lock; and, end to end, two hub processes on one PostgreSQL state
with the leader killed with -9 between two escalation steps of an open alarm: the standby
sends the next steps, and each person gets each message once."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from coldchain.config.loader import load_site_config
from coldchain.statedb import PostgresTarget, StateConn, StateTarget
from hub.leader import AlertLeadership, LeadershipLost
from tests import smsfakes
from tests.agentkit import agents, county
from tests.hubkit import running_hub_service, session_header
from tests.hubprocs import HubProcesses, door_paging
from tests.postgres import PostgresCluster
from tests.services import Broker, free_port, until
from tests.sites import shipped_profiles
from tests.smsfakes import TwilioFake
from tests.test_config_warnings import DOOR, site

twilio_fake = smsfakes.twilio_fake


def _dir(state: StateTarget, tmp_path: Path) -> Path:
    """The data dir both hubs of a test use: on SQLite, where the lock lives."""
    return Path(state).parent if isinstance(state, Path) else tmp_path / "unused"


async def test_one_leader_at_a_time_and_the_standby_takes_over(
    state: StateTarget, tmp_path: Path
) -> None:
    data = _dir(state, tmp_path)
    first = AlertLeadership(state, data, interval_s=0.05)
    second = AlertLeadership(state, data, interval_s=0.05)
    await asyncio.wait_for(first.acquire(), 5)
    waiting = asyncio.create_task(second.acquire())
    await asyncio.sleep(0.5)  # ten tries
    assert not waiting.done()
    assert (first.leading, second.leading) == (True, False)
    first.release()  # the leader stops (or dies: see below)
    await asyncio.wait_for(waiting, 5)
    assert second.leading
    second.release()


async def test_a_hub_that_does_not_lead_sees_whether_any_does(
    state: StateTarget, tmp_path: Path
) -> None:
    data = _dir(state, tmp_path)
    leader = AlertLeadership(state, data)
    web = AlertLeadership(state, data)  # a web worker: never tries to lead
    assert web.leader_runs(every_s=0) is False
    assert await leader.try_once()  # looking took nothing
    assert web.leader_runs(every_s=0) is True
    leader.release()
    assert web.leader_runs(every_s=0) is False
    assert web.leader_runs() is False  # cached for every_s
    for _ in range(30):  # let go at once: on PostgreSQL not when the backend gets round to it
        assert await leader.try_once()
        assert web.leader_runs(every_s=0) is True
        leader.release()
        assert web.leader_runs(every_s=0) is False
    web.release()


async def test_a_leader_whose_connection_breaks_stops(
    postgres: PostgresTarget, tmp_path: Path
) -> None:
    leader = AlertLeadership(postgres, tmp_path, interval_s=0.05)
    await asyncio.wait_for(leader.acquire(), 5)
    holding = asyncio.create_task(leader.hold())
    await asyncio.sleep(0.2)
    assert not holding.done()
    admin = StateConn(postgres)  # the database ends the leader's session (or loses it)
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
        "AND objid = ? AND granted",
        (0x00000002,),
    )
    admin.close()
    with pytest.raises(LeadershipLost, match="the connection holding the alert leader's lock"):
        await asyncio.wait_for(holding, 5)
    assert not leader.leading
    standby = AlertLeadership(postgres, tmp_path, interval_s=0.05)
    await asyncio.wait_for(standby.acquire(), 5)  # the lock went with the session
    standby.release()
    leader.release()


def _healthz(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return str(body["alerts"])
    except OSError:
        return None


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_the_standby_continues_an_escalation_when_the_leader_is_killed(
    tmp_path: Path,
    mosquitto: Broker,
    twilio_fake: TwilioFake,
    postgres: PostgresTarget,
    postgres_cluster: PostgresCluster,
) -> None:
    del postgres_cluster
    async with county(tmp_path, mosquitto, poll="500ms") as c:
        doc = yaml.safe_load(c.path.read_text(encoding="utf-8"))
        doc["hub"] = {"state": {"type": "postgres", "url": postgres.conninfo}}
        door_paging(
            doc,
            twilio_fake.settings(tmp_path).model_dump(mode="json", exclude_none=True),
            [
                {"contacts": ["wang-li", "li-na"]},
                {"after": "8s", "contacts": ["he-jian"]},
                {"after": "14s", "contacts": ["zhao-min"]},
            ],
        )
        config = tmp_path / "hub.yaml"
        config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        hubs = HubProcesses(tmp_path, config, mosquitto.url)

        def sent() -> Counter[str]:
            return Counter(r["to"] for r in twilio_fake.records)

        def accepted() -> int:
            db = StateConn(postgres)
            try:
                (n,) = db.execute(
                    "SELECT count(*) FROM notifications WHERE status IN ('accepted', 'delivered')"
                ).fetchone()
            finally:
                db.close()
            return int(n)

        try:
            hubs.start("a")
            await until(lambda: hubs.alerts("a") == "leader", "hub a leads", 30)
            hubs.start("b")
            await until(lambda: hubs.alerts("b") == "standby", "hub b stands by", 30)
            async with agents(c, tmp_path, only=["gw-centre-cold"]):
                await asyncio.sleep(3)
                assert twilio_fake.records == [], "the rooms are fine before the fault"
                c.sim.inject("door_stuck_open", "chengqu-centre/cold-room-2")
                await until(lambda: accepted() >= 2, "level 1 paged and recorded as sent", 30)
                assert sent() == {"+8613800000001": 1, "+8613700000006": 1}
                hubs.kill("a")  # -9, between level 1 and level 2
                killed = time.monotonic()
                await until(lambda: hubs.alerts("b") == "leader", "hub b takes over", 15)
                took_over = time.monotonic() - killed
                await until(lambda: len(sent()) == 4, "levels 2 and 3 from hub b", 40)
                await asyncio.sleep(2)  # nothing more comes
        finally:
            stopped = hubs.stop()
        assert sent() == {
            "+8613800000001": 1,  # wang-li, level 1, from hub a
            "+8613700000006": 1,  # li-na, level 1, from hub a
            "+8613600000007": 1,  # he-jian, level 2, from hub b
            "+8613800000002": 1,  # zhao-min, level 3, from hub b
        }
        assert took_over < 10
        assert stopped["b"] == 0


def test_a_hub_that_loses_the_leaders_lock_stops_in_one_line(
    tmp_path: Path, mosquitto: Broker, postgres: PostgresTarget
) -> None:
    """The database ends the leader's session (a restart, a failover, a DBA): the hub stops
    with one line and exit status 1, for its service manager to start it again as standby."""
    doc = site([DOOR], defrost={"at": ["02:00"]})
    doc["uplink"] = {"broker": mosquitto.url}
    port = free_port()
    doc["hub"] = {
        "data_dir": str(tmp_path / "hub"),
        "listen": f"127.0.0.1:{port}",
        "state": {"type": "postgres", "url": postgres.conninfo},
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    hub = subprocess.Popen(
        [sys.executable, "-m", "coldchain.cli", "hub", str(path), "--insecure"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while _healthz(port) != "leader":
            assert hub.poll() is None, "the hub stopped before it led"
            assert time.monotonic() < deadline, "the hub did not lead within 30 s"
            time.sleep(0.1)
        admin = StateConn(postgres)
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND objid = ? AND granted",
            (0x00000002,),
        )
        admin.close()
        assert hub.wait(timeout=20) == 1
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()
    assert hub.stderr is not None
    err = hub.stderr.read()
    assert "coldchain hub: the connection holding the alert leader's lock broke" in err
    assert "Traceback" not in err


def test_each_hub_has_its_own_client_id_kept_across_restarts(tmp_path: Path) -> None:
    from hub.service import client_id

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    first = client_id(a)
    assert re.fullmatch(r"coldchain-hub-[0-9a-f]{8}", first)
    assert client_id(a) == first  # restarted: the broker's session for it is kept
    assert client_id(b) != first  # a standby beside it does not take its session
    # a web worker on the same data dir as an ingest worker: a session of its own
    assert client_id(a, ["web"]) == first + "-web"
    assert client_id(a, ["web", "alerts"]) == first + "-alerts-web"
    assert client_id(a, ["web", "alerts", "ingest"]) == first
    (a / "hub-id").write_text("../../etc\n")  # not one: made anew
    assert re.fullmatch(r"coldchain-hub-[0-9a-f]{8}", client_id(a))


async def test_every_page_says_when_no_hub_runs_the_alerts(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """A hub that does not lead shows the leader's alerts; when no hub leads at all (the
    leader down, no standby) every page says no alarm is being sent."""
    doc = site([DOOR], defrost={"at": ["02:00"]})
    doc["uplink"] = {"broker": mosquitto.url}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    cfg = load_site_config(path, shipped_profiles())
    async with running_hub_service(cfg, shipped_profiles(), tmp_path / "hub", mosquitto.url) as hub:

        def page(url: str) -> str:
            headers = session_header(hub.url)
            headers["Cookie"] += "; coldchain_lang=en"
            req = urllib.request.Request(hub.url + url, headers=headers)
            with urllib.request.urlopen(req, timeout=10) as resp:
                return str(resp.read().decode())

        banner = "No hub runs the alerts now: no alarm is being sent."
        for url in ("/", "/alerts", "/?wall=1"):
            assert banner not in await asyncio.to_thread(page, url)
        hub.alerts.leading = False  # as a hub that found another leading (its lock, here)
        for url in ("/", "/alerts", "/?wall=1"):
            assert banner not in await asyncio.to_thread(page, url), url
        hub.leader.release()  # and now that one is gone
        hub.leader._seen = (-1e9, True)  # looked at again now, not after 5 s
        for url in ("/", "/alerts", "/?wall=1"):
            assert banner in await asyncio.to_thread(page, url), url
