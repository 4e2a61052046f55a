"""Failover times of the centre's parts that have a second copy (``docs/availability.md``).

(a) Brokers: the example county's two centre gateways (real agents, the simulator's Modbus
    devices polled every second) stream through the first of two real Mosquittos to the
    real hub, which holds a session on both (``uplink.standby_brokers``). The broker the
    agents are on is stopped (SIGTERM), ``--rounds`` times, the other started again each
    time: seconds from the stop until every agent is connected to the other broker, and
    until the hub has stored a reading taken after the stop.
(b) Store reads: two VictoriaMetrics, reads from the first; it is killed (-9): the duration
    of the first ``latest()`` after the kill (the store's retries on the dead server, then
    the other), and of the next (straight to the other), ``--rounds`` times.
(c) The alert leader: two hub processes on one PostgreSQL state (a cluster of the benchmark's
    own, ``tests/postgres.py``); the leader is killed (-9): seconds until the standby says on
    ``/healthz`` that it leads (it then resumes the open alerts), ``--rounds`` times, the
    killed one started again as the next standby.

    .venv/bin/python bench/bench_failover.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from coldchain.reading import Reading, SeriesId
from coldchain.store.lineproto.store import InfluxStore
from tests.agentkit import Recording, agents, county
from tests.hubkit import running_hub_service
from tests.postgres import PostgresCluster
from tests.services import MosquittoProcess, free_port, until
from tests.test_config_warnings import DOOR, site
from tests.victoria import VictoriaMetrics

GATEWAYS = ["gw-centre-cold", "gw-centre-hall"]


def summary(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.2f} s, max {max(xs):.2f} s ({len(xs)} rounds)"


async def brokers(rounds: int, tmp: Path) -> None:
    pair = [MosquittoProcess(tmp / "a"), MosquittoProcess(tmp / "b")]
    sensors_broker = MosquittoProcess(tmp / "sensors")  # the simulated sensors': stays up
    for m in (*pair, sensors_broker):
        m.tmp.mkdir(parents=True)
    urls = [m.start().url for m in pair]
    sensors = sensors_broker.start()
    moved, stored = [], []
    try:
        uplink = {"broker": urls[0], "standby_brokers": [urls[1]]}
        async with (
            county(tmp, sensors, poll="1s", uplink=uplink) as c,
            running_hub_service(c.cfg, c.profiles, tmp / "hub", urls[0]) as hub,
            agents(c, tmp, only=GATEWAYS) as running,
        ):
            recs = [Recording(a) for a in running]
            await until(lambda: all(a.uplink.stats.readings_acked > 0 for a in running), "acks", 60)
            on = 0
            for _ in range(rounds):
                sessions = [a.uplink.stats.connects for a in running]
                t0 = time.monotonic()
                t0_ms = time.time_ns() // 1_000_000
                pair[on].stop()

                def on_the_other(sessions: list[int] = sessions) -> bool:
                    return all(
                        a.uplink.stats.connected and a.uplink.stats.connects > n
                        for a, n in zip(running, sessions, strict=True)
                    )

                await until(on_the_other, "every agent on the other broker", 60)
                moved.append(time.monotonic() - t0)

                async def after_stop(t0_ms: int = t0_ms) -> bool:
                    keys = [k for r in recs for k in r.readings if k[1] > t0_ms]
                    if not keys:
                        return False
                    series, ts = keys[0]
                    return bool(await hub.store.raw(series, ts, ts + 1))

                await until(after_stop, "a reading taken after the stop stored", 60)
                stored.append(time.monotonic() - t0)
                pair[on].start()
                on = 1 - on
                await asyncio.sleep(2)
    finally:
        for m in pair:
            m.stop()
        sensors_broker.stop()
    print(f"(a) broker stopped -> every agent on the other: {summary(moved)}")
    print(f"    broker stopped -> a reading taken after it stored at the hub: {summary(stored)}")


async def store_reads(rounds: int, tmp: Path) -> None:
    first, next_ = [], []
    series = SeriesId("s", "gw", "d", "temperature")
    for i in range(rounds):
        vms = []
        for name in ("vm1", "vm2"):
            (tmp / f"{name}-{i}").mkdir()
            vm = VictoriaMetrics(tmp / f"{name}-{i}")
            vm.start()
            vms.append(vm)
        store = InfluxStore(url=vms[0].url, replicas=[vms[1].url], write_url=vms[0].url)
        reading = Reading(series, (int(time.time()) - 60) * 1000, 3.0)
        await store.write([reading])
        for vm in vms:  # as vmagent would have: on both
            other = InfluxStore(url=vm.url)
            await other.write([reading])
            await other.close()
            vm.flush()
        await store.latest([series])
        assert vms[0].proc is not None
        vms[0].proc.kill()
        vms[0].proc.wait()
        t0 = time.monotonic()
        assert await store.latest([series])
        first.append(time.monotonic() - t0)
        t0 = time.monotonic()
        await store.latest([series])
        next_.append(time.monotonic() - t0)
        await store.close()
        for vm in vms:
            vm.stop()
    print(f"(b) first read after the store's first server was killed: {summary(first)}")
    print(f"    the next read (from the other): {summary(next_)}")


def _healthz(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return str(json.loads(resp.read())["alerts"])
    except OSError:
        return None


def alert_leader(rounds: int, tmp: Path) -> None:
    cluster = PostgresCluster()
    broker = MosquittoProcess(tmp / "mqtt")
    broker.tmp.mkdir(parents=True)
    url = broker.start().url
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports = {"a": free_port(), "b": free_port()}
    try:
        state = cluster.database()
        doc = site([DOOR], defrost={"at": ["02:00"]})
        doc["uplink"] = {"broker": url}
        doc["hub"] = {"state": {"type": "postgres", "url": state.conninfo}}
        config = tmp / "site.yaml"
        config.write_text(yaml.safe_dump(doc), encoding="utf-8")

        def start(name: str) -> None:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "coldchain.cli", "hub", str(config), "--insecure",
                 "--data-dir", str(tmp / name), "--listen", f"127.0.0.1:{ports[name]}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

        def wait(name: str, role: str) -> None:
            deadline = time.monotonic() + 60
            while _healthz(ports[name]) != role:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"hub {name} is not {role} after 60 s")
                time.sleep(0.01)

        start("a")
        wait("a", "leader")
        start("b")
        wait("b", "standby")
        leader, standby = "a", "b"
        took: list[float] = []
        for _ in range(rounds):
            procs[leader].kill()
            t0 = time.monotonic()
            procs[leader].wait()
            wait(standby, "leader")
            took.append(time.monotonic() - t0)
            start(leader)
            wait(leader, "standby")
            leader, standby = standby, leader
        print(
            f"(c) the standby hub leading the alerts after the leader was killed: {summary(took)}"
        )
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
        broker.stop()
        cluster.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(f"# failover: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        await brokers(args.rounds, Path(tmp) / "brokers")
        await store_reads(args.rounds, Path(tmp))
        (Path(tmp) / "leader").mkdir()
        alert_leader(args.rounds, Path(tmp) / "leader")


if __name__ == "__main__":
    asyncio.run(main())
