"""Telemetry protocol v1 against v2 (coldchain/protocol/wire2.py), as the agent encodes and the
hub decodes and checks them: bytes per reading (the 4G bill), encode µs per reading (the
Pi), decode µs per reading (the hub, all checks included), v2 with the series table the hub
already holds and, for the first batch, with the table carried.

Two shapes of 500 readings: a second of a cold store (84 devices of four int16 x 0.1
temperatures, a float32 humidity and a door, polled 7 ms apart), and the example site's mix
(values with one decimal, noisy, 2 % bad readings with reasons, timestamps jittered).

    .venv/bin/python bench/bench_wire.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import platform
import random
from functools import partial

from bench.harness import timed
from coldchain.protocol.messages import Batch, decode_batch, encode_batch
from coldchain.protocol.wire2 import Encoder, TableCache, decode_any
from coldchain.reading import Quality, Reading, SeriesId

NOW = 1_764_300_000_000


def cold_store(seq: int) -> Batch:
    readings = []
    for d in range(84):
        ts = NOW - 60_000 + seq * 1000 + d * 7
        for n, point in enumerate(("air", "product", "condenser", "evaporator")):
            value = round(-18.5 + n + d / 10 + random.uniform(-0.3, 0.3), 1)
            readings.append(Reading(SeriesId("s", "gw", f"d{d:03d}", point), ts, value))
        readings.append(
            Reading(SeriesId("s", "gw", f"d{d:03d}", "humidity"), ts, 65.30000305175781)
        )
        readings.append(Reading(SeriesId("s", "gw", f"d{d:03d}", "door"), ts, 0.0))
    return Batch("gw", "s", "e1", seq, readings[:500])


def example_site(seq: int, rng: random.Random) -> Batch:
    readings = []
    for k in range(500):
        sid = SeriesId("s", "gw", f"dev-{k % 36 // 3}", ("temperature", "humidity", "door")[k % 3])
        ts = NOW - 600_000 + (k // 36) * 30_000 + rng.randrange(0, 900)
        if rng.random() < 0.02:
            readings.append(Reading(sid, ts, None, Quality.BAD, "probe open"))
        else:
            readings.append(Reading(sid, ts, round(rng.uniform(-25, 30), 1)))
    return Batch("gw", "s", "e1", seq, readings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    random.seed(1)
    print(f"# wire benchmark: {platform.machine()}, Python {platform.python_version()}")
    print(f"{'shape':>12} {'format':>14} {'B/reading':>10} {'enc us/r':>9} {'dec us/r':>9}")
    for name, batch in (
        ("cold store", cold_store(1)),
        ("example site", example_site(1, random.Random(2))),
    ):
        n = len(batch.readings)
        v1 = encode_batch(batch)
        assert decode_batch(v1, now_ms=NOW).readings == batch.readings
        e1 = timed(partial(encode_batch, batch), args.repeat) / n * 1e6
        d1 = timed(partial(decode_any, v1, now_ms=NOW), args.repeat) / n * 1e6
        print(f"{name:>12} {'v1':>14} {len(v1) / n:>10.1f} {e1:>9.2f} {d1:>9.2f}")
        enc, hub = Encoder(), TableCache()
        first, _ = enc.encode(batch, known=None)
        assert decode_any(first, now_ms=NOW, tables=hub).readings == batch.readings
        steady, carried = enc.encode(batch, known=enc.digest)
        assert not carried
        e2 = timed(partial(enc.encode, batch, known=enc.digest), args.repeat) / n * 1e6
        d2 = timed(partial(decode_any, steady, now_ms=NOW, tables=hub), args.repeat) / n * 1e6
        print(f"{name:>12} {'v2':>14} {len(steady) / n:>10.1f} {e2:>9.2f} {d2:>9.2f}")
        print(f"{name:>12} {'v2, with table':>14} {len(first) / n:>10.1f}")


if __name__ == "__main__":
    main()
