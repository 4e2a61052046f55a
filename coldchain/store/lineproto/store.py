"""The line-protocol store: writes InfluxDB line protocol through influxdb-client into
VictoriaMetrics or InfluxDB 2; reads through VictoriaMetrics' Prometheus-compatible API
(:mod:`coldchain.store.lineproto.victoria`) or Flux (:mod:`coldchain.store.lineproto.influxdb2`).

Writes are *synchronous* HTTP requests (influxdb-client's ``SYNCHRONOUS`` write API) of at most
``batch_size`` lines, gzip-compressed, retried with jittered exponential back-off on connection
errors, 429 and 5xx (safe: a resent line is the same point). ``write`` returns only when the
server has accepted every line, so the hub acknowledges a gateway's batch only for readings the
store holds. With ``write_url`` (a vmagent in front of the servers) that is when vmagent has
taken them; while vmagent does not answer, writes go straight to every server that does
(``/write``) for ``direct_s``, and at least one must take each. influxdb-client's background
batching API is not used: it returns before anything is sent and reports failures to a
callback, which would let the hub acknowledge readings that were never stored.

First copy wins: before writing, the store looks up which (series, ts) it already holds
(:mod:`coldchain.store.lineproto.dedupe`) and writes only new readings, so ``WriteResult`` counts
duplicates. VictoriaMetrics makes new samples searchable about 1 s after a write (a new
series up to ~8 s): a copy arriving sooner than that is written again, and
``-dedup.minScrapeInterval=1ms`` (required, checked at start) keeps one of the two.

All blocking work (encoding, HTTP) runs in the store's own worker threads; the event loop
only awaits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.retry import WritesRetry
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from coldchain.reading import Reading, SeriesId
from coldchain.store import doors
from coldchain.store.base import Agg, Bucket, DoorInterval, Store, StoreError, WriteResult
from coldchain.store.lineproto import dedupe
from coldchain.store.lineproto import lines as lineproto
from coldchain.store.lineproto.influxdb2 import FluxReads
from coldchain.store.lineproto.replicas import ReplicaKeeper
from coldchain.store.lineproto.victoria import VictoriaReads

if TYPE_CHECKING:
    from coldchain.config.site import InfluxStoreSettings

# WritesRetry fixes its overall deadline when it is built, and the client keeps one for its
# lifetime: a finite deadline would silently end all retries once the hub has run that long.
# Retries are bounded by ``retries`` and the per-request timeout instead.
_NO_DEADLINE_S = 10 * 365 * 86_400
_MS = cast("WritePrecision", WritePrecision.MS)  # a str constant on the class
DIRECT_S = 30.0  # vmagent not reachable: written straight to the servers this long, then tried
log = logging.getLogger(__name__)


class Reads(Protocol):
    """What each flavour's read side provides."""

    url: str

    async def check(self) -> None: ...
    async def flush(self) -> None: ...
    def close(self) -> None: ...
    async def raw(self, series: SeriesId, start_ms: int, end_ms: int) -> list[Reading]: ...
    async def stored_keys(self, lookup: dedupe.Lookup) -> set[dedupe.Key]: ...
    async def range(
        self, series: SeriesId, start_ms: int, end_ms: int, step_ms: int, agg: Agg
    ) -> list[Bucket]: ...
    async def latest(self, series: Sequence[SeriesId] | None) -> dict[SeriesId, Reading]: ...
    async def series(self) -> list[SeriesId]: ...


class InfluxStore(Store):
    """Readings in VictoriaMetrics or InfluxDB 2, written as line protocol."""

    def __init__(
        self,
        *,
        url: str,
        write_url: str | None = None,
        replicas: Sequence[str] = (),
        flavour: lineproto.Flavour = "victoriametrics",
        org: str = "coldchain",
        bucket: str = "coldchain",
        token: str | None = None,
        batch_size: int = 5000,
        gzip: bool = True,
        timeout_s: float = 10.0,
        retries: int = 3,
        retry_interval_s: float = 0.25,
        max_retry_delay_s: float = 4.0,
        first_copy_wins: bool = True,
        verify_flags: bool = True,
        min_retention_days: int = 5 * 365,
        workers: int = 4,
        replica_probe_s: float = 30.0,
        direct_s: float = DIRECT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if flavour not in ("victoriametrics", "influxdb2"):
            raise ValueError(f"flavour {flavour!r}: use 'victoriametrics' or 'influxdb2'")
        if (replicas or write_url) and flavour != "victoriametrics":
            raise ValueError("write_url and replicas: only for VictoriaMetrics (vmagent)")
        if replicas and not write_url:
            raise ValueError("replicas need write_url: the vmagent that writes to each of them")
        if batch_size < 1 or workers < 1 or retries < 0 or timeout_s <= 0:
            raise ValueError(
                f"batch_size ({batch_size}) and workers ({workers}) must be >= 1, retries "
                f"({retries}) >= 0 and timeout_s ({timeout_s}) > 0"
            )
        self.url = url.rstrip("/")
        self.write_url = (write_url or url).rstrip("/")
        self.flavour: lineproto.Flavour = flavour
        self.org, self.bucket = org, bucket
        self.batch_size = batch_size
        self.gzip = gzip
        self.first_copy_wins = first_copy_wins
        self.retry = WritesRetry(
            total=retries,
            retry_interval=retry_interval_s,
            max_retry_delay=max_retry_delay_s,
            exponential_base=2,
            max_retry_time=_NO_DEADLINE_S,
            allowed_methods=["POST"],
        )
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="influx-store")
        self._client = InfluxDBClient(
            url=self.write_url,
            token=token or "",  # empty: no Authorization header
            org=org,
            enable_gzip=gzip,
            timeout=round(timeout_s * 1000),
            retries=self.retry,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._reads: Reads
        if flavour == "victoriametrics":
            self._reads = VictoriaReads(
                self.url,
                replicas=replicas,
                executor=self._executor,
                timeout_s=timeout_s,
                retries=retries,
                headers={"Authorization": f"Token {token}"} if token else {},
                verify_flags=verify_flags,
                min_retention_days=min_retention_days,
                clock=clock,
            )
        else:
            self._reads = FluxReads(
                self._client,
                url=self.url,
                org=org,
                bucket=bucket,
                executor=self._executor,
                clock=clock,
            )
        self._checked = False
        self._closed = False
        self.replica_probe_s = replica_probe_s
        self.direct_s = direct_s
        self._direct_until = 0.0  # vmagent down: writes go straight to the servers until
        self.keeper: ReplicaKeeper | None = None

    @classmethod
    def from_settings(
        cls, settings: InfluxStoreSettings, *, base_dir: Path | None = None
    ) -> InfluxStore:
        """A store from the hub's ``store:`` settings (the token file read now)."""
        token = None
        if settings.token_file:
            path = Path(settings.token_file)
            path = path if path.is_absolute() or base_dir is None else base_dir / path
            try:
                token = path.read_text().strip()
            except OSError as exc:
                raise StoreError(f"store token file {path}: {exc.strerror}") from exc
        return cls(
            url=settings.url,
            write_url=settings.write_url,
            replicas=settings.replicas,
            flavour=settings.flavour,
            org=settings.org,
            bucket=settings.bucket,
            token=token,
        )

    @property
    def target(self) -> str:
        name = "VictoriaMetrics" if self.flavour == "victoriametrics" else "InfluxDB"
        return f"{name} at {self.url}"

    async def upkeep(self) -> None:
        """With replicas: probe them and mend one back from an outage
        (:mod:`coldchain.store.lineproto.replicas`); else nothing."""
        if isinstance(self._reads, VictoriaReads) and len(self._reads.urls) > 1:
            self.keeper = ReplicaKeeper(self._reads, probe_s=self.replica_probe_s)
            await self.keeper.run()

    @property
    def write_target(self) -> str:
        """Where writes go: the store, or the vmagent in front of its replicas."""
        if self.write_url == self.url:
            return self.target
        return f"vmagent at {self.write_url}"

    async def check(self) -> None:
        """Reachable and set up as this store needs (VictoriaMetrics: its flags). Done once
        before the first operation; call it at start-up to fail early."""
        if self._closed:
            raise StoreError(f"store for {self.target} is closed")
        await self._reads.check()
        self._checked = True

    async def _ready(self) -> None:
        if not self._checked or self._closed:
            await self.check()

    async def settle(self) -> None:
        """Make every accepted write visible to reads now (VictoriaMetrics otherwise takes
        about a second, a new series up to ~8 s). For tests and benchmarks."""
        await self._ready()
        await self._reads.flush()

    # -- writing --------------------------------------------------------------------------

    async def write(self, readings: Sequence[Reading]) -> WriteResult:
        await self._ready()
        unique, copies = dedupe.first_copies(readings)
        if self.first_copy_wins and unique:
            lookups = dedupe.plan_lookups(unique)
            found = await asyncio.gather(*(self._reads.stored_keys(lk) for lk in lookups))
            unique, stored = dedupe.split_new(unique, set().union(*found))
            copies += stored
        if unique:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._send, unique)
        return WriteResult(stored=len(unique), duplicates=copies)

    def _send(self, readings: list[Reading]) -> None:
        lines = lineproto.encode(readings, self.flavour)
        for chunk in lineproto.chunks(lines, self.batch_size):
            if time.monotonic() < self._direct_until:
                self._send_direct(chunk)
                continue
            try:
                self._write_api.write(self.bucket, self.org, record=chunk, write_precision=_MS)
            except ApiException as exc:
                body = (
                    (exc.body or b"").decode(errors="replace")
                    if isinstance(exc.body, bytes)
                    else str(exc.body or exc.reason)
                )
                raise StoreError(
                    f"{self.write_target} refused a write of {len(chunk)} lines: "
                    f"HTTP {exc.status}: {body[:500]}"
                ) from exc
            except (HTTPError, InfluxDBError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                if self.write_url != self.url:  # vmagent down: straight to the servers
                    log.warning(
                        "store: %s is not reachable (%s): writing to the servers directly "
                        "for %g s; the replica keeper mends one that misses writes meanwhile",
                        self.write_target,
                        reason,
                        self.direct_s,
                    )
                    self._direct_until = time.monotonic() + self.direct_s
                    self._send_direct(chunk)
                    continue
                raise StoreError(
                    f"{self.write_target} is not reachable: a write of {len(chunk)} lines failed "
                    f"after {self.retry.total} retries: {reason}"
                ) from exc

    def _send_direct(self, chunk: list[str]) -> None:
        """``chunk`` into every server that answers, past vmagent (its ``/write``); at least
        one must take it."""
        assert isinstance(self._reads, VictoriaReads)  # write_url is VictoriaMetrics' only
        body = "\n".join(chunk).encode()
        missed = []
        for url in self._reads.urls:
            try:
                self._reads.request_to(url, "/write?precision=ms", [], body=body)
            except StoreError as exc:
                missed.append(str(exc))
        if len(missed) == len(self._reads.urls):
            raise StoreError(
                f"{self.write_target} is not reachable, and no server took the write of "
                f"{len(chunk)} lines directly: {'; '.join(missed)}"
            )

    # -- reading --------------------------------------------------------------------------

    async def latest(self, series: Sequence[SeriesId] | None = None) -> dict[SeriesId, Reading]:
        await self._ready()
        return await self._reads.latest(series)

    async def raw(self, series: SeriesId, start_ms: int, end_ms: int) -> list[Reading]:
        await self._ready()
        return await self._reads.raw(series, start_ms, end_ms)

    async def range(
        self, series: SeriesId, start_ms: int, end_ms: int, step_ms: int, agg: Agg
    ) -> list[Bucket]:
        await self._ready()
        return await self._reads.range(series, start_ms, end_ms, step_ms, Agg(agg))

    async def door_intervals(
        self, series: SeriesId, start_ms: int, end_ms: int
    ) -> list[DoorInterval]:
        await self._ready()
        return await doors.door_intervals(series, start_ms, end_ms, self._reads.raw)

    async def series(self) -> list[SeriesId]:
        await self._ready()
        return await self._reads.series()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._reads.close()
        self._write_api.close()  # type: ignore[no-untyped-call]  # untyped in influxdb-client
        self._client.close()  # type: ignore[no-untyped-call]
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
