"""A notifier that writes each message as one JSON line to a file instead of sending it:
for the demo, a dry run, or commissioning rules before an SMS contract exists."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from coldchain.config.notify import FileNotifier as FileSettings
from coldchain.sms.types import Delivery, SendError, Sms


class FileNotifier:
    """Appends ``{"ts_ms", "to", "kind", "ref", "text"}`` lines, fsynced."""

    texts_phones = True

    def __init__(self, settings: FileSettings, *, base_dir: Path | None = None) -> None:
        self.id = settings.id
        path = Path(settings.path)
        self.path = path if path.is_absolute() or base_dir is None else base_dir / path

    async def send(self, sms: Sms) -> Delivery:
        line = json.dumps(
            {
                "ts_ms": time.time_ns() // 1_000_000,
                "to": sms.to,
                "kind": sms.kind,
                "ref": sms.ref,
                "text": sms.text,
            },
            ensure_ascii=False,
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise SendError(
                self.id, f"cannot write {self.path}: {exc.strerror}", retryable=True
            ) from exc
        return Delivery(self.id, "delivered", provider_ref=sms.ref)

    async def aclose(self) -> None:
        return None
