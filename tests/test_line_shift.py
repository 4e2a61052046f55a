"""The sorting line's shift on the room page: parcels sorted and rejected per hour, counted
from the PLC's counters in the store, are the simulator's own counters' increase hour by
hour; the line's jams and stops are the spans its PLC reported; the sorting hall's page shows
them, another room's does not."""

from __future__ import annotations

from pathlib import Path

from coldchain.clock import ManualClock
from coldchain.config.loader import load_site_config
from coldchain.config.site import SiteConfig
from coldchain.config.topology import site_points
from coldchain.profiles.registry import ProfileRegistry
from dashboards.web.line import HOUR_MS, has_line, shift
from hub.demo import EXAMPLE_SITE
from simulator.history import seed_history
from simulator.plant import Plant
from tests.hubkit import running_hub_service, session_header
from tests.services import Broker

END = 1_767_250_800_000  # 2026-01-01T07:00:00Z: 15:00 in Shanghai, on the hour
HOURS = 6
STEP_S = 60


def plant_truth(
    cfg: SiteConfig, profiles: ProfileRegistry
) -> tuple[dict[int, int], list[tuple[int, int]]]:
    """The simulator's line, stepped as the history is: its counters at the last step of
    each hour, and when its jams began and ended (at the steps)."""
    start = END / 1000 - HOURS * 3600
    plant = Plant(cfg, profiles, seed=1, start=start)
    line = plant.rooms["chengqu-centre/sorting-hall"].line
    assert line is not None
    counts: dict[int, int] = {}
    jams: list[tuple[int, int]] = []
    jammed: int | None = None
    t = start + STEP_S
    while t < END / 1000:
        plant.advance_rooms(t)
        hour = int((t * 1000 - (END - HOURS * HOUR_MS)) // HOUR_MS)
        counts[hour] = line.parcels
        now = line.jammed
        if now and jammed is None:
            jammed = round(t * 1000)
        elif not now and jammed is not None:
            jams.append((jammed, round(t * 1000)))
            jammed = None
        t += STEP_S
    return counts, jams


async def test_parcels_per_hour_are_the_simulators_counters(
    tmp_path: Path, mosquitto: Broker
) -> None:
    profiles = ProfileRegistry.load()
    cfg = load_site_config(EXAMPLE_SITE, profiles)
    points = [p for p in site_points(cfg, profiles) if p.room == "sorting-hall"]
    assert has_line(points)
    counts, jams = plant_truth(cfg, profiles)

    clock = ManualClock(END / 1000)  # the hub's now: the history's end
    async with running_hub_service(
        cfg, profiles, tmp_path / "hub", mosquitto.url, clock=clock
    ) as hub:
        await seed_history(
            cfg, profiles, hub.store.write, end_ms=END, days=HOURS / 24, step_s=STEP_S
        )
        got = await shift(hub.store, points, end_ms=END - 1, hours=HOURS, tz="Asia/Shanghai")
        assert [h.start_ms for h in got.hours] == [
            END - (HOURS - i) * HOUR_MS for i in range(HOURS)
        ]
        # the first hour has no reading before it: it counts from its first reading
        want = [counts[0] - line_first(cfg, profiles)] + [
            counts[h] - counts[h - 1] for h in range(1, HOURS)
        ]
        assert [h.sorted for h in got.hours] == want
        assert all(0 < (h.rejected or 0) < (h.sorted or 0) for h in got.hours)
        assert got.total("sorted") == sum(want)
        assert [(s.start_ms, s.end_ms) for s in got.spans if s.kind == "jam"] == jams
        assert jams, "six hours of the line without a jam: pick another seed"
        stops = [s for s in got.spans if s.kind == "conveyor_running"]
        assert [(s.start_ms, s.end_ms) for s in stops] == jams  # a jam holds the belt

        # the page: the last 12 hours to the hub's now, the six seeded ones among them
        hall = await page(hub.url + "/rooms/chengqu-centre/sorting-hall")
        rows = hall.split('id="line-hours"')[1].split("</table>")[0]
        for h, n in zip(got.hours, want, strict=True):
            assert f"<td>{n}</td>" in rows, (h.start_ms, n)
        assert rows.count("<tr>") == 1 + 12
        events = hall.split('id="line-events"')[1].split("</table>")[0]
        assert events.count('class="jam"') == len(jams)
        cold = await page(hub.url + "/rooms/chengqu-centre/cold-room-1")
        assert 'id="line-hours"' not in cold


def line_first(cfg: SiteConfig, profiles: ProfileRegistry) -> int:
    """The line's counter at the history's first step."""
    start = END / 1000 - HOURS * 3600
    plant = Plant(cfg, profiles, seed=1, start=start)
    plant.advance_rooms(start + STEP_S)
    line = plant.rooms["chengqu-centre/sorting-hall"].line
    assert line is not None
    return line.parcels


async def page(url: str) -> str:
    import asyncio
    import urllib.request

    def get() -> str:
        req = urllib.request.Request(url, headers=session_header(url))
        with urllib.request.urlopen(req, timeout=20) as resp:
            body: bytes = resp.read()
            return body.decode()

    return await asyncio.to_thread(get)
