"""Proving the records were not changed (``coldchain records verify DATA_DIR``,
:mod:`hub.records_cli`).

The audit trail (:mod:`hub.audit`) is recomputed link by link from its first record. What is
reported, by record:

* a record whose content is not what was linked: changed after it was written;
* a gap in the record numbers: records removed (with their links);
* a link whose record is gone: a record removed, its link left;
* a record with no link: written around the hub (straight into the file);
* a missing append-only trigger: the trail can be edited until it is put back;
* a record whose link is not the one printed for it (``--anchor ID:LINK``, from a daily log):
  the trail up to it was rewritten and its links computed again, which the chain alone cannot
  show (it has no secret).

After a finding, checking goes on from the stored link, so one changed record is one finding,
not one for every record after it. The last link (the chain's head) is printed: compared with
the one on a printed daily log, it shows whether records were cut off the end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from coldchain.statedb import StateConn
from hub.audit import COLUMNS, GENESIS, PG_TRIGGERS, TRIGGERS, next_link


@dataclass(frozen=True, slots=True)
class Finding:
    """Something that differs: where (e.g. ``audit record 12``) and what."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(slots=True)
class AuditCheck:
    records: int = 0
    head: tuple[int, str] | None = None  # the last link: record id, hex
    findings: list[Finding] = field(default_factory=list)


def verify_audit(
    conn: StateConn | sqlite3.Connection, anchors: dict[int, str] | None = None
) -> AuditCheck:
    """Recompute the audit trail's chain in the hub database ``conn`` (SQLite or
    PostgreSQL); ``anchors`` (record id to link, hex, as printed on a daily log) must match
    the links stored."""
    db = StateConn.adopt(conn) if isinstance(conn, sqlite3.Connection) else conn
    found: list[Finding] = []
    tables = db.tables()
    names = db.triggers()
    found += [
        Finding(f"trigger {t}", "missing: the audit trail can be edited or deleted")
        for t in (TRIGGERS if db.kind == "sqlite" else PG_TRIGGERS)
        if t not in names and t.rsplit("_no_", 1)[0] in tables
    ]
    if "audit" not in tables:
        return AuditCheck(0, None, [*found, Finding("audit trail", "no audit table")])
    if "audit_chain" not in tables:
        found.append(Finding("audit trail", "not chained (the hub has not opened it since)"))
        (n,) = db.execute("SELECT count(*) FROM audit").fetchone()
        return AuditCheck(int(n), None, found)
    orphans = {
        int(i): bytes(link)
        for i, link in db.execute(
            "SELECT id, link FROM audit_chain WHERE id NOT IN (SELECT id FROM audit)"
        ).fetchall()
    }
    rows = db.execute(
        f"SELECT {', '.join('a.' + c.strip() for c in COLUMNS.split(','))}, c.link "  # noqa: S608 - constants
        "FROM audit a LEFT JOIN audit_chain c ON c.id = a.id ORDER BY a.id"
    )
    link: bytes | None = GENESIS  # None: unknown (the record before was removed with its link)
    last_id, head, count = 0, None, 0
    for *record, stored in rows:
        count += 1
        rid = int(record[0])
        if rid != last_id + 1:
            found += _removed(last_id + 1, rid - 1, orphans)
            link = orphans.get(rid - 1)
        if stored is None:
            found.append(Finding(f"audit record {rid}", "has no link: written around the hub"))
            last_id = rid
            continue
        linked = bytes(stored)
        if link is not None and next_link(link, tuple(record)) != linked:
            found.append(Finding(f"audit record {rid}", "changed after it was written"))
        link, last_id, head = linked, rid, (rid, linked.hex())
    found += _removed(last_id + 1, max(orphans, default=0), orphans)
    for rid, printed in sorted((anchors or {}).items()):
        row = db.execute("SELECT link FROM audit_chain WHERE id = ?", (rid,)).fetchone()
        if row is None:
            found.append(Finding(f"audit record {rid}", "gone, though a printed head names it"))
        elif bytes(row[0]).hex() != printed.lower():
            found.append(
                Finding(
                    f"audit record {rid}",
                    "its link is not the printed one: the trail up to it was rewritten",
                )
            )
    return AuditCheck(count, head, found)


def _removed(first: int, last: int, orphans: dict[int, bytes]) -> list[Finding]:
    """Findings for the records ``first``..``last``, which are gone: one per record whose link
    is still there, one for each run of records removed with their links."""
    out: list[Finding] = []
    run: list[int] = []
    for rid in [*range(first, last + 1), None]:
        if rid is not None and rid not in orphans:
            run.append(rid)
            continue
        if run:
            span = str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"
            out.append(
                Finding(f"audit records {span}", "removed with their links: the chain breaks there")
            )
            run = []
        if rid is not None:
            out.append(Finding(f"audit record {rid}", "removed (its link is still there)"))
    return out


def name_readings(
    now: sqlite3.Connection, then: sqlite3.Connection, spots: Iterable[tuple[int, int]]
) -> tuple[list[Finding], list[str]]:
    """The readings themselves that differ, for each (hour, series id) whose readings no
    longer match their seal (``spots`` of :class:`~coldchain.store.sqlite.verify.ReadingsCheck`),
    found against ``then``: an older copy of the store (a restored backup). ``then``'s copy of
    an hour is used only where it still matches that hour's seal; the hours where it does not
    are returned too (the backup was made after the change, or is damaged)."""
    from coldchain.store.sqlite.seal import HOUR_MS, series_names
    from coldchain.store.sqlite.verify import hour_label, verify_readings

    found: list[Finding] = []
    unusable: list[str] = []
    names = series_names(now)
    trusted: dict[int, bool] = {}
    for hour, sid in sorted(set(spots)):
        if hour not in trusted:
            check = verify_readings(then, hour, hour + HOUR_MS)
            trusted[hour] = check.hours == 1 and not check.findings
            if not trusted[hour]:
                unusable.append(hour_label(hour))
        if not trusted[hour]:
            continue
        was, is_ = (_rows(db, sid, hour, hour + HOUR_MS) for db in (then, now))
        series = "/".join(names[sid]) if sid in names else f"series #{sid}"
        for ts in sorted(was.keys() | is_.keys()):
            a, b = was.get(ts), is_.get(ts)
            if a == b:
                continue
            where = f"reading {series} at {_when(ts)}"
            if b is None:
                found.append(Finding(where, f"removed (as sealed: {_describe(a)})"))
            elif a is None:
                found.append(Finding(where, f"not as sealed: slipped in ({_describe(b)})"))
            else:
                changes = [
                    f"{col} {_show(col, x)} as sealed, {_show(col, y)} now"
                    for col, x, y in zip(_COLUMNS, a, b, strict=True)
                    if x != y
                ]
                found.append(Finding(where, "changed: " + "; ".join(changes)))
    return found, unusable


_COLUMNS = ("value", "quality", "reason", "calibration", "meta")
_QUALITY = {0: "good", 1: "bad", 2: "uncertain"}


def _rows(db: sqlite3.Connection, sid: int, a: int, z: int) -> dict[int, tuple[object, ...]]:
    return {
        ts: (value, _QUALITY.get(q, q), reason, cal, extra)
        for ts, value, q, reason, cal, extra in db.execute(
            "SELECT ts, value, q, reason, cal, extra FROM reading "
            "WHERE series = ? AND ts >= ? AND ts < ? ORDER BY ts",
            (sid, a, z),
        )
    }


def _show(col: str, v: object) -> str:
    """A column's value as the findings show it: texts a reason or meta holds quoted."""
    return "none" if v is None else repr(v) if col in ("reason", "meta") else str(v)


def _describe(row: tuple[object, ...] | None) -> str:
    if row is None:
        return "none"
    cols = zip(_COLUMNS, row, strict=True)
    return ", ".join(f"{k} {_show(k, v)}" for k, v in cols if v is not None)


def _when(ts: int) -> str:
    """UTC, to the millisecond where it has one."""
    t = datetime.fromtimestamp(ts // 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{t}.{ts % 1000:03d}Z" if ts % 1000 else f"{t}Z"
