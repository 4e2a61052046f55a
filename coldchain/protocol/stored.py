"""Readings a hub stored, for the alert leader (``{prefix}/v1/hub/stored``).

With several hubs on a shared subscription (``hub.share_group``) each stores the batches it
receives, and only the leader runs the alert rules (hub/leader.py): after each commit a hub
publishes what it stored on this topic (QoS 1), every hub subscribes to it, and the leader
judges what comes, its own share included, so every reading is judged once, by the leader.

One message is one telemetry batch as stored: ``{"v": 1, "from": CLIENT_ID, "gw": GATEWAY,
"epoch": EPOCH, "seq": SEQ, "r": [[site, gateway, device, point, ts_ms, value, quality,
reason], ...]}`` (quality ``g``, ``u`` or ``b``): the gateway's outbox epoch and the batch's
sequence number let the leader judge a gateway's batches in the order the gateway took them,
whichever worker stored each (hub/ordering.py). At most :data:`MAX_READINGS` readings
(a larger batch goes out as several with the same number), parsed with bounded size and
depth and checked row by row before anything is judged: a malformed message raises
:class:`~coldchain.protocol.messages.ProtocolError` and nothing of it is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_json

from coldchain.protocol.bounded import loads_bounded
from coldchain.protocol.messages import ProtocolError
from coldchain.reading import Quality, Reading, SeriesId

VERSION = 1
MAX_READINGS = 2000
"""Readings a message: ~150 kB, well under the broker's message size limit."""
MAX_BYTES = 1 << 20
_QUALITY = {Quality.GOOD: "g", Quality.UNCERTAIN: "u", Quality.BAD: "b"}
_FROM_CODE = {v: k for k, v in _QUALITY.items()}
_MAX_ID = 64
_MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class Stored:
    """One message: who stored it, and the batch (gateway, epoch, seq) and its readings."""

    sender: str
    gateway: str
    epoch: str
    seq: int
    readings: list[Reading]


def encode_stored(
    readings: Sequence[Reading], sender: str, *, gateway: str, epoch: str, seq: int
) -> list[bytes]:
    """The batch ``gateway``/``epoch``/``seq`` as stored, in messages of at most
    :data:`MAX_READINGS` readings each (one message even when it stored none: the leader
    learns the number was used)."""
    head = {"v": VERSION, "from": sender, "gw": gateway, "epoch": epoch, "seq": seq}
    out = []
    for i in range(0, max(len(readings), 1), MAX_READINGS):
        rows = [
            [*r.series, r.ts_ms, r.value, _QUALITY[r.quality], r.reason]
            for r in readings[i : i + MAX_READINGS]
        ]
        out.append(to_json({**head, "r": rows}))
    return out


def _bad(why: str) -> ProtocolError:
    return ProtocolError(f"stored readings: {why}")


def _row(row: Any) -> Reading:
    if not isinstance(row, list) or len(row) != 8:
        raise _bad("a reading is not a list of 8")
    *ids, ts, value, quality, reason = row
    for part in ids:
        if not isinstance(part, str) or not 0 < len(part) <= _MAX_ID or "/" in part:
            raise _bad(f"series part {part!r:.80} is not an id")
    if type(ts) is not int or not 0 <= ts < 2**53:
        raise _bad(f"time {ts!r:.40} is not UTC ms")
    if value is not None:
        if type(value) not in (int, float) or not math.isfinite(value):
            raise _bad(f"value {value!r:.40} is not a finite number")
        value = float(value)
    if quality not in _FROM_CODE:
        raise _bad(f"quality {quality!r:.20} is not g, u or b")
    if reason is not None and (not isinstance(reason, str) or len(reason) > _MAX_REASON):
        raise _bad("reason is not a short text")
    try:
        return Reading(SeriesId(*ids), ts, value, _FROM_CODE[quality], reason)
    except ValueError as exc:
        raise _bad(str(exc)) from None


_FIELDS = {"v", "from", "gw", "epoch", "seq", "r"}


def decode_stored(payload: bytes) -> Stored:
    """One message; :class:`ProtocolError` if it is not one."""
    doc = loads_bounded(payload, max_bytes=MAX_BYTES, max_depth=4, what="stored readings")
    if not isinstance(doc, dict) or doc.get("v") != VERSION or set(doc) != _FIELDS:
        raise _bad("not a version 1 message of v, from, gw, epoch, seq and r")
    sender, gateway, epoch, seq, rows = doc["from"], doc["gw"], doc["epoch"], doc["seq"], doc["r"]
    for name, text in (("from", sender), ("gw", gateway), ("epoch", epoch)):
        if not isinstance(text, str) or not 0 < len(text) <= _MAX_ID:
            raise _bad(f"{name} is not an id")
    if type(seq) is not int or not 0 <= seq < 2**63:
        raise _bad("seq is not a batch number")
    if not isinstance(rows, list) or len(rows) > MAX_READINGS:
        raise _bad(f"r is not a list of at most {MAX_READINGS} readings")
    return Stored(sender, gateway, epoch, seq, [_row(row) for row in rows])
