"""Parameters of a room for the thermal model: insulation, refrigeration capacity, thermostat
band, defrost schedule, door habits and humidity, from the room's class and limits.

Per class (``chilled``, ``frozen``, ``ambient``, ``sorting``) with seeded variation, so two
rooms of a class differ a little and the same seed gives the same rooms. A controlled room's
setpoint and differential are placed inside its temperature limits (a room with its own
limits, such as a tea store at 0-5 °C, gets its own band).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import NamedTuple

from coldchain.config.limits import RoomClass
from coldchain.config.site import Room

HOUR = 3600.0


@dataclass(frozen=True, kw_only=True, slots=True)
class RoomParams:
    """Physical and control parameters of a room (seconds, °C, %RH)."""

    room_class: RoomClass
    controlled: bool  # has a refrigeration unit with a thermostat
    setpoint: float  # compressor stops at the setpoint ...
    differential: float  # ... and starts at setpoint + differential
    low_limit: float | None
    high_limit: float | None
    coil_delta: float  # evaporator this far below the setpoint while running
    capacity_ratio: float  # cooling at the setpoint / heat leak at the setpoint
    tau_leak: float
    tau_door: float
    tau_rh: float
    tau_coil: float
    tau_product: float
    surroundings_mean: float
    surroundings_amplitude: float  # daily cycle, warmest at 15:00 local time
    utc_offset: float  # seconds, the site's time zone, for the daily cycle
    min_off: float  # anti-short-cycle: compressor stays off at least this long
    defrost_interval: float
    defrost_duration: float
    drip: float
    heater_rate: float  # K/s while the defrost heater runs; 0: off-cycle defrost
    door_rate: float  # openings per hour in working hours (06-22 local)
    door_min: float
    door_max: float
    door_alarm_delay: float
    rh_base: float
    rh_dehumidify: float  # RH drop while the coil runs
    rh_defrost: float  # RH rise while defrosting
    rh_outside: float

    @property
    def cooling_k(self) -> float:
        """Cooling conductance (1/s) that gives ``capacity_ratio`` at the setpoint."""
        leak = (self.surroundings_mean - self.setpoint) / self.tau_leak
        return self.capacity_ratio * max(leak, 0.0) / self.coil_delta

    def surroundings(self, t: float) -> float:
        """Temperature around the room (corridor, dock, outdoors) at ``t``."""
        hour = ((t + self.utc_offset) / HOUR) % 24
        return self.surroundings_mean + self.surroundings_amplitude * math.cos(
            2 * math.pi * (hour - 15) / 24
        )

    def working_hours(self, t: float) -> bool:
        return 6 <= ((t + self.utc_offset) / HOUR) % 24 < 22


def _control_band(room: Room) -> tuple[float, float]:
    """Setpoint and differential that keep a controlled room inside its limits."""
    band = room.effective_limits.temperature
    if band.low is not None and band.high is not None:
        # cut-in at 65 % of the band: a door opening or a defrost's recovery overshoots
        # the cut-in by up to ~0.9 °C in a chilled room, and a probe reads up to ~0.2 °C
        # off; a cut-in at 75 % (the first tuning) put probes at 4.1 °C of a 0-4 °C band
        # in a normal week (tests/test_site_week.py).
        width = band.high - band.low
        return band.low + 0.35 * width, 0.3 * width
    if band.high is not None:
        frozen = room.room_class is RoomClass.FROZEN
        return (band.high - 4.0, 2.0) if frozen else (band.high - 2.5, 1.5)
    low = band.low if band.low is not None else 0.0
    return low + 2.0, 1.5


class _ClassDefaults(NamedTuple):
    tau_leak_h: float  # insulation
    tau_door_h: float  # air exchange through an open door
    door_rate: float  # openings per working hour
    door_s: tuple[float, float]  # how long a door stays open
    rh_base: float
    surroundings: tuple[float, float]  # mean and daily amplitude around the room
    defrost: tuple[float, float, float]  # every (h), for (min), heater (K/h; 0: off-cycle)


# A freezer is better insulated than a chilled room; an ambient store follows the weather
# with hours of lag; the sorting hall with its dock doors follows it closely.
_CLASSES = {
    RoomClass.FROZEN: _ClassDefaults(12.0, 1.0, 2.0, (5, 60), 70.0, (22.0, 3.0), (6, 20, 16)),
    RoomClass.CHILLED: _ClassDefaults(8.0, 0.5, 4.0, (5, 60), 90.0, (22.0, 3.0), (8, 30, 0)),
    RoomClass.AMBIENT: _ClassDefaults(4.0, 2.0, 3.0, (5, 60), 55.0, (21.0, 5.0), (0, 0, 0)),
    RoomClass.SORTING: _ClassDefaults(1.5, 2.0, 6.0, (30, 300), 55.0, (21.0, 5.0), (0, 0, 0)),
}


def params_for(room: Room, rng: random.Random, *, utc_offset: float = 8 * HOUR) -> RoomParams:
    """Parameters of a room from its class and limits, each varied a little by ``rng``."""

    def vary(x: float, rel: float = 0.1) -> float:
        return x * rng.uniform(1 - rel, 1 + rel)

    cls = room.room_class
    d = _CLASSES[cls]
    band = room.effective_limits.temperature
    controlled = cls in (RoomClass.CHILLED, RoomClass.FROZEN)
    if controlled:
        setpoint, differential = _control_band(room)
    else:
        lo = band.low if band.low is not None else 10.0
        hi = band.high if band.high is not None else 30.0
        setpoint, differential = (lo + hi) / 2, 0.0
    every_h, for_min, heater = d.defrost
    dehumidify = 8.0 if controlled else 0.0
    rh_base = d.rh_base
    rh_vary = 0.03
    hum = room.effective_limits.humidity
    if hum is not None and hum.low is not None and hum.high is not None:
        # a room kept to a humidity band (a tea store at 30-55 %RH runs a dehumidifier, a
        # fruit room at 85-95 a humidifier): centred in it, the coil's drying within it,
        # varied by a twentieth of the band (3 % of 92 %RH would be most of a 10 %RH band:
        # a fruit room would sit at its limit, and its probes' own spread would cross it)
        width = hum.high - hum.low
        if controlled:
            dehumidify = min(dehumidify, width / 3)
        rh_base = (hum.low + hum.high) / 2 + dehumidify / 2
        rh_vary = width / 20 / rh_base
    return RoomParams(
        room_class=cls,
        controlled=controlled,
        setpoint=setpoint,
        differential=differential,
        low_limit=band.low,
        high_limit=band.high,
        coil_delta=vary(10.0),
        capacity_ratio=vary(3.0),
        tau_leak=vary(d.tau_leak_h * HOUR),
        tau_door=vary(d.tau_door_h * HOUR),
        tau_rh=vary(0.25 * HOUR),
        tau_coil=vary(120.0),
        tau_product=vary(3.0 * HOUR),
        surroundings_mean=vary(d.surroundings[0], 0.05),
        surroundings_amplitude=vary(d.surroundings[1], 0.2),
        utc_offset=utc_offset,
        min_off=180.0,
        defrost_interval=vary(every_h * HOUR, 0.05),
        defrost_duration=vary(for_min * 60.0),
        drip=120.0 if heater else 60.0,
        heater_rate=vary(heater / HOUR),
        door_rate=vary(d.door_rate, 0.2),
        door_min=d.door_s[0],
        door_max=d.door_s[1],
        door_alarm_delay=120.0,
        rh_base=vary(rh_base, rh_vary),
        rh_dehumidify=dehumidify,
        rh_defrost=6.0 if controlled else 0.0,
        rh_outside=65.0,
    )
