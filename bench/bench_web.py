"""The web UI: live latency from a gateway's batch to the browser's tile, and a room page
with 30 days of data. Targets: the tile p99 under 1 s; the 30-day chart's data under 300 ms
of server time.

A Mosquitto (on a free port, its own temp config) and the hub (``coldchain hub``) run as
their own processes; headless Chromium (Debian's, driven by Playwright through its
executable path, as the tests do) logs in with the first admin's password, which the hub
writes to ``<data_dir>/admin-password``. The site: ``--rooms`` chilled rooms (an XY-MD02
each: temperature and humidity) at sites of 20 rooms, on gateways of 10. Before the hub
starts, the measured room's two series are filled with 30 days at 1 reading/min through
``SqliteStore.write`` (the hub's own store file).

(1) Live: the live board (``/``) is open; a MutationObserver on the tile's parent notes
    Date.now() and the measured tile's temperature text whenever the tile is replaced, and
    a listener on the page's EventSource (wrapped before the page's script runs) notes each
    ``tile`` event of that room. This process plays the room's gateway: every
    ``--interval`` s it publishes a batch of its 10 rooms in which the room's temperature
    is a new value (distinct at the tile's 0.1 °C). t0 is the wall clock just before the
    publish, t1 the observer's Date.now() when the tile shows that value. Parts: t0 -> the
    batch's ack arrives here (the hub acks after the store's commit), ack -> the SSE event
    reaches the page (the ingest's callbacks: alerts, the board rebuilt for the stream, one
    HTML per tile), event -> DOM, DOM -> the next animation frame. Twice in the same run: a
    quiet hub (only this gateway), then with every other gateway publishing its rooms every
    ``--period`` s. Hub and Chromium CPU are read from /proc.
(2) The room page, with the other gateways still publishing and the board closed: the
    chart's data endpoint (``/rooms/{site}/{room}/data``) over ``--repeat`` requests per
    range, timed as the round trip on loopback (the hub sends no Server-Timing); the
    baseline is the same 30 days of raw readings through ``/api/history`` without a step.
    Then the page itself in Chromium: navigation start to ``#chart[data-points]`` (uPlot
    built) and to the frame after it, ``--navigations`` times per range.

    .venv/bin/python bench/bench_web.py [--rooms 1000] [--samples 200] [--interval 0.4]
        [--period 2] [--repeat 30] [--navigations 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from bench.harness import Procs, admin_password, cpu_seconds, pct, start_hub, start_mosquitto, stop
from coldchain.protocol.messages import Batch, decode_ack, encode_batch
from coldchain.protocol.topics import Topics
from coldchain.reading import Reading, SeriesId
from coldchain.store.sqlite.store import SqliteStore
from tests import sites
from tests.services import free_port

SITE_ROOMS = 20  # rooms per site
GATEWAY_ROOMS = 10  # rooms per gateway
MIN, DAY = 60_000, 86_400_000
SITE, ROOM, GW = "s000", "r00", "s000-gw0"  # the measured room and its gateway
TILE = f"tile-{SITE}--{ROOM}"
EPOCH = "bench-web"

# Before any page script: wrap EventSource to note each `tile` event of the measured room.
SSE_HOOK = """
(() => {
  window.__sse = [];
  window.__sseAll = 0;
  const Orig = window.EventSource;
  if (!Orig) return;
  function Wrapped(url, opts) {
    const es = new Orig(url, opts);
    es.addEventListener("tile", (ev) => {
      const now = Date.now();
      window.__sseAll += 1;
      if (ev.data.indexOf("%KEY%") === -1) return;
      const msg = JSON.parse(ev.data);
      if (msg.key !== "%KEY%") return;
      const m = /class="temp">([^<]*)</.exec(msg.html);
      window.__sse.push([now, m ? m[1] : null]);
    });
    return es;
  }
  Wrapped.prototype = Orig.prototype;
  window.EventSource = Wrapped;
})();
"""

# On the room page: when the chart says it has drawn, and the frame after.
CHART_HOOK = """
(() => {
  window.__chart = {};
  new MutationObserver(() => {
    const c = document.getElementById("chart");
    if (!c || c.dataset.points === undefined || window.__chart.points) return;
    window.__chart.points = performance.now();
    window.__chart.n = Number(c.dataset.points);
    requestAnimationFrame(() => {
      window.__chart.frame = performance.now();
      setTimeout(() => { window.__chart.painted = performance.now(); }, 0);
    });
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-points"] });
})();
"""

# On the live board: the measured tile's temperature text, each time it changes.
TILE_OBSERVER = """
(id) => {
  window.__obs = [];
  const read = () => {
    const el = document.getElementById(id);
    const t = el && el.querySelector(".temp");
    return t ? t.textContent : null;
  };
  let last = read();
  // board.js replaces a changed tile whole: its parent's child list is all to watch (the
  // ages ticking inside tiles would only add work to the measurement)
  new MutationObserver(() => {
    const text = read();
    if (text === last) return;
    last = text;
    const rec = [Date.now(), text, 0];
    window.__obs.push(rec);
    requestAnimationFrame(() => { rec[2] = Date.now(); });
  }).observe(document.getElementById(id).parentElement, { childList: true });
}
"""


# What board.js's tick() does after every tile event: every age on the board, rewritten
# (here with a forced layout, as the next frame would do it); ms and the elements touched.
TICK_COST = """
() => {
  const t = performance.now();
  const now = Date.now();
  const els = document.querySelectorAll(".age[data-ts]");
  for (const el of els) el.textContent = Math.round((now - Number(el.dataset.ts)) / 1000) + "s";
  void document.body.offsetHeight;
  return [performance.now() - t, els.length];
}
"""


# --- processes ----------------------------------------------------------------------------


def browser_cpu() -> float:
    """CPU seconds of every Chromium process (the browser's own and its renderers)."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if (d / "comm").read_text().startswith("chrom"):
                    total += cpu_seconds(int(d.name))
    return total


def chromium_path() -> str:
    path = os.environ.get("COLDCHAIN_CHROMIUM") or shutil.which("chromium") or ""
    if not Path(path).is_file():
        raise SystemExit(
            "this benchmark needs Chromium: `apt-get install chromium` (Debian), or point "
            "COLDCHAIN_CHROMIUM at a Chromium or Chrome binary"
        )
    return path


@contextlib.contextmanager
def processes(tmp: Path, rooms: int) -> Iterator[tuple[int, str, subprocess.Popen[bytes]]]:
    """Mosquitto and the hub; yields the broker's port, the hub's URL and its process."""
    procs: Procs = []
    try:
        mport = start_mosquitto(tmp, procs)
        hport = free_port()
        hub = start_hub(
            tmp, site(rooms, f"mqtt://127.0.0.1:{mport}", tmp / "hub", hport), hport, procs
        )
        yield mport, f"http://127.0.0.1:{hport}", hub
    except BaseException:
        log_path = tmp / "hub.log"
        if log_path.exists():
            print(log_path.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        stop(procs)


# --- the site -----------------------------------------------------------------------------


def gateways(rooms: int) -> dict[str, tuple[str, list[str]]]:
    """Gateway id -> (site, its rooms): sites of 20 rooms, gateways of 10."""
    out: dict[str, tuple[str, list[str]]] = {}
    for s in range(math.ceil(rooms / SITE_ROOMS)):
        ids = [f"r{i:02d}" for i in range(min(SITE_ROOMS, rooms - s * SITE_ROOMS))]
        for j in range(0, len(ids), GATEWAY_ROOMS):
            out[f"s{s:03d}-gw{j // GATEWAY_ROOMS}"] = (f"s{s:03d}", ids[j : j + GATEWAY_ROOMS])
    return out


def site(rooms: int, broker: str, data: Path, port: int) -> dict[str, Any]:
    gws = gateways(rooms)
    rooms_of: dict[str, list[str]] = {}
    for s, ids in gws.values():
        rooms_of.setdefault(s, []).extend(ids)
    return sites.site_doc(
        [
            sites.site(s, f"{s}冷库 Site {s}", [sites.room(r, f"{r}号库 Room {r}") for r in ids])
            for s, ids in rooms_of.items()
        ],
        [
            sites.gateway(
                g,
                s,
                [sites.rtu_bus()],
                [
                    sites.device(f"{r}-th", "xy-md02", unit_id=k + 1, room=r)
                    for k, r in enumerate(ids)
                ],
            )
            for g, (s, ids) in gws.items()
        ],
        uplink={"broker": broker},
        hub={"data_dir": str(data), "listen": f"127.0.0.1:{port}"},
    )


def series(gw: str, room: str, point: str) -> SeriesId:
    return SeriesId(gw.split("-", maxsplit=1)[0], gw, f"{room}-th", point)


async def fill(path: Path, days: int) -> tuple[int, float]:
    """``days`` at 1 reading/min for the measured room's temperature and humidity, ending
    a minute ago; returns the readings written and the seconds it took."""
    temp, hum = series(GW, ROOM, "temperature"), series(GW, ROOM, "humidity")
    rng = random.Random(1)
    end = time.time_ns() // 1_000_000 - MIN
    n = days * 1440
    readings = []
    for k in range(n):
        ts = end - (n - k) * MIN
        daily = math.sin(2 * math.pi * k / 1440)
        readings.append(Reading(temp, ts, round(2.0 + 1.2 * daily + rng.gauss(0, 0.2), 1)))
        readings.append(Reading(hum, ts + 1, round(85 - 5 * daily + rng.gauss(0, 1), 1)))
    path.parent.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(path)
    started = time.perf_counter()
    try:
        for i in range(0, len(readings), 10_000):
            await store.write(readings[i : i + 10_000])
    finally:
        await store.close()
    return len(readings), time.perf_counter() - started


# --- gateways -----------------------------------------------------------------------------


def gateway_batch(gw: str, rooms: Sequence[str], seq: int, ts: int, temp: float | None) -> bytes:
    """One poll of a gateway's rooms; the measured room's temperature is ``temp``."""
    rng = random.Random(f"{gw}/{seq}")
    out = []
    for r in rooms:
        t = temp if (gw, r) == (GW, ROOM) and temp is not None else round(rng.uniform(1, 3.5), 1)
        out.append(Reading(series(gw, r, "temperature"), ts, t))
        out.append(Reading(series(gw, r, "humidity"), ts, round(rng.uniform(80, 90), 1)))
    return encode_batch(Batch(gw, gw.split("-", maxsplit=1)[0], EPOCH, seq, out))


async def background(port: int, gws: dict[str, tuple[str, list[str]]], period: float) -> None:
    """Every gateway but the measured one publishes its rooms every ``period`` s."""
    topics = Topics()
    others = [(g, ids) for g, (_, ids) in gws.items() if g != GW]
    rng = random.Random(2)
    phases = {g: rng.uniform(0, period) for g, _ in others}
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-background") as client:
        start, k = time.time(), 0
        while True:
            due = sorted((start + phases[g] + k * period, g, ids) for g, ids in others)
            for at, g, ids in due:
                await asyncio.sleep(max(0.0, at - time.time()))
                payload = gateway_batch(g, ids, k + 1, round(at * 1000), None)
                await client.publish(topics.topic(g, "telemetry"), payload, qos=1)
            k += 1


@dataclass
class Sample:
    value: str  # as the tile shows it
    t0: float  # wall clock just before the publish
    ack: float = math.nan  # when the hub's ack arrived here


@dataclass
class Phase:
    name: str
    samples: list[Sample] = field(default_factory=list)
    hub_cpu: float = 0.0
    browser_cpu: float = 0.0
    wall: float = 0.0
    events: int = 0  # tile events (any room) the page received
    writes: float = 0.0  # the hub's store writes during the phase (/metrics)
    write_s: float = 0.0  # and the seconds they took
    sse: list[tuple[float, str]] = field(default_factory=list)  # (Date.now(), text)
    dom: list[tuple[float, str, float]] = field(default_factory=list)  # + the next frame


async def measured_gateway(
    port: int, rooms: Sequence[str], samples: int, interval: float, first_seq: int
) -> list[Sample]:
    """The measured room's gateway: a new temperature every ``interval`` s."""
    topics = Topics()
    out: list[Sample] = []
    acks: dict[int, float] = {}
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-{GW}-{first_seq}") as client:
        await client.subscribe(topics.topic(GW, "ack"), qos=1)

        async def receive() -> None:
            async for message in client.messages:
                now = time.time()
                _, seqs = decode_ack(bytes(message.payload))
                for s in seqs:
                    acks.setdefault(s, now)

        task = asyncio.create_task(receive(), name="acks")
        start = time.time() + 0.2
        for i in range(samples):
            await asyncio.sleep(max(0.0, start + i * interval - time.time()))
            seq = first_seq + i
            value = round(0.5 + (seq % 35) / 10, 1)  # 0.5-3.9 °C: in the chilled band
            t0 = time.time()
            payload = gateway_batch(GW, rooms, seq, round(t0 * 1000), value)
            await client.publish(topics.topic(GW, "telemetry"), payload, qos=1)
            out.append(Sample(f"{value:.1f} °C", t0))
        await asyncio.sleep(2.0)  # the last ones reach the page
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for i, s in enumerate(out):
        s.ack = acks.get(first_seq + i, math.nan)
    return out


# --- figures ------------------------------------------------------------------------------


def summary(ms: Sequence[float], digits: int = 0) -> str:
    if not ms:
        return "no samples"
    f = f"{{:7.{digits}f}}"
    return (
        f"p50 {f.format(pct(ms, 50))}  p95 {f.format(pct(ms, 95))}  p99 {f.format(pct(ms, 99))}"
        f"  max {f.format(max(ms))} ms  (n={len(ms)})"
    )


def first_at(records: Sequence[Sequence[Any]], text: str, t0_ms: float) -> Sequence[Any] | None:
    for rec in records:
        if rec[1] == text and rec[0] >= t0_ms:
            return rec
    return None


def report_phase(p: Phase, warmup: int) -> float:
    """Figures of one live phase; returns the p99 of t0 -> tile."""
    total: list[float] = []
    parts: dict[str, list[float]] = {"ack": [], "sse": [], "dom": [], "frame": []}
    missing = 0
    for s in p.samples[warmup:]:
        t0 = s.t0 * 1000
        dom = first_at(p.dom, s.value, math.floor(t0))
        sse = first_at(p.sse, s.value, math.floor(t0))
        if dom is None or sse is None:
            missing += 1
            continue
        total.append(dom[0] - t0)
        ack = s.ack * 1000
        parts["ack"].append(ack - t0)
        parts["sse"].append(sse[0] - ack)
        parts["dom"].append(dom[0] - sse[0])
        if dom[2]:
            parts["frame"].append(dom[2] - dom[0])
    n = len(p.samples) - warmup
    print(
        f"{p.name}: {n} samples ({missing} never shown: a later value came first), hub CPU "
        f"{p.hub_cpu / p.wall * 100:.0f} %, Chromium CPU {p.browser_cpu / p.wall * 100:.0f} % "
        f"of a core over {p.wall:.0f} s"
    )
    print(f"  {'t0 -> tile shows the value':<44} {summary(total)}")
    print(
        f"  {'(the page: tile events of any room)':<44} {p.events:,} = "
        f"{p.events / p.wall:.0f}/s handled in the phase"
    )
    mean = p.write_s / p.writes * 1000 if p.writes else math.nan
    print(
        f"  {'(the hub: store writes, from /metrics)':<44} {p.writes:.0f} writes, mean "
        f"{mean:.1f} ms each"
    )
    print(f"  {'part: t0 -> ack here (commit, ack)':<44} {summary(parts['ack'], 1)}")
    print(f"  {'part: ack -> SSE event in the page':<44} {summary(parts['sse'], 1)}")
    print(f"  {'part: SSE event -> DOM':<44} {summary(parts['dom'], 1)}")
    print(f"  {'after: DOM -> next animation frame':<44} {summary(parts['frame'], 1)}")
    return pct(total, 99)


def store_writes(base: str) -> tuple[float, float]:
    """The hub's store write calls and the seconds spent in them, from /metrics."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    got = dict(
        line.split()[:2] for line in text.splitlines() if line.startswith("coldchain_store_write")
    )
    return float(got["coldchain_store_writes_total"]), float(
        got["coldchain_store_write_seconds_total"]
    )


async def live_phase(
    name: str,
    page: Page,
    port: int,
    hub_pid: int,
    *,
    base: str,
    args: argparse.Namespace,
    first_seq: int,
) -> Phase:
    rooms = gateways(args.rooms)[GW][1]
    await page.evaluate("window.__sse.length = 0; window.__obs.length = 0; window.__sseAll = 0")
    n0, s0 = store_writes(base)
    cpu0, b0, w0 = cpu_seconds(hub_pid), browser_cpu(), time.monotonic()
    samples = await measured_gateway(port, rooms, args.samples, args.interval, first_seq)
    phase = Phase(name, samples, cpu_seconds(hub_pid) - cpu0, browser_cpu() - b0)
    phase.wall = time.monotonic() - w0
    n1, s1 = store_writes(base)
    phase.writes, phase.write_s = n1 - n0, s1 - s0
    phase.events = int(await page.evaluate("window.__sseAll"))
    phase.sse = [(float(t), str(x)) for t, x in await page.evaluate("window.__sse")]
    phase.dom = [(float(t), str(x), float(f)) for t, x, f in await page.evaluate("window.__obs")]
    return phase


# --- the room page ------------------------------------------------------------------------


async def timed_get(client: httpx.AsyncClient, url: str, repeat: int) -> tuple[list[float], int]:
    """Round trips of ``repeat`` GETs, ms; and the size of the last answer."""
    times, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        resp = await client.get(url)
        body = resp.content
        times.append((time.perf_counter() - t) * 1000)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {url}: {resp.status_code} {body[:300]!r}")
        size = len(body)
    return times, size


async def server_times(base: str, password: str, repeat: int) -> dict[str, float]:
    """The chart's data endpoint per range, and the raw-history baseline."""
    temp, hum = series(GW, ROOM, "temperature"), series(GW, ROOM, "humidity")
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        token = (await client.get("/login")).headers["X-CSRF-Token"]  # the login form's
        form = {"name": "admin", "password": password, "csrf_token": token}
        resp = await client.post("/login", data=form)
        if resp.status_code != 303:
            raise RuntimeError(f"login: {resp.status_code}")
        end = time.time_ns() // 1_000_000
        start = end - 30 * DAY
        cases = [
            (f"/rooms/{SITE}/{ROOM}/data?range={r}", f"chart data, range={r}")
            for r in ("30d", "7d", "24h", "1h")
        ]
        cases += [
            (
                f"/api/history?series={s}&start={start}&end={end}",
                f"baseline: /api/history raw, 30 days, {s.point}",
            )
            for s in (temp, hum)
        ]
        await client.get(cases[0][0])  # warm the page cache once
        print(f"\nserver time = round trip on loopback (no Server-Timing), {repeat} requests each")
        print(f"  {'request':<50} {'bytes':>10}   round trip")
        p50: dict[str, float] = {}
        p99: dict[str, float] = {}
        for url, label in cases:
            times, size = await timed_get(client, url, repeat)
            p50[label], p99[label] = pct(times, 50), pct(times, 99)
            print(f"  {label:<50} {size:>10,}   {summary(times, 1)}")
    label = "chart data, range=30d"
    chart = p50[label]
    raw = sum(v for k, v in p50.items() if k.startswith("baseline"))
    print(
        f"  30 days raw through /api/history (both series, p50 summed) / the chart's 30d "
        f"data (p50): {raw:.0f} / {chart:.1f} ms = {raw / chart:.0f}x; target for the chart's "
        f"30d data p99 < 300 ms: {'met' if p99[label] < 300 else 'MISSED'}"
    )
    return p50


async def chart_navigations(
    context: BrowserContext, base: str, ranges: Sequence[str], n: int
) -> None:
    print(
        f"\nthe room page in Chromium, {n} navigations each, ms from navigation start "
        "(performance.now())"
    )
    page = await context.new_page()
    await page.add_init_script(CHART_HOOK)
    for r in ranges:
        rows: dict[str, list[float]] = {"html": [], "fetch": [], "data": [], "points": [], "fr": []}
        points = 0
        for _ in range(n):
            await page.goto(f"{base}/rooms/{SITE}/{ROOM}?range={r}")
            await page.wait_for_function("window.__chart && window.__chart.painted", timeout=30_000)
            c = await page.evaluate("window.__chart")
            t = await page.evaluate(
                """() => {
                  const nav = performance.getEntriesByType("navigation")[0];
                  const d = performance.getEntriesByType("resource")
                    .filter((e) => e.name.includes("/data?")).pop();
                  return [nav.responseEnd, d ? d.startTime : NaN, d ? d.responseEnd : NaN];
                }"""
            )
            rows["html"].append(t[0])
            rows["fetch"].append(t[1])
            rows["data"].append(t[2] - t[1])
            rows["points"].append(c["points"])
            rows["fr"].append(c["painted"])
            points = int(c["n"])
        print(f"  range={r} ({points:,} points drawn)")
        print(f"    {'page HTML received':<40} {summary(rows['html'])}")
        print(f"    {'chart data requested':<40} {summary(rows['fetch'])}")
        print(f"    {'chart data request -> response':<40} {summary(rows['data'])}")
        print(f"    {'chart drawn (#chart[data-points])':<40} {summary(rows['points'])}")
        print(f"    {'frame after it (painted)':<40} {summary(rows['fr'])}")
    await page.close()


# --- main ---------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


async def session(
    args: argparse.Namespace, mport: int, base: str, hub_pid: int, password: str
) -> None:
    gws = gateways(args.rooms)
    async with async_playwright() as pw:
        browser: Browser = await pw.chromium.launch(executable_path=chromium_path(), headless=True)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.add_init_script(SSE_HOOK.replace("%KEY%", f"{SITE}/{ROOM}"))
        await page.goto(f"{base}/login")
        await page.fill("input[name=name]", "admin")
        await page.fill("input[name=password]", password)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/")
        await page.wait_for_selector("#board[data-live='1']", timeout=30_000)
        await page.evaluate(TILE_OBSERVER, TILE)
        quiet = await live_phase(
            "quiet hub (only the measured gateway)",
            page,
            mport,
            hub_pid,
            base=base,
            args=args,
            first_seq=1,
        )
        load = asyncio.create_task(background(mport, gws, args.period), name="background")
        try:
            await asyncio.sleep(args.period + 1)  # every gateway has published once
            loaded = await live_phase(
                f"loaded hub ({len(gws) - 1} other gateways, {len(gws) * 2 * GATEWAY_ROOMS:,} "
                f"series, each gateway every {args.period:g} s)",
                page,
                mport,
                hub_pid,
                base=base,
                args=args,
                first_seq=args.samples + 1,
            )
            ticks = [await page.evaluate(TICK_COST) for _ in range(5)]
            await page.close()
            print_live(args, quiet, loaded)
            print(
                f"board.js's once-a-second tick (every age on the "
                f"board rewritten, then layout): {pct([t[0] for t in ticks], 50):.1f} ms over "
                f"{int(ticks[0][1]):,} elements (median of 5, after the loaded phase)"
            )
            await server_times(base, password, args.repeat)
            await chart_navigations(context, base, ["30d", "1h"], args.navigations)
        finally:
            load.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await load
            await browser.close()


def print_live(args: argparse.Namespace, quiet: Phase, loaded: Phase) -> None:
    print(
        f"\nlive: t0 = wall clock before the publish, t1 = Date.now() in the page's "
        f"MutationObserver when the tile shows the value; a sample every {args.interval:g} s, "
        f"the first {args.warmup} of each phase left out"
    )
    q99 = report_phase(quiet, args.warmup)
    l99 = report_phase(loaded, args.warmup)
    verdict = "met" if l99 < 1000 else "MISSED"
    print(f"loaded / quiet p99: {l99 / q99:.2f}x; target p99 < 1,000 ms (loaded): {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--rooms", type=int, default=1000, help="rooms of the site (XY-MD02 each)")
    ap.add_argument("--days", type=int, default=30, help="history of the measured room")
    ap.add_argument("--samples", type=int, default=200, help="live samples per phase")
    ap.add_argument("--warmup", type=int, default=5, help="first samples of a phase left out")
    ap.add_argument("--interval", type=float, default=0.4, help="seconds between samples")
    ap.add_argument("--period", type=float, default=2.0, help="other gateways publish every")
    ap.add_argument("--repeat", type=int, default=30, help="requests per chart range")
    ap.add_argument("--navigations", type=int, default=10, help="page loads per range")
    args = ap.parse_args()
    if args.rooms < SITE_ROOMS:
        raise SystemExit(f"--rooms: at least {SITE_ROOMS}")
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        t = Path(tmp)
        n, fill_s = asyncio.run(fill(t / "hub" / "store.db", args.days))
        with processes(t, args.rooms) as (mport, base, hub):
            password = admin_password(t / "hub")
            print(
                f"# web UI benchmark: {cpu_model()}, {os.cpu_count()} cores, "
                f"{platform.machine()}, Python {platform.python_version()}"
            )
            print(
                f"# {args.rooms} chilled rooms (an XY-MD02 each, {2 * args.rooms:,} series) at "
                f"{math.ceil(args.rooms / SITE_ROOMS)} sites of {SITE_ROOMS}, "
                f"{len(gateways(args.rooms))} gateways of {GATEWAY_ROOMS} rooms; SQLite store; "
                f"Mosquitto, the hub and Chromium (headless) in their own processes"
            )
            print(
                f"# measured room {SITE}/{ROOM}: {args.days} days at 1 reading/min "
                f"(temperature + humidity, {n:,} readings) written in {fill_s:.1f} s before "
                "the hub started"
            )
            asyncio.run(session(args, mport, base, hub.pid, password))


if __name__ == "__main__":
    main()
