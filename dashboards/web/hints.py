"""Plain-language hints about a gateway's Pi, from its last health report's ``system`` and
``buffer`` parts (``edge_agent/health.py``): what a technician should check before driving
out."""

from __future__ import annotations

from coldchain.protocol.status import HealthReport

DISK_LOW = 0.10  # free share of the outbox's filesystem below which the page warns
WEAR_HIGH = 80  # % of the storage's rated life used from which the page warns
BACKLOG_OLD_S = 600  # the oldest reading waiting in the outbox this long: the page says so
CPU_HOT_C = 80.0  # a Pi 4's firmware starts throttling at 80-85 °C


def pi_hints(report: HealthReport | None) -> list[tuple[str, int | None]]:
    """(i18n key, its number or None) for each thing to check, worst first; empty when all
    is well or nothing is known."""
    out: list[tuple[str, int | None]] = []
    buffer = report.buffer if report is not None else None
    if buffer is not None and (buffer.oldest_unsent_age_s or 0) >= BACKLOG_OLD_S:
        out.append(("hint_backlog", round((buffer.oldest_unsent_age_s or 0) / 60)))
    system = report.system if report is not None else None
    if system is None:
        return out
    flags = system.throttling or {}
    if flags.get("under_voltage"):
        out.append(("hint_under_voltage", None))
    elif flags.get("under_voltage_since_boot"):
        out.append(("hint_under_voltage_since_boot", None))
    if flags.get("throttled"):
        out.append(("hint_throttled", None))
    if report is not None and (report.cpu_temp_c or 0.0) >= CPU_HOT_C:
        out.append(("hint_hot", round(report.cpu_temp_c or 0.0)))
    disk = system.disk
    if disk and disk.free_bytes is not None and disk.total_bytes:
        free = disk.free_bytes / disk.total_bytes
        if free < DISK_LOW:
            out.append(("hint_disk", round(free * 100)))
    wear = system.storage_wear
    if wear is not None and (
        (wear.used_pct or 0) >= WEAR_HIGH or wear.pre_eol in ("warning", "urgent")
    ):
        out.append(("hint_wear", None))
    if system.clock_synchronised is False:
        out.append(("hint_clock", None))
    step = system.clock_step
    if step is not None and step.step_ms is not None and abs(step.step_ms) >= 1000:
        out.append(("hint_clock_step", round(step.step_ms / 1000)))
    return out
