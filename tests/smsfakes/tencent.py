"""Tencent Cloud SMS ``SendSms`` (2021-01-11) stand-in.

Checks, with Tencent's error shape (HTTP 200, ``{"Response": {"Error": {"Code", "Message"},
"RequestId"}}``): a JSON POST; the ``X-TC-Action``, ``X-TC-Version``, ``X-TC-Timestamp``,
``X-TC-Region`` headers; the ``Authorization`` header's form and SecretId; the timestamp
within five minutes (``AuthFailure.SignatureExpire``); the credential scope's date and
service; the TC3-HMAC-SHA256 signature, recomputed independently of the notifier from the
headers and body as received, with the known SecretKey (``AuthFailure.SignatureFailure``);
then the body: app id, sign name, an approved template with exactly its number of
parameters, and each number in E.164 (a wrong one gets its own status, as Tencent does).

Records: ``{"to", "sign_name", "template", "params", "ref", "provider_ref", "app_id"}``
(``to`` as received, ``+86...``; ``params`` the TemplateParamSet list).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from alerts.notifiers.tencent import PARAM_ORDER
from coldchain.config.notify import TencentSms
from tests.smsfakes.base import Fake

AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d\d-\d\d)/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})"
)


def expected_signature(
    secret_key: str, *, date: str, service: str, timestamp: str, canonical: str
) -> str:
    """TC3-HMAC-SHA256 over a canonical request, per Tencent's Signature v3 page."""
    scope = f"{date}/{service}/tc3_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = "\n".join(("TC3-HMAC-SHA256", timestamp, scope, digest))
    key = ("TC3" + secret_key).encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class TencentFake(Fake):
    """sms.tencentcloudapi.com at ``url``: one key pair, one app, a template per kind."""

    name = "tencent"

    def __init__(
        self,
        *,
        secret_id: str = "AKIDColdchainTest0123456789",
        sdk_app_id: str = "1400787878",
        sign_name: str = "城区物流",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.secret_id = secret_id
        self.secret_key = secrets.token_urlsafe(24)
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.clock = clock
        # the approved templates: kind -> TemplateId, and how many {n} each one has
        self.templates = {kind: str(1_800_000 + i) for i, kind in enumerate(PARAM_ORDER)}
        self.param_counts = {self.templates[k]: len(v) for k, v in PARAM_ORDER.items()}

    def settings(self, secret_dir: Path, *, secret: str | None = None, **fields: Any) -> TencentSms:
        """Settings of a notifier pointing here, its secret in a file under ``secret_dir``."""
        nid = fields.pop("id", "tencent-test")
        path = secret_dir / f"{nid}.secret"
        path.write_text(self.secret_key if secret is None else secret, encoding="utf-8")
        values: dict[str, Any] = {
            "id": nid,
            "secret_id": self.secret_id,
            "secret_key": f"file:{path}",
            "sdk_app_id": self.sdk_app_id,
            "sign_name": self.sign_name,
            "templates": dict(self.templates),
            "endpoint": self.url,
            "timeout": "5s",
        }
        return TencentSms.model_validate(values | fields)

    def routes(self, app: FastAPI) -> None:
        app.add_api_route("/", self.handle, methods=["POST"])

    def error(self, code: str, message: str) -> JSONResponse:
        self.reject(code, message)
        body = {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}
        return JSONResponse({"Response": body})

    def error_response(self) -> Response:
        return Response("<html><body>502 Bad Gateway</body></html>", status_code=502)

    def throttle_response(self) -> Response:
        return self.error(
            "RequestLimitExceeded",
            "Your current request times equals to `21` in a second, which exceeds the "
            "frequency limit `20` for a second. Please reduce the frequency of calls.",
        )

    async def handle(self, request: Request) -> Response:
        injected = await self.begin(request)
        if injected is not None:
            return injected
        payload = await request.body()
        return self.check_auth(request, payload) or self.check_send(payload)

    def check_auth(self, request: Request, payload: bytes) -> Response | None:
        """The API 3.0 checks; None when the request passes."""
        h = request.headers
        if not h.get("content-type", "").startswith("application/json"):
            return self.error("InvalidParameter", "Content-Type must be application/json.")
        for name in ("X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Region"):
            if not h.get(name):
                return self.error("MissingParameter", f"The request is missing `{name}`.")
        if h["X-TC-Action"] != "SendSms":
            return self.error("InvalidAction", f"The action `{h['X-TC-Action']}` is not found.")
        if h["X-TC-Version"] != "2021-01-11":
            return self.error("NoSuchVersion", "The requested version does not exist.")
        auth = AUTH.fullmatch(h.get("authorization", ""))
        if auth is None:
            return self.error("AuthFailure.InvalidAuthorization", "Authorization is invalid.")
        if auth["id"] != self.secret_id:
            return self.error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        stamp = h["X-TC-Timestamp"]
        if not stamp.isdigit() or abs(int(stamp) - self.clock()) > 300:
            return self.error(
                "AuthFailure.SignatureExpire",
                "Signature expired. Timestamp and server time cannot differ by more than five "
                "minutes.",
            )
        signed = auth["signed"].split(";")
        date = datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d")
        lines = "".join(f"{name}:{h.get(name, '').strip().lower()}\n" for name in signed)
        canonical = "\n".join(
            ("POST", "/", "", lines, auth["signed"], hashlib.sha256(payload).hexdigest())
        )
        expected = expected_signature(
            self.secret_key, date=date, service="sms", timestamp=stamp, canonical=canonical
        )
        bad_scope = auth["date"] != date or auth["service"] != "sms"
        if bad_scope or not {"content-type", "host"} <= set(signed) or expected != auth["sig"]:
            return self.error(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature "
                "is correct.",
            )
        return None

    def check_send(self, payload: bytes) -> Response:
        """SendSms's own checks, then a status per number."""
        try:
            body = json.loads(payload)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.error("FailedOperation.JsonParseFail", "解析请求包体时候失败。")
        for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId", "SignName"):
            if not body.get(name):
                return self.error("MissingParameter", f"The request is missing `{name}`.")
        if body["SmsSdkAppId"] != self.sdk_app_id:
            return self.error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId不存在。")
        if body["SignName"] != self.sign_name:
            return self.error(
                "FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误。"
            )
        count = self.param_counts.get(body["TemplateId"])
        if count is None:
            return self.error(
                "FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配。"
            )
        params = body.get("TemplateParamSet", [])
        if not (isinstance(params, list) and len(params) == count):
            return self.error(
                "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                "请求内容与审核通过的模板内容不匹配。",
            )
        statuses = [self.status(str(phone), body, params) for phone in body["PhoneNumberSet"]]
        return JSONResponse(
            {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}
        )

    def status(self, phone: str, body: dict[str, Any], params: list[Any]) -> dict[str, Any]:
        """One number's SendStatus; records it when it is sent."""
        ref = str(body.get("SessionContext", ""))
        common = {"PhoneNumber": phone, "SessionContext": ref, "IsoCode": "CN"}
        if not re.fullmatch(r"\+[1-9]\d{6,14}", phone):
            self.reject("InvalidParameterValue.IncorrectPhoneNumber", phone)
            return common | {
                "SerialNo": "",
                "Fee": 0,
                "Code": "InvalidParameterValue.IncorrectPhoneNumber",
                "Message": "手机号格式错误",
            }
        serial = f"2433:{secrets.randbelow(10**18):018d}"
        self.records.append(
            {
                "to": phone,
                "sign_name": body["SignName"],
                "template": body["TemplateId"],
                "params": params,
                "ref": ref,
                "provider_ref": serial,
                "app_id": body["SmsSdkAppId"],
            }
        )
        return common | {"SerialNo": serial, "Fee": 1, "Code": "Ok", "Message": "send success"}
