"""Fleet health from the hub's /metrics (hub/metrics.py): gateways by state,
ingest rate and lag, rejected batches, store writes."""

from __future__ import annotations

from typing import Any

from coldchain.config.site import SiteConfig
from dashboards.grafana.common import dashboard, fresh_window, stable_uid
from dashboards.grafana.panels import Layout, metrics_panel, stat_panel
from dashboards.grafana.queries import HubMetric, Queries, ref_ids

GATEWAYS = "coldchain_gateways"
ONLINE = HubMetric(GATEWAYS, "online", {"state": "online"})
OFFLINE = HubMetric(GATEWAYS, "offline", {"state": "offline"})
UNKNOWN = HubMetric(GATEWAYS, "unknown", {"state": "unknown"})

# (title, unit, metrics) of each time series panel
SERIES: list[tuple[str, str, list[HubMetric]]] = [
    ("Gateways by state", "none", [HubMetric(GATEWAYS, "gateways", by=("state",))]),
    (
        "Readings stored and duplicates ignored",
        "reqps",
        [
            HubMetric("coldchain_ingest_readings_total", "stored /s", counter=True),
            HubMetric("coldchain_ingest_duplicates_total", "duplicates /s", counter=True),
        ],
    ),
    (
        "Ingest lag: age of the newest reading when stored (rises while backlogs replay)",
        "s",
        [HubMetric("coldchain_ingest_lag_seconds", "lag")],
    ),
    (
        "Rejected batches by reason",
        "reqps",
        [
            HubMetric(
                "coldchain_ingest_rejected_batches_total", "rejected", counter=True, by=("reason",)
            )
        ],
    ),
    (
        "Store writes and errors",
        "reqps",
        [
            HubMetric("coldchain_store_writes_total", "writes /s", counter=True),
            HubMetric("coldchain_store_write_errors_total", "errors /s", counter=True),
        ],
    ),
    (
        "Outbox backlog per gateway (readings waiting to be sent)",
        "none",
        [HubMetric("coldchain_gateway_backlog", "backlog", by=("gateway",))],
    ),
    (
        "Poll success per device",
        "percentunit",
        [HubMetric("coldchain_gateway_poll_success", "success", by=("gateway", "device"))],
    ),
    (
        "Open alerts",
        "none",
        [HubMetric("coldchain_alerts_open", "open", by=("state", "severity"))],
    ),
    (
        "Store busy (write seconds per second)",
        "percentunit",
        [HubMetric("coldchain_store_write_seconds_total", "busy", counter=True)],
    ),
]


def fleet(cfg: SiteConfig, q: Queries) -> dict[str, Any]:
    n = len(cfg.gateways)
    layout = Layout()
    fresh = fresh_window(cfg)
    panels: list[Any] = [layout.row("Gateways")]
    for metric, title, thresholds in [
        (ONLINE, f"Gateways online (of {n})", [("red", None), ("green", n)]),
        (OFFLINE, "Gateways offline", [("green", None), ("red", 1)]),
        (UNKNOWN, "Gateways not heard since the hub started", [("green", None), ("orange", 1)]),
    ]:
        panels.append(
            stat_panel(
                q,
                title,
                [q.hub(metric)],
                unit="none",
                thresholds=[{"color": c, "value": v} for c, v in thresholds],
                pos=layout.place(8, 4),
                fresh=fresh,
            )
        )
    panels.append(layout.row("Ingest and store"))
    for title, unit, metrics in SERIES:
        targets = [q.hub(m, ref) for m, ref in zip(metrics, ref_ids(len(metrics)), strict=True)]
        panels.append(metrics_panel(q, title, unit, targets, layout.place(12, 8)))
    return dashboard(
        title="coldchain fleet health",
        uid=stable_uid(q.source.key, "fleet"),
        source=q.source,
        panels=panels,
        tags=["fleet"],
        since="now-6h",
        description="The hub's /metrics: gateways by state, ingest, store writes.",
    )
