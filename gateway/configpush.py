"""Configuration pushed to the gateways: each one's slice as a retained, numbered revision.

The hub computes each gateway's slice of the site config (:mod:`coldchain.config.slices`);
a gateway whose slice's digest differs from its latest revision's gets a new revision (the
next number), recorded here (in the hub database) and published retained on its ``config``
topic, so a gateway offline now gets the latest when it reconnects, never an older one.
Its ``config/ack`` is recorded against the revision: the gateways page shows each
gateway's desired and applied revision, and the error of a refused one.
"""

from __future__ import annotations

import difflib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from coldchain.config.site import SiteConfig
from coldchain.config.slices import SliceError, apply_slice, digest, gateway_slice, slice_text
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.revisions import ConfigAck, encode_revision
from coldchain.protocol.topics import Topics
from coldchain.reading import SeriesId
from coldchain.statedb import Schema, StateTarget, open_state

SCHEMA = Schema(
    "config_revisions",
    (
        """CREATE TABLE IF NOT EXISTS config_revisions (
    gateway TEXT NOT NULL,
    rev INTEGER NOT NULL,
    sha256 TEXT NOT NULL,          -- of the slice's text
    slice TEXT NOT NULL,           -- canonical JSON (coldchain.config.slices)
    pushed_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    acked_ms INTEGER,              -- the gateway's answer, when it came
    ok INTEGER,                    -- 1 applied, 0 refused, NULL no answer yet
    error TEXT,
    restart TEXT,                  -- JSON list: what it takes up only when it next starts
    PRIMARY KEY (gateway, rev)
) WITHOUT ROWID""",
    ),
)


@dataclass(frozen=True, slots=True)
class Change:
    """A gateway's new revision: its number and slice text, and the text it replaces."""

    gateway: str
    rev: int
    text: str
    before: str | None

    def diff(self) -> str:
        """What changed, as a unified diff of the slices (one key per line)."""
        return "".join(
            difflib.unified_diff(
                _lines(self.before),
                _lines(self.text),
                f"{self.gateway} rev {self.rev - 1}" if self.before else "(none)",
                f"{self.gateway} rev {self.rev}",
            )
        )


def _lines(text: str | None) -> list[str]:
    if text is None:
        return []
    pretty = json.dumps(json.loads(text), indent=1, sort_keys=True, ensure_ascii=False)
    return [line + "\n" for line in pretty.splitlines()]


@dataclass(frozen=True, slots=True)
class ConfigState:
    """A gateway's revisions as the gateways page shows them."""

    desired: int | None  # the latest revision pushed
    applied: int | None  # the latest it said it applied
    state: str  # "applied", "pending" (no answer yet), "refused", "none" (nothing pushed)
    error: str | None  # why the latest revision it answered was refused
    restart: list[str]  # what of the applied revision waits for the agent's restart
    pushed_ms: int | None
    acked_ms: int | None

    def fields(self) -> dict[str, Any]:
        return {
            "desired_rev": self.desired,
            "applied_rev": self.applied,
            "state": self.state,
            "drift": self.state != "applied" and self.desired is not None,
            "error": self.error,
            "restart": self.restart,
            "pushed_ms": self.pushed_ms,
            "acked_ms": self.acked_ms,
        }


class Revisions:
    """The revisions of every gateway (thread-safe; each call a short statement)."""

    def __init__(self, path: StateTarget) -> None:
        self._db = open_state(path, SCHEMA)
        self._lock = threading.Lock()
        self.db_error = self._db.Error  # the database's errors (an outage of PostgreSQL)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def latest(self, gateway: str) -> tuple[int, str, str] | None:
        """(rev, sha256, slice) of ``gateway``'s latest revision."""
        with self._lock:
            row = self._db.execute(
                "SELECT rev, sha256, slice FROM config_revisions WHERE gateway = ? "
                "ORDER BY rev DESC LIMIT 1",
                (gateway,),
            ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]))

    def gateways(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT gateway FROM config_revisions").fetchall()
        return [str(r[0]) for r in rows]

    def record(self, change: Change, *, now_ms: int, actor: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO config_revisions (gateway, rev, sha256, slice, pushed_ms, actor) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (change.gateway, change.rev, digest(change.text), change.text, now_ms, actor),
            )

    def ack(self, gateway: str, ack: ConfigAck, *, now_ms: int) -> bool:
        """Record ``gateway``'s answer; False if it names no revision pushed to it."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE config_revisions SET acked_ms = ?, ok = ?, error = ?, restart = ? "
                "WHERE gateway = ? AND rev = ?",
                (now_ms, int(ack.ok), ack.error, json.dumps(list(ack.restart)), gateway, ack.rev),
            )
        return cur.rowcount > 0

    def state(self, gateway: str) -> ConfigState:
        with self._lock:
            rows = self._db.execute(
                "SELECT rev, pushed_ms, acked_ms, ok, error, restart FROM config_revisions "
                "WHERE gateway = ? ORDER BY rev DESC LIMIT 50",
                (gateway,),
            ).fetchall()
        if not rows:
            return ConfigState(None, None, "none", None, [], None, None)
        desired, pushed, acked, ok = rows[0][:4]
        applied = next((r for r in rows if r[3] == 1), None)
        state = "pending" if ok is None else ("applied" if ok else "refused")
        answered = next((r for r in rows if r[3] is not None), None)
        return ConfigState(
            desired=int(desired),
            applied=int(applied[0]) if applied else None,
            state=state,
            error=answered[4] if answered is not None and answered[3] == 0 else None,
            restart=json.loads(applied[5]) if applied and applied[5] else [],
            pushed_ms=int(pushed),
            acked_ms=int(acked) if acked is not None else None,
        )

    def superseded(self, since_ms: int) -> list[tuple[str, str]]:
        """(gateway, slice) of every revision replaced by a newer one pushed since
        ``since_ms``: their series are still accepted (backlogs in flight)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT a.gateway, a.slice FROM config_revisions a JOIN config_revisions b "
                "ON b.gateway = a.gateway AND b.rev = a.rev + 1 WHERE b.pushed_ms >= ?",
                (since_ms,),
            ).fetchall()
        return [(str(g), str(s)) for g, s in rows]


def plan(cfg: SiteConfig, profiles: ProfileRegistry, revisions: Revisions) -> list[Change]:
    """The new revision of every gateway whose slice of ``cfg`` changed (or never pushed)."""
    out = []
    for gw in cfg.gateways:
        text = slice_text(gateway_slice(cfg, gw.id, profiles))
        latest = revisions.latest(gw.id)
        if latest is not None and latest[1] == digest(text):
            continue
        out.append(
            Change(gw.id, (latest[0] + 1) if latest else 1, text, latest[2] if latest else None)
        )
    return out


def revision_message(
    topics: Topics, gateway: str, rev: int, text: str, key: bytes | None
) -> tuple[str, bytes]:
    """The retained ``config`` message of a revision (signed with the gateway's key)."""
    return topics.topic(gateway, "config"), encode_revision(rev, text, key=key, gateway=gateway)


def retired_series(
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    slices: Iterable[tuple[str, str]],
    series_of: Callable[[SiteConfig, ProfileRegistry, str], dict[SeriesId, Any]],
) -> dict[str, dict[SeriesId, Any]]:
    """The series of earlier slices (gateway, text), as they were: each applied to ``cfg``
    the way the gateway applies it. A slice that no longer applies adds nothing."""
    out: dict[str, dict[SeriesId, Any]] = {}
    for gateway, text in slices:
        try:
            old, old_profiles = apply_slice(cfg, gateway, json.loads(text), profiles)
        except (SliceError, ValueError, KeyError):
            continue
        out.setdefault(gateway, {}).update(series_of(old, old_profiles, gateway))
    return out
