"""Reading back from VictoriaMetrics through its Prometheus-compatible HTTP API.

Blocking HTTP (urllib3, which influxdb-client already brings) runs in the store's worker
threads. Every query passes ``nocache=1``: backfilled readings (a gateway's outbox after an
outage) must show at once, and VictoriaMetrics would otherwise also shift instant queries
near "now" back by ``-search.latencyOffset``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar

import urllib3

from coldchain.reading import Reading, SeriesId
from coldchain.store.base import Agg, Bucket, StoreConfigError, StoreError
from coldchain.store.lineproto import promql
from coldchain.store.lineproto.dedupe import Key, Lookup

T = TypeVar("T")

# Where latest() looks for each series' newest reading, widening only for series not found
# yet: a live series costs one short query; a sensor dead for a year costs a few more.
LATEST_LOOKBACKS_MS = (2 * 3_600_000, 2 * 86_400_000, 35 * 86_400_000, 400 * 86_400_000)
DAY_MS = 86_400_000
CLOCK_SKEW_MS = 3_600_000  # readings stamped up to this far ahead of the hub's clock count
MAX_POINTS = 10_000  # buckets per query_range (VictoriaMetrics refuses > 30,000 by default)
REQUIRED_DEDUP = "1ms"
# Flags that change how line protocol becomes metric names, at their defaults.
NAMING_FLAGS = {
    "influxMeasurementFieldSeparator": "_",
    "influxSkipSingleField": "false",
    "influxSkipMeasurement": "false",
}
_FLAG = re.compile(r'^-([\w.]+)="(.*)"$')
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_RETENTION = re.compile(r"(\d+(?:\.\d+)?)([hdwy]?)")
_RETENTION_DAYS = {"h": 1 / 24, "d": 1.0, "w": 7.0, "y": 365.0, "": 31.0}
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def duration_ms(text: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``0s``) in milliseconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return round(sum(float(n) * _UNIT_MS[u] for n, u in parts))


def retention_days(text: str) -> float:
    """``-retentionPeriod`` in days: ``6y``, ``30d``, ``2w``, ``12h``, or months (31 days)."""
    m = _RETENTION.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a retention period: {text!r}")
    return float(m[1]) * _RETENTION_DAYS[m[2]]


def parse_flags(text: str) -> dict[str, str]:
    """``/flags`` output: the flags set on the command line, ``-name="value"`` per line."""
    return {m[1]: m[2] for line in text.splitlines() if (m := _FLAG.match(line.strip()))}


class UnreachableError(StoreError):
    """One server did not answer (a connection error, after retries): a replica may."""


def none_answered(missed: Sequence[UnreachableError]) -> UnreachableError:
    """The error when no server answered: its own, or all of theirs."""
    return missed[0] if len(missed) == 1 else UnreachableError("; ".join(map(str, missed)))


class VictoriaReads:
    """The read side of :class:`coldchain.store.lineproto.store.InfluxStore` for VictoriaMetrics.

    With ``replicas`` (more VictoriaMetrics holding the same readings: ``vmagent`` writes
    every reading to each, ``docs/store.md``), a read goes to the server that answered last,
    ``url`` first; a server that does not answer is passed over for the next, which stays
    the one read from (a server back from an outage may still be taking in what it missed).
    Each server's flags are checked before it is first read from.
    """

    def __init__(
        self,
        url: str,
        *,
        replicas: Sequence[str] = (),
        executor: Executor,
        timeout_s: float,
        retries: int,
        headers: Mapping[str, str],
        verify_flags: bool,
        min_retention_days: int,
        clock: Callable[[], float],
    ) -> None:
        self.urls = tuple(dict.fromkeys(u.rstrip("/") for u in (url, *replicas)))
        self.url = self.urls[0]  # the server that answered last: read from it first
        self._flags_checked: set[str] = set()
        self._executor = executor
        self._verify_flags = verify_flags
        self._min_retention_days = min_retention_days
        self._clock = clock
        self._headers = dict(headers)
        self._http = urllib3.PoolManager(
            num_pools=2 * len(self.urls),
            maxsize=8,
            timeout=urllib3.Timeout(total=timeout_s),
            retries=urllib3.Retry(
                total=retries,
                backoff_factor=0.25,
                backoff_max=4.0,
                status_forcelist=(429, 502, 503, 504),
                allowed_methods=None,  # every query is idempotent
                raise_on_status=False,
            ),
        )
        self.latency_offset_ms = 30_000  # VictoriaMetrics' default until /flags says

    # -- plumbing -----------------------------------------------------------------------

    def _request(self, path: str, fields: Sequence[tuple[str, str]]) -> bytes:
        """The answer of the server read from last, or else of the first other that answers
        (its flags checked first)."""
        current = self.url
        missed: list[UnreachableError] = []
        for url in (current, *(u for u in self.urls if u != current)):
            try:
                if self._verify_flags and url not in self._flags_checked:
                    self._check_flags(url)
                body = self.request_to(url, path, fields)
            except UnreachableError as exc:
                missed.append(exc)
                continue
            self.url = url
            return body
        raise none_answered(missed)

    def request_to(
        self, url: str, path: str, fields: Sequence[tuple[str, str]], body: bytes | None = None
    ) -> bytes:
        """POST ``fields`` (form-encoded), or ``body`` as it is, to one server; blocking."""
        where = f"VictoriaMetrics at {url}"
        try:
            if body is None:
                resp = self._http.request(
                    "POST", url + path, fields=fields, encode_multipart=False, headers=self._headers
                )
            else:
                resp = self._http.request("POST", url + path, body=body, headers=self._headers)
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise UnreachableError(f"{where} is not reachable ({path}): {reason}") from exc
        if resp.status not in (200, 204):  # 204: /api/v1/import
            text = resp.data.decode(errors="replace")[:500]
            raise StoreError(f"{where} answered {path} with HTTP {resp.status}: {text}")
        return bytes(resp.data)

    async def _call(self, path: str, **fields: str) -> bytes:
        return await self._parsed(path, bytes, **fields)

    async def _parsed(self, path: str, parse: Callable[[bytes], T], **fields: str) -> T:
        """``parse`` of the answer, both in a worker thread: decoding a month of samples
        takes a while and must not stall the event loop."""

        def run() -> T:
            return parse(self._request(path, list(fields.items())))

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def _json(self, path: str, parse: Callable[[Any], T], **fields: str) -> T:
        """``parse`` of the ``data`` of a Prometheus-API answer."""

        def decode(body: bytes) -> T:
            answer = json.loads(body)
            if answer.get("status") != "success":
                raise StoreError(f"VictoriaMetrics at {self.url} failed {path}: {answer}")
            return parse(answer["data"])

        return await self._parsed(path, decode, **fields)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- set-up -------------------------------------------------------------------------

    async def check(self) -> None:
        """Reachable (one server at least), and every server that answers started with the
        flags this store relies on; one that does not answer now is checked when first read
        from."""

        def run() -> None:
            missed: list[UnreachableError] = []
            for url in self.urls:
                try:
                    self.request_to(url, "/health", [])
                    if self._verify_flags:
                        self._check_flags(url)
                except UnreachableError as exc:
                    missed.append(exc)
            if len(missed) == len(self.urls):
                raise (
                    missed[0] if len(missed) == 1 else UnreachableError("; ".join(map(str, missed)))
                )

        await asyncio.get_running_loop().run_in_executor(self._executor, run)

    def _check_flags(self, url: str) -> None:
        """``url``'s flags are those this store relies on (StoreConfigError if not)."""
        flags = parse_flags(self.request_to(url, "/flags", []).decode())
        dedup = flags.get("dedup.minScrapeInterval")
        if dedup is None or duration_ms(dedup) != 1:
            raise StoreConfigError(
                f"VictoriaMetrics at {url} runs with -dedup.minScrapeInterval="
                f"{dedup or '0 (unset)'}: start it with -dedup.minScrapeInterval={REQUIRED_DEDUP}"
                " so a resent reading is stored once (a longer interval would merge readings)"
            )
        for flag, default in NAMING_FLAGS.items():
            if flags.get(flag, default) != default:
                raise StoreConfigError(
                    f"VictoriaMetrics at {url} runs with -{flag}={flags[flag]}: this store "
                    f"reads metrics named coldchain_<field>; start it without -{flag}"
                )
        retention = flags.get("retentionPeriod", "1")
        if retention_days(retention) < self._min_retention_days:
            years = -(-self._min_retention_days // 365) + 1
            raise StoreConfigError(
                f"VictoriaMetrics at {url} runs with -retentionPeriod={retention} "
                f"({retention_days(retention):g} days): it drops older readings on arrival, "
                f"without an error, and records must be kept {self._min_retention_days} days; "
                f"start it with -retentionPeriod={years}y"
            )
        if "search.latencyOffset" in flags:
            self.latency_offset_ms = duration_ms(flags["search.latencyOffset"])
        self._flags_checked.add(url)

    async def flush(self) -> None:
        """Make everything written so far searchable on every server that answers
        (VictoriaMetrics' test hook)."""

        def run() -> None:
            missed: list[UnreachableError] = []
            for url in self.urls:
                try:
                    self.request_to(url, "/internal/force_flush", [])
                except UnreachableError as exc:
                    missed.append(exc)
            if len(missed) == len(self.urls):
                raise none_answered(missed)

        await asyncio.get_running_loop().run_in_executor(self._executor, run)

    def close(self) -> None:
        self._http.clear()

    # -- reads --------------------------------------------------------------------------

    async def _export(
        self, match: str, start_ms: int, end_ms: int, parse: Callable[[bytes], T]
    ) -> T:
        """Raw samples with start_ms <= ts <= end_ms (both inclusive), and maybe 1 ms more.

        VictoriaMetrics 1.79 misses a series whose samples all fall on the last day of the
        range when ``end`` is exactly midnight UTC and ``start`` is on an earlier day (its
        per-day index is searched up to the day before), so such an ``end`` is moved 1 ms on;
        callers keep only what they asked for."""
        if end_ms % DAY_MS == 0 and start_ms < end_ms:
            end_ms += 1
        return await self._parsed(
            "/api/v1/export",
            parse,
            **{"match[]": match},
            start=promql.seconds(max(start_ms, 0)),
            end=promql.seconds(end_ms),
        )

    async def raw(self, series: SeriesId, start_ms: int, end_ms: int) -> list[Reading]:
        if end_ms <= start_ms:
            return []

        def readings(body: bytes) -> list[Reading]:
            found = promql.readings_from_export(body).get(series, [])
            return [r for r in found if start_ms <= r.ts_ms < end_ms]

        sel = promql.selector(promql.ALL_METRICS, series)
        return await self._export(sel, start_ms, end_ms - 1, readings)

    async def stored_keys(self, lookup: Lookup) -> set[Key]:
        sel = promql.selector(
            promql.QUALITY, within={"site": lookup.sites, "gateway": lookup.gateways}
        )
        return await self._export(sel, lookup.start_ms, lookup.end_ms, promql.keys_from_export)

    async def range(
        self, series: SeriesId, start_ms: int, end_ms: int, step_ms: int, agg: Agg
    ) -> list[Bucket]:
        fresh_after = self._now_ms() - self.latency_offset_ms
        grids, edges = promql.plan_range(
            start_ms, end_ms, step_ms, fresh_after_ms=fresh_after, max_points=MAX_POINTS
        )
        query = promql.grid_query(series, step_ms, agg)
        parts = await asyncio.gather(
            *(self._grid(query, g) for g in grids),
            *(self._edge(series, e, step_ms, agg) for e in edges),
        )
        return sorted((b for part in parts for b in part), key=lambda b: b.ts_ms)

    async def _grid(self, query: str, grid: promql.Grid) -> list[Bucket]:
        return await self._json(
            "/api/v1/query_range",
            lambda data: promql.buckets_from_grid(data["result"], grid.step_ms),
            query=query,
            start=promql.seconds(grid.eval_start_ms),
            end=promql.seconds(grid.end_ms),
            step=f"{grid.step_ms}ms",
            nocache="1",
        )

    async def _edge(
        self, series: SeriesId, edge: promql.Edge, step_ms: int, agg: Agg
    ) -> list[Bucket]:
        return promql.aggregate(await self.raw(series, edge.start_ms, edge.end_ms), step_ms, agg)

    async def _latest(self, sel: str, lookback_ms: int, at_ms: int) -> dict[SeriesId, Reading]:
        if at_ms % DAY_MS == 0:  # see _export
            at_ms += 1
        return await self._json(
            "/api/v1/query",
            lambda data: promql.latest_readings(promql.lasts_from_result(data["result"])),
            query=promql.latest_query(sel, lookback_ms),
            time=promql.seconds(at_ms),
            nocache="1",
        )

    async def latest(self, series: Sequence[SeriesId] | None) -> dict[SeriesId, Reading]:
        wanted = set(await self.series() if series is None else series)
        at = self._now_ms() + CLOCK_SKEW_MS
        found: dict[SeriesId, Reading] = {}
        # The last look-back reaches 1970-01-02: a window starting at 0 finds nothing.
        for lookback in (*LATEST_LOOKBACKS_MS, at - DAY_MS):
            missing = sorted(wanted - found.keys())
            if not missing:
                break
            sel = promql.selector(promql.ALL_METRICS, within=promql.covering(missing))
            readings = await self._latest(sel, lookback, at)
            found.update((s, r) for s, r in readings.items() if s in wanted and s not in found)
        return found

    async def series(self) -> list[SeriesId]:

        def listed(data: list[dict[str, str]]) -> list[SeriesId]:
            return sorted({s for labels in data if (s := promql.series_of(labels)) is not None})

        return await self._json(
            "/api/v1/series",
            listed,
            **{"match[]": promql.QUALITY},
            start="1",  # VictoriaMetrics reads start=0 as "unset": the last day only
            end=promql.seconds(self._now_ms() + 2 * DAY_MS),
        )
