"""The ``coldchain`` command line.

The one module of the core that names the other packages, and only inside functions: each
subcommand imports the package that does the work lazily (``simulator``, ``edge_agent``,
``hub``, ...) so ``coldchain config check`` on a Pi stays light and an agent-only install
never needs the hub's dependencies (tests/test_imports.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from coldchain import __version__
from coldchain.profiles.options import add_profiles_argument, load_profiles

Handler = Callable[[argparse.Namespace], int]


def _config_push(args: argparse.Namespace) -> int:
    from hub.config_push import run

    return run(args)


def _config_check(args: argparse.Namespace) -> int:
    from coldchain.config.errors import InvalidConfigError
    from coldchain.config.loader import check_site_file

    try:
        profiles = load_profiles(args)
    except InvalidConfigError as exc:
        print(f"device profiles: {exc}", file=sys.stderr)
        return 1
    status = 0
    for file in args.files:
        result = check_site_file(file, profiles)
        for e in result.errors:
            print(f"error: {e.format()}", file=sys.stderr)
        for w in result.warnings:
            print(f"warning: {w.format()}", file=sys.stderr)
        if result.errors:
            status = 1
            n = len(result.errors)
            note = "" if result.cross_checked else "; references are checked once these are fixed"
            print(f"{file}: {n} error{'s' if n != 1 else ''}{note}", file=sys.stderr)
        else:
            assert result.config is not None
            cfg = result.config
            devices = sum(len(g.devices) for g in cfg.gateways)
            rooms = sum(len(s.rooms) for s in cfg.sites)
            print(
                f"{file}: ok: {len(cfg.sites)} sites, {rooms} rooms, {len(cfg.gateways)} "
                f"gateways, {devices} devices, {len(result.warnings)} warnings"
            )
    return status


def _config_schema(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter

    from coldchain.config.site import SiteConfig
    from coldchain.profiles.schema import Profile

    schema = TypeAdapter(Profile).json_schema() if args.profile else SiteConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0


def _profiles_list(args: argparse.Namespace) -> int:
    from coldchain.config.errors import InvalidConfigError

    try:
        registry = load_profiles(args)
    except InvalidConfigError as exc:
        print(f"device profiles: {exc}", file=sys.stderr)
        return 1
    for p in registry:
        print(f"{p.id:24} {p.protocol:7} {p.vendor} {p.model} ({len(p.points)} points)")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from simulator.cli import run

    return run(args)


def _agent(args: argparse.Namespace) -> int:
    from edge_agent.cli import run

    return run(args)


def _modbus(args: argparse.Namespace) -> int:
    from edge_agent.commission_cli import run

    return run(args)


def _hub(args: argparse.Namespace) -> int:
    from hub.cli import run

    return run(args)


def _alerts(args: argparse.Namespace) -> int:
    from alerts.cli import run

    return run(args)


def _dashboards(args: argparse.Namespace) -> int:
    from dashboards.cli import run

    return run(args)


def _gateway(args: argparse.Namespace) -> int:
    from gateway.cli import run

    return run(args, audit=_hub_audit)


def _broker(args: argparse.Namespace) -> int:
    from gateway.centre_cli import run_broker

    return run_broker(args)


def _ca(args: argparse.Namespace) -> int:
    from gateway.centre_cli import run_ca

    return run_ca(args)


def _hub_audit(state: Any, actor: str, action: str, obj: str, after: dict[str, Any]) -> None:
    """One record in the audit trail of the hub whose state is ``state`` (hub.db or a
    PostgreSQL database: :data:`coldchain.statedb.StateTarget`)."""
    from hub.audit import AuditLog

    if isinstance(state, Path):
        state.parent.mkdir(parents=True, exist_ok=True)
    log = AuditLog(state)
    try:
        log.record(actor=actor, action=action, obj=obj, after=after)
    finally:
        log.close()


def _records(args: argparse.Namespace) -> int:
    from hub.records_cli import run

    return run(args)


def _backup(args: argparse.Namespace) -> int:
    from hub.backup_cli import run_backup

    return run_backup(args)


def _restore(args: argparse.Namespace) -> int:
    from hub.backup_cli import run_restore

    return run_restore(args)


def _records_command(sub: Any) -> None:
    """``coldchain records``, ``backup`` and ``restore``: the hub's records kept as evidence."""
    from hub.backup_cli import (
        BACKUP_DESCRIPTION,
        RESTORE_DESCRIPTION,
        add_backup_arguments,
        add_restore_arguments,
    )

    made = sub.add_parser(
        "backup",
        help="back up the hub's data dir, online, and restore-test the backup",
        description=BACKUP_DESCRIPTION,
    )
    add_backup_arguments(made)
    made.set_defaults(handler=_backup)
    back = sub.add_parser(
        "restore",
        help="restore a backup into an empty data dir (or --test it)",
        description=RESTORE_DESCRIPTION,
    )
    add_restore_arguments(back)
    back.set_defaults(handler=_restore)
    records = sub.add_parser(
        "records",
        help="the hub's records: verify that the audit trail and the readings were not changed",
        description="The hub's records kept as evidence. 'coldchain records verify DATA_DIR' "
        "recomputes the audit trail's chain and the store's hourly reading seals, and names "
        "every record, and every hour and series of readings, changed, removed or written "
        "around the hub.",
    )
    from hub.records_cli import add_arguments

    add_arguments(records)
    records.set_defaults(handler=_records)


def _users(args: argparse.Namespace) -> int:
    from hub.users_cli import run

    return run(args)


def _demo(args: argparse.Namespace) -> int:
    from hub.demo import run

    return run(args)


class HelpFormatter(argparse.HelpFormatter):
    """Fills each paragraph of a description or epilog on its own (a blank line separates
    them); a paragraph whose lines are indented (commands, examples) is printed as written.
    An option's name is never broken at its hyphens (``--victoria-metrics-data`` stays whole)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = textwrap.dedent(text).strip("\n").split("\n\n")
        return "\n\n".join(
            textwrap.indent(p, indent)
            if p.startswith(" ")
            else textwrap.fill(
                " ".join(p.split()),
                width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
                break_long_words=False,
            )
            for p in paragraphs
        )


class Parser(argparse.ArgumentParser):
    """An argument parser whose help keeps paragraphs; every subcommand's parser is one too
    (``add_subparsers`` makes parsers of the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


DESCRIPTION = """\
Cold-chain monitoring. Gateways (Raspberry Pis in cold stores and beside the sorting line)
read temperature, humidity and door sensors over Modbus and MQTT, keep every reading on disk
until the centre has it, and stream it to the hub, which stores readings, raises alerts by
SMS and serves a web UI.

Run 'coldchain COMMAND --help' for a command's options. 'coldchain demo' runs everything on
one machine."""


DEMO_DESCRIPTION = """\
The whole system on one machine, with no external service: the simulator serves the example
county network (every Modbus device a real slave, the MQTT sensors publishing), an embedded
MQTT broker stands in for the centre's (unless --broker), an agent runs per gateway, and the
hub stores into SQLite under DIR and serves the web UI and API at --listen. Every --every
seconds it prints each room and what the hub received. Ctrl-C stops it.

The web UI's user is 'admin', with its password in DIR/hub/admin-password. The example
county's alert messages go to DIR/hub/sms-outbox.jsonl instead of phones. The simulator's
control URL (printed at start) injects faults."""


def _implied_action(argv: list[str]) -> list[str]:
    """``coldchain agent CONFIG ...`` is short for ``coldchain agent run CONFIG ...``."""
    from edge_agent.cli import ACTIONS, IMPLIED_ACTION

    if argv[:1] == ["agent"] and (len(argv) == 1 or argv[1] not in (*ACTIONS, "-h", "--help")):
        return [argv[0], IMPLIED_ACTION, *argv[1:]]
    return argv


def _fleet_commands(sub: Any) -> None:
    """``coldchain modbus`` (on a Pi), ``coldchain gateway``, ``broker`` and ``ca`` (at the
    centre): the technicians' commands."""
    from edge_agent.commission_cli import DESCRIPTION as MODBUS_DESCRIPTION
    from edge_agent.commission_cli import add_arguments as modbus_arguments

    modbus = sub.add_parser(
        "modbus",
        help="commissioning on the bus: scan for devices, read them, set their address",
        description=MODBUS_DESCRIPTION,
    )
    modbus_arguments(modbus)
    modbus.set_defaults(handler=_modbus)

    gateway = sub.add_parser(
        "gateway",
        help="gateway identities on the broker: list, provision (a bundle), rotate, revoke",
    )
    from gateway.cli import add_arguments as gateway_arguments

    gateway_arguments(gateway)
    gateway.set_defaults(handler=_gateway)

    broker = sub.add_parser(
        "broker", help="the centre's broker: generate its config and identities"
    )
    from gateway.centre_cli import add_broker_arguments

    add_broker_arguments(broker)
    broker.set_defaults(handler=_broker)

    ca = sub.add_parser("ca", help="the centre's private CA: the broker's TLS certificate")
    from gateway.centre_cli import add_ca_arguments

    add_ca_arguments(ca)
    ca.set_defaults(handler=_ca)


def _add_push(cfg_sub: Any) -> None:
    from hub.config_push import DESCRIPTION as PUSH_DESCRIPTION
    from hub.config_push import add_arguments as push_arguments

    push = cfg_sub.add_parser(
        "push",
        help="put a new site config in place at the centre; see each gateway take it",
        description=PUSH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    push_arguments(push)
    push.set_defaults(handler=_config_push)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="coldchain", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"coldchain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cfg = sub.add_parser(
        "config",
        help="check a site config, push it to the gateways, print its JSON Schema",
        description="Check site config files, put a new one in place at the centre and see "
        "the gateways take it up, and print the JSON Schema of the site config or of a "
        "device profile.",
    )
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    chk = cfg_sub.add_parser(
        "check",
        help="report every error of site config files; exit 1 on any",
        description="Check each site config FILE against the device profiles and report every "
        "error at once, each with file:line, key path, the bad value and the fix, and the "
        "warnings (settings that are legal but probably wrong). Exit 1 if any file has an "
        "error, else 0.",
    )
    chk.add_argument("files", nargs="+", metavar="FILE", help="a site config (YAML)")
    add_profiles_argument(chk)
    chk.set_defaults(handler=_config_check)
    _add_push(cfg_sub)
    sch = cfg_sub.add_parser(
        "schema",
        help="print the JSON Schema of the site config",
        description="Print the JSON Schema (draft 2020-12) of the site config, for editors "
        "that complete and check YAML as you type; with --profile, of a device profile.",
    )
    sch.add_argument("--profile", action="store_true", help="the device profile schema instead")
    sch.set_defaults(handler=_config_schema)

    prof = sub.add_parser(
        "profiles",
        help="list the device profiles",
        description="List the device profiles (one register map or payload format per sensor "
        "or controller model): id, protocol, vendor, model and number of points.",
    )
    add_profiles_argument(prof)
    prof.set_defaults(handler=_profiles_list)

    from edge_agent.cli import AGENT_DESCRIPTION, AGENT_USAGE
    from edge_agent.cli import add_arguments as agent_arguments

    agent = sub.add_parser(
        "agent",
        help="run a gateway's agent, or print its Modbus request plan",
        usage=AGENT_USAGE,
        description=AGENT_DESCRIPTION,
    )
    agent_arguments(agent)
    agent.set_defaults(handler=_agent)

    from hub.cli import HUB_DESCRIPTION
    from hub.cli import add_arguments as hub_arguments

    hub = sub.add_parser(
        "hub",
        help="run the centre: ingest, store, alerts and SMS, web UI, API, /metrics",
        description=HUB_DESCRIPTION,
    )
    hub_arguments(hub)
    hub.set_defaults(handler=_hub)

    alerts = sub.add_parser(
        "alerts",
        help="alert tools: send a test SMS",
        description="Alert tools: check that the configured SMS notifiers reach a phone.",
    )
    from alerts.cli import add_arguments as alerts_arguments

    alerts_arguments(alerts)
    alerts.set_defaults(handler=_alerts)

    dash = sub.add_parser(
        "dashboards",
        help="Grafana dashboards and provisioning from a config",
        description="Grafana dashboards as code: generate the dashboards and Grafana's "
        "provisioning files from a site config.",
    )
    from dashboards.cli import add_arguments as dashboards_arguments

    dashboards_arguments(dash)
    dash.set_defaults(handler=_dashboards)

    _fleet_commands(sub)

    users = sub.add_parser(
        "users", help="the hub's users: add, list, remove, set a password, log out everywhere"
    )
    from hub.users_cli import add_arguments as users_arguments

    users_arguments(users)
    users.set_defaults(handler=_users)

    _records_command(sub)

    from hub.demo import add_arguments as demo_arguments

    demo = sub.add_parser(
        "demo",
        help="run the virtual county network and watch its rooms",
        description=DEMO_DESCRIPTION,
    )

    demo_arguments(demo)
    demo.set_defaults(handler=_demo)

    from simulator.cli import SIMULATE_DESCRIPTION, add_arguments

    sim = sub.add_parser(
        "simulate", help="run the virtual site from a site config", description=SIMULATE_DESCRIPTION
    )

    add_arguments(sim)
    sim.set_defaults(handler=_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_implied_action(list(sys.argv[1:] if argv is None else argv)))
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
