"""Dashboards: the operators' web UI (FastAPI routers, templates, static files), Grafana
dashboards as code (grafanalib) with provisioning files, and reports (daily log, excursions,
mean kinetic temperature).
"""
