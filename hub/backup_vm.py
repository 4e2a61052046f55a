"""The VictoriaMetrics part of a backup (issue 17, part 3: ``vmbackup`` where the line-protocol
store is VictoriaMetrics). VictoriaMetrics' own tools do the copying: ``vmbackup`` takes an
instant snapshot through the running server (``/snapshot/create``) and copies it from its
``-storageDataPath`` (so it runs on the machine that holds the data), ``vmrestore`` puts it
back into a stopped server's data path. Around them, :mod:`hub.backup` keeps the same
promises as for the data dir: every file of the copy has its SHA-256 in the manifest, the
restore test restores it (``vmrestore`` into a scratch dir), and a restore refuses a copy
whose bytes differ. The files are stored as ``vmbackup`` wrote them (its parts are
compressed already).

Debian's ``victoria-metrics`` package ships both tools in ``/usr/bin``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIR = "victoria-metrics"
"""Where the copy lies inside a backup."""


class VictoriaError(Exception):
    """vmbackup or vmrestore failed, or is missing: says which and why."""


@dataclass(frozen=True, slots=True)
class VictoriaSource:
    """A running VictoriaMetrics: its URL (for the snapshot) and its ``-storageDataPath``."""

    url: str
    data: Path


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise VictoriaError(
            f"{name} not found: install Debian's victoria-metrics package (it ships {name})"
        )
    return path


def _run(args: list[str], what: str) -> None:
    try:
        done = subprocess.run(  # noqa: S603 - VictoriaMetrics' own tools, our paths
            args, capture_output=True, text=True, timeout=3600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VictoriaError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise VictoriaError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")


def back_up(source: VictoriaSource, target: Path) -> list[dict[str, Any]]:
    """Copy ``source`` into ``target/victoria-metrics`` with vmbackup; the manifest entries of
    the files it wrote (kind ``vmbackup``, stored as written)."""
    into = (target / DIR).resolve()
    into.mkdir(parents=True)
    _run(
        [
            _tool("vmbackup"),
            f"-storageDataPath={source.data.resolve()}",
            f"-snapshot.createURL={source.url.rstrip('/')}/snapshot/create",
            f"-dst=fs://{into}",
            "-loggerLevel=ERROR",
        ],
        f"vmbackup of {source.url}",
    )
    entries = []
    for path in sorted(p for p in into.rglob("*") if p.is_file()):
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        entries.append(
            {
                "path": path.relative_to(target.resolve()).as_posix(),
                "kind": "vmbackup",
                "stored": "plain",
                "bytes": path.stat().st_size,
                "sha256": digest,
                "packed_bytes": path.stat().st_size,
                "packed_sha256": digest,
            }
        )
    return entries


def restore(copy: Path, data: Path) -> None:
    """Put the copy at ``copy`` (a backup's ``victoria-metrics`` dir, checked) into ``data``,
    a stopped VictoriaMetrics' data path, empty or absent."""
    if data.exists() and any(data.iterdir()):
        raise VictoriaError(f"{data}: not empty: restore into a stopped server's empty data path")
    data.mkdir(parents=True, exist_ok=True)
    _run(
        [
            _tool("vmrestore"),
            f"-src=fs://{copy.resolve()}",
            f"-storageDataPath={data.resolve()}",
            "-loggerLevel=ERROR",
        ],
        f"vmrestore into {data}",
    )
