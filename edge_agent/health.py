"""The gateway's health report: what a technician checks before driving out to a store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coldchain import __version__
from coldchain.clock import WALL, Clock
from edge_agent.buffer import Stats
from edge_agent.mqtt_input import MqttInput
from edge_agent.poller import BusPoller
from edge_agent.uplink import UplinkStats

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temperature(path: Path = THERMAL) -> float | None:
    """The SoC temperature in °C where the kernel exposes it (a Pi does), else None."""
    try:
        return int(path.read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


def report(
    *,
    started: float,
    buffer: Stats,
    uplink: UplinkStats,
    pollers: Sequence[BusPoller],
    inputs: Sequence[MqttInput],
    suppressed: int,
    clock: Clock = WALL,
) -> dict[str, Any]:
    """The report, stamped and aged in ``clock`` time (``started``: ``clock.monotonic()``)."""
    now_ms = clock.now_ms()
    devices: dict[str, Any] = {}
    requests_per_cycle = 0
    for poller in pollers:
        for d in poller.devices:
            requests_per_cycle += len(d.blocks)
            devices[d.device.id] = {
                "bus": poller.bus.id,
                "polls": d.polls,
                "ok": d.polls_ok,
                "success": round(d.polls_ok / d.polls, 4) if d.polls else None,
                "requests": d.requests,
                "blocks": len(d.blocks),
                "failures_in_a_row": d.failures,
                "failing_since_ms": d.failing_since_ms,
                "failed_polls": d.failed_polls,
                "last_error": d.last_error,
            }
    for inp in inputs:
        for m in inp.devices:
            devices[m.device.id] = {
                "bus": inp.bus.id,
                "messages": m.messages,
                "malformed": m.malformed,
                "last_seen_ms": m.last_seen_ms,
                "last_error": m.last_error,
            }
    oldest = buffer.oldest_ts_ms
    return {
        "v": 1,
        "ts": now_ms,
        "version": __version__,
        "uptime_s": round(clock.monotonic() - started, 1),
        "cpu_temp_c": cpu_temperature(),
        "buffer": {
            "pending": buffer.pending,
            "oldest_unsent_age_s": None if oldest is None else round((now_ms - oldest) / 1000, 1),
            "bytes": buffer.used_bytes,
            "batches_in_flight": buffer.batches_in_flight,
            "thinned_total": buffer.thinned_total,
            "dropped_total": buffer.dropped_total,
        },
        "uplink": {
            "connects": uplink.connects,
            "batches_sent": uplink.batches_sent,
            "batches_resent": uplink.batches_resent,
            "readings_acked": uplink.readings_acked,
            "bad_acks": uplink.bad_acks,
            "forged_acks": uplink.forged_acks,
            "last_error": uplink.last_error,
        },
        "requests_per_cycle": requests_per_cycle,
        "suppressed_unchanged": suppressed,
        "errors": sum(1 for d in devices.values() if d.get("last_error")),
        "sensor_topics_unknown": sum(i.unknown_topic for i in inputs),
        "devices": devices,
    }
