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
from dataclasses import dataclass, field

from hub.audit import COLUMNS, GENESIS, TRIGGERS, next_link


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


def verify_audit(db: sqlite3.Connection, anchors: dict[int, str] | None = None) -> AuditCheck:
    """Recompute the audit trail's chain in the hub database ``db``; ``anchors`` (record id
    to link, hex, as printed on a daily log) must match the links stored."""
    found: list[Finding] = []
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    found += [
        Finding(f"trigger {t}", "missing: the audit trail can be edited or deleted")
        for t in TRIGGERS
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
        )
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
