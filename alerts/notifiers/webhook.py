"""A generic webhook: the message as JSON to any URL, HMAC-signed when a secret is set.

Body: ``{"ref", "kind", "to", "text", "params"}``, UTF-8 JSON. With a secret, the header
``X-Coldchain-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` lets the receiver check
that the hub sent it (compare in constant time, over the bytes as received). Any 2xx is
accepted; 429 and 5xx are worth another try, other statuses are not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx
from pydantic import SecretStr

from alerts.notifiers.http import HttpSender, http_failure
from coldchain.sms.types import Delivery, Sms

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Coldchain-Signature"


def body_signature(body: bytes, secret: str) -> str:
    """The ``X-Coldchain-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(sms: Sms) -> bytes:
    """The JSON body the webhook receives for ``sms``."""
    doc = {"ref": sms.ref, "kind": sms.kind, "to": sms.to, "text": sms.text, "params": sms.params}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookNotifier:
    """POSTs each message to one URL."""

    texts_phones = False

    def __init__(
        self,
        *,
        id: str,
        url: str,
        secret: SecretStr | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.id = id
        self._url = url
        self._secret = secret
        self._http = HttpSender(id, timeout=timeout, client=client)

    def __repr__(self) -> str:
        return f"WebhookNotifier(id={self.id!r}, host={httpx.URL(self._url).host!r})"

    async def send(self, sms: Sms) -> Delivery:
        """POST ``sms``; any 2xx is accepted."""
        body = payload(sms)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = body_signature(body, self._secret.get_secret_value())
        response = await self._http.request("POST", self._url, content=body, headers=headers)
        if not response.is_success:
            raise http_failure(self.id, response, response.text[:200])
        log.debug("%s: %s accepted (HTTP %d)", self.id, sms.ref, response.status_code)
        return Delivery(self.id, "accepted", detail=f"HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self._http.aclose()
