"""``coldchain demo`` runs the example network and shows its rooms, then stops cleanly."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_the_county_and_stops() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coldchain.cli", "demo", "--duration", "2.5", "--every", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "rtu  gw-centre-cold/rs485-1: /dev/pts/" in out
    assert "tcp  gw-centre-hall/plc: 127.0.0.1:" in out
    assert "control: http://127.0.0.1:" in out
    assert out.count("chengqu-centre/cold-room-1") >= 2  # the table was printed repeatedly
    assert "line running" in out
    assert out.rstrip().endswith("stopped")
