"""Stand-ins for the DingTalk and WeCom group robots and for a generic webhook receiver.

DingTalk (``POST /robot/send?access_token=...``): the token (errcode 300001); with a secret,
``timestamp`` in ms within an hour (310000 "invalid timestamp") and ``sign``, recomputed as
base64 HMAC-SHA256 of ``timestamp\\nsecret`` (310000 "sign not match"); a text message body
(40035). WeCom (``POST /cgi-bin/webhook/send?key=...``): the key (93000), a non-empty text
content (44004) within 2048 bytes (40058). Both answer HTTP 200 with ``errcode``/``errmsg``.

Webhook (``POST /hook``): with a secret, ``X-Coldchain-Signature`` equal to ``sha256=`` and
the hex HMAC-SHA256 of the raw body (401); a JSON object with ``ref, kind, to, text,
params`` (422).

Records: robots ``{"text", "msgtype"}``; webhook ``{"ref", "kind", "to", "text", "params"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from coldchain.config.notify import DingTalkRobot, Webhook, WeComRobot
from tests.smsfakes.base import Fake


def _secret_file(secret_dir: Path, nid: str, value: str) -> str:
    path = secret_dir / f"{nid}.secret"
    path.write_text(value, encoding="utf-8")
    return f"file:{path}"


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


class _Robot(Fake):
    """errcode answers and the text-message check both robots make."""

    def errcode(self, code: int, message: str) -> JSONResponse:
        if code:
            self.reject(str(code), message)
        return JSONResponse({"errcode": code, "errmsg": message})

    def error_response(self) -> Response:
        return Response("<html>502 Bad Gateway</html>", status_code=502)

    @staticmethod
    def text_of(body: Any) -> str | None:
        if not isinstance(body, dict) or body.get("msgtype") != "text":
            return None
        text = body.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        return content if isinstance(content, str) else None


class DingTalkFake(_Robot):
    """oapi.dingtalk.com's custom robot at ``url``, signed when ``signed``."""

    name = "dingtalk"

    def __init__(self, *, signed: bool = True, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.access_token = secrets.token_hex(32)
        self.secret = "SEC" + secrets.token_hex(32) if signed else None
        self.clock = clock

    def settings(
        self, secret_dir: Path, *, secret: str | None = None, **fields: Any
    ) -> DingTalkRobot:
        """Settings of a robot notifier pointing here (secret in a file when signed)."""
        nid = fields.pop("id", "dingtalk-test")
        value = secret if secret is not None else self.secret
        values: dict[str, Any] = {
            "id": nid,
            "url": f"{self.url}/robot/send?access_token={self.access_token}",
            "secret": None if value is None else _secret_file(secret_dir, nid, value),
            "timeout": "5s",
        }
        return DingTalkRobot.model_validate(values | fields)

    def routes(self, app: FastAPI) -> None:
        app.add_api_route("/robot/send", self.handle, methods=["POST"])

    def throttle_response(self) -> Response:
        return self.errcode(130101, "send too fast, exceed 20 times per minute")

    def sign_error(self, request: Request) -> str | None:
        """Why the signature is refused, or None."""
        if self.secret is None:
            return None
        stamp, sign = request.query_params.get("timestamp", ""), request.query_params.get("sign")
        if not stamp.isdigit() or abs(int(stamp) / 1000 - self.clock()) > 3600:
            return "invalid timestamp"
        mac = hmac.new(self.secret.encode(), f"{stamp}\n{self.secret}".encode(), hashlib.sha256)
        if not hmac.compare_digest(base64.b64encode(mac.digest()).decode(), sign or ""):
            return "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
        return None

    async def handle(self, request: Request) -> Response:
        injected = await self.begin(request)
        if injected is not None:
            return injected
        if request.query_params.get("access_token") != self.access_token:
            return self.errcode(300001, "token is not exist")
        why = self.sign_error(request)
        if why is not None:
            return self.errcode(310000, why)
        body = await _json(request)
        text = self.text_of(body)
        if not text:
            return self.errcode(40035, "缺少参数 json")
        self.records.append({"text": text, "msgtype": "text"})
        return self.errcode(0, "ok")


class WeComFake(_Robot):
    """qyapi.weixin.qq.com's group robot at ``url``."""

    name = "wecom"

    def __init__(self) -> None:
        super().__init__()
        self.key = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}"

    def settings(self, secret_dir: Path, *, key: str | None = None, **fields: Any) -> WeComRobot:
        """Settings of a robot notifier pointing here (``key`` to use a wrong one)."""
        del secret_dir  # the key is in the URL, not a secret file
        values: dict[str, Any] = {
            "id": fields.pop("id", "wecom-test"),
            "url": f"{self.url}/cgi-bin/webhook/send?key={key or self.key}",
            "timeout": "5s",
        }
        return WeComRobot.model_validate(values | fields)

    def routes(self, app: FastAPI) -> None:
        app.add_api_route("/cgi-bin/webhook/send", self.handle, methods=["POST"])

    def throttle_response(self) -> Response:
        return self.errcode(45009, "api freq out of limit")

    async def handle(self, request: Request) -> Response:
        injected = await self.begin(request)
        if injected is not None:
            return injected
        if request.query_params.get("key") != self.key:
            return self.errcode(
                93000, "invalid webhook url, hint: [1718000000_1], from ip: 127.0.0.1"
            )
        text = self.text_of(await _json(request))
        if not text:
            return self.errcode(44004, "empty content")
        if len(text.encode()) > 2048:
            return self.errcode(40058, "content exceed max length 2048")
        self.records.append({"text": text, "msgtype": "text"})
        return self.errcode(0, "ok")


class WebhookFake(Fake):
    """A receiver of the generic webhook at ``url + "/hook"``."""

    name = "webhook"

    def __init__(self, *, signed: bool = True) -> None:
        super().__init__()
        self.secret = secrets.token_urlsafe(24) if signed else None

    def settings(self, secret_dir: Path, *, secret: str | None = None, **fields: Any) -> Webhook:
        """Settings of a webhook notifier pointing here (secret in a file when signed)."""
        nid = fields.pop("id", "webhook-test")
        value = secret if secret is not None else self.secret
        values: dict[str, Any] = {
            "id": nid,
            "url": f"{self.url}/hook",
            "secret": None if value is None else _secret_file(secret_dir, nid, value),
            "timeout": "5s",
        }
        return Webhook.model_validate(values | fields)

    def routes(self, app: FastAPI) -> None:
        app.add_api_route("/hook", self.handle, methods=["POST"])

    def refuse(self, status: int, message: str) -> JSONResponse:
        self.reject(str(status), message)
        return JSONResponse({"error": message}, status_code=status)

    async def handle(self, request: Request) -> Response:
        injected = await self.begin(request)
        if injected is not None:
            return injected
        raw = await request.body()
        if self.secret is not None:
            mac = hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
            given = request.headers.get("x-coldchain-signature", "")
            if not hmac.compare_digest("sha256=" + mac, given):
                return self.refuse(401, "X-Coldchain-Signature does not match the body")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        fields = ("ref", "kind", "to", "text", "params")
        if not isinstance(body, dict) or any(name not in body for name in fields):
            return self.refuse(422, f"want a JSON object with {', '.join(fields)}")
        self.records.append({name: body[name] for name in fields})
        return JSONResponse({"ok": True})
