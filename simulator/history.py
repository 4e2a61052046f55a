"""Simulated history: the readings the site's devices would have given over the past days,
from the simulator's own plant (the rooms' thermal models with their door traffic and
defrosts, each device's points encoded and decoded as the agents read them), for the demo's
first screen: a week of charts, reports and statistics instead of a few minutes.

The readings are what the agents would have sent, one a step for every enabled point
(calibration applied as the agent applies it; a value the device cannot give, such as an
open probe's, left out), written by the caller through the hub's store. They never pass the
alert rules: history is not the live stream, so seeding raises no alert and sends no SMS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from coldchain.config.site import SiteConfig
from coldchain.config.topology import site_points
from coldchain.profiles.registry import ProfileRegistry
from coldchain.reading import Reading
from simulator.plant import Plant

DAY_S = 86_400


def simulated_history(
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    *,
    end_ms: int,
    days: float = 7.0,
    step_s: int = 60,
    seed: int = 1,
    before_step: Callable[[Plant, float], None] | None = None,
) -> Iterator[list[Reading]]:
    """The readings of ``days`` before ``end_ms`` (excluded), one step at a time: a list per
    step, every enabled point of every device. ``before_step(plant, t)`` may change the
    plant before each step (a test wears a compressor, breaks one)."""
    end = end_ms / 1000
    start = end - days * DAY_S
    plant = Plant(cfg, profiles, seed=seed, start=start)
    points = [
        (p, plant.devices[f"{p.sid.gateway}/{p.sid.device}"]) for p in site_points(cfg, profiles)
    ]
    t = start + step_s
    while t < end:
        if before_step is not None:
            before_step(plant, t)
        plant.advance_rooms(t)
        for device in {id(d): d for _, d in points}.values():
            device.refresh(analog=True)
        ts_ms = round(t * 1000)
        yield [
            Reading(p.sid, ts_ms, round(value + p.calibration, 6))
            for p, d in points
            if (value := d.values.get(p.sid.point)) is not None
        ]
        t += step_s


async def seed_history(
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    write: Callable[[list[Reading]], Awaitable[object]],
    *,
    end_ms: int,
    days: float = 7.0,
    step_s: int = 300,
    seed: int = 1,
    chunk: int = 20_000,
) -> int:
    """Write :func:`simulated_history` (a reading every ``step_s``: every 5 minutes by
    default, what a week's charts and daily logs show) through ``write`` (the hub store's),
    in chunks of about ``chunk`` readings; how many were written."""
    pending: list[Reading] = []
    written = 0
    steps = simulated_history(cfg, profiles, end_ms=end_ms, days=days, step_s=step_s, seed=seed)
    for step in steps:
        pending += step
        if len(pending) >= chunk:
            await write(pending)
            written += len(pending)
            pending = []
    if pending:
        await write(pending)
        written += len(pending)
    return written
