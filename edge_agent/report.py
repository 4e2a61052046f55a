"""Report on change (pure): which readings are worth sending.

A reading is sent when its series has not been sent yet, its quality or fault reason changed,
its value moved at least the deadband of its kind away from the value last *sent* (so a slow
drift still gets through), or the series has been silent for ``max_silence``. Doors, alarms,
status and defrost flags have no deadband: every change is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coldchain.profiles.schema import PointKind
from coldchain.reading import Reading, SeriesId


@dataclass(slots=True)
class _Sent:
    ts_ms: int
    value: float | None
    quality: str
    reason: str | None


class ReportFilter:
    """Remembers what was last sent per series; ``admit`` says whether to send a reading."""

    def __init__(self, deadbands: Mapping[PointKind, float], max_silence_s: float) -> None:
        self._deadbands = dict(deadbands)
        self._max_silence_ms = int(max_silence_s * 1000)
        self._sent: dict[SeriesId, _Sent] = {}
        self.suppressed = 0

    def retune(self, deadbands: Mapping[PointKind, float], max_silence_s: float) -> None:
        """New deadbands and longest silence (a revision from the centre); what was last
        sent per series is kept."""
        self._deadbands = dict(deadbands)
        self._max_silence_ms = int(max_silence_s * 1000)

    def admit(self, reading: Reading, kind: PointKind) -> bool:
        last = self._sent.get(reading.series)
        if last is None or self._changed(last, reading, kind):
            self._sent[reading.series] = _Sent(
                reading.ts_ms, reading.value, reading.quality, reading.reason
            )
            return True
        self.suppressed += 1
        return False

    def _changed(self, last: _Sent, r: Reading, kind: PointKind) -> bool:
        if r.ts_ms - last.ts_ms >= self._max_silence_ms:
            return True
        if r.quality != last.quality or r.reason != last.reason:
            return True
        if r.value is None or last.value is None:
            return r.value is not last.value
        band = self._deadbands.get(kind, 0.0)
        moved = abs(r.value - last.value)
        return moved >= band if band > 0 else moved > 0
