"""The time-series store: one interface (``base``), two backends — embedded SQLite
(``sqlite``, the default) and InfluxDB line protocol into InfluxDB 2/3 or VictoriaMetrics
(``influx``). The hub's ingest writes through it; the API, web UI and reports read through it.
"""
