"""The time-series store: one interface and two backend families.

* ``base``: the :class:`~coldchain.store.base.Store` interface every backend implements
  (idempotent writes keyed by series and timestamp, latest values, ranges, buckets, doors);
  ``doors``: door intervals from raw door readings, shared by both families.
* ``sqlite``: the embedded default, one SQLite file with rollups.
* ``lineproto``: InfluxDB line protocol written into VictoriaMetrics or InfluxDB 2, read back
  through VictoriaMetrics' Prometheus API or InfluxDB 2's Flux.

The hub's ingest writes through it; the API, web UI and reports read through it.
"""
