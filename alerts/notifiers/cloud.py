"""Build a cloud notifier (SMS provider, webhook, group robot) from its settings.

Secrets are read here, once, so a missing one stops the hub at start-up with the notifier
and the setting named, not at the first alarm. The values stay in :class:`SecretStr`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from alerts.notifiers.aliyun import AliyunNotifier
from alerts.notifiers.base import Notifier
from alerts.notifiers.robots import DingTalkNotifier, WeComNotifier
from alerts.notifiers.tencent import TencentNotifier
from alerts.notifiers.twilio import TwilioNotifier
from alerts.notifiers.webhook import WebhookNotifier
from coldchain.config import notify as cfg
from coldchain.secrets import SecretError, resolve

CLOUD_TYPES = ("aliyun", "tencent", "twilio", "webhook", "dingtalk", "wecom")


def build(
    settings: cfg.Notifier,
    *,
    base_dir: Path | None = None,
    client: httpx.AsyncClient | None = None,
    status_callback: str | None = None,
) -> Notifier:
    """The notifier ``settings`` describes. ``base_dir`` resolves relative ``file:`` secrets;
    ``client`` is shared (and left open) instead of one client per notifier;
    ``status_callback`` is the URL Twilio reports delivery to (ignored by the others).
    Raises SecretError naming the notifier and setting when a secret cannot be read."""

    def secret(field: str, ref: str) -> SecretStr:
        try:
            return resolve(ref, base_dir=base_dir)
        except SecretError as exc:
            raise SecretError(f"notifier {settings.id}: {field}: {exc}") from None

    nid, timeout = settings.id, settings.timeout
    match settings:
        case cfg.AliyunSms():
            return AliyunNotifier(
                id=nid,
                access_key_id=settings.access_key_id,
                access_key_secret=secret("access_key_secret", settings.access_key_secret),
                sign_name=settings.sign_name,
                templates={str(kind): code for kind, code in settings.templates.items()},
                region=settings.region,
                endpoint=settings.endpoint,
                timeout=timeout,
                client=client,
            )
        case cfg.TencentSms():
            return TencentNotifier(
                id=nid,
                secret_id=settings.secret_id,
                secret_key=secret("secret_key", settings.secret_key),
                sdk_app_id=settings.sdk_app_id,
                sign_name=settings.sign_name,
                templates={str(kind): code for kind, code in settings.templates.items()},
                region=settings.region,
                endpoint=settings.endpoint,
                timeout=timeout,
                client=client,
            )
        case cfg.TwilioSms():
            return TwilioNotifier(
                id=nid,
                account_sid=settings.account_sid,
                auth_token=secret("auth_token", settings.auth_token),
                from_number=settings.from_number,
                messaging_service_sid=settings.messaging_service_sid,
                endpoint=settings.endpoint,
                status_callback=status_callback,
                timeout=timeout,
                client=client,
            )
        case cfg.Webhook():
            key = None if settings.secret is None else secret("secret", settings.secret)
            return WebhookNotifier(
                id=nid, url=settings.url, secret=key, timeout=timeout, client=client
            )
        case cfg.DingTalkRobot():
            key = None if settings.secret is None else secret("secret", settings.secret)
            return DingTalkNotifier(
                id=nid, url=settings.url, secret=key, timeout=timeout, client=client
            )
        case cfg.WeComRobot():
            return WeComNotifier(id=nid, url=settings.url, timeout=timeout, client=client)
    raise ValueError(
        f"notifier {nid}: type {settings.type!r} is not a cloud notifier "
        f"(this factory builds {', '.join(CLOUD_TYPES)}; {settings.type} is built elsewhere)"
    )
