"""One message to one recipient, and what became of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DeliveryStatus = Literal["accepted", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class Sms:
    """A message to send.

    ``text`` is the rendered message in the recipient's language (Twilio, the GSM modem and
    robots send it as is). ``params`` are the same facts as template variables for providers
    that only send pre-approved templates (Aliyun, Tencent), chosen by ``kind``. ``ref`` is
    the hub's id for this notification: an idempotency key and the handle for delivery
    reports.
    """

    to: str  # E.164 phone number; "" for a group robot or webhook
    text: str
    kind: str  # one of coldchain.config.notify.MESSAGE_KINDS
    ref: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A provider's answer to one send."""

    notifier: str
    status: DeliveryStatus
    provider_ref: str | None = None  # BizId, SerialNo, MessageSid, modem reference(s)
    detail: str = ""
    parts: int = 1  # SMS segments it took


class SendError(Exception):
    """A send that failed; ``retryable`` says whether trying again (here or at the next
    provider) may help: a timeout or a 5xx may, a rejected number or signature will not."""

    def __init__(self, notifier: str, detail: str, *, retryable: bool) -> None:
        super().__init__(f"{notifier}: {detail}")
        self.notifier = notifier
        self.detail = detail
        self.retryable = retryable
