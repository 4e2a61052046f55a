"""Simulated history for the demo's first screen: a reading every 5 minutes of every enabled
point of the example county, from the simulator's plant, written through the hub's SQLite
store; repeatable from its seed; the rooms' air where their class keeps it."""

from __future__ import annotations

import statistics
from pathlib import Path

from coldchain.config.limits import RoomClass
from coldchain.config.loader import load_site_config
from coldchain.config.topology import rooms, site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.store.sqlite.store import SqliteStore
from hub.demo import EXAMPLE_SITE
from simulator.history import seed_history, simulated_history

END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000


async def test_a_day_of_every_point_through_the_store(tmp_path: Path) -> None:
    profiles = ProfileRegistry.load()
    cfg = load_site_config(EXAMPLE_SITE, profiles)
    store = SqliteStore(tmp_path / "store.db")
    try:
        n = await seed_history(cfg, profiles, store.write, end_ms=END, days=1)
        points = site_points(cfg, profiles)
        latest = await store.latest()
        assert set(latest) == {p.sid for p in points}  # every enabled point
        assert n == len(points) * (DAY // 300_000 - 1)  # one a step, none left out
        assert all(END - 300_000 <= r.ts_ms < END for r in latest.values())
        where = rooms(cfg)
        for p in points:
            if p.kind is PointKind.TEMPERATURE and p.role is PointRole.ROOM:
                _, room = where[(p.sid.site, p.room)]
                got = await store.raw(p.sid, END - DAY, END)
                middle = statistics.median(r.value for r in got if r.value is not None)
                if room.room_class is RoomClass.CHILLED:
                    assert 0.0 < middle < 4.0, (p.sid, middle)
                elif room.room_class is RoomClass.FROZEN:
                    assert middle < -18.0, (p.sid, middle)
    finally:
        await store.close()


def test_the_same_seed_gives_the_same_history() -> None:
    profiles = ProfileRegistry.load()
    cfg = load_site_config(EXAMPLE_SITE, profiles)

    def hour(seed: int) -> list[tuple[str, int, float | None]]:
        steps = simulated_history(cfg, profiles, end_ms=END, days=1 / 24, seed=seed)
        return [(str(r.series), r.ts_ms, r.value) for step in steps for r in step]

    assert hour(1) == hour(1)
    assert hour(1) != hour(2)
