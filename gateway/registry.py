"""The gateway registry: who is online, when each gateway was last heard, what it reports.

Fed by the retained status topic (``online``, and the last will ``offline``), by health
reports and by telemetry. A gateway that has said nothing for ``health_timeout`` is offline
even if no last will came (a broker restart, a network partition). Kept in the hub's
database so a restarted hub still knows the last state of every gateway.

Status and health payloads are parsed (bounded size and depth) and validated
(:mod:`coldchain.protocol.status`) before anything is changed: a malformed one raises
:class:`~coldchain.protocol.messages.ProtocolError` and changes nothing, and only the
validated report is stored. A stored report is validated again when read (rows written by
an older hub stored whatever JSON came): one that does not validate reads as no report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coldchain.protocol.bounded import loads_bounded
from coldchain.protocol.limits import MAX_HEALTH_BYTES, MAX_JSON_DEPTH
from coldchain.protocol.messages import ProtocolError
from coldchain.protocol.status import HealthReport, decode_health, decode_status, health_from
from coldchain.statedb import Schema, StateTarget, open_state
from gateway.timesync import ClockSample

SCHEMA = Schema(
    "gateways",
    (
        """CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,            -- online | offline | unknown
    state_since INTEGER,            -- ms
    last_seen INTEGER,              -- ms: status, health or telemetry
    version TEXT,
    health TEXT                     -- the last health report, JSON
) WITHOUT ROWID""",
    ),
)


@dataclass(frozen=True, slots=True)
class GatewayState:
    id: str
    state: str
    state_since_ms: int | None
    last_seen_ms: int | None
    version: str | None
    report: HealthReport | None  # the last health report, validated
    clock: ClockSample | None = None  # its clock against the hub's, measured (not stored)

    @property
    def health(self) -> dict[str, Any] | None:
        """The last health report as the agent sent it, minus fields the hub does not know."""
        return (
            None if self.report is None else self.report.model_dump(mode="json", exclude_unset=True)
        )

    @property
    def backlog(self) -> int | None:
        return None if self.report is None else self.report.backlog

    def poll_success(self) -> dict[str, float | None]:
        return {} if self.report is None else self.report.poll_success()

    def failing(self) -> dict[str, tuple[int | None, str | None]]:
        """Devices failing now: (since, last error) by device id."""
        return {} if self.report is None else self.report.failing()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Registry:
    """Gateway states in the hub database (thread-safe; calls are short)."""

    def __init__(
        self,
        path: StateTarget,
        gateways: list[str],
        *,
        health_timeout_s: float,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._now = clock_ms  # the hub's clock: last seen, state changes, expiry
        self._db = open_state(path, SCHEMA)
        self._lock = threading.Lock()
        self.timeout_ms = int(health_timeout_s * 1000)
        self.known: set[str] = set()
        self.know(gateways)
        self._reports: dict[str, tuple[str, HealthReport | None]] = {}  # id -> (text, report)
        # The latest clock measurements (gateway/timesync.py): in memory only, a restarted
        # hub measures again within one probe interval.
        self._clocks: dict[str, ClockSample] = {}

    def know(self, gateways: list[str]) -> None:
        """Track ``gateways`` too (a config that gained some)."""
        with self._lock:
            for gw in gateways:
                self._db.execute(
                    "INSERT INTO gateways (id, state) VALUES (?, 'unknown') ON CONFLICT DO NOTHING",
                    (gw,),
                )
        self.known |= set(gateways)

    def _set(self, gateway: str, **fields: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            sql = f"UPDATE gateways SET {cols} WHERE id = ?"  # noqa: S608 - our column names
            self._db.execute(sql, (*fields.values(), gateway))

    def _state_change(self, gateway: str, state: str, at: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE gateways SET state = ?, state_since = ? WHERE id = ? AND state != ?",
                (state, at, gateway, state),
            )

    def on_status(self, gateway: str, payload: bytes) -> None:
        """A status message of a known gateway (others are ignored); raises
        :class:`ProtocolError`, changing nothing, when it is malformed."""
        if gateway not in self.known:
            return
        msg = decode_status(payload)
        at = self._now()
        self._state_change(gateway, msg.state, at)
        self._set(gateway, version=msg.version or "", last_seen=at)

    def on_health(self, gateway: str, payload: bytes) -> None:
        """A health report of a known gateway (others are ignored); raises
        :class:`ProtocolError`, changing nothing, when it is malformed."""
        if gateway not in self.known:
            return
        report = decode_health(payload)
        at = self._now()
        stored = report.model_dump_json(exclude_unset=True)
        self._set(gateway, health=stored, last_seen=at, version=report.version or "")
        self._state_change(gateway, "online", at)

    def revoked(self, gateway: str) -> None:
        """Its broker identity was revoked (``coldchain gateway revoke``): offline now. The
        broker's kick carries no last will, so nothing else would say so before the health
        timeout."""
        self._state_change(gateway, "offline", self._now())

    def on_telemetry(self, gateway: str) -> None:
        if gateway in self.known:
            at = self._now()
            self._set(gateway, last_seen=at)
            self._state_change(gateway, "online", at)

    def on_clock(self, gateway: str, sample: ClockSample | None) -> None:
        """The gateway's best recent clock measurement (None: none to trust any more)."""
        if sample is None:
            self._clocks.pop(gateway, None)
        elif gateway in self.known:
            self._clocks[gateway] = sample

    def expire(self, at: int | None = None) -> list[str]:
        """Mark gateways silent longer than the health timeout offline; return them."""
        at = at if at is not None else self._now()
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM gateways WHERE state = 'online' AND last_seen < ?",
                (at - self.timeout_ms,),
            ).fetchall()
        for (gw,) in rows:
            self._state_change(gw, "offline", at)
        return [gw for (gw,) in rows]

    def all(self) -> list[GatewayState]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, state, state_since, last_seen, version, health "
                "FROM gateways ORDER BY id"
            ).fetchall()
        return [
            GatewayState(i, s, since, seen, v or None, self._report(i, h), self._clocks.get(i))
            for i, s, since, seen, v, h in rows
        ]

    def _report(self, gateway: str, text: str | None) -> HealthReport | None:
        """The stored report, validated (once per stored text); None if it does not
        validate (written by an older hub that stored any JSON) or there is none."""
        if not text:
            return None
        cached = self._reports.get(gateway)
        if cached is not None and cached[0] == text:
            return cached[1]
        try:
            doc = loads_bounded(
                text.encode(), max_bytes=MAX_HEALTH_BYTES, max_depth=MAX_JSON_DEPTH, what="health"
            )
            report: HealthReport | None = health_from(doc)
        except ProtocolError:
            report = None
        self._reports[gateway] = (text, report)
        return report

    def get(self, gateway: str) -> GatewayState | None:
        return next((g for g in self.all() if g.id == gateway), None)

    def close(self) -> None:
        with self._lock:
            self._db.close()
