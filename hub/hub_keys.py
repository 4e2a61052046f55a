"""The hub's own keys, kept in its state so every hub on that state uses the same: the key of
session cookies (a login on one web worker holds on the others) and of acknowledge links and
SMS reply codes (a standby that takes over recognises the codes in messages the leader sent,
and a web worker verifies the links the leader signed).

A key is made once, by whichever hub needs it first (``INSERT ... ON CONFLICT DO NOTHING``,
then read back: two hubs starting together agree). A hub whose data dir holds the key file of
an earlier version (``session.key``, ``link.key``) puts that one in the state, so cookies and
links already handed out stay valid. Reading the state gives these keys, as it gives the
users' password hashes: keep it as closed as the data dir (``docs/security.md``).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from coldchain.statedb import Schema, StateTarget, open_state

SCHEMA = Schema(
    "hub_keys",
    ("CREATE TABLE IF NOT EXISTS hub_keys (name TEXT PRIMARY KEY, value BLOB NOT NULL)",),
)
KEY_BYTES = 32


def shared_key(state: StateTarget, name: str, legacy: Path | None = None) -> bytes:
    """The key ``name`` in ``state``, made (or taken from the ``legacy`` file) if missing."""
    conn = open_state(state, SCHEMA)
    try:
        row = conn.execute("SELECT value FROM hub_keys WHERE name = ?", (name,)).fetchone()
        if row is None:
            value = legacy.read_bytes() if legacy is not None and legacy.exists() else b""
            if len(value) < KEY_BYTES // 2:  # none, or not a key: made anew
                value = secrets.token_bytes(KEY_BYTES)
            conn.begin()
            conn.execute(
                "INSERT INTO hub_keys (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, value),
            )
            conn.commit()
            row = conn.execute("SELECT value FROM hub_keys WHERE name = ?", (name,)).fetchone()
        return bytes(row[0])
    finally:
        conn.close()
