"""Readings kept twice (issue 18): the line-protocol store writes through a real ``vmagent``
that copies every reading to two real VictoriaMetrics, and reads from whichever answers.

One VictoriaMetrics killed with -9 under load, kept down for a minute
(``COLDCHAIN_VM_OUTAGE_S`` shortens it for local runs) and started again: reads go on from
the other throughout, vmagent's buffer drains into the returning one, and both end up with
every reading exactly once, as written: vmagent's buffer brings what the server missed while
it was down, and the hub's replica keeper (``coldchain/store/lineproto/replicas.py``) what it
lost by the kill. Each server's flags are checked; one down is passed over for reads.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from coldchain.config.site import InfluxStoreSettings
from coldchain.reading import Reading, SeriesId
from coldchain.store.base import StoreConfigError, StoreError
from coldchain.store.lineproto import promql
from coldchain.store.lineproto.store import InfluxStore
from coldchain.store.lineproto.victoria import VictoriaReads
from tests.agentkit import agents, all_series, county
from tests.hubkit import running_hub_service
from tests.services import Broker, until
from tests.victoria import VictoriaMetrics, VmAgent

OUTAGE_S = float(os.environ.get("COLDCHAIN_VM_OUTAGE_S", "60"))
SERIES = [SeriesId("site-a", "gw-1", f"cr{k}", "temperature") for k in range(10)]
Key = tuple[SeriesId, int]
GATEWAY = "gw-centre-cold"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[VictoriaMetrics, VictoriaMetrics, VmAgent]]:
    vms = []
    for name in ("vm1", "vm2"):
        (tmp_path / name / "data").mkdir(parents=True)
        vms.append(VictoriaMetrics(tmp_path / name / "data"))
    (tmp_path / "agent" / "data").mkdir(parents=True)
    agent = VmAgent(tmp_path / "agent" / "data", (vms[0], vms[1]))
    try:
        for vm in vms:
            vm.start()
        agent.start()
        yield vms[0], vms[1], agent
    finally:
        agent.stop()
        for vm in vms:
            vm.stop()


def stored(vm: VictoriaMetrics) -> dict[Key, float | None]:
    """Every temperature sample the server holds, by (series, ts); a doubled one fails."""
    out: dict[Key, float | None] = {}
    for row in vm.export(promql.VALUE):
        sid = promql.series_of(row["metric"])
        assert sid is not None
        for ts, v in zip(row["timestamps"], row["values"], strict=True):
            assert (sid, ts) not in out, f"{sid} at {ts} stored twice on {vm.url}"
            out[(sid, ts)] = v
    return out


@pytest.mark.slow
@pytest.mark.timeout(OUTAGE_S + 300)
async def test_one_victoria_metrics_killed_for_a_minute_under_load_loses_nothing(
    pair: tuple[VictoriaMetrics, VictoriaMetrics, VmAgent],
) -> None:
    vm1, vm2, agent = pair
    store = InfluxStore(url=vm1.url, replicas=[vm2.url], write_url=agent.url, replica_probe_s=1)
    upkeep = asyncio.create_task(store.upkeep())
    t0 = (int(time.time()) - 3 * 3600) * 1000
    written: dict[Key, float | None] = {}
    stop = asyncio.Event()

    async def load() -> None:  # ten series, a reading each every 50 ms of wall time
        rnd = 0
        while not stop.is_set():
            ts = t0 + rnd * 1000
            # values of few digits: VictoriaMetrics keeps about 15 significant ones
            batch = [
                Reading(s, ts, round(2.0 + (rnd % 50) / 100 + k / 1000, 3))
                for k, s in enumerate(SERIES)
            ]
            await store.write(batch)
            written.update({(r.series, r.ts_ms): r.value for r in batch})
            rnd += 1
            await asyncio.sleep(0.05)

    loader = asyncio.create_task(load())
    try:
        await asyncio.sleep(3)
        assert vm1.proc is not None
        vm1.proc.kill()  # -9: no flush
        vm1.proc.wait()
        killed_at = max(ts for _, ts in written)
        down = time.monotonic()
        reads = 0
        while time.monotonic() - down < OUTAGE_S:
            newest = await store.latest(SERIES)  # from vm2: it must answer throughout
            assert set(newest) == set(SERIES)
            reads += 1
            await asyncio.sleep(2)
        assert store._reads.url == vm2.url
        vm2.flush()
        during = await store.raw(SERIES[0], killed_at + 1, t0 + 10**9)
        assert during, "reads from the replica show readings written while vm1 was down"
        vm1.start()
        await asyncio.sleep(3)
    finally:
        stop.set()
        await loader
    deadline = time.monotonic() + 180
    while True:
        vm1.flush()
        vm2.flush()
        on1, on2 = stored(vm1), stored(vm2)
        if set(written) <= set(on1) and set(written) <= set(on2):
            break
        if time.monotonic() > deadline:
            missing1 = sorted(ts for _, ts in set(written) - set(on1))
            missing2 = sorted(ts for _, ts in set(written) - set(on2))
            pytest.fail(
                f"after 180 s: vm1 lacks {len(missing1)} readings "
                f"({missing1[:3]}..{missing1[-3:]}, killed at {killed_at}), vm2 lacks "
                f"{len(missing2)}"
            )
        await asyncio.sleep(2)
    upkeep.cancel()
    assert on1 == written
    assert on2 == written
    assert reads >= OUTAGE_S // 3
    # vm1 lost what it took in during its last seconds (held in memory, killed with -9) while
    # vmagent counted it delivered: only the keeper's mend brought it back, from vm2
    assert store.keeper is not None
    assert [m.added[vm1.url] for m in store.keeper.mended if m.added[vm1.url]], "no mend"
    assert all(m.added[vm2.url] == 0 for m in store.keeper.mended)
    await store.close()


async def test_every_replica_that_answers_is_checked_and_one_down_is_passed_over(
    tmp_path: Path,
) -> None:
    """At start the store checks the flags of every server that answers (a replica started
    with VictoriaMetrics' one-month default would lose readings, so it is refused by name);
    a server that does not answer is passed over for reads, and named if none answers."""
    good, short = tmp_path / "good", tmp_path / "short"
    good.mkdir()
    short.mkdir()
    vm = VictoriaMetrics(good)
    bad = VictoriaMetrics(short, extra_flags=("-retentionPeriod=1",))
    vm.start()
    bad.start()
    try:
        store = InfluxStore(url=vm.url, replicas=[bad.url], write_url=vm.url)
        with pytest.raises(StoreConfigError, match=f"VictoriaMetrics at {bad.url} runs with"):
            await store.check()
        await store.close()
        bad.stop()  # now down: passed over, checked when it answers again
        store = InfluxStore(url=bad.url, replicas=[vm.url], write_url=vm.url)  # no vmagent here
        reading = Reading(SERIES[0], (int(time.time()) - 60) * 1000, 2.5)
        await store.write([reading])
        vm.flush()
        assert await store.raw(SERIES[0], reading.ts_ms, reading.ts_ms + 1) == [reading]
        assert store._reads.url == vm.url
        await store.close()
        vm.stop()
        store = InfluxStore(url=vm.url, replicas=[bad.url], write_url=vm.url)
        with pytest.raises(StoreError) as err:
            await store.check()
        assert f"VictoriaMetrics at {vm.url} is not reachable" in str(err.value)
        assert f"VictoriaMetrics at {bad.url} is not reachable" in str(err.value)
        await store.close()
    finally:
        vm.stop()
        bad.stop()


def test_the_settings_take_vmagent_and_replicas_for_victoria_metrics_only() -> None:
    settings = InfluxStoreSettings(
        url="http://vm1:8428", write_url="http://vmagent:8429", replicas=["http://vm2:8428"]
    )
    store = InfluxStore.from_settings(settings)
    assert store.write_url == "http://vmagent:8429"
    assert isinstance(store._reads, VictoriaReads)
    assert store._reads.urls == ("http://vm1:8428", "http://vm2:8428")
    assert store.write_target == "vmagent at http://vmagent:8429"
    with pytest.raises(ValidationError, match="write_url and replicas are for VictoriaMetrics"):
        InfluxStoreSettings(url="http://influx:8086", flavour="influxdb2", replicas=["http://b"])
    for url in ("vm2:8428", "ftp://vm2", "http://[vm2", "http://vm2:99999"):
        with pytest.raises(ValidationError, match="is not an http:// or https:// URL"):
            InfluxStoreSettings(url="http://vm1:8428", write_url="http://a:8429", replicas=[url])
    with pytest.raises(ValidationError, match="replicas need write_url"):
        InfluxStoreSettings(url="http://vm1:8428", replicas=["http://vm2:8428"])


async def test_a_mend_a_server_refuses_is_logged_and_the_keeper_runs_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The keeper runs inside the hub: a server that refuses its counting query (here one
    whose -search.maxSamplesPerQuery is 1, as a big site's could be) gets a warning, and the
    keeper, and so the hub, runs on and tries again."""
    dirs = [tmp_path / "strict", tmp_path / "plain"]
    for d in dirs:
        d.mkdir()
    strict = VictoriaMetrics(dirs[0], extra_flags=("-search.maxSamplesPerQuery=1",))
    plain = VictoriaMetrics(dirs[1])
    for vm in (strict, plain):
        vm.start()
    try:
        now = (int(time.time()) - 600) * 1000
        for vm in (strict, plain):
            direct = InfluxStore(url=vm.url)
            await direct.write([Reading(SERIES[0], now + i * 1000, 2.5) for i in range(5)])
            await direct.close()
            vm.flush()
        store = InfluxStore(
            url=strict.url, replicas=[plain.url], write_url=strict.url, replica_probe_s=0.1
        )
        keeper = asyncio.create_task(store.upkeep())
        await until(lambda: "mending the replicas failed" in caplog.text, "the warning", 20)
        assert "maxSamplesPerQuery" in caplog.text or "HTTP 422" in caplog.text
        await asyncio.sleep(0.5)
        assert not keeper.done()
        keeper.cancel()
        await store.close()
    finally:
        for vm in (strict, plain):
            vm.stop()


async def test_with_vmagent_down_writes_go_straight_to_the_servers(
    pair: tuple[VictoriaMetrics, VictoriaMetrics, VmAgent], caplog: pytest.LogCaptureFixture
) -> None:
    """vmagent's machine lost: the store writes past it to every server that answers (the
    hub keeps acknowledging), says so, and goes back to vmagent once it is up again;
    every reading ends up on both servers once."""
    vm1, vm2, agent = pair
    store = InfluxStore(url=vm1.url, replicas=[vm2.url], write_url=agent.url, direct_s=1.0)
    t0 = (int(time.time()) - 3600) * 1000
    written: dict[Key, float | None] = {}

    async def write(rounds: range) -> None:
        for rnd in rounds:
            batch = [Reading(s, t0 + rnd * 1000, 2.5) for s in SERIES]
            await store.write(batch)
            written.update({(r.series, r.ts_ms): r.value for r in batch})

    await write(range(10))
    agent.stop()
    await write(range(10, 20))
    assert f"vmagent at {agent.url} is not reachable" in caplog.text
    assert "writing to the servers directly" in caplog.text
    agent.start()
    await asyncio.sleep(1.5)  # past direct_s: vmagent again
    await write(range(20, 30))
    deadline = time.monotonic() + 60
    while True:
        vm1.flush()
        vm2.flush()
        if stored(vm1) == written and stored(vm2) == written:
            break
        assert time.monotonic() < deadline, "not every reading on both servers"
        await asyncio.sleep(1)
    await store.close()


@pytest.mark.slow
async def test_a_hub_configured_so_keeps_every_reading_on_both_servers(
    tmp_path: Path, mosquitto: Broker, pair: tuple[VictoriaMetrics, VictoriaMetrics, VmAgent]
) -> None:
    """The wiring, from the site config: ``hub.store`` with ``write_url`` and ``replicas``
    makes the hub write through vmagent and run the replica keeper beside ingest; a real
    agent's readings land on both servers."""
    vm1, vm2, agent = pair
    settings = InfluxStoreSettings(url=vm1.url, write_url=agent.url, replicas=[vm2.url])
    async with county(tmp_path, mosquitto) as c:
        cfg = c.cfg.model_copy(update={"hub": c.cfg.hub.model_copy(update={"store": settings})})
        expected = all_series(c.cfg, c.profiles, GATEWAY)
        async with (
            running_hub_service(cfg, c.profiles, tmp_path / "hub", mosquitto.url) as hub,
            agents(c, tmp_path, only=[GATEWAY]),
        ):
            store = hub.store
            assert isinstance(store, InfluxStore)
            assert store.write_target == f"vmagent at {agent.url}"
            await until(lambda: store.keeper is not None, "the replica keeper running")

            def on_both() -> bool:
                vm1.flush()
                vm2.flush()
                return all(expected <= {s for s, _ in stored(vm)} for vm in (vm1, vm2))

            await until(on_both, "every series of the gateway on both servers", 60)
