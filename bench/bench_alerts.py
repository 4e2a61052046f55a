"""Hub alert latency: from the reading that makes a rule fire to the SMS provider's request,
with 1,000 rooms live. Target: p99 under 1 s.

An :class:`~alerts.service.AlertService` runs in this process as the hub runs it: its
``run()`` task (the 250 ms clock tick and the dispatcher), the hub database on disk (SQLite
WAL, synchronous=FULL, the audit log in the same file), the real Twilio notifier built by
``alerts.notifiers.cloud.build``, pointed at the Twilio stand-in of the tests
(``tests/smsfakes/twilio.py``: a real HTTP server in a thread that checks every request as
Twilio does; here it also notes when each request arrived).

A feeder plays live traffic: each gateway delivers the readings of its rooms (an XY-MD02
per room: temperature and humidity) every ``--periods`` seconds, one ``on_readings`` call
per gateway poll, as the ingest does after each store commit. One rule: room temperature
above the room's limit, alarm tier only, delay ``--delay``; the built-in rules are off.
Sites: the centre, ``--storm-rooms`` rooms on gateways of 20 polled in step, and township
sites of 20 rooms on two gateways of 10; each site has its own three contacts, all texted at
the policy's first level. After a warm-up, ``--alerts`` township rooms cross their limit at
random moments over ``--spread`` seconds and stay above it; then every room of the centre
crosses in the same poll (a storm: one grouped message per contact).

t0 is the start of the ``on_readings`` call whose reading makes the alert fire or, when the
clock tick fires it first, the moment its delay ran out (condition since + delay); t1 is the
arrival of the provider request at the stand-in, matched to its alerts by the message SID
the notifier stores with each notification. Storm control is off by default
(``storm_window`` 0 s, ``max_per_hour`` 1000): it holds later alerts of a site for minutes on
purpose, which is not latency; ``--storm-window 120`` shows the hub's default.
``--provider-ms`` makes the stand-in answer that long after a request arrives, as a distant
provider would; ``--stand-in-nagle`` keeps the stand-in's ~44 ms answers (see TimedTwilio).

    .venv/bin/python bench/bench_alerts.py [--rooms 1000] [--alerts 300] [--linger 0.15]
        [--delay 2] [--periods 2,3] [--spread 90] [--storm-rooms 100] [--storm-window 0]
        [--provider-ms 0] [--stand-in-nagle] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import socket
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request, Response

from alerts.notifiers.cloud import build
from alerts.service import TICK_S, AlertService
from bench.harness import pct
from coldchain.config.checks import check
from coldchain.config.site import SiteConfig
from coldchain.reading import Reading, SeriesId
from coldchain.statedb import StateConn
from hub.audit import AuditLog, AuditRow
from tests import sites
from tests.smsfakes.twilio import TwilioFake

CENTRE = "centre"
TOWN_ROOMS = 20  # rooms per township site
TOWN_GATEWAY = 10  # rooms per township gateway
CENTRE_GATEWAY = 20  # rooms per centre gateway
CONTACTS = 3  # per site, all at the first level (GSP: at least three people)
WARMUP_S = 5.0
SETTLE_S = 6.0  # between the last spread crossing and the storm
LIMIT = 4.0  # chilled rooms: 0-4 °C
QUERY_PERIOD_S = 60.0  # the query-based baseline evaluates once a minute
KEY = bytes(range(32))


# --- the site ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayPlan:
    id: str
    site: str
    rooms: tuple[str, ...]
    period: float
    phase: float


@dataclass(frozen=True)
class Layout:
    sites: dict[str, list[str]]  # site id -> room ids
    gateways: list[GatewayPlan]


def layout(rooms: int, storm_rooms: int, periods: Sequence[float], rng: random.Random) -> Layout:
    """The centre (the storm's site) and township sites of 20 rooms; township gateways take
    the periods in turn, the centre's all poll with the first period at one phase."""
    if not 0 < storm_rooms < rooms:
        raise SystemExit(f"--storm-rooms must be between 1 and --rooms - 1, got {storm_rooms}")
    sites = {CENTRE: [f"r{i:03d}" for i in range(storm_rooms)]}
    left, n = rooms - storm_rooms, 0
    while left > 0:
        k = min(TOWN_ROOMS, left)
        sites[f"t{n:03d}"] = [f"r{i:02d}" for i in range(k)]
        left, n = left - k, n + 1
    centre_phase = rng.uniform(0, periods[0])
    gateways: list[GatewayPlan] = []
    for site, ids in sites.items():
        size = CENTRE_GATEWAY if site == CENTRE else TOWN_GATEWAY
        for j in range(0, len(ids), size):
            if site == CENTRE:
                period, phase = periods[0], centre_phase
            else:
                period = periods[len(gateways) % len(periods)]
                phase = rng.uniform(0, period)
            gw = GatewayPlan(f"{site}-gw{j // size}", site, tuple(ids[j : j + size]), period, phase)
            gateways.append(gw)
    return Layout(sites, gateways)


def phone(site_index: int, k: int) -> str:
    return f"+8613{site_index:05d}{k:04d}"


def site_doc(lay: Layout, notifier: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    def name(site: str) -> str:
        return "城区物流中心 City centre" if site == CENTRE else f"{site}镇冷库 Township {site}"

    contacts = [
        {"id": f"{s}-c{k}", "name": f"{s} duty {k}", "phone": phone(i, k), "sites": [s]}
        for i, s in enumerate(lay.sites)
        for k in range(CONTACTS)
    ]
    return sites.site_doc(
        [
            sites.site(s, name(s), [sites.room(r, f"{r}号库 Room {r}") for r in ids])
            for s, ids in lay.sites.items()
        ],
        [
            sites.gateway(
                g.id,
                g.site,
                [sites.rtu_bus()],
                [
                    sites.device(
                        f"{r}-th",
                        "xy-md02",
                        unit_id=k + 1,
                        room=r,
                        poll_interval=f"{round(g.period * 1000)}ms",
                    )
                    for k, r in enumerate(g.rooms)
                ],
            )
            for g in lay.gateways
        ],
        contacts=contacts,
        alert_rules=[
            {
                "id": "temperature-high",
                "kind": "threshold",
                "direction": "above",
                "alarm": {"delay": f"{round(args.delay * 1000)}ms"},
            }
        ],
        alerts={
            "default_rules": False,
            "default_policy": {"alarm": "cold"},
            "policies": [{"id": "cold", "levels": [{"contacts": [c["id"] for c in contacts]}]}],
            "notifiers": [notifier],
            "linger": f"{round(args.linger * 1000)}ms",
            "storm_window": f"{round(args.storm_window * 1000)}ms",
            "max_per_hour": 1000,
        },
    )


# --- what happened, and when --------------------------------------------------------------


class TimedTwilio(TwilioFake):
    """The Twilio stand-in, noting when each accepted request reached its handler, and
    answering ``answer_ms`` later (a provider's own response time).

    ``nodelay``: the stand-in's listening socket is made with proto 0, so asyncio does not
    set TCP_NODELAY on its connections, and every answer (uvicorn writes the headers and
    the body separately) waits for the client's delayed ACK: ~44 ms per request on this
    machine, an artefact of the stand-in, not of a provider. TCP_NODELAY set on the
    listening socket is inherited by the connections it accepts (Linux)."""

    def __init__(self, *, answer_ms: float = 0.0, nodelay: bool = True) -> None:
        super().__init__()
        self.answer_ms, self.nodelay = answer_ms, nodelay
        self.arrivals: dict[str, float] = {}  # message SID -> time.time() on arrival

    def start(self) -> None:
        super().start()
        if self.nodelay and self._server is not None:
            for server in self._server.servers:
                for sock in server.sockets:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def handle(self, request: Request, sid: str) -> Response:
        arrived = time.time()
        if self.answer_ms:
            await asyncio.sleep(self.answer_ms / 1000)
        response = await super().handle(request, sid)
        if response.status_code == 201:
            self.arrivals[json.loads(bytes(response.body))["sid"]] = arrived
        return response


@dataclass(frozen=True)
class Firing:
    alert_id: int
    site: str
    t0: float  # see the module docstring
    fired: float  # when the hub audited the firing
    by_reading: bool


@dataclass
class Call:
    readings: int
    cpu_s: float
    wall_s: float
    transitions: int


@dataclass
class Recorder:
    """Wraps the hub's audit log: notes each firing, and in which on_readings call."""

    audit: AuditLog
    delay_ms: int
    feeding: float | None = None  # start of the on_readings call in progress
    firings: dict[int, Firing] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def record(
        self,
        *,
        actor: str,
        action: str,
        obj: str,
        before: Any = None,
        after: Any = None,
        comment: str | None = None,
    ) -> int:
        self._note(action, obj, after)
        return self.audit.record(
            actor=actor, action=action, obj=obj, before=before, after=after, comment=comment
        )

    def row(
        self,
        *,
        actor: str,
        action: str,
        obj: str,
        before: Any = None,
        after: Any = None,
        comment: str | None = None,
    ) -> AuditRow:
        """As the hub's audit log does: encoded now, written with the alert store's
        transaction."""
        self._note(action, obj, after)
        return self.audit.row(
            actor=actor, action=action, obj=obj, before=before, after=after, comment=comment
        )

    def insert_rows(self, db: StateConn, rows: list[AuditRow]) -> None:
        self.audit.insert_rows(db, rows)

    def _note(self, action: str, obj: str, after: Any) -> None:
        if action == "alert.firing":
            now = time.time()
            alert_id = int(obj.split("/")[1])
            site = str(after["key"]).split("/")[2]
            t0 = self.feeding
            if t0 is None:  # the tick: the delay ran out at since + delay
                t0 = (int(after["since_ms"]) + self.delay_ms) / 1000
            self.firings[alert_id] = Firing(alert_id, site, t0, now, self.feeding is not None)

    def feed(self, svc: AlertService, readings: list[Reading]) -> None:
        """``svc.on_readings`` as the ingest calls it, timed."""
        before = svc.stats.transitions
        self.feeding = time.time()
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            svc.on_readings(readings)
        finally:
            self.feeding = None
        cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
        self.calls.append(Call(len(readings), cpu, wall, svc.stats.transitions - before))


# --- the feeder ---------------------------------------------------------------------------


async def play(
    g: GatewayPlan,
    *,
    start: float,
    crossings: dict[tuple[str, str], float],
    svc: AlertService,
    rec: Recorder,
    rng: random.Random,
) -> None:
    """One gateway: its rooms' readings every period, stamped with the poll's time."""
    k = 0
    while True:
        at = start + g.phase + k * g.period
        await asyncio.sleep(max(0.0, at - time.time()))
        ts = round(at * 1000)
        batch: list[Reading] = []
        for r in g.rooms:
            high = at >= crossings.get((g.site, r), math.inf)
            temp = round((6.0 if high else 2.0) + rng.uniform(0, 1.5), 1)
            batch.append(Reading(SeriesId(g.site, g.id, f"{r}-th", "temperature"), ts, temp))
            hum = round(rng.uniform(80, 90), 1)
            batch.append(Reading(SeriesId(g.site, g.id, f"{r}-th", "humidity"), ts, hum))
        rec.feed(svc, batch)
        k += 1


def plan_crossings(
    lay: Layout, args: argparse.Namespace, start: float, rng: random.Random
) -> tuple[dict[tuple[str, str], float], float]:
    """When each room goes above its limit: --alerts township rooms at random over the
    spread, every centre room at the storm; and the storm's moment."""
    town = [(s, r) for s, ids in lay.sites.items() if s != CENTRE for r in ids]
    if args.alerts > len(town):
        raise SystemExit(f"--alerts {args.alerts}: only {len(town)} township rooms")
    chosen = rng.sample(town, args.alerts)
    crossings = {room: start + WARMUP_S + rng.uniform(0, args.spread) for room in chosen}
    storm = start + WARMUP_S + args.spread + max(args.periods) + args.delay + SETTLE_S
    crossings |= {(CENTRE, r): storm for r in lay.sites[CENTRE]}
    return crossings, storm


async def drive(lay: Layout, args: argparse.Namespace, svc: AlertService, rec: Recorder) -> None:
    """Run the hub and the feeder until every alert has fired and every message is sent."""
    rng = random.Random(args.seed)
    start = time.time() + 0.5
    crossings, storm = plan_crossings(lay, args, start, rng)
    expected = args.alerts + len(lay.sites[CENTRE])
    deadline = storm + max(args.periods) + args.delay + args.storm_window + 60
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(svc.run(), name="alerts")]
        for g in lay.gateways:
            feed = play(
                g,
                start=start,
                crossings=crossings,
                svc=svc,
                rec=rec,
                rng=random.Random(rng.random()),
            )
            tasks.append(tg.create_task(feed, name=f"feed-{g.id}"))
        while not finished(svc, rec, expected):
            if time.time() > deadline:
                raise RuntimeError(
                    f"not done by the deadline: {len(rec.firings)} of {expected} alerts fired, "
                    f"{svc.dispatcher.pending()} notifications pending"
                )
            await asyncio.sleep(0.5)
        for t in tasks:
            t.cancel()


async def session(lay: Layout, args: argparse.Namespace, svc: AlertService, rec: Recorder) -> None:
    """:func:`drive`, then close the notifiers in the same event loop."""
    try:
        await drive(lay, args, svc, rec)
    finally:
        for n in svc.notifiers:
            await n.aclose()


def finished(svc: AlertService, rec: Recorder, expected: int) -> bool:
    if len(rec.firings) < expected or svc.dispatcher.pending():
        return False
    notes = svc.store.notifications()
    return all(n.sent_ms is not None or n.status == "failed" for n in notes)


# --- figures ------------------------------------------------------------------------------


def summary(xs: Sequence[float]) -> str:
    ms = [x * 1000 for x in xs]
    return (
        f"p50 {pct(ms, 50):6.0f}  p95 {pct(ms, 95):6.0f}  p99 {pct(ms, 99):6.0f}  "
        f"max {max(ms):6.0f} ms  (n={len(ms)})"
    )


def told(svc: AlertService, fake: TimedTwilio) -> dict[tuple[int, str], list[float]]:
    """(alert id, contact) -> arrival of each request that told the contact of the alert."""
    out: dict[tuple[int, str], list[float]] = defaultdict(list)
    for n in svc.store.notifications():
        arrived = fake.arrivals.get(n.provider_ref or "")
        if arrived is None:
            continue
        for a in n.alerts:
            out[(a, n.recipient)].append(arrived)
    return out


def line(label: str, xs: Sequence[float]) -> None:
    print(f"  {label:<46} {summary(xs)}")


def report_spread(rec: Recorder, got: dict[tuple[int, str], list[float]]) -> float:
    """Figures of the alerts spread over the run; returns the p99 of every request."""
    spread = [f for f in rec.firings.values() if f.site != CENTRE]
    every: list[float] = []
    order: dict[int, list[float]] = defaultdict(list)
    path: dict[bool, list[float]] = {True: [], False: []}  # by a reading: t0 -> request
    to_fire: dict[bool, list[float]] = {True: [], False: []}
    from_fire: list[float] = []
    for f in spread:
        times = sorted(min(v) - f.t0 for (a, _), v in got.items() if a == f.alert_id)
        if len(times) != CONTACTS:
            raise RuntimeError(f"alert {f.alert_id} reached {len(times)} contacts")
        every += times
        path[f.by_reading] += times
        for i, t in enumerate(times):
            order[i].append(t)
        to_fire[f.by_reading].append(f.fired - f.t0)
        from_fire += [t - (f.fired - f.t0) for t in times]
    n = len(path[True]) // CONTACTS
    print(
        f"spread: {len(spread)} alerts ({n} fired by a reading, {len(spread) - n} by the "
        f"clock tick), {len(every)} provider requests"
    )
    line("t0 -> provider request, every request", every)
    for i in sorted(order):
        line(f"t0 -> request {i + 1} of the alert's {CONTACTS}", order[i])
    line("alerts fired by a reading", path[True])
    line("alerts fired by the tick", path[False])
    print("  where the time goes:")
    line("t0 -> fired, by a reading (judge, store)", to_fire[True])
    line("t0 -> fired, by the tick (wait for a tick)", to_fire[False])
    line("fired -> request (store, linger, send)", from_fire)
    return pct(every, 99)


def report_storm(rec: Recorder, got: dict[tuple[int, str], list[float]]) -> None:
    storm = [f for f in rec.firings.values() if f.site == CENTRE]
    t0 = min(f.t0 for f in storm)
    fired = sorted(f.fired for f in storm)
    ids = {f.alert_id for f in storm}
    requests: dict[str, set[float]] = defaultdict(set)  # contact -> arrivals
    covered: dict[str, list[float]] = defaultdict(list)  # contact -> first news of each
    for (a, who), times in got.items():
        if a in ids:
            requests[who] |= set(times)
            covered[who].append(min(times))
    messages = sorted(len(v) for v in requests.values())
    firsts = " / ".join(f"{(min(v) - t0) * 1000:.0f}" for v in sorted(requests.values(), key=min))
    print(
        f"storm: {len(storm)} rooms of the centre cross in one poll; {len(storm)} firings "
        f"within {(fired[-1] - fired[0]) * 1000:.0f} ms, the first "
        f"{(fired[0] - t0) * 1000:.0f} ms after t0"
    )
    print(
        f"  messages per contact: {messages[0]}-{messages[-1]}; the first, grouped, reaches "
        f"the stand-in for each of the {len(requests)} contacts {firsts} ms after t0; every "
        f"contact told of all {len(storm)} alerts "
        f"{max(max(v) for v in covered.values()) * 1000 - t0 * 1000:.0f} ms after t0"
    )


def report_cost(rec: Recorder, rooms: int) -> None:
    calls = rec.calls
    quiet = [c for c in calls if c.transitions == 0]
    busy = [c for c in calls if c.transitions]
    n, nq = sum(c.readings for c in calls), sum(c.readings for c in quiet)
    cpu, cpu_q = sum(c.cpu_s for c in calls), sum(c.cpu_s for c in quiet)
    print(
        f"evaluation: {n:,} readings in {len(calls):,} on_readings calls, {rooms:,} rooms "
        f"({2 * rooms:,} series) live"
    )
    print(
        f"  CPU per 1,000 readings: {cpu_q / nq * 1e6:.2f} ms without transitions "
        f"({len(quiet):,} calls); {cpu / n * 1e6:.2f} ms over all calls"
    )
    walls = [c.wall_s * 1000 for c in quiet]
    busy_walls = [c.wall_s * 1000 for c in busy] or [math.nan]
    print(
        f"  wall per call: p50 {pct(walls, 50):.3f} ms, p99 {pct(walls, 99):.3f} ms without "
        f"transitions; with transitions ({len(busy)} calls) p50 {pct(busy_walls, 50):.1f} ms, "
        f"max {max(busy_walls):.1f} ms"
    )


def report_baseline(p99: float) -> None:
    b50, b99 = QUERY_PERIOD_S * 0.5, QUERY_PERIOD_S * 0.99
    ratio = b99 / p99
    than = f"{ratio:.0f}x sooner" if ratio >= 1 else f"{1 / ratio:.1f}x later"
    print(
        f"baseline: a query evaluated once a minute: latency uniform 0-60 s, p50 {b50:.1f} s, "
        f"p99 {b99:.1f} s; ours p99 {p99 * 1000:.0f} ms = {p99 / b99:.4f} of it ({than}); "
        f"target p99 < 1 s: {'met' if p99 < 1 else 'MISSED'}"
    )


# --- main ---------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--rooms", type=int, default=1000, help="rooms live (one XY-MD02 each)")
    ap.add_argument("--alerts", type=int, default=300, help="township rooms that cross")
    ap.add_argument("--linger", type=float, default=0.15, help="alerts.linger, seconds")
    ap.add_argument("--delay", type=float, default=2.0, help="the alarm tier's delay, seconds")
    ap.add_argument("--periods", default="2,3", help="gateway poll periods, seconds, taken in turn")
    ap.add_argument("--spread", type=float, default=90.0, help="crossings spread over, seconds")
    ap.add_argument("--storm-rooms", type=int, default=100, help="rooms of the centre")
    ap.add_argument(
        "--storm-window",
        type=float,
        default=0.0,
        help="alerts.storm_window, seconds (0: every alert its own message after the linger)",
    )
    ap.add_argument(
        "--provider-ms",
        type=float,
        default=0.0,
        help="the stand-in answers this long after a request arrives (a provider's own time)",
    )
    ap.add_argument(
        "--stand-in-nagle",
        action="store_true",
        help="leave the stand-in's connections without TCP_NODELAY (+~44 ms per answer)",
    )
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.periods = [float(p) for p in args.periods.split(",")]
    return args


def main() -> None:
    args = parse_args()
    lay = layout(args.rooms, args.storm_rooms, args.periods, random.Random(args.seed))
    profiles = sites.shipped_profiles()
    fake = TimedTwilio(answer_ms=args.provider_ms, nodelay=not args.stand_in_nagle)
    fake.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
            notifier = fake.settings(Path(tmp))
            cfg = SiteConfig.model_validate(site_doc(lay, notifier.model_dump(mode="json"), args))
            errors = [f for f in check(cfg, profiles) if not f.warning]
            if errors:
                raise SystemExit(f"the bench's site config is wrong: {errors[:3]}")
            audit = AuditLog(Path(tmp) / "hub.db")
            rec = Recorder(audit, round(args.delay * 1000))
            svc = AlertService(
                cfg,
                profiles,
                db_path=Path(tmp) / "hub.db",
                audit=rec,
                notifiers=[build(notifier)],
                link_key=KEY,
                writer_thread=True,  # as the hub runs it
            )
            svc.start()
            try:
                started = time.monotonic()
                asyncio.run(session(lay, args, svc, rec))
                wall = time.monotonic() - started
                got = told(svc, fake)
            finally:
                svc.store.close()
                audit.close()
    finally:
        fake.stop()
    print_header(args, lay, wall)
    p99 = report_spread(rec, got)
    report_storm(rec, got)
    report_cost(rec, args.rooms)
    report_baseline(p99)


def print_header(args: argparse.Namespace, lay: Layout, wall: float) -> None:
    periods = "/".join(f"{p:g}" for p in args.periods)
    print(
        f"# alert latency benchmark: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"# {args.rooms} rooms ({2 * args.rooms} series) on {len(lay.gateways)} gateways at "
        f"{len(lay.sites)} sites (centre {len(lay.sites[CENTRE])} rooms, townships of "
        f"{TOWN_ROOMS}); each gateway delivers its rooms every {periods} s (in turn); rule: "
        f"temperature above {LIMIT:g} °C, alarm delay {args.delay:g} s; tick "
        f"{TICK_S * 1000:.0f} ms; linger {args.linger * 1000:.0f} ms; storm window "
        f"{args.storm_window:g} s; max_per_hour 1000; {CONTACTS} contacts per site at level 1; "
        f"Twilio notifier -> stand-in on 127.0.0.1 (in-process thread, answers "
        f"{args.provider_ms:g} ms after arrival, TCP_NODELAY "
        f"{'off' if args.stand_in_nagle else 'on'}); hub.db SQLite WAL "
        f"synchronous=FULL in {tempfile.gettempdir()}"
    )
    print(
        f"# {args.alerts} township rooms cross at random over {args.spread:g} s, then the "
        f"centre's {len(lay.sites[CENTRE])} together; seed {args.seed}; run {wall:.0f} s"
    )


if __name__ == "__main__":
    main()
