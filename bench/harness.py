"""What the benchmarks that run the hub in its own process share: a Mosquitto and a hub on
free ports in a temporary directory, waiting for them, a process's CPU time from /proc, the
admin's first password, and percentiles. Ports come from ``tests/services.py``, as the
tests' own services do."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.services import MOSQUITTO, free_port, port_open

TICK = os.sysconf("SC_CLK_TCK")

Procs = list[subprocess.Popen[bytes]]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {port}")
        time.sleep(0.05)


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User and system CPU seconds of process ``pid`` (all its threads) so far; with
    ``children``, also of the processes it started and has waited for (a program it runs)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = int(fields[11]) + int(fields[12])
    return (own + (int(fields[13]) + int(fields[14]) if children else 0)) / TICK


def peak_rss_mb(pid: int) -> float:
    """Process ``pid``'s peak resident memory so far (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(xs: Sequence[float], q: float) -> float:
    """The q-th percentile, linear between closest ranks (NaN for no samples)."""
    s = sorted(xs)
    if not s:
        return math.nan
    k = (len(s) - 1) * q / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Seconds per call of ``fn``: the best of five rounds of ``repeat`` calls."""
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t) / repeat)
    return best


def start_mosquitto(tmp: Path, procs: Procs) -> int:
    """A Mosquitto on a free port (anonymous, TCP_NODELAY, deep queues), appended to
    ``procs``; its port once it listens."""
    port = free_port()
    (tmp / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nuser root\nallow_anonymous true\nset_tcp_nodelay true\n"
        "max_queued_messages 10000\n"
    )
    procs.append(
        subprocess.Popen(
            [str(MOSQUITTO), "-c", str(tmp / "mosquitto.conf")], stderr=subprocess.DEVNULL
        )
    )
    wait_port(port)
    return port


def start_hub(
    tmp: Path, cfg: dict[str, Any], port: int, procs: Procs, *args: str
) -> subprocess.Popen[bytes]:
    """``coldchain hub`` on ``cfg`` (written to ``tmp/site.yaml``; it listens on ``port``)
    with ``args``, its log in ``tmp/hub.log``, appended to ``procs``; once it listens."""
    (tmp / "site.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    with (tmp / "hub.log").open("wb") as log:
        hub = subprocess.Popen(
            # the benchmarks' broker is anonymous: --insecure
            [
                sys.executable,
                "-m",
                "coldchain.cli",
                "hub",
                str(tmp / "site.yaml"),
                "--insecure",
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    procs.append(hub)
    wait_port(port)
    return hub


def admin_password(data_dir: Path, timeout: float = 30) -> str:
    """The first admin's password, which a new hub writes to ``<data_dir>/admin-password``."""
    path = data_dir / "admin-password"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the hub wrote no admin-password")
        time.sleep(0.05)
    return path.read_text().strip()


def stop(procs: Procs) -> None:
    """Terminate ``procs``, the last started first, and wait for each."""
    for p in reversed(procs):
        p.terminate()
        p.wait()
