"""``coldchain dashboards build SITE_CONFIG --out DIR``: Grafana dashboards (JSON) and
provisioning files generated from a site config (see docs/grafana.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from coldchain.profiles.options import add_profiles_argument

if TYPE_CHECKING:
    from dashboards.grafana.datasources import DatasourceKey

CHOICES: dict[str, tuple[DatasourceKey, ...]] = {
    "prometheus": ("prometheus",),
    "flux": ("flux",),
    "both": ("prometheus", "flux"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    b = sub.add_parser(
        "build",
        help="write Grafana dashboards and provisioning files",
        description="Write Grafana dashboards (an overview, one per site, fleet health) as JSON "
        "under DIR/dashboards, and Grafana's provisioning files for the datasources and "
        "dashboard providers under DIR/provisioning (see docs/grafana.md). Prints each file "
        "written.",
    )
    b.add_argument("config", metavar="SITE_CONFIG", help="the site config")
    b.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    b.add_argument(
        "--datasource",
        choices=sorted(CHOICES),
        default="both",
        help="prometheus (VictoriaMetrics / Prometheus), flux (InfluxDB 2) or both (default)",
    )
    b.add_argument(
        "--prometheus-url",
        metavar="URL",
        help="VictoriaMetrics URL for Grafana (default: the config's store, else :8428)",
    )
    b.add_argument(
        "--influx-url",
        metavar="URL",
        help="InfluxDB 2 URL for Grafana (default: the config's store, else :8086)",
    )
    b.add_argument(
        "--dashboards-path",
        metavar="PATH",
        help="the directory Grafana reads DIR/dashboards from; providers load PATH/<datasource> "
        "(default: /var/lib/grafana/dashboards/coldchain)",
    )
    add_profiles_argument(b)


def run(args: argparse.Namespace) -> int:
    from coldchain.config.errors import InvalidConfigError
    from coldchain.config.loader import check_site_file
    from coldchain.profiles.options import load_profiles
    from dashboards.grafana.build import DEFAULT_DASHBOARDS_PATH, BuildOptions, render, write

    try:
        profiles = load_profiles(args)
    except InvalidConfigError as exc:
        sys.stderr.write(f"device profiles: {exc}\n")
        return 1
    result = check_site_file(args.config, profiles)
    if result.config is None:
        for e in result.errors:
            sys.stderr.write(f"error: {e.format()}\n")
        n = len(result.errors)
        sys.stderr.write(
            f"{args.config}: {n} error{'s' if n != 1 else ''}; no dashboards written\n"
        )
        return 1
    urls: dict[DatasourceKey, str] = {}
    if args.prometheus_url:
        urls["prometheus"] = args.prometheus_url
    if args.influx_url:
        urls["flux"] = args.influx_url
    options = BuildOptions(
        datasources=CHOICES[args.datasource],
        urls=urls,
        dashboards_path=args.dashboards_path or DEFAULT_DASHBOARDS_PATH,
    )
    written = write(args.out, render(result.config, profiles, options))
    for path in written:
        sys.stdout.write(f"{path}\n")
    sys.stdout.write(f"{len(written)} files written under {args.out}\n")
    return 0
