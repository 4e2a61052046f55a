"""The hub's own health for Prometheus: ingest rate, rejects by reason, lag, store latency,
gateways by state. Rendered on each scrape from the live counters (no background thread)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from coldchain.hub.context import HubContext


class _HubCollector(Collector):
    def __init__(self, ctx: HubContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        s = self.ctx.ingest
        yield CounterMetricFamily("coldchain_ingest_batches", "telemetry batches stored", s.batches)
        yield CounterMetricFamily("coldchain_ingest_readings", "readings newly stored", s.readings)
        yield CounterMetricFamily(
            "coldchain_ingest_duplicates", "readings received again and ignored", s.duplicates
        )
        rejected = CounterMetricFamily(
            "coldchain_ingest_rejected_batches", "batches rejected, by reason", labels=["reason"]
        )
        for reason, n in sorted(s.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        yield CounterMetricFamily(
            "coldchain_store_write_seconds", "time spent in store writes", s.store_seconds
        )
        yield CounterMetricFamily("coldchain_store_writes", "store write calls", s.store_writes)
        yield CounterMetricFamily(
            "coldchain_store_write_errors", "failed store writes (each retried)", s.store_errors
        )
        yield GaugeMetricFamily(
            "coldchain_ingest_lag_seconds", "age of the newest reading when stored", s.lag_ms / 1000
        )
        states = GaugeMetricFamily("coldchain_gateways", "gateways by state", labels=["state"])
        counts: dict[str, int] = {"online": 0, "offline": 0, "unknown": 0}
        for g in self.ctx.registry.all():
            counts[g.state] = counts.get(g.state, 0) + 1
        for state, n in counts.items():
            states.add_metric([state], n)
        yield states


def render_metrics(ctx: HubContext) -> str:
    registry = CollectorRegistry()
    registry.register(_HubCollector(ctx))
    return generate_latest(registry).decode()
