"""Tencent Cloud SMS: ``SendSms`` (API version 2021-01-11) signed with TC3-HMAC-SHA256.

The signature, per Tencent Cloud's API 3.0 "Signature v3" page: a canonical request
(method, ``/``, empty query, the signed headers as ``name:value`` lines with lower-case
values, their names, the SHA-256 of the body), a string to sign (algorithm, timestamp,
``date/sms/tc3_request``, SHA-256 of the canonical request), a key derived by HMAC-SHA256
chain from ``"TC3" + SecretKey`` over date, service and ``tc3_request``. We sign
``content-type``, ``host`` and ``x-tc-action``. The test suite checks this module against
the page's worked example.

Templates take positional parameters (``{1}``, ``{2}``...), so each message kind has a fixed
parameter order, :data:`PARAM_ORDER`: the template approved for a kind must use them in that
order. A message lacking one of its kind's parameters is refused before sending.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from alerts.notifiers.http import E164, HttpSender, http_failure, json_object
from coldchain.sms.types import Delivery, SendError, Sms

log = logging.getLogger(__name__)

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "sms"
ACTION = "SendSms"
VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = ("content-type", "host", "x-tc-action")

PARAM_ORDER: dict[str, tuple[str, ...]] = {
    "alarm": ("site", "room", "value", "limit", "since", "link"),
    "warning": ("site", "room", "value", "limit", "since", "link"),
    "resolved": ("site", "room", "value", "duration", "link"),
    "grouped": ("site", "count", "summary", "link"),
    "reminder": ("site", "room", "since", "link"),
    "test": ("site", "time"),
}
"""Message kind -> the ``Sms.params`` names that fill the template's ``{1}, {2}, ...``."""

RETRYABLE_PREFIXES = ("RequestLimitExceeded", "InternalError", "LimitExceeded")
"""Error codes worth another try, here later or at the next provider: rate limits
(``LimitExceeded.PhoneNumberDailyLimit`` included) and Tencent's own failures."""


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_request(
    headers: Mapping[str, str], signed: Sequence[str], payload: bytes, method: str = "POST"
) -> str:
    """The canonical request of a POST to ``/`` (``headers`` keyed by lower-case name)."""
    lines = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in signed)
    body_hash = hashlib.sha256(payload).hexdigest()
    return f"{method}\n/\n\n{lines}\n{';'.join(signed)}\n{body_hash}"


def authorization(
    *,
    secret_id: str,
    secret_key: str,
    timestamp: int,
    service: str,
    headers: Mapping[str, str],
    signed: Sequence[str],
    payload: bytes,
) -> str:
    """The ``Authorization`` header value for a signed POST."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    canonical = canonical_request(headers, signed, payload)
    to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={sig}"
    )


def template_params(sms: Sms) -> list[str]:
    """The template parameters of ``sms`` in its kind's order; ValueError naming the gap."""
    order = PARAM_ORDER.get(sms.kind)
    if order is None:
        raise ValueError(f"no template parameter order for message kind {sms.kind!r}")
    missing = [name for name in order if name not in sms.params]
    if missing:
        raise ValueError(
            f"message {sms.ref} ({sms.kind}) lacks template parameters {', '.join(missing)}; "
            f"a {sms.kind} template takes {', '.join(order)} in that order"
        )
    return [sms.params[name] for name in order]


def _retryable(code: str) -> bool:
    return code.startswith(RETRYABLE_PREFIXES)


class TencentNotifier:
    """Sends template SMS through Tencent Cloud; the template is chosen by message kind."""

    texts_phones = True

    def __init__(
        self,
        *,
        id: str,
        secret_id: str,
        secret_key: SecretStr,
        sdk_app_id: str,
        sign_name: str,
        templates: Mapping[str, str],
        region: str = "ap-guangzhou",
        endpoint: str = "https://sms.tencentcloudapi.com",
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.id = id
        self._secret_id = secret_id
        self._secret_key = secret_key
        self._app_id = sdk_app_id
        self._sign_name = sign_name
        self._templates = dict(templates)
        self._region = region
        self._url = httpx.URL(endpoint.rstrip("/") + "/")
        self._clock = clock
        self._http = HttpSender(id, timeout=timeout, client=client)

    def __repr__(self) -> str:
        return f"TencentNotifier(id={self.id!r}, endpoint={str(self._url)!r})"

    def body(self, sms: Sms) -> dict[str, Any]:
        """The SendSms request body for ``sms``; SendError if it cannot be sent."""
        template = self._templates.get(sms.kind)
        if template is None:
            raise SendError(
                self.id,
                f"no Tencent template for message kind {sms.kind!r}: add templates.{sms.kind} "
                f"(the approved TemplateId) to notifier {self.id}",
                retryable=False,
            )
        if not re.fullmatch(E164, sms.to):
            raise SendError(
                self.id,
                f"{sms.to!r} is not an international number such as +8613800138000",
                retryable=False,
            )
        try:
            params = template_params(sms)
        except ValueError as exc:
            raise SendError(self.id, str(exc), retryable=False) from None
        return {
            "PhoneNumberSet": [sms.to],
            "SmsSdkAppId": self._app_id,
            "SignName": self._sign_name,
            "TemplateId": template,
            "TemplateParamSet": params,
            "SessionContext": sms.ref,
        }

    def headers(self, payload: bytes) -> dict[str, str]:
        """The signed request headers for ``payload`` at this moment."""
        timestamp = int(self._clock())
        signed = {
            "content-type": CONTENT_TYPE,
            "host": self._url.netloc.decode(),
            "x-tc-action": ACTION,
        }
        auth = authorization(
            secret_id=self._secret_id,
            secret_key=self._secret_key.get_secret_value(),
            timestamp=timestamp,
            service=SERVICE,
            headers=signed,
            signed=SIGNED_HEADERS,
            payload=payload,
        )
        return {
            "Content-Type": CONTENT_TYPE,
            "X-TC-Action": ACTION,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self._region,
            "Authorization": auth,
        }

    async def send(self, sms: Sms) -> Delivery:
        """Send ``sms``; accepted means Tencent queued it (``SerialNo`` is its handle)."""
        payload = json.dumps(self.body(sms), ensure_ascii=False, separators=(",", ":")).encode()
        response = await self._http.request(
            "POST", self._url, content=payload, headers=self.headers(payload)
        )
        answer = json_object(response)
        result = answer.get("Response") if answer else None
        if response.status_code != 200 or not isinstance(result, dict):
            raise http_failure(self.id, response, "no SendSms response")
        error = result.get("Error")
        if isinstance(error, dict):
            code = str(error.get("Code", ""))
            raise SendError(
                self.id,
                f"Tencent refused {sms.ref}: {code}: {str(error.get('Message', ''))[:500]}",
                retryable=_retryable(code),
            )
        statuses = result.get("SendStatusSet")
        status = statuses[0] if isinstance(statuses, list) and statuses else None
        if not isinstance(status, dict):
            raise http_failure(self.id, response, "no SendStatusSet in the answer")
        code = str(status.get("Code", ""))
        if code != "Ok":
            raise SendError(
                self.id,
                f"Tencent refused {sms.ref}: {code}: {status.get('Message', '')}",
                retryable=_retryable(code),
            )
        serial, fee = status.get("SerialNo"), status.get("Fee")
        log.debug("%s: %s accepted as SerialNo %s", self.id, sms.ref, serial)
        return Delivery(
            self.id,
            "accepted",
            provider_ref=str(serial) if serial else None,
            parts=fee if isinstance(fee, int) and fee > 0 else 1,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
