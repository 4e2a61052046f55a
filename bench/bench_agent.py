"""Agent CPU per 10,000 points polled and buffered, and peak RSS.

The simulator (its own process, not measured) serves ``--devices`` Modbus TCP devices of 100
int16 points each (bench/profiles/bench-100.yaml); one agent process polls them every
``--interval`` and buffers every reading (report-on-change off: max_silence 0) in its on-disk
outbox. The uplink points at a closed port, so nothing leaves: this measures acquisition,
decoding, filtering and durable buffering. CPU time is read from /proc for the agent alone.
Targets: >= 10,000 points/s per core, RSS < 60 MB.

    .venv/bin/python bench/bench_agent.py [--devices 20] [--interval 100ms] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from firmware_configs import PROFILES_DIR
from tests.sites import device, one_gateway_site, room, tcp_bus

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def buffered(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        # nothing is acked (the uplink has no broker): every reading stored is still there
        return int(con.execute("SELECT sum(n) FROM batches").fetchone()[0] or 0)
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def site(devices: int, interval: str) -> dict[str, object]:
    return one_gateway_site(
        site_id="bench",
        site_name="Bench",
        gateway_id="gw-bench",
        rooms=[room("room", "Room")],
        buses=[tcp_bus("tcp", "127.0.0.1", max_concurrent=4)],
        devices=[
            device(
                f"dev{i:03d}",
                "bench-100",
                bus="tcp",
                unit_id=i,
                room="room",
                poll_interval=interval,
            )
            for i in range(1, devices + 1)
        ],
        uplink={"broker": "mqtt://127.0.0.1:1"},
        agent={"max_silence": "0s", "batch_size": 1000},
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--interval", default="100ms")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    cli = [sys.executable, "-m", "coldchain.cli"]
    profiles = ["--profiles", str(PROFILES_DIR), "--profiles", str(HERE / "profiles")]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "site.yaml").write_text(yaml.safe_dump(site(args.devices, args.interval)))
        sim = subprocess.Popen(
            [
                *cli,
                "simulate",
                str(t / "site.yaml"),
                *profiles,
                "--write-config",
                str(t / "sim.yaml"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert sim.stdout is not None
        for line in sim.stdout:
            if line.startswith("ready"):
                break
        agent = subprocess.Popen(
            [
                *cli,
                "agent",
                str(t / "sim.yaml"),
                "--gateway",
                "gw-bench",
                "--data-dir",
                str(t / "data"),
                *profiles,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        db = t / "data" / "gw-bench.outbox.db"
        try:
            time.sleep(3)  # warm up: start-up, first polls, page cache
            cpu0, n0, w0 = cpu_seconds(agent.pid), buffered(db), time.monotonic()
            time.sleep(args.seconds)
            cpu1, n1, w1 = cpu_seconds(agent.pid), buffered(db), time.monotonic()
            rss = peak_rss_mb(agent.pid)
        finally:
            agent.terminate()
            agent.wait()
            sim.terminate()
            sim.wait()
    points, cpu, wall = n1 - n0, cpu1 - cpu0, w1 - w0
    offered = args.devices * 100 / (float(args.interval.removesuffix("ms")) / 1000)
    print(
        f"# agent benchmark: {platform.machine()}, Python {platform.python_version()}, "
        f"{args.devices} TCP devices x 100 points every {args.interval} "
        f"(offered {offered:,.0f} points/s), {args.seconds:g}s measured"
    )
    print(f"polled and buffered: {points / wall:,.0f} points/s")
    print(
        f"agent CPU: {cpu:.2f}s for {points:,} points = {cpu / points * 10_000:.3f} CPU-s per "
        f"10,000 points = {points / cpu:,.0f} points per CPU-second (target >= 10,000)"
    )
    print(f"agent peak RSS: {rss:.1f} MB (target < 60 MB)")


if __name__ == "__main__":
    main()
