"""Secrets named in the config, never written in it: ``env:NAME`` or ``file:/path``.

The config holds only where a secret lives; :func:`resolve` reads it when a notifier or a
client is built. The value is a :class:`pydantic.SecretStr`, so it prints as ``**********``
in logs, reprs and error messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr

SecretRef = Annotated[
    str,
    Field(
        pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$",
        description="where a secret lives: env:VARIABLE or file:/path/to/file (never the value)",
        examples=["env:ALIYUN_ACCESS_KEY_SECRET", "file:/etc/coldchain/twilio-token"],
    ),
]


class SecretError(Exception):
    """A secret that cannot be read; the message names where it was looked for."""


def resolve(ref: str, *, base_dir: Path | None = None) -> SecretStr:
    """The secret ``ref`` points at (surrounding whitespace stripped)."""
    scheme, _, where = ref.partition(":")
    if scheme == "env":
        value = os.environ.get(where)
        if value is None:
            raise SecretError(f"environment variable {where} is not set (secret {ref})")
        return SecretStr(value.strip())
    if scheme == "file":
        path = Path(where)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            return SecretStr(path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
    raise SecretError(f"{ref!r} is not a secret reference; write env:NAME or file:/path")
