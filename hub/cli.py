"""``coldchain hub CONFIG``: run the centre (ingest, store, alerts and SMS, web UI, API,
``/metrics``) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from coldchain.profiles.options import add_profiles_argument, load_profiles

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger(__name__)

HUB_DESCRIPTION = """\
Run the centre until SIGTERM or Ctrl-C, in one process:

  ingest     the gateways' telemetry from the central broker, each batch acknowledged to its
             gateway once stored; the gateway registry (online or offline, last health)
  store      the readings: SQLite in DIR, or InfluxDB / VictoriaMetrics (hub.store)
  alerts     the alert rules evaluated on the live stream; SMS and other notifiers
             (alerts.notifiers), escalation, acknowledgement by link or SMS reply
  web UI     live board, rooms, alerts, gateways, reports; login with roles
  API        REST API with OpenAPI docs at /docs; Prometheus metrics at /metrics

--role runs a part of this (repeat it for more: --role ingest --role web), so a site can run
several ingest and web workers, on several machines, beside one alert leader and its standby
(docs/availability.md):

  ingest     telemetry (shared among the ingest workers with hub.share_group), the store,
             acks; each stored batch handed to the alert leader through the broker
  alerts     the alert lifecycle where this process leads (one leader at a time, the others
             stand by), SMS, escalation; sealing, the daily backup, pruning
  web        the web UI and API; people's actions on alerts go to the leader

Every process serves /healthz and /metrics at --listen, the web role the UI and API too; a
process without the web role needs a --listen of its own beside one that has it on the same
machine. DIR holds hub.db (users, alerts, the
gateway registry, the audit trail; or hub.state names a PostgreSQL database) and the SQLite
store. The first start creates the user
'admin' and writes its password to DIR/admin-password; 'coldchain users DIR ...' adds more."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="the site config")
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="hub database, SQLite store and admin-password (default: hub.data_dir)",
    )
    parser.add_argument("--broker", metavar="URL", help="central broker (default: uplink.broker)")
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address of the web UI, API and /metrics (default: hub.listen)",
    )
    parser.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="the hub's broker password (default: hub.password_file, else "
        "DATA_DIR/broker-hub-password as `coldchain broker config` writes it, as "
        "coldchain-hub unless hub.username says otherwise)",
    )
    parser.add_argument(
        "--role",
        action="append",
        choices=("ingest", "alerts", "web"),
        dest="roles",
        metavar="ROLE",
        help="run only this part: ingest, alerts or web (repeatable; default: all three)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="start even if the broker lets clients without credentials publish on the "
        "gateways' topics (a test or a lab; never a site)",
    )
    add_profiles_argument(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    from coldchain.config.errors import InvalidConfigError
    from coldchain.config.loader import check_site_file

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        profiles = load_profiles(args)
    except InvalidConfigError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 1
    # The hub runs the whole check, warnings included, and logs them at start: a room whose
    # rules watch no room air (a profile that names no role) must not go unnoticed on a
    # running centre, only in `coldchain config check`.
    result = check_site_file(args.config, profiles)
    if result.config is None:
        print(f"{args.config}: {InvalidConfigError(result.errors)}", file=sys.stderr)
        return 1
    for w in result.warnings:
        log.warning("site config: %s", w.format())
    return asyncio.run(_main(args, result.config, profiles))


GC_THRESHOLDS = (10_000, 20, 20)
"""The collector's thresholds while the hub runs (CPython's defaults: 700, 10, 10)."""


def settle_gc() -> None:
    """Once the hub is built: what it built (the config, the evaluator's state of every
    series, the web routes) lives as long as the process, so collect once and freeze it
    out of the collector's passes (:func:`gc.freeze`), and collect young objects every
    10,000 allocations instead of every 700. Ingest allocates a few objects per reading,
    almost none of them in cycles; with 20,000 series a full pass over what start-up built
    is most of a collection's cost. ``bench/bench_ingest.py`` (quiet) measured about 6 %
    fewer hub CPU-seconds per reading from the freeze and 5 % more from the thresholds
    (``docs/benchmarks.md``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log.info(
        "garbage collector: %d start-up objects frozen, thresholds %s",
        gc.get_freeze_count(),
        gc.get_threshold(),
    )


async def _broker_secured(hub: Hub, *, insecure: bool) -> bool:
    """Refuse a broker (any of the standby brokers too) on which a client with no
    credentials can publish as a gateway (``gateway.broker.anonymous_publish_reaches``),
    unless ``insecure``."""
    from coldchain.config.site import broker_address
    from gateway.broker import anonymous_publish_reaches

    if insecure:
        log.warning("--insecure: the broker is not checked for anonymous publishing")
        return True
    for broker in hub.brokers:
        host, port, tls = broker_address(broker)
        found = await anonymous_publish_reaches(
            host,
            port,
            hub.topics,
            tls=hub.tls_context() if tls else None,
            username=hub.username,
            password=hub.password,
        )
        if found is None:
            log.warning(
                "broker %s: could not connect as the hub at start (down, or the hub's "
                "identity refused): not checked for anonymous publishing",
                broker,
            )
        elif found:
            print(
                f"coldchain hub: the broker {broker} lets a client with no credentials "
                "publish on the gateways' topics: anyone on its network could forge "
                "readings, acks and notices. Secure it (coldchain broker config, "
                "docs/security.md), or start with --insecure for a test or a lab.",
                file=sys.stderr,
            )
            return False
    return True


async def _main(args: argparse.Namespace, cfg: object, profiles: object) -> int:
    from coldchain.config.site import SiteConfig
    from coldchain.profiles.registry import ProfileRegistry
    from coldchain.store.base import StoreError
    from hub.leader import LeadershipLost
    from hub.service import ROLES, Hub

    assert isinstance(cfg, SiteConfig)
    assert isinstance(profiles, ProfileRegistry)
    from gateway.broker import HUB_PASSWORD_FILE, HUB_USER

    data_dir = args.data_dir or Path(cfg.hub.data_dir)
    pw_file = args.password_file or (Path(cfg.hub.password_file) if cfg.hub.password_file else None)
    username = cfg.hub.username
    if pw_file is None and (data_dir / HUB_PASSWORD_FILE).exists():  # `coldchain broker config`
        pw_file, username = data_dir / HUB_PASSWORD_FILE, username or HUB_USER
    try:
        hub = Hub(
            cfg,
            profiles,
            data_dir=data_dir,
            broker=args.broker,
            config_path=Path(args.config),
            listen=args.listen,
            username=username,
            password=pw_file.read_text().strip() if pw_file else None,
            roles=args.roles or ROLES,
        )
    except (OSError, ValueError) as exc:
        print(f"coldchain hub: {exc}", file=sys.stderr)
        return 1
    if not await _broker_secured(hub, insecure=args.insecure):
        return 1
    print(
        f"coldchain hub: API {hub.url}/docs, broker {hub.broker}, data {hub.data_dir}", flush=True
    )
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    settle_gc()
    try:
        await hub.run()
    except asyncio.CancelledError:
        print("stopped", flush=True)
    except (StoreError, LeadershipLost) as exc:  # e.g. a VictoriaMetrics that would drop
        # readings on arrival; the alert leader's lock no longer shown held (hub/leader.py)
        print(f"coldchain hub: {exc}", file=sys.stderr)
        return 1
    return 0
