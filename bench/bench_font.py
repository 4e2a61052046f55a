"""What the web UI's own Chinese font costs a browser: the live board's page weight and its
first render, with the font subset the hub serves (``dashboards/fonts.py``) and without it
(a second hub with ``hub.cjk_font: none``: the page in the client's own fonts), each on a
cold cache (a new browser context) and a warm one (the same context, the page loaded
again), alternating, in one run.

A Mosquitto and the two hubs (``coldchain hub`` on the example county, SQLite store) run as
their own processes; headless Chromium (Debian's, through Playwright) logs in to each as its
first admin.
Per load: the bytes transferred (the navigation and every resource, from the Resource Timing
entries' transferSize: 0 for what the cache answered), the first contentful paint, and the
time until ``document.fonts.ready`` (every font the page uses loaded, or given up).

    .venv/bin/python bench/bench_font.py [--loads 10]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml
from playwright.async_api import Browser, BrowserContext, async_playwright

from bench.harness import Procs, admin_password, start_hub, start_mosquitto, stop
from dashboards.fonts import find_cjk_font
from hub.demo import EXAMPLE_SITE
from tests.browser import chromium_path
from tests.services import free_port

MEASURE = """async () => {
    await document.fonts.ready;
    const nav = performance.getEntriesByType("navigation")[0];
    const resources = performance.getEntriesByType("resource");
    const paint = await new Promise(done => {
        new PerformanceObserver(list => done(list.getEntriesByName("first-contentful-paint")[0]))
            .observe({type: "paint", buffered: true});
        setTimeout(() => done(null), 2000);
    });
    const font = resources.filter(r => r.name.includes("/fonts/"));
    return {
        bytes: nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0),
        font_bytes: font.reduce((n, r) => n + r.transferSize, 0),
        fcp: paint ? paint.startTime : null,
        fonts_ready: performance.now(),
        font_loaded: [...document.fonts].some(f => f.family.replace(/"/g, "") === "coldchain-cjk"
                                              && f.status === "loaded"),
    };
}"""


async def session(browser: Browser, base: str, password: str) -> Any:
    """The first admin's logged-in storage state (cookies), to start contexts with."""
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=name]", "admin")
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    state = await ctx.storage_state()
    await ctx.close()
    return state


async def load(ctx: BrowserContext, base: str) -> dict[str, Any]:
    page = await ctx.new_page()
    await page.goto(f"{base}/", wait_until="load")
    got: dict[str, Any] = await page.evaluate(MEASURE)
    await page.close()
    return got


async def run(hubs: dict[str, tuple[str, str]], loads: int) -> dict[str, list[dict[str, Any]]]:
    """``hubs``: name -> (base URL, admin password)."""
    out: dict[str, list[dict[str, Any]]] = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path()), headless=True)
        try:
            states = {name: await session(browser, *hub) for name, hub in hubs.items()}
            for _ in range(loads):
                for name, (base, _) in hubs.items():
                    # a new context: the session's cookie, an empty cache
                    ctx = await browser.new_context(
                        storage_state=states[name], viewport={"width": 1280, "height": 900}
                    )
                    out.setdefault(f"{name}, cold", []).append(await load(ctx, base))
                    out.setdefault(f"{name}, warm", []).append(await load(ctx, base))
                    await ctx.close()
        finally:
            await browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loads", type=int, default=10, help="page loads per case")
    args = ap.parse_args()
    font = find_cjk_font()
    if font is None:
        raise SystemExit("no CJK TrueType font: apt-get install fonts-wqy-microhei")
    procs: Procs = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            port = start_mosquitto(tmp, procs)
            hubs = {}
            for name, setting in (("subset", None), ("own fonts", "none")):
                web = free_port()
                cfg = yaml.safe_load(EXAMPLE_SITE.read_text())
                cfg["uplink"] = {"broker": f"mqtt://127.0.0.1:{port}"}
                data = tmp / name.replace(" ", "-")
                cfg["hub"] = {"data_dir": str(data), "listen": f"127.0.0.1:{web}"}
                if setting:
                    cfg["hub"]["cjk_font"] = setting
                data.mkdir()
                start_hub(data, cfg, web, procs)
                hubs[name] = (f"http://127.0.0.1:{web}", admin_password(data))
            results = asyncio.run(run(hubs, args.loads))
        finally:
            stop(procs)
    print(
        f"# board page weight and first render: {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; the example county's board, {font.name} "
        f"subset vs the browser's own fonts; medians of {args.loads} loads, alternating"
    )
    print(f"{'case':<18} {'kB moved':>9} {'font kB':>8} {'FCP ms':>7} {'fonts ready ms':>15}")
    for case, rows in results.items():
        assert all(r["font_loaded"] == case.startswith("subset") for r in rows), case
        med = {k: statistics.median(r[k] for r in rows) for k in ("bytes", "font_bytes", "fcp")}
        ready = statistics.median(r["fonts_ready"] for r in rows)
        print(
            f"{case:<18} {med['bytes'] / 1000:9.1f} {med['font_bytes'] / 1000:8.1f} "
            f"{med['fcp']:7.0f} {ready:15.0f}"
        )


if __name__ == "__main__":
    main()
