"""The parcel sorting line as its PLC sees it: the conveyor runs, parcels are counted, and now
and then a parcel jams the line, which stops counting until the jam is cleared (here
automatically, after a few minutes, as the floor staff would).

Pure: time is an argument (simulated seconds), randomness comes from a seeded generator. Jams
arrive as a Poisson process in *running* time, so the schedule does not depend on how the
caller steps time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class LineParams:
    """Throughput and jam behaviour of a sorting line."""

    rate: float = 1.5  # parcels per second while running
    mean_between_jams: float = 2 * 3600.0  # running seconds
    jam_min: float = 120.0
    jam_max: float = 600.0


class SortingLine:
    """Conveyor state and the PLC's parcel counter."""

    def __init__(self, params: LineParams, *, rng: random.Random, start: float) -> None:
        self.params = params
        self._rng = rng
        self.t = start
        self.parcels_exact = 0.0
        self.jams = 0
        self.jammed = False
        self.clear_at = math.inf
        self._run_until_jam = rng.expovariate(1 / params.mean_between_jams)
        # Set from outside: a power cut of the hall, an operator stop (coil write), a
        # forced jam, an emergency stop, a latched fault (its code), full chutes (faults).
        self.power_cut = False
        self.stopped = False
        self.forced_jam = False
        self.e_stop = False
        self.fault_code = 0
        self.chutes_full = False
        self.fault_stop = False  # stopped with no alarm (the line_stop fault)

    @property
    def parcels(self) -> int:
        return int(self.parcels_exact)

    @property
    def running(self) -> bool:
        return not (
            self.power_cut
            or self.stopped
            or self.jammed
            or self.forced_jam
            or self.e_stop
            or self.fault_code
            or self.fault_stop
        )

    def clear_jam(self) -> None:
        """The floor staff clears the jam (also an operator's reset via the PLC)."""
        if self.jammed:
            self.jammed, self.clear_at = False, math.inf
            self._run_until_jam = self._rng.expovariate(1 / self.params.mean_between_jams)

    def advance_to(self, t: float) -> None:
        """Run the line forward to simulated time ``t``."""
        while self.t < t:
            if self.jammed and self.t >= self.clear_at:
                self.clear_jam()
            step = t - self.t
            if self.jammed:
                step = min(step, self.clear_at - self.t)
            elif self.running:
                step = min(step, self._run_until_jam)
            if self.running:
                self.parcels_exact += self.params.rate * step
                self._run_until_jam -= step
                if self._run_until_jam <= 1e-9:
                    self.jammed, self.jams = True, self.jams + 1
                    self.clear_at = (
                        self.t + step + self._rng.uniform(self.params.jam_min, self.params.jam_max)
                    )
            self.t += step
        if self.jammed and self.t >= self.clear_at:
            self.clear_jam()
