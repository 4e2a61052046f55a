"""Reading back from InfluxDB 2 with Flux (influxdb-client's blocking QueryApi, in the
store's worker threads). The query text is built and its records parsed in
:mod:`coldchain.store.lineproto.flux`; this module only runs them.

Not tested against a server: no InfluxDB 2 is installable here (Debian ships InfluxDB 1.6,
which has neither Flux nor the v2 write API; PyPI has clients only). The Flux text and the
parsing of records are unit-tested.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Any, ParamSpec, TypeVar

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from coldchain.reading import Reading, SeriesId
from coldchain.store.base import Agg, Bucket, StoreError
from coldchain.store.lineproto import flux
from coldchain.store.lineproto.dedupe import Key, Lookup

CLOCK_SKEW_MS = 3_600_000
P = ParamSpec("P")
R = TypeVar("R")


class FluxReads:
    """The read side of :class:`coldchain.store.lineproto.store.InfluxStore` for InfluxDB 2."""

    def __init__(
        self,
        client: InfluxDBClient,
        *,
        url: str,
        org: str,
        bucket: str,
        executor: Executor,
        clock: Callable[[], float],
    ) -> None:
        self.url = url
        self._client = client
        self._query_api = client.query_api()
        self._org = org
        self._bucket = bucket
        self._executor = executor
        self._clock = clock

    def _records(self, query: str) -> list[Mapping[str, Any]]:
        try:
            tables = self._query_api.query(query, org=self._org)
        except (ApiException, HTTPError, OSError) as exc:
            detail = getattr(exc, "body", None) or getattr(exc, "reason", None) or exc
            raise StoreError(f"InfluxDB at {self.url}: Flux query failed: {detail}") from exc
        return [rec.values for table in tables for rec in table.records]

    async def _run(self, query: str) -> list[Mapping[str, Any]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(self._records, query))

    def _stop_ms(self) -> int:
        return int(self._clock() * 1000) + CLOCK_SKEW_MS

    async def check(self) -> None:
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(self._executor, self._client.ping)
        if not ok:
            raise StoreError(f"InfluxDB at {self.url} is not reachable (ping failed)")

    async def flush(self) -> None:
        """InfluxDB makes a write queryable before it answers: nothing to do."""

    def close(self) -> None:
        """The client is closed by the store."""

    async def raw(self, series: SeriesId, start_ms: int, end_ms: int) -> list[Reading]:
        if end_ms <= start_ms:
            return []
        records = await self._run(flux.raw_query(self._bucket, series, start_ms, end_ms))
        return _checked(flux.readings_from_pivot, series, records)

    async def stored_keys(self, lookup: Lookup) -> set[Key]:
        query = flux.stored_query(
            self._bucket, lookup.sites, lookup.gateways, lookup.start_ms, lookup.end_ms
        )
        return flux.keys_from_records(await self._run(query))

    async def range(
        self, series: SeriesId, start_ms: int, end_ms: int, step_ms: int, agg: Agg
    ) -> list[Bucket]:
        if step_ms <= 0:
            raise ValueError(f"step must be positive, got {step_ms} ms")
        if end_ms <= start_ms:
            return []
        query = flux.range_query(
            self._bucket, series, start_ms=start_ms, end_ms=end_ms, step_ms=step_ms, agg=agg
        )
        return flux.buckets_from_records(await self._run(query), step_ms)

    async def latest(self, series: Sequence[SeriesId] | None) -> dict[SeriesId, Reading]:
        if series is not None and not series:
            return {}
        query = flux.latest_query(self._bucket, series, self._stop_ms())
        found = _checked(flux.latest_readings, flux.lasts_from_records(await self._run(query)))
        return found if series is None else {s: r for s, r in found.items() if s in set(series)}

    async def series(self) -> list[SeriesId]:
        records = await self._run(flux.series_query(self._bucket, self._stop_ms()))
        return sorted({s for rec in records if (s := flux.series_of(rec)) is not None})


def _checked(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise StoreError(f"stored data does not make a reading: {exc}") from exc
