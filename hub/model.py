"""What the API answers with: response models (documented in the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list."""

    items: list[T]
    total: int = Field(description="items in the whole list")
    limit: int
    offset: int


class LimitsOut(BaseModel):
    temperature_low: float | None
    temperature_high: float | None
    humidity_low: float | None
    humidity_high: float | None


class RoomOut(BaseModel):
    site: str
    id: str
    name: str
    room_class: str = Field(serialization_alias="class")
    limits: LimitsOut
    area_m2: float | None


class SiteOut(BaseModel):
    id: str
    name: str
    timezone: str
    rooms: list[RoomOut]


class PointOut(BaseModel):
    series: str = Field(description="site/gateway/device/point")
    site: str
    room: str
    gateway: str
    device: str
    point: str
    kind: str
    unit: str
    calibration: float


class DeviceOut(BaseModel):
    site: str
    room: str
    gateway: str
    id: str
    name: str | None
    profile: str
    model: str
    bus: str
    unit_id: int | None
    poll_interval_s: float
    points: list[str]


class ReadingOut(BaseModel):
    series: str
    ts_ms: int
    value: float | None
    quality: str
    reason: str | None
    calibration: float


class BucketOut(BaseModel):
    ts_ms: int
    value: float | None
    count: int


class HistoryOut(BaseModel):
    series: str
    start_ms: int
    end_ms: int
    step_ms: int | None = Field(description="None: raw readings")
    agg: str | None
    buckets: list[BucketOut] = Field(default_factory=list)
    readings: list[ReadingOut] = Field(default_factory=list)


class DoorIntervalOut(BaseModel):
    series: str
    opened_ms: int
    closed_ms: int | None
    duration_s: float


class GatewayConfigOut(BaseModel):
    """The config revisions pushed to a gateway (gateway/configpush.py)."""

    desired_rev: int | None  # the latest pushed
    applied_rev: int | None  # the latest it applied
    state: str  # applied | pending | refused | none
    drift: bool  # the latest pushed is not the one it runs
    error: str | None  # why it refused the latest it answered
    restart: list[str]  # what of the applied revision waits for the agent's restart
    pushed_ms: int | None
    acked_ms: int | None


class GatewayOut(BaseModel):
    id: str
    site: str
    state: str
    state_since_ms: int | None
    last_seen_ms: int | None
    version: str | None
    backlog: int | None
    poll_success: dict[str, float | None]
    health: dict[str, Any] | None
    clock_offset_ms: float | None = None  # its clock ahead of the hub's, as measured
    clock_uncertainty_ms: float | None = None  # the offset is known within this
    clock_measured_ms: int | None = None
    config: GatewayConfigOut | None = None


class AuditOut(BaseModel):
    id: int
    ts_ms: int
    actor: str
    action: str
    object: str
    before: Any
    after: Any
    comment: str | None
