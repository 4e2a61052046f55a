"""``coldchain simulate`` end to end, its control API and the ``simulator.ctl`` client."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from coldchain.cli import main as coldchain_main
from coldchain.config.loader import load_site_config
from coldchain.config.site import RtuBus, TcpBus
from coldchain.profiles.schema import ModbusProfile
from coldchain.reading import Quality
from tests.simkit import load_site, read_point
from tests.sites import device, one_gateway_site, room, rtu_bus, shipped_profiles, tcp_bus

PROFILES = shipped_profiles()
SITE: dict[str, Any] = one_gateway_site(
    site_id="depot",
    site_name="Depot",
    rooms=[room("chill", "Chilled"), room("hall", "Hall", "sorting")],
    buses=[rtu_bus("rs485", "/dev/ttyUSB0", baud=9600), tcp_bus("plc", "10.0.0.9", port=502)],
    devices=[
        device("probe", "xy-md02", bus="rs485", unit_id=1, room="chill"),
        device("line", "sorting-line-plc", bus="plc", unit_id=1, room="hall"),
    ],
)


async def http(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    def call() -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return await asyncio.to_thread(call)


async def start(tmp_path: Path, *extra: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    site = tmp_path / "site.yaml"
    load_site(site, SITE, PROFILES)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coldchain.cli",
        "simulate",
        str(site),
        "--speed",
        "60",
        "--seed",
        "7",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("ready"):
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
        except TimeoutError:
            proc.kill()
            pytest.fail(f"no 'ready' from coldchain simulate; said: {lines}")
        if not line:
            err = await proc.stderr.read() if proc.stderr else b""
            pytest.fail(f"coldchain simulate exited: {lines} {err.decode()}")
        lines.append(line.decode().rstrip())
    return proc, lines


async def stop(proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> str:
    proc.send_signal(sig)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=15)
    assert proc.returncode == 0, f"exit {proc.returncode}: {err.decode()}"
    return out.decode()


async def ctl(url: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator.ctl",
        "--url",
        url,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_simulate_end_to_end(tmp_path: Path) -> None:
    written = tmp_path / "simulated.yaml"
    proc, lines = await start(tmp_path, "--write-config", str(written))
    try:
        url = next(line.split("control: ")[1] for line in lines if "control: " in line)
        assert any("/dev/pts/" in line for line in lines), lines
        assert any("tcp  gw1/plc: 127.0.0.1:" in line for line in lines), lines

        cfg = load_site_config(written, PROFILES)
        rtu_bus, tcp_bus = cfg.gateways[0].buses
        assert isinstance(rtu_bus, RtuBus)
        assert isinstance(tcp_bus, TcpBus)
        profile = PROFILES.get("xy-md02")
        assert isinstance(profile, ModbusProfile)
        probe = profile.point("temperature")
        client = AsyncModbusSerialClient(rtu_bus.port, baudrate=9600, timeout=0.5, retries=0)
        assert await client.connect()
        got = await read_point(client, 1, probe)
        assert got.quality is Quality.GOOD
        assert -1 < (got.value or 0) < 6, "a probe in a chilled room"
        tcp = AsyncModbusTcpClient(tcp_bus.host, port=tcp_bus.port, timeout=0.5, retries=0)
        assert await tcp.connect()
        rr = await tcp.read_holding_registers(0, count=2, device_id=1)
        assert not rr.isError(), "the parcel counter"
        tcp.close()

        code, out, err = await ctl(url, "inject", "silent", "probe")
        assert code == 0, err
        assert json.loads(out) == {"kind": "silent", "target": "gw1/probe"}
        with pytest.raises(ModbusIOException):
            await read_point(client, 1, probe)

        status, state = await http(f"{url}/state")
        assert status == 200
        assert state["faults"] == [{"kind": "silent", "target": "gw1/probe"}]
        assert state["rooms"]["depot/chill"]["class"] == "chilled"
        assert "line" in state["rooms"]["depot/hall"]
        assert state["clock"]["speed"] == 60

        status, answer = await http(f"{url}/faults", "POST", {"kind": "melt", "target": "x"})
        assert status == 400
        assert "no fault kind 'melt'; known: silent, exception" in answer["error"]
        status, answer = await http(
            f"{url}/faults", "POST", {"kind": "power_cut", "target": "freezer"}
        )
        assert (status, answer["error"]) == (
            400,
            "power_cut: no room 'freezer'; known: depot/chill, depot/hall",
        )
        code, _out, err = await ctl(url, "inject", "bad_crc", "line")
        assert code == 1
        assert "bad_crc: device gw1/line is on a tcp bus (CRC is RTU)" in err

        status, answer = await http(f"{url}/faults?kind=silent", "DELETE")
        assert (status, answer) == (200, {"cleared": [{"kind": "silent", "target": "gw1/probe"}]})
        assert (await read_point(client, 1, probe)).quality is Quality.GOOD

        # An XY-MD02 stores a new address at once and answers on it after a power cycle.
        assert not (await client.write_register(0x0101, 9, device_id=1)).isError()
        assert (await read_point(client, 1, probe)).quality is Quality.GOOD
        code, out, err = await ctl(url, "power-cycle", "gw1/probe")
        assert code == 0, err
        assert json.loads(out) == {
            "target": "gw1/probe",
            "applied": ["unit_id"],
            "unit_id": 9,
            "baud": 9600,
        }
        assert (await read_point(client, 9, probe)).quality is Quality.GOOD
        with pytest.raises(ModbusIOException):
            await read_point(client, 1, probe)
        status, answer = await http(f"{url}/power-cycle", "POST", {"target": "gw1/nope"})
        assert status == 404
        assert "no device 'gw1/nope'" in answer["error"]
        client.close()

        status, journal = await http(f"{url}/journal")
        assert "depot/gw1/probe/temperature" in journal["series"]
        code, out, _err = await ctl(url, "journal", "depot/gw1/probe/temperature")
        entries = json.loads(out)["entries"]
        assert code == 0
        assert entries[-1]["value"] is not None
        status, _ = await http(f"{url}/journal/depot/gw1/nothing/here")
        assert status == 404
    finally:
        if proc.returncode is None:
            said = await stop(proc)
            assert "stopped" in said


async def test_simulate_stops_on_sigint(tmp_path: Path) -> None:
    proc, _lines = await start(tmp_path)
    said = await stop(proc, signal.SIGINT)
    assert said.strip().endswith("stopped")


def test_simulate_reports_a_bad_site_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nsites: []\n")
    assert coldchain_main(["simulate", str(bad)]) == 1
    assert "sites" in capsys.readouterr().err


def test_simulate_refuses_a_bad_speed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        coldchain_main(["simulate", "x.yaml", "--speed", "0"])
    assert "must be above 0" in capsys.readouterr().err
