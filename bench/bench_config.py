"""`coldchain config check` on big valid site configs: seconds per MB must stay flat.

Builds valid configs of about 1, 2, 5 and 10 MB from ``firmware_configs/sites/county.yaml``
by repeating its gateways (each copy with its own gateway ids; the devices keep their ids,
which are unique per gateway), checks each with
:func:`coldchain.config.loader.check_site_file` (what the command does: YAML with positions,
the pydantic shapes, the cross-reference checks), and prints CPU seconds per MB and the
ratio to the 1 MB figure; a ratio near 1 at 10 MB means checking is linear in the file's
size. It also times reading the YAML alone (``load_yaml``) and prints the rest (shapes and
checks) separately, so a super-linear step shows where it is. CPU time of this process
(``time.process_time``), best of ``--repeat`` runs, so that other work on a shared machine
moves the figures less.

    .venv/bin/python bench/bench_config.py            # 1, 2, 5 and 10 MB
    .venv/bin/python bench/bench_config.py 1 2 --repeat 3
"""

from __future__ import annotations

import argparse
import platform
import re
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import pydantic
import yaml

from coldchain.config.loader import check_site_file
from coldchain.config.yamlread import HAVE_LIBYAML, load_yaml
from coldchain.profiles.registry import ProfileRegistry
from tests.sites import shipped_profiles

ROOT = Path(__file__).resolve().parent.parent
COUNTY = ROOT / "firmware_configs" / "sites" / "county.yaml"
MB = 1_000_000
T = TypeVar("T")


def _split(text: str) -> tuple[str, str, str]:
    """county.yaml as (head up to and with 'gateways:', the gateway items, the rest)."""
    head, sep, rest = text.partition("\ngateways:\n")
    body, sep2, tail = rest.partition("\ncontacts:\n")
    if not (sep and sep2):
        raise SystemExit("county.yaml no longer has top-level 'gateways:' and 'contacts:'")
    return head + sep, body, sep2 + tail


def big_config(size: int) -> str:
    """A valid site config of at least ``size`` bytes: county.yaml with its gateways
    repeated, each copy's gateway ids suffixed with the copy's number."""
    head, body, tail = _split(COUNTY.read_text(encoding="utf-8"))
    ids = re.compile(r"(\bid: )(gw-[a-z0-9-]+)")
    parts = [head, body]
    total, n = len(head) + len(body) + len(tail), 0
    while total < size:
        n += 1
        copy = ids.sub(rf"\1\2-{n}", body)
        parts.append(copy)
        total += len(copy)
    parts.append(tail)
    return "".join(parts)


def cpu_seconds(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """The least CPU time of ``repeat`` calls of ``fn``, and what it returned."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    assert out is not None
    return best, out


def check(text: str, profiles: ProfileRegistry) -> int:
    """Check ``text`` as the command does; the number of devices in it."""
    result = check_site_file("big.yaml", profiles, text=text)
    if result.config is None:
        raise SystemExit("\n".join(e.format() for e in result.errors[:5]))
    return sum(len(g.devices) for g in result.config.gateways)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=float, default=[1, 2, 5, 10], help="MB")
    parser.add_argument("--repeat", type=int, default=2, help="runs per size (best counts)")
    args = parser.parse_args()
    profiles = shipped_profiles()
    print(
        f"# config check benchmark on {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, PyYAML {yaml.__version__} "
        f"(libyaml {'yes' if HAVE_LIBYAML else 'no'}), pydantic {pydantic.VERSION}; "
        f"CPU seconds, best of {args.repeat}"
    )
    check(big_config(MB // 10), profiles)  # warm-up: pydantic's and the checks' first calls
    print(
        f"{'MB':>5} {'bytes':>11} {'devices':>8} {'total s':>8} {'s/MB':>6} {'ratio':>6} "
        f"{'yaml s/MB':>9} {'ratio':>6} {'rest s/MB':>9} {'ratio':>6}"
    )
    first: tuple[float, float, float] | None = None
    for mb in args.sizes:
        text = big_config(int(mb * MB))
        size = len(text.encode()) / MB
        total, devices = cpu_seconds(partial(check, text, profiles), args.repeat)
        read, _ = cpu_seconds(partial(load_yaml, "big.yaml", text), args.repeat)
        per = (total / size, read / size, (total - read) / size)
        first = first or per
        print(
            f"{mb:>5g} {len(text.encode()):>11,} {devices:>8,} {total:>8.2f} {per[0]:>6.2f} "
            f"{per[0] / first[0]:>6.2f} {per[1]:>9.2f} {per[1] / first[1]:>6.2f} "
            f"{per[2]:>9.2f} {per[2] / first[2]:>6.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
