"""Backups of the hub's data dir that are proven: made online, with their own digests, and
restored into a scratch dir and checked before they are called good.

A backup is a directory ``coldchain-backup-YYYYMMDDTHHMMSSZ`` holding

* each SQLite database of the data dir (``*.db``: ``hub.db``, the store's ``store.db``),
  copied with SQLite's online backup API (a consistent snapshot while the hub writes), then
  gzip-compressed;
* every other file of the data dir (passwords, keys), compressed as it is; a database's
  ``-wal`` and ``-shm`` are not files to keep (the snapshot has their pages);
* ``manifest.json``: per file its path, kind, size before and after compression and the
  SHA-256 of both; when it was made and by which coldchain;
* ``manifest.sha256``: the manifest's own digest, which :func:`make` also returns for the
  operator to keep elsewhere: a backup whose manifest was rewritten to match changed files
  is caught only against a digest kept outside it.

:func:`check` proves a backup: every digest, then a restore into a scratch dir, SQLite's
``integrity_check`` on each database, the audit trail's chain (:mod:`hub.records`) and a
store's sealed readings (:mod:`coldchain.store.sqlite.seal`).
:func:`restore` puts a backup into an empty data dir, checking the same on the way.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldchain import __version__
from coldchain.statedb import PostgresTarget
from hub import backup_pg, backup_vm

PREFIX = "coldchain-backup-"  # a backup's directory: PREFIX + YYYYMMDDTHHMMSSZ (UTC)
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal")
CHUNK = 1 << 20
PAGES_PER_STEP = 4096  # SQLite's backup copies this many pages between progress reports

Progress = Callable[[int, str], None]  # bytes done since the last call, what is going on


class BackupError(Exception):
    """A backup that cannot be made, read or restored: says which file and why."""


@dataclass(slots=True)
class Checked:
    """What :func:`check` found: the files whose bytes or contents differ, and what the
    restore test said of each database."""

    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # parts a restore left out, and why

    @property
    def good(self) -> bool:
        return not self.problems


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def files(data_dir: Path) -> Iterator[Path]:
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and not path.name.endswith(SKIPPED_SUFFIXES):
            yield path


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def _snapshot(db: Path, into: Path, progress: Progress | None) -> None:
    """A consistent copy of database ``db`` while others write to it (SQLite's backup API)."""
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dst = sqlite3.connect(into)
    try:
        (page_size,) = src.execute("PRAGMA page_size").fetchone()
        done = [0]

        def step(status: int, remaining: int, total: int) -> None:
            del status
            if progress is not None:
                progress((total - remaining - done[0]) * page_size, db.name)
            done[0] = total - remaining

        src.backup(dst, pages=PAGES_PER_STEP, progress=step)
        dst.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
    finally:
        dst.close()
        src.close()


def _compress(source: Path, target: Path, progress: Progress | None, what: str) -> str:
    """gzip ``source`` into ``target``; the SHA-256 of ``source``'s bytes."""
    h = hashlib.sha256()
    with source.open("rb") as f, gzip.open(target, "wb", compresslevel=6) as out:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
            if progress is not None:
                progress(len(chunk), what)
    return h.hexdigest()


def make(
    data_dir: Path,
    to: Path,
    *,
    progress: Progress | None = None,
    victoria: backup_vm.VictoriaSource | None = None,
    state: PostgresTarget | None = None,
) -> tuple[Path, str]:
    """Back up ``data_dir`` into a new directory under ``to``, with ``victoria`` that
    VictoriaMetrics too (:mod:`hub.backup_vm`), with ``state`` the hub's state on PostgreSQL
    (:mod:`hub.backup_pg`); (that directory, the SHA-256 of its manifest)."""
    if not data_dir.is_dir():
        raise BackupError(f"{data_dir}: not a directory: give the hub's data dir")
    if to.resolve().is_relative_to(data_dir.resolve()):
        raise BackupError(f"{to}: inside the data dir: each backup would hold the ones before")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = to / f"{PREFIX}{stamp}"
    try:
        target.mkdir(parents=True, mode=0o700)  # passwords and keys are in it
    except FileExistsError:
        raise BackupError(f"{target}: exists already (one backup a second)") from None
    try:
        digest = _write(data_dir, target, to, progress, victoria=victoria, state=state)
    except (backup_vm.VictoriaError, backup_pg.PostgresBackupError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise BackupError(str(exc)) from exc
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # no half backup left to be mistaken
        raise
    return target, digest


def _write(
    data_dir: Path,
    target: Path,
    to: Path,
    progress: Progress | None,
    *,
    victoria: backup_vm.VictoriaSource | None,
    state: PostgresTarget | None,
) -> str:
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=to, prefix=".snapshot-") as scratch:
        for path in files(data_dir):
            rel = path.relative_to(data_dir).as_posix()
            source, kind = path, "file"
            if path.suffix == ".db" and _is_sqlite(path):
                kind = "sqlite"
                source = Path(scratch) / path.name
                _snapshot(path, source, progress)
            packed = target / (rel + ".gz")
            packed.parent.mkdir(parents=True, exist_ok=True)
            content = _compress(source, packed, progress, rel)
            entries.append(
                {
                    "path": rel,
                    "kind": kind,
                    "bytes": source.stat().st_size,
                    "sha256": content,
                    "packed_bytes": packed.stat().st_size,
                    "packed_sha256": _sha256(packed),
                }
            )
            if source != path:
                source.unlink()
    if victoria is not None:
        entries += backup_vm.back_up(victoria, target)
    if state is not None:
        entries.append(backup_pg.dump(state, target))
    manifest = {
        "format": 1,
        "made_ms": time.time_ns() // 1_000_000,
        "coldchain": __version__,
        "data_dir": str(data_dir.resolve()),
        "files": entries,
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
    (target / MANIFEST).write_bytes(text)
    digest = hashlib.sha256(text).hexdigest()
    (target / MANIFEST_DIGEST).write_text(f"{digest}  {MANIFEST}\n")
    return digest


def _manifest(backup: Path, expect: str | None) -> dict[str, Any]:
    try:
        text = (backup / MANIFEST).read_bytes()
        kept = (backup / MANIFEST_DIGEST).read_text().split()[0]
    except (OSError, IndexError) as exc:
        raise BackupError(f"{backup}: not a coldchain backup: {exc}") from exc
    digest = hashlib.sha256(text).hexdigest()
    if digest != kept:
        raise BackupError(f"{backup / MANIFEST}: its SHA-256 is not the one beside it: changed")
    if expect is not None and digest != expect.lower():
        raise BackupError(f"{backup / MANIFEST}: its SHA-256 is not the one kept: {expect}")
    try:
        manifest: dict[str, Any] = json.loads(text)
        files = manifest["files"]
        assert isinstance(files, list)
    except (ValueError, KeyError, AssertionError) as exc:
        raise BackupError(f"{backup / MANIFEST}: unreadable: {exc}") from exc
    return manifest


def _unpack(backup: Path, manifest: dict[str, Any], into: Path, problems: list[str]) -> int:
    """Decompress every file of ``manifest`` into ``into``, checking both digests; the bytes
    restored. A file that differs is named in ``problems`` and left out."""
    total = 0
    for entry in manifest["files"]:
        rel = str(entry["path"])
        plain = entry.get("stored") == "plain"  # vmbackup's files, kept as written
        packed = backup / (rel if plain else rel + ".gz")
        name = packed.relative_to(backup).as_posix()
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            problems.append(f"{rel}: a path outside the data dir")
            continue
        if not packed.is_file():
            problems.append(f"{name}: missing")
            continue
        if _sha256(packed) != entry["packed_sha256"]:
            problems.append(f"{name}: its bytes differ from the manifest's digest: damaged")
            continue
        out = into / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if plain:
            shutil.copyfile(packed, out)
            total += out.stat().st_size
            continue
        h = hashlib.sha256()
        try:
            with gzip.open(packed, "rb") as f, out.open("wb") as w:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    w.write(chunk)
        except (OSError, EOFError) as exc:
            problems.append(f"{rel}.gz: cannot be decompressed: {exc}")
            continue
        if h.hexdigest() != entry["sha256"]:
            problems.append(f"{rel}: its content differs from the manifest's digest")
            continue
        os.chmod(out, 0o600)
        total += out.stat().st_size
    return total


def _prove(
    into: Path,
    manifest: dict[str, Any],
    problems: list[str],
    skipped: list[str],
    state: PostgresTarget | None,
) -> None:
    """SQLite's integrity check on each database restored, the audit chain of hub.db and
    the sealed readings of a store; a dump of the hub's state on PostgreSQL restored into a
    scratch database on ``state``'s server and its audit chain verified (left out, and said
    in ``skipped``, without ``state``)."""
    from coldchain.store.sqlite.verify import verify_readings
    from hub.records import verify_audit

    found, left_out = _prove_dump(into, manifest, state)
    problems += found
    skipped += left_out

    if any(e.get("kind") == "vmbackup" for e in manifest["files"]):  # it restores, or says why
        try:
            backup_vm.restore(into / backup_vm.DIR, into / ".vmrestore-test")
        except backup_vm.VictoriaError as exc:
            problems.append(f"{backup_vm.DIR}: {exc}")
        finally:
            shutil.rmtree(into / ".vmrestore-test", ignore_errors=True)

    for entry in manifest["files"]:
        path = into / str(entry["path"])
        if entry.get("kind") != "sqlite" or not path.is_file():
            continue
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = [row[0] for row in db.execute("PRAGMA integrity_check")]
            if verdict != ["ok"]:
                problems.append(f"{entry['path']}: integrity check: {'; '.join(verdict[:3])}")
            if path.name == "hub.db":
                problems += [f"hub.db: {f}" for f in verify_audit(db).findings]
            else:  # a store: its sealed readings (nothing to do in a store without seals)
                db.isolation_level = None
                check = verify_readings(db)
                problems += [f"{entry['path']}: {w}: {what}" for w, what in check.findings]
        except sqlite3.DatabaseError as exc:
            problems.append(f"{entry['path']}: not a database: {exc}")
        finally:
            db.close()


def _prove_dump(
    into: Path, manifest: dict[str, Any], state: PostgresTarget | None
) -> tuple[list[str], list[str]]:
    """The restore test of a dump of the hub's state on PostgreSQL (see :func:`_prove`):
    what differs, what was left out."""
    dumped = into / backup_pg.FILE
    if not any(e.get("kind") == "pgdump" for e in manifest["files"]) or not dumped.is_file():
        return [], []
    if state is None:
        return [], [f"{backup_pg.FILE}: not restore-tested (give the PostgreSQL server: --state)"]
    return backup_pg.prove(dumped, state), []


def check(
    backup: Path, *, expect: str | None = None, state: PostgresTarget | None = None
) -> Checked:
    """The restore test: every digest of ``backup``, then a restore into a scratch dir that
    is thrown away, SQLite's integrity check and the audit chain. ``expect``: the manifest's
    SHA-256 as kept elsewhere; ``state``: the PostgreSQL server a dump of the hub's state is
    test-restored on (a scratch database, dropped after)."""
    result = Checked()
    try:
        manifest = _manifest(backup, expect)
    except BackupError as exc:
        result.problems.append(str(exc))
        return result
    with tempfile.TemporaryDirectory(prefix="coldchain-restore-test-") as scratch:
        result.bytes = _unpack(backup, manifest, Path(scratch), result.problems)
        _prove(Path(scratch), manifest, result.problems, result.skipped, state)
    result.files = len(manifest["files"])
    return result


def extract(backup: Path, into: Path) -> Checked:
    """Decompress ``backup`` into the scratch dir ``into``, every digest checked but nothing
    else proven (``records verify --against`` checks the sealed hours it uses itself): a
    backup whose store no longer matches some seals can still speak for the others."""
    result = Checked()
    try:
        manifest = _manifest(backup, None)
    except BackupError as exc:
        result.problems.append(str(exc))
        return result
    into.mkdir(parents=True, exist_ok=True)
    result.bytes = _unpack(backup, manifest, into, result.problems)
    result.files = len(manifest["files"])
    return result


def restore(
    backup: Path,
    into: Path,
    *,
    expect: str | None = None,
    victoria_data: Path | None = None,
    state: PostgresTarget | None = None,
) -> Checked:
    """Restore ``backup`` into ``into``, which must be empty or absent; nothing is left there
    if any file differs or fails its check. A VictoriaMetrics copy in the backup goes into
    ``victoria_data`` (a stopped server's empty data path) first, a dump of the hub's state
    into the empty PostgreSQL database ``state``; without them, they are left out and
    ``skipped`` says so."""
    if into.exists() and any(into.iterdir()):
        raise BackupError(f"{into}: not empty: restore into an empty data dir")
    manifest = _manifest(backup, expect)
    result = Checked(files=len(manifest["files"]))
    into.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=into.parent))
    try:
        result.bytes = _unpack(backup, manifest, staging, result.problems)
        _prove(staging, manifest, result.problems, result.skipped, state)
        if result.problems:
            return result
        dumped = staging / backup_pg.FILE
        if dumped.is_file():
            if state is not None:
                try:
                    backup_pg.restore(dumped, state)
                except backup_pg.PostgresBackupError as exc:
                    result.problems.append(f"{backup_pg.FILE}: {exc}")
                    return result
            else:
                result.skipped.append(
                    f"{backup_pg.FILE}: not restored (give the empty PostgreSQL database: "
                    "--state URL)"
                )
            dumped.unlink()
        copy = staging / backup_vm.DIR
        if copy.is_dir():
            if victoria_data is None:
                result.skipped.append(
                    f"{backup_vm.DIR}: not restored (give the server's data path to restore it)"
                )
            else:
                try:
                    backup_vm.restore(copy, victoria_data)
                except backup_vm.VictoriaError as exc:
                    result.problems.append(f"{backup_vm.DIR}: {exc}")
                    return result
            shutil.rmtree(copy)
        into.mkdir(parents=True, exist_ok=True, mode=0o700)
        for item in staging.iterdir():
            item.rename(into / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result
