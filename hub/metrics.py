"""The hub's own health for Prometheus: ingest rate, rejects by reason (batches, values,
status/health/alerts messages), handler errors, lag, store latency,
gateways by state, each gateway's backlog and poll success, open alerts, notifications.
Rendered on each scrape from the live counters (no background thread)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from alerts.service import AlertService
    from hub.context import HubContext


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
        values = CounterMetricFamily(
            "coldchain_ingest_rejected_values",
            "readings stored as bad because the hub refused their value, by reason",
            labels=["reason"],
        )
        for reason, n in sorted(s.rejected_values.items()):
            values.add_metric([reason], n)
        yield values
        messages = CounterMetricFamily(
            "coldchain_ingest_rejected_messages",
            "status, health and alerts messages refused, by kind and reason",
            labels=["kind", "reason"],
        )
        for (kind, reason), n in sorted(s.rejected_messages.items()):
            messages.add_metric([kind, reason], n)
        yield messages
        yield CounterMetricFamily(
            "coldchain_ingest_message_errors",
            "messages whose handling failed (logged; the MQTT session stays up)",
            s.message_errors,
        )
        yield CounterMetricFamily(
            "coldchain_ingest_acks_dropped",
            "acks whose broker session ended before they went out (standby brokers; resent)",
            s.acks_dropped,
        )
        yield CounterMetricFamily(
            "coldchain_ingest_acks_withheld",
            "stored batches not acknowledged because their hand-over to the alert leader "
            "failed (several hub processes; the gateways resend them)",
            s.acks_withheld,
        )
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
        yield from _gateway_metrics(self.ctx)
        if self.ctx.alerts is not None:
            yield from _alert_metrics(self.ctx.alerts)
        if self.ctx.order is not None:  # hub.share_group: each gateway's batches in order
            o = self.ctx.order
            batches = CounterMetricFamily(
                "coldchain_alerts_batches",
                "batches the leader judged, by how: in_order, held (waited for an earlier one), "
                "late (after their turn), gap (a turn given up after the hold)",
                labels=["how"],
            )
            for how, n in (
                ("in_order", o.stats.in_order),
                ("held", o.stats.held),
                ("late", o.stats.late),
                ("gap", o.stats.gaps),
            ):
                batches.add_metric([how], n)
            yield batches
            yield GaugeMetricFamily(
                "coldchain_alerts_batches_waiting", "batches held for an earlier one", o.waiting()
            )


def _gateway_metrics(ctx: HubContext) -> Iterator[Metric]:
    """Per gateway: up, outbox backlog and each device's poll success (from its health)."""
    up = GaugeMetricFamily("coldchain_gateway_up", "1 when online", labels=["gateway"])
    backlog = GaugeMetricFamily(
        "coldchain_gateway_backlog", "readings waiting in its outbox", labels=["gateway"]
    )
    success = GaugeMetricFamily(
        "coldchain_gateway_poll_success",
        "share of successful polls per device, 0-1",
        labels=["gateway", "device"],
    )
    configured = {gw.id: {d.id for d in gw.devices} for gw in ctx.cfg.gateways}
    for g in ctx.registry.all():
        up.add_metric([g.id], 1.0 if g.state == "online" else 0.0)
        if g.backlog is not None:
            backlog.add_metric([g.id], g.backlog)
        known = configured.get(g.id, set())
        for device, value in sorted(g.poll_success().items()):
            # only configured devices: a health report names what it likes, and each new
            # name would be a new series in Prometheus for ever
            if device in known and isinstance(value, int | float):
                success.add_metric([g.id, device], float(value))
    yield from (up, backlog, success)


def _alert_metrics(alerts: AlertService) -> Iterator[Metric]:
    """Open alerts by state and severity; notifications sent and failed; whether this hub
    leads the alerts, and the readings it judged."""
    open_ = GaugeMetricFamily("coldchain_alerts_open", "open alerts", labels=["state", "severity"])
    counts: dict[tuple[str, str], int] = {}
    for row in alerts.open.values():
        counts[(row.state, row.severity)] = counts.get((row.state, row.severity), 0) + 1
    for (state, severity), n in sorted(counts.items()):
        open_.add_metric([state, severity], n)
    yield open_
    d = alerts.dispatcher
    yield CounterMetricFamily("coldchain_notifications_sent", "messages sent", d.sent)
    yield CounterMetricFamily(
        "coldchain_notifications_failed", "messages every notifier refused", d.failed
    )
    yield GaugeMetricFamily("coldchain_notifications_pending", "queued or held", d.pending())
    yield GaugeMetricFamily(
        "coldchain_alerts_leader", "1 when this hub runs the alerts (hub/leader.py)", alerts.leading
    )
    yield CounterMetricFamily(
        "coldchain_alerts_readings_judged", "readings the alert rules judged", alerts.stats.readings
    )


def render_metrics(ctx: HubContext) -> str:
    registry = CollectorRegistry()
    registry.register(_HubCollector(ctx))
    return generate_latest(registry).decode()
