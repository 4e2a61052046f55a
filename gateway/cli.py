"""``coldchain gateway``: the centre's side of a gateway fleet's identities.

Light at import (argparse only): the parser is built with every ``coldchain`` command; the
broker is reached only when an action runs.

    coldchain gateway CONFIG list
    coldchain gateway CONFIG provision ID --out FILE
    coldchain gateway CONFIG rotate ID --out FILE
    coldchain gateway CONFIG retire ID
    coldchain gateway CONFIG revoke ID
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coldchain.profiles.options import add_profiles_argument, load_profiles

if TYPE_CHECKING:
    from coldchain.config.site import SiteConfig
    from gateway.dynsec import Fleet
    from gateway.keys import GatewayKeys
    from gateway.registry import Registry

DESCRIPTION = """\
Give each gateway its own identity on the centre's broker (Mosquitto's dynamic security
plugin), so that it may publish only its own telemetry, status, health and notices and hear
only its own acks and config; take it away again. Run on the centre as the broker's admin
identity: its password is read from --admin-password-file (default
DATA_DIR/broker-admin-password). Every change is recorded in the hub's audit trail (who,
when, which gateway and broker clients; never a password)."""

EPILOG = """\
examples:
  coldchain gateway site.yaml list
  coldchain gateway site.yaml provision gw-meilin --out gw-meilin.tar.gz
  coldchain gateway site.yaml rotate gw-meilin --out gw-meilin-2.tar.gz
  coldchain gateway site.yaml retire gw-meilin      # once the Pi runs the new bundle
  coldchain gateway site.yaml revoke gw-meilin      # a stolen or retired Pi"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("config", metavar="CONFIG", help="the site config (YAML)")
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="the broker as this machine reaches it (default: uplink.broker)",
    )
    parser.add_argument(
        "--admin-user", default="coldchain-admin", help="the broker's admin identity"
    )
    parser.add_argument(
        "--admin-password-file",
        type=Path,
        metavar="FILE",
        help="its password (default: DATA_DIR/broker-admin-password)",
    )
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="the hub's data dir (default: hub.data_dir)"
    )
    parser.add_argument(
        "--by", metavar="NAME", help="who does it, for the audit trail (default: your login)"
    )
    add_profiles_argument(parser)
    sub = parser.add_subparsers(dest="gateway_command", required=True, metavar="ACTION")
    sub.add_parser(
        "list",
        help="every gateway: state, last seen, agent version, broker clients",
        description="List the config's gateways and any other gateway with a broker "
        "identity: its state and last contact as the hub last saw them, its agent's version "
        "and its broker clients.",
    )
    for name, text in (
        ("provision", "a gateway's first identity, and its bundle"),
        ("rotate", "a new password for a gateway, the old one kept until retired"),
    ):
        p = sub.add_parser(
            name,
            help=text,
            description=f"Create {text}: the bundle FILE (.tar.gz, mode 0600) holds the "
            "gateway's config, its profiles, its broker password (shown nowhere else) and "
            "the CA certificate if the config names one.",
        )
        p.add_argument("gateway", metavar="ID", help="the gateway's id in CONFIG")
        p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the bundle")
    retire = sub.add_parser(
        "retire",
        help="end a rotation: delete every client of a gateway but the newest",
        description="End a rotation's overlap: the gateway's older broker clients are "
        "deleted and disconnected at once; the newest stays.",
    )
    retire.add_argument("gateway", metavar="ID", help="the gateway's id")
    revoke = sub.add_parser(
        "revoke",
        help="take a gateway's identity away: disconnected at once, refused after",
        description="Delete every broker client of a gateway and its role: the broker "
        "disconnects it at once and refuses it from then on. Its readings already stored "
        "stay; provision it again to let it back.",
    )
    revoke.add_argument("gateway", metavar="ID", help="the gateway's id")


# records a change in the hub's audit trail: (data dir, actor, action, object, after)
Audit = Callable[[Path, str, str, str, dict[str, Any]], None]


def run(args: argparse.Namespace, audit: Audit) -> int:
    """Run the action; ``audit`` records each change (the dispatch gives the hub's audit
    trail: this package does not import the hub)."""
    from coldchain.config.errors import InvalidConfigError
    from coldchain.config.loader import load_site_config
    from gateway.dynsec import DynSecError

    try:
        profiles = load_profiles(args)
        cfg = load_site_config(args.config, profiles)
    except InvalidConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    data_dir = args.data_dir or Path(cfg.hub.data_dir)
    try:
        return asyncio.run(_run(args, cfg, profiles, data_dir, audit))
    except (DynSecError, OSError, ValueError) as exc:
        print(f"coldchain gateway: {exc}", file=sys.stderr)
        return 1


async def _run(
    args: argparse.Namespace, cfg: SiteConfig, profiles: Any, data_dir: Path, audit: Audit
) -> int:
    from coldchain.config.site import broker_address
    from coldchain.protocol.topics import Topics
    from gateway.dynsec import DynSec, Fleet

    action: str = args.gateway_command
    if action in ("provision", "rotate"):
        if args.gateway not in {g.id for g in cfg.gateways}:
            known = ", ".join(sorted(g.id for g in cfg.gateways))
            raise ValueError(f"gateway {args.gateway!r} is not in {args.config} ({known})")
        if args.out.exists():
            raise ValueError(f"{args.out} exists: choose another --out, or remove it")
    url = args.broker or cfg.uplink.broker
    host, port, tls = broker_address(url)
    context = ssl.create_default_context(cafile=cfg.uplink.ca_file) if tls else None
    pw_file = args.admin_password_file or data_dir / "broker-admin-password"
    try:
        password = pw_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise OSError(f"the broker's admin password: {exc}") from None
    async with DynSec(host, port, args.admin_user, password, tls=context) as ds:
        fleet = Fleet(ds, Topics(cfg.uplink.prefix))
        if action == "list":
            await _list(fleet, cfg, data_dir)
            return 0
        return await _change(
            args, fleet, cfg=cfg, profiles=profiles, data_dir=data_dir, audit=audit
        )


async def _change(
    args: argparse.Namespace,
    fleet: Fleet,
    *,
    cfg: SiteConfig,
    profiles: Any,
    data_dir: Path,
    audit: Audit,
) -> int:
    from gateway.keys import GatewayKeys
    from gateway.registry import Registry

    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the broker
    keys = GatewayKeys(data_dir / "hub.db")
    registry = Registry(data_dir / "hub.db", [], health_timeout_s=cfg.hub.health_timeout)
    try:
        after = await _apply(args, fleet, keys=keys, registry=registry, cfg=cfg, profiles=profiles)
    finally:
        keys.close()
        registry.close()
    action, gw = args.gateway_command, args.gateway
    audit(data_dir, args.by or getpass.getuser(), f"gateway.{action}", f"gateway/{gw}", after)
    return 0


async def _apply(
    args: argparse.Namespace,
    fleet: Fleet,
    *,
    keys: GatewayKeys,
    registry: Registry,
    cfg: SiteConfig,
    profiles: Any,
) -> dict[str, Any]:
    """Do the action and say what it did; what the audit records of it."""
    from gateway.provision import change

    action, gw = args.gateway_command, args.gateway
    out = args.out if action in ("provision", "rotate") else None
    done = await change(
        action, gw, fleet=fleet, keys=keys, registry=registry, cfg=cfg, profiles=profiles, out=out
    )
    if action == "retire":
        print(f"gateway {gw}: retired {', '.join(done.deleted) or 'nothing'}")
    elif action == "revoke":
        print(f"gateway {gw}: revoked ({', '.join(done.deleted) or 'had no identity'})")
    else:
        assert done.identity is not None
        print(f"gateway {gw}: broker client {done.identity.username}, bundle {args.out}")
        for m in done.members:
            print(f"  {m}")
        if action == "rotate":
            print(f"the old password works until: coldchain gateway {args.config} retire {gw}")
    return done.after


async def _list(fleet: Fleet, cfg: SiteConfig, data_dir: Path) -> None:
    from gateway.registry import Registry

    clients = await fleet.clients()
    states = {}
    if (data_dir / "hub.db").exists():
        reg = Registry(data_dir / "hub.db", [], health_timeout_s=cfg.hub.health_timeout)
        try:
            states = {s.id: s for s in reg.all()}
        finally:
            reg.close()
    sites = {g.id: g.site for g in cfg.gateways}
    rows = [("gateway", "site", "state", "last seen", "agent", "broker clients")]
    for gw in sorted(set(sites) | set(clients)):
        s = states.get(gw)
        c = clients.get(gw)
        seen = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(s.last_seen_ms / 1000))
            if s and s.last_seen_ms
            else "never"
        )
        names = ", ".join(c.usernames) if c else "none: provision it"
        rows.append(
            (
                gw,
                sites.get(gw, "(not in the config)"),
                s.state if s else "unknown",
                seen,
                (s.version or "-") if s else "-",
                names,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
