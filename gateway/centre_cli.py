"""``coldchain broker config`` and ``coldchain ca``: the centre's broker configuration and
its TLS certificates (``docs/security.md``).

Light at import (argparse only): the parsers are built with every ``coldchain`` command; the
work is imported when an action runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coldchain.profiles.options import add_profiles_argument, load_profiles

BROKER_DESCRIPTION = """\
Generate the centre's broker configuration from the site config: DIR/mosquitto.conf
(Mosquitto with the dynamic security plugin, no anonymous access, persistence, TCP_NODELAY,
a packet size limit that fits the largest legal batch, queue limits sized for a hub away for
a while; each number explained in the file and in docs/security.md) and
DIR/dynamic-security.json (the plugin's initial state: the broker's admin identity, the
hub's and a read-only tools identity, with their roles). The admin's and the hub's
passwords go to DATA_DIR/broker-admin-password and DATA_DIR/broker-hub-password (mode
0600), where `coldchain gateway` and `coldchain hub` find them; the tools identity's
password is printed once. Run again, it writes mosquitto.conf only and keeps
DIR/dynamic-security.json (every gateway's identity) and every password; --force makes new
identities, and every gateway must then be provisioned again."""


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "The centre's MQTT broker."
    sub = parser.add_subparsers(dest="broker_command", required=True, metavar="ACTION")
    conf = sub.add_parser(
        "config",
        help="write mosquitto.conf and the dynamic security plugin's initial state",
        description=BROKER_DESCRIPTION,
    )
    conf.add_argument("config", metavar="CONFIG", help="the site config (YAML)")
    conf.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write")
    conf.add_argument(
        "--listen",
        default="0.0.0.0:1883",
        metavar="HOST:PORT",
        help="the listener (default: 0.0.0.0:1883)",
    )
    conf.add_argument(
        "--persistence",
        type=Path,
        default=Path("/var/lib/mosquitto"),
        metavar="DIR",
        help="the broker's persistence directory (default: /var/lib/mosquitto)",
    )
    conf.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="the hub's data dir (default: hub.data_dir)"
    )
    conf.add_argument(
        "--plugin", type=Path, metavar="FILE", help="mosquitto_dynamic_security.so (found)"
    )
    conf.add_argument(
        "--force",
        action="store_true",
        help="new identities even if DIR/dynamic-security.json exists (gateways: provision again)",
    )
    conf.add_argument(
        "--tls-cert",
        type=Path,
        metavar="FILE",
        help="the broker's TLS certificate (coldchain ca issue, or your own): a TLS listener",
    )
    conf.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key")
    conf.add_argument(
        "--client-ca",
        type=Path,
        metavar="DIR",
        help="mutual TLS: every client presents a certificate from the CA in DIR (coldchain ca "
        "init), whose common name is its identity; gateways get theirs in their bundle",
    )
    add_profiles_argument(conf)


def run_broker(args: argparse.Namespace) -> int:
    from coldchain.config.errors import InvalidConfigError
    from coldchain.config.loader import load_site_config
    from gateway.broker import READER_USER, write_broker_config
    from gateway.ca import CaError

    try:
        cfg = load_site_config(args.config, load_profiles(args))
    except InvalidConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        print(f"coldchain broker: --listen {args.listen!r} is not HOST:PORT", file=sys.stderr)
        return 2
    data_dir = args.data_dir or Path(cfg.hub.data_dir)
    if (args.tls_cert is None) != (args.tls_key is None):
        print("coldchain broker: give --tls-cert and --tls-key together", file=sys.stderr)
        return 2
    tls = None if args.tls_cert is None else (args.tls_cert, args.tls_key)
    if args.client_ca is not None and tls is None:
        print("coldchain broker: --client-ca needs --tls-cert and --tls-key", file=sys.stderr)
        return 2
    for f in tls or ():
        if not f.is_file():
            print(f"coldchain broker: {f}: no such file", file=sys.stderr)
            return 1
    try:
        files = write_broker_config(
            cfg,
            args.out,
            data_dir,
            listen=(host, int(port)),
            persistence=args.persistence,
            plugin=args.plugin,
            source=str(args.config),
            force=args.force,
            tls=tls,
            client_ca=args.client_ca,
        )
    except (OSError, CaError) as exc:
        print(f"coldchain broker: {exc}", file=sys.stderr)
        return 1
    if files.reader is None:
        print(f"wrote {files.conf}; kept {files.state} (every identity and password as it was)")
        print(f"start or restart the broker with: mosquitto -c {files.conf}")
        return 0
    print(f"wrote {files.conf} and {files.state}")
    print(f"the broker's admin password: {files.admin_password}")
    print(f"the hub's broker password: {files.hub_password}")
    user, password = files.reader
    print(f"read-only tools identity: {user}, password {password} (shown once, stored hashed)")
    if args.client_ca is not None:
        print(f"mutual TLS: the admin's and the hub's client certificates in {data_dir}; the")
        print(f"tools identity's {args.out / READER_USER}.crt and .key")
    print(f"start the broker with: mosquitto -c {files.conf}")
    return 0


CA_DESCRIPTION = """\
The centre's private certificate authority, so that gateways connect to the broker with
mqtts:// and verify it: 'init DIR' makes DIR/ca.key (mode 0600) and DIR/ca.crt; 'issue DIR
--host NAME --out PREFIX' makes the broker's certificate (PREFIX.crt, PREFIX.key) for every
name and address gateways use to reach it. Then: coldchain broker config --tls-cert
PREFIX.crt --tls-key PREFIX.key, and uplink.ca_file: DIR/ca.crt in the site config (each
gateway's bundle carries it). With mutual TLS (coldchain broker config --client-ca), 'client DIR
--name NAME --out PREFIX' issues a client certificate for the broker identity NAME; gateways
get theirs from coldchain gateway provision."""


def add_ca_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = CA_DESCRIPTION
    sub = parser.add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    init = sub.add_parser(
        "init",
        help="make a new CA: DIR/ca.crt and DIR/ca.key",
        description="Make a new private CA (ECDSA P-256) in DIR. Refuses to replace one.",
    )
    init.add_argument("dir", type=Path, metavar="DIR", help="where the CA lives")
    init.add_argument("--name", default="coldchain CA", help="the CA's common name")
    init.add_argument("--days", type=int, default=3650, help="validity (default: 3650)")
    issue = sub.add_parser(
        "issue",
        help="the broker's certificate, signed by the CA in DIR",
        description="Issue a server certificate for the broker, naming every host name and "
        "IP address the gateways connect to (each --host); they verify it as a browser does.",
    )
    _signed_by_the_ca(issue)
    issue.add_argument(
        "--host",
        action="append",
        required=True,
        metavar="NAME",
        help="a host name or IP address of the broker; repeatable",
    )
    client = sub.add_parser(
        "client",
        help="a client certificate for a broker identity (mutual TLS), signed by the CA in DIR",
        description="Issue a client certificate whose common name is the broker identity NAME "
        "(a tool of your own, say). coldchain gateway provision issues gateways' by itself.",
    )
    _signed_by_the_ca(client)
    client.add_argument("--name", required=True, help="the broker identity (its username)")


def _signed_by_the_ca(parser: argparse.ArgumentParser) -> None:
    """DIR, --out PREFIX and --days of a certificate the CA in DIR signs."""
    parser.add_argument("dir", type=Path, metavar="DIR", help="the CA's directory")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="PREFIX", help="writes PREFIX.crt, PREFIX.key"
    )
    parser.add_argument("--days", type=int, default=825, help="validity (default: 825)")


def run_ca(args: argparse.Namespace) -> int:
    from gateway.ca import (
        CaError,
        init_ca,
        issue_client,
        issue_server,
        pair,
        write_client,
    )

    if args.days < 1:
        print(f"coldchain ca: --days {args.days}: at least 1", file=sys.stderr)
        return 2
    try:
        if args.ca_command == "init":
            crt, key = init_ca(args.dir, name=args.name, days=args.days)
            print(f"CA certificate {crt} (for uplink.ca_file and every bundle)")
            print(f"CA key {key} (mode 0600: keep it safe, off the broker if you can)")
        elif args.ca_command == "client":
            if any(p.exists() for p in pair(args.out)):
                raise CaError(f"{args.out}.crt or .key exists: choose another --out")
            cert = issue_client(args.dir, args.name, days=args.days)
            crt, key = write_client(args.out, cert)
            print(f"certificate {crt} for {args.name}, key {key}, until {cert.not_after:%Y-%m-%d}")
        else:
            issued = issue_server(args.dir, args.host, args.out, days=args.days)
            until = f"{issued.not_after:%Y-%m-%d}"
            print(f"certificate {issued.cert}, key {issued.key}, valid until {until}")
            print(f"next: coldchain broker config --tls-cert {issued.cert} --tls-key {issued.key}")
    except (CaError, OSError) as exc:
        print(f"coldchain ca: {exc}", file=sys.stderr)
        return 1
    return 0
