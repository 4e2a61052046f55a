"""The alert evaluator alone, in process (no store, no hub): µs of CPU per reading judged,
and CPU of the clock tick at rest.

Per reading: ``--rooms`` chilled rooms on one site, each with room air temperature and
humidity, a door and a mains-sense point; every series reads once a ``--period`` with quiet
values (2.0-2.9 °C, 80-89 %RH, door shut, mains on: no transitions), ``--rounds`` rounds, fed
one round per ``Evaluator.feed`` call as the ingest does per committed batch. Three rule sets:
1 rule (temperature-high), 8 rules (one of each kind: temperature-high, temperature-rise,
door-open, door-open-warm, sensor-stale, sensor-fault, gateway-offline, power-cut) and all
the built-in rules. The same run repeats the 8-rule set with ``RateOfRiseRule.check``
replaced by the plain definition (scan the series' last 512 samples back to the window's
start, thin, Theil-Sen; what the evaluator ran before it kept each window as a queue), and
times the rate check alone both ways, at one reading a minute (15 samples a window) and one
every 5 s (180, thinned to 24).

Tick at rest: ``--tick-series`` air probes (stale and temperature-high rules), each read
once, then 100 ms ticks for ``--tick-seconds`` of clock time with nothing due; CPU per tick
and the share of a core at 10 ticks a second. For comparison, the full scan the tick made
every second before deadlines sat in a heap (every timed watch judged once).

    .venv/bin/python bench/bench_evaluator.py [--rooms 2000] [--rounds 20] [--period 60]
        [--tick-series 2000,20000,100000] [--tick-seconds 60]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from coldchain.alerting.defaults import DEFAULT_RULES
from coldchain.alerting.evaluator import Evaluator, Transition
from coldchain.alerting.rules import AnyRule, RateOfRiseRule
from coldchain.alerting.rules.base import Verdict, Watch
from coldchain.alerting.rules.rate import check_by_definition
from coldchain.alerting.views import SeriesView, Views
from coldchain.alerting.watches import build_watches
from coldchain.config.site import SiteConfig
from coldchain.config.topology import PointInfo
from coldchain.profiles.schema import PointKind, PointRole
from coldchain.reading import Quality, Reading, SeriesId

T0 = 1_767_225_600_000
EIGHT = (
    "temperature-high",
    "temperature-rise",
    "door-open",
    "door-open-warm",
    "sensor-stale",
    "sensor-fault",
    "gateway-offline",
    "power-cut",
)
KINDS = (
    (PointKind.TEMPERATURE, "°C"),
    (PointKind.HUMIDITY, "%RH"),
    (PointKind.DOOR, ""),
    (PointKind.POWER, ""),
)


def config(rooms: int) -> SiteConfig:
    room_docs = [{"id": f"r{i}", "name": f"Room {i}", "class": "chilled"} for i in range(rooms)]
    doc: dict[str, Any] = {
        "version": 1,
        "sites": [{"id": "s1", "name": "Site", "rooms": room_docs}],
        "gateways": [
            {
                "id": "gw1",
                "site": "s1",
                "buses": [{"type": "rtu", "id": "bus", "port": "/dev/null"}],
                "devices": [],
            }
        ],
        "alerts": {"default_rules": False},
    }
    return SiteConfig.model_validate(doc)


def points(rooms: int, kinds: Sequence[tuple[PointKind, str]]) -> list[PointInfo]:
    return [
        PointInfo(
            sid=SeriesId("s1", "gw1", f"d{i}", str(kind)),
            room=f"r{i}",
            kind=kind,
            role=PointRole.ROOM,
            unit=unit,
            calibration=0.0,
        )
        for i in range(rooms)
        for kind, unit in kinds
    ]


def rules(ids: Iterable[str] | None) -> list[AnyRule]:
    if ids is None:
        return list(DEFAULT_RULES)
    wanted = set(ids)
    return [r for r in DEFAULT_RULES if r.id in wanted]


def quiet(p: PointInfo, ts: int, k: int) -> Reading:
    i = hash(p.sid) + k
    value = {
        PointKind.TEMPERATURE: 2.0 + (i % 10) / 10,
        PointKind.HUMIDITY: 80.0 + i % 10,
        PointKind.DOOR: 0.0,
        PointKind.POWER: 1.0,
    }[p.kind]
    return Reading(p.sid, ts, value, Quality.GOOD, None)


def per_reading(args: argparse.Namespace, ids: Iterable[str] | None) -> tuple[float, int]:
    """µs of CPU per reading judged, and the number of watches."""
    cfg = config(args.rooms)
    pts = points(args.rooms, KINDS)
    watches = build_watches(cfg, pts, rules(ids))
    ev = Evaluator(cfg, pts, watches, now_ms=T0)
    period = args.period * 1000
    rounds = [[quiet(p, T0 + k * period, k) for p in pts] for k in range(args.rounds)]
    out: list[Transition] = []
    gc.collect()
    started = time.process_time()
    for batch in rounds:
        out += ev.feed(batch)
        ev.tick(batch[-1].ts_ms)
    cpu = time.process_time() - started
    assert not out, f"quiet values raised {len(out)} transitions"
    return cpu / (len(pts) * args.rounds) * 1e6, len(watches)


def with_check(check: Callable[..., Verdict], fn: Callable[[], tuple[float, int]]) -> float:
    saved = RateOfRiseRule.check
    RateOfRiseRule.check = check  # type: ignore[method-assign]
    try:
        return fn()[0]
    finally:
        RateOfRiseRule.check = saved  # type: ignore[method-assign]


def definition_check() -> Callable[..., Verdict]:
    """``RateOfRiseRule.check`` as it was: the definition over each series' last 512 good
    samples (kept here, beside the views, as the views used to keep them)."""
    histories: dict[str, deque[tuple[int, float]]] = {}

    def check(self: RateOfRiseRule, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        s = views.series[w.series or ""]
        h = histories.setdefault(w.series or "", deque(maxlen=512))
        if s.value is not None and s.ts_ms is not None and (not h or h[-1][0] != s.ts_ms):
            h.append((s.ts_ms, s.value))
        return check_by_definition(self, h, active)

    return check


def rate_alone(period_s: float, n: int = 3_000) -> tuple[float, float]:
    """µs per reading of the rate check alone: kept window, and the definition."""
    rule = RateOfRiseRule(id="rise", rise=3.0, window="15min")
    w = Watch(
        key="rise/warning/x",
        rule=rule,
        tier="warning",
        severity="warning",
        policy=None,
        site="s1",
        room="r0",
        gateway="gw1",
        series="x",
        quantity="temperature",
        unit="°C",
        delay_ms=0,
        inputs=("x",),
    )
    views = Views()
    view = views.series["x"] = SeriesView(room="r0", kind="temperature")
    view.track(rule.window_ms())
    readings = [
        Reading(
            SeriesId("s1", "gw1", "x", "t"), T0 + round(k * period_s * 1000), 2.0 + (k % 7) / 10
        )
        for k in range(n)
    ]
    started = time.process_time()
    for rd in readings:
        view.update(rd)
        rule.check(w, views, rd.ts_ms, active=False)
    kept = time.process_time() - started
    history: deque[tuple[int, float]] = deque(maxlen=512)
    started = time.process_time()
    for rd in readings:
        assert rd.value is not None
        history.append((rd.ts_ms, rd.value))
        check_by_definition(rule, history, active=False)
    plain = time.process_time() - started
    return kept / n * 1e6, plain / n * 1e6


def tick_at_rest(n: int, seconds: float) -> tuple[float, float, int]:
    """CPU µs per 100 ms tick with nothing due, the old once-a-second full scan's CPU µs,
    and the number of watches."""
    rooms = max(1, n // 100)
    cfg = config(rooms)
    pts = [
        PointInfo(
            sid=SeriesId("s1", "gw1", f"d{i}", "temperature"),
            room=f"r{i % rooms}",
            kind=PointKind.TEMPERATURE,
            role=PointRole.ROOM,
            unit="°C",
            calibration=0.0,
        )
        for i in range(n)
    ]
    watches = build_watches(cfg, pts, rules(("sensor-stale", "temperature-high")))
    ev = Evaluator(cfg, pts, watches, now_ms=T0)
    ev.feed(Reading(p.sid, T0, 2.5) for p in pts)
    ticks = round(seconds * 10)
    judged = ev.judgements
    gc.collect()
    started = time.process_time()
    for k in range(1, ticks + 1):
        ev.tick(T0 + k * 100)
    per_tick = (time.process_time() - started) / ticks * 1e6
    assert ev.judgements == judged, "a tick at rest judged something"
    timed = [ev._states[w.key] for w in watches if w.timed]
    now = T0 + ticks * 100
    out: list[Transition] = []
    started = time.process_time()
    for st in timed:
        ev._decide(st, now, out)
    scan = (time.process_time() - started) * 1e6
    return per_tick, scan, len(watches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rooms", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--period", type=float, default=60.0, help="seconds between readings")
    ap.add_argument("--tick-series", default="2000,20000,100000")
    ap.add_argument("--tick-seconds", type=float, default=60.0)
    args = ap.parse_args()
    print(
        f"bench_evaluator: {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; --rooms {args.rooms} (x4 series) "
        f"--rounds {args.rounds} --period {args.period:g}s"
    )
    print("\nper reading (quiet values, CPU µs per reading judged):")
    eight = 0.0
    for label, ids in (("1 rule", ("temperature-high",)), ("8 rules (8 kinds)", EIGHT)):
        us, n = per_reading(args, ids)
        eight = us
        print(f"  {label:<28} {us:7.2f} µs   ({n:,} watches)")
    us, n = per_reading(args, None)
    label = f"all {len(DEFAULT_RULES)} built-in rules"
    print(f"  {label:<28} {us:7.2f} µs   ({n:,} watches)")
    old = with_check(definition_check(), lambda: per_reading(args, EIGHT))
    print(
        f"  {'8 rules, rate by definition':<28} {old:7.2f} µs   "
        f"(kept window is {old / eight:.2f}x faster per reading)"
    )
    print("\nrate_of_rise check alone (15 min window, CPU µs per reading):")
    for period in (60.0, 5.0):
        kept, plain = rate_alone(period)
        print(
            f"  a reading every {period:>4g} s: kept window {kept:6.2f} µs, "
            f"definition {plain:6.2f} µs, ratio {plain / kept:.2f}x"
        )
    print(f"\ntick at rest (100 ms ticks, {args.tick_seconds:g} s of clock, nothing due):")
    for n in (int(x) for x in args.tick_series.split(",")):
        per_tick, scan, watches = tick_at_rest(n, args.tick_seconds)
        print(
            f"  {n:>7,} series ({watches:,} watches): {per_tick:6.2f} µs per tick, "
            f"{per_tick * 10 / 1e4:.4f} % of a core; the old 1 s full scan: "
            f"{scan / 1e3:8.1f} ms per scan, {scan / 1e4:.2f} % of a core"
        )


if __name__ == "__main__":
    main()
