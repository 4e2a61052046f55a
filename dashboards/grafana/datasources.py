"""The two datasources the dashboards read, and their Grafana provisioning file.

Dashboards refer to a datasource by ``uid`` only; the provisioning file creates it with that
uid, so the generated JSON works on any Grafana that loads both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from coldchain.config.site import InfluxStoreSettings, SiteConfig

DatasourceKey = Literal["prometheus", "flux"]
KEYS: tuple[DatasourceKey, ...] = ("prometheus", "flux")
DEFAULT_URLS: dict[DatasourceKey, str] = {
    "prometheus": "http://localhost:8428",
    "flux": "http://localhost:8086",
}
# The name of an environment variable Grafana expands in provisioning files, not a secret.
TOKEN_ENV = "COLDCHAIN_INFLUX_TOKEN"  # noqa: S105
HUB_BUCKET = "coldchain_hub"  # where Telegraf writes the hub's /metrics (Flux flavour)


@dataclass(frozen=True, slots=True)
class Datasource:
    """One Grafana datasource: what dashboards point at, and how Grafana reaches it."""

    key: DatasourceKey
    uid: str
    type: str
    name: str
    url: str
    bucket: str = "coldchain"
    org: str = "coldchain"
    json_data: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> dict[str, str]:
        """The reference a panel or target carries."""
        return {"type": self.type, "uid": self.uid}

    def provisioning(self) -> dict[str, Any]:
        """This datasource's entry in provisioning/datasources/*.yaml."""
        entry: dict[str, Any] = {
            "name": self.name,
            "uid": self.uid,
            "type": self.type,
            "access": "proxy",
            "url": self.url,
            "editable": False,
            "jsonData": self.json_data,
        }
        if self.key == "flux":
            entry["secureJsonData"] = {"token": f"${TOKEN_ENV}"}
        return entry


def _store(cfg: SiteConfig, flavour: str) -> InfluxStoreSettings | None:
    store = cfg.hub.store
    if isinstance(store, InfluxStoreSettings) and store.flavour == flavour:
        return store
    return None


def datasource(cfg: SiteConfig, key: DatasourceKey, url: str | None = None) -> Datasource:
    """The datasource ``key``: its URL from ``url``, else the config's store, else a default."""
    if key == "prometheus":
        store = _store(cfg, "victoriametrics")
        return Datasource(
            key=key,
            uid="coldchain-prometheus",
            type="prometheus",
            name="coldchain VictoriaMetrics",
            url=url or (store.url if store else DEFAULT_URLS[key]),
            json_data={"httpMethod": "POST", "timeInterval": "30s"},
        )
    store = _store(cfg, "influxdb2")
    org = store.org if store else "coldchain"
    bucket = store.bucket if store else "coldchain"
    return Datasource(
        key=key,
        uid="coldchain-influxdb",
        type="influxdb",
        name="coldchain InfluxDB",
        url=url or (store.url if store else DEFAULT_URLS[key]),
        bucket=bucket,
        org=org,
        json_data={"version": "Flux", "organization": org, "defaultBucket": bucket},
    )


def datasources_file(sources: list[Datasource]) -> dict[str, Any]:
    """provisioning/datasources/coldchain.yaml."""
    return {"apiVersion": 1, "datasources": [s.provisioning() for s in sources]}


def dashboards_file(sources: list[Datasource], base_path: str) -> dict[str, Any]:
    """provisioning/dashboards/coldchain.yaml: one provider (and folder) per datasource."""
    providers = [
        {
            "name": f"coldchain-{s.key}",
            "orgId": 1,
            "folder": f"coldchain ({s.name.removeprefix('coldchain ')})",
            "folderUid": f"coldchain-{s.key}",
            "type": "file",
            "disableDeletion": False,
            "allowUiUpdates": False,
            "updateIntervalSeconds": 60,
            "options": {"path": f"{base_path.rstrip('/')}/{s.key}"},
        }
        for s in sources
    ]
    return {"apiVersion": 1, "providers": providers}
