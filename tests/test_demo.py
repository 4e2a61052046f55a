"""``coldchain demo``: the simulated county, an embedded broker, an agent per gateway and the
hub on SQLite, end to end on one machine; readings reach the store and it stops cleanly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_the_whole_system_and_stops(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "coldchain.cli",
            "demo",
            "--duration",
            "12",
            "--every",
            "5",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(tmp_path / "demo"),
            "--history",
            "0.5",  # half a day: the path, at a tenth of the default week's cost
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "(embedded amqtt)" in out
    assert "at 60x (simulator, agents and hub on one clock)" in out
    assert "rtu  gw-centre-cold/rs485-1: /dev/pts/" in out
    assert "tcp  gw-centre-hall/plc: 127.0.0.1:" in out
    assert re.search(r"hub: http://127\.0\.0\.1:\d+/docs", out)
    stored = [int(n) for n in re.findall(r"hub: (\d+) readings stored", out)]
    assert stored
    assert stored[-1] > 0
    assert stored == sorted(stored)
    assert "0 rejected" in out
    seeded = re.search(r"history: seeded ([\d,]+) simulated readings", out)
    assert seeded, out
    assert int(seeded.group(1).replace(",", "")) > 10_000  # 144 steps of every point
    assert "gw-meilin online" in out
    assert out.rstrip().endswith("stopped")
    assert (tmp_path / "demo" / "hub" / "store.db").exists()


def test_demo_refuses_a_speed_its_rs485_lines_cannot_keep_up_with(tmp_path: Path) -> None:
    """Modbus RTU timing stays real time while the demo's one clock runs --speed times
    faster: at 1000x the 9600 baud lines would need several times their capacity, so the
    demo says so, with the fastest speed this site can run, before starting anything."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "coldchain.cli",
            "demo",
            "--speed",
            "1000",
            "--data-dir",
            str(tmp_path / "demo"),
            "--history",
            "0.5",  # half a day: the path, at a tenth of the default week's cost
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    match = re.search(
        r"--speed 1000 is too fast for bus (gw-[a-z-]+/rs485-1) \(9600 baud\).*"
        r"The fastest this site runs is --speed (\d+)\.",
        result.stdout,
        re.S,
    )
    assert match, result.stdout
    assert 60 <= int(match.group(2)) < 1000  # the default 60x runs
    assert not (tmp_path / "demo" / "hub").exists()
