"""The agent under systemd (``Type=notify``, ``WatchdogSec``; deploy/pi): it says READY once
running, pings the watchdog while its loop turns and its outbox answers, stops pinging when
the outbox hangs (so systemd restarts it), and says STOPPING on the way out. Checked with a
real datagram socket standing where systemd's would."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest

from tests.agentkit import agents, county
from tests.services import Broker, until

GW = "gw-centre-cold"


async def test_the_agent_notifies_systemd_and_its_watchdog_stops_when_it_hangs(
    tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    got: list[str] = []

    def drain() -> list[str]:
        while True:
            try:
                got.append(sock.recv(256).decode())
            except BlockingIOError:
                return got

    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # WatchdogSec=0.2s: a ping every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        async with county(tmp_path, mosquitto, poll="1s") as c:
            async with agents(c, tmp_path, only=[GW]) as (agent,):
                await until(lambda: drain().count("WATCHDOG=1") >= 3, "watchdog pings")
                assert got[0] == "READY=1"

                # the outbox's one thread stuck (a dying SD card): every call queues behind
                hang = threading.Event()
                stuck = asyncio.ensure_future(agent.outbox._run(hang.wait))
                await asyncio.sleep(0.3)  # a ping in flight may still land
                before = drain().count("WATCHDOG=1")
                await asyncio.sleep(0.6)  # six intervals
                assert drain().count("WATCHDOG=1") == before  # silence: systemd restarts it
                hang.set()
                await stuck
                await until(lambda: drain().count("WATCHDOG=1") > before, "pings again")
            await until(lambda: "STOPPING=1" in drain(), "STOPPING on the way out")
    finally:
        sock.close()
