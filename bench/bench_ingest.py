"""Hub ingest throughput: readings per second per core through a real Mosquitto into the
store, from a load generator that plays N gateways.

A Mosquitto and the hub (``coldchain hub``) run as their own processes; this process plays
``--gateways`` gateways, each publishing pre-encoded batches of ``--batch`` readings with up to
``--window`` unacknowledged, exactly as agents do, and counts the hub's acks (an ack means
the store committed). Hub CPU is read from /proc for the hub process alone, so the figure is
readings per hub CPU-second ("per core"). Target (SQLite): >= 50,000 readings/s per core.

    .venv/bin/python bench/bench_ingest.py [--store sqlite|victoriametrics] [--gateways 20]
        [--readings 400000] [--batch 500] [--window 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
import yaml

from coldchain.protocol.messages import Batch, decode_ack, encode_batch
from coldchain.protocol.topics import Topics
from coldchain.reading import Reading, SeriesId
from firmware_configs import PROFILES_DIR
from tests import sites
from tests.sites import device, gateway, room, site_doc, tcp_bus

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
DEVICES = 10  # per gateway, 100 points each (bench/profiles/bench-100.yaml)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def site(gateways: int, broker: str, store: dict[str, object], data: Path) -> dict[str, object]:
    def devices() -> list[dict[str, object]]:  # fresh dicts per gateway: no YAML aliases
        return [
            device(f"dev{d:03d}", "bench-100", bus="tcp", unit_id=d + 1, room="room")
            for d in range(DEVICES)
        ]

    return site_doc(
        [sites.site("bench", "Bench", [room("room", "Room")])],
        [gateway(f"gw{g:03d}", "bench", [tcp_bus()], devices()) for g in range(gateways)],
        uplink={"broker": broker},
        hub={"data_dir": str(data), "listen": f"127.0.0.1:{free_port()}", "store": store},
    )


def batches(gw: str, n_batches: int, size: int, t0: int) -> list[bytes]:
    series = [
        SeriesId("bench", gw, f"dev{d:03d}", f"t{p:03d}")
        for d in range(DEVICES)
        for p in range(100)
    ]
    out, k = [], 0
    for seq in range(1, n_batches + 1):
        readings = []
        for _ in range(size):
            s = series[k % len(series)]
            readings.append(Reading(s, t0 + (k // len(series)) * 1000, 2.0 + (k % 50) / 10))
            k += 1
        out.append(encode_batch(Batch(gw, "bench", "bench", seq, readings)))
    return out


async def play(
    gw: str, port: int, payloads: list[bytes], *, window: int, acked: list[int], size: int
) -> None:
    topics = Topics()
    sem = asyncio.Semaphore(window)
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"load-{gw}") as client:
        await client.subscribe(topics.topic(gw, "ack"), qos=1)
        done = asyncio.Event()

        async def receive() -> None:
            n = 0
            async for message in client.messages:
                _, seqs = decode_ack(bytes(message.payload))
                n += len(seqs)
                acked[0] += len(seqs) * size
                for _ in seqs:
                    sem.release()
                if n >= len(payloads):
                    done.set()
                    return

        task = asyncio.create_task(receive())
        for p in payloads:
            await sem.acquire()
            await client.publish(topics.topic(gw, "telemetry"), p, qos=1)
        await done.wait()
        await task


async def drive(args: argparse.Namespace, port: int, hub_pid: int) -> tuple[float, float, int]:
    per_gw = args.readings // args.gateways // args.batch
    t0 = time.time_ns() // 1_000_000 - 3_600_000
    payloads = {
        f"gw{g:03d}": batches(f"gw{g:03d}", per_gw, args.batch, t0) for g in range(args.gateways)
    }
    acked = [0]
    cpu0, w0 = cpu_seconds(hub_pid), time.monotonic()
    await asyncio.gather(
        *(
            play(gw, port, p, window=args.window, acked=acked, size=args.batch)
            for gw, p in payloads.items()
        )
    )
    return cpu_seconds(hub_pid) - cpu0, time.monotonic() - w0, acked[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", choices=["sqlite", "victoriametrics"], default="sqlite")
    ap.add_argument("--gateways", type=int, default=20)
    ap.add_argument("--readings", type=int, default=400_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    args = ap.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        try:
            mport = free_port()
            (t / "mosquitto.conf").write_text(
                f"listener {mport} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                "max_queued_messages 10000\n"
            )
            procs.append(
                subprocess.Popen(
                    ["/usr/sbin/mosquitto", "-c", str(t / "mosquitto.conf")],
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_port(mport)
            store: dict[str, object] = {"type": "sqlite"}
            if args.store == "victoriametrics":
                vport = free_port()
                procs.append(
                    subprocess.Popen(
                        [
                            shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics",
                            f"-httpListenAddr=127.0.0.1:{vport}",
                            f"-storageDataPath={t / 'vm'}",
                            "-dedup.minScrapeInterval=1ms",
                            "-loggerLevel=ERROR",
                        ],
                        stderr=subprocess.DEVNULL,
                    )
                )
                wait_port(vport)
                store = {"type": "influx", "url": f"http://127.0.0.1:{vport}"}
            cfg = site(args.gateways, f"mqtt://127.0.0.1:{mport}", store, t / "hub")
            (t / "site.yaml").write_text(yaml.safe_dump(cfg))
            hub = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "coldchain.cli",
                    "hub",
                    str(t / "site.yaml"),
                    "--profiles",
                    str(PROFILES_DIR),
                    "--profiles",
                    str(HERE / "profiles"),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            procs.append(hub)
            assert hub.stdout is not None
            hub.stdout.readline()  # "coldchain hub: API ..."
            time.sleep(1.0)  # the hub subscribes
            cpu, wall, acked = asyncio.run(
                asyncio.wait_for(drive(args, mport, hub.pid), timeout=args.timeout)
            )
        except BaseException:
            log = t / "hub.log"
            if log.exists():
                print(log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            for p in reversed(procs):
                p.terminate()
                p.wait()
    print(
        f"# ingest benchmark: {platform.machine()}, Python {platform.python_version()}, "
        f"store {args.store}, {args.gateways} gateways x {DEVICES * 100} series, batches of "
        f"{args.batch}, window {args.window}"
    )
    print(f"acknowledged: {acked:,} readings in {wall:.2f}s = {acked / wall:,.0f} readings/s")
    print(
        f"hub CPU: {cpu:.2f}s = {acked / cpu:,.0f} readings per hub CPU-second "
        f"(target for SQLite >= 50,000)"
    )


if __name__ == "__main__":
    main()
