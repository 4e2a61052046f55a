"""Example scrape configs that bring the hub's /metrics to where fleet health reads them:
VictoriaMetrics' ``-promscrape.config`` (or a Prometheus ``scrape_configs`` section), and a
Telegraf config (``inputs.prometheus``, ``metric_version = 2``) into InfluxDB 2."""

from __future__ import annotations

from typing import Any

from coldchain.config.site import SiteConfig
from dashboards.grafana.datasources import HUB_BUCKET, TOKEN_ENV, Datasource

SCRAPE_INTERVAL = "30s"
JOB = "coldchain-hub"


def hub_address(cfg: SiteConfig) -> str:
    """host:port of the hub's API (its /metrics), from ``hub.listen``."""
    return cfg.hub.listen


def victoria_scrape(cfg: SiteConfig) -> dict[str, Any]:
    """scrape/victoria-metrics.yml: for ``-promscrape.config`` (or Prometheus)."""
    return {
        "scrape_configs": [
            {
                "job_name": JOB,
                "scrape_interval": SCRAPE_INTERVAL,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [hub_address(cfg)]}],
            }
        ]
    }


def telegraf_conf(cfg: SiteConfig, influx: Datasource) -> str:
    """scrape/telegraf.conf: the hub's /metrics into the bucket fleet health reads."""
    return f"""# The hub's /metrics into InfluxDB 2 for the coldchain fleet-health dashboard (Flux).
# Create the bucket first:  influx bucket create --name {HUB_BUCKET} --retention 30d
[agent]
  interval = "{SCRAPE_INTERVAL}"

[[inputs.prometheus]]
  urls = ["http://{hub_address(cfg)}/metrics"]
  # one measurement "prometheus", one field per metric name, labels as tags
  metric_version = 2

[[outputs.influxdb_v2]]
  urls = ["{influx.url}"]
  token = "${TOKEN_ENV}"
  organization = "{influx.org}"
  bucket = "{HUB_BUCKET}"
"""
