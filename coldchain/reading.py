"""A reading: one value of one series at one instant, with its quality.

Readings are created on the hot path of the agent (thousands per second on a Pi), so they
are slotted dataclasses, not pydantic models; the wire protocol validates them at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class Quality(StrEnum):
    """How far a value can be trusted."""

    GOOD = "good"
    BAD = "bad"  # no usable value: probe fault, device silent, exception reply
    UNCERTAIN = "uncertain"  # a value, but suspect: e.g. stale or out of calibration


CLOCK_UNSYNCHRONISED = "clock unsynchronised"
"""The reason of a reading a gateway took while its clock was not synchronised (uncertain:
the value is real, its time may be off; ``edge_agent/timekeeping.py``)."""
CLOCK_SHIFT = "clock_shift_ms"
"""The meta key of a reading whose time the centre corrected: by how much (ms)."""


def clock_corrected(shift_ms: int) -> str:
    """The reason of a reading whose time the centre corrected by ``shift_ms``."""
    return f"clock corrected by {shift_ms / 1000:+.3f} s"


class SeriesId(NamedTuple):
    """Identity of a series: site / gateway / device / point."""

    site: str
    gateway: str
    device: str
    point: str

    def __str__(self) -> str:
        return "/".join(self)

    @classmethod
    def parse(cls, text: str) -> SeriesId:
        parts = text.split("/")
        if len(parts) != 4 or not all(parts):
            raise ValueError(f"series {text!r} is not site/gateway/device/point")
        return cls(*parts)


@dataclass(slots=True)
class Reading:
    """One value of one series, stamped when it was read (UTC epoch milliseconds).

    Treat it as immutable. It is not ``frozen`` because a frozen dataclass costs 1 µs more
    per construction (object.__setattr__ for every field), and the hub's ingest builds one
    per reading received: that was a third of the ingest's CPU.
    """

    series: SeriesId
    ts_ms: int
    value: float | None
    quality: Quality = Quality.GOOD
    reason: str | None = None
    # Calibration offset applied to ``value`` (recorded, never hidden), and similar metadata.
    meta: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.quality is Quality.GOOD and self.value is None:
            raise ValueError(f"{self.series}: a good reading needs a value")
        if self.quality is not Quality.GOOD and not self.reason:
            raise ValueError(f"{self.series}: a {self.quality} reading needs a reason")
