"""Builders of the cloud notifiers (SMS providers, webhook, group robots) from their
settings: :data:`BUILDERS`, by kind, part of the registry of every kind
(:data:`alerts.notifiers.factory.BUILDERS`), and :func:`build` for one of them.

Secrets are read here, once, so a missing one stops the hub at start-up with the notifier
and the setting named, not at the first alarm. The values stay in :class:`SecretStr`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alerts.notifiers.aliyun import AliyunNotifier
from alerts.notifiers.base import BuildContext, Notifier
from alerts.notifiers.robots import DingTalkNotifier, WeComNotifier
from alerts.notifiers.tencent import TencentNotifier
from alerts.notifiers.twilio import TwilioNotifier
from alerts.notifiers.webhook import WebhookNotifier
from coldchain.config import notify as cfg

if TYPE_CHECKING:
    import httpx


def aliyun(s: cfg.AliyunSms, ctx: BuildContext) -> Notifier:
    return AliyunNotifier(
        id=s.id,
        access_key_id=s.access_key_id,
        access_key_secret=ctx.secret(s.id, "access_key_secret", s.access_key_secret),
        sign_name=s.sign_name,
        templates={str(kind): code for kind, code in s.templates.items()},
        region=s.region,
        endpoint=s.endpoint,
        timeout=s.timeout,
        client=ctx.client,
    )


def tencent(s: cfg.TencentSms, ctx: BuildContext) -> Notifier:
    return TencentNotifier(
        id=s.id,
        secret_id=s.secret_id,
        secret_key=ctx.secret(s.id, "secret_key", s.secret_key),
        sdk_app_id=s.sdk_app_id,
        sign_name=s.sign_name,
        templates={str(kind): code for kind, code in s.templates.items()},
        region=s.region,
        endpoint=s.endpoint,
        timeout=s.timeout,
        client=ctx.client,
    )


def twilio(s: cfg.TwilioSms, ctx: BuildContext) -> Notifier:
    return TwilioNotifier(
        id=s.id,
        account_sid=s.account_sid,
        auth_token=ctx.secret(s.id, "auth_token", s.auth_token),
        from_number=s.from_number,
        messaging_service_sid=s.messaging_service_sid,
        endpoint=s.endpoint,
        status_callback=ctx.status_callback,
        timeout=s.timeout,
        client=ctx.client,
    )


def webhook(s: cfg.Webhook, ctx: BuildContext) -> Notifier:
    key = None if s.secret is None else ctx.secret(s.id, "secret", s.secret)
    return WebhookNotifier(id=s.id, url=s.url, secret=key, timeout=s.timeout, client=ctx.client)


def dingtalk(s: cfg.DingTalkRobot, ctx: BuildContext) -> Notifier:
    key = None if s.secret is None else ctx.secret(s.id, "secret", s.secret)
    return DingTalkNotifier(id=s.id, url=s.url, secret=key, timeout=s.timeout, client=ctx.client)


def wecom(s: cfg.WeComRobot, ctx: BuildContext) -> Notifier:
    return WeComNotifier(id=s.id, url=s.url, timeout=s.timeout, client=ctx.client)


BUILDERS: dict[str, Callable[[Any, BuildContext], Notifier]] = {
    "aliyun": aliyun,
    "tencent": tencent,
    "twilio": twilio,
    "webhook": webhook,
    "dingtalk": dingtalk,
    "wecom": wecom,
}
"""Cloud notifier kind -> its builder."""


def build(
    settings: cfg.Notifier,
    *,
    base_dir: Path | None = None,
    client: httpx.AsyncClient | None = None,
    status_callback: str | None = None,
) -> Notifier:
    """The cloud notifier ``settings`` describes. ``base_dir`` resolves relative ``file:``
    secrets; ``client`` is shared (and left open) instead of one client per notifier;
    ``status_callback`` is the URL Twilio reports delivery to (ignored by the others).
    Raises SecretError naming the notifier and setting when a secret cannot be read."""
    builder = BUILDERS.get(settings.type)
    if builder is None:
        raise ValueError(
            f"notifier {settings.id}: type {settings.type!r} is not a cloud notifier "
            f"(this factory builds {', '.join(BUILDERS)}; {settings.type} is built elsewhere)"
        )
    return builder(settings, BuildContext(base_dir, client, status_callback))
