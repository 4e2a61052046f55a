"""Commands from the centre to a gateway, and their answers: commissioning from afar.

The hub (or ``coldchain gateway CONFIG scan ID``) publishes a request on the gateway's
``cmd`` topic; the agent runs it on its own bus and answers on ``cmd/reply``::

    {"v": 1, "id": "3f2a...", "action": "scan", "bus": "rs485",
     "units": "1-32", "baud": "9600", "parity": "N"}             (cmd, MessagePack)
    {"v": 1, "id": "3f2a...", "ok": true, "result": {...}}        (cmd/reply)
    {"v": 1, "id": "3f2a...", "ok": false, "error": "no bus 'x'"}

Actions: ``scan`` (``bus``; ``units``, ``baud``, ``parity`` as ``coldchain modbus scan``
takes them, defaulting to the bus's own baud and parity) and ``read`` (``bus``, ``unit``,
``profile``). A request carries a MAC when the gateway has a message key, like an ack
(:mod:`coldchain.protocol.auth`): an agent with a key runs only what the hub signed. Both
directions are bounded and checked field by field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from coldchain.protocol import VERSION
from coldchain.protocol.auth import signed, verifies
from coldchain.protocol.messages import ProtocolError, pack, unpack

MAX_REQUEST_BYTES = 1024
MAX_REPLY_BYTES = 256 * 1024  # a scan's result: up to 247 devices, each with its fits
Action = Literal["scan", "read"]
_ID = re.compile(r"^[0-9a-f]{8,32}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ARG = re.compile(r"^[0-9A-Za-z,\-]{1,64}$")  # "1-32", "9600,19200", "N,E"


@dataclass(frozen=True, slots=True)
class Request:
    id: str
    action: Action
    bus: str
    units: str | None = None  # scan
    baud: str | None = None  # scan
    parity: str | None = None  # scan
    unit: int | None = None  # read
    profile: str | None = None  # read

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION, "id": self.id, "action": self.action, "bus": self.bus}
        for name in ("units", "baud", "parity", "unit", "profile"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def encode_request(req: Request, *, key: bytes | None = None, gateway: str = "") -> bytes:
    return pack(signed(key, gateway, req.fields()))


def decode_request(data: bytes, *, key: bytes | None = None, gateway: str = "") -> Request:
    """A request; :class:`ProtocolError` if malformed, or (reason ``bad_mac``) not signed
    by the holder of ``key``."""
    msg: Any = unpack(data, max_bytes=MAX_REQUEST_BYTES, max_items=16)
    if not isinstance(msg, dict) or msg.get("v") != VERSION:
        raise ProtocolError(f"not a v{VERSION} command")
    if key is not None and not verifies(key, gateway, msg):
        raise ProtocolError("a command the hub did not sign", reason="bad_mac")
    known = {"v", "id", "action", "bus", "units", "baud", "parity", "unit", "profile", "mac"}
    extra = sorted(set(msg) - known, key=str)
    if extra:
        raise ProtocolError(f"command: unknown field {extra[0]!r:.40}")
    cid, action, bus = msg.get("id"), msg.get("action"), msg.get("bus")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise ProtocolError(f"command: bad id {cid!r:.40}")
    if action not in ("scan", "read"):
        raise ProtocolError(f"command: unknown action {action!r:.40}")
    if not isinstance(bus, str) or not _NAME.match(bus):
        raise ProtocolError(f"command: bad bus {bus!r:.40}")
    args: dict[str, Any] = {}
    for name in ("units", "baud", "parity"):
        value = msg.get(name)
        if value is not None and (not isinstance(value, str) or not _ARG.match(value)):
            raise ProtocolError(f"command: bad {name} {value!r:.40}")
        args[name] = value
    unit, profile = msg.get("unit"), msg.get("profile")
    if unit is not None and (type(unit) is not int or not 1 <= unit <= 247):
        raise ProtocolError(f"command: bad unit {unit!r:.40}")
    if profile is not None and (not isinstance(profile, str) or not _NAME.match(profile)):
        raise ProtocolError(f"command: bad profile {profile!r:.40}")
    if action == "read" and (unit is None or profile is None):
        raise ProtocolError("command: read needs unit and profile")
    return Request(cid, action, bus, unit=unit, profile=profile, **args)


@dataclass(frozen=True, slots=True)
class Reply:
    id: str
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None


def encode_reply(reply: Reply) -> bytes:
    body: dict[str, Any] = {"v": VERSION, "id": reply.id, "ok": reply.ok}
    if reply.ok:
        body["result"] = reply.result or {}
    else:
        body["error"] = (reply.error or "failed")[:500]
    return pack(body)


def decode_reply(data: bytes) -> Reply:
    """A reply; :class:`ProtocolError` if malformed. The result is data for a person to
    read (shown, never acted on): its shape is the agent's, bounded by size and depth."""
    msg: Any = unpack(data, max_bytes=MAX_REPLY_BYTES, max_items=4096)
    if not isinstance(msg, dict) or msg.get("v") != VERSION:
        raise ProtocolError(f"not a v{VERSION} command reply")
    cid, ok = msg.get("id"), msg.get("ok")
    if not isinstance(cid, str) or not _ID.match(cid) or not isinstance(ok, bool):
        raise ProtocolError("command reply: bad id or ok")
    if ok:
        result = msg.get("result")
        if not isinstance(result, dict):
            raise ProtocolError("command reply: no result")
        return Reply(cid, ok=True, result=result)
    error = msg.get("error")
    if not isinstance(error, str) or len(error) > 500:
        raise ProtocolError("command reply: bad error")
    return Reply(cid, ok=False, error=error)


# -- how a result reads (coldchain modbus on the Pi, coldchain gateway at the centre) ------
def scan_lines(doc: dict[str, Any]) -> list[str]:
    """A scan's result (``edge_agent.commission.scan_report``) as lines for a person."""
    out = []
    for d in doc.get("devices", []):
        where = f"at {d.get('baud')} 8{d.get('parity')}1" if d.get("baud") else "over TCP"
        what = d.get("summary") or d.get("identify_error") or f"answered ({d.get('answer')})"
        out.append(f"unit {d.get('unit'):>3} {where}: {what}")
    for setting, units in (doc.get("garbled") or {}).items():
        shown = ", ".join(str(u) for u in units[:10]) + (" ..." if len(units) > 10 else "")
        out.append(
            f"garbled replies at {setting} from unit {shown}: a device at another parity "
            "or baud, two devices on one address, or noise on the line (check termination)"
        )
    n = len(doc.get("devices", []))
    skipped = doc.get("skipped") or []
    out.append(
        f"{n} device{'s' if n != 1 else ''} found; {doc.get('probes')} probes in "
        f"{doc.get('seconds', 0):.1f} s" + (f"; not tried: {', '.join(skipped)}" if skipped else "")
    )
    return out


def read_lines(doc: dict[str, Any]) -> list[str]:
    """A read's result (``edge_agent.commission.read_report``) as lines for a person."""
    out = []
    for p in doc.get("points", []):
        if "error" in p:
            out.append(f"{p.get('block')}: {p['error']}")
            continue
        words = " ".join(f"{w:#06x}" for w in p.get("raw", []))
        value = p.get("value")
        shown = f"{value:g} {p.get('unit') or ''}".rstrip() if value is not None else "-"
        why = f"  ({p['reason']})" if p.get("reason") else ""
        out.append(
            f"{p.get('point'):<25} {shown:<14} [{p.get('table')} {p.get('address')}: {words}]{why}"
        )
    for c in doc.get("config", []):
        where = f"holding {c.get('address', 0):#06x}"
        if "error" in c:
            out.append(f"config {c.get('name'):<18} {'-':<14} [{where}]  ({c['error']})")
            continue
        when = "after a power cycle" if c.get("takes_effect") == "after_power_cycle" else "at once"
        value = c.get("value")
        shown = "unknown code" if value is None else f"{value:g}"
        out.append(
            f"config {c.get('name'):<18} {shown:<14} [{where}: {c.get('word', 0):#06x}]"
            f"  (a new value acts {when})"
        )
    return out
