"""The JSON messages a gateway publishes about itself, as validated models: its retained
``status`` (``online``, or ``offline`` as its last will) and its periodic ``health`` report
(``edge_agent/health.py`` writes it; docs/protocol.md).

Nothing else at the hub sees these payloads: :func:`decode_status` and :func:`decode_health`
parse them with bounded size and depth (:mod:`coldchain.protocol.bounded`) and validate them
strictly (no ``true`` for a number, no string for a count, every number finite and in
range), raising a :class:`~coldchain.protocol.messages.ProtocolError` that names the field.

Unknown fields: ``status`` is four fixed fields, so anything else is refused. ``health`` is
our own agent's report, and agents are upgraded one gateway at a time, before or after the
hub: fields the hub does not know are dropped (never stored), so that a newer agent's extra
counter does not cost the hub the backlog and poll success it needs; for the same reason a
field an older agent did not send is absent (None), not an error. What is there must have
the right type and range. Long texts in a report (an agent's last error) are shortened,
not refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from coldchain.protocol.bounded import loads_bounded
from coldchain.protocol.limits import (
    MAX_HEALTH_BYTES,
    MAX_HEALTH_DEVICES,
    MAX_ID_CHARS,
    MAX_JSON_DEPTH,
    MAX_STATUS_BYTES,
)
from coldchain.protocol.messages import ProtocolError

MAX_COUNT = 2**63 - 1
MAX_TEXT = 500
ID = rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_ID_CHARS - 1}}}$"


def _shorten(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 1] + "…"


Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Ms = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Seconds = Annotated[float, Field(ge=-(10.0**12), le=10.0**12)]
Text = Annotated[str | None, AfterValidator(_shorten)]
Version = Annotated[str, Field(max_length=64)]


class _Message(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, allow_inf_nan=False, extra="ignore")


class StatusMessage(BaseModel):
    """``{"v": 1, "state": "online", "ts": …, "version": …}`` (retained)."""

    model_config = ConfigDict(strict=True, frozen=True, allow_inf_nan=False, extra="forbid")

    v: Literal[1]
    state: Literal["online", "offline"]
    ts: Ms | None = None
    version: Version | None = None


class BufferHealth(_Message):
    """The gateway's outbox."""

    pending: Count | None = None
    oldest_unsent_age_s: Seconds | None = None
    bytes: Count | None = None
    batches_in_flight: Count | None = None
    thinned_total: Count | None = None
    dropped_total: Count | None = None


class UplinkHealth(_Message):
    """The gateway's link to the centre."""

    connects: Count | None = None
    batches_sent: Count | None = None
    batches_resent: Count | None = None
    readings_acked: Count | None = None
    bad_acks: Count | None = None
    forged_acks: Count | None = None  # acks whose MAC did not verify, ignored
    last_error: Text = None


class DeviceHealth(_Message):
    """One device: a polled Modbus device (polls, ok, success …) or an MQTT sensor
    (messages, malformed, last_seen_ms); the fields of the other kind are absent."""

    bus: Annotated[str, Field(pattern=ID)] | None = None
    polls: Count | None = None
    ok: Count | None = None
    success: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    requests: Count | None = None
    blocks: Count | None = None
    failures_in_a_row: Count | None = None
    failing_since_ms: Ms | None = None
    failed_polls: Count | None = None
    messages: Count | None = None
    malformed: Count | None = None
    last_seen_ms: Ms | None = None
    last_error: Text = None


DeviceId = Annotated[str, Field(pattern=ID)]
Bytes = Annotated[int, Field(ge=0, le=2**62)]


class DiskHealth(_Message):
    free_bytes: Bytes | None = None
    total_bytes: Bytes | None = None


class StorageWear(_Message):
    """An eMMC's own wear estimate (``edge_agent/health.py``): share of rated life used (the
    upper end of its 10 % step; 110 past it), and its reserved blocks' state."""

    used_pct: Annotated[int, Field(ge=0, le=110)] | None = None
    pre_eol: Literal["normal", "warning", "urgent"] | None = None


class ClockStepHealth(_Message):
    """The gateway's clock becoming synchronised (``edge_agent/timekeeping.py``): when, how
    far it moved then (the error of the readings before), how many were marked."""

    at_ms: Ms | None = None
    step_ms: Annotated[int, Field(ge=-(2**53), le=2**53)] | None = None
    marked: Count | None = None


class SystemHealth(_Message):
    """The Pi itself: the outbox's disk and the storage's wear where it reports one, the
    firmware's throttling flags (under-voltage, frequency capped, throttled, soft
    temperature limit; now and ``_since_boot``), and whether the kernel's clock is
    synchronised."""

    disk: DiskHealth | None = None
    storage_wear: StorageWear | None = None
    throttling: Annotated[dict[str, bool], Field(max_length=16)] | None = None
    clock_synchronised: bool | None = None
    clock_step: ClockStepHealth | None = None


class HealthReport(_Message):
    """A gateway's health report, as ``edge_agent/health.py`` writes it."""

    v: Literal[1] = 1
    ts: Ms | None = None
    version: Version | None = None
    uptime_s: Annotated[float, Field(ge=0.0, le=10.0**12)] | None = None
    cpu_temp_c: Annotated[float, Field(ge=-100.0, le=200.0)] | None = None
    system: SystemHealth | None = None
    buffer: BufferHealth | None = None
    uplink: UplinkHealth | None = None
    requests_per_cycle: Count | None = None
    suppressed_unchanged: Count | None = None
    errors: Count | None = None
    sensor_topics_unknown: Count | None = None
    devices: (
        Annotated[dict[DeviceId, DeviceHealth], Field(max_length=MAX_HEALTH_DEVICES)] | None
    ) = None

    def poll_success(self) -> dict[str, float | None]:
        """Each polled device's share of successful polls (None before its first poll)."""
        devices = self.devices or {}
        return {
            k: d.success for k, d in devices.items() if d.success is not None or d.polls is not None
        }

    def failing(self) -> dict[str, tuple[int | None, str | None]]:
        """Each device failing now (polls without data since ``failing_since_ms``): since
        when, and its last error."""
        devices = self.devices or {}
        return {
            k: (d.failing_since_ms, d.last_error)
            for k, d in devices.items()
            if d.failing_since_ms is not None
        }

    @property
    def backlog(self) -> int | None:
        """Readings waiting in the gateway's outbox, if the report says."""
        return self.buffer.pending if self.buffer is not None else None


def _located(exc: ValidationError, what: str) -> ProtocolError:
    """The first errors of ``exc``, each with its field path."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or what
        parts.append(f"{where}: {err['msg']}"[:200])
    more = exc.error_count() - len(parts)
    tail = f" (and {more} more)" if more > 0 else ""
    return ProtocolError(f"{what}: {'; '.join(parts)}{tail}", reason="schema")


def status_from(value: Any) -> StatusMessage:
    """A parsed status document, validated."""
    try:
        return StatusMessage.model_validate(value)
    except ValidationError as exc:
        raise _located(exc, "status") from None


def health_from(value: Any) -> HealthReport:
    """A parsed health document (received, or stored by any hub version), validated."""
    try:
        return HealthReport.model_validate(value)
    except ValidationError as exc:
        raise _located(exc, "health") from None


def decode_status(data: bytes) -> StatusMessage:
    """The status message in ``data``, or :class:`ProtocolError` saying why not."""
    doc = loads_bounded(data, max_bytes=MAX_STATUS_BYTES, max_depth=2, what="status")
    return status_from(doc)


def decode_health(data: bytes) -> HealthReport:
    """The health report in ``data``, or :class:`ProtocolError` saying why not."""
    doc = loads_bounded(data, max_bytes=MAX_HEALTH_BYTES, max_depth=MAX_JSON_DEPTH, what="health")
    return health_from(doc)
