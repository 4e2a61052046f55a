"""All notifiers of a site config, built at start-up (so a missing secret stops the hub
with the notifier and setting named, not at the first alarm)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alerts.notifiers.base import Notifier
from alerts.notifiers.cloud import CLOUD_TYPES, build
from alerts.notifiers.file import FileNotifier
from coldchain.config.notify import FileNotifier as FileSettings
from coldchain.config.notify import GsmModem
from coldchain.config.notify import Notifier as NotifierSettings
from coldchain.sms.gsm import GsmNotifier


def build_all(
    settings: list[NotifierSettings],
    *,
    base_dir: Path,
    status_callback: str | None = None,
    on_delivery: Callable[[str, str], None] | None = None,
    on_incoming: Callable[[str, str], None] | None = None,
) -> list[Notifier]:
    """Every configured notifier, in config order."""
    out: list[Notifier] = []
    for s in settings:
        if isinstance(s, FileSettings):
            out.append(FileNotifier(s, base_dir=base_dir))
        elif isinstance(s, GsmModem):
            out.append(
                GsmNotifier(s, on_delivery=on_delivery, on_incoming=on_incoming, base_dir=base_dir)
            )
        elif s.type in CLOUD_TYPES:
            out.append(build(s, base_dir=base_dir, status_callback=status_callback))
    return out
