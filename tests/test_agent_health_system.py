"""The agent's health report says what a technician checks on the Pi itself: the outbox's
disk, the firmware's throttling flags (under-voltage above all), and whether the kernel's
clock is synchronised; the hub's model takes them as they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coldchain.protocol.status import health_from
from edge_agent import health, timekeeping
from edge_agent.buffer import Stats
from edge_agent.timekeeping import kernel_synchronised
from edge_agent.uplink import UplinkStats


@pytest.mark.parametrize(
    ("text", "now", "since_boot"),
    [
        ("0x0", set(), set()),
        ("0x50005", {"under_voltage", "throttled"}, {"under_voltage", "throttled"}),
        ("0x80000", set(), {"soft_temperature_limit"}),
        ("0xa", {"frequency_capped", "soft_temperature_limit"}, set()),
    ],
)
def test_the_firmwares_throttling_flags_are_read_as_vcgencmd_prints_them(
    tmp_path: Path, text: str, now: set[str], since_boot: set[str]
) -> None:
    path = tmp_path / "get_throttled"
    path.write_text(text + "\n")
    flags = health.throttling(path)
    assert flags is not None
    assert {k for k, v in flags.items() if v and not k.endswith("_since_boot")} == now
    assert {k.removesuffix("_since_boot") for k, v in flags.items() if v and "since" in k} == (
        since_boot
    )


def test_no_flags_where_the_kernel_has_none(tmp_path: Path) -> None:
    assert health.throttling(tmp_path / "absent") is None
    (tmp_path / "garbage").write_text("throttled=0x0")  # vcgencmd's own output, not sysfs
    assert health.throttling(tmp_path / "garbage") is None


def test_the_outbox_disk_and_the_clock(tmp_path: Path) -> None:
    d = health.disk(tmp_path)
    assert d is not None
    assert 0 < d["free_bytes"] <= d["total_bytes"]
    assert health.disk(tmp_path / "absent") is None
    synced = kernel_synchronised()
    if sys.platform == "linux":
        assert isinstance(synced, bool)  # this machine's answer, whichever it is


def test_asking_the_clock_starts_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock check asks every second: it must not run a program to find the C library
    (``ctypes.util.find_library`` runs ``ldconfig -p`` at each call)."""

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(timekeeping, "_LIBC", [], raising=False)  # as in a new agent
    first, second = kernel_synchronised(), kernel_synchronised()
    assert first == second
    if sys.platform == "linux":
        assert isinstance(first, bool)


def test_the_report_carries_them_and_the_hub_reads_them_back(tmp_path: Path) -> None:
    doc = health.report(
        started=0.0,
        buffer=Stats(0, 0, 0, None, 0, 0, 0),
        uplink=UplinkStats(),
        pollers=[],
        inputs=[],
        suppressed=0,
        data_dir=tmp_path,
    )
    report = health_from(doc)
    assert report.system is not None
    assert report.system.disk is not None
    assert report.system.disk.free_bytes == doc["system"]["disk"]["free_bytes"]
    assert report.system.clock_synchronised == doc["system"]["clock_synchronised"]
    assert report.system.throttling == doc["system"]["throttling"]


def test_an_emmc_says_how_worn_it_is(tmp_path: Path) -> None:
    (tmp_path / "life_time").write_text("0x02 0x09\n")
    (tmp_path / "pre_eol_info").write_text("0x01\n")
    assert health.storage_wear(tmp_path) == {"used_pct": 90, "pre_eol": "normal"}
    (tmp_path / "pre_eol_info").write_text("0x02\n")
    assert health.storage_wear(tmp_path) == {"used_pct": 90, "pre_eol": "warning"}
    (tmp_path / "life_time").write_text("0x00 0x00\n")  # not estimated
    assert health.storage_wear(tmp_path) == {"used_pct": None, "pre_eol": "warning"}
    (tmp_path / "life_time").write_text("rubbish\n")
    assert health.storage_wear(tmp_path) is None
    assert health.storage_wear(tmp_path / "no-emmc") is None, "an SD card reports nothing"
