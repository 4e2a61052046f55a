"""The HTTP every cloud notifier shares: one client, one timeout, failures as SendErrors.

Each notifier owns an :class:`httpx.AsyncClient` (or borrows an injected one, which it then
leaves open). A request that never gets an answer (refused, reset, timed out) is a
retryable :class:`~coldchain.sms.types.SendError` naming only the endpoint's host: URLs of
robots carry access tokens and signatures, so they stay out of messages.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from coldchain.sms.types import SendError

# httpx logs every request URL at INFO: robot URLs carry access tokens, provider queries
# carry phone numbers. Keep them out of the hub's log.
logging.getLogger("httpx").setLevel(logging.WARNING)

E164 = r"^\+[1-9]\d{5,14}$"
"""An international number as the notifiers take it: ``+``, country code, number."""


class HttpSender:
    """Requests for one notifier, with its timeout and its way of failing."""

    def __init__(
        self, notifier: str, *, timeout: float, client: httpx.AsyncClient | None = None
    ) -> None:
        self.notifier = notifier
        self.timeout = timeout
        self._own = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:
        return f"HttpSender(notifier={self.notifier!r}, timeout={self.timeout:g})"

    async def request(self, method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """Send; an unanswered request is a retryable SendError naming the host."""
        host = httpx.URL(url).host or str(url)
        try:
            return await self._client.request(method, url, timeout=self.timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise SendError(
                self.notifier, f"no answer from {host} within {self.timeout:g}s", retryable=True
            ) from exc
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise SendError(
                self.notifier, f"cannot reach {host}: {reason}", retryable=True
            ) from exc

    async def aclose(self) -> None:
        """Close the client if this sender made it."""
        if self._own:
            await self._client.aclose()


def retryable_status(status: int) -> bool:
    """Whether an HTTP status says "try again later": 429 and every 5xx."""
    return status == 429 or status >= 500


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The response body as a JSON object, or None when it is not one."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def http_failure(notifier: str, response: httpx.Response, what: str = "") -> SendError:
    """A SendError for an HTTP status the provider gave without a usable body."""
    host = response.request.url.host
    detail = f"HTTP {response.status_code} from {host}" + (f": {what}" if what else "")
    return SendError(notifier, detail, retryable=retryable_status(response.status_code))
