"""The notifier registry: one builder per notifier kind, and building all the notifiers of a
site config at start-up (so a missing secret stops the hub with the notifier and setting
named, not at the first alarm).

The kinds are those of the config's union (:data:`coldchain.config.notify.NOTIFIER_KINDS`);
:data:`BUILDERS` must have exactly those keys, which is checked when this module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alerts.notifiers import cloud
from alerts.notifiers.base import BuildContext, Notifier
from alerts.notifiers.file import FileNotifier
from coldchain.config.notify import NOTIFIER_KINDS, GsmModem
from coldchain.config.notify import FileNotifier as FileSettings
from coldchain.config.notify import Notifier as NotifierSettings
from coldchain.sms.gsm import GsmNotifier


def _gsm(s: GsmModem, ctx: BuildContext) -> Notifier:
    return GsmNotifier(
        s, on_delivery=ctx.on_delivery, on_incoming=ctx.on_incoming, base_dir=ctx.base_dir
    )


def _file(s: FileSettings, ctx: BuildContext) -> Notifier:
    return FileNotifier(s, base_dir=ctx.base_dir)


Builder = Callable[[Any, BuildContext], Notifier]
"""Builds the notifier of one kind from its settings (the class of that kind)."""

BUILDERS: dict[str, Builder] = {**cloud.BUILDERS, "gsm": _gsm, "file": _file}
"""Every notifier kind -> its builder: the cloud ones (:data:`alerts.notifiers.cloud.BUILDERS`),
the GSM modem and the file."""
if set(BUILDERS) != set(NOTIFIER_KINDS):  # pragma: no cover - a kind added in one place only
    raise RuntimeError(
        f"notifier kinds without a builder: {sorted(set(NOTIFIER_KINDS) - set(BUILDERS))}; "
        f"builders without a kind: {sorted(set(BUILDERS) - set(NOTIFIER_KINDS))}"
    )


def build_all(
    settings: list[NotifierSettings],
    *,
    base_dir: Path,
    status_callback: str | None = None,
    on_delivery: Callable[[str, str], None] | None = None,
    on_incoming: Callable[[str, str], None] | None = None,
) -> list[Notifier]:
    """Every configured notifier, in config order."""
    ctx = BuildContext(base_dir, None, status_callback, on_delivery, on_incoming)
    return [BUILDERS[s.type](s, ctx) for s in settings]
