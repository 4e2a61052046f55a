"""The PostgreSQL part of a backup: the hub's state when ``hub.state`` is on PostgreSQL
(:mod:`coldchain.statedb`). PostgreSQL's own tools do the copying: ``pg_dump`` writes one
consistent snapshot of the database while the hubs keep writing (its custom format,
compressed), ``pg_restore`` puts it into an empty database. Around them, :mod:`hub.backup`
keeps the same promises as for the data dir: the dump's SHA-256 is in the manifest; the
restore test restores it into a scratch database on the same server (made and dropped here,
so the role needs CREATEDB) and verifies the audit trail's chain there; a restore refuses a
dump whose bytes differ, and a database that is not empty.

The tools come with Debian's ``postgresql-client`` (and ``postgresql``); the newest installed
major version is used, so it is not older than the server.
"""

from __future__ import annotations

import glob
import hashlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from coldchain.statedb import PostgresTarget, StateConn, StateError

FILE = "hub-state.pgdump"
"""Where the dump lies inside a backup."""


class PostgresBackupError(Exception):
    """pg_dump or pg_restore failed, is missing, or the database is not one to restore into."""


def _tool(name: str) -> str:
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4])
    )
    path = found[-1] if found else shutil.which(name)
    if path is None:
        raise PostgresBackupError(
            f"{name} not found: install Debian's postgresql-client package (it ships {name})"
        )
    return path


def _run(target: PostgresTarget, args: list[str], what: str) -> None:
    env = dict(os.environ)
    if target.password is not None:
        env["PGPASSWORD"] = target.password
    try:
        done = subprocess.run(  # noqa: S603 - PostgreSQL's own tools, our arguments
            args, capture_output=True, text=True, timeout=3600, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresBackupError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PostgresBackupError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def dump(source: PostgresTarget, target: Path) -> dict[str, Any]:
    """``pg_dump`` of ``source`` into the backup dir ``target``: its manifest entry (stored
    as written: the custom format compresses already)."""
    out = target / FILE
    _run(
        source,
        [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={out}", source.conninfo],
        "pg_dump of the hub's state",
    )
    digest, size = _sha256(out), out.stat().st_size
    return {
        "path": FILE,
        "kind": "pgdump",
        "stored": "plain",
        "bytes": size,
        "sha256": digest,
        "packed_bytes": size,
        "packed_sha256": digest,
    }


def _with_database(conninfo: str, name: str) -> str:
    parts = urlsplit(conninfo)
    return urlunsplit(parts._replace(path="/" + name))


def restore(dump_file: Path, into: PostgresTarget) -> None:
    """``pg_restore`` ``dump_file`` into the database ``into``, which must hold no table."""
    try:
        conn = StateConn(into)
    except StateError as exc:
        raise PostgresBackupError(str(exc)) from exc
    try:
        tables = conn.tables()
    finally:
        conn.close()
    if tables:
        raise PostgresBackupError(
            f"{into.conninfo}: not empty ({len(tables)} tables): restore into an empty database"
        )
    _run(
        into,
        [
            _tool("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={into.conninfo}",
            str(dump_file),
        ],
        "pg_restore of the hub's state",
    )


def prove(dump_file: Path, server: PostgresTarget) -> list[str]:
    """The restore test: ``dump_file`` restored into a scratch database made on ``server``
    (and dropped after), its audit chain verified; what differs (empty: good)."""
    from hub.records import verify_audit

    name = f"coldchain_restore_test_{secrets.token_hex(4)}"
    admin = StateConn(server)
    try:
        admin.execute(f"CREATE DATABASE {name}")
    except admin.Error as exc:
        admin.close()
        return [f"{FILE}: no scratch database to test the restore in: {exc}".strip()]
    scratch = PostgresTarget(_with_database(server.conninfo, name), server.password)
    try:
        restore(dump_file, scratch)
        conn = StateConn(scratch)
        try:
            return [f"{FILE}: {f}" for f in verify_audit(conn).findings]
        finally:
            conn.close()
    except PostgresBackupError as exc:
        return [f"{FILE}: {exc}"]
    finally:
        try:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            admin.close()
