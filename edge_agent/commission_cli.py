"""``coldchain modbus scan|read|set``: commissioning on the bus, run on the Pi.

Needs only the agent's install (pymodbus with pyserial, and tqdm for the progress bar). The
work is in :mod:`edge_agent.commission`; this module parses, prints and exits 0, 1 (the
device said no, or nothing answered) or 2 (bad arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from coldchain.profiles.options import add_profiles_argument, load_profiles

DESCRIPTION = """\
Commission Modbus devices with the gateway's own serial port or network: find which unit ids
answer at which baud and which device profile fits each (scan), read a device's values and
raw registers (read), and change its address, baud or calibration offsets through its
profile's configuration registers (set). Stop the agent first if it polls the same line:
two masters on one RS-485 line garble each other.

Examples:
  coldchain modbus scan --port /dev/ttyUSB0
  coldchain modbus scan --port /dev/ttyUSB0 --baud 4800,9600,19200 --parity N,E --first
  coldchain modbus scan --host 192.168.1.50 --units 1-32
  coldchain modbus read --port /dev/ttyUSB0 --baud 9600 --unit 1 --profile xy-md02
  coldchain modbus read --port /dev/ttyUSB0 --unit 1 --table holding --address 0x0101 --count 4
  coldchain modbus set --port /dev/ttyUSB0 --unit 1 --profile xy-md02 unit_id=7

See docs/commissioning.md for the technician's whole day."""


def _int(text: str) -> int:
    return int(text, 0)  # 257, 0x0101


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"{text}: give seconds, more than 0 and at most 60")
    return value


def _host(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if colon and port.isdigit() and host and not host.endswith(":"):
        return host.strip("[]"), int(port)
    return text.strip("[]"), 502


def _link_arguments(parser: argparse.ArgumentParser, *, scan: bool) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="DEV", help="serial port, e.g. /dev/ttyUSB0 (RTU)")
    where.add_argument(
        "--host",
        metavar="HOST[:PORT]",
        type=_host,
        help="Modbus TCP device or TCP-to-RTU gateway (port 502 unless given)",
    )
    parser.add_argument(
        "--baud",
        default="9600,4800,19200" if scan else "9600",
        help="baud rate" + ("s to try, in order (default: 9600,4800,19200)" if scan else ""),
    )
    parser.add_argument(
        "--parity",
        default="N",
        help="parit" + ("ies to try: N, E, O (default: N)" if scan else "y: N, E or O"),
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="the longest a device may take to answer, in seconds (default: the exchange's "
        "time on the wire at the baud plus 0.1 s; 1 s over TCP)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="modbus_command", required=True, metavar="ACTION")
    scan = sub.add_parser(
        "scan",
        help="find the devices on a line and which profile fits each",
        description="Probe every unit id at every baud and parity given (holding register "
        "0, read only: nothing is written), then try every Modbus profile on each device "
        "that answered and say which fits and how sure (sure, likely, ambiguous, unknown). "
        "A first pass waits only as long as the exchange takes on the wire; the addresses "
        "after which a late or garbled reply came are probed again with the whole timeout: "
        "247 addresses at 9600 baud take about 9 s per baud and parity. Exit 1 if no device "
        "answered.",
    )
    _link_arguments(scan, scan=True)
    scan.add_argument(
        "--units",
        default="1-247",
        metavar="LIST",
        help="unit ids to probe, e.g. 1-247 or 1,5,10-20 (default: 1-247)",
    )
    scan.add_argument(
        "--first",
        action="store_true",
        help="stop after the first baud and parity at which a device answered",
    )
    scan.add_argument("--expect", type=int, metavar="N", help="stop once N devices have answered")
    scan.add_argument(
        "--no-identify", action="store_true", help="only find addresses; try no profile"
    )
    scan.add_argument("--json", action="store_true", help="print the result as JSON")
    add_profiles_argument(scan)
    scan.set_defaults(modbus_run=_scan)

    read = sub.add_parser(
        "read",
        help="read a device: its profile's points decoded, or raw registers",
        description="With --profile: every point of the profile, decoded (value, unit), "
        "with its raw registers and what a fault sentinel means; then the profile's "
        "configuration registers. With --table and --address: raw registers or bits. "
        "Exit 1 if the device does not answer.",
    )
    _link_arguments(read, scan=False)
    read.add_argument("--unit", type=_int, required=True, metavar="ID", help="unit id")
    what = read.add_mutually_exclusive_group(required=True)
    what.add_argument("--profile", metavar="ID", help="decode with this device profile")
    what.add_argument(
        "--table", choices=("coil", "discrete", "input", "holding"), help="raw: which table"
    )
    read.add_argument("--address", type=_int, default=0, metavar="N", help="raw: first address")
    read.add_argument("--count", type=_int, default=1, metavar="N", help="raw: how many")
    add_profiles_argument(read)
    read.set_defaults(modbus_run=_read)

    put = sub.add_parser(
        "set",
        help="write configuration registers (unit id, baud, offsets) and read them back",
        description="Write NAME=VALUE through the profile's configuration registers "
        "(unit_id, baud, parity, temperature_offset, humidity_offset, as the profile has "
        "them), read each back, and say when the device acts on it: at once, or only after "
        "a power cycle. The unit id is written after the others, the baud or parity last. "
        "A new unit id that another device already answers on is refused unless --force. "
        "Exit 1 if a write is refused or does not read back.",
    )
    _link_arguments(put, scan=False)
    put.add_argument("--unit", type=_int, required=True, metavar="ID", help="unit id now")
    put.add_argument("--profile", required=True, metavar="ID", help="the device's profile")
    put.add_argument("settings", nargs="+", metavar="NAME=VALUE", help="e.g. unit_id=7")
    put.add_argument(
        "--force", action="store_true", help="write a unit id even if another device has it"
    )
    add_profiles_argument(put)
    put.set_defaults(modbus_run=_set)


def run(args: argparse.Namespace) -> int:
    from edge_agent.modbus_io import quiet_pymodbus

    quiet_pymodbus()
    try:
        return int(asyncio.run(args.modbus_run(args)))
    except _UsageError as exc:
        print(f"coldchain modbus {args.modbus_command}: {exc}", file=sys.stderr)
        return 2


class _UsageError(Exception):
    pass


def _settings(args: argparse.Namespace, *, many: bool) -> list[Any]:
    from edge_agent.scan import LineSetting, parse_bauds, parse_choices

    try:
        bauds = parse_bauds(args.baud)
        parities = parse_choices(args.parity, "NEO", "parity")
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    if not many and (len(bauds) > 1 or len(parities) > 1):
        raise _UsageError("give one --baud and one --parity")
    return [LineSetting(b, p) for b in bauds for p in parities]


def _link(args: argparse.Namespace) -> Any:
    from edge_agent.scan import default_timeout, rtu_link, tcp_link

    if args.host is not None:
        host, port = args.host
        return tcp_link(host, port, args.timeout or 1.0)
    setting = _settings(args, many=False)[0]
    timeout = args.timeout or default_timeout(setting.baud, setting.parity)
    return rtu_link(args.port, setting, max(timeout, 0.3))  # read/set: no hurry


def _profiles(args: argparse.Namespace) -> Any:
    from coldchain.config.errors import InvalidConfigError

    try:
        return load_profiles(args)
    except InvalidConfigError as exc:
        raise _UsageError(str(exc)) from None


def _modbus_profile(args: argparse.Namespace) -> Any:
    from edge_agent.commission import modbus_profile

    try:
        return modbus_profile(_profiles(args), args.profile)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


async def _scan(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from coldchain.protocol.commands import scan_lines
    from edge_agent.commission import scan_report
    from edge_agent.modbus_io import ReadError
    from edge_agent.scan import parse_units, scan_rtu, scan_tcp

    try:
        units = parse_units(args.units)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    if args.expect is not None and args.expect < 1:
        raise _UsageError("--expect is at least 1")
    settings = _settings(args, many=True) if args.host is None else []
    profiles = None if args.no_identify else _profiles(args)
    total = len(units) * max(len(settings), 1)
    bar = tqdm(total=total, unit="probe", file=sys.stderr, disable=None, leave=False)

    def progress(n: int, what: str) -> None:
        bar.update(n)
        if what:
            bar.set_postfix_str(what, refresh=False)

    try:
        if args.host is not None:
            host, port = args.host
            result = await scan_tcp(
                host,
                port,
                units,
                wait=args.timeout or 1.0,
                expect=args.expect,
                progress=progress,
            )
        else:
            result = await scan_rtu(
                args.port,
                settings,
                units,
                wait=args.timeout,
                first=args.first,
                expect=args.expect,
                progress=progress,
            )
    except ReadError as exc:
        bar.close()
        print(f"coldchain modbus scan: {exc.message}", file=sys.stderr)
        return 1
    bar.close()
    doc = await scan_report(result, profiles, lambda found: _found_link(args, found))
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print("\n".join(scan_lines(doc)))
    return 0 if doc["devices"] else 1


def _found_link(args: argparse.Namespace, found: Any) -> Any:
    from edge_agent.scan import rtu_link, tcp_link

    if found.setting is None:
        host, port = args.host
        return tcp_link(host, port, args.timeout or 1.0)
    return rtu_link(args.port, found.setting, max(args.timeout or 0.0, 0.3))


async def _read(args: argparse.Namespace) -> int:
    from edge_agent.modbus_io import ReadError

    if args.table is not None and not 1 <= args.count <= 125:
        raise _UsageError("--count runs from 1 to 125")
    profile = _modbus_profile(args) if args.table is None else None
    link = _link(args)
    try:
        if profile is None:
            return await _read_raw(args, link)
        return await _read_profile(link, args.unit, profile)
    except ReadError as exc:
        print(f"coldchain modbus read: {exc.message}", file=sys.stderr)
        return 1
    finally:
        link.close()


async def _read_raw(args: argparse.Namespace, link: Any) -> int:
    from coldchain.profiles.schema import Table

    values = await link.read(_request(args, Table(args.table)))
    for i, v in enumerate(values):
        a = args.address + i
        shown = str(int(v)) if args.table in ("coil", "discrete") else f"{v:#06x} {v}"
        print(f"{args.table} {a} ({a:#06x}): {shown}")
    return 0


async def _read_profile(link: Any, unit: int, profile: Any) -> int:
    """Every point decoded, with its raw words; then the configuration registers. Exit 1
    if no read got an answer (a wrong address or baud), 0 otherwise."""
    from coldchain.protocol.commands import read_lines
    from edge_agent.commission import read_report

    doc = await read_report(link, unit, profile)
    print("\n".join(read_lines(doc)))
    if not doc["answered"]:
        print(f"unit {unit} did not answer: check its address, baud and parity", file=sys.stderr)
        return 1
    return 0


def _request(args: argparse.Namespace, table: Any) -> Any:
    from edge_agent.modbus_io import Request

    if not 0 <= args.address <= 65535 or args.address + args.count > 65536:
        raise _UsageError("--address and --count must stay within 0..65535")
    return Request(table, args.address, args.count, args.unit)


async def _set(args: argparse.Namespace) -> int:
    from edge_agent.commission import plan_settings, write_settings
    from edge_agent.modbus_io import ReadError
    from edge_agent.scan import probe

    profile = _modbus_profile(args)
    try:
        items = plan_settings(profile, args.settings)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    link = _link(args)
    try:
        new_unit = next((int(v) for r, v, _ in items if r.name == "unit_id"), None)
        if new_unit is not None and new_unit != args.unit and not args.force:
            taken = await probe(link, new_unit)
            if taken is not None and taken != "garbled":
                print(
                    f"coldchain modbus set: unit {new_unit} already answers on this line "
                    "(two devices on one address garble each other); choose another, or "
                    "--force",
                    file=sys.stderr,
                )
                return 1
        written = await write_settings(link, args.unit, items)
    except ReadError as exc:
        print(f"coldchain modbus set: {exc.message}", file=sys.stderr)
        return 1
    finally:
        link.close()
    bad = 0
    for w in written:
        back = "-" if w.read_back is None else f"{w.read_back:#06x}"
        ok = w.confirmed or (w.read_back is None and "reconnect" in w.note)
        bad += not ok
        state = "ok" if ok else "NOT CONFIRMED"
        print(
            f"{w.register.name} = {w.value:g}: wrote {w.word:#06x} to holding "
            f"{w.register.address:#06x}, read back {back}: {state}"
            + (f"; {w.note}" if w.note else "")
        )
        if w.register.note:
            print(f"    profile note: {w.register.note}")
    if any(w.register.takes_effect == "after_power_cycle" for w in written):
        print("Switch the device off and on for the settings marked 'after a power cycle'.")
    return 1 if bad else 0
