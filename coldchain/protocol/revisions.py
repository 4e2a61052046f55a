"""Configuration revisions pushed from the centre, and the gateway's answer.

The hub publishes each gateway's slice of the site config (:mod:`coldchain.config.slices`)
as a retained message on its ``config`` topic; the agent answers on ``config/ack``::

    {"v": 1, "rev": 7, "sha256": "9f2c...", "slice": "{...canonical JSON...}", "mac": ...}
                                                                      (config, MessagePack)
    {"v": 1, "rev": 7, "ok": true, "restart": ["agent.data_dir"]}     (config/ack)
    {"v": 1, "rev": 7, "ok": false, "error": "bus rs485: /dev/ttyUSB9: cannot open"}

``rev`` counts up per gateway; an agent applies a revision only if it is newer than the last
it applied or refused, so the retained message a reconnecting gateway gets is the latest,
and an older one is never taken up again. ``sha256`` is the digest of the slice's text,
checked on receipt. With a message key the revision carries a MAC like an ack
(:mod:`coldchain.protocol.auth`): an agent that has a key applies only what the hub signed.
Both directions are bounded and checked field by field; ``restart`` names what of the
revision the agent takes up only when it next starts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from coldchain.protocol import VERSION
from coldchain.protocol.auth import signed, verifies
from coldchain.protocol.messages import ProtocolError, pack, unpack

MAX_CONFIG_BYTES = 1024 * 1024  # a gateway of 247 devices with its profiles fits many times
MAX_ACK_BYTES = 4096
MAX_ERROR_CHARS = 500
MAX_REV = 2**53


@dataclass(frozen=True, slots=True)
class Revision:
    rev: int
    sha256: str
    text: str  # the slice, canonical JSON


@dataclass(frozen=True, slots=True)
class ConfigAck:
    rev: int
    ok: bool
    error: str | None = None
    restart: tuple[str, ...] = field(default=())


def encode_revision(rev: int, text: str, *, key: bytes | None = None, gateway: str = "") -> bytes:
    sha = hashlib.sha256(text.encode()).hexdigest()
    return pack(signed(key, gateway, {"v": VERSION, "rev": rev, "sha256": sha, "slice": text}))


def decode_revision(data: bytes, *, key: bytes | None = None, gateway: str = "") -> Revision:
    """A revision; :class:`ProtocolError` if malformed, if its text does not match its
    digest, or (reason ``bad_mac``) if not signed by the holder of ``key``."""
    msg: Any = unpack(data, max_bytes=MAX_CONFIG_BYTES, max_items=16)
    if not isinstance(msg, dict) or msg.get("v") != VERSION:
        raise ProtocolError(f"not a v{VERSION} config revision")
    if key is not None and not verifies(key, gateway, msg):
        raise ProtocolError("a config revision the hub did not sign", reason="bad_mac")
    extra = sorted(set(msg) - {"v", "rev", "sha256", "slice", "mac"}, key=str)
    if extra:
        raise ProtocolError(f"config revision: unknown field {extra[0]!r:.40}")
    rev, sha, text = msg.get("rev"), msg.get("sha256"), msg.get("slice")
    if type(rev) is not int or not 1 <= rev < MAX_REV:
        raise ProtocolError(f"config revision: bad rev {rev!r:.40}")
    if not isinstance(text, str) or not isinstance(sha, str):
        raise ProtocolError("config revision: slice and sha256 are text")
    if hashlib.sha256(text.encode()).hexdigest() != sha:
        raise ProtocolError("config revision: the slice does not match its sha256")
    return Revision(rev, sha, text)


def encode_ack(ack: ConfigAck) -> bytes:
    body: dict[str, Any] = {"v": VERSION, "rev": ack.rev, "ok": ack.ok}
    if ack.error is not None:
        body["error"] = ack.error[:MAX_ERROR_CHARS]
    if ack.restart:
        body["restart"] = list(ack.restart)
    return pack(body)


def decode_ack(data: bytes) -> ConfigAck:
    """A gateway's answer to a revision; :class:`ProtocolError` if malformed."""
    msg: Any = unpack(data, max_bytes=MAX_ACK_BYTES, max_items=32)
    if not isinstance(msg, dict) or msg.get("v") != VERSION:
        raise ProtocolError(f"not a v{VERSION} config ack")
    extra = sorted(set(msg) - {"v", "rev", "ok", "error", "restart"}, key=str)
    if extra:
        raise ProtocolError(f"config ack: unknown field {extra[0]!r:.40}")
    rev, ok, error, restart = msg.get("rev"), msg.get("ok"), msg.get("error"), msg.get("restart")
    if type(rev) is not int or not 1 <= rev < MAX_REV or not isinstance(ok, bool):
        raise ProtocolError("config ack: bad rev or ok")
    if error is not None and (not isinstance(error, str) or len(error) > MAX_ERROR_CHARS):
        raise ProtocolError("config ack: bad error")
    if not ok and error is None:
        raise ProtocolError("config ack: a refusal says why")
    restart = [] if restart is None else restart
    if not isinstance(restart, list) or not all(
        isinstance(r, str) and 0 < len(r) <= 64 for r in restart
    ):
        raise ProtocolError("config ack: bad restart")
    return ConfigAck(rev, ok, error, tuple(restart))
