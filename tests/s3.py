"""An S3 service for the tests of the backups' copies (hub/backup_s3.py): moto's server in its
own process on a free port, as an S3-compatible bucket stands in for a cloud one that cannot
be reached here. It checks requests as the real service does: after the three calls that
make the IAM user, its access key and its policy, every request must carry a valid SigV4
signature from a key it issued (a wrong secret is ``SignatureDoesNotMatch``, an unknown key
``InvalidAccessKeyId``) and be allowed by that user's policy.

``s3_service`` (or :func:`running_s3`, for a benchmark) yields an :class:`S3Service`:
``.endpoint``, ``.bucket`` (made), ``.keys`` (access key id, secret), ``.env()`` (the AWS_*
environment for a command) and ``.client()``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.services import free_port, port_open

SERVER = Path(sys.executable).with_name("moto_server")
BUCKET = "coldchain-backups"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


@dataclass(frozen=True)
class S3Service:
    endpoint: str
    bucket: str
    keys: tuple[str, str]

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.keys[0],
            "AWS_SECRET_ACCESS_KEY": self.keys[1],
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self, secret: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.keys[0],
            aws_secret_access_key=secret or self.keys[1],
        )

    def objects(self) -> dict[str, bytes]:
        c = self.client()
        listed = c.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return {
            o["Key"]: c.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read() for o in listed
        }


@contextmanager
def running_s3(where: Path) -> Iterator[S3Service]:
    """moto's S3 server on a free port (its log in ``where/moto.log``), its IAM user, key
    and policy made, the bucket made; stopped on the way out."""
    if not SERVER.exists():
        raise RuntimeError(f"{SERVER} is missing: install the dev extra (moto[server])")
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}  # the IAM set-up below
    with (where / "moto.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(SERVER), "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start: {(where / 'moto.log').read_text()}")
            time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="set-up",
            aws_secret_access_key="set-up",
        )
        iam.create_user(UserName="coldchain-backup")
        key = iam.create_access_key(UserName="coldchain-backup")["AccessKey"]
        iam.put_user_policy(
            UserName="coldchain-backup", PolicyName="s3", PolicyDocument=json.dumps(POLICY)
        )
        service = S3Service(endpoint, BUCKET, (key["AccessKeyId"], key["SecretAccessKey"]))
        service.client().create_bucket(Bucket=BUCKET)
        yield service
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_service(tmp_path: Path) -> Iterator[S3Service]:
    try:
        with running_s3(tmp_path) as service:
            yield service
    except RuntimeError as exc:
        pytest.fail(str(exc))
