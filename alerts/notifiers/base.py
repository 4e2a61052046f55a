"""What every notifier offers the dispatcher, and what building one from its settings may
use (:class:`BuildContext`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from coldchain.secrets import SecretError, resolve
from coldchain.sms.types import Delivery, Sms

if TYPE_CHECKING:
    import httpx


class Notifier(Protocol):
    """Sends one message; raises :class:`~coldchain.sms.types.SendError` on failure.

    ``texts_phones`` is True for SMS (the message's ``to`` is a phone number) and False for
    a group robot or a webhook (``to`` is ignored).
    """

    id: str
    texts_phones: bool

    async def send(self, sms: Sms) -> Delivery: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a builder may use besides the settings: ``base_dir`` resolves relative ``file:``
    secrets and files; ``client`` is a shared HTTP client (left open) instead of one per
    notifier; ``status_callback`` is the URL Twilio reports delivery to; ``on_delivery`` and
    ``on_incoming`` hear a GSM modem's delivery reports and incoming texts."""

    base_dir: Path | None = None
    client: httpx.AsyncClient | None = None
    status_callback: str | None = None
    on_delivery: Callable[[str, str], None] | None = None
    on_incoming: Callable[[str, str], None] | None = None

    def secret(self, notifier: str, setting: str, ref: str) -> SecretStr:
        """The secret ``ref`` names; SecretError naming the notifier and setting if not."""
        try:
            return resolve(ref, base_dir=self.base_dir)
        except SecretError as exc:
            raise SecretError(f"notifier {notifier}: {setting}: {exc}") from None
