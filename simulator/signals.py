"""Which quantity of a room a device point shows.

A profile says what a point measures by its ``kind``; where a kind covers several things
(a controller's second probe is often the evaporator, an ``alarm`` may be the door alarm or
the high-temperature alarm) the words of the point's name decide, e.g. ``evap_temp``,
``door_alarm``, ``alarm_high``, ``compressor``, ``conveyor_running``, ``parcels``. The rules:

(words separated by ``_``, digits dropped; the first rule that matches wins)

* temperature: evap/coil/defrost -> evaporator coil, product/core -> product core,
  cond/condenser -> condenser, outside/ambient/outdoor -> surroundings; else the room air.
* humidity: room relative humidity. door: 1 open, 0 closed. defrost: 1 defrosting/dripping.
* alarm: stop/estop/emergency -> the line's emergency stop, full -> its chutes full (the
  e_stop and chute_full faults); door, high, low, jam, power, probe/sensor, compressor ->
  that alarm; fault -> the line's latched fault (the line_fault fault); else any of high,
  low, door alarm, probe fault.
* counter: start(s) -> compressor starts; rejected -> 1.5 % of the parcels; else parcels of
  the sorting line (compressor starts outside a sorting hall).
* status: compressor (relay), fan, heater/defrost, conveyor/run/motor, jam, speed (belt
  m/s), code (the line's latched fault code, 0 for none), power, battery, link/rssi,
  temperature (device's own, room air), pressure, lux (light when the door opens); else 1
  while powered.
* power: 1 while the room's supply is on, 0 during a power cut.
* setpoint: low/lo/min, high/hi/max -> alarm limits; diff/hyst -> differential; else the
  setpoint. Writes to setpoint and differential move the room's thermostat.

Pure: functions of a :class:`RoomView`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from coldchain.profiles.schema import PointKind
from simulator.sorting import SortingLine
from simulator.thermal import DefrostPhase, RoomModel


@dataclass(slots=True)
class RoomView:
    """What a device sees: its room, the sorting line in it, and its own probe state."""

    room: RoomModel
    line: SortingLine | None = None
    probe_fault: bool = False


Signal = Callable[[RoomView], float]


def _b(x: bool) -> float:
    return 1.0 if x else 0.0


def _words(name: str) -> set[str]:
    return {re.sub(r"\d+$", "", w) for w in name.split("_")} - {""}


def _any_alarm(v: RoomView) -> float:
    r = v.room
    return _b(r.high_alarm or r.low_alarm or r.door_alarm or v.probe_fault)


def _limit(value: float | None, default: float) -> float:
    return default if value is None else value


def _jammed(v: RoomView) -> bool:
    return v.line is not None and (v.line.jammed or v.line.forced_jam)


def _condenser(v: RoomView) -> float:
    return v.room.surroundings + (12.0 if v.room.compressor_running else 2.0)


_TEMPERATURE: list[tuple[set[str], str, Signal]] = [
    ({"evap", "evaporator", "coil", "defrost"}, "coil", lambda v: v.room.coil),
    ({"product", "core"}, "product", lambda v: v.room.product),
    ({"cond", "condenser"}, "condenser", _condenser),
    ({"outside", "ambient", "outdoor"}, "surroundings", lambda v: v.room.surroundings),
]
_ALARM: list[tuple[set[str], str, Signal]] = [
    ({"stop", "estop", "emergency"}, "e_stop", lambda v: _b(v.line is not None and v.line.e_stop)),
    ({"full"}, "chute_full", lambda v: _b(v.line is not None and v.line.chutes_full)),
    ({"door"}, "door_alarm", lambda v: _b(v.room.door_alarm)),
    ({"high", "hi", "max"}, "high_alarm", lambda v: _b(v.room.high_alarm)),
    ({"low", "lo", "min"}, "low_alarm", lambda v: _b(v.room.low_alarm)),
    ({"jam"}, "jam", lambda v: _b(_jammed(v))),
    ({"power", "mains"}, "power_fail", lambda v: _b(v.room.power_cut)),
    ({"probe", "sensor"}, "probe_fault", lambda v: _b(v.probe_fault)),
    (
        {"compressor", "comp"},
        "compressor_fault",
        lambda v: _b(v.room.relay and v.room.compressor_failed),
    ),
    # a drive or safety fault latched: the line's (the line_fault fault), else none
    ({"fault"}, "device_fault", lambda v: _b(v.line is not None and v.line.fault_code > 0)),
]
_STATUS: list[tuple[set[str], str, Signal]] = [
    ({"compressor", "comp"}, "compressor_relay", lambda v: _b(v.room.relay)),
    ({"fan", "fans"}, "fans", lambda v: _b(v.room.fans_on)),
    ({"heater", "defrost"}, "heater", lambda v: _b(v.room.heater_on)),
    (
        {"conveyor", "run", "running", "motor"},
        "conveyor_running",
        lambda v: _b(v.line is not None and v.line.running),
    ),
    ({"jam"}, "jam", lambda v: _b(_jammed(v))),
    ({"speed"}, "belt_speed", lambda v: 2.0 if v.line is not None and v.line.running else 0.0),
    ({"code"}, "fault_code", lambda v: float(v.line.fault_code) if v.line is not None else 0.0),
    ({"power", "mains"}, "powered", lambda v: _b(not v.room.power_cut)),
    ({"battery"}, "battery", lambda v: 97.0),
    ({"link", "linkquality", "rssi"}, "link_quality", lambda v: 120.0),
    ({"temperature", "temp"}, "device_temperature", lambda v: v.room.air),
    ({"pressure"}, "pressure", lambda v: 1013.0),
    ({"lux", "illuminance"}, "lux", lambda v: 180.0 if v.room.door_open else 4.0),
]
_SETPOINT: list[tuple[set[str], str, Signal]] = [
    (
        {"low", "lo", "min"},
        "low_limit",
        lambda v: _limit(v.room.params.low_limit, v.room.setpoint - 5),
    ),
    (
        {"high", "hi", "max"},
        "high_limit",
        lambda v: _limit(v.room.params.high_limit, v.room.setpoint + 5),
    ),
    ({"diff", "differential", "hyst"}, "differential", lambda v: v.room.differential),
]


def _pick(
    table: list[tuple[set[str], str, Signal]], words: set[str], default: tuple[str, Signal]
) -> tuple[str, Signal]:
    for keys, label, fn in table:
        if keys & words:
            return label, fn
    return default


def _counter(v: RoomView) -> float:
    return float(v.line.parcels) if v.line is not None else float(v.room.compressor_starts)


_PLAIN: dict[PointKind, tuple[str, Signal]] = {
    PointKind.HUMIDITY: ("humidity", lambda v: v.room.rh),
    PointKind.DOOR: ("door", lambda v: _b(v.room.door_open)),
    PointKind.DEFROST: ("defrost", lambda v: _b(v.room.defrost is not DefrostPhase.OFF)),
    PointKind.POWER: ("powered", lambda v: _b(not v.room.power_cut)),
}
"""Kinds whose signal does not depend on the point's name."""


def signal_for(kind: PointKind, name: str) -> tuple[str, Signal]:
    """A label and the function giving the value of a point ``name`` of ``kind``."""
    w = _words(name)
    if kind is PointKind.TEMPERATURE:
        return _pick(_TEMPERATURE, w, ("air", lambda v: v.room.air))
    if kind in _PLAIN:
        return _PLAIN[kind]
    if kind is PointKind.ALARM:
        return _pick(_ALARM, w, ("any_alarm", _any_alarm))
    if kind is PointKind.COUNTER:
        if w & {"start", "starts"}:
            return "compressor_starts", lambda v: float(v.room.compressor_starts)
        if w & {"rejected", "reject", "rejects"}:
            return "rejected", lambda v: float(int(_counter(v) * 0.015))
        return ("parcels" if w & {"parcel", "parcels"} else "counter"), _counter
    if kind is PointKind.STATUS:
        return _pick(_STATUS, w, ("powered", lambda v: _b(not v.room.power_cut)))
    return _pick(_SETPOINT, w, ("setpoint", lambda v: v.room.setpoint))


DISCRETE_KINDS = frozenset(
    {PointKind.DOOR, PointKind.DEFROST, PointKind.ALARM, PointKind.STATUS, PointKind.POWER}
)
"""Kinds whose points change in steps; sensors publish them on change."""

ANALOG_KINDS = frozenset({PointKind.TEMPERATURE, PointKind.HUMIDITY})
"""Kinds a sensor measures with noise, refreshed at the sensor's own pace."""
