"""Keeping the VictoriaMetrics replicas equal (readings kept twice, ``docs/store.md``).

``vmagent`` writes every reading to each server and keeps on its own disk what a server that
is down cannot take yet, so a server stopped for a while gets everything once it is back. Not
so one killed with -9 (a crash, a power cut): VictoriaMetrics holds what it took in during its
last seconds in memory before it reaches disk, and vmagent counted those deliveries done. The
other server still has them.

:class:`ReplicaKeeper`, run by the hub beside ingest, probes every server's ``/health``; when
one answers again after it did not (and once at start: the hub may have gone down with it), it
*mends* the readings stamped in the last two days (what was lost is what *arrived* in a
server's last seconds, and a gateway's backlog arrives long after its readings were taken): per
10 minutes of reading time, the servers' sample counts (one range query each); where they
differ, every server's samples (``/api/v1/export``), and into each server the samples another
holds and it lacks (``/api/v1/import``, which takes the export's own format). A sample copied
where vmagent also delivers it later is stored once (``-dedup.minScrapeInterval=1ms``,
required).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from coldchain.store.base import StoreError
from coldchain.store.lineproto.victoria import UnreachableError, VictoriaReads

log = logging.getLogger(__name__)

MATCH = '{__name__=~"coldchain_.+"}'  # every metric the store writes
CHUNK_MS = 10 * 60_000  # compared, and where they differ exported, 10 min at a time
LOOKBACK_MS = 2 * 86_400_000  # readings stamped this far back are compared (a backlog's age)

Labels = tuple[tuple[str, str], ...]
Sample = tuple[Labels, int]


def samples(body: bytes) -> dict[Sample, Any]:
    """``/api/v1/export`` output (JSON lines) as {(labels, ts): value}."""
    out: dict[Sample, Any] = {}
    for line in body.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        labels = tuple(sorted(row["metric"].items()))
        for ts, value in zip(row["timestamps"], row["values"], strict=True):
            out[(labels, ts)] = value
    return out


def lacking(mine: Mapping[Sample, Any], others: list[Mapping[Sample, Any]]) -> tuple[bytes, int]:
    """The ``/api/v1/import`` body of the samples ``others`` hold and ``mine`` does not (one
    JSON line per metric), and how many they are."""
    per_metric: dict[Labels, dict[int, Any]] = defaultdict(dict)
    for theirs in others:
        for (labels, ts), value in theirs.items():
            if (labels, ts) not in mine:
                per_metric[labels].setdefault(ts, value)
    lines = []
    for labels, by_ts in per_metric.items():
        stamps = sorted(by_ts)
        row = {"metric": dict(labels), "values": [by_ts[t] for t in stamps], "timestamps": stamps}
        lines.append(json.dumps(row, separators=(",", ":")))
    return "\n".join(lines).encode(), sum(len(v) for v in per_metric.values())


@dataclass
class Mended:
    """What one mend copied, per server; servers that did not answer were left out."""

    added: dict[str, int] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)


def counts(reads: VictoriaReads, url: str, start_ms: int, end_ms: int) -> dict[int, float]:
    """How many samples ``url`` holds per chunk (t - CHUNK_MS, t], every metric together,
    for the chunk ends t from start_ms + CHUNK_MS to end_ms (multiples of CHUNK_MS): one
    range query."""
    fields = [
        ("query", f"sum(count_over_time({MATCH}[{CHUNK_MS}ms]))"),
        ("start", f"{(start_ms + CHUNK_MS) / 1000:.3f}"),
        ("end", f"{end_ms / 1000:.3f}"),
        ("step", f"{CHUNK_MS}ms"),
        ("nocache", "1"),
    ]
    result = json.loads(reads.request_to(url, "/api/v1/query_range", fields))["data"]["result"]
    return {round(float(t) * 1000): float(n) for t, n in result[0]["values"]} if result else {}


def mend(reads: VictoriaReads, start_ms: int, end_ms: int) -> Mended:
    """Copy into each answering server the samples stamped in [start_ms, end_ms] (widened to
    whole chunks) that another holds and it lacks (blocking: run it in a worker thread). The
    servers' sample counts per ``CHUNK_MS`` first; only a chunk where they differ is
    exported and compared."""
    start_ms -= start_ms % CHUNK_MS
    end_ms += -end_ms % CHUNK_MS
    result = Mended(added=dict.fromkeys(reads.urls, 0))
    per_url: dict[str, dict[int, float]] = {}
    for url in reads.urls:
        try:
            per_url[url] = counts(reads, url, start_ms, end_ms)
        except UnreachableError:
            result.missed.append(url)
    ends = sorted({t for c in per_url.values() for t in c})
    for hi in ends:
        if len({c.get(hi, 0.0) for c in per_url.values()}) <= 1:
            continue
        lo = hi - CHUNK_MS
        held: dict[str, dict[Sample, Any]] = {}
        fields = [("match[]", MATCH), ("start", f"{lo / 1000:.3f}"), ("end", f"{hi / 1000:.3f}")]
        for url in per_url:
            try:
                got = samples(reads.request_to(url, "/api/v1/export", fields))
            except UnreachableError:
                result.missed.append(url)
                continue
            held[url] = {k: v for k, v in got.items() if lo < k[1] <= hi}
        for url, mine in held.items():
            body, n = lacking(mine, [theirs for other, theirs in held.items() if other != url])
            if n:
                reads.request_to(url, "/api/v1/import", [], body=body)
                result.added[url] += n
    result.missed = list(dict.fromkeys(result.missed))
    return result


class ReplicaKeeper:
    """Probes the servers every ``probe_s`` and mends after a server's outage (module doc)."""

    def __init__(
        self,
        reads: VictoriaReads,
        *,
        probe_s: float = 30.0,
        lookback_ms: int = LOOKBACK_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.reads = reads
        self.probe_s = probe_s
        self.lookback_ms = lookback_ms
        self.clock = clock
        self.mended: list[Mended] = []  # every mend that copied or missed something

    def _answers(self, url: str) -> bool:
        try:
            self.reads.request_to(url, "/health", [])
        except StoreError:  # not reachable, or not ready (503 while starting)
            return False
        return True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        down: set[str] = set()
        due = True  # at start: the hub may have gone down with a server
        while True:
            for url in self.reads.urls:
                if await loop.run_in_executor(None, self._answers, url):
                    if url in down:
                        down.discard(url)
                        due = True
                        log.warning(
                            "store: VictoriaMetrics at %s answers again: copying into it what "
                            "it lacks of the readings stamped in the last %g h",
                            url,
                            self.lookback_ms / 3_600_000,
                        )
                elif url not in down:
                    down.add(url)
                    log.warning(
                        "store: VictoriaMetrics at %s does not answer: reads go to the other "
                        "servers, vmagent keeps its writes until it is back",
                        url,
                    )
            if due and not down:
                now_ms = int(self.clock() * 1000)
                start, end = now_ms - self.lookback_ms, now_ms + 60_000
                try:
                    done = await loop.run_in_executor(None, mend, self.reads, start, end)
                except (StoreError, ValueError, LookupError, TypeError) as exc:  # an odd answer
                    log.warning("store: mending the replicas failed: %s; trying again", exc)
                    await asyncio.sleep(self.probe_s)
                    continue
                due = bool(done.missed)  # one went down meanwhile: again once all answer
                if any(done.added.values()):
                    self.mended.append(done)
                    log.warning(
                        "store: replicas mended: %s",
                        ", ".join(f"{n} samples into {u}" for u, n in done.added.items() if n),
                    )
            await asyncio.sleep(self.probe_s)
