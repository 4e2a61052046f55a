"""What the message key costs: an ack signed by the hub and verified by the agent, against
the same ack without a MAC, in one run (CPU time, best of several repeats).

    .venv/bin/python bench/bench_message_auth.py [--acks 20000] [--batch 500]

Prints µs per ack on each side, with and without the key (the hub also looks the key up in
its database for each ack, as it runs), and the difference per 1,000 readings at ``--batch``
readings per batch (one ack per batch, as the hub sends them).
TLS is measured by bench/bench_tls.py.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from coldchain.protocol.auth import new_key
from coldchain.protocol.messages import decode_ack, encode_ack
from gateway.keys import GatewayKeys

GW = "gw-centre-cold"
EPOCH = "5f0c9a3b1e2d4c6f"


def best_us(fn: Callable[[int], object], n: int, repeats: int = 5) -> float:
    """µs of CPU per call of ``fn(i)``, the best of ``repeats`` runs of ``n`` calls."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for i in range(n):
            fn(i)
        best = min(best, time.process_time() - t0)
    return best / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acks", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500, help="readings per batch (per ack)")
    args = ap.parse_args()
    key = new_key()
    n = args.acks
    plain = [encode_ack(EPOCH, [i]) for i in range(n)]
    signed = [encode_ack(EPOCH, [i], key=key, gateway=GW) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        keys = GatewayKeys(Path(tmp) / "hub.db")
        keys.create(GW)
        lookup = best_us(lambda _i: keys.get(GW), n)
        keys.close()
    rows = {
        "hub: look up the key (hub.db), encode": (
            best_us(lambda i: encode_ack(EPOCH, [i]), n),
            lookup + best_us(lambda i: encode_ack(EPOCH, [i], key=key, gateway=GW), n),
        ),
        "hub: encode an ack": (
            best_us(lambda i: encode_ack(EPOCH, [i]), n),
            best_us(lambda i: encode_ack(EPOCH, [i], key=key, gateway=GW), n),
        ),
        "agent: decode (and verify) an ack": (
            best_us(lambda i: decode_ack(plain[i]), n),
            best_us(lambda i: decode_ack(signed[i], key=key, gateway=GW), n),
        ),
    }
    print(
        f"# message-key benchmark: {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; {n:,} acks, best of 5; one ack per batch of "
        f"{args.batch} readings; sizes {len(plain[0])} and {len(signed[0])} bytes"
    )
    print(f"{'':36} {'no key':>9} {'with key':>9} {'ratio':>6} {'+ per 1,000 readings':>21}")
    for what, (without, with_key) in rows.items():
        extra_ms = (with_key - without) * (1000 / args.batch) / 1000
        print(
            f"{what:36} {without:8.2f}µs {with_key:8.2f}µs {with_key / without:5.2f}x "
            f"{extra_ms * 1000:17.2f} µs"
        )


if __name__ == "__main__":
    main()
