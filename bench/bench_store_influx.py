"""The line-protocol store (coldchain/store/lineproto/store.py) into a real VictoriaMetrics: write
throughput, and a room's 30-day history at 1-min resolution with 30 days loaded.

(a) Writes through ``await store.write`` (the hub's path) in batches of ``--batch``: live
    readings of ``--series`` series on 50 gateways (each batch: one reading of 500 series at
    one minute), with the first-copy look-up on (the default: one export query per batch)
    and off, and the same readings coalesced into writes of 20,000 (what the ingest does when
    readings queue). readings/s is wall time; CPU-s are the Python process's (its worker
    threads included) and VictoriaMetrics' own, from /proc.
(b) One room (temperature, humidity) with ``--days`` days at 1 reading/min per series loaded
    through ``write``; one series' history over those days at 1-min steps (43,200 buckets for
    30 days: five ``query_range`` requests of <= 10,000 points) and at 1-h steps, and for
    comparison the raw export of the same 30 days aggregated in Python (median of
    ``--repeat``).

(c) Readings kept twice: the same live readings written straight into one VictoriaMetrics,
    and through ``vmagent`` into two (``docs/store.md``): readings/s acknowledged by the
    store's writes, and until every server holds every reading; CPU-s of Python and of all
    the servers (vmagent included).

Starts its own VictoriaMetrics (``/usr/bin/victoria-metrics``, Debian package
``victoria-metrics``) on a free port with its data in a temporary directory.

    .venv/bin/python bench/bench_store_influx.py [--readings 200000] [--batch 500]
        [--series 1000] [--days 30] [--repeat 9] [--only writes|history|replicas]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

from coldchain.reading import Reading, SeriesId
from coldchain.store.base import Agg
from coldchain.store.lineproto import promql
from coldchain.store.lineproto.store import InfluxStore

T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
COALESCED = 20_000  # gateway/ingest.py MAX_WRITE
BINARY = "/usr/bin/victoria-metrics"
VMAGENT = "/usr/bin/vmagent"
FLAGS = ["-dedup.minScrapeInterval=1ms", "-retentionPeriod=100y", "-search.latencyOffset=0s"]


class Server:
    """A VictoriaMetrics binary's process of its own, on a free port."""

    def __init__(self, data: Path, binary: str, *flags: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.data = data
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [binary, f"-httpListenAddr=127.0.0.1:{self.port}", *flags, "-loggerLevel=ERROR"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not self._healthy():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"{binary} did not start on {self.url}")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=0.5) as resp:
                return bool(resp.read().strip() == b"OK")
        except OSError:
            return False

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.data.rglob("*") if p.is_file())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Victoria(Server):
    """VictoriaMetrics with the flags the store requires."""

    def __init__(self, data: Path) -> None:
        super().__init__(data, BINARY, f"-storageDataPath={data}", *FLAGS)

    def held(self) -> int:
        """How many temperature samples it holds, all made searchable first."""
        urllib.request.urlopen(self.url + "/internal/force_flush", timeout=10).read()
        query = urllib.parse.urlencode(
            {"query": f"sum(count_over_time({promql.VALUE}[{since_t0_days()}d]))", "nocache": "1"}
        )
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=30) as resp:
            result = json.loads(resp.read())["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0


def since_t0_days() -> int:
    """Days from T0 to now and one more (a look-behind of 100y returns nothing in 1.79)."""
    return int((time.time() * 1000 - T0) // DAY) + 2


class VmAgent(Server):
    """vmagent copying every write to each of ``targets``, its buffer under ``data``."""

    def __init__(self, data: Path, targets: list[Victoria]) -> None:
        urls = [f"-remoteWrite.url={t.url}/api/v1/write" for t in targets]
        super().__init__(data, VMAGENT, f"-remoteWrite.tmpDataPath={data}", *urls)


def live(n: int, n_series: int) -> list[Reading]:
    """Every series read once a minute, each series 50 ms after the previous one."""
    rng = random.Random(1)
    series = [SeriesId("county", f"gw-{i % 50}", f"dev-{i // 50}", "temperature")
              for i in range(n_series)]  # fmt: skip
    return [
        Reading(series[k % n_series], T0 + (k // n_series) * MIN + (k % n_series) * 50,
                round(rng.gauss(3.0, 0.4), 1))
        for k in range(n)
    ]  # fmt: skip


async def write_run(vm: Victoria, readings: list[Reading], batch: int, *, lookup: bool) -> str:
    store = InfluxStore(url=vm.url, first_copy_wins=lookup)
    await store.check()
    cpu, vm_cpu, wall = time.process_time(), vm.cpu_s(), time.perf_counter()
    for i in range(0, len(readings), batch):
        await store.write(readings[i : i + batch])
    wall = time.perf_counter() - wall
    cpu, vm_cpu = time.process_time() - cpu, vm.cpu_s() - vm_cpu
    await store.close()
    n = len(readings)
    return (
        f"| {batch:,} | {'on' if lookup else 'off'} | {n / wall:,.0f} | "
        f"{n / cpu:,.0f} | {n / max(vm_cpu, 1e-9):,.0f} |"
    )


async def writes(args: argparse.Namespace, tmp: Path) -> None:
    print(f"(a) {args.readings:,} live readings of {args.series:,} series on 50 gateways")
    print("| batch | first-copy look-up | readings/s | per Python CPU-s | per VM CPU-s |")
    print("| ---: | --- | ---: | ---: | ---: |")
    readings = live(args.readings, args.series)
    for batch, lookup in [(args.batch, True), (args.batch, False), (COALESCED, True)]:
        data = tmp / f"w-{batch}-{lookup}"
        vm = Victoria(data)
        try:
            print(await write_run(vm, readings, batch, lookup=lookup), flush=True)
        finally:
            vm.stop()
            shutil.rmtree(data)


async def replicated(args: argparse.Namespace, tmp: Path) -> None:
    """The same readings written straight into one VictoriaMetrics, and through vmagent into
    two (readings kept twice): acknowledged, and until every server holds every reading."""
    print(
        f"(c) {args.readings:,} live readings of {args.series:,} series, batches of "
        f"{args.batch:,}, first-copy look-up on"
    )
    print(
        "| path | acknowledged readings/s | held by every server, readings/s | per Python "
        "CPU-s | per servers' CPU-s |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    readings = live(args.readings, args.series)
    n = len(readings)
    for path in ("direct, one server", "vmagent, two servers"):
        vms = [Victoria(tmp / f"{path[:6]}-vm{i}") for i in range(1 if "one" in path else 2)]
        agent = VmAgent(tmp / f"{path[:6]}-agent", vms) if len(vms) > 1 else None
        servers: list[Server] = [*vms, *([agent] if agent else [])]
        try:
            store = InfluxStore(
                url=vms[0].url,
                write_url=agent.url if agent else None,
                replicas=[v.url for v in vms[1:]],
            )
            await store.check()
            cpu, server_cpu = time.process_time(), sum(v.cpu_s() for v in servers)
            wall = time.perf_counter()
            for i in range(0, n, args.batch):
                await store.write(readings[i : i + args.batch])
            acked = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            while any(v.held() < n for v in vms):
                if time.perf_counter() - wall > 300:
                    raise SystemExit(f"{path}: not every reading held after 300 s")
                await asyncio.sleep(0.1)
            held = time.perf_counter() - wall
            server_cpu = sum(v.cpu_s() for v in servers) - server_cpu
            await store.close()
            print(
                f"| {path} | {n / acked:,.0f} | {n / held:,.0f} | {n / cpu:,.0f} | "
                f"{n / max(server_cpu, 1e-9):,.0f} |",
                flush=True,
            )
        finally:
            for v in servers:
                v.stop()


async def median_ms(repeat: int, make: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await make()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def history(args: argparse.Namespace, tmp: Path) -> None:
    vm = Victoria(tmp / "history")
    store = InfluxStore(url=vm.url)
    try:
        rng = random.Random(2)
        room = [SeriesId("town", "gw-1", "cr1-probe", p) for p in ("temperature", "humidity")]
        minutes = args.days * 1440
        readings = [
            Reading(s, T0 + m * MIN + 7_000, round(rng.gauss(2.0 + 80 * j, 0.5), 1))
            for m in range(minutes)
            for j, s in enumerate(room)
        ]
        t = time.perf_counter()
        for i in range(0, len(readings), args.batch):
            await store.write(readings[i : i + args.batch])
        load_s = time.perf_counter() - t
        await store.settle()
        vm.stop()  # a graceful stop writes everything out: measure the disk, then restart
        disk = vm.disk_bytes()
        vm = Victoria(tmp / "history")
        store = InfluxStore(url=vm.url)
        s, end = room[0], T0 + args.days * DAY
        print(
            f"(b) {len(readings):,} readings loaded ({args.days} days x 1/min x 2 series) in "
            f"{load_s:.1f} s; on disk after a graceful stop: {disk / 1e6:.2f} MB "
            f"({disk / len(readings):.2f} bytes/reading)"
        )
        got = await store.range(s, T0, end, MIN, Agg.MEAN)
        assert len(got) == minutes, (len(got), minutes)
        print("| query | buckets | median ms |")
        print("| --- | ---: | ---: |")
        for label, step in [("1-min mean", MIN), ("1-h mean", HOUR)]:

            async def ranged(step: int = step) -> object:
                return await store.range(s, T0, end, step, Agg.MEAN)

            ms = await median_ms(args.repeat, ranged)
            buckets = args.days * DAY // step
            print(f"| {args.days} days, {label} (query_range) | {buckets:,} | {ms:.0f} |")

        async def from_raw() -> None:
            promql.aggregate(await store.raw(s, T0, end), MIN, Agg.MEAN)

        ms = await median_ms(args.repeat, from_raw)
        print(f"| {args.days} days, 1-min mean (raw export + Python) | {minutes:,} | {ms:.0f} |")
        ms = await median_ms(args.repeat, lambda: store.raw(s, T0, end))
        print(f"| {args.days} days raw readings (export) | {minutes:,} readings | {ms:.0f} |")
        ms = await median_ms(args.repeat, lambda: store.latest(room))
        print(f"| latest of the room | 2 series | {ms:.1f} |")
    finally:
        await store.close()
        vm.stop()


async def main(version: str) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--only", choices=["writes", "history", "replicas"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, CPython "
            f"{platform.python_version()}; VictoriaMetrics {version} {' '.join(FLAGS)}; "
            "store: gzip on, 5,000 lines per request, synchronous writes"
        )
        if args.only in (None, "writes"):
            await writes(args, Path(tmp))
        if args.only in (None, "history"):
            await history(args, Path(tmp))
        if args.only in (None, "replicas"):
            await replicated(args, Path(tmp))


def vm_version() -> str:
    """The Debian package's version (its binary reports none)."""
    if not Path(BINARY).exists():
        raise SystemExit(f"{BINARY} not found: apt-get install victoria-metrics")
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "victoria-metrics"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "(version unknown)"
    return out.stdout.strip()


if __name__ == "__main__":
    asyncio.run(main(vm_version()))
