"""Alibaba Cloud SMS: dysmsapi ``SendSms`` (version 2017-05-25) as an RPC-style GET request
signed with HMAC-SHA1, signature version 1.0.

The signature, per Alibaba Cloud's "Signature method" pages for SMS and RPC APIs: sort all
parameters but ``Signature`` by name, percent-encode names and values (RFC 3986: only
``A-Z a-z 0-9 - _ . ~`` stay, space is ``%20``, ``*`` is ``%2A``), join as ``k=v&...``;
``StringToSign = "GET&%2F&" + percentEncode(thatQuery)``; the key is the AccessKey secret
followed by ``&``; the signature is the base64 HMAC-SHA1. The test suite checks this module
against the worked example those pages publish.

Numbers: Aliyun takes digits without ``+``. A mainland number (``+86``) goes as its eleven
digits, the way Aliyun's examples write it; any other number as country code and number
(``+85261234567`` -> ``85261234567``), the form its international SMS takes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from alerts.notifiers.http import E164, HttpSender, http_failure, json_object
from coldchain.sms.types import Delivery, SendError, Sms

log = logging.getLogger(__name__)

ACTION = "SendSms"
VERSION = "2017-05-25"


def percent_encode(value: str) -> str:
    """Aliyun's percent-encoding: RFC 3986 unreserved characters kept, all else ``%XY``."""
    return quote(value, safe="")  # keeps A-Za-z0-9-_.~ ; space -> %20, * -> %2A


def canonical_query(params: Mapping[str, str]) -> str:
    """The parameters sorted by name, each name and value percent-encoded."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def string_to_sign(params: Mapping[str, str], method: str = "GET") -> str:
    """What gets signed: method, the encoded ``/`` and the encoded canonical query."""
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def signature(params: Mapping[str, str], secret: str, method: str = "GET") -> str:
    """The base64 HMAC-SHA1 of :func:`string_to_sign` keyed with ``secret + "&"``."""
    digest = hmac.new(
        f"{secret}&".encode(), string_to_sign(params, method).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def aliyun_number(e164: str) -> str:
    """``+8613800138000`` -> ``13800138000``; ``+85261234567`` -> ``85261234567``."""
    if not re.fullmatch(E164, e164):
        raise ValueError(f"{e164!r} is not an international number such as +8613800138000")
    return e164[3:] if e164.startswith("+86") else e164[1:]


def retryable(code: str, status: int) -> bool:
    """Throttling (``isv.BUSINESS_LIMIT_CONTROL``, ``Throttling.*``) and server errors."""
    throttled = code in ("isv.BUSINESS_LIMIT_CONTROL", "Throttling") or code.startswith(
        "Throttling."
    )
    return throttled or status >= 500


class AliyunNotifier:
    """Sends template SMS through Alibaba Cloud; the template is chosen by message kind."""

    texts_phones = True

    def __init__(
        self,
        *,
        id: str,
        access_key_id: str,
        access_key_secret: SecretStr,
        sign_name: str,
        templates: Mapping[str, str],
        region: str = "cn-hangzhou",
        endpoint: str = "https://dysmsapi.aliyuncs.com",
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.id = id
        self._key_id = access_key_id
        self._secret = access_key_secret
        self._sign_name = sign_name
        self._templates = dict(templates)
        self._region = region
        self._endpoint = endpoint.rstrip("/")
        self._clock = clock
        self._nonce = nonce
        self._http = HttpSender(id, timeout=timeout, client=client)

    def __repr__(self) -> str:
        return f"AliyunNotifier(id={self.id!r}, endpoint={self._endpoint!r})"

    def params(self, sms: Sms) -> dict[str, str]:
        """The request parameters for ``sms``, unsigned; SendError if it cannot be sent."""
        template = self._templates.get(sms.kind)
        if template is None:
            raise SendError(
                self.id,
                f"no Aliyun template for message kind {sms.kind!r}: add templates.{sms.kind} "
                f"(the approved template code) to notifier {self.id}",
                retryable=False,
            )
        try:
            phone = aliyun_number(sms.to)
        except ValueError as exc:
            raise SendError(self.id, str(exc), retryable=False) from None
        now = datetime.fromtimestamp(self._clock(), UTC)
        return {
            "AccessKeyId": self._key_id,
            "Action": ACTION,
            "Format": "JSON",
            "OutId": sms.ref,
            "PhoneNumbers": phone,
            "RegionId": self._region,
            "SignName": self._sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "TemplateCode": template,
            "TemplateParam": json.dumps(sms.params, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
        }

    async def send(self, sms: Sms) -> Delivery:
        """Send ``sms``; accepted means Aliyun queued it (``BizId`` is its handle)."""
        params = self.params(sms)
        sig = signature(params, self._secret.get_secret_value())
        url = f"{self._endpoint}/?Signature={percent_encode(sig)}&{canonical_query(params)}"
        response = await self._http.request("GET", url)
        body = json_object(response)
        if body is None:
            raise http_failure(self.id, response, "not a JSON answer")
        code = str(body.get("Code", ""))
        if code == "OK" and response.status_code == 200:
            biz_id = body.get("BizId")
            log.debug("%s: %s accepted as BizId %s", self.id, sms.ref, biz_id)
            return Delivery(self.id, "accepted", provider_ref=str(biz_id) if biz_id else None)
        message = str(body.get("Message", ""))[:500]
        raise SendError(
            self.id,
            f"Aliyun refused {sms.ref} (HTTP {response.status_code}): {code}: {message}",
            retryable=retryable(code, response.status_code),
        )

    async def aclose(self) -> None:
        await self._http.aclose()
