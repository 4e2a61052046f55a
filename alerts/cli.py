"""``coldchain alerts test-sms CONFIG --to NUMBER``: send a test message through the
configured notifiers (in failover order, as an alarm would go) and say what happened."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from coldchain.profiles.options import add_profiles_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    t = sub.add_parser(
        "test-sms",
        help="send a test SMS through the configured notifiers",
        description="Send a test message to NUMBER through the SMS notifiers of the site "
        "config (alerts.notifiers), in failover order as an alarm would go, and print the "
        "text and what each notifier answered. Exit 0 once one has sent it, 1 if every one "
        "failed.",
    )
    t.add_argument("config", metavar="CONFIG", help="the site config")
    t.add_argument("--to", required=True, metavar="NUMBER", help="E.164 number, e.g. +86138...")
    t.add_argument(
        "--notifier", metavar="ID", help="only this notifier (default: all SMS notifiers in order)"
    )
    t.add_argument(
        "--language",
        choices=("zh-CN", "en"),
        default="zh-CN",
        help="language of the message (default zh-CN)",
    )
    t.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="base of relative paths (default: hub.data_dir)",
    )
    add_profiles_argument(t)


def run(args: argparse.Namespace) -> int:
    import re

    from coldchain.config.errors import InvalidConfigError
    from coldchain.config.loader import load_site_config
    from coldchain.secrets import SecretError

    if not re.fullmatch(r"\+\d{6,15}", args.to):
        print(f"error: --to {args.to!r} is not an E.164 number; write e.g. +8613800000000")
        return 2
    try:
        cfg = load_site_config(args.config)
    except InvalidConfigError as exc:
        print(exc)
        return 1
    data_dir = args.data_dir or Path(cfg.hub.data_dir)
    try:
        return asyncio.run(_send(cfg, data_dir, args.to, args.notifier, args.language))
    except SecretError as exc:
        print(f"error: {exc}")
        return 1


async def _send(cfg: object, data_dir: Path, to: str, only: str | None, language: str) -> int:
    from alerts.notifiers.factory import build_all
    from coldchain.alerting.facts import Message
    from coldchain.alerting.messages import Language, render, template_params
    from coldchain.config.notify import SMS_TYPES
    from coldchain.config.site import SiteConfig
    from coldchain.sms.types import SendError, Sms

    assert isinstance(cfg, SiteConfig)
    settings = [n for n in cfg.alerts.notifiers if n.type in SMS_TYPES and only in (None, n.id)]
    if not settings:
        ids = ", ".join(n.id for n in cfg.alerts.notifiers) or "none configured"
        print(f"error: no SMS notifier {only or ''} in alerts.notifiers ({ids})")
        return 1
    notifiers = build_all(settings, base_dir=data_dir)
    now = time.time_ns() // 1_000_000
    lang: Language = "en" if language == "en" else "zh-CN"
    msg = Message(kind="test", alerts=(), now_ms=now, timezone=cfg.sites[0].timezone)
    sms = Sms(
        to=to,
        text=render(msg, lang),
        kind="test",
        ref=f"test-{now}",
        params=template_params(msg, lang),
    )
    print(f"text: {sms.text}")
    try:
        for n in notifiers:
            try:
                d = await n.send(sms)
            except SendError as exc:
                print(f"{n.id}: failed: {exc.detail}")
                continue
            ref = f" ({d.provider_ref})" if d.provider_ref else ""
            print(f"{n.id}: {d.status}{ref}, {d.parts} part(s)")
            return 0
        print("error: every notifier failed")
        return 1
    finally:
        for n in notifiers:
            await n.aclose()
