"""Several ``coldchain hub`` processes on one site config, for the tests that kill one with -9
(the alert leader, ingest workers): each named, with its own data dir and listen port, its
output in ``hub-NAME.log`` beside them; ``/healthz`` and ``/metrics`` read over HTTP."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.services import free_port


class HubProcesses:
    """Hub processes started from ``config`` on ``broker`` (``--insecure``: the tests'
    anonymous Mosquitto)."""

    def __init__(self, tmp_path: Path, config: Path, broker: str | None = None) -> None:
        self.tmp, self.config, self.broker = tmp_path, config, broker
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, roles: Sequence[str] = ()) -> None:
        """Start (or start again, on its data dir and port) hub ``name``, running ``roles``
        (``--role``; all when none)."""
        port = self.ports.setdefault(name, free_port())
        argv = [sys.executable, "-m", "coldchain.cli", "hub", str(self.config), "--insecure"]
        argv += [f"--role={r}" for r in roles]
        argv += ["--data-dir", str(self.tmp / f"hub-{name}"), "--listen", f"127.0.0.1:{port}"]
        if self.broker is not None:
            argv += ["--broker", self.broker]
        with (self.tmp / f"hub-{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        """SIGKILL, and reap it."""
        self.procs[name].kill()
        self.procs[name].wait()

    def get(self, name: str, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.ports[name]}{path}", timeout=2
            ) as resp:
                body: bytes = resp.read()
                return body
        except OSError:  # not up (yet, or any more)
            return None

    def alerts(self, name: str) -> str | None:
        """What ``/healthz`` says of the alerts: ``leader``, ``standby`` or ``off`` (no
        alerts role; None: not up)."""
        health = self.health(name)
        return None if health is None else str(health["alerts"])

    def health(self, name: str) -> dict[str, Any] | None:
        """``/healthz`` (None: not up)."""
        body = self.get(name, "/healthz")
        return None if body is None else dict(json.loads(body))

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def metric(self, name: str, metric: str) -> float | None:
        """One value of ``/metrics``, its labels written out as the exposition does
        (``name{label="x"}``); None: not up."""
        body = self.get(name, "/metrics")
        if body is None:
            return None
        m = re.search(rf"^{re.escape(metric)} (\S+)$", body.decode(), re.MULTILINE)
        assert m is not None, metric
        return float(m.group(1))

    def stop(self) -> dict[str, int]:
        """SIGTERM to each still running; their exit statuses."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        return {name: p.wait(timeout=30) for name, p in self.procs.items()}


def door_paging(
    doc: dict[str, Any], notifier: dict[str, Any], levels: Sequence[dict[str, Any]]
) -> None:
    """Set ``doc`` (a site config) to page ``levels`` through ``notifier`` when a door of
    cold-room-2 stays open over 2 s, and for nothing else (the example county's rooms)."""
    doc["alerts"] = {
        "default_rules": False,
        "linger": "100ms",
        "default_policy": {"alarm": "doors", "warning": "doors"},
        "policies": [{"id": "doors", "levels": list(levels)}],
        "notifiers": [notifier],
    }
    doc["alert_rules"] = [
        {"id": "door-open", "kind": "door_open", "longer_than": "2s", "rooms": ["cold-room-2"]}
    ]
