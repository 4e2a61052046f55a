"""The ``coldchain`` command line.

This is the composition root: subcommands import the package that does the work lazily
(``simulator``, ``edge_agent``, the hub) so ``coldchain config check`` on a Pi stays light and
an agent-only install never needs the hub's dependencies.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from coldchain import __version__
from coldchain.profiles.options import add_profiles_argument, load_profiles

Handler = Callable[[argparse.Namespace], int]


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


def _hub(args: argparse.Namespace) -> int:
    from coldchain.hub.cli import run

    return run(args)


def _alerts(args: argparse.Namespace) -> int:
    from alerts.cli import run

    return run(args)


def _dashboards(args: argparse.Namespace) -> int:
    from dashboards.cli import run

    return run(args)


def _users(args: argparse.Namespace) -> int:
    from dashboards.auth import main as users_main

    return users_main(args.rest)


def _demo(args: argparse.Namespace) -> int:
    from coldchain.demo import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coldchain", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"coldchain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cfg = sub.add_parser("config", help="check a site config, print its JSON Schema")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    chk = cfg_sub.add_parser("check", help="report every error of site config files; exit 1 on any")
    chk.add_argument("files", nargs="+", metavar="FILE")
    add_profiles_argument(chk)
    chk.set_defaults(handler=_config_check)
    sch = cfg_sub.add_parser("schema", help="print the JSON Schema of the site config")
    sch.add_argument("--profile", action="store_true", help="the device profile schema instead")
    sch.set_defaults(handler=_config_schema)

    prof = sub.add_parser("profiles", help="list the device profiles")
    add_profiles_argument(prof)
    prof.set_defaults(handler=_profiles_list)

    agent = sub.add_parser("agent", help="run a gateway's agent, or print its request plan")
    from edge_agent.cli import add_arguments as agent_arguments

    agent_arguments(agent)
    agent.set_defaults(handler=_agent)

    hub = sub.add_parser("hub", help="run the centre: ingest, store, REST API")
    from coldchain.hub.cli import add_arguments as hub_arguments

    hub_arguments(hub)
    hub.set_defaults(handler=_hub)

    alerts = sub.add_parser("alerts", help="alert tools: send a test SMS")
    from alerts.cli import add_arguments as alerts_arguments

    alerts_arguments(alerts)
    alerts.set_defaults(handler=_alerts)

    dash = sub.add_parser("dashboards", help="Grafana dashboards and provisioning from a config")
    from dashboards.cli import add_arguments as dashboards_arguments

    dashboards_arguments(dash)
    dash.set_defaults(handler=_dashboards)

    users = sub.add_parser(
        "users",
        help="the hub's users: DATA_DIR add NAME --role ROLE | remove NAME | list",
        add_help=False,
    )
    users.add_argument("rest", nargs=argparse.REMAINDER)
    users.set_defaults(handler=_users)

    demo = sub.add_parser("demo", help="run the virtual county network and watch its rooms")
    from coldchain.demo import add_arguments as demo_arguments

    demo_arguments(demo)
    demo.set_defaults(handler=_demo)

    sim = sub.add_parser("simulate", help="run the virtual site from a site config")
    from simulator.cli import add_arguments

    add_arguments(sim)
    sim.set_defaults(handler=_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
