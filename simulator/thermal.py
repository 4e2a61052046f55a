"""The thermal model of one room: air temperature, humidity, the evaporator coil and the
product core, driven by heat leak from surroundings with a daily cycle, a thermostat with
hysteresis and an anti-short-cycle delay, defrost cycles, door openings and faults (power
cut, compressor failure, door stuck open).

Pure: no clock, no I/O. Time is an argument (simulated UTC epoch seconds) and randomness
comes from generators seeded by the caller, so the same seed and calls give the same run.
Integration is explicit Euler in steps of at most ``max_step`` seconds, split at events.

A lumped first-order model: ``dT/dt = (Ts - T)/tau_leak + (Ts - T)/tau_door * door
- k * (T - T_coil) * cooling + heater``, where ``k`` is chosen so that the unit removes
``capacity_ratio`` times the heat leaking in at the setpoint (a duty cycle of about 1/3).
"""

from __future__ import annotations

import math
import random
from enum import StrEnum

from simulator.room_params import HOUR, RoomParams


class DefrostPhase(StrEnum):
    """Where a refrigeration controller is in its defrost cycle."""

    OFF = "off"
    DEFROST = "defrost"  # compressor off; heater on for an electric defrost
    DRIP = "drip"  # compressor and fans off while the coil drains


FANS_FAILED_SHARE = 0.15
"""The share of its cooling a coil still gives the room with its fans stopped."""


class RoomModel:
    """Air, coil and product temperatures and humidity of one room, advanced in time."""

    def __init__(
        self, params: RoomParams, *, rng: random.Random, start: float, max_step: float = 5.0
    ) -> None:
        p = self.params = params
        self._rng = rng
        self.max_step = max_step
        self.t = start
        self.setpoint = p.setpoint
        self.differential = p.differential
        self.air = (
            p.setpoint + rng.uniform(0.2, 0.8) * p.differential
            if p.controlled
            else p.surroundings(start)
        )
        self.coil = self.air
        self.product = self.air
        self.rh = p.rh_base
        self.relay = False  # the controller's compressor output
        self.last_switch = start - p.min_off
        self.compressor_starts = 0
        self.defrost = DefrostPhase.OFF
        self.phase_end = math.inf
        self.next_defrost = (
            start + rng.uniform(0.2, 1.0) * p.defrost_interval if p.controlled else math.inf
        )
        self.door_scheduled = False
        self.door_close_at = math.inf
        self.next_door = start + self._door_gap(start)
        self.door_open_since: float | None = None
        # Faults, set by the fault injector.
        self.power_cut = False
        self.compressor_failed = False
        self.door_stuck_open = False
        # The compressor's share of its rated cooling: a worn compressor, low refrigerant or
        # an iced coil cools less and runs longer (history tests wear it down over days).
        self.capacity = 1.0
        # The evaporator fans stopped (a seized motor, a blown fuse): the compressor runs,
        # but air no longer moves over the coil, which ices while the room warms.
        self.fans_failed = False

    # -- derived state ------------------------------------------------------------------
    @property
    def door_open(self) -> bool:
        return self.door_scheduled or self.door_stuck_open

    @property
    def compressor_running(self) -> bool:
        return self.relay and not self.compressor_failed and not self.power_cut

    @property
    def heater_on(self) -> bool:
        return (
            self.defrost is DefrostPhase.DEFROST
            and self.params.heater_rate > 0
            and (not self.power_cut)
        )

    @property
    def fans_on(self) -> bool:
        return (
            self.params.controlled
            and not self.power_cut
            and not self.fans_failed
            and self.defrost is not DefrostPhase.DRIP
        )

    @property
    def door_alarm(self) -> bool:
        since = self.door_open_since
        return since is not None and self.t - since >= self.params.door_alarm_delay

    @property
    def high_alarm(self) -> bool:
        hi = self.params.high_limit
        return hi is not None and self.air > hi

    @property
    def low_alarm(self) -> bool:
        lo = self.params.low_limit
        return lo is not None and self.air < lo

    @property
    def surroundings(self) -> float:
        return self.params.surroundings(self.t)

    # -- time ---------------------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        """Run the room forward to simulated time ``t`` (never backwards)."""
        while self.t < t:
            self._events()
            self._thermostat()
            nxt = min(t, self.t + self.max_step, *self._pending())
            self._integrate(nxt - self.t)
            self.t = nxt
        self._events()
        self._thermostat()

    def _pending(self) -> list[float]:
        times = [self.door_close_at if self.door_scheduled else self.next_door]
        times.append(self.phase_end if self.defrost is not DefrostPhase.OFF else self.next_defrost)
        return [x for x in times if x > self.t]

    def _door_gap(self, t: float) -> float:
        p = self.params
        rate = p.door_rate * (1.0 if p.working_hours(t) else 0.1) / HOUR
        return self._rng.expovariate(rate) if rate > 0 else math.inf

    def _events(self) -> None:
        p, t = self.params, self.t
        if not self.door_scheduled and t >= self.next_door:
            self.door_scheduled = True
            self.door_close_at = t + self._rng.uniform(p.door_min, p.door_max)
        elif self.door_scheduled and t >= self.door_close_at:
            self.door_scheduled = False
            self.next_door = t + self._door_gap(t)
        if self.door_open and self.door_open_since is None:
            self.door_open_since = t
        elif not self.door_open:
            self.door_open_since = None
        if self.defrost is DefrostPhase.OFF and t >= self.next_defrost:
            self.defrost, self.phase_end = DefrostPhase.DEFROST, t + p.defrost_duration
            self.next_defrost += p.defrost_interval
        elif self.defrost is DefrostPhase.DEFROST and t >= self.phase_end:
            self.defrost, self.phase_end = DefrostPhase.DRIP, t + p.drip
        elif self.defrost is DefrostPhase.DRIP and t >= self.phase_end:
            self.defrost, self.phase_end = DefrostPhase.OFF, math.inf

    def _thermostat(self) -> None:
        want = self.relay
        off = not self.params.controlled or self.power_cut or self.defrost is not DefrostPhase.OFF
        if off or (self.relay and self.air <= self.setpoint):
            want = False
        elif not self.relay and self.air >= self.setpoint + self.differential:
            want = self.t - self.last_switch >= self.params.min_off
        if want != self.relay:
            self.relay, self.last_switch = want, self.t
            if want:
                self.compressor_starts += 1

    def _integrate(self, h: float) -> None:
        p = self.params
        ts = p.surroundings(self.t)
        door = 1.0 if self.door_open else 0.0
        d_air = (ts - self.air) / p.tau_leak + door * (ts - self.air) / p.tau_door
        coil_target = self.air
        if self.compressor_running:
            coil_target = self.setpoint - p.coil_delta
            moved = FANS_FAILED_SHARE if self.fans_failed else 1.0  # natural convection only
            d_air -= p.cooling_k * self.capacity * moved * (self.air - coil_target)
        if self.heater_on:
            d_air += p.heater_rate
            coil_target = 10.0  # the heater runs until the coil reaches its end temperature
        rh_target = p.rh_base
        if self.compressor_running:
            rh_target -= p.rh_dehumidify
        if self.defrost is not DefrostPhase.OFF:
            rh_target += p.rh_defrost
        if not p.controlled:
            rh_target -= 2.0 * (self.air - p.surroundings_mean)  # warm afternoons are drier
        d_rh = (rh_target - self.rh) / p.tau_rh + door * (p.rh_outside - self.rh) / p.tau_door
        self.air += d_air * h
        self.coil += (coil_target - self.coil) * min(1.0, h / p.tau_coil)
        self.product += (self.air - self.product) * min(1.0, h / p.tau_product)
        self.rh = min(100.0, max(1.0, self.rh + d_rh * h))
