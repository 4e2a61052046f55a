"""Backups of a site whose readings are in VictoriaMetrics (issue 17, part 3: vmbackup): the
copy is made through the running server, every file of it is in the manifest, the restore
test restores it with vmrestore; after a wipe, a restore gives the same answers; a changed
byte in the copy is named and nothing is restored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

from coldchain.reading import Reading, SeriesId
from coldchain.store.lineproto.store import InfluxStore
from hub import backup
from hub.audit import AuditLog
from hub.backup_vm import DIR, VictoriaSource
from tests.victoria import VictoriaMetrics

T0 = 1_764_288_000_000  # 2025-11-28T00:00:00Z
SERIES = [SeriesId("s1", "gw1", f"probe-{i}", "temperature") for i in range(3)]
END = T0 + 2 * 86_400_000


async def answers(url: str) -> list[list[Reading]]:
    store = InfluxStore(url=url)
    try:
        return [await store.raw(s, T0, END) for s in SERIES]
    finally:
        await store.close()


async def test_a_victoria_metrics_site_is_backed_up_wiped_and_restored(
    victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    vm = victoria_metrics
    store = InfluxStore(url=vm.url)
    readings = [
        Reading(s, T0 + i * 300_000, round(2.0 + (i + k) % 17 / 10, 1))
        for k, s in enumerate(SERIES)
        for i in range(576)  # two days, every 5 minutes
    ]
    await store.write(readings)
    await store.close()
    vm.flush()
    before = await answers(vm.url)
    assert sum(map(len, before)) == len(readings)
    data = tmp_path / "hub"
    data.mkdir()
    AuditLog(data / "hub.db").close()

    made, digest = backup.make(data, tmp_path / "backups", victoria=VictoriaSource(vm.url, vm.data))
    manifest = json.loads((made / backup.MANIFEST).read_text())
    copied = [e for e in manifest["files"] if e["kind"] == "vmbackup"]
    assert copied
    assert all(e["path"].startswith(f"{DIR}/") for e in copied)
    assert backup.check(made, expect=digest).problems == []

    vm.stop()
    shutil.rmtree(vm.data)  # the server's disk lost
    vm.data.mkdir()
    restored = backup.restore(made, tmp_path / "restored", expect=digest, victoria_data=vm.data)
    assert (restored.problems, restored.skipped) == ([], [])
    assert not (tmp_path / "restored" / DIR).exists()  # it went to the server, not the data dir
    vm.start()
    assert await answers(vm.url) == before

    # without a data path the copy is left out, and said so
    left = backup.restore(made, tmp_path / "hub-only")
    assert left.skipped == [f"{DIR}: not restored (give the server's data path to restore it)"]

    # a changed byte in the copy: named, nothing restored
    victim = made / next(e["path"] for e in copied if e["bytes"] > 16)
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    rel = victim.relative_to(made).as_posix()
    assert backup.check(made).problems == [
        f"{rel}: its bytes differ from the manifest's digest: damaged"
    ]


async def test_the_daily_schedule_copies_the_victoria_metrics_store_too(
    victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    from coldchain.clock import WALL
    from coldchain.config.site import BackupSettings
    from hub.backup_schedule import BackupSchedule

    vm = victoria_metrics
    store = InfluxStore(url=vm.url)
    await store.write([Reading(SERIES[0], T0 + i * 60_000, 3.0) for i in range(60)])
    await store.close()
    vm.flush()
    data = tmp_path / "hub"
    data.mkdir()
    audit = AuditLog(data / "hub.db")
    sched = BackupSchedule(
        BackupSettings(to=str(tmp_path / "backups")),
        data,
        tz=ZoneInfo("Asia/Shanghai"),
        audit=audit,
        clock=WALL,
        on_state=lambda s: None,
        victoria=VictoriaSource(vm.url, vm.data),
    )
    state = sched.run_once()
    assert state.good_path is not None
    assert state.failed_ms is None
    manifest = json.loads((Path(state.good_path) / backup.MANIFEST).read_text())
    assert any(e["kind"] == "vmbackup" for e in manifest["files"])
    audit.close()
