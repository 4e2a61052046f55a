"""What TLS costs on the gateway's uplink: the same telemetry batches sent through a real
Mosquitto over plain MQTT and over TLS (a certificate from ``coldchain ca``), side by side in
one run. The agent's side (a publisher process: coldchain's MQTT client sending encoded
batches at QoS 1, ``--window`` in flight) and the hub's side (a subscriber process receiving
them) each measure their own CPU time; the broker's is read from /proc.

    .venv/bin/python bench/bench_tls.py [--batches 2000] [--batch 500] [--repeat 3]

Prints CPU per 1,000 readings on each side, plain and TLS, medians of ``--repeat`` runs
taken alternately, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from bench.harness import cpu_seconds, wait_port
from gateway.ca import init_ca, issue_server
from tests.services import MOSQUITTO, free_port

SIDE = textwrap.dedent(
    """
    import asyncio, json, ssl, sys, time
    import aiomqtt
    from coldchain.protocol.messages import Batch, encode_batch
    from coldchain.reading import Reading, SeriesId
    role, port, ca, n, size, window = sys.argv[1:7]
    port, n, size, window = int(port), int(n), int(size), int(window)
    tls = ssl.create_default_context(cafile=ca) if ca != "-" else None
    topic = "coldchain/v1/gw/gw1/telemetry"

    async def main():
        async with aiomqtt.Client("127.0.0.1", port, tls_context=tls, identifier=role,
                                  clean_session=True) as c:
            t0 = time.process_time()
            if role == "hub":
                await c.subscribe(topic, qos=1)
                print("ready", flush=True)
                got = 0
                async for m in c.messages:
                    got += 1
                    if got == n:
                        break
            else:
                series = [SeriesId("s", "gw1", f"d{i % 50}", f"p{i % 10}") for i in range(size)]
                sem = asyncio.Semaphore(window)
                async def one(k):
                    async with sem:
                        rows = [Reading(s, 1_767_225_600_000 + k * 1000 + i, 2.0 + i % 7 / 10)
                                for i, s in enumerate(series)]
                        await c.publish(topic, encode_batch(Batch("gw1", "s", "e", k, rows)),
                                        qos=1)
                await asyncio.gather(*(one(k) for k in range(1, n + 1)))
            print(json.dumps({"cpu": time.process_time() - t0}), flush=True)

    asyncio.run(main())
    """
)


def run_once(port: int, ca: str, args: argparse.Namespace, broker_pid: int) -> dict[str, float]:
    """One transfer of ``--batches`` batches: CPU seconds of the agent, the hub and the
    broker."""
    side = [sys.executable, "-c", SIDE]
    common = [str(port), ca, str(args.batches), str(args.batch), str(args.window)]
    hub = subprocess.Popen([*side, "hub", *common], stdout=subprocess.PIPE, text=True)
    assert hub.stdout is not None
    assert hub.stdout.readline().strip() == "ready"
    broker0 = cpu_seconds(broker_pid)
    agent = subprocess.run([*side, "agent", *common], capture_output=True, text=True, check=True)
    hub_out = hub.stdout.readline()
    hub.wait(timeout=60)
    return {
        "agent": json.loads(agent.stdout)["cpu"],
        "hub": json.loads(hub_out)["cpu"],
        "broker": cpu_seconds(broker_pid) - broker0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=500, help="readings per batch")
    ap.add_argument("--window", type=int, default=8, help="batches in flight (agent.max_in_flight)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        init_ca(tmp / "ca")
        issued = issue_server(tmp / "ca", ["127.0.0.1"], tmp / "server")
        plain, tls = free_port(), free_port()
        (tmp / "mosquitto.conf").write_text(
            "per_listener_settings false\nallow_anonymous true\nuser root\n"
            f"listener {plain} 127.0.0.1\nset_tcp_nodelay true\n"
            f"listener {tls} 127.0.0.1\nset_tcp_nodelay true\n"
            f"certfile {issued.cert}\nkeyfile {issued.key}\ntls_version tlsv1.2\n"
            "max_packet_size 8388608\n"
        )
        broker = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(tmp / "mosquitto.conf")], stderr=subprocess.DEVNULL
        )
        try:
            wait_port(plain)
            wait_port(tls)
            runs: dict[str, list[dict[str, float]]] = {"plain": [], "tls": []}
            for _ in range(args.repeat):
                runs["plain"].append(run_once(plain, "-", args, broker.pid))
                runs["tls"].append(run_once(tls, str(tmp / "ca" / "ca.crt"), args, broker.pid))
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    readings = args.batches * args.batch
    print(
        f"# TLS benchmark: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; {args.batches} batches of {args.batch} readings, "
        f"{args.window} in flight, QoS 1, through Mosquitto on 127.0.0.1; TLS 1.2+ with an "
        f"ECDSA P-256 certificate from coldchain ca; medians of {args.repeat} runs, alternating"
    )
    print(f"{'CPU ms per 1,000 readings':28} {'plain':>8} {'TLS':>8} {'ratio':>6}")
    for who in ("agent", "hub", "broker"):
        p = statistics.median(r[who] for r in runs["plain"]) / readings * 1e6
        t = statistics.median(r[who] for r in runs["tls"]) / readings * 1e6
        print(f"{who:28} {p:8.3f} {t:8.3f} {t / p:5.2f}x")


if __name__ == "__main__":
    main()
