"""Hub ingest throughput with alerts on, in two shapes printed side by side: readings per hub
CPU-second, wall rate, ack latency and the live board's event latency, through a real
Mosquitto into the store, from a load generator that plays N gateways.

For each shape a Mosquitto and the hub (``coldchain hub``) run as their own processes, on a
fresh data directory; this process plays ``--gateways`` gateways of 1,000 room-air series each
(``bench/profiles/bench-100.yaml``, all in one chilled room of 0-4 °C, so every default room
rule watches every series), each publishing pre-encoded batches of ``--batch`` readings with
up to ``--window`` unacknowledged, exactly as agents do, and counts the hub's acks (an ack
means the store committed). Every series gets one reading per round; a round is a step of
simulated reading time, the same in both shapes, chosen so that the storm's excursion lasts
16 min of reading time (past the 5 min warning and 15 min alarm delays, so the readings' own
timestamps fire both); the last round is a minute before now (live readings, not a backlog).

- quiet: every value inside the limits (2.0-2.9 °C): alerts on, no transition;
- storm: every series crosses its high limit in the same round (one instant of reading time,
  so all within a minute), stays above it (6.0-6.9 °C) and recovers (2.0-2.9 °C) for the last
  round: pending, firing and resolved transitions for every series. With fewer than 3 rounds
  per series (small ``--readings``) the excursion is the first round alone.

Measured per shape: hub CPU from /proc for the hub process alone, or the sum of the
hub processes (``--workers``, ``--split``) ("readings per hub CPU-second"; with
``--store victoriametrics`` also VictoriaMetrics' own CPU, started with the flags the store
requires, and the readings per CPU-second of both); wall rate
(acknowledged readings / wall time of the load); ack latency, from just before a batch's
publish to its ack arriving here; with the live board open
(``--board``, default in both shapes so the storm/quiet ratio compares like with like), a
logged-in client on the board's server-sent event stream (``GET /events``, in a thread of
its own) notes each ``tile`` event, and the board latency of a batch is its publish -> the
first event after it (events follow commits; with up to ``--window`` batches in flight per
gateway, the first event may be for an earlier batch). After the load, the hub's alerts API
says how many alerts fired and resolved, proving the storm was one (and the quiet shape
quiet). Targets (issue 12): quiet >= 50,000 readings per hub CPU-second; storm >= 50 % of
quiet.

    .venv/bin/python bench/bench_ingest.py [--shape quiet|storm|both]
        [--store sqlite|victoriametrics] [--board both|storm|none] [--gateways 20]
        [--readings 400000] [--batch 500] [--window 8] [--repeat 3]
        [--state sqlite|postgres] [--workers 1] [--split]

``--state postgres``: the hub's state in a PostgreSQL cluster of the benchmark's own (its CPU
is not counted). With ``--workers 2`` (and ``--store victoriametrics --state postgres``: the
workers share one store and one state) two hub processes split the batches
(``hub.share_group``); the first leads the alerts, judging what both
stored (``coldchain/v1/hub/stored``), and serves the board and the alert counts. With
``--split`` (roles as processes, ``coldchain hub --role``) one process runs the alerts and the
web UI and ``--workers`` more only ingest (on a shared subscription when more than one); the
CPU is every process's. With several hub processes the acks do not wait for the alert
leader (it judges what the others stored after they acknowledged it), so the hub CPU is taken
once the leader has judged every reading acknowledged, and the table says how long after the
last ack that was ("leader judged all").

Each shape runs ``--repeat`` times, the shapes alternating (quiet, storm, quiet, ...), each
run on a fresh broker, hub and data directory; the table is each shape's median run, and
every run's readings per hub CPU-second is printed under it: on a shared machine one run
moves by several per cent from the next.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from bench.bench_store_influx import Victoria
from bench.harness import (
    Procs,
    admin_password,
    cpu_seconds,
    pct,
    peak_rss_mb,
    start_hub,
    start_mosquitto,
    stop,
)
from coldchain.protocol.messages import Batch, decode_ack, encode_batch
from coldchain.protocol.topics import Topics
from coldchain.reading import Reading, SeriesId
from firmware_configs import PROFILES_DIR
from tests import sites
from tests.postgres import PostgresCluster
from tests.services import free_port
from tests.sites import device, gateway, room, site_doc, tcp_bus

HERE = Path(__file__).resolve().parent
DEVICES = 10  # per gateway, 100 points each (bench/profiles/bench-100.yaml)
SERIES = DEVICES * 100  # per gateway
MIN = 60_000
EXCURSION_MS = 16 * MIN  # the storm's time above the limit, in reading time
QUIET_TARGET = 50_000  # readings per hub CPU-second, quiet, alerts on
STORM_TARGET = 0.5  # storm / quiet


def site(
    gateways: int,
    broker: str,
    store: dict[str, object],
    data: Path,
    port: int,
    *,
    hub: dict[str, object] | None = None,
) -> dict[str, object]:
    def devices() -> list[dict[str, object]]:  # fresh dicts per gateway: no YAML aliases
        return [
            device(f"dev{d:03d}", "bench-100", bus="tcp", unit_id=d + 1, room="room")
            for d in range(DEVICES)
        ]

    return site_doc(
        [sites.site("bench", "Bench", [room("room", "Room")])],
        [gateway(f"gw{g:03d}", "bench", [tcp_bus()], devices()) for g in range(gateways)],
        uplink={"broker": broker},
        hub={"data_dir": str(data), "listen": f"127.0.0.1:{port}", "store": store, **(hub or {})},
    )


@dataclass(frozen=True)
class Timeline:
    """Rounds of one reading per series, ``step_ms`` of reading time apart; in the storm,
    rounds ``above[0] <= r < above[1]`` are above the limit."""

    rounds: int
    above: tuple[int, int]
    step_ms: int
    t0_ms: int

    @classmethod
    def of(cls, readings_per_series: int, now_ms: int) -> Timeline:
        r = max(1, readings_per_series)
        above = (1, r - 1) if r >= 3 else (0, 1)
        step = max(MIN, math.ceil(EXCURSION_MS / max(1, above[1] - above[0] - 1)))
        # live readings: the last round a minute before now. (Until the readings were
        # sealed, t0 lay an hour further back; on a sealed store such readings are late ones,
        # a gateway's backlog after an outage: bench/bench_seal.py measures that case.)
        return cls(r, above, step, now_ms - 60_000 - r * step)


def value(shape: str, tl: Timeline, rnd: int, k: int) -> float:
    base = 2.0 + (k % 10) / 10
    if shape == "storm" and tl.above[0] <= rnd < tl.above[1]:
        return base + 4.0
    return base


def batches(
    gw: str, n_batches: int, size: int, shape: str, tl: Timeline
) -> list[tuple[int, bytes]]:
    """Encoded batches, each with the newest reading time in it."""
    series = [
        SeriesId("bench", gw, f"dev{d:03d}", f"t{p:03d}")
        for d in range(DEVICES)
        for p in range(100)
    ]
    out, k = [], 0
    for seq in range(1, n_batches + 1):
        readings = []
        for _ in range(size):
            s, rnd = series[k % SERIES], k // SERIES
            readings.append(Reading(s, tl.t0_ms + rnd * tl.step_ms, value(shape, tl, rnd, k)))
            k += 1
        newest = max(r.ts_ms for r in readings)
        out.append((newest, encode_batch(Batch(gw, "bench", "bench", seq, readings))))
    return out


@dataclass
class Load:
    acked: int = 0
    ack_ms: list[float] = field(default_factory=list)
    published: list[float] = field(default_factory=list)  # perf_counter before each publish
    first_of_round: dict[int, float] = field(default_factory=dict)  # reading ts -> publish
    stalled: str = ""  # why the load stopped before every ack came back
    judge_lag_s: float | None = None  # several hub processes: last ack -> the leader judged all


async def play(
    gw: str,
    port: int,
    payloads: list[tuple[int, bytes]],
    *,
    window: int,
    load: Load,
    size: int,
) -> None:
    topics = Topics()
    sem = asyncio.Semaphore(window)
    sent: dict[int, float] = {}
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"load-{gw}") as client:
        await client.subscribe(topics.topic(gw, "ack"), qos=1)

        async def receive() -> None:
            n = 0
            async for message in client.messages:
                _, seqs = decode_ack(bytes(message.payload))
                now = time.perf_counter()
                n += len(seqs)
                load.acked += len(seqs) * size
                for seq in seqs:
                    t = sent.pop(seq, None)
                    if t is not None:
                        load.ack_ms.append((now - t) * 1000)
                    sem.release()
                if n >= len(payloads):
                    return

        async def send() -> None:
            for seq, (ts, p) in enumerate(payloads, start=1):
                await sem.acquire()
                t = time.perf_counter()
                sent[seq] = t
                load.published.append(t)
                load.first_of_round.setdefault(ts, t)
                await client.publish(topics.topic(gw, "telemetry"), p, qos=1)

        sender = asyncio.create_task(send())
        try:
            await receive()  # ends with the last ack, or raises (the broker dropped us)
        finally:
            sender.cancel()


async def judged(leader: str, count: int, within: float) -> float | None:
    """Seconds until the alert leader at ``leader`` (its base URL) has judged ``count``
    readings (``/metrics``); None if it did not ``within`` seconds."""
    t0 = time.monotonic()
    async with httpx.AsyncClient() as client:
        while time.monotonic() - t0 < within:
            text = (await client.get(f"{leader}/metrics")).text
            m = re.search(r"^coldchain_alerts_readings_judged_total (\S+)$", text, re.M)
            if m is not None and float(m.group(1)) >= count:
                return time.monotonic() - t0
            await asyncio.sleep(0.05)
    return None


async def drive(
    args: argparse.Namespace,
    shape: str,
    port: int,
    hub_pids: list[int],
    store_pid: int | None,
    *,
    leader: str | None = None,
) -> tuple[float, float, float, Load]:
    """Hub CPU (every worker's), the store process's CPU (0 for the embedded SQLite), wall
    time, the load. With ``leader`` (several hub processes: the leader judges what the
    others stored, after they acknowledged it) the CPU is taken once the leader has judged
    every reading acknowledged, and how long after the last ack that was is in the load."""
    per_gw = args.readings // args.gateways // args.batch
    tl = Timeline.of(math.ceil(per_gw * args.batch / SERIES), time.time_ns() // 1_000_000)
    payloads = {
        f"gw{g:03d}": batches(f"gw{g:03d}", per_gw, args.batch, shape, tl)
        for g in range(args.gateways)
    }
    load = Load()
    store0 = cpu_seconds(store_pid) if store_pid else 0.0
    cpu0, w0 = sum(cpu_seconds(p) for p in hub_pids), time.monotonic()
    tasks = [
        asyncio.create_task(play(gw, port, p, window=args.window, load=load, size=args.batch))
        for gw, p in payloads.items()
    ]
    done, pending = await asyncio.wait(
        tasks, timeout=args.timeout, return_when=asyncio.FIRST_EXCEPTION
    )
    wall = time.monotonic() - w0
    if leader is not None and not pending:
        load.judge_lag_s = await judged(leader, load.acked, args.timeout)
    cpu = sum(cpu_seconds(p) for p in hub_pids) - cpu0
    store_cpu = cpu_seconds(store_pid) - store0 if store_pid else 0.0
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    errors = [str(e) for t in done if (e := t.exception()) is not None]
    if pending or errors:  # stalled: what was acknowledged until then
        load.stalled = errors[0] if errors else f"not every ack within {args.timeout:g} s"
    return cpu, store_cpu, wall, load


def login(base: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    token = client.get("/login").headers["X-CSRF-Token"]  # the login form's
    resp = client.post("/login", data={"name": "admin", "password": password, "csrf_token": token})
    if resp.status_code != 303:
        raise RuntimeError(f"login: {resp.status_code}")
    return client


# the tile's last reading time in an event's data (its HTML, JSON-escaped)
LAST_TS = re.compile(r'class=\\?"last\\?">[^<]*<span class=\\?"age\\?" data-ts=\\?"(\d+)')


class BoardWatcher(threading.Thread):
    """The live board's event stream, read in a thread of its own: perf_counter of each
    ``tile`` event, and the tile's last reading time it shows."""

    def __init__(self, base: str, password: str) -> None:
        super().__init__(daemon=True, name="board")
        self.client = login(base, password)
        self.events: list[float] = []
        self.shown: list[tuple[float, int]] = []  # (perf_counter, the tile's last reading)
        self.open = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.client.stream("GET", "/events", timeout=None) as resp:
                resp.raise_for_status()
                self.open.set()
                for line in resp.iter_lines():
                    if line == "event: tile":
                        self.events.append(time.perf_counter())
                    elif line.startswith("data: ") and self.events:
                        m = LAST_TS.search(line)
                        if m is not None:
                            self.shown.append((self.events[-1], int(m.group(1))))
        except (httpx.HTTPError, OSError) as e:
            self.error = e
        finally:
            self.open.set()

    def latencies(self, published: list[float]) -> tuple[list[float], int]:
        """Publish -> the first event after it, ms; and the publishes no event followed."""
        events = sorted(self.events)
        out, missed = [], 0
        for p in published:
            i = bisect.bisect_left(events, p)
            if i == len(events):
                missed += 1
            else:
                out.append((events[i] - p) * 1000)
        return out, missed

    def rounds(self, first_of_round: dict[int, float]) -> list[float]:
        """Per round of reading time: its first batch's publish -> the first event whose
        tile shows that reading time (or a later one), ms."""
        out = []
        for ts, t in sorted(first_of_round.items()):
            seen = next((e for e, last in self.shown if last >= ts), None)
            if seen is not None:
                out.append((seen - t) * 1000)
        return out


def alert_counts(client: httpx.Client) -> tuple[int, int, Counter[str]]:
    """Alerts that fired and that resolved (cancelled ones are not listed), by rule."""
    fired = resolved = 0
    rules: Counter[str] = Counter()
    offset = 0
    while True:
        resp = client.get("/api/alerts", params={"state": "all", "limit": 1000, "offset": offset})
        resp.raise_for_status()
        rows = resp.json()
        for r in rows:
            if r.get("fired_ms") is not None:
                fired += 1
                rules[str(r.get("rule"))] += 1
            if r.get("state") == "resolved":
                resolved += 1
        if len(rows) < 1000:
            return fired, resolved, rules
        offset += 1000


@dataclass
class Result:
    shape: str
    cpu: float
    store_cpu: float
    rss_mb: float
    wall: float
    load: Load
    board: list[float] | None = None
    board_missed: int = 0
    board_events: int = 0
    board_rounds: list[float] | None = None
    fired: int = 0
    resolved: int = 0
    rules: Counter[str] = field(default_factory=Counter)

    @property
    def per_cpu(self) -> float:
        return self.load.acked / self.cpu if self.cpu > 0 else math.nan


def start(
    args: argparse.Namespace, t: Path, procs: Procs, cleanup: list[Any]
) -> tuple[int, int, list[subprocess.Popen[bytes]], str, int | None]:
    """Mosquitto (and VictoriaMetrics) and the hub on a fresh data dir under ``t``, each
    appended to ``procs``; the broker's and the first hub's ports, the hubs, the admin's
    password and VictoriaMetrics' pid. With ``--workers`` N > 1: N hubs on a shared
    subscription (``hub.share_group``), their state in a PostgreSQL cluster of the run's own
    (appended to ``cleanup``), the first leading the alerts (it serves the board)."""
    mport = start_mosquitto(t, procs)
    store: dict[str, object] = {"type": "sqlite"}
    store_pid = None
    if args.store == "victoriametrics":
        vm = Victoria(t / "vm")  # the flags the store needs (retention, dedup)
        procs.append(vm.proc)
        store_pid = vm.proc.pid
        store = {"type": "influx", "url": vm.url}
    shared: dict[str, object] = {}
    if args.state == "postgres":
        cluster = PostgresCluster()
        cleanup.append(cluster)
        state = cluster.database()
        shared["state"] = {"type": "postgres", "url": state.conninfo}
    if args.workers > 1:
        shared["share_group"] = "ingest"
    profiles = ("--profiles", str(PROFILES_DIR), "--profiles", str(HERE / "profiles"))
    hubs, first_port = [], 0
    count = args.workers + (1 if args.split else 0)
    for i in range(count):
        hport = free_port()
        where = t / ("hub" if i == 0 else f"hub{i}")
        where.mkdir(exist_ok=True)
        cfg = site(args.gateways, f"mqtt://127.0.0.1:{mport}", store, where, hport, hub=shared)
        roles: tuple[str, ...] = ()
        if args.split:  # the first the alerts and the web UI, the others ingest
            roles = ("--role", "alerts", "--role", "web") if i == 0 else ("--role", "ingest")
        hubs.append(start_hub(where if i else t, cfg, hport, procs, *profiles, *roles))
        if i == 0:
            first_port = hport
            password = admin_password(t / "hub")
            if count > 1:
                wait_leader(first_port)
    return mport, first_port, hubs, password, store_pid


def wait_leader(port: int, timeout: float = 60) -> None:
    """Until the hub on ``port`` leads the alerts (so it is the one the board follows)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").json()["alerts"] == "leader":
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the first hub does not lead after {timeout:g} s")
        time.sleep(0.1)


def run_shape(args: argparse.Namespace, shape: str, t: Path) -> Result:
    procs: Procs = []
    cleanup: list[Any] = []
    t.mkdir()
    try:
        mport, hport, hubs, password, store_pid = start(args, t, procs, cleanup)
        hub = hubs[0]
        base = f"http://127.0.0.1:{hport}"
        watcher: BoardWatcher | None = None
        if args.board in ("both", shape):
            watcher = BoardWatcher(base, password)
            watcher.start()
            watcher.open.wait(30)
            if watcher.error is not None:
                raise RuntimeError(f"the board's event stream: {watcher.error}")
        time.sleep(1.0)  # the hub subscribes
        pids = [h.pid for h in hubs]
        leader = base if len(hubs) > 1 else None
        cpu, store_cpu, wall, load = asyncio.run(
            drive(args, shape, mport, pids, store_pid, leader=leader)
        )
        result = Result(shape, cpu, store_cpu, peak_rss_mb(hub.pid), wall, load)
        time.sleep(1.0)  # the last transitions and board events
        if watcher is not None:
            result.board, result.board_missed = watcher.latencies(load.published)
            result.board_events = len(watcher.events)
            result.board_rounds = watcher.rounds(load.first_of_round)
        client = login(base, password)
        try:
            result.fired, result.resolved, result.rules = alert_counts(client)
        finally:
            client.close()
        return result
    except BaseException:
        log_path = t / "hub.log"
        if log_path.exists():
            print(log_path.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        stop(procs)
        for thing in cleanup:
            thing.close()


def ms(xs: list[float] | None) -> str:
    if not xs:
        return "-"
    return f"{pct(xs, 50):,.0f} / {pct(xs, 99):,.0f}"


def report(args: argparse.Namespace, results: list[Result]) -> None:
    per_gw = args.readings // args.gateways // args.batch
    tl = Timeline.of(math.ceil(per_gw * args.batch / SERIES), 0)
    print(
        f"# ingest benchmark: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, store {args.store}, {args.gateways} gateways x "
        f"{SERIES} series (one chilled room, 0-4 °C, default rules on), batches of "
        f"{args.batch}, window {args.window}; live board open: {args.board}; "
        f"state {args.state}, "
        + (
            f"roles split: 1 alerts+web process and {args.workers} ingest"
            if args.split
            else f"{args.workers} hub process(es)"
        )
    )
    print(
        f"# {tl.rounds} readings per series, {tl.step_ms / 1000:g} s of reading time apart; "
        f"storm: rounds {tl.above[0]}..{tl.above[1] - 1} above the limit (6.0-6.9 °C), the "
        "rest 2.0-2.9 °C; quiet: all 2.0-2.9 °C"
    )
    rows: list[tuple[str, list[str]]] = [
        ("readings acknowledged", [f"{r.load.acked:,}" for r in results]),
        ("wall time (s)", [f"{r.wall:.2f}" for r in results]),
        ("wall rate (readings/s)", [f"{r.load.acked / r.wall:,.0f}" for r in results]),
        ("hub CPU (s)", [f"{r.cpu:.2f}" for r in results]),
        ("readings per hub CPU-second", [f"{r.per_cpu:,.0f}" for r in results]),
        *(
            [
                ("VictoriaMetrics CPU (s)", [f"{r.store_cpu:.2f}" for r in results]),
                (
                    "readings per hub+store CPU-second",
                    [f"{r.load.acked / (r.cpu + r.store_cpu):,.0f}" for r in results],
                ),
            ]
            if args.store == "victoriametrics"
            else []
        ),
        ("ack latency p50 / p99 (ms)", [ms(r.load.ack_ms) for r in results]),
        *(
            [
                (
                    "leader judged all, after last ack (s)",
                    [
                        "-" if r.load.judge_lag_s is None else f"{r.load.judge_lag_s:.2f}"
                        for r in results
                    ],
                )
            ]
            if any(r.load.judge_lag_s is not None for r in results)
            else []
        ),
        ("hub peak RSS (MB)", [f"{r.rss_mb:,.0f}" for r in results]),
        ("board events", [f"{r.board_events:,}" if r.board is not None else "-" for r in results]),
        ("board event latency p50 / p99 (ms)", [ms(r.board) for r in results]),
        (
            "new reading time -> board p50 / max (ms)",
            [
                f"{pct(r.board_rounds, 50):,.0f} / {max(r.board_rounds):,.0f}"
                if r.board_rounds
                else "-"
                for r in results
            ],
        ),
        (
            "batches with no board event after",
            [f"{r.board_missed:,}" if r.board is not None else "-" for r in results],
        ),
        ("stalled", [r.load.stalled[:19] or "no" for r in results]),
        ("alerts fired / resolved", [f"{r.fired:,} / {r.resolved:,}" for r in results]),
    ]
    print(f"{'':<38}" + "".join(f"{r.shape:>20}" for r in results))
    for label, cells in rows:
        print(f"{label:<38}" + "".join(f"{c:>20}" for c in cells))
    for r in results:
        if r.rules:
            rules = ", ".join(f"{k} {v:,}" for k, v in sorted(r.rules.items()))
            print(f"{r.shape}: fired by rule: {rules}")
    for r in results:
        if r.load.stalled:
            print(
                f"{r.shape}: STALLED ({r.load.stalled}): acks stopped coming back; the "
                "figures are up to the timeout"
            )
    by = {r.shape: r for r in results}
    if "quiet" in by:
        q = by["quiet"].per_cpu
        verdict = "met" if q >= QUIET_TARGET else "MISSED"
        print(f"target quiet >= {QUIET_TARGET:,} readings per hub CPU-second: {q:,.0f}, {verdict}")
        if by["quiet"].fired:
            print("WARNING: the quiet shape fired alerts: it was not quiet")
    if "storm" in by:
        s = by["storm"]
        if s.fired == 0 or s.resolved == 0:
            print("WARNING: the storm fired or resolved no alert: it measured no storm")
    if "quiet" in by and "storm" in by:
        ratio = by["storm"].per_cpu / by["quiet"].per_cpu
        verdict = "met" if ratio >= STORM_TARGET else "MISSED"
        print(
            f"storm / quiet readings per hub CPU-second: {ratio:.1%}; target >= "
            f"{STORM_TARGET:.0%}: {verdict}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--shape", choices=["quiet", "storm", "both"], default="both")
    ap.add_argument("--store", choices=["sqlite", "victoriametrics"], default="sqlite")
    ap.add_argument(
        "--board",
        choices=["both", "storm", "none"],
        default="both",
        help="in which shapes a client keeps the live board's event stream open",
    )
    ap.add_argument("--gateways", type=int, default=20)
    ap.add_argument(
        "--state",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="the hub's state: hub.db, or a PostgreSQL cluster of the benchmark's own",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="hub processes on a shared subscription (hub.share_group); more than 1 needs "
        "--store victoriametrics and --state postgres",
    )
    ap.add_argument(
        "--split",
        action="store_true",
        help="roles as processes: one hub process with --role alerts --role web (the board's) "
        "and --workers more with --role ingest; needs --store victoriametrics and --state "
        "postgres",
    )
    ap.add_argument("--readings", type=int, default=400_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument(
        "--timeout", type=float, default=300, help="give up on a shape after this many seconds"
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each shape, the shapes alternating; the table shows each shape's "
        "median run (by readings per hub CPU-second)",
    )
    args = ap.parse_args()
    if (args.workers > 1 or args.split) and (args.store, args.state) != (
        "victoriametrics",
        "postgres",
    ):
        ap.error(
            "--workers above 1 and --split need --store victoriametrics and --state postgres: "
            "the hub processes share one store and one state"
        )
    shapes = ["quiet", "storm"] if args.shape == "both" else [args.shape]
    runs: dict[str, list[Result]] = {shape: [] for shape in shapes}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for i in range(max(1, args.repeat)):
            for shape in shapes:
                where = Path(tmp) / f"{shape}-{i}"
                runs[shape].append(run_shape(args, shape, where))
                shutil.rmtree(where, ignore_errors=True)
    report(args, [median_run(runs[shape]) for shape in shapes])
    if args.repeat > 1:
        for shape in shapes:
            every = " / ".join(f"{r.per_cpu:,.0f}" for r in runs[shape])
            print(f"{shape}: readings per hub CPU-second, every run in order: {every}")


def median_run(results: list[Result]) -> Result:
    """The run whose readings per hub CPU-second is the median (the lower of the two middle
    ones for an even count)."""
    ordered = sorted(results, key=lambda r: r.per_cpu)
    return ordered[(len(ordered) - 1) // 2]


if __name__ == "__main__":
    main()
