"""Refrigeration health from a simulated poultry store's controller (Dixell XR60CX: its
compressor and defrost relays) in the store: healthy days keep their duty cycle, defrost
three times a day and raises no flag; a compressor that wears down over the days is flagged
as working harder at the same load; a compressor that runs and no longer cools is flagged
within the hour."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from coldchain.config.site import SiteConfig
from coldchain.config.topology import site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.store.sqlite.store import SqliteStore
from dashboards.refrigeration import Health, room_health
from firmware_configs import SITES_DIR
from simulator.history import simulated_history
from simulator.plant import Plant

END = 1_767_250_800_000  # 2026-01-01T07:00:00Z: 15:00 in Shanghai
ROOM = "shuangxi-poultry/chilled-1"
PROFILES = ProfileRegistry.load()


def poultry() -> SiteConfig:
    """The example county cut to the poultry store: its rooms, its one gateway."""
    doc = yaml.safe_load((SITES_DIR / "county.yaml").read_text())
    doc["sites"] = [s for s in doc["sites"] if s["id"] == "shuangxi-poultry"]
    doc["gateways"] = [g for g in doc["gateways"] if g["site"] == "shuangxi-poultry"]
    doc.pop("alert_rules", None)
    return SiteConfig.model_validate(doc)


async def health(
    tmp_path: Path, days: float, before_step: Callable[[Plant, float], None] | None = None
) -> Health:
    cfg = poultry()
    store = SqliteStore(tmp_path / "store.db")
    try:
        for step in simulated_history(
            cfg, PROFILES, end_ms=END, days=days, step_s=120, before_step=before_step
        ):
            await store.write(step)
        points = [p for p in site_points(cfg, PROFILES) if p.room == "chilled-1"]
        got = await room_health(
            store, points, end_ms=END - 1, days=round(days) + 1, tz="Asia/Shanghai"
        )
    finally:
        await store.close()
    assert got is not None
    return got


@pytest.mark.slow
async def test_a_healthy_week(tmp_path: Path) -> None:
    got = await health(tmp_path, 3)
    full = got.days[1:-1]  # whole days (the first and last are partly simulated)
    assert all(d.duty is not None and 0.1 < d.duty < 0.9 for d in full), full
    assert all(3 <= d.defrosts <= 4 for d in full), [d.defrosts for d in full]  # every ~8 h
    assert all(d.defrost_min and 10 < d.defrost_min < 60 for d in full)
    assert all(d.doors > 0 and d.pull_down_min is not None for d in full), full
    assert got.flags == []
    assert len(got.hours) == 24
    assert all(v is not None for _, v in got.hours)


@pytest.mark.slow
async def test_a_compressor_wearing_down_works_harder_at_the_same_load(tmp_path: Path) -> None:
    start = END / 1000 - 4 * 86400

    def wear(plant: Plant, t: float) -> None:  # from full capacity to 35 % over four days
        plant.rooms[ROOM].model.capacity = 1.0 - 0.65 * (t - start) / (4 * 86400)

    got = await health(tmp_path, 4, wear)
    duties = [d.duty for d in got.days if d.duty is not None]
    assert duties[-1] > duties[1] + 0.1, duties
    (flag,) = [f for f in got.flags if f.kind == "duty_rising"]
    assert flag.detail >= 3.0  # percentage points a day


async def test_a_compressor_that_runs_and_no_longer_cools(tmp_path: Path) -> None:
    broke = END / 1000 - 2 * 3600

    def fail(plant: Plant, t: float) -> None:
        plant.rooms[ROOM].model.compressor_failed = t >= broke

    got = await health(tmp_path, 1, fail)
    flags = [f for f in got.flags if f.kind == "no_pull_down"]
    assert flags, got.flags
    assert all(f.at_ms >= broke * 1000 - 30 * 60_000 for f in flags)
    assert not [f for f in got.flags if f.kind == "duty_rising"]
