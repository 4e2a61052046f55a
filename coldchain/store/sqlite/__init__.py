"""The embedded default store: one SQLite file (WAL) with 1-minute and 1-hour rollups.

``store`` is the :class:`~coldchain.store.sqlite.store.SqliteStore` the hub opens;
``blocking`` its writer and reader (each on its own thread); ``schema`` the tables and
connections; ``rollup`` how rollups are kept and read.
"""
