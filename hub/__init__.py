"""The centre's process, and the composition root that nothing imports: it builds ingest and
the gateway registry (``gateway``), the time-series store, the alert service (``alerts``),
the web UI and reports (``dashboards``) into one FastAPI app with the REST API and
``/metrics`` (:mod:`hub.service`, :mod:`hub.api`); users, sessions, CSRF checks and the one
role check every router is built with (:mod:`hub.auth`, :mod:`hub.accounts`); the audit
trail; the ``coldchain hub``, ``coldchain users`` and ``coldchain demo`` commands.
"""
