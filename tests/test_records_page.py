"""The reports page says how the records are kept: the oldest reading, the retention and any
waiver of it, the disk the store takes and will take a year, and the heads of the audit trail
and of the readings' seals, which `coldchain records verify --anchor` and `--seal-anchor`
check."""

from __future__ import annotations

import asyncio
import html
import re
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coldchain.config.site import SiteConfig
from coldchain.reading import Reading, SeriesId
from coldchain.statedb import StateConn
from tests.alertkit import PROFILES, site
from tests.hubkit import running_hub_service, session_header
from tests.services import Broker
from tests.webclient import raw

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

DAY_MS = 86_400_000


def records_rows(page: str) -> dict[str, str]:
    table = page.split('<table id="records">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*><th>(.*?)</th><td>(.*?)</td></tr>", table, re.S)
    return {html.unescape(k): re.sub(r"<[^>]+>", "", html.unescape(v)) for k, v in rows}


@pytest.mark.slow
async def test_the_reports_page_shows_the_records_kept(tmp_path: Path, mosquitto: Broker) -> None:
    doc = site()
    waiver = {"reason": "a training centre, no goods stored", "approved_by": "Wang Li, QA"}
    doc["hub"] = {"store": {"type": "sqlite", "retention": "400d", "retention_waiver": waiver}}
    cfg = SiteConfig.model_validate(doc)
    async with running_hub_service(cfg, PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        headers = session_header(hub.url)
        headers["Cookie"] += "; coldchain_lang=en"

        async def page() -> dict[str, str]:
            status, _, body = await raw("GET", f"{hub.url}/reports", headers=headers)
            assert status == 200, body
            return records_rows(body)

        empty = await page()
        assert empty["Oldest reading kept"] == "—"
        assert empty["Disk per year, projected"] == "under a day of data: no projection"
        assert empty["Retention"] == "400 days"
        assert empty["Retention waiver"] == f"{waiver['reason']} (approved by Wang Li, QA)"

        now = int(time.time() * 1000)
        series = SeriesId("s1", "gw1", "p1", "temperature")
        await hub.store.write([Reading(series, now - 10 * DAY_MS, 3.0), Reading(series, now, 3.1)])
        before = hub.audit.head()
        # the store's files, just before and just after the page measured them (the hub's
        # own writes, its hourly seals and the WAL's checkpoints move them meanwhile)
        sizes = [(await hub.store.footprint()).bytes_on_disk]
        rows = await page()
        sizes.append((await hub.store.footprint()).bytes_on_disk)
        known = [b for b in sizes if b is not None]
        assert len(known) == 2
        lo, hi = min(known) / 1e6, max(known) / 1e6
        assert rows["Oldest reading kept"].endswith("(10 days)")
        disk = float(rows["Disk used"].removesuffix(" MB"))
        assert lo - 0.1 <= disk <= hi + 0.1  # shown to a tenth of a MB
        per_year = float(rows["Disk per year, projected"].removesuffix(" MB"))
        year = 365.25 / 10  # ten days of data so far
        assert lo * year - 0.5 <= per_year <= hi * year + 0.5  # shown in whole MB
        # the head when the page was made: a true link of the chain, no older than before
        # the request (the hub may audit something of its own meanwhile: a race, not a bug)
        shown_id, shown_link = rows["Audit trail head"].removeprefix("#").split()
        assert before is not None
        assert int(shown_id) >= before[0]
        db = StateConn(hub.state)
        (link,) = db.execute(
            "SELECT link FROM audit_chain WHERE id = ?", (int(shown_id),)
        ).fetchone()
        db.close()
        assert bytes(link).hex() == shown_link
        # the hub seals the hours that are over from its start: the last one first
        for _ in range(100):
            if hub.records.seal_head is not None:
                break
            await asyncio.sleep(0.05)
        assert hub.records.seal_head is not None
        sealed = datetime.fromtimestamp(
            hub.records.seal_head[1] / 1000, ZoneInfo(cfg.sites[0].timezone)
        )
        assert (await page())["Readings seal head"] == (
            f"#{hub.records.seal_head[0]} {hub.records.seal_head[2]} ({sealed:%Y-%m-%d %H:%M})"
        )


async def test_the_sqlite_store_knows_its_oldest_reading_and_its_size(tmp_path: Path) -> None:
    from coldchain.store.sqlite.store import SqliteStore

    store = SqliteStore(tmp_path / "s.db")
    try:
        assert (await store.footprint()).oldest_ms is None
        a, b = SeriesId("s", "g", "d", "t"), SeriesId("s", "g", "d", "h")
        await store.write([Reading(a, 5_000, 1.0), Reading(b, 2_000, 50.0), Reading(a, 9_000, 2)])
        fp = await store.footprint()
        assert fp.oldest_ms == 2_000
        assert fp.bytes_on_disk is not None
        assert fp.bytes_on_disk >= (tmp_path / "s.db").stat().st_size > 0
    finally:
        await store.close()
