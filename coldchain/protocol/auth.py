"""Message authentication between a gateway and the hub (defence in depth).

The broker's identities and ACLs (``docs/security.md``) stop a client from publishing an ack
or a notice it has no right to. This stops the same forgeries when the broker is
misconfigured or compromised: provisioning gives each gateway a secret **message key** (32
random bytes) shared with the hub only, and

* every ``ack`` the hub sends carries ``mac``: HMAC-SHA256 over the gateway's id and the
  ack's other fields (``v``, ``epoch``, ``seqs``), cut to 16 bytes. An agent that has a key
  ignores (and counts) an ack whose MAC is missing or does not verify: it never deletes a
  batch on a message the hub did not send;
* every ``alerts`` message an agent sends carries the same kind of ``mac`` over its other
  fields (``v``, ``gw``, ``notices``). The hub, holding that gateway's key, ignores (and
  counts) a notice message whose MAC is missing or does not verify.

The MAC input is the gateway id, a zero byte, and the MessagePack encoding of the message's
map without ``mac``, its keys in the order sent: decoding keeps that order and MessagePack's
encoding of the same values is unique, so the receiver recomputes exactly what was signed.
A gateway without a key (the demo, a site not provisioned) sends and accepts messages
without ``mac``, as protocol v1 always did.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

import msgpack

KEY_BYTES = 32
MAC_BYTES = 16


class MessageKeyError(ValueError):
    """A message key file that is not one."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_text(key: bytes) -> str:
    """A key as its file holds it: hex, one line."""
    return key.hex() + "\n"


def read_key(path: str | Path) -> bytes:
    """The message key in ``path`` (hex, as :func:`key_text` writes it)."""
    text = Path(path).read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise MessageKeyError(f"{path}: not a message key ({KEY_BYTES * 2} hex digits expected)")
    return key


def mac(key: bytes, gateway: str, fields: dict[str, Any]) -> bytes:
    """The MAC of a message's ``fields`` (its map without ``mac``) for ``gateway``."""
    packed: bytes = msgpack.packb(fields, use_bin_type=True)  # as messages.pack encodes
    data = gateway.encode() + b"\0" + packed
    return hmac.new(key, data, hashlib.sha256).digest()[:MAC_BYTES]


def signed(key: bytes | None, gateway: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with their ``mac`` last; unchanged without a key."""
    if key is None:
        return fields
    return {**fields, "mac": mac(key, gateway, fields)}


def verifies(key: bytes, gateway: str, msg: dict[str, Any]) -> bool:
    """Whether ``msg`` (a decoded map) carries a ``mac`` that ``key`` made for ``gateway``."""
    got = msg.get("mac")
    if not isinstance(got, bytes) or len(got) != MAC_BYTES:
        return False
    fields = {k: v for k, v in msg.items() if k != "mac"}
    return hmac.compare_digest(got, mac(key, gateway, fields))
