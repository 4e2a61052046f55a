"""Room classes and their default limits (GB/T 24616-2019, GSP), shared by the site config
and the alert rules."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from coldchain.config.base import StrictModel


class RoomClass(StrEnum):
    """What a room keeps; sets its default limits (see docs/DOMAIN and GB/T 24616-2019)."""

    CHILLED = "chilled"
    FROZEN = "frozen"
    AMBIENT = "ambient"
    SORTING = "sorting"


class Band(StrictModel):
    """An allowed range; either end may be open."""

    low: float | None = Field(None, description="lowest allowed value")
    high: float | None = Field(None, description="highest allowed value")

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low {self.low:g} must be below high {self.high:g}")
        return self


class Limits(StrictModel):
    """Temperature (°C) and relative humidity (%RH) limits of a room."""

    temperature: Band = Field(description="temperature band, °C")
    humidity: Band | None = Field(None, description="humidity band, %RH (optional)")


DEFAULT_LIMITS: dict[RoomClass, Limits] = {
    # Produce and poultry are usually kept at 0-4 °C; GB/T 24616 allows chilled up to 8 °C.
    RoomClass.CHILLED: Limits(temperature=Band(low=0, high=4), humidity=Band(low=75, high=95)),
    # Frozen: at or below -18 °C.
    RoomClass.FROZEN: Limits(temperature=Band(low=None, high=-18)),
    # Ambient ("normal temperature") storage, GSP: 10-30 °C, 35-75 %RH.
    RoomClass.AMBIENT: Limits(temperature=Band(low=10, high=30), humidity=Band(low=35, high=75)),
    # The sorting hall: parcels wait here minutes, not days; keep it out of frost and heat.
    RoomClass.SORTING: Limits(temperature=Band(low=0, high=30)),
}
