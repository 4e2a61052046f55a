"""Backups copied to an S3-compatible object store: AWS S3, or the same API at Aliyun OSS,
Tencent COS, Huawei OBS, MinIO or Ceph's RADOS gateway (``endpoint``), so a fire in the
centre does not take the records and their only copy together.

A backup is made and restore-tested on the centre's disk first (:mod:`hub.backup`); then
every file of its directory goes to ``s3://BUCKET/PREFIX/coldchain-backup-…/`` under the same
relative path, ``manifest.sha256`` last: a copy without it is incomplete (an upload that
broke off) and is neither listed as a backup nor restored. Each object's size is checked
once it is up; :func:`prove` then downloads the copy into a scratch dir and runs the restore
test on it against the manifest's digest kept from when it was made, so what is proven is
what the bucket holds, not what was sent.

Credentials: ``access_key_id`` and ``secret_access_key`` (``env:``/``file:`` references in
the config, :mod:`coldchain.secrets`), or, without them, boto3's own chain (the
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` environment, ``~/.aws/credentials``).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coldchain.statedb import PostgresTarget
from hub.backup import MANIFEST_DIGEST, PREFIX, BackupError, Checked, Progress, check

URL = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>[^?#]*))?")


class S3Error(BackupError):
    """The object store refused or could not be reached: says which bucket and why."""


@dataclass(frozen=True, slots=True)
class S3Target:
    """Where copies go: a bucket, a prefix in it (no leading or trailing ``/``), the
    service's endpoint (None: AWS) and region, and the keys (None: boto3's chain)."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @classmethod
    def parse(cls, url: str, **kwargs: Any) -> S3Target:
        """``s3://BUCKET[/PREFIX]`` (ValueError when it is not one)."""
        m = URL.fullmatch(url)
        if m is None:
            raise ValueError(f"{url!r}: not s3://BUCKET/PREFIX (a bucket name is 3-63 a-z0-9.-)")
        return cls(m["bucket"], (m["prefix"] or "").strip("/"), **kwargs)

    def url(self, name: str = "") -> str:
        return "s3://" + "/".join(p for p in (self.bucket, self.prefix, name) if p)

    def key(self, name: str, rel: str = "") -> str:
        return "/".join(p for p in (self.prefix, name, rel) if p)

    def client(self) -> Any:
        import boto3  # the hub's extra; imported when a copy is made

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region or "us-east-1",
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )


def _failed(target: S3Target, what: str, exc: Exception) -> S3Error:
    """An S3Error naming the bucket, the step and the service's own code and message."""
    from botocore.exceptions import ClientError

    if isinstance(exc.__cause__, ClientError):  # boto3's upload/download error wraps it
        exc = exc.__cause__
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        why = f"{err.get('Code', '?')}: {err.get('Message', '')}".strip()
    else:
        why = str(exc)
    return S3Error(f"{target.url()}: {what}: {why}")


def _errors() -> tuple[type[Exception], ...]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (Boto3Error, BotoCoreError, ClientError)


def _files(backup: Path) -> Iterator[tuple[Path, str]]:
    """Every file of a backup's directory and its path relative to it, the manifest's
    digest last."""
    found = sorted(p for p in backup.rglob("*") if p.is_file())
    for p in sorted(found, key=lambda p: p.relative_to(backup).as_posix() == MANIFEST_DIGEST):
        yield p, p.relative_to(backup).as_posix()


def upload(backup: Path, target: S3Target, *, progress: Progress | None = None) -> str:
    """Copy the backup directory ``backup`` to ``target``; its URL there. Each object's size
    is checked as it lands; the manifest's digest goes last (see the module doc)."""
    client, name = target.client(), backup.name
    try:
        for path, rel in _files(backup):
            key = target.key(name, rel)
            client.upload_file(str(path), target.bucket, key)
            size, sent = (
                client.head_object(Bucket=target.bucket, Key=key)["ContentLength"],
                path.stat().st_size,
            )
            if size != sent:
                raise S3Error(f"{target.url(name)}/{rel}: {size} bytes there, not {sent}")
            if progress is not None:
                progress(sent, rel)
    except _errors() as exc:
        raise _failed(target, f"copying {name}", exc) from exc
    return target.url(name)


def _keys(client: Any, target: S3Target, name: str) -> list[tuple[str, int]]:
    """Every object of the copy ``name``: (key, size)."""
    out = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=target.bucket, Prefix=target.key(name) + "/"):
        out += [(o["Key"], o["Size"]) for o in page.get("Contents", ())]
    return out


def names(target: S3Target) -> list[str]:
    """The complete copies under ``target``'s prefix (those with their manifest's digest),
    oldest first (the names sort by time)."""
    client = target.client()
    base = target.key("") + "/" if target.prefix else ""
    found: list[str] = []
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=target.bucket, Prefix=base, Delimiter="/"):
            for p in page.get("CommonPrefixes", ()):
                name = p["Prefix"][len(base) :].rstrip("/")
                if name.startswith(PREFIX):
                    found.append(name)
        complete = []
        for name in sorted(found):
            try:
                client.head_object(Bucket=target.bucket, Key=target.key(name, MANIFEST_DIGEST))
            except _errors():
                continue  # an upload that broke off: not a backup
            complete.append(name)
    except _errors() as exc:
        raise _failed(target, "listing the backups", exc) from exc
    return complete


def download(target: S3Target, name: str, into: Path) -> Path:
    """The copy ``name`` downloaded into the new directory ``into/name``; refused when it is
    not complete."""
    client = target.client()
    where = into / name
    try:
        keys = _keys(client, target, name)
        base = target.key(name) + "/"
        if target.key(name, MANIFEST_DIGEST) not in {k for k, _ in keys}:
            raise S3Error(f"{target.url(name)}: no complete backup there (no {MANIFEST_DIGEST})")
        for key, _ in keys:
            rel = key[len(base) :]
            path = (where / rel).resolve()
            if not path.is_relative_to(where.resolve()):  # a key with .. in it
                raise S3Error(f"{target.url(name)}: object {key!r} points outside the backup")
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            client.download_file(target.bucket, key, str(path))
    except _errors() as exc:
        raise _failed(target, f"fetching {name}", exc) from exc
    return where


def prove(
    target: S3Target, name: str, *, expect: str | None, state: PostgresTarget | None = None
) -> Checked:
    """The restore test of the copy in the bucket: downloaded into a scratch dir, then
    :func:`hub.backup.check` against ``expect`` (the manifest's digest kept when it was
    made); the scratch dir is thrown away."""
    with tempfile.TemporaryDirectory(prefix="coldchain-s3-check-") as scratch:
        try:
            copy = download(target, name, Path(scratch))
        except S3Error as exc:
            result = Checked()
            result.problems.append(str(exc))
            return result
        return check(copy, expect=expect, state=state)


def delete(target: S3Target, name: str) -> int:
    """Delete the copy ``name``, its manifest's digest first (so a copy half deleted is
    never taken for a backup); the objects deleted."""
    client = target.client()
    try:
        keys = [k for k, _ in _keys(client, target, name)]
        keys.sort(key=lambda k: not k.endswith("/" + MANIFEST_DIGEST))
        for i in range(0, len(keys), 1000):
            objects = [{"Key": k} for k in keys[i : i + 1000]]
            client.delete_objects(Bucket=target.bucket, Delete={"Objects": objects, "Quiet": True})
    except _errors() as exc:
        raise _failed(target, f"deleting {name}", exc) from exc
    return len(keys)


def fetch(url: str, into: Path, **kwargs: Any) -> Path:
    """``s3://BUCKET/PREFIX/coldchain-backup-…`` downloaded into ``into`` (a restore)."""
    target = S3Target.parse(url, **kwargs)
    prefix, _, name = target.prefix.rpartition("/")
    if not name.startswith(PREFIX):
        raise S3Error(f"{url}: name a backup: s3://BUCKET/PREFIX/{PREFIX}YYYYMMDDTHHMMSSZ")
    return download(replace(target, prefix=prefix), name, into)


def scratch_copy(url: str, **kwargs: Any) -> tuple[Path, Path]:
    """A backup in the bucket downloaded into a new scratch dir: (the backup's directory, the
    scratch dir, which the caller removes)."""
    scratch = Path(tempfile.mkdtemp(prefix="coldchain-s3-restore-"))
    try:
        return fetch(url, scratch, **kwargs), scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
