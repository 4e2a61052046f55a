"""The gateway's health report: what a technician checks before driving out to a store."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from coldchain import __version__
from coldchain.clock import WALL, Clock
from edge_agent.buffer import Stats
from edge_agent.mqtt_input import MqttInput
from edge_agent.poller import BusPoller
from edge_agent.timekeeping import ClockStep, kernel_synchronised
from edge_agent.uplink import UplinkStats

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")
# the Raspberry Pi firmware's throttling flags, as `vcgencmd get_throttled` prints them
THROTTLED = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")
THROTTLE_BITS = {  # bit -> what it means (now: bits 0-3; since boot: bits 16-19)
    0: "under_voltage",
    1: "frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
}


def cpu_temperature(path: Path = THERMAL) -> float | None:
    """The SoC temperature in °C where the kernel exposes it (a Pi does), else None."""
    try:
        return int(path.read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


def throttling(path: Path = THROTTLED) -> dict[str, bool] | None:
    """The Pi firmware's throttling flags, now and since boot (``under_voltage``,
    ``under_voltage_since_boot``, ...), or None where the kernel does not expose them.
    Under-voltage is the most common Pi failure: a weak supply or cable."""
    try:
        bits = int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return None
    out = {}
    for bit, name in THROTTLE_BITS.items():
        out[name] = bool(bits >> bit & 1)
        out[f"{name}_since_boot"] = bool(bits >> (bit + 16) & 1)
    return out


EMMC = Path("/sys/block/mmcblk0/device")
PRE_EOL = {1: "normal", 2: "warning", 3: "urgent"}  # JEDEC eMMC 5.0 EXT_CSD PRE_EOL_INFO


def storage_wear(device: Path = EMMC) -> dict[str, Any] | None:
    """The boot storage's own wear estimate where it reports one: an eMMC (a Compute
    Module's, or an eMMC card) gives ``life_time`` (two types of cell, each in 10 % steps of
    its rated life: 0x01 is 0-10 % used, 0x0A 90-100 %, 0x0B past it) and ``pre_eol_info``
    (reserved blocks: normal, warning at 80 % consumed, urgent). ``used_pct`` is the upper
    end of the worse estimate. Plain SD cards report neither: None."""
    try:
        estimates = [int(x, 16) for x in (device / "life_time").read_text().split()]
        eol = int((device / "pre_eol_info").read_text().strip(), 16)
    except (OSError, ValueError):
        return None
    if not estimates or not all(0 <= e <= 11 for e in estimates):
        return None
    worst = max(estimates)
    return {"used_pct": None if worst == 0 else min(worst * 10, 110), "pre_eol": PRE_EOL.get(eol)}


def disk(path: Path) -> dict[str, int] | None:
    """Free and total bytes of the filesystem holding ``path`` (the outbox), or None."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return {"free_bytes": st.f_bavail * st.f_frsize, "total_bytes": st.f_blocks * st.f_frsize}


def system(
    data_dir: Path, clock_synchronised: bool | None, clock_step: ClockStep | None = None
) -> dict[str, Any]:
    """The Pi itself: the outbox's disk and the storage's wear, power and throttling, the
    clock."""
    return {
        "disk": disk(data_dir),
        "storage_wear": storage_wear(),
        "throttling": throttling(),
        "clock_synchronised": clock_synchronised,
        "clock_step": None if clock_step is None else dataclasses.asdict(clock_step),
    }


def report(
    *,
    started: float,
    buffer: Stats,
    uplink: UplinkStats,
    pollers: Sequence[BusPoller],
    inputs: Sequence[MqttInput],
    suppressed: int,
    clock: Clock = WALL,
    data_dir: Path | None = None,
    clock_synchronised: Callable[[], bool | None] = kernel_synchronised,
    clock_step: ClockStep | None = None,
) -> dict[str, Any]:
    """The report, stamped and aged in ``clock`` time (``started``: ``clock.monotonic()``);
    ``clock_synchronised`` says whether the gateway's clock is (the agent's clock check)."""
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
        "system": (
            None if data_dir is None else system(data_dir, clock_synchronised(), clock_step)
        ),
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
