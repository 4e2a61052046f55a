"""Dashboards: the operators' web UI (``web``: router factory, templates, static files, the
live board), reports (``reports``: daily log, excursions, mean kinetic temperature; HTML, CSV,
PDF; and their router factory), and Grafana dashboards as code (``grafana``: grafanalib, with
provisioning files; ``cli`` is ``coldchain dashboards``). Login and roles are the hub's: the
routers here are given the role guard.
"""
