"""How early the forecast rule warns, and how often it warns for nothing, on the simulator.

    .venv/bin/python bench/bench_forecast.py [--weeks 1] [--trials 12] [--seed 1]

The example site (``firmware_configs/sites/county.yaml``) on one stepped clock
(``tests/sitekit.py``: the simulator's thermal model, controllers with their defrosts and
door traffic, the agents' pollers, the hub's alert service), with one forecast rule per
(horizon, window, door settle) of the grid below, all watching every room-air series of every room
with a temperature limit, side by side in the same run (each rule its own watches):

* **false warnings**: ``--weeks`` simulated weeks with no fault; every forecast warning is
  false (the week raises no threshold alert: ``tests/test_site_week.py``); per room-week;
* **lead time**: ``--trials`` runs, each with a fault injected at a random time of day into
  a random room (compressor failures in chilled and frozen rooms, evaporator fans that stop,
  and doors stuck open),
  run until the room's temperature-high alarm (at most 6 h); the lead is the alarm's firing
  time minus the forecast warning's (0 when the forecast came with or after the alarm, and
  counted as missed when it never came).

Prints each fault's lead per rule; then per (horizon, window, door settle): false warnings
per room-week, and the median and worst lead for compressor failures in chilled rooms and
for all faults; then the baseline in the same run: the built-in ``rate_of_rise`` warning's
lead on the same faults.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.store import AlertRow
from coldchain.alerting.rules import ForecastRule
from coldchain.config.loader import load_site_config
from coldchain.config.site import SiteConfig
from firmware_configs import SITES_DIR
from tests.sitekit import SiteRun
from tests.sites import shipped_profiles

HORIZONS = ("15min", "20min", "30min")
WINDOWS = ("20min", "30min", "45min")
SETTLES = ("5min", "15min", "window")  # after a door closes, before the trend counts again
START = 1_767_542_400.0  # Monday 2026-01-05 00:00 in Shanghai
WEEK = 7 * 86400.0
RUN_UP = 1800.0  # simulated before a fault
LONGEST = 6 * 3600.0  # a fault's run, at most
KINDS = ("compressor_failure", "compressor_failure", "door_stuck_open", "fan_failure")
"""The faults injected in turn (the first of each four in a chilled room)."""


def rule_id(horizon: str, window: str, settle: str) -> str:
    return f"forecast-h{horizon}-w{window}-s{settle}"


GRID = [(h, w, s) for h in HORIZONS for w in WINDOWS for s in SETTLES]


def with_forecasts(base: SiteConfig) -> SiteConfig:
    rules = [
        ForecastRule.model_validate(
            {"id": rule_id(h, w, s), "kind": "forecast", "horizon": h, "window": w}
            | {"door_settle": None if s == "window" else s}
        )
        for h, w, s in GRID
    ]
    return base.model_copy(update={"alert_rules": [*base.alert_rules, *rules]})


def rooms_with_limits(cfg: SiteConfig) -> list[tuple[str, str, str]]:
    """(site, room, class) of every room whose temperature has a high limit."""
    return [
        (s.id, r.id, str(r.room_class))
        for s in cfg.sites
        for r in s.rooms
        if r.effective_limits.temperature is not None
    ]


def fired(run: SiteRun) -> list[AlertRow]:
    return [a for a in run.raised() if a.fired_ms is not None]


async def false_warnings(cfg: SiteConfig, weeks: int, seed: int, tmp: Path) -> dict[str, int]:
    profiles = shipped_profiles()
    counts = {rule_id(*g): 0 for g in GRID}
    for k in range(weeks):
        async with SiteRun(
            cfg, profiles, tmp / f"week{k}", start=START, seed=seed + k, step=15.0, min_poll=60.0
        ) as run:
            await run.run_for(WEEK)
            for a in fired(run):
                if a.rule in counts:
                    counts[a.rule] += 1
    return counts


async def one_fault(
    cfg: SiteConfig, kind: str, where: tuple[str, str], *, offset_s: float, seed: int, tmp: Path
) -> dict[str, float | None]:
    """Per forecast rule (and the rate_of_rise baseline): minutes of lead before the room's
    alarm; None when it never warned; {} when no alarm came."""
    profiles = shipped_profiles()
    site, room = where
    async with SiteRun(
        cfg, profiles, tmp, start=START + offset_s, seed=seed, step=15.0, min_poll=60.0
    ) as run:
        await run.run_for(RUN_UP)
        run.inject(kind, f"{site}/{room}")
        injected = run.clock.now_ms()
        alarm: AlertRow | None = None
        waited = 0.0
        while alarm is None and waited < LONGEST:
            await run.run_for(600.0)
            waited += 600.0
            alarm = next(
                (
                    a
                    for a in fired(run)
                    if a.room == room
                    and a.site == site
                    and a.rule in ("temperature-high", "door-open-warm")
                    and a.severity == "alarm"
                    and (a.fired_ms or 0) >= injected
                ),
                None,
            )
        if alarm is None or alarm.fired_ms is None:
            return {}
        out: dict[str, float | None] = {}
        ids = [rule_id(*g) for g in GRID] + ["temperature-rise"]
        for rid in ids:
            first = min(
                (
                    a.fired_ms
                    for a in fired(run)
                    if a.rule == rid
                    and a.room == room
                    and a.fired_ms is not None
                    and a.fired_ms >= injected
                ),
                default=None,
            )
            out[rid] = None if first is None else max(0.0, (alarm.fired_ms - first) / 60_000)
        return out


def summary(leads: list[float | None]) -> str:
    got = [x for x in leads if x is not None]
    missed = len(leads) - len(got)
    if not got:
        return f"no warning in {len(leads)}"
    return (
        f"median {statistics.median(got):5.1f} min, worst {min(got):5.1f} min"
        + (f", {missed} missed" if missed else "")
        + f" (n={len(leads)})"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weeks", type=int, default=1, help="fault-free simulated weeks")
    ap.add_argument("--trials", type=int, default=12, help="faults injected, one run each")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    base = load_site_config(SITES_DIR / "county.yaml", shipped_profiles())
    cfg = with_forecasts(base)
    rooms = rooms_with_limits(cfg)
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        weeks = await false_warnings(cfg, args.weeks, args.seed, Path(tmp))
        results: list[tuple[str, str, dict[str, float | None]]] = []
        trials: list[str] = []
        for n in range(args.trials):
            kind = KINDS[n % len(KINDS)]
            site, room, cls = rng.choice(rooms)
            if n % len(KINDS) == 0:  # every fourth a chilled room's compressor: the target's
                site, room, cls = rng.choice([r for r in rooms if r[2] == "chilled"])
            offset = rng.uniform(0, 86400.0)
            got = await one_fault(
                cfg,
                kind,
                (site, room),
                offset_s=offset,
                seed=args.seed + n,
                tmp=Path(tmp) / f"t{n}",
            )
            results.append((kind, cls, got))
            leads = ", ".join(
                f"{rid.removeprefix('forecast-')}={'-' if v is None else f'{v:.0f}'}"
                for rid, v in got.items()
            )
            trials.append(
                f"  {kind} {site}/{room} ({cls}) at +{offset / 3600:.1f} h: {leads or 'no alarm'}"
            )
    room_weeks = len(rooms) * args.weeks
    print(
        f"# forecast benchmark: county.yaml, {len(rooms)} rooms with a limit, {args.weeks} "
        f"fault-free week(s) = {room_weeks} room-weeks, {args.trials} faults; "
        f"{time.monotonic() - t0:.0f} s wall"
    )
    print("each fault (minutes of lead per rule; - never warned):")
    print("\n".join(trials))
    alarmed = [(k, c, g) for k, c, g in results if g]
    within = f"{LONGEST / 3600:g} h"
    print(f"faults that reached the alarm within {within}: {len(alarmed)} of {len(results)}")
    chilled_comp = [g for k, c, g in alarmed if k == "compressor_failure" and c == "chilled"]
    print("horizon window settle | false per room-week | lead, chilled compressor | all faults")
    for h, w, st in GRID:
        rid = rule_id(h, w, st)
        false = weeks[rid] / room_weeks if room_weeks else 0.0
        print(
            f"{h:>7} {w:>6} {st:>6} | {false:19.2f} | "
            f"{summary([g[rid] for g in chilled_comp]):45} | "
            f"{summary([g[rid] for _, _, g in alarmed])}"
        )
    base_rise = "temperature-rise"
    print(
        f"baseline rate_of_rise (built in, 3 °C / 15 min) | lead, chilled compressor: "
        f"{summary([g[base_rise] for g in chilled_comp])} | all: "
        f"{summary([g[base_rise] for _, _, g in alarmed])}"
    )


if __name__ == "__main__":
    asyncio.run(main())
