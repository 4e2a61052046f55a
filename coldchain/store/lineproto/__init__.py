"""The line-protocol store family: readings written as InfluxDB line protocol.

``store`` is the :class:`~coldchain.store.lineproto.store.InfluxStore` the hub opens (writes
through influxdb-client); ``lines`` the line format and how fields read back; ``dedupe``
first-copy-wins for engines that keep the last copy. Two readers: ``victoria`` with
``promql`` (VictoriaMetrics' Prometheus-compatible API) and ``influxdb2`` with ``flux``
(InfluxDB 2).
"""
