"""Exactly one hub runs the alert lifecycle at a time: the leader. Others sharing the same
state wait as standbys and take over within seconds of the leader dying.

On PostgreSQL (``hub.state``) the leader holds a session-level advisory lock
(:data:`ALERT_LEADER`) on a connection of its own; the server releases it the moment that
connection ends, so a leader killed with -9, or whose machine stops, frees it (a machine that
vanishes without closing its connections is noticed by TCP keepalives set on the connection:
about 10 s). Standbys try to take it every ``interval_s``. On SQLite (one machine) the leader
holds an exclusive ``flock`` on ``DATA_DIR/alerts.lock``: a second hub started on the same
data dir by mistake waits instead of paging everyone twice.

A leader that can no longer show it holds the lock (its connection to the database broke)
stops at once (:class:`LeadershipLost`): the hub process exits with an error for its service
manager to restart it, as a standby, rather than risk two leaders. Nothing is lost by that:
the alerts, their escalation steps and the notifications still queued are in the state, and
whoever leads next takes them up from there (:meth:`alerts.service.AlertService.start`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Any

from coldchain.statedb import PostgresTarget, StateConn, StateError, StateTarget

log = logging.getLogger(__name__)

ALERT_LEADER = 0x636F6C64_00000002
"""The PostgreSQL advisory lock (session scope) the alert leader holds."""
KEEPALIVE = (
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3"
)


class LeadershipLost(Exception):  # noqa: N818 - what happened, not an error kind
    """The leader can no longer show it holds the lock: it must stop leading at once."""


class AlertLeadership:
    """The alert leader's lock on the hub's state ``state`` (see the module docstring)."""

    def __init__(self, state: StateTarget, data_dir: Path, *, interval_s: float = 1.0) -> None:
        self.state, self.data_dir, self.interval_s = state, data_dir, interval_s
        self.leading = False
        self._conn: StateConn | None = None
        self._fd: int | None = None
        self._probe: StateConn | None = None  # PostgreSQL: whether another hub leads
        self._seen: tuple[float, bool] = (-1e9, True)  # (time.monotonic(), a leader runs)

    @property
    def where(self) -> str:
        if isinstance(self.state, PostgresTarget):
            return f"an advisory lock on {self.state.conninfo}"
        return str(self.data_dir / "alerts.lock")

    def _try(self) -> bool:
        """One attempt to take the lock (blocking; run in a thread)."""
        if not isinstance(self.state, PostgresTarget):
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.data_dir / "alerts.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        if self._conn is None:
            self._conn = StateConn(self.state)
            self._conn.execute(KEEPALIVE)
        (got,) = self._conn.execute("SELECT pg_try_advisory_lock(?)", (ALERT_LEADER,)).fetchone()
        return bool(got)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    async def try_once(self) -> bool:
        """One attempt to lead now (a database error: False, retried by :meth:`acquire`)."""
        try:
            got = await asyncio.to_thread(self._try)
        except Exception as exc:  # the database's own errors: its driver's classes
            database = self._conn is not None and isinstance(exc, self._conn.Error)
            if not (database or isinstance(exc, StateError | OSError)):
                raise
            log.warning("alert leadership: %s; retrying", exc)
            self._drop_connection()
            return False
        if got:
            self.leading = True
            log.info("alert leader: this hub runs the alerts (%s)", self.where)
        return got

    async def acquire(self) -> None:
        """Wait until this hub leads (a database that does not answer is retried)."""
        said = False
        while not await self.try_once():
            if not said:
                log.warning(
                    "alert standby: another hub leads (%s); waiting to take over", self.where
                )
                said = True
            await asyncio.sleep(self.interval_s)

    def _check(self) -> None:
        """Raise :class:`LeadershipLost` unless the lock's connection still answers."""
        conn = self._conn
        if conn is None:
            return  # the flock: held until this process ends
        try:
            conn.execute("SELECT 1").fetchone()
        except Exception as exc:
            self.leading = False
            raise LeadershipLost(
                f"the connection holding the alert leader's lock broke ({exc}); stopping, so "
                "the standby takes over"
            ) from exc

    async def hold(self) -> None:
        """While leading: check the lock every ``interval_s``; raises :class:`LeadershipLost`
        when it cannot be shown to be held."""
        while True:
            await asyncio.to_thread(self._check)
            await asyncio.sleep(self.interval_s)

    def leader_runs(self, *, every_s: float = 5.0) -> bool:
        """Whether some hub (this one or another) holds the lock now, looked at most every
        ``every_s``; a database that does not answer counts as no leader. The web UI warns
        when none does: then no alarm is sent."""
        at, runs = self._seen
        if self.leading or time.monotonic() - at < every_s:
            return self.leading or runs
        try:
            runs = self._held()
        except Exception as exc:  # noqa: BLE001 - the driver's errors, OSError: no leader seen
            log.warning("alert leadership: cannot tell whether a hub leads: %s", exc)
            if self._probe is not None:
                with contextlib.suppress(Exception):
                    self._probe.close()
                self._probe = None
            runs = False
        self._seen = (time.monotonic(), runs)
        return runs

    def _held(self) -> bool:
        if not isinstance(self.state, PostgresTarget):  # a shared flock is refused while held
            fd = os.open(self.data_dir / "alerts.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            finally:
                os.close(fd)  # releases the shared lock, if it was given
            return False
        if self._probe is None:
            self._probe = StateConn(self.state)
        (n,) = self._probe.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = ? AND objid = ? AND objsubid = 1",
            (ALERT_LEADER >> 32, ALERT_LEADER & 0xFFFFFFFF),
        ).fetchone()
        return bool(n)

    def release(self) -> None:
        """Let go (the standby takes over within its interval). On PostgreSQL the lock is
        given back before the session ends: a closed session's backend lets go of its locks
        a moment after the client has gone, while others may already be looking."""
        was_leading, self.leading = self.leading, False
        if was_leading and self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute("SELECT pg_advisory_unlock(?)", (ALERT_LEADER,))
        self._drop_connection()  # ending the session releases the advisory lock anyway
        if self._fd is not None:
            os.close(self._fd)  # and closing the descriptor the flock
            self._fd = None
        if self._probe is not None:
            with contextlib.suppress(Exception):
                self._probe.close()
            self._probe = None

    def __repr__(self) -> str:
        state: Any = "leader" if self.leading else "standby"
        return f"AlertLeadership({self.where}, {state})"
