"""Twilio Programmable Messaging stand-in: ``POST /2010-04-01/Accounts/{sid}/Messages.json``.

Checks, with Twilio's error shape (``{"code", "message", "more_info", "status"}``): HTTP
basic auth with the account SID and auth token (401, code 20003); the URL's account is the
authenticated one (404, 20404); a form body with ``To`` (21604), ``Body`` (21602) and
``From`` (21603) or ``MessagingServiceSid``; ``To`` in E.164 (400, 21211); ``From`` one of
the account's numbers (21606), the messaging service the account's (21705); the body within
1600 characters (21617). Answers 201 with a message resource (``sid``, ``status: queued``,
``num_segments``, counted GSM-7 for ASCII and UCS-2 otherwise: an approximation).

It also calls back as Twilio does, signed with ``X-Twilio-Signature``: :meth:`report`
(delivery status to the message's ``StatusCallback``) and :meth:`inbound` (an SMS to one of
the account's numbers, to any URL).

Records: ``{"to", "from", "messaging_service_sid", "text", "status_callback",
"provider_ref"}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from coldchain.config.notify import TwilioSms
from tests.smsfakes.base import Fake


def callback_signature(url: str, form: dict[str, str], token: str) -> str:
    """``X-Twilio-Signature`` as Twilio computes it (independent of the notifier)."""
    data = url
    for name in sorted(form):
        data += name + form[name]
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


async def form_of(request: Request) -> dict[str, str]:
    """A form body's fields (parsed here: starlette's parser needs python-multipart)."""
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


def _segments(text: str) -> int:
    single, multi = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // multi)


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class TwilioFake(Fake):
    """api.twilio.com at ``url``: one account, one number, one messaging service."""

    name = "twilio"

    def __init__(self, *, number: str = "+15005550006") -> None:
        super().__init__()
        self.account_sid = _sid("AC")
        self.auth_token = secrets.token_hex(16)
        self.number = number
        self.messaging_service_sid = _sid("MG")
        self.messages: dict[str, dict[str, Any]] = {}

    def settings(self, secret_dir: Path, *, secret: str | None = None, **fields: Any) -> TwilioSms:
        """Settings of a notifier pointing here, its token in a file under ``secret_dir``."""
        nid = fields.pop("id", "twilio-test")
        path = secret_dir / f"{nid}.secret"
        path.write_text(self.auth_token if secret is None else secret, encoding="utf-8")
        values: dict[str, Any] = {
            "id": nid,
            "account_sid": self.account_sid,
            "auth_token": f"file:{path}",
            "from_number": self.number,
            "endpoint": self.url,
            "timeout": "5s",
        }
        return TwilioSms.model_validate(values | fields)

    def routes(self, app: FastAPI) -> None:
        app.add_api_route("/2010-04-01/Accounts/{sid}/Messages.json", self.handle, methods=["POST"])

    def error(self, status: int, code: int, message: str) -> JSONResponse:
        self.reject(str(code), message)
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return JSONResponse(body, status_code=status)

    def error_response(self) -> Response:
        return self.error(503, 20503, "Service Unavailable")

    def throttle_response(self) -> Response:
        return self.error(429, 20429, "Too Many Requests")

    def authenticated(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            scheme.lower() == "basic"
            and hmac.compare_digest(user, self.account_sid)
            and hmac.compare_digest(password, self.auth_token)
        )

    async def handle(self, request: Request, sid: str) -> Response:
        injected = await self.begin(request)
        if injected is not None:
            return injected
        if not self.authenticated(request):
            return self.error(401, 20003, "Authenticate")
        if sid != self.account_sid:
            return self.error(
                404, 20404, f"The requested resource {request.url.path} was not found"
            )
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return self.error(400, 21602, "Message body is required.")
        return self.check(await form_of(request))

    def check(self, form: dict[str, str]) -> Response:
        """Messages.json's own checks, then the message resource."""
        to, text = form.get("To", ""), form.get("Body", "")
        sender, service = form.get("From"), form.get("MessagingServiceSid")
        if not to:
            return self.error(400, 21604, "A 'To' phone number is required.")
        if not text:
            return self.error(400, 21602, "Message body is required.")
        if not sender and not service:
            return self.error(400, 21603, "A 'From' phone number is required.")
        if not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            return self.error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if sender and sender != self.number:
            return self.error(
                400,
                21606,
                f"The From phone number {sender} is not a valid, SMS-capable inbound phone "
                "number or short code for your account.",
            )
        if service and service != self.messaging_service_sid:
            return self.error(400, 21705, "Invalid Messaging Service Sid")
        if len(text) > 1600:
            return self.error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        sid = _sid("SM")
        now = format_datetime(datetime.now(UTC), usegmt=True)
        message = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": sender,
            "messaging_service_sid": service,
            "body": text,
            "status": "queued" if sender else "accepted",
            "num_segments": str(_segments(text)),
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.messages[sid] = message | {"status_callback": form.get("StatusCallback")}
        self.records.append(
            {
                "to": to,
                "from": sender,
                "messaging_service_sid": service,
                "text": text,
                "status_callback": form.get("StatusCallback"),
                "provider_ref": sid,
            }
        )
        return JSONResponse(message, status_code=201)

    async def _post_signed(self, url: str, form: dict[str, str]) -> int:
        headers = {"X-Twilio-Signature": callback_signature(url, form, self.auth_token)}
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, data=form, headers=headers)
        return response.status_code

    async def report(self, sid: str, status: str = "delivered", error_code: str = "") -> int:
        """POST a status callback for message ``sid`` to its StatusCallback; the receiver's
        HTTP status."""
        message = self.messages[sid]
        url = message["status_callback"]
        if not url:
            raise ValueError(f"message {sid} was sent without a StatusCallback")
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": message["from"] or self.number,
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message["to"],
        }
        if error_code:
            form["ErrorCode"] = error_code
        return await self._post_signed(url, form)

    async def inbound(self, url: str, sender: str, text: str) -> int:
        """POST an inbound SMS from ``sender`` to the account's number, as Twilio would to
        the number's webhook ``url``; the receiver's HTTP status."""
        sid = _sid("SM")
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": text,
            "From": sender,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": str(_segments(text)),
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": self.number,
        }
        return await self._post_signed(url, form)
