"""The hub process: composes ingest and the gateway registry (``gateway``), the time-series
store, the REST API and the audit trail (and, as they land, alerts and the web UI).

With :mod:`coldchain.cli` and :mod:`hub.demo` this is the composition root: the only
part of ``coldchain`` that imports the other top-level packages (see tests/test_imports.py).
"""
