"""Outbox append and drain rates (edge_agent/buffer.py), on this machine's disk.

Append: readings per second stored durably (WAL, synchronous=FULL), one transaction per commit
window of ``--cycle`` readings, cut into batches of ``--batch``. Drain: readings per second
through load_batch + encode + ack (the deletes made every ``--batch``-th ack, as the next
commit window would), the agent's side of draining a backlog (the network and the hub not
included). Target: drain >= 20,000 readings/s.

    .venv/bin/python bench/bench_buffer.py [--readings 200000] [--cycle 100] [--batch 500]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from coldchain.protocol.messages import encode_batch
from coldchain.reading import Reading, SeriesId
from edge_agent.buffer import Outbox


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--cycle", type=int, default=100)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    series = [
        SeriesId("city", "gw1", f"dev-{i // 2}", ("temperature", "humidity")[i % 2])
        for i in range(40)
    ]
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        box = Outbox(Path(tmp) / "outbox.db", site="city", gateway="gw1")
        t0 = 1_764_300_000_000
        cycles = [
            [
                Reading(series[k % 40], t0 + c * 1000 + k, 2.5 + (k % 7) / 10)
                for k in range(args.cycle)
            ]
            for c in range(args.readings // args.cycle)
        ]
        start = time.perf_counter()
        for cycle in cycles:
            box.append(cycle, max_batch=args.batch)
        append_s = time.perf_counter() - start
        size = box.stats().used_bytes
        start, drained, batches = time.perf_counter(), 0, 0
        for seq in box.unacked():
            batch = box.load_batch(seq)
            encode_batch(batch)
            drained += box.ack(batch.epoch, [batch.seq])
            batches += 1
            if batches % args.batch == 0:
                box.flush_acks()
        box.flush_acks()
        drain_s = time.perf_counter() - start
        box.close()
    n = args.readings
    print(
        f"# outbox benchmark: {platform.machine()}, Python {platform.python_version()}, "
        f"{n} readings, {args.cycle} per append, batches of at most {args.batch}"
    )
    print(
        f"append: {n / append_s:,.0f} readings/s ({append_s / (n / args.cycle) * 1e3:.2f} ms "
        f"per durable transaction); {size / n:.1f} bytes/reading on disk"
    )
    print(
        f"drain:  {drained / drain_s:,.0f} readings/s ({batches} batches, load_batch + "
        f"encode + ack); target >= 20,000/s: {'met' if drained / drain_s >= 20_000 else 'MISSED'}"
    )
    assert drained == n, (drained, n)


if __name__ == "__main__":
    main()
