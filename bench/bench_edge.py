"""The agent on a realistic cold-store shape, against the agent of an earlier commit in the
same run: CPU, disk, fsyncs, wire bytes, read-to-hub latency, memory, Modbus requests.

The simulator (its own process) serves ``--devices`` Modbus TCP devices of six points each
(``bench/profiles/bench-6.yaml``: four int16 temperatures in 0.1 °C, a float32 humidity, a
door status word), 100 per TCP endpoint and one per room; the agent polls each every second
with report-on-change off (deadbands 0, max_silence 0: every value is sent) and streams to a
real Mosquitto, where the real hub (``coldchain hub``, SQLite store) acks each batch once
stored. Every ``--door-every`` seconds one room's door is opened or closed through the
simulator's control API (``door_stuck_open``): a door point changes, a state change whose
latency is reported apart from the ordinary readings (each also costs the agent a commit of
its own, so the rate is kept near a busy store's: one every 2 s across 100 rooms).

Each agent (the one of this tree, and the one of ``--baseline``, a git revision checked out
with ``git archive`` into a temporary directory and run on this venv) runs in turn against
the same simulator, broker and hub, each on a fresh outbox, under ``strace`` (seccomp-bpf:
only ``fsync``/``fdatasync`` stop it), for ``--seconds`` measured after ``--warmup``. For
the agent process alone it prints:

- CPU-s per 1,000 points (/proc/PID/stat: the agent's own, with that of any program it
  ran; points = readings that reached the broker);
- fsyncs per second (strace, the calls timed inside the window);
- bytes written to disk per reading (``write_bytes`` of /proc/PID/io);
- bytes on the wire per reading: the MQTT PUBLISH packets of telemetry (fixed header, topic,
  packet id and payload; not TCP/IP or TLS), as a subscriber beside the hub receives them;
  and the hub's acks back, per reading;
- read-to-hub latency p50/p95 (a reading's timestamp, taken when it was read, to its
  arrival at the subscriber beside the hub), ordinary readings and door changes apart;
- peak RSS (VmHWM); Modbus requests per device per poll (the simulator's request count).

Targets (issue 16): <= 0.10 CPU-s per 1,000 points, <= 2 fsyncs/s, <= 150 bytes written per
reading, <= 10 bytes on the wire per reading, door changes p50 <= 50 ms, RSS < 40 MB.

    .venv/bin/python bench/bench_edge.py [--devices 100] [--seconds 60] [--warmup 10]
        [--baseline HEAD~1 | --baseline none] [--door-every 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import yaml

from bench.harness import Procs, cpu_seconds, pct, start_hub, start_mosquitto, stop
from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.topics import Topics
from coldchain.protocol.wire2 import TableCache, decode_any
from firmware_configs import PROFILES_DIR
from tests import sites
from tests.services import free_port
from tests.sites import device, gateway, room, site_doc, tcp_bus

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GATEWAY = "gw-edge"
SITE = "edge"
PER_BUS = 100  # devices behind one TCP endpoint (unit ids 1-100)
PER_ROOM = 1  # a door change is one room's, one device's (as in a store)
POINTS = 6  # bench/profiles/bench-6.yaml


def site(devices: int, broker: str, data: Path, port: int) -> dict[str, object]:
    rooms = math.ceil(devices / PER_ROOM)
    buses = math.ceil(devices / PER_BUS)
    return site_doc(
        [sites.site(SITE, "Edge", [room(f"r{r:03d}", f"Room {r}") for r in range(rooms)])],
        [
            gateway(
                GATEWAY,
                SITE,
                [tcp_bus(f"tcp{b}", "127.0.0.1", max_concurrent=4) for b in range(buses)],
                [
                    device(
                        f"d{i:04d}",
                        "bench-6",
                        bus=f"tcp{i // PER_BUS}",
                        unit_id=i % PER_BUS + 1,
                        room=f"r{i // PER_ROOM:03d}",
                        poll_interval="1s",
                    )
                    for i in range(devices)
                ],
            )
        ],
        uplink={"broker": broker},
        agent={
            "max_silence": "0s",
            "deadband": {"temperature": 0, "humidity": 0},
        },
        hub={"data_dir": str(data), "listen": f"127.0.0.1:{port}"},
    )


# -- what reaches the broker --------------------------------------------------------------
@dataclass
class Seen:
    """What the subscriber beside the hub saw in the measured window."""

    readings: int = 0
    up_bytes: int = 0  # telemetry PUBLISH packets
    down_bytes: int = 0  # acks
    batches: int = 0
    ordinary_ms: list[float] = field(default_factory=list)
    door_ms: list[float] = field(default_factory=list)
    undecodable: int = 0


def publish_packet_bytes(topic: str, payload: bytes, qos: int) -> int:
    """An MQTT 3.1.1 PUBLISH packet's size: fixed header (1 byte and the remaining length's
    varint), the topic with its length, the packet id (QoS > 0) and the payload."""
    rest = 2 + len(topic.encode()) + (2 if qos else 0) + len(payload)
    varint = 1 if rest < 128 else 2 if rest < 16_384 else 3 if rest < 2_097_152 else 4
    return 1 + varint + rest


class Watcher:
    """Subscribes to the gateway's telemetry and acks beside the hub (its own thread and
    loop); counts only while :attr:`seen` is set."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: Seen | None = None
        self._doors: dict[str, float | None] = {}
        self._tables = TableCache()  # protocol 2's series tables, as the hub keeps them
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the watcher did not subscribe")

    async def _run(self) -> None:
        topics = Topics()
        telemetry, acks = topics.topic(GATEWAY, "telemetry"), topics.topic(GATEWAY, "ack")
        async with aiomqtt.Client("127.0.0.1", self.port, identifier="bench-watcher") as c:
            await c.subscribe(telemetry, qos=1)
            await c.subscribe(acks, qos=1)
            self._ready.set()
            with contextlib.suppress(aiomqtt.MqttError):  # the broker stopped: the end
                await self._receive(c, telemetry, acks)

    async def _receive(self, c: aiomqtt.Client, telemetry: str, acks: str) -> None:
        async for m in c.messages:
            now_ms = time.time_ns() / 1e6
            payload = m.payload
            if not isinstance(payload, bytes):
                continue
            topic = m.topic.value
            size = publish_packet_bytes(topic, payload, 1)
            if topic == acks:
                if self.seen is not None:
                    self.seen.down_bytes += size
                continue
            try:  # always, as the hub does: a v2 series table comes before the window
                batch = decode_any(payload, now_ms=int(now_ms), tables=self._tables)
            except ProtocolError:
                batch = None
            seen = self.seen
            if seen is None:
                continue
            seen.up_bytes += size
            seen.batches += 1
            if batch is None:
                seen.undecodable += 1
                continue
            for r in batch.readings:
                seen.readings += 1
                late = now_ms - r.ts_ms
                if r.series.point == "door":
                    before = self._doors.get(r.series.device, r.value)
                    self._doors[r.series.device] = r.value
                    if before != r.value:
                        seen.door_ms.append(late)
                        continue
                seen.ordinary_ms.append(late)

    def start(self) -> None:
        self._doors.clear()  # a new agent: the first door value of each device is no change
        self.seen = Seen()

    def take(self) -> Seen:
        seen, self.seen = self.seen, None
        assert seen is not None
        return seen


# -- the simulator ------------------------------------------------------------------------
class Simulator:
    def __init__(self, tmp: Path, doc: dict[str, object], procs: Procs) -> None:
        (tmp / "site.yaml").write_text(yaml.safe_dump(doc))
        self.control = free_port()
        self.config = tmp / "sim.yaml"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coldchain.cli",
                "simulate",
                str(tmp / "site.yaml"),
                *profile_args(),
                "--write-config",
                str(self.config),
                "--control-port",
                str(self.control),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)  # type: ignore[arg-type]
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ready"):
                break
        else:
            raise RuntimeError("the simulator did not start")
        self.pid = proc.pid

    def _call(self, method: str, path: str, body: dict[str, object] | None = None) -> object:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.control}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def requests(self) -> int:
        state = self._call("GET", "/state")
        assert isinstance(state, dict)
        return sum(int(b.get("requests", 0)) for b in state["endpoints"]["buses"])

    def door(self, room_id: str, *, open_: bool) -> None:
        target = f"{SITE}/{room_id}"
        if open_:
            self._call("POST", "/faults", {"kind": "door_stuck_open", "target": target})
        else:
            self._call("DELETE", f"/faults?kind=door_stuck_open&target={target}")


def profile_args() -> list[str]:
    return ["--profiles", str(PROFILES_DIR), "--profiles", str(HERE / "profiles")]


class DoorFlipper:
    """Opens and closes one room's door after another, every ``every`` seconds."""

    def __init__(self, sim: Simulator, rooms: int, every: float) -> None:
        self.sim, self.rooms, self.every = sim, rooms, every
        self.flips = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.every):
            room_id = f"r{(n // 2) % self.rooms:03d}"
            self.sim.door(room_id, open_=n % 2 == 0)
            self.flips += 1
            n += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# -- one agent ----------------------------------------------------------------------------
@dataclass
class Figures:
    name: str
    points: int
    seconds: float
    cpu: float
    fsyncs: int
    disk_bytes: int
    rss_mb: float
    requests: int
    devices: int
    seen: Seen

    def per_1000(self) -> float:
        return self.cpu / self.points * 1000 if self.points else math.nan

    def row(self) -> dict[str, float]:
        n = max(self.seen.readings, 1)
        return {
            "cpu": self.per_1000(),
            "fsyncs": self.fsyncs / self.seconds,
            "disk": self.disk_bytes / n,
            "wire": self.seen.up_bytes / n,
            "acks": self.seen.down_bytes / n,
            "p50": pct(self.seen.ordinary_ms, 50),
            "p95": pct(self.seen.ordinary_ms, 95),
            "door_p50": pct(self.seen.door_ms, 50),
            "door_p95": pct(self.seen.door_ms, 95),
            "doors": len(self.seen.door_ms),
            "rss": self.rss_mb,
            "requests": self.requests / (self.devices * self.seconds),
            "rate": self.points / self.seconds,
        }


def write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/PID/io")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def child_of(pid: int, timeout: float = 10) -> int:
    """The agent strace started: its child that runs Python with ``coldchain.cli`` (not one
    caught between strace's fork and the exec, which shows the agent's command line too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                running = os.path.basename(os.readlink(f"/proc/{child}/exe"))
                command = Path(f"/proc/{child}/cmdline").read_bytes()
                if running.startswith("python") and b"coldchain.cli" in command:
                    return int(child)
        time.sleep(0.02)
    raise RuntimeError("strace started no agent")


_TS = re.compile(r"^\d+\s+(\d+\.\d+)\s+f(?:data)?sync\(")


def fsyncs_between(trace: Path, t0: float, t1: float) -> int:
    n = 0
    for line in trace.read_text().splitlines():
        m = _TS.match(line)
        if m and t0 <= float(m.group(1)) <= t1:
            n += 1
    return n


@contextlib.contextmanager
def agent(tree: Path, sim_config: Path, data: Path, trace: Path) -> Iterator[int]:
    """The agent of ``tree`` under strace; yields its pid, stops it on the way out."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [
        "strace",
        "-f",
        "--seccomp-bpf",
        "-ttt",
        "-e",
        "trace=fsync,fdatasync",
        "-o",
        str(trace),
        sys.executable,
        "-m",
        "coldchain.cli",
        "agent",
        str(sim_config),
        "--gateway",
        GATEWAY,
        "--data-dir",
        str(data),
        *profile_args(),
    ]
    with (data.parent / f"{data.name}.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=log, stderr=log)
    try:
        pid = child_of(proc.pid)
        try:
            yield pid
        except FileNotFoundError as exc:  # /proc/PID gone: the agent died; say why
            tail = (data.parent / f"{data.name}.log").read_text(errors="replace")[-3000:]
            how = trace.read_text(errors="replace").splitlines()[-3:] if trace.exists() else []
            raise RuntimeError(
                f"the agent of {tree} exited ({exc}; {'; '.join(how)}); its log ends:\n{tail}"
            ) from exc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_of(proc.pid), signal.SIGTERM)
        proc.wait(30)


def agent_cpu(pid: int) -> float:
    """The agent's CPU seconds, with those of the programs it ran (an agent that starts one
    every second pays for it)."""
    return cpu_seconds(pid, children=True)


def measure(
    name: str, tree: Path, tmp: Path, *, sim: Simulator, watcher: Watcher, args: argparse.Namespace
) -> Figures:
    data = tmp / f"agent-{name}"
    trace = tmp / f"strace-{name}.txt"
    with agent(tree, sim.config, data, trace) as pid:
        time.sleep(args.warmup)
        watcher.start()
        t0, cpu0, io0, req0 = time.time(), agent_cpu(pid), write_bytes(pid), sim.requests()
        time.sleep(args.seconds)
        t1, cpu1, io1, req1 = time.time(), agent_cpu(pid), write_bytes(pid), sim.requests()
        seen = watcher.take()
        rss = peak_rss_mb(pid)
    return Figures(
        name=name,
        points=seen.readings,
        seconds=t1 - t0,
        cpu=cpu1 - cpu0,
        fsyncs=fsyncs_between(trace, t0, t1),
        disk_bytes=io1 - io0,
        rss_mb=rss,
        requests=req1 - req0,
        devices=args.devices,
        seen=seen,
    )


def checkout(rev: str, into: Path) -> str:
    """``rev`` of this repository, extracted into ``into``; its short hash."""
    short = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return short


ROWS = [
    ("cpu", "CPU-s per 1,000 points", "{:.3f}", "<= 0.10"),
    ("fsyncs", "fsyncs per second", "{:.1f}", "<= 2"),
    ("disk", "bytes written to disk per reading", "{:,.0f}", "<= 150"),
    ("wire", "bytes on the wire per reading (up)", "{:.1f}", "<= 10"),
    ("acks", "ack bytes per reading (down)", "{:.2f}", ""),
    ("p50", "read-to-hub p50, ordinary (ms)", "{:.0f}", ""),
    ("p95", "read-to-hub p95, ordinary (ms)", "{:.0f}", ""),
    ("door_p50", "read-to-hub p50, door changes (ms)", "{:.0f}", "<= 50"),
    ("door_p95", "read-to-hub p95, door changes (ms)", "{:.0f}", ""),
    ("doors", "door changes seen", "{:.0f}", ""),
    ("rss", "peak RSS (MB)", "{:.1f}", "< 40"),
    ("requests", "Modbus requests per device per poll", "{:.2f}", ""),
    ("rate", "points per second reaching the broker", "{:,.0f}", ""),
]


def report(args: argparse.Namespace, results: list[Figures]) -> None:
    print(
        f"# edge benchmark: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {args.devices} Modbus TCP devices x {POINTS} points "
        f"every 1 s (offered {args.devices * POINTS:,} points/s), {args.seconds:g} s measured "
        f"after {args.warmup:g} s, a door flipped every {args.door_every:g} s"
    )
    rows = [f.row() for f in results]
    head = f"{'':40}" + "".join(f"{f.name:>14}" for f in results)
    if len(results) == 2:
        head += f"{'ratio':>10}"
    print(head + f"  {'target':>8}")
    for key, label, fmt, target in ROWS:
        line = f"{label:40}" + "".join(f"{fmt.format(r[key]):>14}" for r in rows)
        if len(rows) == 2:
            base, new = rows[0][key], rows[1][key]
            ratio = new / base if base and not math.isnan(base) else math.nan
            line += f"{ratio:>10.2f}"
        print(line + f"  {target:>8}")
    for f in results:
        if f.seen.undecodable:
            print(f"# {f.name}: {f.seen.undecodable} telemetry messages the watcher could not read")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--baseline", default="HEAD~1", help="a git revision, or 'none'")
    ap.add_argument("--door-every", type=float, default=2.0)
    args = ap.parse_args()
    procs: Procs = []
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="bench-edge-") as tmp_name:
        tmp = Path(tmp_name)
        trees: list[tuple[str, Path]] = []
        if args.baseline != "none":
            short = checkout(args.baseline, tmp / "baseline")
            trees.append((short, tmp / "baseline"))
        trees.append(("this tree", ROOT))
        try:
            broker = start_mosquitto(tmp, procs)
            hub_port = free_port()
            (tmp / "hub").mkdir()
            doc = site(args.devices, f"mqtt://127.0.0.1:{broker}", tmp / "hub" / "data", hub_port)
            (tmp / "sim").mkdir()
            sim = Simulator(tmp / "sim", doc, procs)
            # the hub on the simulated endpoints: it pushes its config to the gateway
            simulated = yaml.safe_load(sim.config.read_text())
            start_hub(tmp / "hub", simulated, hub_port, procs, *profile_args())
            watcher = Watcher(broker)
            doors = DoorFlipper(sim, math.ceil(args.devices / PER_ROOM), args.door_every)
            try:
                results = [
                    measure(n, t, tmp, sim=sim, watcher=watcher, args=args) for n, t in trees
                ]
            finally:
                doors.close()
        finally:
            stop(procs)
            if os.environ.get("BENCH_EDGE_KEEP"):
                subprocess.run(["cp", "-r", str(tmp), os.environ["BENCH_EDGE_KEEP"]], check=False)
    report(args, results)


if __name__ == "__main__":
    main()
