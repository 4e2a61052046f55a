"""Cross-site request forgery: when a state-changing request may be trusted.

A request that changes state (every method but GET, HEAD and OPTIONS) must

1. come from the hub's own origin. ``Sec-Fetch-Site``, when the browser sends it, must be
   ``same-origin`` (or ``none``: the user typed it); ``Origin``, when sent, must name the
   host the request was sent to (its ``Host`` header). A page on another port of the same
   host is another origin but the same *site*, so SameSite=Lax cookies go with its
   requests: only this check stops it. A client that sends neither header (curl, a script)
   passes this step and is held by the next;
2. carry a token a page of another origin cannot read: its session's (``X-CSRF-Token``
   header, or the form field ``csrf_token``), or for the login form the one made from its
   pre-session cookie (a signed double submit).

:class:`hub.auth.AccessMiddleware` applies both to every such request but the ones
that carry their own signature (the SMS one-tap links, Twilio's callbacks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
HEADER: Final = "X-CSRF-Token"
FIELD: Final = "csrf_token"
MAX_FORM_BYTES: Final = 64 * 1024  # the largest form a page of the hub posts, with room
# Requests that answer for their own signature, not for a session or its token.
EXEMPT_PREFIXES: Final = ("/a/", "/api/alerts/twilio/")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def token(key: bytes, purpose: str, value: str) -> str:
    """The token of a session id (``purpose`` "session") or a login nonce ("login")."""
    mac = hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison; an absent token is never right."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def _netloc(scheme: str, host: str, port: int | None) -> str:
    default = _DEFAULT_PORTS.get(scheme)
    return host.lower() if port in (None, default) else f"{host.lower()}:{port}"


def foreign_origin(headers: Mapping[bytes, bytes], scheme: str) -> str | None:
    """Why the request comes from another origin than the hub's; None when it may be the
    hub's own (or a client that says nothing, held by its token)."""
    site = headers.get(b"sec-fetch-site")
    if site is not None and site not in (b"same-origin", b"none"):
        return f"Sec-Fetch-Site is {site.decode('latin-1')!r}, not same-origin"
    origin = headers.get(b"origin")
    if origin is None:
        return None
    text = origin.decode("latin-1")
    host = headers.get(b"host", b"").decode("latin-1")
    try:
        parts = urlsplit(text)
        theirs = _netloc(parts.scheme, parts.hostname or "", parts.port)
        ours_parts = urlsplit(f"{scheme}://{host}")
        ours = _netloc(scheme, ours_parts.hostname or "", ours_parts.port)
    except ValueError:
        return f"Origin {text!r} is not a URL"
    # the scheme is not compared: behind a TLS proxy the hub itself is spoken to in http
    if not parts.hostname or theirs != ours:
        return f"Origin {text!r} is not this hub ({host or 'no Host header'})"
    return None
