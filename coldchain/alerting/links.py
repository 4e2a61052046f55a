"""Signed one-tap acknowledge links and 4-digit reply codes. Pure: no I/O, no clock.

A link token is ``<base64url body+mac>.<contact id>``, e.g. ``EWgW0SjosvwDzzMesg.zhang-wei``:

* the body is the alert id as an unsigned LEB128 varint (1-3 bytes for ids below 2 097 152)
  followed by the expiry in whole UTC seconds as a 4-byte big-endian integer (good until
  2106); the expiry is rounded *down* to the second, so a link never outlives what was asked;
* the MAC is the first 8 bytes (64 bits) of HMAC-SHA256(key, "coldchain-ack-v1" NUL + body +
  contact id), so it covers the contact as well; the domain tag keeps a token from ever being
  valid for another use of the same key;
* the contact id stays readable after the dot instead of being mapped to a short index: an
  index would shift when the contact list is edited (acknowledging as the wrong person) and
  would make :func:`verify` need the config. Contact ids are config ids
  (``[a-z0-9][a-z0-9_-]*``), already URL-safe. A token is 18, 19 or 20 characters for alert
  ids below 128, 16 384, 2 097 152 (22 below 2^28, 23 below 2^35) plus a dot and the id:
  28 characters for alert 17 and ``zhang-wei``.

:func:`reply_code` derives the code a person texts back ("回复1234确认"): four digits from
HMAC-SHA256(key, "coldchain-reply-v1" NUL + alert id). Codes are not unique: with k open
alerts, the chance that two share a code is about k(k-1)/20 000 (0.1 % for k = 5). The hub
therefore resolves a reply by its sender's phone number first, then by code among that
person's open alerts only; when a code matches several of them, acknowledging all of them is
right (the person was sent every one) and the confirmation should name them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

MAC_BYTES = 8
"""64 bits of HMAC-SHA256: a forger needs ~2^63 tries per token, each one a request."""
MIN_KEY_BYTES = 16
_ACK_TAG = b"coldchain-ack-v1\x00"
_REPLY_TAG = b"coldchain-reply-v1\x00"
_EXPIRY_BYTES = 4
_CONTACT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TOKEN = re.compile(r"([A-Za-z0-9_-]{1,64})\.([a-z0-9][a-z0-9_-]{0,63})")


class LinkError(ValueError):
    """An acknowledge link that must not be honoured; the message says why."""


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a valid token says: who may acknowledge which alert, until when (UTC ms)."""

    alert_id: int
    contact_id: str
    expires_ms: int


def sign(alert_id: int, contact_id: str, expires_ms: int, key: bytes) -> str:
    """The token for a link that lets ``contact_id`` acknowledge ``alert_id`` until
    ``expires_ms`` (UTC ms, rounded down to the second). Raises ValueError on arguments
    that cannot be encoded (negative id, expiry outside 1970-2106, a contact id that is not a
    config id, a key shorter than 16 bytes)."""
    _check_key(key)
    if alert_id < 0:
        raise ValueError(f"alert id must be >= 0, got {alert_id}")
    if not 0 <= expires_ms // 1000 < 2 ** (8 * _EXPIRY_BYTES):
        raise ValueError(f"expiry {expires_ms} ms is outside 1970-2106")
    if not _CONTACT.fullmatch(contact_id):
        raise ValueError(f"contact id {contact_id!r} is not a config id ([a-z0-9][a-z0-9_-]*)")
    body = _varint(alert_id) + (expires_ms // 1000).to_bytes(_EXPIRY_BYTES, "big")
    mac = _mac(key, body, contact_id)
    return f"{_b64(body + mac)}.{contact_id}"


def verify(token: str, key: bytes, now_ms: int) -> LinkClaim:
    """The claim in ``token`` if it was signed with ``key`` and has not expired at
    ``now_ms``; raises :class:`LinkError` otherwise. The MAC is checked (in constant time)
    before the expiry, so a forged token is never reported as merely expired."""
    _check_key(key)
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise LinkError(
            f"malformed acknowledge link {token[:80]!r}: expected <base64url>.<contact id>"
        )
    encoded, contact_id = match.groups()
    alert_id, expiry_s, body, mac = _parse(encoded, token)
    if not hmac.compare_digest(mac, _mac(key, body, contact_id)):
        raise LinkError(
            f"acknowledge link {token!r} has a bad signature: altered, or signed with another key"
        )
    claim = LinkClaim(alert_id=alert_id, contact_id=contact_id, expires_ms=expiry_s * 1000)
    if now_ms >= claim.expires_ms:
        expired = datetime.fromtimestamp(expiry_s, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        raise LinkError(f"acknowledge link for alert {alert_id} expired at {expired}")
    return claim


def reply_code(alert_id: int, key: bytes) -> str:
    """The 4-digit code (``"0000"``-``"9999"``) that acknowledges ``alert_id`` by reply.
    Stable for a given id and key; see the module docstring for collisions."""
    _check_key(key)
    if not 0 <= alert_id < 2**64:
        raise ValueError(f"alert id must be in 0..2^64-1, got {alert_id}")
    digest = hmac.new(key, _REPLY_TAG + alert_id.to_bytes(8, "big"), hashlib.sha256).digest()
    # 2^64 mod 10 000 is tiny next to 2^64: the bias towards low codes is ~1e-15.
    return f"{int.from_bytes(digest[:8], 'big') % 10_000:04d}"


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"link key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")


def _mac(key: bytes, body: bytes, contact_id: str) -> bytes:
    msg = _ACK_TAG + body + contact_id.encode("ascii")
    return hmac.new(key, msg, hashlib.sha256).digest()[:MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _parse(encoded: str, token: str) -> tuple[int, int, bytes, bytes]:
    """(alert id, expiry s, body, mac) from the base64url part; LinkError when it is not the
    canonical encoding of a well-formed body (so one claim has exactly one token)."""
    bad = f"malformed acknowledge link {token!r}"
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as e:
        raise LinkError(f"{bad}: not base64url ({e})") from None
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if len(body) <= _EXPIRY_BYTES or _b64(raw) != encoded:
        raise LinkError(f"{bad}: wrong length or encoding")
    alert_id = _read_varint(body[:-_EXPIRY_BYTES])
    expiry_s = int.from_bytes(body[-_EXPIRY_BYTES:], "big")
    if alert_id is None:
        raise LinkError(f"{bad}: bad alert id")
    return alert_id, expiry_s, body, mac


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes) -> int | None:
    """The number ``data`` encodes as exactly one canonical varint, else None."""
    n = 0
    for i, byte in enumerate(data):
        n |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return n if i == len(data) - 1 and _varint(n) == data else None
    return None
