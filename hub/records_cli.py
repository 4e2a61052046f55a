"""``coldchain records verify DATA_DIR``: the audit trail's chain recomputed
(:func:`hub.records.verify_audit`), what differs named, the chain's head printed."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="records_command", required=True, metavar="ACTION")
    verify = sub.add_parser(
        "verify",
        help="recompute the audit trail's chain and name any record that differs",
        description="Recompute the hub's audit trail link by link (DATA_DIR/hub.db) and name "
        "every record that was changed, removed or written around the hub, and any "
        "append-only trigger that is missing. Prints the chain's head (the last record's "
        "link), to compare with the one on a printed daily log. Exit status 1 if anything "
        "differs. The file is opened read-only.",
    )
    verify.add_argument(
        "data_dir", type=Path, metavar="DATA_DIR", help="the hub's data dir (holds hub.db)"
    )
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        type=anchor,
        metavar="ID:LINK",
        help="a record's link as printed (a daily log's audit head); repeatable",
    )


def anchor(text: str) -> tuple[int, str]:
    """``ID:LINK``: a record id and its 64 hex digits."""
    rid, _, link = text.partition(":")
    if not rid.isdigit() or len(link) != 64 or any(c not in "0123456789abcdefABCDEF" for c in link):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give RECORD_ID:LINK, the link in 64 hex digits"
        )
    return int(rid), link


def run(args: argparse.Namespace) -> int:
    from hub.records import verify_audit  # here, not when the parser is built

    db_path = args.data_dir / "hub.db"
    if not db_path.is_file():
        print(f"{db_path}: no such file: give the hub's data dir", file=sys.stderr)
        return 2
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            check = verify_audit(db, dict(args.anchor))
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        print(f"{db_path}: cannot be read: {exc}", file=sys.stderr)
        return 2
    for f in check.findings:
        print(f"differs: {f}")
    head = f"record {check.head[0]}, link {check.head[1]}" if check.head else "none"
    n = len(check.findings)
    verdict = "verifies clean" if not n else f"{n} finding{'s' if n != 1 else ''}"
    print(f"audit trail: {check.records} records, {verdict}; head: {head}")
    return 1 if n else 0
