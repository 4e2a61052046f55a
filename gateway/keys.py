"""The gateways' message keys at the hub (in the hub database), shared with each gateway
through its bundle: the hub signs its acks with them and checks the gateways' edge notices
(:mod:`coldchain.protocol.auth`). Written by ``coldchain gateway provision`` (a new key) and
``revoke`` (deleted) in their own process; read by the running hub on each use, so a change
takes effect at once. A gateway without a key is not authenticated (the demo, a site not
provisioned)."""

from __future__ import annotations

import threading
import time

from coldchain.protocol.auth import new_key
from coldchain.statedb import Schema, StateTarget, open_state

SCHEMA = Schema(
    "gateway_keys",
    (
        """CREATE TABLE IF NOT EXISTS gateway_keys (
            gateway TEXT PRIMARY KEY,
            key BLOB NOT NULL,          -- 32 bytes, shared with the gateway only
            created_ms INTEGER NOT NULL
        ) WITHOUT ROWID""",
    ),
)


class GatewayKeys:
    """Message keys by gateway id (thread-safe; each call one short statement)."""

    def __init__(self, path: StateTarget) -> None:
        self._db = open_state(path, SCHEMA)
        self._lock = threading.Lock()

    def get(self, gateway: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key FROM gateway_keys WHERE gateway = ?", (gateway,)
            ).fetchone()
        return bytes(row[0]) if row else None

    def create(self, gateway: str) -> bytes:
        """A new key for ``gateway``, replacing any it had."""
        key = new_key()
        with self._lock:
            self._db.execute(
                "INSERT INTO gateway_keys (gateway, key, created_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (gateway) DO UPDATE SET key = excluded.key, "
                "created_ms = excluded.created_ms",
                (gateway, key, time.time_ns() // 1_000_000),
            )
        return key

    def delete(self, gateway: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM gateway_keys WHERE gateway = ?", (gateway,))
        return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
