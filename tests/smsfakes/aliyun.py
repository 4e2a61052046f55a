"""Alibaba Cloud dysmsapi ``SendSms`` stand-in.

Checks, in the service's order and with its error shape (``{"RequestId", "HostId", "Code",
"Message", "Recommend"}``): action and version; the common parameters (``Missing<Name>``);
signature method and version; the ``Timestamp`` format (``yyyy-MM-ddTHH:mm:ssZ``) and skew
(15 min); the AccessKeyId; the signature, recomputed independently of the notifier from the
received query with the known secret (``SignatureDoesNotMatch``, quoting the server's
string to sign as Aliyun does); a reused ``SignatureNonce``; then SendSms's own parameters:
phone numbers, the approved sign name and template, ``TemplateParam`` as a JSON object of
strings. Business refusals come with HTTP 200 and an ``isv.*`` code, as Aliyun's do.

Records: ``{"to", "sign_name", "template", "params", "ref", "provider_ref"}`` (``to`` as
Aliyun received it, e.g. ``13800138000``; ``params`` the decoded TemplateParam).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from coldchain.config.notify import MESSAGE_KINDS, AliyunSms
from tests.smsfakes.base import Fake

COMMON = ("AccessKeyId", "Signature", "SignatureMethod", "SignatureNonce", "SignatureVersion")
SKEW = 15 * 60


def _pop_encode(text: str) -> str:
    # Aliyun's documented recipe: form-encode, then "+" -> %20, "*" -> %2A, %7E -> "~".
    return quote_plus(text, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def expected_signature(query: Mapping[str, str], secret: str) -> tuple[str, str]:
    """(the signature, the string to sign) of the received parameters."""
    canonical = "&".join(
        _pop_encode(k) + "=" + _pop_encode(query[k]) for k in sorted(query) if k != "Signature"
    )
    to_sign = "GET&%2F&" + _pop_encode(canonical)
    mac = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode(), to_sign


class AliyunFake(Fake):
    """dysmsapi at ``url``; the account has one key, one sign name, one template per kind."""

    name = "aliyun"

    def __init__(
        self,
        *,
        access_key_id: str = "LTAI5tColdchainTest",
        sign_name: str = "城区物流",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.access_key_id = access_key_id
        self.secret = secrets.token_urlsafe(24)
        self.sign_name = sign_name
        self.templates = {kind: f"SMS_4650{i:04d}" for i, kind in enumerate(MESSAGE_KINDS)}
        self.clock = clock
        self._nonces: set[str] = set()
        self._nonce_lock = threading.Lock()

    def settings(self, secret_dir: Path, *, secret: str | None = None, **fields: Any) -> AliyunSms:
        """Settings of a notifier pointing here, its secret in a file under ``secret_dir``."""
        nid = fields.pop("id", "aliyun-test")
        path = secret_dir / f"{nid}.secret"
        path.write_text(self.secret if secret is None else secret, encoding="utf-8")
        values: dict[str, Any] = {
            "id": nid,
            "access_key_id": self.access_key_id,
            "access_key_secret": f"file:{path}",
            "sign_name": self.sign_name,
            "templates": dict(self.templates),
            "endpoint": self.url,
            "timeout": "5s",
        }
        return AliyunSms.model_validate(values | fields)

    def routes(self, app: FastAPI) -> None:
        app.add_api_route("/", self.handle, methods=["GET"])

    def answer(self, status: int, code: str, message: str) -> JSONResponse:
        self.reject(code, message)
        body = {
            "RequestId": str(uuid.uuid4()).upper(),
            "HostId": "dysmsapi.aliyuncs.com",
            "Code": code,
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}",
        }
        return JSONResponse(body, status_code=status)

    def error_response(self) -> Response:
        return self.answer(
            503, "ServiceUnavailable", "The request has failed due to a temporary failure."
        )

    def throttle_response(self) -> Response:
        return self.answer(200, "isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")

    async def handle(self, request: Request) -> Response:
        injected = await self.begin(request)
        if injected is not None:
            return injected
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        return self.check_common(query) or self.check_send(query)

    def check_common(self, q: dict[str, str]) -> Response | None:
        """The RPC checks every Aliyun API makes; None when the request passes."""
        if q.get("Action") != "SendSms":
            return self.answer(404, "InvalidAction.NotFound", "Specified api is not found.")
        if q.get("Version") != "2017-05-25":
            return self.answer(400, "InvalidVersion", "Specified parameter Version is not valid.")
        for name in (*COMMON, "Timestamp"):
            if not q.get(name):
                return self.answer(400, f"Missing{name}", f"{name} is mandatory for this action.")
        if q.get("Format", "XML") != "JSON":
            return self.answer(400, "InvalidParameter", "this stand-in answers Format=JSON only")
        if q["SignatureMethod"] != "HMAC-SHA1" or q["SignatureVersion"] != "1.0":
            return self.answer(400, "InvalidSignatureMethod", "Specified signature is invalid.")
        stamp = q["Timestamp"]
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp):
            return self.answer(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        if abs(when - self.clock()) > SKEW:
            return self.answer(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        if q["AccessKeyId"] != self.access_key_id:
            return self.answer(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        expected, to_sign = expected_signature(q, self.secret)
        if not hmac.compare_digest(expected, q["Signature"]):
            return self.answer(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                f"server string to sign is:{to_sign}",
            )
        with self._nonce_lock:
            used = q["SignatureNonce"] in self._nonces
            self._nonces.add(q["SignatureNonce"])
        if used:
            return self.answer(400, "SignatureNonceUsed", "Specified signature nonce was used.")
        return None

    def check_send(self, q: dict[str, str]) -> Response:
        """SendSms's own checks, then the acceptance."""
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not q.get(name):
                return self.answer(400, f"Missing{name}", f"{name} is mandatory for this action.")
        phones = q["PhoneNumbers"].split(",")
        if not all(re.fullmatch(r"1\d{10}|[2-9]\d{7,14}", p) for p in phones):
            return self.answer(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if q["SignName"] != self.sign_name:
            return self.answer(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        if q["TemplateCode"] not in self.templates.values():
            return self.answer(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            params = json.loads(q.get("TemplateParam") or "{}")
        except ValueError:
            params = None
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return self.answer(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法, 只接受字符串值")
        biz_id = f"{secrets.randbelow(10**12):012d}^{len(self.records)}"
        for phone in phones:
            self.records.append(
                {
                    "to": phone,
                    "sign_name": q["SignName"],
                    "template": q["TemplateCode"],
                    "params": params,
                    "ref": q.get("OutId", ""),
                    "provider_ref": biz_id,
                }
            )
        body = {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": str(uuid.uuid4())}
        return JSONResponse(body)
