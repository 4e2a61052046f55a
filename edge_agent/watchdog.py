"""systemd's service notifications (``sd_notify``) for the agent's unit (``Type=notify``,
``WatchdogSec=``, ``deploy/pi/``), without a dependency: one datagram to the socket named
by ``NOTIFY_SOCKET``.

The agent says ``READY=1`` once its outbox is open and its tasks start, ``STOPPING=1`` on the
way out, and ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` for as long as its event loop turns
*and* its outbox answers (each ping first reads the outbox's statistics through its worker
thread). A loop blocked by a hung call, or an outbox whose thread is stuck on the SD card,
stops the pings, and systemd restarts the agent (``Restart=always``); the readings already
in the outbox survive the restart. Outside systemd (no ``NOTIFY_SOCKET``) it does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send ``message`` to systemd; False when not run by it (or the socket is gone)."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("systemd notification %r failed: %s", message, exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half systemd's ``WatchdogSec``), or None when no
    watchdog is set for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.01, int(usec) / 2_000_000)
    except ValueError:
        return None


async def keep_alive(alive: Callable[[], Awaitable[object]], interval: float) -> None:
    """Ping the watchdog every ``interval`` seconds, each time after ``alive()`` returns."""
    while True:
        await alive()
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
