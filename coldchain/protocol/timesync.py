"""The clock exchange: how far a gateway's clock is from the hub's, measured over MQTT.

Telemetry cannot tell: a reading's delay from the Pi to the hub is unbounded (a backlog sent
after an outage is hours old). So the hub asks, as NTP does, with four timestamps:

1. the hub publishes ``{"v": 1, "n": N, "t1": T1}`` on the gateway's ``time`` topic, T1 its
   own clock (UTC ms) as it sends;
2. the agent notes T2, its clock when the probe arrives, and answers at once on
   ``time/reply`` with ``{"v": 1, "n": N, "t1": T1, "t2": T2, "t3": T3}``, T3 its clock as
   it sends;
3. the hub notes T4, its clock as the reply arrives.

The gateway's clock is ahead of the hub's by ``((T2 - T1) + (T3 - T4)) / 2`` (exact when the
way there and the way back take as long), and the exchange took ``(T4 - T1) - (T3 - T2)``
on the network: the offset is known to within half that. Both messages are MessagePack,
bounded and checked like every other payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coldchain.protocol import VERSION
from coldchain.protocol.messages import ProtocolError, pack, unpack

MAX_TIME_BYTES = 256
MAX_NONCE = 2**53  # fits a double: any JSON or MessagePack reader keeps it exact
_MS_RANGE = (0, 2**48)  # UTC ms up to the year 10889: enough, and bounded


@dataclass(frozen=True, slots=True)
class TimeReply:
    n: int
    t1: int  # hub, sent
    t2: int  # gateway, received
    t3: int  # gateway, answered

    def offset_ms(self, t4: int) -> float:
        """How far the gateway's clock is ahead of the hub's (negative: behind)."""
        return ((self.t2 - self.t1) + (self.t3 - t4)) / 2

    def delay_ms(self, t4: int) -> int:
        """The exchange's time on the network (the offset is known within half of it)."""
        return (t4 - self.t1) - (self.t3 - self.t2)


def encode_time_probe(n: int, t1: int) -> bytes:
    return pack({"v": VERSION, "n": n, "t1": t1})


def encode_time_reply(n: int, t1: int, t2: int, t3: int) -> bytes:
    return pack({"v": VERSION, "n": n, "t1": t1, "t2": t2, "t3": t3})


def _fields(data: bytes, names: tuple[str, ...]) -> dict[str, int]:
    msg: Any = unpack(data, max_bytes=MAX_TIME_BYTES, max_items=8)
    if not isinstance(msg, dict) or msg.get("v") != VERSION:
        raise ProtocolError(f"not a v{VERSION} time message")
    out = {}
    for name in names:
        value = msg.get(name)
        lo, hi = (0, MAX_NONCE) if name == "n" else _MS_RANGE
        if type(value) is not int or not lo <= value <= hi:
            raise ProtocolError(f"time message: bad {name!r}: {value!r:.40}")
        out[name] = value
    return out


def decode_time_probe(data: bytes) -> tuple[int, int]:
    """(n, t1) of a probe; :class:`ProtocolError` if it is not one."""
    f = _fields(data, ("n", "t1"))
    return f["n"], f["t1"]


def decode_time_reply(data: bytes) -> TimeReply:
    """A reply; :class:`ProtocolError` if it is not one."""
    f = _fields(data, ("n", "t1", "t2", "t3"))
    if f["t3"] < f["t2"]:
        raise ProtocolError("time reply: answered (t3) before it was asked (t2)")
    return TimeReply(**f)
