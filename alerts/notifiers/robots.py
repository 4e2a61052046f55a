"""Group robots: a DingTalk custom robot and a WeCom (企业微信) group robot.

Both take ``{"msgtype": "text", "text": {"content": ...}}`` at their webhook URL (which
carries the robot's ``access_token`` or ``key``) and answer ``{"errcode": 0, "errmsg": "ok"}``
on success, with HTTP 200 either way. A DingTalk robot with "加签" (signing) set also wants
``&timestamp=<ms>&sign=<s>``, where ``s`` is the URL-encoded base64 HMAC-SHA256, keyed with
the robot's ``SEC...`` secret, of ``timestamp + "\\n" + secret``; DingTalk refuses a timestamp
more than an hour off. Robots post to a group, so ``Sms.to`` is ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import quote_plus

import httpx
from pydantic import SecretStr

from alerts.notifiers.http import HttpSender, http_failure, json_object
from coldchain.sms.types import Delivery, SendError, Sms

log = logging.getLogger(__name__)


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """The base64 HMAC-SHA256 of ``timestamp + "\\n" + secret`` (before URL-encoding)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def text_message(text: str) -> bytes:
    """The robots' text message body."""
    doc = {"msgtype": "text", "text": {"content": text}}
    return json.dumps(doc, ensure_ascii=False).encode()


class _Robot:
    """What both robots share: the body, the errcode answer, the HTTP."""

    texts_phones = False
    provider = ""
    retry_codes: frozenset[int] = frozenset()

    def __init__(
        self, *, id: str, url: str, timeout: float, client: httpx.AsyncClient | None
    ) -> None:
        self.id = id
        self._url = url
        self._http = HttpSender(id, timeout=timeout, client=client)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, host={httpx.URL(self._url).host!r})"

    def url(self) -> str:
        """Where to post now."""
        return self._url

    async def send(self, sms: Sms) -> Delivery:
        """Post ``sms.text`` to the group; accepted when the robot answers errcode 0."""
        response = await self._http.request(
            "POST",
            self.url(),
            content=text_message(sms.text),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        body = json_object(response)
        if response.status_code != 200 or body is None or "errcode" not in body:
            raise http_failure(self.id, response, "no errcode in the answer")
        code = body["errcode"]
        if code == 0:
            log.debug("%s: %s posted", self.id, sms.ref)
            return Delivery(self.id, "accepted")
        raise SendError(
            self.id,
            f"{self.provider} refused {sms.ref}: errcode {code}: {str(body.get('errmsg'))[:300]}",
            retryable=code in self.retry_codes,
        )

    async def aclose(self) -> None:
        await self._http.aclose()


class DingTalkNotifier(_Robot):
    """A DingTalk custom robot, signed when it has a secret."""

    provider = "DingTalk"
    retry_codes = frozenset({-1, 130101, 410100})  # system busy; sending too fast

    def __init__(
        self,
        *,
        id: str,
        url: str,
        secret: SecretStr | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(id=id, url=url, timeout=timeout, client=client)
        self._secret = secret
        self._clock = clock

    def url(self) -> str:
        if self._secret is None:
            return self._url
        ts = int(self._clock() * 1000)
        sign = quote_plus(dingtalk_sign(ts, self._secret.get_secret_value()))
        return f"{self._url}{'&' if '?' in self._url else '?'}timestamp={ts}&sign={sign}"


class WeComNotifier(_Robot):
    """A WeCom group robot (its URL's ``key`` is its credential)."""

    provider = "WeCom"
    retry_codes = frozenset({-1, 45009})  # system busy; api freq out of limit

    def __init__(
        self,
        *,
        id: str,
        url: str,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(id=id, url=url, timeout=timeout, client=client)
