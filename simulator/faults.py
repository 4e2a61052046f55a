"""Fault injection: which faults are active, on what, validated against the simulated site.

Targets are named like the site config names them: a device ``gateway/device``, a room
``site/room``, a gateway by its id. A bare device or room id is accepted when it is unique.

Device faults act on the wire (the slave is silent, answers with an exception or garbage, or
with a bad CRC) or on its values (``probe_open``); room faults act on the physics (power cut,
compressor failure, door stuck open, a jam of the sorting line); ``link_down`` silences every
device of a gateway and refuses its TCP connections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    """What can go wrong."""

    SILENT = "silent"
    EXCEPTION = "exception"
    GARBAGE = "garbage"
    BAD_CRC = "bad_crc"
    PROBE_OPEN = "probe_open"
    DOOR_STUCK_OPEN = "door_stuck_open"
    COMPRESSOR_FAILURE = "compressor_failure"
    FAN_FAILURE = "fan_failure"  # the evaporator fans stop: the compressor runs, cools little
    POWER_CUT = "power_cut"
    JAM = "jam"
    E_STOP = "e_stop"  # an emergency stop pressed on the sorting line
    LINE_FAULT = "line_fault"  # a drive or safety fault latched, with its code (``code``)
    CHUTE_FULL = "chute_full"  # every chute of the line full
    LINE_STOP = "line_stop"  # the line stopped (by an operator, or a cable cut: no alarm)
    LINK_DOWN = "link_down"

    @property
    def target_type(self) -> str:
        if self is FaultKind.LINK_DOWN:
            return "gateway"
        if self in _ROOM_KINDS:
            return "room"
        return "device"


LINE_KINDS = {
    FaultKind.JAM,
    FaultKind.E_STOP,
    FaultKind.LINE_FAULT,
    FaultKind.CHUTE_FULL,
    FaultKind.LINE_STOP,
}
"""Faults of a sorting line: only a room with one takes them."""
_ROOM_KINDS = {
    FaultKind.DOOR_STUCK_OPEN,
    FaultKind.COMPRESSOR_FAILURE,
    FaultKind.FAN_FAILURE,
    FaultKind.POWER_CUT,
    *LINE_KINDS,
}
WIRE_KINDS = (FaultKind.SILENT, FaultKind.EXCEPTION, FaultKind.GARBAGE, FaultKind.BAD_CRC)
"""Device faults that change what the slave puts on the wire, in order of precedence."""


class FaultError(ValueError):
    """A fault that cannot be applied; the message says why and what is known."""


@dataclass(frozen=True, slots=True)
class Fault:
    """An active fault."""

    kind: FaultKind
    target: str
    code: int | None = None  # exception code for ``exception`` (default 4, device failure);
    # the latched fault code for ``line_fault`` (default 1)
    point: str | None = None  # one point for ``probe_open`` (default: all temperatures)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": str(self.kind), "target": self.target}
        if self.code is not None:
            out["code"] = self.code
        if self.point is not None:
            out["point"] = self.point
        return out


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What fault validation needs to know about a device."""

    protocol: str  # modbus | mqtt
    bus_type: str  # rtu | tcp | mqtt
    points: frozenset[str]


@dataclass(slots=True)
class Targets:
    """The things of a site faults can be put on."""

    devices: dict[str, DeviceInfo] = field(default_factory=dict)  # gateway/device -> info
    rooms: dict[str, bool] = field(default_factory=dict)  # site/room -> has a sorting line
    gateways: set[str] = field(default_factory=set)

    def resolve(self, kind: FaultKind, target: str) -> str:
        """The canonical name of ``target`` for ``kind``; raise FaultError with the choices."""
        kinds = kind.target_type
        names: dict[str, list[str]] = {
            "device": list(self.devices),
            "room": list(self.rooms),
            "gateway": list(self.gateways),
        }
        known = sorted(names[kinds])
        if target in known:
            return target
        matches = [k for k in known if k.rsplit("/", 1)[-1] == target]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise FaultError(f"{kinds} {target!r} is ambiguous: say one of {', '.join(matches)}")
        raise FaultError(f"{kind}: no {kinds} {target!r}; known: {', '.join(known) or 'none'}")


class FaultSet:
    """The active faults (one per kind and target)."""

    def __init__(self, targets: Targets) -> None:
        self.targets = targets
        self._faults: dict[tuple[FaultKind, str], Fault] = {}
        self.version = 0  # bumped on every change, so components can react

    def add(
        self, kind: str, target: str, *, code: int | None = None, point: str | None = None
    ) -> Fault:
        """Activate a fault (replacing one of the same kind on the same target)."""
        try:
            k = FaultKind(kind)
        except ValueError:
            known = ", ".join(str(x) for x in FaultKind)
            raise FaultError(f"no fault kind {kind!r}; known: {known}") from None
        name = self.targets.resolve(k, target)
        self._check(k, name, code, point)
        if k is FaultKind.EXCEPTION and code is None:
            code = 4
        if k is FaultKind.LINE_FAULT and code is None:
            code = 1
        fault = Fault(k, name, code, point)
        self._faults[(k, name)] = fault
        self.version += 1
        return fault

    def _check(self, kind: FaultKind, name: str, code: int | None, point: str | None) -> None:
        if code is not None and kind not in (FaultKind.EXCEPTION, FaultKind.LINE_FAULT):
            raise FaultError(f"{kind}: 'code' is only for the exception and line_fault faults")
        if code is not None and kind is FaultKind.EXCEPTION and not 1 <= code <= 0x7F:
            raise FaultError(f"exception code must be 1..127, got {code}")
        if code is not None and kind is FaultKind.LINE_FAULT and not 1 <= code <= 0xFFFF:
            raise FaultError(f"line_fault code must be 1..65535, got {code}")
        if point is not None and kind is not FaultKind.PROBE_OPEN:
            raise FaultError(f"{kind}: 'point' is only for the probe_open fault")
        if kind in LINE_KINDS and not self.targets.rooms[name]:
            raise FaultError(f"{kind}: room {name} has no sorting line (no counter point)")
        info = self.targets.devices.get(name)
        if info is None:
            return
        if kind in (FaultKind.EXCEPTION, FaultKind.BAD_CRC) and info.protocol != "modbus":
            raise FaultError(f"{kind}: device {name} is not a Modbus device")
        if kind is FaultKind.BAD_CRC and info.bus_type != "rtu":
            raise FaultError(f"bad_crc: device {name} is on a {info.bus_type} bus (CRC is RTU)")
        if point is not None and point not in info.points:
            raise FaultError(
                f"probe_open: device {name} has no point {point!r}; "
                f"known: {', '.join(sorted(info.points))}"
            )

    def clear(self, kind: str | None = None, target: str | None = None) -> list[Fault]:
        """Clear matching faults (all when both are None); return what was cleared."""
        try:
            k = FaultKind(kind) if kind is not None else None
        except ValueError:
            raise FaultError(f"no fault kind {kind!r}") from None
        gone = [
            f
            for f in self._faults.values()
            if (k is None or f.kind is k)
            and (target is None or target in (f.target, f.target.rsplit("/", 1)[-1]))
        ]
        for f in gone:
            del self._faults[(f.kind, f.target)]
        if gone:
            self.version += 1
        return gone

    def active(self) -> list[Fault]:
        return sorted(self._faults.values(), key=lambda f: (f.target, f.kind))

    def has(self, kind: FaultKind, target: str) -> bool:
        return (kind, target) in self._faults

    def get(self, kind: FaultKind, target: str) -> Fault | None:
        return self._faults.get((kind, target))

    def wire_fault(self, device: str, gateway: str) -> Fault | None:
        """The fault that decides what ``device`` puts on the wire, if any."""
        if (FaultKind.LINK_DOWN, gateway) in self._faults:
            return Fault(FaultKind.SILENT, device)
        for kind in WIRE_KINDS:
            f = self._faults.get((kind, device))
            if f is not None:
                return f
        return None
