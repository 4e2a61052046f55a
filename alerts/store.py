"""Alert state on disk (in the hub database): alerts, the notifications sent for them,
room maintenance and rules edited through the API. A restart reads it back, so open alerts
are neither forgotten nor re-paged and escalation timers continue where they were.

One connection to the hub database (SQLite in WAL mode with synchronous=FULL, or
PostgreSQL: :mod:`coldchain.statedb`), whose writes are grouped: the
transitions of one evaluation, their audit records and queued notifications commit together,
once, and in the hub on a writer thread (:mod:`alerts.transactions`).

On PostgreSQL each statement is a round trip to the server, and a storm is thousands of
them (a new alert, its changes, a notification per person told): inside a transaction the
alert and notification rows are held back (:class:`alerts.held.HeldRows`: the changes to
one row merged into one, a new row's changes into its insert) and written just before the
commit, with one
``executemany`` per statement shape, which psycopg sends as one pipeline. New rows take their
ids from the table's sequence, :data:`ID_BLOCK` at a time, so the id is known at once (a
notification's goes to the dispatcher). A read inside the transaction writes what is held
first. On SQLite, where a statement costs no round trip, every write goes straight in.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

from alerts.held import TABLES, HeldRows, write_held
from alerts.transactions import TransactionalDb
from coldchain.alerting.states import OPEN_STATES, AlertState
from coldchain.statedb import Schema, StateTarget

SCHEMA = Schema(
    "alerts",
    (
        """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,             -- the watch: rule/tier/subject
    rule TEXT NOT NULL, kind TEXT NOT NULL, tier TEXT NOT NULL, severity TEXT NOT NULL,
    policy TEXT, site TEXT NOT NULL, room TEXT, gateway TEXT, series TEXT,
    quantity TEXT NOT NULL, unit TEXT NOT NULL, direction TEXT,
    state TEXT NOT NULL,           -- pending, firing, acknowledged, resolved, cancelled
    since_ms INTEGER NOT NULL,     -- when the condition began
    pending_ms INTEGER NOT NULL,
    fired_ms INTEGER, acked_ms INTEGER, acked_by TEXT, ack_comment TEXT, ack_via TEXT,
    resolved_ms INTEGER,
    value REAL, limit_value REAL, peak REAL,
    level INTEGER NOT NULL DEFAULT -1,   -- highest escalation level notified
    notified_ms INTEGER,                 -- last notification (for repeats)
    snoozed_until INTEGER,
    edge_notified TEXT                   -- JSON: contacts an agent already texted
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open_key ON alerts(key)
    WHERE state IN ('pending', 'firing', 'acknowledged');
CREATE INDEX IF NOT EXISTS alerts_state ON alerts(state);
CREATE INDEX IF NOT EXISTS alerts_site_room ON alerts(site, room, pending_ms);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_ids TEXT NOT NULL,       -- JSON list
    recipient TEXT NOT NULL,       -- contact id or channel (group notifier) id
    address TEXT NOT NULL,         -- phone number, or '' for a channel
    kind TEXT NOT NULL,            -- alarm, warning, resolved, grouped, reminder, test
    level INTEGER,
    text TEXT,
    queued_ms INTEGER NOT NULL,
    sent_ms INTEGER,
    notifier TEXT,
    status TEXT NOT NULL,          -- queued, accepted, delivered, failed, edge
    provider_ref TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    parts INTEGER
);
CREATE INDEX IF NOT EXISTS notifications_status ON notifications(status);
CREATE INDEX IF NOT EXISTS notifications_ref ON notifications(provider_ref);
CREATE INDEX IF NOT EXISTS notifications_recipient ON notifications(recipient, sent_ms);
CREATE TABLE IF NOT EXISTS maintenance (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL, room TEXT NOT NULL,
    started_ms INTEGER NOT NULL, until_ms INTEGER NOT NULL, ended_ms INTEGER,
    reason TEXT NOT NULL, by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_edits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL, body TEXT,  -- JSON of the rule; NULL: back to the config's
    ts INTEGER NOT NULL, by TEXT NOT NULL
);
""",
        # 2: people's actions taken on a hub that does not lead, for the leader to apply
        # (alerts/requests.py)
        """
CREATE TABLE IF NOT EXISTS alert_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    made_ms INTEGER NOT NULL,
    action TEXT NOT NULL,          -- ack, snooze, reply, delivery, maintenance, put_rule, ...
    args TEXT NOT NULL,            -- JSON
    status TEXT NOT NULL,          -- queued, done, refused, failed, expired
    result TEXT,                   -- JSON: what the leader answered
    done_ms INTEGER
);
CREATE INDEX IF NOT EXISTS alert_requests_status ON alert_requests(status);
""",
    ),
)


@dataclass(slots=True)
class AlertRow:
    """One alert as stored."""

    id: int
    key: str
    rule: str
    kind: str
    tier: str
    severity: str
    policy: str | None
    site: str
    room: str | None
    gateway: str | None
    series: str | None
    quantity: str
    unit: str
    direction: str | None
    state: AlertState
    since_ms: int
    pending_ms: int
    fired_ms: int | None = None
    acked_ms: int | None = None
    acked_by: str | None = None
    ack_comment: str | None = None
    ack_via: str | None = None
    resolved_ms: int | None = None
    value: float | None = None
    limit_value: float | None = None
    peak: float | None = None
    level: int = -1
    notified_ms: int | None = None
    snoozed_until: int | None = None
    edge_notified: str | None = None

    def __post_init__(self) -> None:
        self.state = AlertState(self.state)  # the column holds its value

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def edge_contacts(self) -> set[str]:
        return set(json.loads(self.edge_notified)) if self.edge_notified else set()

    def public(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["limit"] = out.pop("limit_value")
        out["edge_notified"] = sorted(self.edge_contacts())
        return out


@dataclass(slots=True)
class NotificationRow:
    id: int
    alert_ids: str
    recipient: str
    address: str
    kind: str
    level: int | None
    text: str | None
    queued_ms: int
    sent_ms: int | None
    notifier: str | None
    status: str
    provider_ref: str | None
    attempts: int
    error: str | None
    parts: int | None

    @property
    def alerts(self) -> list[int]:
        return [int(x) for x in json.loads(self.alert_ids)]

    def public(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["alert_ids"] = self.alerts
        return out


_ALERT_COLS = [f.name for f in fields(AlertRow)]
_NOTE_COLS = [f.name for f in fields(NotificationRow)]
ID_BLOCK = 64
"""New ids taken from a table's sequence at a time (PostgreSQL)."""


class AlertStore(TransactionalDb):
    """The alert tables, written in grouped transactions (:mod:`alerts.transactions`).
    ``writer_thread``: evaluations on the event loop commit on the writer thread."""

    def __init__(self, path: StateTarget, *, writer_thread: bool = False) -> None:
        super().__init__(path, SCHEMA, writer_thread=writer_thread)
        self._ids: dict[str, deque[int]] = {t: deque() for t in TABLES}

    def _deferred(self) -> HeldRows | None:
        """On PostgreSQL inside a transaction: where its alert and notification rows wait."""
        if self.kind != "postgres" or not self.in_transaction:
            return None
        held = self.queued(write_held)
        if held:
            return held[0]  # type: ignore[no-any-return]
        d = HeldRows()
        self.append(write_held, d)
        return d

    def _before_read(self) -> None:
        for d in self.queued(write_held):
            d.write(self._db)

    def _next_id(self, table: str) -> int:
        """A new row's id from ``table``'s sequence (PostgreSQL), :data:`ID_BLOCK` at a time."""
        ids = self._ids[table]
        if not ids:
            rows = self._db.execute(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "  # noqa: S608
                f"FROM generate_series(1, {ID_BLOCK})"
            ).fetchall()
            ids.extend(sorted(int(r[0]) for r in rows))
        return ids.popleft()

    # --- alerts ---------------------------------------------------------------------------

    def insert(self, **values: Any) -> AlertRow:
        """Store a new alert; the row as stored. Built here from ``values`` and the new id
        (the columns left out are NULL, or -1 for ``level``, as ``AlertRow``'s defaults
        are): reading it back, or ``RETURNING``, doubled an insert's cost in a storm."""
        for name in ("value", "limit_value", "peak"):  # the REAL columns, as read back
            if type(values.get(name)) is int:
                values[name] = float(values[name])
        held = self._deferred()
        if held is not None:
            rid = self._next_id("alerts")
            held.insert("alerts", rid, values)
            return AlertRow(id=rid, **values)
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        rid = self._insert(
            f"INSERT INTO alerts ({cols}) VALUES ({marks})",  # noqa: S608 - our column names
            list(values.values()),
        )
        return AlertRow(id=rid, **values)

    def update(self, alert_id: int, **values: Any) -> None:
        held = self._deferred()
        if held is not None:
            held.update("alerts", alert_id, values)
            return
        sets = ", ".join(f"{k} = ?" for k in values)
        self._write(
            f"UPDATE alerts SET {sets} WHERE id = ?",  # noqa: S608 - our column names
            [*values.values(), alert_id],
        )

    def get(self, alert_id: int) -> AlertRow | None:
        rows = self._read(
            f"SELECT {', '.join(_ALERT_COLS)} FROM alerts WHERE id = ?",  # noqa: S608
            (alert_id,),
        )
        return AlertRow(*rows[0]) if rows else None

    def open_alerts(self) -> list[AlertRow]:
        rows = self._read(
            f"SELECT {', '.join(_ALERT_COLS)} FROM alerts "  # noqa: S608
            "WHERE state IN ('pending', 'firing', 'acknowledged') ORDER BY id"
        )
        return [AlertRow(*r) for r in rows]

    def open_by_key(self, key: str) -> AlertRow | None:
        rows = self._read(
            f"SELECT {', '.join(_ALERT_COLS)} FROM alerts "  # noqa: S608
            "WHERE key = ? AND state IN ('pending', 'firing', 'acknowledged')",
            (key,),
        )
        return AlertRow(*rows[0]) if rows else None

    def query(
        self,
        *,
        states: list[str] | None = None,
        site: str | None = None,
        room: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AlertRow]:
        where, args = ["state != 'cancelled'"], list[Any]()
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            args += states
        for col, val in (("site", site), ("room", room)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if since_ms is not None:
            where.append("COALESCE(resolved_ms, 9e18) >= ?")
            args.append(since_ms)
        if until_ms is not None:
            where.append("pending_ms < ?")
            args.append(until_ms)
        rows = self._read(
            f"SELECT {', '.join(_ALERT_COLS)} FROM alerts WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [AlertRow(*r) for r in rows]

    # --- notifications -------------------------------------------------------------------

    def add_notification(
        self,
        *,
        alert_ids: list[int],
        recipient: str,
        address: str,
        kind: str,
        level: int | None,
        queued_ms: int,
        status: str = "queued",
        text: str | None = None,
        sent_ms: int | None = None,
        notifier: str | None = None,
    ) -> int:
        values = {
            "alert_ids": json.dumps(alert_ids),
            "recipient": recipient,
            "address": address,
            "kind": kind,
            "level": level,
            "text": text,
            "queued_ms": queued_ms,
            "sent_ms": sent_ms,
            "notifier": notifier,
            "status": status,
        }
        held = self._deferred()
        if held is not None:
            note_id = self._next_id("notifications")
            held.insert("notifications", note_id, values)
            return note_id
        return self._insert(
            f"INSERT INTO notifications ({', '.join(values)}) "  # noqa: S608 - our columns
            f"VALUES ({', '.join('?' * len(values))})",
            list(values.values()),
        )

    def update_notification(self, note_id: int, **values: Any) -> None:
        held = self._deferred()
        if held is not None:
            held.update("notifications", note_id, values)
            return
        sets = ", ".join(f"{k} = ?" for k in values)
        self._write(
            f"UPDATE notifications SET {sets} WHERE id = ?",  # noqa: S608 - our column names
            [*values.values(), note_id],
        )

    def notifications(
        self,
        *,
        alert_id: int | None = None,
        status: str | None = None,
        recipient: str | None = None,
    ) -> list[NotificationRow]:
        where, args = ["1 = 1"], list[Any]()
        if recipient is not None:
            where.append("recipient = ?")
            args.append(recipient)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if alert_id is not None:
            if self.kind == "sqlite":
                where.append("EXISTS (SELECT 1 FROM json_each(alert_ids) WHERE value = ?)")
                args.append(alert_id)
            else:
                where.append(
                    "EXISTS (SELECT 1 FROM json_array_elements_text(alert_ids::json) v WHERE v = ?)"
                )
                args.append(str(alert_id))
        rows = self._read(
            f"SELECT {', '.join(_NOTE_COLS)} FROM notifications "  # noqa: S608
            f"WHERE {' AND '.join(where)} ORDER BY id",
            args,
        )
        return [NotificationRow(*r) for r in rows]

    def by_provider_ref(self, ref: str) -> NotificationRow | None:
        rows = self._read(
            f"SELECT {', '.join(_NOTE_COLS)} FROM notifications "  # noqa: S608
            "WHERE provider_ref = ? OR provider_ref LIKE ? OR provider_ref LIKE ? "
            "ORDER BY id DESC LIMIT 1",
            (ref, f"{ref},%", f"%,{ref}"),
        )
        return NotificationRow(*rows[0]) if rows else None

    def sent_since(self, recipient: str, since_ms: int) -> int:
        rows = self._read(
            # one message may carry several alerts (one row each): count messages
            "SELECT COUNT(DISTINCT COALESCE(notifier, '') || ':' || "
            "COALESCE(provider_ref, CAST(id AS TEXT))) "
            "FROM notifications WHERE recipient = ? AND sent_ms >= ? "
            "AND status IN ('accepted', 'delivered')",
            (recipient, since_ms),
        )
        return int(rows[0][0])

    # --- maintenance and rule edits -----------------------------------------------------

    def start_maintenance(
        self, site: str, room: str, *, now_ms: int, until_ms: int, reason: str, by: str
    ) -> None:
        with self.transaction():
            self.end_maintenance(site, room, now_ms=now_ms)
            self._write(
                "INSERT INTO maintenance (site, room, started_ms, until_ms, reason, by) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (site, room, now_ms, until_ms, reason, by),
            )

    def end_maintenance(self, site: str, room: str, *, now_ms: int) -> bool:
        cur = self._write(
            "UPDATE maintenance SET ended_ms = ? WHERE site = ? AND room = ? "
            "AND ended_ms IS NULL AND until_ms > ?",
            (now_ms, site, room, now_ms),
        )
        return cur.rowcount > 0

    def maintenance(self, now_ms: int) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT site, room, started_ms, until_ms, reason, by FROM maintenance "
            "WHERE ended_ms IS NULL AND until_ms > ? ORDER BY id",
            (now_ms,),
        )
        names = ("site", "room", "started_ms", "until_ms", "reason", "by")
        return [dict(zip(names, r, strict=True)) for r in rows]

    def save_rule(self, rule: str, body: dict[str, Any] | None, *, now_ms: int, by: str) -> None:
        self._write(
            "INSERT INTO rule_edits (rule, body, ts, by) VALUES (?, ?, ?, ?)",
            (rule, None if body is None else json.dumps(body), now_ms, by),
        )

    def rule_edits(self) -> dict[str, dict[str, Any] | None]:
        """The latest edit of each rule (None: reverted to the config's)."""
        rows = self._read("SELECT rule, body FROM rule_edits ORDER BY id")
        out: dict[str, dict[str, Any] | None] = {}
        for rule, body in rows:
            out[rule] = None if body is None else json.loads(body)
        return out

    # --- requests for the leader (alerts/requests.py) ----------------------------------------

    def add_request(self, action: str, args: dict[str, Any], *, now_ms: int) -> int:
        return self._insert(
            "INSERT INTO alert_requests (made_ms, action, args, status) VALUES (?, ?, ?, ?)",
            (now_ms, action, json.dumps(args), "queued"),
        )

    def queued_requests(self, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
        """(id, action, args) of the requests no leader took yet, oldest first."""
        rows = self._read(
            "SELECT id, action, args FROM alert_requests WHERE status = 'queued' "
            "ORDER BY id LIMIT ?",
            (limit,),
        )
        return [(int(i), str(a), json.loads(args)) for i, a, args in rows]

    def claim_request(self, request_id: int) -> bool:
        """Take a queued request, inside the transaction that applies it (its first write:
        the hub that asked cannot withdraw it once taken); False when it was not queued."""
        cur = self._write(
            "UPDATE alert_requests SET status = 'taken' WHERE id = ? AND status = 'queued'",
            (request_id,),
        )
        return cur.rowcount > 0

    def finish_request(
        self, request_id: int, status: str, result: dict[str, Any], *, now_ms: int
    ) -> None:
        """A taken request's end, in the transaction that claimed it: done, refused or
        failed, with what the leader answered."""
        self._write(
            "UPDATE alert_requests SET status = ?, result = ?, done_ms = ? WHERE id = ?",
            (status, json.dumps(result), now_ms, request_id),
        )

    def withdraw_request(self, request_id: int, *, now_ms: int) -> bool:
        """The hub that asked stopped waiting: the request expires unless a leader took it
        (False: its answer is there or on its way)."""
        cur = self._write(
            "UPDATE alert_requests SET status = 'expired', done_ms = ? "
            "WHERE id = ? AND status = 'queued'",
            (now_ms, request_id),
        )
        return cur.rowcount > 0

    def request(self, request_id: int) -> tuple[str, dict[str, Any] | None] | None:
        """(status, result) of a request."""
        rows = self._read("SELECT status, result FROM alert_requests WHERE id = ?", (request_id,))
        if not rows:
            return None
        status, result = rows[0]
        return str(status), None if result is None else json.loads(result)
