"""What every notifier offers the dispatcher."""

from __future__ import annotations

from typing import Protocol

from coldchain.sms.types import Delivery, Sms


class Notifier(Protocol):
    """Sends one message; raises :class:`~coldchain.sms.types.SendError` on failure.

    ``texts_phones`` is True for SMS (the message's ``to`` is a phone number) and False for
    a group robot or a webhook (``to`` is ignored).
    """

    id: str
    texts_phones: bool

    async def send(self, sms: Sms) -> Delivery: ...

    async def aclose(self) -> None: ...
