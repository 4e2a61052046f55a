"""The device profile schema: a reusable register (or payload) map of one model.

A profile says what a device is and how to read it; a site config only says which profile,
which bus and which unit id. Profiles are data (``firmware_configs/profiles/*.yaml``), each
naming its source. Two protocols, a discriminated union on ``protocol``:

* ``modbus``: points in the coil / discrete / input / holding tables with a value type
  (which fixes the register count), byte and word order, scale, offset and fault sentinels;
  plus the writable configuration registers used when commissioning.
* ``mqtt``: points taken from a vendor payload (Zigbee2MQTT, Tasmota, Shelly) by topic and
  field path, with value maps for enumerations such as ``open``/``close``.
"""

from __future__ import annotations

import string
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from coldchain.config.base import StrictModel
from coldchain.protocol.limits import MAX_ID_CHARS


class PointKind(StrEnum):
    """What a point measures; drives deadbands, alert rules and dashboards."""

    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    DOOR = "door"
    DEFROST = "defrost"
    ALARM = "alarm"
    COUNTER = "counter"
    STATUS = "status"
    SETPOINT = "setpoint"
    POWER = "power"  # mains present: 1 on, 0 cut (a relay contact into a digital input)


class PointRole(StrEnum):
    """Where a temperature or humidity point measures.

    Only ``room`` points are the room's air: the room-limit alert rules, the live board,
    the room's chart statistics, the reports (MKT, excursions) and Grafana read those and
    nothing else. An evaporator probe sits far below the room's band by design, a door
    sensor's own temperature follows the warm side of the frame. A point that does not say
    is ``other`` (see :data:`ROLE_DEFAULT`): forgetting the role can hide a probe from the
    room's rules (``coldchain config check`` warns) but never raises a false alarm.
    """

    ROOM = "room"  # the room's air: what the limits, reports and alarms are about
    EVAPORATOR = "evaporator"  # the coil / defrost-termination probe
    PRODUCT = "product"  # in (or simulating) the goods
    DEVICE = "device"  # the device's own temperature: its chip, housing or cabinet
    OTHER = "other"  # anything else: a condenser, a configurable probe, a chute


ROLE_DEFAULT = PointRole.OTHER
"""The role of a point whose profile declares none: not room air (the safe side)."""

_ROLE_HELP = (
    "where it measures: room (the room's air; the only role alert rules, reports and "
    "dashboards treat as the room's climate), evaporator, product, device (its own "
    "chip/housing temperature) or other (default: not room air)"
)


class Table(StrEnum):
    """The four Modbus data tables."""

    COIL = "coil"
    DISCRETE = "discrete"
    INPUT = "input"
    HOLDING = "holding"

    @property
    def is_bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE)


class ValueType(StrEnum):
    """How register words become a number; the type fixes the register count."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BIT = "bit"

    @property
    def registers(self) -> int:
        """16-bit registers taken (a ``bit`` of a register table takes one register)."""
        return _REGISTERS[self]


_REGISTERS = {
    ValueType.INT16: 1,
    ValueType.UINT16: 1,
    ValueType.INT32: 2,
    ValueType.UINT32: 2,
    ValueType.FLOAT32: 2,
    ValueType.FLOAT64: 4,
    ValueType.BIT: 1,
}


class Order(StrEnum):
    """Byte order inside a 16-bit word, or word order across words. ``big`` is Modbus's."""

    BIG = "big"
    LITTLE = "little"


class FaultReason(StrEnum):
    """What a sentinel value means."""

    PROBE_OPEN = "probe open"
    PROBE_SHORT = "probe short"
    PROBE_ERROR = "probe error"
    NOT_READY = "not ready"


class Sentinel(StrictModel):
    """A raw value (before scale and offset) that is not a measurement but a fault code."""

    raw: int | float = Field(description="the raw register value, before scale and offset")
    reason: FaultReason = Field(description="what the device means by it")


class SerialDefaults(StrictModel):
    """Factory serial settings of the device."""

    baud: int = Field(9600, description="baud rate", gt=0)
    parity: Literal["N", "E", "O"] = Field("N", description="N, E or O")
    data_bits: Literal[7, 8] = Field(8, description="data bits")
    stop_bits: Literal[1, 2] = Field(1, description="stop bits")
    unit_id: int = Field(1, description="factory Modbus address", ge=1, le=247)


class ModbusPoint(StrictModel):
    """One value of a Modbus device."""

    name: str = Field(
        description="point name, unique in the profile",
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=MAX_ID_CHARS,
    )
    kind: PointKind = Field(description="what the point measures")
    table: Table = Field(description="coil, discrete, input or holding")
    address: int = Field(description="0-based protocol address", ge=0, le=65535)
    type: ValueType = Field(ValueType.INT16, description="value type; fixes the register count")
    bit: int | None = Field(
        None, description="bit index (0 = least significant) for a bit of a register", ge=0, le=15
    )
    byte_order: Order = Field(Order.BIG, description="byte order inside each 16-bit word")
    word_order: Order = Field(Order.BIG, description="word order of 32- and 64-bit values")
    scale: float = Field(1.0, description="engineering value = raw * scale + offset")
    offset: float = Field(0.0, description="engineering value = raw * scale + offset")
    unit: str = Field("", description="engineering unit, e.g. °C, %RH")
    sentinels: list[Sentinel] = Field(
        default_factory=list, description="raw values that mean a fault (probe open or short)"
    )
    valid_range: tuple[float, float] | None = Field(
        None, description="[min, max] the sensor can measure; outside is a bad reading"
    )
    description: str = Field("", description="what the manual calls it")
    role: PointRole = Field(ROLE_DEFAULT, description=_ROLE_HELP)

    @property
    def role_declared(self) -> bool:
        """Whether the profile says where the point measures (else :data:`ROLE_DEFAULT`)."""
        return "role" in self.model_fields_set

    @property
    def count(self) -> int:
        """Registers (or bits) the point occupies."""
        return 1 if self.table.is_bits else self.type.registers

    @property
    def end(self) -> int:
        """One past the last address the point occupies."""
        return self.address + self.count

    @model_validator(mode="after")
    def _check_shape(self) -> ModbusPoint:
        if self.table.is_bits and self.type is not ValueType.BIT:
            raise ValueError(
                f"point {self.name}: a {self.table} is one bit; set type: bit (not {self.type})"
            )
        if self.type is ValueType.BIT and not self.table.is_bits and self.bit is None:
            raise ValueError(
                f"point {self.name}: a bit of a {self.table} register needs 'bit: N' (0-15)"
            )
        if self.bit is not None and self.type is not ValueType.BIT:
            raise ValueError(f"point {self.name}: 'bit' is only for type: bit")
        if self.address + self.count > 65536:
            raise ValueError(f"point {self.name}: runs past address 65535")
        return self


class AddressRange(StrictModel):
    """Addresses a device refuses to read (the planner never merges across them)."""

    table: Table = Field(description="the table")
    start: int = Field(description="first address", ge=0, le=65535)
    end: int = Field(description="last address, inclusive", ge=0, le=65535)
    note: str = Field("", description="why")


class ConfigRegister(StrictModel):
    """A writable configuration register used when commissioning (address, baud)."""

    name: Literal["unit_id", "baud", "parity", "temperature_offset", "humidity_offset"] = Field(
        description="what it sets"
    )
    table: Literal["holding"] = Field("holding", description="always a holding register")
    address: int = Field(description="0-based address", ge=0, le=65535)
    codes: dict[int, int] | None = Field(
        None, description="value -> register code, e.g. baud 9600 -> 2; absent: written as is"
    )
    scale: float = Field(1.0, description="register = value / scale (offsets in 0.1 °C: 0.1)")
    takes_effect: Literal["at_once", "after_power_cycle"] = Field(
        "at_once",
        description="when the device acts on a new value: at once (a new unit id answers "
        "after the reply), or only after a power cycle (it reads back the new value but "
        "keeps answering on the old settings until switched off and on)",
    )
    note: str = Field("", description="caveats for technicians (an unverified address)")

    def code_of(self, value: float) -> int:
        """The register word for ``value``; raise ValueError if the device has no code."""
        if self.codes is not None:
            if int(value) != value or int(value) not in self.codes:
                choices = ", ".join(str(v) for v in sorted(self.codes))
                raise ValueError(f"{self.name} {value:g} is not one of {choices}")
            return self.codes[int(value)]
        word = round(value / self.scale)
        if not -0x8000 <= word <= 0xFFFF:
            raise ValueError(f"{self.name} {value:g} does not fit a register")
        return word & 0xFFFF

    def value_of(self, word: int) -> float | None:
        """The value a register word stands for (None: a code the profile does not know)."""
        if self.codes is not None:
            by_code = {code: v for v, code in self.codes.items()}
            return by_code.get(word)
        if self.name.endswith("_offset"):
            word = word - 0x10000 if word & 0x8000 else word  # offsets are signed
        return word * self.scale


class ProfileBase(StrictModel):
    """What every profile says about the model it describes."""

    id: str = Field(
        description="profile id, equal to the file name", pattern=r"^[a-z0-9][a-z0-9-]*$"
    )
    model: str = Field(description="model name as printed on the device")
    vendor: str = Field(description="manufacturer")
    firmware: str = Field("any", description="firmware range the map is known to hold for")
    source: str = Field(min_length=5, description="the manual or page the map comes from")
    notes: str = Field("", description="caveats for technicians")


class ModbusProfile(ProfileBase):
    """A Modbus RTU or TCP device."""

    protocol: Literal["modbus"] = "modbus"
    serial: SerialDefaults | None = Field(None, description="factory serial settings (RTU)")
    max_registers: int = Field(
        125, description="most registers the device answers in one request", ge=1, le=125
    )
    max_bits: int = Field(2000, description="most coils/inputs in one request", ge=1, le=2000)
    unreadable: list[AddressRange] = Field(
        default_factory=list, description="address ranges the device rejects"
    )
    points: list[ModbusPoint] = Field(min_length=1, description="the values to read")
    config_registers: list[ConfigRegister] = Field(
        default_factory=list, description="writable registers for commissioning"
    )

    @model_validator(mode="after")
    def _check_points(self) -> ModbusProfile:
        _unique_names(self.points)
        for p in self.points:
            if not p.table.is_bits and p.count > self.max_registers:
                raise ValueError(f"point {p.name}: wider than max_registers {self.max_registers}")
            for r in self.unreadable:
                if r.table == p.table and p.address <= r.end and r.start < p.end:
                    raise ValueError(
                        f"point {p.name}: address {p.address} lies in an unreadable range "
                        f"{r.start}-{r.end}"
                    )
        return self

    def point(self, name: str) -> ModbusPoint:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"profile {self.id} has no point {name!r}")


class MqttPoint(StrictModel):
    """One value of an MQTT sensor, taken from its vendor payload."""

    name: str = Field(
        description="point name, unique in the profile",
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=MAX_ID_CHARS,
    )
    kind: PointKind = Field(description="what the point measures")
    topic: str = Field(
        description="topic relative to the device's base topic; '' for the base topic itself"
    )
    field: str | None = Field(
        None,
        description="dotted path into a JSON payload (e.g. 'DS18B20.Temperature'); "
        "absent: the payload is the value itself",
    )
    map: dict[str, float] | None = Field(
        None,
        description="text or JSON literal -> value, e.g. {'open': 1, 'close': 0}; "
        "JSON true/false are written 'true'/'false'",
    )
    scale: float = Field(1.0, description="value = raw * scale + offset")
    offset: float = Field(0.0, description="value = raw * scale + offset")
    unit: str = Field("", description="engineering unit")
    valid_range: tuple[float, float] | None = Field(
        None, description="[min, max] the sensor can measure; outside is a bad reading"
    )
    description: str = Field("", description="what the vendor calls it")
    role: PointRole = Field(ROLE_DEFAULT, description=_ROLE_HELP)

    @property
    def role_declared(self) -> bool:
        """Whether the profile says where the point measures (else :data:`ROLE_DEFAULT`)."""
        return "role" in self.model_fields_set


class MqttProfile(ProfileBase):
    """A sensor that publishes to a local MQTT broker in its vendor's format."""

    protocol: Literal["mqtt"] = "mqtt"
    payload_format: Literal["zigbee2mqtt", "tasmota", "shelly-gen1", "shelly-gen2"] = Field(
        description="the vendor format"
    )
    base_topic: str = Field(
        description="default base topic with {name} for the device's name on the broker"
    )
    points: list[MqttPoint] = Field(min_length=1, description="the values to take")

    @model_validator(mode="after")
    def _check_points(self) -> MqttProfile:
        _unique_names(self.points)
        _only_name_placeholder(self.base_topic)
        by_topic: dict[str, list[MqttPoint]] = {}
        for p in self.points:
            by_topic.setdefault(p.topic, []).append(p)
        for topic, points in by_topic.items():
            whole = [p.name for p in points if p.field is None]
            if whole and len(points) > 1:
                raise ValueError(
                    f"point {whole[0]} takes the whole payload of topic {topic!r}, which "
                    f"{len(points) - 1} other point(s) share; give each point a 'field' or "
                    "its own topic"
                )
        return self

    def point(self, name: str) -> MqttPoint:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"profile {self.id} has no point {name!r}")


def _only_name_placeholder(template: str) -> None:
    """A base topic may hold ``{name}`` and nothing else in braces."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(
            f"base_topic {template!r}: {exc}; write the device name as {{name}}"
        ) from None
    bad = [f for f in fields if f != "name"]
    if bad:
        raise ValueError(
            f"base_topic {template!r} has placeholder {{{bad[0]}}}; "
            "use {name} (the device name) and nothing else in braces"
        )


def _unique_names(points: list[ModbusPoint] | list[MqttPoint]) -> None:
    seen: set[str] = set()
    for p in points:
        if p.name in seen:
            raise ValueError(f"point name {p.name!r} appears twice")
        seen.add(p.name)


Profile = Annotated[ModbusProfile | MqttProfile, Field(discriminator="protocol")]
