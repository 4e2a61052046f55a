"""What TLS costs on the gateway's uplink: the same telemetry batches sent through a real
Mosquitto over plain MQTT, over TLS (a certificate from ``coldchain ca``) and over mutual TLS
(a client certificate from the same CA, its name the client's identity), side by side in
one run. The agent's side (a publisher process: coldchain's MQTT client sending encoded
batches at QoS 1, ``--window`` in flight) and the hub's side (a subscriber process receiving
them) each measure their own CPU time; the broker's is read from /proc.

    .venv/bin/python bench/bench_tls.py [--batches 2000] [--batch 500] [--repeat 3]

Prints CPU per 1,000 readings on each side, plain, TLS and mutual TLS, medians of
``--repeat`` runs taken alternately, and the ratios to plain.
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
from gateway.ca import init_ca, issue_client, issue_server, write_client, write_crl
from tests.services import MOSQUITTO, free_port

SIDE = textwrap.dedent(
    """
    import asyncio, json, ssl, sys, time
    import aiomqtt
    from coldchain.protocol.messages import Batch, encode_batch
    from coldchain.reading import Reading, SeriesId
    role, port, ca, n, size, window, cert = sys.argv[1:8]
    port, n, size, window = int(port), int(n), int(size), int(window)
    tls = ssl.create_default_context(cafile=ca) if ca != "-" else None
    if cert != "-":
        tls.load_cert_chain(cert + ".crt", cert + ".key")
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


def run_once(
    port: int, ca: str, args: argparse.Namespace, broker_pid: int, certs: Path | None = None
) -> dict[str, float]:
    """One transfer of ``--batches`` batches: CPU seconds of the agent, the hub and the
    broker; ``certs``: the directory of the sides' client certificates (mutual TLS)."""
    side = [sys.executable, "-c", SIDE]
    common = [str(port), ca, str(args.batches), str(args.batch), str(args.window)]

    def cert(role: str) -> str:
        return "-" if certs is None else str(certs / role)

    hub = subprocess.Popen([*side, "hub", *common, cert("hub")], stdout=subprocess.PIPE, text=True)
    assert hub.stdout is not None
    assert hub.stdout.readline().strip() == "ready"
    broker0 = cpu_seconds(broker_pid)
    agent = subprocess.run(
        [*side, "agent", *common, cert("agent")], capture_output=True, text=True, check=True
    )
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
        for role in ("hub", "agent"):
            write_client(tmp / role, issue_client(tmp / "ca", role))
        write_crl(tmp / "ca")
        plain, tls, mutual = free_port(), free_port(), free_port()
        server = f"certfile {issued.cert}\nkeyfile {issued.key}\ntls_version tlsv1.2\n"
        (tmp / "mosquitto.conf").write_text(
            "per_listener_settings false\nallow_anonymous true\nuser root\n"
            f"listener {plain} 127.0.0.1\nset_tcp_nodelay true\n"
            f"listener {tls} 127.0.0.1\nset_tcp_nodelay true\n{server}"
            f"listener {mutual} 127.0.0.1\nset_tcp_nodelay true\n{server}"
            f"cafile {tmp / 'ca' / 'ca.crt'}\nrequire_certificate true\n"
            f"use_identity_as_username true\ncrlfile {tmp / 'ca' / 'crl.pem'}\n"
            "max_packet_size 8388608\n"
        )
        broker = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(tmp / "mosquitto.conf")], stderr=subprocess.DEVNULL
        )
        try:
            wait_port(plain)
            wait_port(tls)
            wait_port(mutual)
            runs: dict[str, list[dict[str, float]]] = {"plain": [], "tls": [], "mutual": []}
            ca = str(tmp / "ca" / "ca.crt")
            for _ in range(args.repeat):
                runs["plain"].append(run_once(plain, "-", args, broker.pid))
                runs["tls"].append(run_once(tls, ca, args, broker.pid))
                runs["mutual"].append(run_once(mutual, ca, args, broker.pid, certs=tmp))
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    readings = args.batches * args.batch
    print(
        f"# TLS benchmark: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; {args.batches} batches of {args.batch} readings, "
        f"{args.window} in flight, QoS 1, through Mosquitto on 127.0.0.1; TLS 1.2+ with "
        f"ECDSA P-256 certificates from coldchain ca (mutual: a client certificate too); "
        f"medians of {args.repeat} runs, alternating"
    )
    print(
        f"{'CPU ms per 1,000 readings':28} {'plain':>8} {'TLS':>8} {'ratio':>6} "
        f"{'mutual':>8} {'ratio':>6}"
    )
    for who in ("agent", "hub", "broker"):
        p, t, m = (
            statistics.median(r[who] for r in runs[k]) / readings * 1e6
            for k in ("plain", "tls", "mutual")
        )
        ratios = [f"{x / p:5.2f}x" if p else "    -" for x in (t, m)]
        print(f"{who:28} {p:8.3f} {t:8.3f} {ratios[0]} {m:8.3f} {ratios[1]}")


if __name__ == "__main__":
    main()
