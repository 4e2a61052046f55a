"""A real PostgreSQL for the tests: a cluster of its own (``initdb``, ``pg_ctl`` from Debian's
``postgresql``) on a free port in a temporary directory, one per test process; each test gets
a database of its own in it. Never the system's server on 5432.

The cluster runs without fsync (a test's data need not survive the machine; a process killed
with -9 loses nothing either way, the kernel keeps what was written). ``initdb`` refuses to
run as root: when the tests run as root the cluster is made and run as the ``postgres`` user
(the package creates it), in a directory under /tmp that user owns. If the binaries are
missing the test FAILS and says how to install them.

``state`` is the parametrised fixture for the hub's state: the same test on a SQLite file and
on a PostgreSQL database (``tests/test_statedb.py`` and the suites that take it).

``hub_engine`` does the same for whole suites: a module with ``pytestmark =
pytest.mark.usefixtures("hub_engine")`` runs each test twice, and the hubs the test kits build
(:func:`tests.hubkit.running_hub_service`, :class:`tests.alertscen.Hubs`) keep their state in
``hub.db`` the first time and in a PostgreSQL database of the test's own the second
(:func:`engine_settings`, :func:`state_for`). The second runs are marked slow: ``make test``
runs both, ``make test-fast`` the default engine's.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldchain.config.site import PostgresStateSettings
from coldchain.statedb import PostgresTarget, StateTarget
from tests.services import free_port


def _bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        pytest.fail(
            "PostgreSQL's initdb not found under /usr/lib/postgresql/*/bin: the hub-state "
            "tests need a real PostgreSQL; install it with `apt-get install postgresql` "
            "(or `make services`)"
        )
    return Path(found[-1]).parent


class PostgresCluster:
    """One cluster, started on a free port; :meth:`database` makes a fresh database."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="coldchain-pg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._names = itertools.count(1)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "coldchain", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / tool), *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"{tool} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w",
                  "-t", "30", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://coldchain@127.0.0.1:{self.port}/{db}"

    def database(self) -> PostgresTarget:
        """A new, empty database."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return PostgresTarget(self.url(name))

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def postgres(postgres_cluster: PostgresCluster) -> PostgresTarget:
    """A fresh PostgreSQL database for the hub's state."""
    return postgres_cluster.database()


@pytest.fixture(params=["sqlite", "postgres"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> StateTarget:
    """The hub's state, on each engine in turn: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "hub.db"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.database()


_ENGINE: dict[str, PostgresTarget] = {}  # "target": the running test's database, if any


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def hub_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """The engine of the hubs the test kits build in this test (see the module docstring)."""
    if request.param == "postgres":
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        _ENGINE["target"] = cluster.database()
    try:
        yield str(request.param)
    finally:
        _ENGINE.clear()


def engine_settings() -> PostgresStateSettings | None:
    """``hub.state`` for a hub built now: the test's PostgreSQL database under ``hub_engine``
    on postgres, else None (the config's own, hub.db by default)."""
    target = _ENGINE.get("target")
    return None if target is None else PostgresStateSettings(type="postgres", url=target.conninfo)


def state_for(data_dir: Path) -> StateTarget:
    """The hub state of a hub on ``data_dir`` built now (see :func:`engine_settings`)."""
    return _ENGINE.get("target") or data_dir / "hub.db"


def wait_ready(cluster: PostgresCluster, timeout: float = 10.0) -> None:
    """Until the cluster accepts connections (after a restart)."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(cluster.url(), connect_timeout=1).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
