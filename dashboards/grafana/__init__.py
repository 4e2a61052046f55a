"""Grafana dashboards as code (grafanalib), generated from the site config.

``build`` turns a site config into an overview (every room's temperature against its
limits), one dashboard per site (a row per room: temperature, humidity, doors) and fleet
health (the hub's ``/metrics``), for a Prometheus / VictoriaMetrics and an InfluxDB 2 (Flux)
datasource, plus Grafana provisioning files. See docs/grafana.md.
"""
