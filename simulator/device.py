"""One simulated device: its profile's points computed from its room, encoded into its
register image (Modbus) or kept as values to publish (MQTT), and the writes a technician or
an agent can make (commissioning registers, setpoints, coils).

Values are encoded with :func:`coldchain.profiles.codec.encode_value` and decoded back, so
what the journal records is exactly what a client decodes. Temperatures and humidities get a
fixed per-probe offset and a little seeded noise. A ``probe_open`` fault serves the point's
probe-open sentinel (any sentinel if none is for an open probe), else a value beyond its
valid range, else NaN for floats or the type's extreme for integers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from coldchain.config.site import Bus, Device
from coldchain.profiles.codec import (
    CodecError,
    decode_bit,
    decode_words,
    encode_bit,
    encode_value,
    raw_from_value,
    words_from_raw,
)
from coldchain.profiles.schema import (
    FaultReason,
    ModbusPoint,
    ModbusProfile,
    MqttPoint,
    MqttProfile,
    PointKind,
    Table,
    ValueType,
)
from simulator.image import RegisterImage
from simulator.pdu import ExceptionCode, SlaveError
from simulator.signals import ANALOG_KINDS, RoomView, Signal, signal_for

_NOISE = {PointKind.TEMPERATURE: 0.03, PointKind.HUMIDITY: 0.3}
_SPREAD = {PointKind.TEMPERATURE: 0.15, PointKind.HUMIDITY: 1.0}
_BITS = {ValueType.INT16: 16, ValueType.UINT16: 16, ValueType.INT32: 32, ValueType.UINT32: 32}


def _int_bounds(t: ValueType) -> tuple[int, int]:
    n = _BITS[t]
    return (-(1 << (n - 1)), (1 << (n - 1)) - 1) if t.value.startswith("int") else (0, (1 << n) - 1)


def encode(point: ModbusPoint, value: float) -> list[int]:
    """Words for ``value``; counters wrap and other integers saturate like a device would."""
    try:
        return encode_value(point, value)
    except CodecError:
        if point.type not in _BITS:
            raise
        lo, hi = _int_bounds(point.type)
        raw = int(raw_from_value(point, value))
        if point.kind is PointKind.COUNTER:
            raw = (raw - lo) % (hi - lo + 1) + lo
        return words_from_raw(point, min(hi, max(lo, raw)))


def probe_open_raw(point: ModbusPoint) -> int | float:
    """The raw value a device serves for an open probe."""
    for s in point.sentinels:
        if s.reason is FaultReason.PROBE_OPEN:
            return s.raw
    if point.sentinels:
        return point.sentinels[0].raw
    if point.valid_range is not None:
        lo, hi = point.valid_range
        for value in (hi + max(1.0, (hi - lo) * 0.1), lo - max(1.0, (hi - lo) * 0.1)):
            try:
                encode_value(point, value)
            except CodecError:
                continue
            return raw_from_value(point, value)
    if point.type in _BITS:
        lo, hi = _int_bounds(point.type)
        return lo if lo < 0 else hi
    return math.nan


class SimDevice:
    """A device of the site config, alive in its room."""

    def __init__(
        self,
        *,
        site: str,
        gateway: str,
        config: Device,
        profile: ModbusProfile | MqttProfile,
        bus: Bus,
        view: RoomView,
        rng: random.Random,
        serve_gaps: bool = False,
    ) -> None:
        self.site, self.gateway, self.config, self.profile, self.bus = (
            site,
            gateway,
            config,
            profile,
            bus,
        )
        self.key = f"{gateway}/{config.id}"
        self.view = view
        self._rng = rng
        self.unit_id = config.unit_id
        self.baud: int | None = getattr(bus, "baud", None)
        self.image = (
            RegisterImage(profile, serve_gaps=serve_gaps)
            if isinstance(profile, ModbusProfile)
            else None
        )
        self.signals: dict[str, tuple[str, Signal]] = {
            p.name: signal_for(p.kind, p.name) for p in profile.points
        }
        if isinstance(profile, MqttProfile) and any(
            p.kind is PointKind.DOOR for p in profile.points
        ):
            # A battery door sensor sits on the warm side of the frame (most are not rated
            # for a freezer): its own thermometer reads the surroundings, not the room.
            for name, (label, _fn) in self.signals.items():
                if label in ("air", "device_temperature"):
                    self.signals[name] = ("frame", lambda v: v.room.surroundings)
        self.spread = {
            p.name: rng.gauss(0.0, _SPREAD[p.kind]) if p.kind in _SPREAD else 0.0
            for p in profile.points
        }
        self.calibration = {PointKind.TEMPERATURE: 0.0, PointKind.HUMIDITY: 0.0}
        self.overrides: dict[str, float] = {}  # written setpoints/limits held by the device
        self.probe_open: set[str] = set()
        self.values: dict[str, float | None] = {}
        self.reasons: dict[str, str | None] = {}
        self.latency = 0.0  # seconds it takes to start answering on RTU, beyond the wire
        # Configuration written to registers that act only after a power cycle, by name.
        self.pending: dict[str, Callable[[], None]] = {}
        if isinstance(profile, ModbusProfile):
            self._init_config_registers(profile)

    @property
    def max_registers(self) -> int:
        return self.profile.max_registers if isinstance(self.profile, ModbusProfile) else 125

    @property
    def max_bits(self) -> int:
        return self.profile.max_bits if isinstance(self.profile, ModbusProfile) else 2000

    def series(self, point: str) -> str:
        return f"{self.site}/{self.gateway}/{self.config.id}/{point}"

    # -- values -------------------------------------------------------------------------
    def value_of(self, point: ModbusPoint | MqttPoint) -> float:
        """The true value a point shows now, before encoding (and without probe faults)."""
        if point.name in self.overrides:
            return self.overrides[point.name]
        value = self.signals[point.name][1](self.view)
        if point.kind in ANALOG_KINDS:
            value += self.spread[point.name] + self._rng.gauss(0.0, _NOISE[point.kind])
            value += self.calibration[point.kind]
        return value

    def refresh(self, *, analog: bool) -> list[str]:
        """Recompute the points (analog ones only if ``analog``); return the changed ones."""
        changed = []
        for p in self.profile.points:
            if p.kind in ANALOG_KINDS and not analog and p.name in self.values:
                continue
            if isinstance(p, ModbusPoint):
                value, reason = self._serve(p)
            else:
                value, reason = self._mqtt_value(p), None
            if p.name not in self.values or self.values[p.name] != value:
                changed.append(p.name)
            self.values[p.name], self.reasons[p.name] = value, reason
        return changed

    def probe_fault_on(self, name: str) -> bool:
        """Whether an injected probe fault covers point ``name``."""
        if name in self.probe_open:
            return True
        return "*" in self.probe_open and self.profile.point(name).kind in ANALOG_KINDS

    def _serve(self, p: ModbusPoint) -> tuple[float | None, str | None]:
        assert self.image is not None
        if p.table.is_bits:
            bit = encode_bit(p, 1.0 if self.value_of(p) >= 0.5 else 0.0)
            self.image.cells[p.table][p.address] = 1 if bit else 0
        elif self.probe_fault_on(p.name):
            self.image.put_point(p, words_from_raw(p, probe_open_raw(p)))
        else:
            self.image.put_point(p, encode(p, self.value_of(p)))
        if p.table.is_bits:
            decoded = decode_bit(p, self.image.cells[p.table][p.address])
        else:
            decoded = decode_words(p, self.image.point_words(p))
        return decoded.value, decoded.reason

    def _mqtt_value(self, p: MqttPoint) -> float | None:
        if self.probe_fault_on(p.name):
            if p.valid_range is None:
                return None  # the vendor drops the field
            lo, hi = p.valid_range
            return hi + max(1.0, (hi - lo) * 0.1)
        return round(self.value_of(p), 2)

    # -- the slave side -----------------------------------------------------------------
    def read(self, table: Table, address: int, count: int) -> list[int]:
        assert self.image is not None
        return self.image.get(table, address, count)

    def write(self, table: Table, address: int, values: list[int]) -> None:
        assert self.image is not None
        assert isinstance(self.profile, ModbusProfile)
        self.image.check(table, address, len(values))
        end = address + len(values)
        config = [c for c in self.profile.config_registers if address <= c.address < end]
        points = [
            p
            for p in self.profile.points
            if p.table is table and p.address < end and address < p.end
        ]
        covered = {c.address for c in config}
        for p in points:
            if p.kind is PointKind.SETPOINT or table is Table.COIL:
                covered.update(range(p.address, p.end))
        if any(a not in covered for a in range(address, end)):
            raise SlaveError(ExceptionCode.ILLEGAL_DATA_ADDRESS, "register is read-only")
        staged = dict(zip(range(address, end), values, strict=True))
        updates = [
            (c, self._config_update(c.name, staged[c.address], c.codes, c.scale)) for c in config
        ]
        self.image.put(table, address, values)
        for c, apply in updates:
            if c.takes_effect == "after_power_cycle":
                self.pending[c.name] = apply  # reads back at once, acts after a power cycle
            else:
                apply()
        for p in points:
            if p.address >= address and p.end <= end:
                self._point_written(p)

    def _point_written(self, p: ModbusPoint) -> None:
        assert self.image is not None
        words = (
            self.image.point_words(p)
            if not p.table.is_bits
            else [self.image.cells[p.table][p.address]]
        )
        decoded = decode_bit(p, words[0]) if p.table.is_bits else decode_words(p, words)
        if decoded.value is None:
            return
        label, room, line = self.signals[p.name][0], self.view.room, self.view.line
        if label == "setpoint":
            room.setpoint = decoded.value
        elif label == "differential":
            room.differential = decoded.value
        elif label == "conveyor_running" and line is not None:
            line.stopped = not decoded.value
        elif label == "jam" and line is not None and not decoded.value:
            line.clear_jam()
        elif p.kind is PointKind.SETPOINT:
            self.overrides[p.name] = decoded.value

    def power_cycle(self) -> list[str]:
        """Switch the device off and on: configuration waiting for it takes effect (a new
        unit id, a new baud). Return the names of the settings that did."""
        applied = sorted(self.pending)
        for name in applied:
            self.pending.pop(name)()
        return applied

    def _init_config_registers(self, profile: ModbusProfile) -> None:
        assert self.image is not None
        sd = profile.serial
        current = {
            "unit_id": self.unit_id or (sd.unit_id if sd else 1),
            "baud": self.baud or (sd.baud if sd else 9600),
            "parity": 0,
            "temperature_offset": 0,
            "humidity_offset": 0,
        }
        for c in profile.config_registers:
            v = current[c.name]
            word = c.codes.get(v, 0) if c.codes else v
            self.image.cells[Table.HOLDING][c.address] = int(word) & 0xFFFF

    def _config_update(
        self, name: str, word: int, codes: dict[int, int] | None, scale: float
    ) -> Callable[[], None]:
        """Validate a commissioning write; return what applies it (after all are valid)."""
        value = word
        if codes is not None:
            by_code = {code: v for v, code in codes.items()}
            if word not in by_code:
                raise SlaveError(ExceptionCode.ILLEGAL_DATA_VALUE, f"{name} code {word}")
            value = by_code[word]
        if name == "unit_id":
            if not 1 <= value <= 247:
                raise SlaveError(ExceptionCode.ILLEGAL_DATA_VALUE, f"unit id {value}")
            return lambda: setattr(self, "unit_id", value)
        if name == "baud":
            return lambda: setattr(self, "baud", value)
        if name in ("temperature_offset", "humidity_offset"):
            kind = PointKind.TEMPERATURE if name.startswith("t") else PointKind.HUMIDITY
            signed = word - 0x10000 if word & 0x8000 else word
            return lambda: self.calibration.__setitem__(kind, signed * scale)
        return lambda: None
