"""Verifying the SQLite store's sealed readings (:mod:`coldchain.store.sqlite.seal`): every
sealed hour recomputed from the readings as they are now, the seals' chain, the triggers;
what differs named by hour, series and seal (``coldchain records verify``, the backups'
restore test)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from coldchain.store.sqlite.meta import read_meta
from coldchain.store.sqlite.seal import (
    GENESIS,
    HOUR_MS,
    PENDING,
    TRIGGERS,
    Entry,
    Names,
    SealHead,
    hour_parts,
    part_digest,
    seal_head,
    seal_link,
    series_names,
)


@dataclass(slots=True)
class ReadingsCheck:
    """What :func:`verify_readings` found: ``findings`` as (where, what)."""

    hours: int = 0
    readings: int = 0
    seals: int = 0
    head: SealHead | None = None
    pending: int = 0  # late readings not sealed yet
    sealed_from: int | None = None  # the first sealed hour (earlier readings are not sealed)
    findings: list[tuple[str, str]] = field(default_factory=list)
    # (hour, series id) of every series' hour whose readings differ from its seal: where
    # hub.records.name_readings looks for the readings themselves in an older copy
    spots: list[tuple[int, int]] = field(default_factory=list)


def hour_label(hour: int) -> str:
    return datetime.fromtimestamp(hour / 1000, UTC).strftime("%Y-%m-%d %H:00Z")


def verify_readings(
    db: sqlite3.Connection,
    start_ms: int | None = None,
    end_ms: int | None = None,
    *,
    anchors: dict[int, str] | None = None,
    progress: Callable[[int], object] | None = None,
) -> ReadingsCheck:
    """Recompute the seals' chain and every sealed hour in [start_ms, end_ms) of the store
    ``db`` (read-only is enough); name what differs. ``anchors``: seal id to link (hex), as
    printed on a daily log. ``progress`` is called with 1 after each hour checked."""
    out = ReadingsCheck()
    found = out.findings
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "seal" not in tables:
        return out  # a store from before sealing: nothing sealed
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    found += [
        (f"trigger {t}", "missing: sealed readings can be edited or deleted")
        for t in TRIGGERS
        if t not in names
    ]
    seals = _check_chain(db, found)
    for seal_id, printed in sorted((anchors or {}).items()):
        row = db.execute("SELECT link FROM seal WHERE id = ?", (seal_id,)).fetchone()
        if row is None:
            found.append((f"reading seal #{seal_id}", "gone, though a printed head names it"))
        elif bytes(row[0]).hex() != printed.lower():
            found.append(
                (
                    f"reading seal #{seal_id}",
                    "its link is not the printed one: the seals up to it were rewritten",
                )
            )
    out.seals = len(seals)
    out.head = seal_head(db)
    first, through = read_meta(db, "seal_from"), read_meta(db, "sealed_through")
    out.sealed_from = first
    if first is None or through is None:
        return out
    floor = read_meta(db, "floor_ms")
    lo = max(first, start_ms if start_ms is not None else first)
    if floor is not None:
        lo = max(lo, -(-floor // HOUR_MS) * HOUR_MS)  # an hour partly pruned is not checked
    lo = lo // HOUR_MS * HOUR_MS
    hi = through + HOUR_MS if end_ms is None else min(through + HOUR_MS, end_ms)
    by_hour: dict[int, dict[int, int]] = {}  # hour -> seal id -> part
    for seal_id, (hour, part, _n, _d) in seals.items():
        by_hour.setdefault(hour, {})[seal_id] = part
    names_now = series_names(db)
    for hour in range(lo, hi, HOUR_MS):
        out.hours += 1
        db.execute("BEGIN")
        try:
            now = hour_parts(db, hour)
        finally:
            db.execute("COMMIT")
        out.pending += sum(c for c, _ in now.pop(PENDING, {}).values())
        out.readings += sum(c for part in now.values() for c, _ in part.values())
        stored = by_hour.get(hour, {})
        if 0 not in stored.values():
            found.append((f"readings {hour_label(hour)}", "no seal: it was removed"))
        for seal_id, part in sorted(stored.items()):
            key = 0 if part == 0 else seal_id
            _compare(db, seal_id, seals[seal_id], now.pop(key, {}), names=names_now, out=out)
        found += [
            (_where(hour, sid, names_now), f"marked as sealed by #{key}, which does not seal it")
            for key, rest in now.items()
            if key != 0
            for sid in rest
        ]
        if progress is not None:
            progress(1)
    return out


def _n(count: int) -> str:
    return f"{count} reading{'' if count == 1 else 's'}"


def _where(hour: int, sid: int, names: dict[int, Names]) -> str:
    series = "/".join(names[sid]) if sid in names else f"series #{sid} (gone)"
    return f"readings {hour_label(hour)}, {series}"


def _compare(
    db: sqlite3.Connection,
    seal_id: int,
    seal: tuple[int, int, int, bytes],
    now: dict[int, Entry],
    *,
    names: dict[int, Names],
    out: ReadingsCheck,
) -> None:
    """One sealed part (``seal``: hour, part, readings, digest) against the readings now in it."""
    hour, part = seal[0], seal[1]
    which = "the hour's seal" if part == 0 else f"addendum {part}"
    sealed: dict[int, Entry] = {
        sid: (n, bytes(d))
        for sid, n, d in db.execute(
            "SELECT series, readings, digest FROM seal_series WHERE seal = ?", (seal_id,)
        )
    }
    found = out.findings
    if part_digest(sealed, names) != seal[3]:
        found.append(
            (
                f"readings {hour_label(hour)} ({which}, #{seal_id})",
                "its list of series, or a series' name, changed after it was sealed",
            )
        )
    for sid in sorted(sealed.keys() | now.keys()):
        was, is_ = sealed.get(sid, (0, b"")), now.get(sid, (0, b""))
        if was == is_:
            continue
        where = f"{_where(hour, sid, names)} ({which}, #{seal_id})"
        if was[0] > is_[0]:
            what = f"{was[0] - is_[0]} of {_n(was[0])} sealed removed"
        elif was[0] < is_[0]:
            what = f"{_n(is_[0] - was[0])} more than the {was[0]} sealed: written around the hub"
        else:
            what = f"changed after it was sealed ({was[0]} readings, as many as sealed)"
        found.append((where, what))
        out.spots.append((hour, sid))


def _check_chain(
    db: sqlite3.Connection, found: list[tuple[str, str]]
) -> dict[int, tuple[int, int, int, bytes]]:
    """Recompute the seals' links; the seals by id: (hour, part, readings, digest)."""
    seals: dict[int, tuple[int, int, int, bytes]] = {}
    prev: bytes | None = GENESIS
    last = 0
    for seal_id, hour, part, n, digest_blob, at, link_blob in db.execute(
        "SELECT id, hour, part, readings, digest, sealed_ms, link FROM seal ORDER BY id"
    ):
        digest, link = bytes(digest_blob), bytes(link_blob)
        if seal_id != last + 1:
            span = f"#{last + 1}" if seal_id == last + 2 else f"#{last + 1}-#{seal_id - 1}"
            found.append((f"reading seals {span}", "removed: the chain breaks there"))
            prev = None
        if prev is not None and seal_link(prev, (seal_id, hour, part, n, digest, at)) != link:
            found.append(
                (f"reading seal #{seal_id} ({hour_label(hour)})", "changed after it was written")
            )
        seals[seal_id] = (hour, part, n, digest)
        prev, last = link, seal_id
    return seals
