"""The line-protocol store against a real VictoriaMetrics (tests/victoria.py starts one per
test): the backend-neutral contract, then what is particular to this backend — duplicates,
what goes on the wire (gzip, batches, retries), restarts, errors, VictoriaMetrics' quirks.
The pure parts (encoder, Flux text, planners) are tested in test_store_lineproto.py."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import random
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from coldchain.reading import Quality, Reading, SeriesId
from coldchain.store.base import Agg, StoreConfigError, StoreError, WriteResult
from coldchain.store.lineproto import promql, victoria
from coldchain.store.lineproto.store import InfluxStore
from tests.services import free_port
from tests.store_contract import CHECKS, Check
from tests.victoria import VictoriaMetrics

T0 = 1_764_288_000_000  # 2025-11-28T00:00:00Z
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
S = SeriesId("site-a", "gw-1", "cr1-probe", "temperature")


def good(ts: int, value: float, series: SeriesId = S) -> Reading:
    return Reading(series, ts, value)


@pytest.fixture
async def store(victoria_metrics: VictoriaMetrics) -> AsyncIterator[InfluxStore]:
    s = InfluxStore(url=victoria_metrics.url)
    try:
        yield s
    finally:
        await s.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_contract(store: InfluxStore, check: Check) -> None:
    await check(store, store.settle)


# -- duplicates -------------------------------------------------------------------------------


async def test_a_duplicated_batch_reads_back_once(
    store: InfluxStore, victoria_metrics: VictoriaMetrics
) -> None:
    batch = [good(T0 + i * MIN, 20 + i / 4) for i in range(30)]
    # Resent at once (before VictoriaMetrics makes the first copy searchable): the look-up
    # cannot see it, so both copies are sent and -dedup.minScrapeInterval=1ms keeps one.
    assert await store.write(batch) == WriteResult(30, 0)
    assert await store.write(batch) in (WriteResult(30, 0), WriteResult(0, 30))
    await store.settle()
    assert await store.write(batch) == WriteResult(0, 30), "a later resend is seen"
    await store.settle()
    assert await store.raw(S, T0, T0 + HOUR) == batch
    [value] = [e for e in victoria_metrics.export(promql.VALUE) if e["metric"]["point"] == S.point]
    assert value["timestamps"] == [r.ts_ms for r in batch], "one sample per reading"
    got = await store.range(S, T0, T0 + HOUR, HOUR, Agg.MEAN)
    assert [(b.count, b.value) for b in got] == [(30, sum(r.value or 0 for r in batch) / 30)]


async def test_without_the_lookup_every_write_counts_as_stored(
    victoria_metrics: VictoriaMetrics,
) -> None:
    store = InfluxStore(url=victoria_metrics.url, first_copy_wins=False)
    batch = [good(T0 + i * MIN, i) for i in range(5)]
    for _ in range(3):
        assert await store.write(batch) == WriteResult(5, 0)
        await store.settle()
    assert await store.raw(S, T0, T0 + HOUR) == batch
    await store.close()


# -- on the wire ------------------------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    """A pass-through proxy to VictoriaMetrics that records every write request."""

    target = ""
    writes: list[tuple[str, dict[str, str], list[str]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/api/v2/write"):
            text = gzip.decompress(body) if self.headers["Content-Encoding"] == "gzip" else body
            self.writes.append((self.path, dict(self.headers), text.decode().splitlines()))
        req = urllib.request.Request(self.target + self.path, data=body, method="POST")
        for name in ("Content-Type", "Content-Encoding", "Authorization"):
            if self.headers[name]:
                req.add_header(name, self.headers[name])
        with urllib.request.urlopen(req) as resp:
            data, status = resp.read(), resp.status
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST  # noqa: N815 (http.server's naming)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder(victoria_metrics: VictoriaMetrics) -> Iterator[tuple[str, Recorder]]:
    handler = type("Handler", (Recorder,), {"target": victoria_metrics.url, "writes": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler  # type: ignore[misc]
    finally:
        server.shutdown()
        server.server_close()


async def test_writes_are_gzipped_batches_of_batch_size_lines(
    recorder: tuple[str, type[Recorder]],
) -> None:
    url, seen = recorder
    store = InfluxStore(url=url, batch_size=400, token="secret")
    readings = [
        good(T0 + i * 1000, i % 7, SeriesId("s", "g", "d", f"p{i % 3}")) for i in range(1000)
    ]
    readings += [Reading(S, T0 + i, None, Quality.BAD, "no reply") for i in range(10)]
    assert await store.write(readings) == WriteResult(1010, 0)
    sizes = [len(lines) for _, _, lines in seen.writes]
    assert sizes == [400, 400, 220], "1010 readings + 10 fault lines in batches of 400"
    for path, headers, _ in seen.writes:
        assert headers["Content-Encoding"] == "gzip"
        assert headers["Authorization"] == "Token secret"
        assert "precision=ms" in path
        assert "bucket=coldchain" in path
        assert "org=coldchain" in path
    await store.settle()
    assert len(await store.raw(SeriesId("s", "g", "d", "p0"), T0, T0 + DAY)) == 334
    await store.close()


async def test_a_write_rides_over_a_restart_by_retrying(victoria_metrics: VictoriaMetrics) -> None:
    store = InfluxStore(url=victoria_metrics.url, retries=8, retry_interval_s=0.1)
    await store.write([good(T0, 1.0)])  # started, flags checked
    victoria_metrics.stop()
    restart = threading.Timer(0.5, victoria_metrics.start)  # the outage the write outlasts
    restart.start()
    started = time.monotonic()
    assert await store.write([good(T0 + MIN, 2.0)]) == WriteResult(1, 0)
    assert time.monotonic() - started >= 0.4, "it waited for the restart"
    restart.join()
    await store.settle()
    assert [r.value for r in await store.raw(S, T0, T0 + HOUR)] == [1.0, 2.0]
    await store.close()


# -- restarts and failures ----------------------------------------------------------------------


async def test_a_restart_keeps_the_data(
    store: InfluxStore, victoria_metrics: VictoriaMetrics
) -> None:
    readings = [good(T0 + i * MIN, i / 2) for i in range(100)]
    readings.append(Reading(S, T0 + 100 * MIN, None, Quality.BAD, "probe open"))
    await store.write(readings)
    victoria_metrics.restart()  # graceful: nothing flushed by hand before
    assert await store.raw(S, T0, T0 + DAY) == readings
    assert (await store.latest([S]))[S] == readings[-1]


async def test_a_store_that_is_down_raises_an_error_naming_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    store = InfluxStore(url=url, retries=1, retry_interval_s=0.05)
    for call in (store.write([good(T0, 1.0)]), store.raw(S, T0, T0 + 1), store.series()):
        with pytest.raises(StoreError, match=f"VictoriaMetrics at {url} is not reachable"):
            await call
    await store.close()


async def test_vm_going_down_after_start_is_a_clear_error(
    victoria_metrics: VictoriaMetrics,
) -> None:
    store = InfluxStore(url=victoria_metrics.url, retries=0)
    await store.write([good(T0, 1.0)])
    victoria_metrics.stop()
    with pytest.raises(StoreError) as err:
        await store.write([good(T0 + MIN, 2.0)])
    assert f"VictoriaMetrics at {victoria_metrics.url} is not reachable" in str(err.value)
    with pytest.raises(StoreError, match="not reachable"):
        await store.range(S, T0, T0 + HOUR, MIN, Agg.MEAN)
    await store.close()


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (
            "-dedup.minScrapeInterval=0s",
            "runs with -dedup.minScrapeInterval=0s: start it with -dedup.minScrapeInterval=1ms",
        ),
        ("-dedup.minScrapeInterval=1s", "a longer interval would merge readings"),
        ("-influxSkipSingleField", "runs with -influxSkipSingleField=true: this store reads"),
        (  # VictoriaMetrics' default: a month, and older readings vanish on arrival
            "-retentionPeriod=1",
            "runs with -retentionPeriod=1 (31 days): it drops older readings on arrival, "
            "without an error, and records must be kept 1825 days; start it with "
            "-retentionPeriod=6y",
        ),
    ],
)
async def test_a_store_refuses_a_victoria_metrics_with_the_wrong_flags(
    tmp_path: Path, flag: str, message: str
) -> None:
    (tmp_path / "vm").mkdir()
    vm = VictoriaMetrics(tmp_path / "vm", extra_flags=(flag,))
    vm.start()
    try:
        store = InfluxStore(url=vm.url)
        with pytest.raises(StoreConfigError) as err:  # the hub stops on it, not retries
            await store.write([good(T0, 1.0)])
        assert f"VictoriaMetrics at {vm.url} " in str(err.value)
        assert message in str(err.value)
        await store.close()
        unchecked = InfluxStore(url=vm.url, verify_flags=False)  # e.g. behind a proxy
        assert await unchecked.write([good(T0, 1.0)]) == WriteResult(1, 0)
        await unchecked.close()
    finally:
        vm.stop()


async def test_a_refused_write_says_what_the_server_said(store: InfluxStore) -> None:
    # Readings from gateways have reasons of at most 200 characters (the wire protocol);
    # VictoriaMetrics refuses lines over 256 KiB.
    huge = Reading(S, T0, None, Quality.BAD, "x" * 300_000)
    with pytest.raises(StoreError) as err:
        await store.write([huge])
    assert "refused a write of 2 lines: HTTP 400" in str(err.value)
    assert "too long line" in str(err.value)


# -- VictoriaMetrics particulars --------------------------------------------------------------


async def test_names_and_reasons_with_line_protocol_specials_round_trip(store: InfluxStore) -> None:
    odd = SeriesId("site a", "gw,1", "dev=2", 'pt "x" \\ é')
    readings = [
        Reading(odd, T0, 1.5, meta={"calibration": -0.5}),
        Reading(odd, T0 + 1, None, Quality.BAD, 'exception 2: "illegal, address"= \\'),
        Reading(odd, T0 + 2, 3.25, Quality.UNCERTAIN, "line\nbreak"),
    ]
    await store.write(readings)
    await store.settle()
    got = await store.raw(odd, T0, T0 + MIN)
    assert got[:2] == readings[:2]
    assert got[2].reason == "line\\nbreak", "a control character is stored as its escape"
    assert odd in await store.series()
    assert (await store.latest([odd]))[odd] == got[2]


@pytest.mark.parametrize("agg", list(Agg))
async def test_range_agrees_with_raw_readings(
    store: InfluxStore, agg: Agg, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(victoria, "MAX_POINTS", 7)  # several query_range chunks
    rnd = random.Random(7)
    readings = []
    for i in range(3000):  # two days, irregular, some bad and uncertain
        ts = T0 + i * MIN + rnd.randrange(-20_000, 20_000)
        q = rnd.choices(list(Quality), weights=[90, 5, 5])[0]
        value = round(rnd.uniform(-25, 8), 1)
        if q is Quality.GOOD:
            readings.append(Reading(S, ts, value))
        else:
            readings.append(Reading(S, ts, value if q is Quality.UNCERTAIN else None, q, "x"))
    await store.write(readings)
    await store.settle()
    raw = await store.raw(S, T0 - DAY, T0 + 3 * DAY)
    assert raw == sorted(readings, key=lambda r: r.ts_ms)
    for start, end, step in [
        (T0, T0 + 2 * DAY, HOUR),
        (T0 + 17 * MIN + 3, T0 + DAY + 5 * MIN, 15 * MIN),  # unaligned both ends
        (T0 + 5 * MIN, T0 + 6 * MIN + 1, MIN),
        (T0 - DAY, T0 + 3 * DAY, 7 * 60_001),  # a step that divides nothing
    ]:
        got = await store.range(S, start, end, step, agg)
        want = promql.aggregate([r for r in raw if start <= r.ts_ms < end], step, agg)
        assert [(b.ts_ms, b.count) for b in got] == [(b.ts_ms, b.count) for b in want]
        for g, w in zip(got, want, strict=True):
            assert g.value == pytest.approx(w.value, rel=1e-9), (start, end, step, g.ts_ms)


async def test_recent_buckets_are_exact_with_the_default_latency_offset(tmp_path: Path) -> None:
    (tmp_path / "vm").mkdir()
    vm = VictoriaMetrics(tmp_path / "vm", extra_flags=("-search.latencyOffset=30s",))
    vm.start()
    store = InfluxStore(url=vm.url)
    try:
        now = int(time.time() * 1000) // 10_000 * 10_000
        readings = [good(now - 40_000 + i * 1000, float(i)) for i in range(40)]  # 1 Hz
        await store.write(readings)
        await store.settle()
        got = await store.range(S, now - 40_000, now, 10_000, Agg.MIN)
        assert [(b.ts_ms - now, b.value, b.count) for b in got] == [
            (-40_000, 0.0, 10),
            (-30_000, 10.0, 10),
            (-20_000, 20.0, 10),
            (-10_000, 30.0, 10),
        ]
        # What query_range itself answers: the newest buckets copied from an older one
        # (here [0, 0, 0, 0] for [0, 10, 20, 30]).
        answer = await asyncio.to_thread(
            vm.api,
            "/api/v1/query_range",
            query=promql.grid_query(S, 10_000, Agg.MIN),
            start=promql.seconds(now - 30_000),
            end=promql.seconds(now),
            step="10s",
            nocache="1",
        )
        result = answer["result"]
        [mins] = [r["values"] for r in result if r["metric"]["cc_part"] == "agg"]
        assert float(mins[-1][1]) != 30.0, f"VictoriaMetrics rewrote the newest: {mins}"
    finally:
        await store.close()
        vm.stop()


async def test_latest_and_doors_reach_years_back(store: InfluxStore) -> None:
    old = T0 - 5 * 365 * DAY
    door = SeriesId("site-a", "gw-1", "cr1-door", "door")
    await store.write([good(old, -18.0), good(old - HOUR, 0.0, door), good(old, 1.0, door)])
    await store.write([good(T0, 1.0, door)])
    await store.settle()
    assert await store.latest([S]) == {S: good(old, -18.0)}
    got = await store.door_intervals(door, T0 - MIN, T0 + MIN)
    assert [(i.opened_ms, i.closed_ms) for i in got] == [(old, None)]


async def test_vm_1_79_midnight_end_does_not_hide_a_series_that_starts_at_midnight(
    victoria_metrics: VictoriaMetrics,
) -> None:
    """VictoriaMetrics 1.79 misses a series whose samples all lie on the last day of a search
    that ends exactly at 00:00:00.000 UTC; the store never ends a search there."""
    store = InfluxStore(url=victoria_metrics.url)
    await store.write([good(T0, 5.0)])  # the series' first reading, at midnight
    await store.settle()
    assert await store.raw(S, T0 - 1, T0 + 1) == [good(T0, 5.0)], "export ending at midnight"
    got = await store.range(S, T0 - 4, T0 + 1, 1, Agg.MAX)
    assert [(b.ts_ms, b.value) for b in got] == [(T0, 5.0)], "query_range ending at midnight"
    await store.close()
    at_midnight = T0 - victoria.CLOCK_SKEW_MS  # latest() looks at now + the clock skew
    store = InfluxStore(url=victoria_metrics.url, clock=lambda: at_midnight / 1000)
    assert await store.latest([S]) == {S: good(T0, 5.0)}, "instant query at midnight"
    await store.close()


async def test_a_store_from_the_hub_settings_reads_its_token_file(tmp_path: Path) -> None:
    from coldchain.config.site import InfluxStoreSettings

    (tmp_path / "token").write_text("s3cret\n")
    settings = InfluxStoreSettings(
        url="http://127.0.0.1:9/", flavour="influxdb2", token_file="token"
    )
    store = InfluxStore.from_settings(settings, base_dir=tmp_path)
    assert (store.url, store.flavour, store.bucket) == (
        "http://127.0.0.1:9",
        "influxdb2",
        "coldchain",
    )
    assert store._client.token == "s3cret"
    await store.close()
    missing = InfluxStoreSettings(url="http://127.0.0.1:9", token_file="nope")
    with pytest.raises(StoreError, match=f"store token file {tmp_path / 'nope'}: No such file"):
        InfluxStore.from_settings(missing, base_dir=tmp_path)
