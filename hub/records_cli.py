"""``coldchain records verify DATA_DIR``: the audit trail's chain recomputed
(:func:`hub.records.verify_audit`) and the store's sealed readings recomputed hour by hour
(:func:`coldchain.store.sqlite.verify.verify_readings`); what differs named, both heads printed."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sized
from datetime import UTC, datetime
from pathlib import Path

from coldchain.statedb import STATE_HELP, StateConn, StateError, cli_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="records_command", required=True, metavar="ACTION")
    verify = sub.add_parser(
        "verify",
        help="recompute the audit trail's chain and the sealed readings; name what differs",
        description="Recompute the hub's audit trail link by link (DATA_DIR/hub.db) and the "
        "SQLite store's sealed readings hour by hour (DATA_DIR/store.db, or --store), and "
        "name every audit record changed, removed or written around the hub, every hour, "
        "series and seal whose readings differ from what was sealed (how many more or "
        "fewer), and every append-only trigger that is missing. Prints both chains' heads, "
        "to compare with the ones on a printed daily log. Exit status 1 if anything "
        "differs. The files are opened read-only (the state on PostgreSQL, --state: only "
        "read).",
    )
    verify.add_argument(
        "data_dir", type=Path, metavar="DATA_DIR", help="the hub's data dir (holds hub.db)"
    )
    verify.add_argument("--state", metavar="URL", help=STATE_HELP)
    verify.add_argument(
        "--store",
        type=Path,
        metavar="FILE",
        help="the SQLite store (default: DATA_DIR/store.db, when there is one)",
    )
    verify.add_argument(
        "--from",
        dest="start",
        type=when,
        metavar="DATE",
        help="check the readings from this UTC date or time (YYYY-MM-DD[THH:MM]) on",
    )
    verify.add_argument(
        "--to",
        dest="end",
        type=when,
        metavar="DATE",
        help="check the readings before this UTC date or time",
    )
    verify.add_argument(
        "--against",
        type=Path,
        metavar="BACKUP",
        help="a backup (coldchain backup's directory) or an older copy of the store: name "
        "each reading that differs from what was sealed, where that copy still matches the seal",
    )
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        type=anchor,
        metavar="ID:LINK",
        help="an audit record's link as printed (a daily log's audit head); repeatable",
    )
    verify.add_argument(
        "--seal-anchor",
        action="append",
        default=[],
        type=anchor,
        metavar="ID:LINK",
        help="a reading seal's link as printed (a daily log's seal head); repeatable",
    )


def anchor(text: str) -> tuple[int, str]:
    """``ID:LINK``: a record id and its 64 hex digits."""
    rid, _, link = text.partition(":")
    if not rid.isdigit() or len(link) != 64 or any(c not in "0123456789abcdefABCDEF" for c in link):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give RECORD_ID:LINK, the link in 64 hex digits"
        )
    return int(rid), link


def when(text: str) -> int:
    """A UTC date or time (``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM``) as epoch milliseconds."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a UTC date or time, e.g. 2026-12-01 or 2026-12-01T08:00"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


def _open(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


def run(args: argparse.Namespace) -> int:
    from hub.records import verify_audit  # here, not when the parser is built

    db_path = args.data_dir / "hub.db"
    if args.state is None and not db_path.is_file():
        print(f"{db_path}: no such file: give the hub's data dir", file=sys.stderr)
        return 2
    store = args.store if args.store is not None else args.data_dir / "store.db"
    if args.store is not None and not store.is_file():
        print(f"{store}: no such file: give the SQLite store's file", file=sys.stderr)
        return 2
    found: list[str] = []
    where = args.state or db_path
    try:
        conn = (
            StateConn.adopt(_open(db_path))
            if args.state is None
            else StateConn(cli_target(db_path, args.state))
        )
    except (sqlite3.DatabaseError, StateError, ValueError) as exc:
        print(f"{where}: cannot be read: {exc}", file=sys.stderr)
        return 2
    try:
        check = verify_audit(conn, dict(args.anchor))
    except conn.Error as exc:
        print(f"{where}: cannot be read: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    found += [str(f) for f in check.findings]
    head = f"record {check.head[0]}, link {check.head[1]}" if check.head else "none"
    lines = [f"audit trail: {check.records} records, {_verdict(check.findings)}; head: {head}"]
    if store.is_file():
        try:
            line, store_found = _readings(store, args)
        except sqlite3.DatabaseError as exc:
            print(f"{store}: cannot be read: {exc}", file=sys.stderr)
            return 2
        found += store_found
        lines.append(line)
    else:
        lines.append(f"readings: no SQLite store at {store} (a line-protocol store is not sealed)")
    for f in found:
        print(f"differs: {f}")
    print("\n".join(lines))
    return 1 if found else 0


def _readings(store: Path, args: argparse.Namespace) -> tuple[str, list[str]]:
    from tqdm import tqdm

    from coldchain.store.sqlite.verify import hour_label, verify_readings

    db = _open(store)
    bar = tqdm(unit="h", desc="sealed hours", file=sys.stderr, leave=False, disable=None)
    try:
        check = verify_readings(
            db, args.start, args.end, anchors=dict(args.seal_anchor), progress=bar.update
        )
    finally:
        bar.close()
        db.close()
    found = [f"{where}: {what}" for where, what in check.findings]
    if args.against is not None and check.spots:
        named, line = _against(store, args.against, check.spots)
        found += named
        if line:
            print(line, file=sys.stderr)
    if check.head is None:
        return "readings: nothing sealed yet (the hub seals each hour once it is over)", found
    head = check.head
    since = f" (sealed from {hour_label(check.sealed_from)})" if check.sealed_from else ""
    pending = f"; {check.pending} late readings wait for their addendum" if check.pending else ""
    line = (
        f"readings: {check.hours} hour{'' if check.hours == 1 else 's'}, "
        f"{check.readings} readings checked{since}, "
        f"{_verdict(found)}{pending}; head: seal {head.id} ({hour_label(head.hour_ms)}), "
        f"link {head.link}"
    )
    return line, found


def _verdict(findings: Sized) -> str:
    n = len(findings)
    return "verifies clean" if not n else f"{n} finding{'s' if n != 1 else ''}"


def _against(store: Path, against: Path, spots: list[tuple[int, int]]) -> tuple[list[str], str]:
    """The readings named against an older copy (a backup is restored to a scratch dir
    first); a line on the hours that copy could not speak for."""
    import tempfile

    from hub import backup
    from hub.records import name_readings

    with tempfile.TemporaryDirectory(prefix="coldchain-verify-") as scratch:
        copy = against
        if against.is_dir():
            unpacked = backup.extract(against, Path(scratch) / "data")
            if not unpacked.good:
                return [], f"{against}: cannot be used: {'; '.join(unpacked.problems[:3])}"
            copy = Path(scratch) / "data" / store.name
        if not copy.is_file():
            return [], f"{copy}: no such store to compare with"
        now, then = _open(store), _open(copy)
        try:
            named, unusable = name_readings(now, then, spots)
        finally:
            now.close()
            then.close()
    line = ""
    if unusable:
        line = (
            f"{against}: its copy of {', '.join(unusable)} does not match the seal either "
            "(made after the change?): readings there not named"
        )
    return [str(f) for f in named], line
