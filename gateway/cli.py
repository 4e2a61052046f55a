"""``coldchain gateway``: the centre's side of a gateway fleet's identities.

Light at import (argparse only): the parser is built with every ``coldchain`` command; the
broker is reached only when an action runs.

    coldchain gateway CONFIG list
    coldchain gateway CONFIG provision ID --out FILE
    coldchain gateway CONFIG rotate ID --out FILE
    coldchain gateway CONFIG retire ID
    coldchain gateway CONFIG revoke ID
    coldchain gateway CONFIG scan ID --bus BUS
    coldchain gateway CONFIG read ID --bus BUS --unit N --profile P
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coldchain.profiles.options import add_profiles_argument, load_profiles
from coldchain.statedb import StateTarget, state_exists, state_target

if TYPE_CHECKING:
    from coldchain.config.site import SiteConfig
    from gateway.configpush import ConfigState
    from gateway.dynsec import Fleet
    from gateway.keys import GatewayKeys
    from gateway.registry import Registry

DESCRIPTION = """\
Give each gateway its own identity on the centre's broker (Mosquitto's dynamic security
plugin), so that it may publish only its own telemetry, status, health and notices and hear
only its own acks and config; take it away again. Run on the centre as the broker's admin
identity: its password is read from --admin-password-file (default
DATA_DIR/broker-admin-password). Every change is recorded in the hub's audit trail (who,
when, which gateway and broker clients; never a password). 'scan' and 'read' ask a
gateway's agent to commission on its own bus, as the hub's identity."""

EPILOG = """\
examples:
  coldchain gateway site.yaml list
  coldchain gateway site.yaml provision gw-meilin --out gw-meilin.tar.gz
  coldchain gateway site.yaml rotate gw-meilin --out gw-meilin-2.tar.gz
  coldchain gateway site.yaml retire gw-meilin      # once the Pi runs the new bundle
  coldchain gateway site.yaml revoke gw-meilin      # a stolen or retired Pi
  coldchain gateway site.yaml scan gw-meilin --bus rs485 --units 1-16
  coldchain gateway site.yaml read gw-meilin --bus rs485 --unit 1 --profile xy-md02"""


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
        help="every gateway: state, last seen, agent version, config revision, broker clients",
        description="List the config's gateways and any other gateway with a broker "
        "identity: its state and last contact as the hub last saw them, its agent's version, "
        "the config revision last pushed to it and whether it runs it ('4 pending, runs 3'), "
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
    scan = sub.add_parser(
        "scan",
        help="scan one of a gateway's Modbus buses from here (its agent runs it)",
        description="Ask gateway ID's agent to scan its bus BUS, as 'coldchain modbus scan' "
        "does on the Pi, and print what it found and which profile fits each device. The "
        "agent stops polling that bus while the scan runs (tens of seconds per baud) and "
        "resumes after. Sent as the hub's broker identity, signed with the gateway's "
        "message key if it has one.",
    )
    _remote_arguments(scan)
    scan.add_argument("--units", metavar="LIST", help="unit ids, e.g. 1-32 (default: 1-247)")
    scan.add_argument("--baud", help="baud rates to try (default: the bus's own)")
    scan.add_argument("--parity", help="parities to try (default: the bus's own)")
    read = sub.add_parser(
        "read",
        help="read a device on one of a gateway's buses from here, decoded with a profile",
        description="Ask gateway ID's agent to read unit UNIT on its bus BUS with profile "
        "PROFILE, as 'coldchain modbus read' does on the Pi, and print the decoded points and "
        "configuration registers.",
    )
    _remote_arguments(read)
    read.add_argument("--unit", type=int, required=True, help="the device's unit id")
    read.add_argument("--profile", required=True, help="the device's profile")


def _remote_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("gateway", metavar="ID", help="the gateway's id")
    p.add_argument("--bus", required=True, help="the bus's id in the gateway's config")
    p.add_argument(
        "--hub-password-file",
        type=Path,
        metavar="FILE",
        help="the hub's broker password (default: DATA_DIR/broker-hub-password, if there)",
    )
    p.add_argument(
        "--wait", type=float, default=300.0, metavar="S", help="how long to wait (default 300)"
    )


# records a change in the hub's audit trail: (data dir, actor, action, object, after)
Audit = Callable[[StateTarget, str, str, str, dict[str, Any]], None]


def run(args: argparse.Namespace, audit: Audit) -> int:
    """Run the action; ``audit`` records each change (the dispatch gives the hub's audit
    trail: this package does not import the hub)."""
    from coldchain.config.errors import InvalidConfigError
    from coldchain.config.loader import load_site_config
    from gateway.ca import CaError
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
    except (CaError, DynSecError, OSError, ValueError) as exc:
        print(f"coldchain gateway: {exc}", file=sys.stderr)
        return 1


async def _run(
    args: argparse.Namespace, cfg: SiteConfig, profiles: Any, data_dir: Path, audit: Audit
) -> int:
    from functools import partial

    from coldchain.protocol.topics import Topics
    from gateway.broker import identity_tls
    from gateway.dynsec import fleet_on

    action: str = args.gateway_command
    if action in ("scan", "read"):
        return await _remote(args, cfg, data_dir)
    if action in ("provision", "rotate"):
        if args.gateway not in {g.id for g in cfg.gateways}:
            known = ", ".join(sorted(g.id for g in cfg.gateways))
            raise ValueError(f"gateway {args.gateway!r} is not in {args.config} ({known})")
        if args.out.exists():
            raise ValueError(f"{args.out} exists: choose another --out, or remove it")
    brokers = cfg.uplink.brokers_from(args.broker)
    pw_file = args.admin_password_file or data_dir / "broker-admin-password"
    try:
        password = pw_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise OSError(f"the broker's admin password: {exc}") from None
    topics = Topics(cfg.uplink.prefix)
    tls = partial(identity_tls, cfg.uplink.ca_file, data_dir, "admin")
    async with fleet_on(brokers, args.admin_user, password, topics, tls) as fleet:
        if action == "list":
            await _list(fleet, cfg, data_dir)
            return 0
        return await _change(
            args, fleet, cfg=cfg, profiles=profiles, data_dir=data_dir, audit=audit
        )


async def _remote(args: argparse.Namespace, cfg: SiteConfig, data_dir: Path) -> int:
    """``scan`` and ``read``: a command to the gateway's agent, its answer printed."""
    from coldchain.config.site import broker_address
    from coldchain.protocol.commands import Request, read_lines, scan_lines
    from coldchain.protocol.topics import Topics
    from gateway.broker import HUB_PASSWORD_FILE, HUB_USER, identity_tls
    from gateway.remote import (
        UnknownTargetError,
        message_key,
        new_command_id,
        send_command,
        target,
    )

    try:
        gw = target(cfg, args.gateway, args.bus)
    except UnknownTargetError as exc:
        raise ValueError(str(exc)) from None
    pw_file = args.hub_password_file or data_dir / HUB_PASSWORD_FILE
    password = pw_file.read_text(encoding="utf-8").strip() if pw_file.exists() else None
    key = message_key(state_target(cfg.hub.state, data_dir), gw.id)
    if args.gateway_command == "scan":
        req = Request(
            new_command_id(),
            "scan",
            args.bus,
            units=args.units,
            baud=args.baud,
            parity=args.parity,
        )
    else:
        req = Request(new_command_id(), "read", args.bus, unit=args.unit, profile=args.profile)
    host, port, tls = broker_address(args.broker or cfg.uplink.broker)
    context = identity_tls(cfg.uplink.ca_file, data_dir, "hub") if tls else None
    print(f"asked {gw.id} to {req.action} bus {req.bus}; waiting for its answer", file=sys.stderr)
    import aiomqtt

    try:
        reply = await send_command(
            req,
            gateway=gw.id,
            host=host,
            port=port,
            topics=Topics(cfg.uplink.prefix),
            username=(cfg.hub.username or HUB_USER) if password else None,
            password=password,
            tls=context,
            key=key,
            wait=args.wait,
        )
    except TimeoutError:
        print(
            f"coldchain gateway: no answer from {gw.id} in {args.wait:g} s (is it online, "
            "and its agent this version?)",
            file=sys.stderr,
        )
        return 1
    except aiomqtt.MqttError as exc:
        print(f"coldchain gateway: the broker at {host}:{port}: {exc}", file=sys.stderr)
        return 1
    if not reply.ok:
        print(f"coldchain gateway: {gw.id}: {reply.error}", file=sys.stderr)
        return 1
    assert reply.result is not None
    lines = scan_lines(reply.result) if req.action == "scan" else read_lines(reply.result)
    print("\n".join(lines))
    return 0


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
    state = state_target(cfg.hub.state, data_dir)
    keys = GatewayKeys(state)
    registry = Registry(state, [], health_timeout_s=cfg.hub.health_timeout)
    try:
        after = await _apply(
            args, fleet, keys=keys, registry=registry, cfg=cfg, profiles=profiles, data_dir=data_dir
        )
    finally:
        keys.close()
        registry.close()
    action, gw = args.gateway_command, args.gateway
    audit(state, args.by or getpass.getuser(), f"gateway.{action}", f"gateway/{gw}", after)
    return 0


async def _apply(
    args: argparse.Namespace,
    fleet: Fleet,
    *,
    keys: GatewayKeys,
    registry: Registry,
    cfg: SiteConfig,
    profiles: Any,
    data_dir: Path,
) -> dict[str, Any]:
    """Do the action and say what it did; what the audit records of it."""
    from gateway.broker import client_ca
    from gateway.provision import change

    action, gw = args.gateway_command, args.gateway
    out = args.out if action in ("provision", "rotate") else None
    ca = client_ca(data_dir)
    done = await change(
        action,
        gw,
        fleet=fleet,
        keys=keys,
        registry=registry,
        cfg=cfg,
        profiles=profiles,
        out=out,
        client_ca=ca,
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
        if "certificate_until" in done.after:
            until = done.after["certificate_until"][:10]
            print(f"its client certificate is valid until {until}: rotate the gateway before")
    if done.after.get("certificates_revoked"):
        print(
            f"certificates revoked in {ca}/crl.pem; the broker refuses them once it reloads "
            "it (deploy/centre does that by itself; by hand: systemctl reload, or SIGHUP)"
        )
        if action == "rotate":
            print(f"the old password works until: coldchain gateway {args.config} retire {gw}")
    return done.after


def config_column(state: ConfigState) -> str:
    """A gateway's config revision as ``list`` shows it: the latest pushed and whether it
    runs it (``3 applied``, ``4 pending, runs 3``, ``4 refused``), or ``-``."""
    if state.desired is None:
        return "-"
    text = f"{state.desired} {state.state}"
    if state.state != "applied" and state.applied is not None:
        text += f", runs {state.applied}"
    return text


async def _list(fleet: Fleet, cfg: SiteConfig, data_dir: Path) -> None:
    from gateway.configpush import Revisions
    from gateway.registry import Registry

    clients = await fleet.clients()
    states = {}
    configs: dict[str, str] = {}
    state = state_target(cfg.hub.state, data_dir)
    if state_exists(state):
        reg = Registry(state, [], health_timeout_s=cfg.hub.health_timeout)
        revisions = Revisions(state)
        try:
            states = {s.id: s for s in reg.all()}
            configs = {gw: config_column(revisions.state(gw)) for gw in revisions.gateways()}
        finally:
            reg.close()
            revisions.close()
    sites = {g.id: g.site for g in cfg.gateways}
    rows = [("gateway", "site", "state", "last seen", "agent", "config", "broker clients")]
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
                configs.get(gw, "-"),
                names,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
