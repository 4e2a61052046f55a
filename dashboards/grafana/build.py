"""Everything ``coldchain dashboards build`` writes, as file texts by relative path:

* ``dashboards/<datasource>/overview.json``, ``site-<site id>.json``, ``fleet-health.json``
* ``provisioning/datasources/coldchain.yaml``: the datasources, with the uids dashboards use
* ``provisioning/dashboards/coldchain.yaml``: a file provider (and folder) per datasource
* ``scrape/victoria-metrics.yml`` and/or ``scrape/telegraf.conf``: the hub's /metrics into the
  store fleet health reads (examples to adapt: the hub's address is its ``hub.listen``)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from coldchain.config.site import SiteConfig
from coldchain.config.topology import site_points
from coldchain.profiles.registry import ProfileRegistry
from dashboards.grafana.datasources import (
    DatasourceKey,
    dashboards_file,
    datasource,
    datasources_file,
)
from dashboards.grafana.fleet import fleet
from dashboards.grafana.overview import overview
from dashboards.grafana.queries import queries_for
from dashboards.grafana.scrape import telegraf_conf, victoria_scrape
from dashboards.grafana.site import site_dashboard

DEFAULT_DASHBOARDS_PATH = "/var/lib/grafana/dashboards/coldchain"


@dataclass(frozen=True, slots=True)
class BuildOptions:
    datasources: Sequence[DatasourceKey] = ("prometheus", "flux")
    urls: Mapping[DatasourceKey, str] = field(default_factory=dict)
    dashboards_path: str = DEFAULT_DASHBOARDS_PATH  # where Grafana finds dashboards/<key>/


def dashboards(
    cfg: SiteConfig, profiles: ProfileRegistry, options: BuildOptions
) -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model by relative path."""
    points = site_points(cfg, profiles)
    out: dict[str, dict[str, Any]] = {}
    for key in options.datasources:
        q = queries_for(datasource(cfg, key, options.urls.get(key)))
        out[f"dashboards/{key}/overview.json"] = overview(cfg, points, q)
        for site in cfg.sites:
            out[f"dashboards/{key}/site-{site.id}.json"] = site_dashboard(site, points, q)
        out[f"dashboards/{key}/fleet-health.json"] = fleet(cfg, q)
    return out


def provisioning(cfg: SiteConfig, options: BuildOptions) -> dict[str, dict[str, Any]]:
    """The provisioning files' content by relative path."""
    sources = [datasource(cfg, k, options.urls.get(k)) for k in options.datasources]
    return {
        "provisioning/datasources/coldchain.yaml": datasources_file(sources),
        "provisioning/dashboards/coldchain.yaml": dashboards_file(sources, options.dashboards_path),
    }


def render(cfg: SiteConfig, profiles: ProfileRegistry, options: BuildOptions) -> dict[str, str]:
    """Every file's text by relative path (JSON dashboards, YAML provisioning)."""
    files = {
        path: json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for path, board in dashboards(cfg, profiles, options).items()
    }
    for path, doc in provisioning(cfg, options).items():
        files[path] = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    if "prometheus" in options.datasources:
        scrape = victoria_scrape(cfg)
        files["scrape/victoria-metrics.yml"] = yaml.safe_dump(scrape, sort_keys=False)
    if "flux" in options.datasources:
        influx = datasource(cfg, "flux", options.urls.get("flux"))
        files["scrape/telegraf.conf"] = telegraf_conf(cfg, influx)
    return files


def write(out: Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` under ``out``; the paths written."""
    written = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
