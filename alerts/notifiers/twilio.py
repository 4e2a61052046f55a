"""Twilio Programmable Messaging: send the rendered text, and read what Twilio calls back.

Sending is a form POST to ``{endpoint}/2010-04-01/Accounts/{sid}/Messages.json`` with HTTP
basic auth (account SID, auth token); 201 means queued. Twilio's callbacks (delivery status,
inbound SMS) are form POSTs signed with ``X-Twilio-Signature``: the base64 HMAC-SHA1, keyed
with the auth token, of the full callback URL followed by each POST parameter's name and
value, sorted by name (Twilio's "Webhooks security" page; the tests check its example).
The parsers turn those forms into plain records for the hub to route.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from alerts.notifiers.http import HttpSender, http_failure, json_object, retryable_status
from coldchain.sms.types import Delivery, DeliveryStatus, SendError, Sms

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"

STATUS_MAP: dict[str, DeliveryStatus] = {
    "delivered": "delivered",
    "read": "delivered",
    "failed": "failed",
    "undelivered": "failed",
    "canceled": "failed",
}
"""Twilio's final MessageStatus values; every other one (queued, sending, sent...) is
still "accepted"."""


class TwilioCallbackError(ValueError):
    """A callback form that lacks a field Twilio always sends."""


@dataclass(frozen=True, slots=True)
class TwilioStatus:
    """A delivery status callback."""

    message_sid: str
    status: DeliveryStatus
    twilio_status: str  # as Twilio said it: queued, sent, delivered, undelivered...
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A text someone sent to one of our numbers (e.g. an acknowledgement)."""

    sender: str
    text: str
    to: str = ""
    message_sid: str = ""


def twilio_signature(url: str, form: Mapping[str, str], token: str) -> str:
    """What Twilio puts in ``X-Twilio-Signature`` for a POST of ``form`` to ``url``."""
    data = url + "".join(name + form[name] for name in sorted(form))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio_signature(url: str, form: Mapping[str, str], signature: str, token: str) -> bool:
    """Whether ``signature`` is Twilio's for ``form`` posted to exactly ``url`` (the public
    URL Twilio called, query included)."""
    expected = twilio_signature(url, form, token)
    return hmac.compare_digest(expected.encode(), signature.encode())


def _field(form: Mapping[str, str], name: str, what: str) -> str:
    value = form.get(name)
    if not value:
        raise TwilioCallbackError(f"{what} lacks {name}")
    return value


def parse_status_callback(form: Mapping[str, str]) -> TwilioStatus:
    """A status callback form (``MessageSid``, ``MessageStatus``, ``ErrorCode``)."""
    sid = _field(form, "MessageSid", "status callback")
    twilio_status = _field(form, "MessageStatus", "status callback")
    return TwilioStatus(
        message_sid=sid,
        status=STATUS_MAP.get(twilio_status, "accepted"),
        twilio_status=twilio_status,
        error_code=form.get("ErrorCode") or None,
    )


def parse_inbound(form: Mapping[str, str]) -> InboundSms:
    """An inbound SMS form (``From``, ``Body``, ``To``, ``MessageSid``)."""
    return InboundSms(
        sender=_field(form, "From", "inbound SMS"),
        text=form.get("Body", ""),
        to=form.get("To", ""),
        message_sid=form.get("MessageSid", ""),
    )


class TwilioNotifier:
    """Sends the rendered text through Twilio, from a number or a messaging service."""

    texts_phones = True

    def __init__(
        self,
        *,
        id: str,
        account_sid: str,
        auth_token: SecretStr,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        endpoint: str = "https://api.twilio.com",
        status_callback: str | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if (from_number is None) == (messaging_service_sid is None):
            raise ValueError(
                f"notifier {id}: give exactly one of from_number and messaging_service_sid"
            )
        self.id = id
        self._sid = account_sid
        self._token = auth_token
        self._sender = (
            {"From": from_number}
            if from_number is not None
            else {"MessagingServiceSid": str(messaging_service_sid)}
        )
        self._callback = status_callback
        self._url = f"{endpoint.rstrip('/')}/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        self._http = HttpSender(id, timeout=timeout, client=client)

    def __repr__(self) -> str:
        return f"TwilioNotifier(id={self.id!r}, url={self._url!r})"

    def form(self, sms: Sms) -> dict[str, str]:
        """The form fields that send ``sms``."""
        fields = {"To": sms.to, **self._sender, "Body": sms.text}
        if self._callback is not None:
            fields["StatusCallback"] = self._callback
        return fields

    async def send(self, sms: Sms) -> Delivery:
        """Send ``sms``; accepted means Twilio queued it (the Message SID is its handle)."""
        response = await self._http.request(
            "POST", self._url, data=self.form(sms), auth=(self._sid, self._token.get_secret_value())
        )
        body = json_object(response)
        if body is None:
            raise http_failure(self.id, response, "not a JSON answer")
        if response.status_code == 201 and body.get("sid"):
            log.debug("%s: %s accepted as %s", self.id, sms.ref, body["sid"])
            segments = str(body.get("num_segments") or "1")
            return Delivery(
                self.id,
                "accepted",
                provider_ref=str(body["sid"]),
                parts=int(segments) if segments.isdigit() else 1,
            )
        raise SendError(
            self.id,
            f"Twilio refused {sms.ref} (HTTP {response.status_code}): "
            f"{body.get('code')}: {str(body.get('message', ''))[:500]}",
            retryable=retryable_status(response.status_code),
        )

    async def aclose(self) -> None:
        await self._http.aclose()
