"""Telemetry payload: JSON vs MessagePack for the same batch structure.

Prints bytes per reading (what a rural 4G link pays), and encode/decode time per reading
(what a Pi and the hub pay), for batches of the example site's shape: a few dozen series,
values with one decimal (what the sensors give) and some bad readings with reasons.

    .venv/bin/python bench/bench_payload.py
"""

from __future__ import annotations

import functools
import json
import platform
import random
import zlib
from collections.abc import Callable
from typing import Any

import msgpack

from bench.harness import timed


def batch(n: int, rng: random.Random) -> dict[str, Any]:
    series = [[f"dev-{i // 3}", ["temperature", "humidity", "door"][i % 3], 0] for i in range(36)]
    t0 = 1_764_300_000_000
    rows: list[list[Any]] = []
    for k in range(n):
        i = k % len(series)
        ts = t0 + (k // len(series)) * 30_000 + rng.randrange(0, 900)
        if rng.random() < 0.02:
            rows.append([i, ts, None, "b", "probe open"])
        else:
            rows.append([i, ts, round(rng.uniform(-25, 30), 1)])
    return {
        "v": 1,
        "gw": "gw-city-1",
        "site": "city",
        "epoch": "9f2c4d1e",
        "seq": 17,
        "series": series,
        "r": rows,
    }


def json_encode(msg: Any) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


def msgpack_encode(msg: Any) -> bytes:
    data: bytes = msgpack.packb(msg, use_bin_type=True)
    return data


def main() -> None:
    rng = random.Random(1)
    print(
        f"# payload benchmark on {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, msgpack {'.'.join(map(str, msgpack.version))}"
    )
    print(
        f"{'batch':>6} {'format':>8} {'B/reading':>10} {'zlib B/r':>9} "
        f"{'enc us/r':>9} {'dec us/r':>9}"
    )
    for n in (50, 500, 2000):
        msg = batch(n, rng)
        codecs: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
            "json": (json_encode, json.loads),
            "msgpack": (msgpack_encode, msgpack.unpackb),
        }
        sizes = {}
        for name, (enc, dec) in codecs.items():
            data = enc(msg)
            assert dec(data) == msg
            sizes[name] = len(data)
            e = timed(functools.partial(enc, msg), 200) / n * 1e6
            d = timed(functools.partial(dec, data), 200) / n * 1e6
            z = len(zlib.compress(data)) / n
            print(f"{n:>6} {name:>8} {len(data) / n:>10.1f} {z:>9.1f} {e:>9.2f} {d:>9.2f}")
        print(f"{n:>6} {'ratio':>8} {sizes['msgpack'] / sizes['json']:>10.2f}  (msgpack/json size)")


if __name__ == "__main__":
    main()
