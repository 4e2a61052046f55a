"""The gateway registry: who is online, when each gateway was last heard, what it reports.

Fed by the retained status topic (``online``, and the last will ``offline``), by health
reports and by telemetry. A gateway that has said nothing for ``health_timeout`` is offline
even if no last will came (a broker restart, a network partition). Kept in the hub's
database so a restarted hub still knows the last state of every gateway.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,            -- online | offline | unknown
    state_since INTEGER,            -- ms
    last_seen INTEGER,              -- ms: status, health or telemetry
    version TEXT,
    health TEXT                     -- the last health report, JSON
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class GatewayState:
    id: str
    state: str
    state_since_ms: int | None
    last_seen_ms: int | None
    version: str | None
    health: dict[str, Any] | None

    @property
    def backlog(self) -> int | None:
        buf = (self.health or {}).get("buffer") or {}
        value = buf.get("pending")
        return int(value) if isinstance(value, int) else None

    def poll_success(self) -> dict[str, float | None]:
        devices = (self.health or {}).get("devices") or {}
        return {
            k: v.get("success")
            for k, v in devices.items()
            if isinstance(v, dict) and "success" in v
        }


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Registry:
    """Gateway states in the hub database (thread-safe; calls are short)."""

    def __init__(self, path: str | Path, gateways: list[str], *, health_timeout_s: float) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.timeout_ms = int(health_timeout_s * 1000)
        for gw in gateways:
            self._db.execute(
                "INSERT OR IGNORE INTO gateways (id, state) VALUES (?, 'unknown')", (gw,)
            )
        self.known = set(gateways)

    def _set(self, gateway: str, **fields: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            sql = f"UPDATE gateways SET {cols} WHERE id = ?"  # noqa: S608 - our column names
            self._db.execute(sql, (*fields.values(), gateway))

    def _state_change(self, gateway: str, state: str, at: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE gateways SET state = ?, state_since = ? WHERE id = ? AND state != ?",
                (state, at, gateway, state),
            )

    def on_status(self, gateway: str, payload: bytes) -> None:
        if gateway not in self.known:
            return
        try:
            msg = json.loads(payload)
            state = msg["state"]
        except (ValueError, KeyError, TypeError):
            return
        if state not in ("online", "offline"):
            return
        at = now_ms()
        self._state_change(gateway, state, at)
        self._set(gateway, version=str(msg.get("version") or ""), last_seen=at)

    def on_health(self, gateway: str, payload: bytes) -> None:
        if gateway not in self.known:
            return
        try:
            msg = json.loads(payload)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        at = now_ms()
        self._set(
            gateway, health=json.dumps(msg), last_seen=at, version=str(msg.get("version") or "")
        )
        self._state_change(gateway, "online", at)

    def on_telemetry(self, gateway: str) -> None:
        if gateway in self.known:
            at = now_ms()
            self._set(gateway, last_seen=at)
            self._state_change(gateway, "online", at)

    def expire(self, at: int | None = None) -> list[str]:
        """Mark gateways silent longer than the health timeout offline; return them."""
        at = at if at is not None else now_ms()
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM gateways WHERE state = 'online' AND last_seen < ?",
                (at - self.timeout_ms,),
            ).fetchall()
        for (gw,) in rows:
            self._state_change(gw, "offline", at)
        return [gw for (gw,) in rows]

    def all(self) -> list[GatewayState]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, state, state_since, last_seen, version, health "
                "FROM gateways ORDER BY id"
            ).fetchall()
        return [
            GatewayState(i, s, since, seen, v or None, json.loads(h) if h else None)
            for i, s, since, seen, v, h in rows
        ]

    def get(self, gateway: str) -> GatewayState | None:
        return next((g for g in self.all() if g.id == gateway), None)

    def close(self) -> None:
        with self._lock:
            self._db.close()
