"""Remote configuration end to end: the hub sees its config file change and pushes each
changed gateway's slice as a retained revision over a real Mosquitto; the agent (polling the
simulated county over Modbus TCP and RTU on a pty) applies it live, proves it, keeps it or
rolls it back, and answers; the hub takes up the new series at once."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from coldchain.cli import main
from coldchain.config.loader import load_site_config
from coldchain.config.site import SiteConfig
from coldchain.reading import SeriesId
from hub.service import Hub
from tests.agentkit import County, Recording, agents, county
from tests.hubkit import get, running_hub_service
from tests.postgres import engine_settings
from tests.services import Broker, free_port, until

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

GW = "gw-dongtang"
ADDED = "veg-probe-b"  # on the rtu-gateway bus (Modbus TCP to RTU)
KEPT = "fruit-controller"  # on the rs485-carel bus (RTU on a pty): never touched


def write(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    tmp.replace(path)  # as an editor saves: the hub never reads half a file


def site_doc(c: County) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(c.path.read_text())
    doc["hub"] = {"config_watch": "100ms"}
    doc["agent"]["config_grace"] = "1500ms"
    return doc


def without(doc: dict[str, Any], device: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for gw in out["gateways"]:
        gw["devices"] = [d for d in gw["devices"] if d["id"] != device]
    return out


def gateway_of(doc: dict[str, Any], gw_id: str) -> dict[str, Any]:
    return next(g for g in doc["gateways"] if g["id"] == gw_id)


@dataclass
class Centre:
    """The simulated county, the hub running on ``site`` (its config file), and ``full``:
    the whole site as the technician will have it."""

    c: County
    full: dict[str, Any]
    site: Path
    cfg: SiteConfig  # what the hub (and the agents) start with
    hub: Hub

    def county(self) -> County:
        return County(self.c.sim, self.cfg, self.site, self.c.profiles)


@contextlib.asynccontextmanager
async def centre(tmp_path: Path, mosquitto: Broker, *, drop: str | None) -> AsyncIterator[Centre]:
    """The hub on the county's config, without device ``drop`` if given."""
    async with county(tmp_path, mosquitto, poll="1s") as c:
        full = site_doc(c)
        engine = engine_settings()  # under hub_engine on postgres: the file names it too
        if engine is not None:
            full.setdefault("hub", {})["state"] = engine.model_dump()
        site = tmp_path / "site.yaml"
        write(site, without(full, drop) if drop else full)
        cfg = load_site_config(site, c.profiles)
        async with running_hub_service(
            cfg, c.profiles, tmp_path / "hub", mosquitto.url, config_path=site
        ) as hub:
            yield Centre(c, full, site, cfg, hub)


async def config_state(url: str, gw: str) -> dict[str, Any]:
    status, body = await get(f"{url}/api/gateways/{gw}")
    assert status == 200
    state: dict[str, Any] = body["config"]
    return state


async def test_a_push_is_applied_live_and_the_hub_takes_the_new_series(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with (
        centre(tmp_path, mosquitto, drop=ADDED) as ce,
        agents(ce.county(), tmp_path, only=[GW, "gw-meilin"]) as running,
    ):
        hub, site, full = ce.hub, ce.site, ce.full
        agent = running[0]
        recording = Recording(agent)
        for gw in (GW, "gw-meilin"):
            await until(lambda: hub.revisions.state(gw).applied == 1, "revision 1", 20)  # noqa: B023
        added = SeriesId("dongtang-produce", GW, ADDED, "temperature")
        kept = SeriesId("dongtang-produce", GW, KEPT, "probe_1")
        assert added not in hub.ingest.allowed[GW]

        carel = next(p for p in agent.pollers if p.bus.id == "rs485-carel")
        polls = sum(d.polls for d in carel.devices)
        failed = sum(d.failed_polls for d in carel.devices)
        write(site, full)  # the technician adds the probe at the centre
        await until(lambda: added in hub.ingest.allowed[GW], "the hub takes the series", 10)
        await until(lambda: hub.revisions.state(GW).applied == 2, "revision 2 applied", 20)
        # only the gateway whose slice changed got a new revision
        assert hub.revisions.state("gw-meilin").desired == 1
        # the agent rebuilt the changed bus only, and polls the new device
        assert {d.device.id for p in agent.pollers for d in p.devices} >= {ADDED, KEPT}
        await until(
            lambda: any(k[0] == added for k in recording.readings), "the new probe read", 10
        )
        # everything the agent buffered reaches the store once, nothing is refused
        await until(lambda: agent.uplink.stats.in_flight == {}, "acks", 10)
        await asyncio.sleep(0.5)
        assert not hub.ingest.stats.rejected
        for series in (added, kept):
            mine = sorted(ts for (s, ts) in recording.readings if s == series)
            assert mine, series
            stored = await hub.store.raw(series, mine[0], mine[-1] + 1)
            assert [r.ts_ms for r in stored] == mine, series
            # and each value stored is one the simulator served (its journal)
            served = ce.c.sim.journal_entries(str(series), None)
            for r in stored:
                if r.value is None:
                    continue
                values = [e["value"] for e in served if e["wall_ms"] <= r.ts_ms + 5]
                assert any(abs(r.value - v) < 1e-6 for v in values[-20:]), (series, r)
        # the bus the revision did not change polled on through it, undisturbed
        assert carel in agent.pollers
        assert sum(d.polls for d in carel.devices) > polls
        assert sum(d.failed_polls for d in carel.devices) == failed
        state = await config_state(hub.url, GW)
        assert state == state | {"desired_rev": 2, "applied_rev": 2, "drift": False}
        # audited: who pushed what (a diff naming the probe), and who applied it
        status, audit = await get(f"{hub.url}/api/audit?action=config.push")
        assert status == 200
        last = audit["items"][0]["after"]
        assert last["revisions"] == {GW: 2}
        assert ADDED in last["diff"][GW]
        status, audit = await get(f"{hub.url}/api/audit?action=config.applied")
        assert any(
            i["object"] == f"gateway/{GW}" and i["after"]["rev"] == 2 for i in audit["items"]
        )
        # the agent kept it: a restarted agent runs on revision 2
        assert agent.reconfig.applied_rev == 2


async def test_a_revision_that_fails_is_rolled_back_and_the_gateway_streams_on(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with (
        centre(tmp_path, mosquitto, drop=None) as ce,
        agents(ce.county(), tmp_path, only=[GW]) as running,
    ):
        hub, site, full, cfg = ce.hub, ce.site, ce.full, ce.cfg
        agent = running[0]
        await until(lambda: hub.revisions.state(GW).applied == 1, "revision 1 applied", 20)
        # a profile that does not exist: the hub refuses the file, pushes nothing
        bad = copy.deepcopy(full)
        gateway_of(bad, GW)["devices"][0]["profile"] = "no-such-profile"
        write(site, bad)
        await until(
            lambda: hub.audit.last("config.refused", "site-config") is not None,
            "the file refused",
            10,
        )
        assert hub.revisions.state(GW).desired == 1
        # a bus that cannot open (nothing listens there): pushed, tried, rolled back
        broken = copy.deepcopy(full)
        bus = next(b for b in gateway_of(broken, GW)["buses"] if b["id"] == "rtu-gateway")
        bus["port"] = free_port()
        write(site, broken)
        await until(lambda: hub.revisions.state(GW).state == "refused", "refused", 30)
        state = await config_state(hub.url, GW)
        assert state["desired_rev"] == 2
        assert state["applied_rev"] == 1
        assert state["drift"] is True
        assert "rolled back" in state["error"]
        assert "rtu-gateway" in state["error"]
        # the gateways page highlights the drift and says why
        status, page = await get(f"{hub.url}/gateways")
        assert status == 200
        row = page[page.index(f'id="gw-{GW}"') :]
        row = row[: row.index("</tr>")]
        assert 'class="config drift"' in row
        assert "rolled back: bus rtu-gateway" in row
        # it runs on the old revision: the bus is back as it was, its devices answer
        rtu = next(p for p in agent.pollers if p.bus.id == "rtu-gateway")
        assert rtu.bus == next(b for b in cfg.gateway(GW).buses if b.id == "rtu-gateway")
        await until(lambda: all(d.polls_ok for d in rtu.devices), "streams on", 15)
        assert agent.reconfig.applied_rev == 1
        refused = agent.reconfig.refused
        assert refused is not None
        assert refused["rev"] == 2


async def test_config_push_installs_the_file_and_reports_each_gateway(
    tmp_path: Path, mosquitto: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    async with (
        centre(tmp_path, mosquitto, drop=ADDED) as ce,
        agents(ce.county(), tmp_path, only=[GW]),
    ):
        hub, site, full, data = ce.hub, ce.site, ce.full, tmp_path / "hub"
        await until(lambda: hub.revisions.state(GW).applied == 1, "revision 1", 20)
        new = tmp_path / "edited.yaml"
        write(new, {**full, "gateways": [*full["gateways"], {"id": "bad"}]})
        argv = ["config", "push", str(new), "--data-dir", str(data)]
        assert await asyncio.to_thread(main, argv) == 1  # does not check: nothing done
        assert "does not check" in capsys.readouterr().err
        assert hub.revisions.state(GW).desired == 1
        write(new, full)
        dry = await asyncio.to_thread(main, [*argv, "--dry-run", "--diff"])
        out = capsys.readouterr().out
        assert dry == 0
        assert f"{GW}: revision 2" in out
        assert ADDED in out
        assert "gw-meilin" not in out  # unchanged: nothing for it
        assert hub.revisions.state(GW).desired == 1
        # the real thing: installed over the hub's file, pushed, applied, reported
        assert await asyncio.to_thread(main, [*argv, "--wait", "30"]) == 0
        out = capsys.readouterr().out
        assert f"installed as {site}" in out
        assert f"{GW}: applied revision 2" in out
        assert yaml.safe_load(site.read_text()) == full
        status, audit = await get(f"{hub.url}/api/audit?action=config.install")
        assert status == 200
        item = audit["items"][0]
        assert item["actor"].endswith("(coldchain config push)")
        assert item["after"]["revisions"] == {GW: 2}


async def test_an_offline_gateway_gets_the_latest_revision_when_it_connects(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with centre(tmp_path, mosquitto, drop=ADDED) as ce:
        hub, site, full, county_cfg = ce.hub, ce.site, ce.full, ce.county()
        await until(lambda: hub.revisions.state(GW).desired == 1, "revision 1", 10)
        write(site, full)
        await until(lambda: hub.revisions.state(GW).desired == 2, "revision 2", 10)
        slower = copy.deepcopy(full)
        gateway_of(slower, GW)["devices"][0]["poll_interval"] = "2s"
        write(site, slower)
        await until(lambda: hub.revisions.state(GW).desired == 3, "revision 3", 10)
        assert hub.revisions.state(GW).state == "pending"
        async with agents(county_cfg, tmp_path, only=[GW]) as running:
            await until(lambda: hub.revisions.state(GW).applied == 3, "revision 3", 20)
            agent = running[0]
            assert agent.reconfig.applied_rev == 3
            assert agent.reconfig.refused is None
            assert agent.gw.devices[0].poll_interval == 2.0
            assert ADDED in {d.id for d in agent.gw.devices}
        # revision 2 was never taken up: nobody answered it
        assert hub.revisions.state(GW).desired == 3


async def test_a_hub_restarted_on_a_changed_file_pushes_it_and_keeps_the_dropped_series(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """The file edited while the hub was down: on start it pushes the change, and the series
    the change dropped are still accepted (their grace), the backlogs taken before it too."""
    from firmware_configs import SITES_DIR
    from tests.sites import shipped_profiles

    profiles = shipped_profiles()
    doc: dict[str, Any] = yaml.safe_load((SITES_DIR / "county.yaml").read_text())
    site, data = tmp_path / "site.yaml", tmp_path / "hub"
    write(site, doc)
    cfg = load_site_config(site, profiles)
    async with running_hub_service(cfg, profiles, data, mosquitto.url, config_path=site) as hub:
        await until(lambda: hub.revisions.state(GW).desired == 1, "revision 1", 10)
    write(site, without(doc, ADDED))
    dropped = SeriesId("dongtang-produce", GW, ADDED, "temperature")
    cfg = load_site_config(site, profiles)
    async with running_hub_service(cfg, profiles, data, mosquitto.url, config_path=site) as hub:
        await until(lambda: hub.revisions.state(GW).desired == 2, "revision 2", 10)
        assert dropped in hub.ingest.allowed[GW]
        assert hub.revisions.state("gw-meilin").desired == 1
