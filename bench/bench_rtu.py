"""An RS-485 line at its physical limit: the agent's poller against the simulator's RTU pty.

Eight XY-MD02 (two input registers each) on one 8N1 line, polled every 50 ms, faster than
the line can carry, so the line is never idle: how long does one transaction take, against
the least the wire allows? A read of two registers is an 8-byte request, 3.5 characters of
turnaround, a 9-byte reply and the 3.5 characters of silence before the next request: 24
characters, 25.0 ms at 9600 baud.

The simulator (its own process, ``coldchain simulate``) sends each reply when it would have
finished arriving on a real line, but asyncio wakes it up to a millisecond late: it counts
that lateness (``late_s`` per bus in ``GET /state``), and the ratio subtracts it:

    ratio = (elapsed - simulator's lateness) / (transactions x wire time)

The simulator's own wake-up on the request (tens of microseconds) is not subtracted: it
counts against the agent. The agent's poller runs in a worker process (this file with
``--worker``) for the working tree and for ``--baseline REV`` (a ``git archive`` of that
revision, run on this venv), in turn against the same simulator, ``--rounds`` times each.
Figures: ratio, raw ratio (nothing subtracted), ms per transaction and the agent's CPU per
transaction. Targets (issue 16): within 5 % of the wire time at 9600, 10 % at 19200.

    .venv/bin/python bench/bench_rtu.py [--bauds 4800,9600,19200] [--seconds 10]
        [--baseline HEAD~1 | --baseline none] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEVICES = 8
POLL = "50ms"
WIRE_CHARS = 8 + 3.5 + 9 + 3.5  # request, turnaround, reply, silence before the next


def site(baud: int) -> dict[str, Any]:
    from tests.sites import device, one_gateway_site, room, rtu_bus

    return one_gateway_site(
        site_id="line",
        gateway_id="gw-line",
        rooms=[room("r", "Room")],
        buses=[rtu_bus("rs485", "/dev/null", baud=baud, timeout="500ms")],
        devices=[
            device(f"p{u}", "xy-md02", bus="rs485", unit_id=u, room="r", poll_interval=POLL)
            for u in range(1, DEVICES + 1)
        ],
    )


# -- the worker: one tree's poller on the line ---------------------------------------------
async def work(args: argparse.Namespace) -> None:
    from coldchain.config.site import AgentSettings, RtuBus, SiteConfig
    from edge_agent.agent import modbus_states_of
    from edge_agent.poller import BusPoller
    from tests.sites import shipped_profiles

    doc = site(args.baud)
    doc["gateways"][0]["buses"][0]["port"] = args.port
    gw = SiteConfig.model_validate(doc).gateways[0]
    bus = gw.buses[0]
    assert isinstance(bus, RtuBus)
    states = modbus_states_of(gw, gw.devices, shipped_profiles(), AgentSettings())
    poller = BusPoller(bus, states, lambda _readings: None)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.sleep(args.warmup)
        late0, done0 = late_s(args.control), sum(d.requests for d in states)
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(args.seconds)
        t1, cpu1 = time.monotonic(), time.process_time()
        done1, late1 = sum(d.requests for d in states), late_s(args.control)
        failed = sum(d.failed_polls for d in states)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        poller.link.close()
    out = {
        "elapsed": t1 - t0,
        "transactions": done1 - done0,
        "late": late1 - late0,
        "cpu": cpu1 - cpu0,
        "failed": failed,
    }
    print(json.dumps(out))


def late_s(control: int) -> float:
    """Seconds the simulator's replies on the line have gone out late, so far."""
    with urllib.request.urlopen(f"http://127.0.0.1:{control}/state", timeout=10) as resp:
        state = json.loads(resp.read())
    (bus,) = [b for b in state["endpoints"]["buses"] if b["type"] == "rtu"]
    return float(bus["late_s"])


# -- the driver ----------------------------------------------------------------------------
class Simulator:
    def __init__(self, tmp: Path, baud: int) -> None:
        from tests.services import free_port

        (tmp / "site.yaml").write_text(yaml.safe_dump(site(baud)))
        self.control = free_port()
        cmd = [sys.executable, "-m", "coldchain.cli", "simulate", str(tmp / "site.yaml")]
        self.proc = subprocess.Popen(
            [*cmd, "--control-port", str(self.control)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("ready"):
                break
        else:
            raise RuntimeError("the simulator did not start")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control}/state", timeout=10) as r:
            state = json.loads(r.read())
        (bus,) = [b for b in state["endpoints"]["buses"] if b["type"] == "rtu"]
        self.path = str(bus["path"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run_worker(tree: Path, sim: Simulator, baud: int, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(HERE / "bench_rtu.py"), "--worker", "--port", sim.path]
    cmd += ["--baud", str(baud), "--control", str(sim.control)]
    cmd += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker of {tree} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def baseline_tree(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def figures(r: dict[str, Any], baud: int) -> tuple[float, float, float, float]:
    wire = WIRE_CHARS * 10 / baud
    n = max(int(r["transactions"]), 1)
    ratio = (r["elapsed"] - r["late"]) / (n * wire)
    raw = r["elapsed"] / (n * wire)
    return ratio, raw, r["elapsed"] / n * 1000, r["cpu"] / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bauds", default="4800,9600,19200")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--baseline", default="HEAD~1", help="a git revision, or 'none'")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", help=argparse.SUPPRESS)
    ap.add_argument("--baud", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--control", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        asyncio.run(work(args))
        return
    bauds = [int(b) for b in args.bauds.split(",")]
    print(
        f"# RS-485 line at its limit: {DEVICES} XY-MD02 on one 8N1 line polled every {POLL}, "
        f"{args.seconds:.0f} s measured x {args.rounds} rounds; {platform.machine()}, "
        f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-rtu-") as tmp_name:
        tmp = Path(tmp_name)
        trees = {"tree": ROOT}
        if args.baseline != "none":
            trees[args.baseline] = baseline_tree(args.baseline, Path(tempfile.mkdtemp(dir=tmp)))
        head = f"{'baud':>6} {'agent':>9} {'wire ms':>8} {'ms/txn':>8} {'ratio':>7}"
        print(head + f" {'raw ratio':>10} {'sim late ms/txn':>16} {'agent CPU us/txn':>17}")
        for baud in bauds:
            sim = Simulator(tmp, baud)
            try:
                runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
                for _ in range(args.rounds):
                    for name, tree in trees.items():
                        runs[name].append(run_worker(tree, sim, baud, args))
            finally:
                sim.stop()
            ratios: dict[str, float] = {}
            for name, results in runs.items():
                per = [figures(r, baud) for r in results]
                ratio = statistics.median(p[0] for p in per)
                ratios[name] = ratio
                late = statistics.median(r["late"] / max(r["transactions"], 1) for r in results)
                failed = sum(r["failed"] for r in results)
                print(
                    f"{baud:>6} {name:>9} {WIRE_CHARS * 10 / baud * 1000:8.2f} "
                    f"{statistics.median(p[2] for p in per):8.2f} {ratio:7.3f} "
                    f"{statistics.median(p[1] for p in per):10.3f} {late * 1000:16.3f} "
                    f"{statistics.median(p[3] for p in per):17.0f}"
                    + (f"  ({failed} failed polls)" if failed else "")
                )
            if len(ratios) == 2:
                base = ratios[args.baseline]
                print(
                    f"{baud:>6} overhead beyond the wire: {(ratios['tree'] - 1) * 100:.1f} % "
                    f"(baseline {(base - 1) * 100:.1f} %)"
                )


if __name__ == "__main__":
    main()
